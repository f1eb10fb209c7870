// Python's text conversions, byte for byte: float repr, str()/repr() of values, json.dumps (the
// `tojson` filter HF installs), printf-style `%` formatting, str.format and datetime.strftime.
// Stateless free functions; thread-safe. Errors are thrown as TemplateError (see error.h).
#pragma once

#include <ctime>
#include <optional>
#include <string>
#include <string_view>

#include "engine/chat/value.h"

namespace nc::chat::detail {

// float.__repr__: shortest round-trip digits, '1.0', '1e-05', '1e+16', 'inf', 'nan'.
std::string float_repr(double d);
// repr() of a str: quotes and escapes as CPython does.
std::string string_repr(std::string_view s);
// str() and repr() of any value (str of a list is the repr of its items, as in Python).
std::string to_str(const Value& v);
std::string to_repr(const Value& v);
// Python type name for error messages: 'int', 'str', 'NoneType', 'dict', ...
std::string type_name(const Value& v);

struct JsonDumpOptions {
  bool ensure_ascii = false;
  std::optional<std::string> indent;  // nullopt: single line
  std::string item_separator = ", ";
  std::string key_separator = ": ";
  bool sort_keys = false;
};
// json.dumps(value, ...): raises TypeError for values JSON cannot hold (Undefined, namespaces, ...).
std::string json_dumps(const Value& v, const JsonDumpOptions& options);

// `fmt % args` for a str (printf-style; args is a tuple, a dict for %(name)s, or one value).
std::string percent_format(std::string_view fmt, const Value& args);
// str.format(*args, **kwargs).
std::string str_format(std::string_view fmt, const CallArgs& args);
// format(value, spec): the format-spec mini-language for str, int, float and bool.
std::string format_spec(const Value& v, std::string_view spec);
// datetime.strftime on a naive datetime (%z and %Z are empty, %f is microseconds = 000000).
std::string py_strftime(std::string_view fmt, const std::tm& tm);

}  // namespace nc::chat::detail
