// Jinja2's builtin filters and tests (jinja2/filters.py, jinja2/tests.py), with transformers'
// `tojson` override (json.dumps(x, ensure_ascii=False, indent, separators, sort_keys)).
// Thread-safe; state lives in the Interpreter passed in.
#pragma once

#include <string_view>

#include "engine/chat/interpreter.h"

namespace nc::chat::detail {

Value apply_filter(Interpreter& in, std::string_view name, const Value& input, CallArgs& args);
bool apply_test(Interpreter& in, std::string_view name, const Value& input, CallArgs& args);

// Binds positional and keyword arguments to a Python-style signature, raising TypeError as Python
// does for unexpected, duplicate or too many arguments.
class ArgBinder {
 public:
  ArgBinder(std::string_view function, CallArgs& args, std::initializer_list<std::string_view> params,
            bool allow_extra = false);
  // The bound argument, or nullptr when it was not passed.
  const Value* get(size_t i) const { return bound_[i].is_undefined() && !given_[i] ? nullptr : &bound_[i]; }
  // Positional arguments beyond the signature (for *args functions); empty otherwise.
  const std::vector<Value>& extra() const { return extra_; }

 private:
  std::vector<Value> bound_;
  std::vector<bool> given_;
  std::vector<Value> extra_;
};

}  // namespace nc::chat::detail
