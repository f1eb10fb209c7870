// Interpreter: renders a parsed template (TemplateAst) against a context, with Jinja2's run-time
// semantics — scopes (a for-loop iteration, macro and call block each get their own; if does not),
// macros with defaults/varargs/kwargs/caller, loop objects, break/continue, namespaces.
//
// One Interpreter per render call; it owns every mutable object the render creates and breaks
// reference cycles between them when it is destroyed. Not thread-safe (one render, one thread);
// the TemplateAst it reads is shared and immutable.
#pragma once

#include <cstdint>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/chat/ast.h"
#include "engine/chat/error.h"

namespace nc::chat::detail {

struct Limits {
  size_t max_output_bytes = 16u << 20;  // any one rendered buffer (the result, a macro's output)
  uint64_t max_steps = 10'000'000;      // statements, loop iterations, calls, bytes/256 built
  int max_call_depth = 64;              // nested macro / call-block invocations
  std::optional<std::tm> now;           // strftime_now's clock; unset: local time at render
};

// A variable scope. Lookups walk the parents up to the template's root scope.
class Scope {
 public:
  explicit Scope(std::shared_ptr<Scope> parent) : parent_(std::move(parent)) {}
  const Value* find(std::string_view name) const;
  void set(const std::string& name, Value value);

 private:
  std::shared_ptr<Scope> parent_;
  std::vector<std::pair<std::string, Value>> vars_;
};
using ScopePtr = std::shared_ptr<Scope>;

class Interpreter {
 public:
  Interpreter(const TemplateAst& ast, Limits limits);
  ~Interpreter();
  Interpreter(const Interpreter&) = delete;
  Interpreter& operator=(const Interpreter&) = delete;

  // context must be a dict; its items become the template's variables.
  std::string render(const Value& context);

  // Calls anything callable (macro, builtin, bound method); Undefined raises UndefinedError.
  Value call(const Value& callee, CallArgs& args);
  Value call_macro(const MacroSpec& m, const ScopePtr& closure, CallArgs& args);
  // Counts work against Limits::max_steps.
  void step(uint64_t n = 1);
  // Charges for an operation whose cost grows with `v` (scanning a string, a list, a dict).
  void charge(const Value& v);
  const Limits& limits() const { return limits_; }
  // Mutable objects created by the render, released (cycles broken) with the interpreter.
  void track(const std::shared_ptr<Namespace>& ns) { namespaces_.push_back(ns); }
  const ScopePtr& root() const { return root_; }

 private:
  enum class Flow { kNormal, kBreak, kContinue };

  Flow exec(const Body& body, const ScopePtr& scope, std::string& out);
  Flow exec_node(const Node& n, const ScopePtr& scope, std::string& out);
  Flow exec_for(const Node& n, const ScopePtr& scope, std::string& out);
  Value eval(const Expr& e, const ScopePtr& scope);
  Value eval_inner(const Expr& e, const ScopePtr& scope);
  Value eval_filter(const Expr& e, const ScopePtr& scope, const Value* block_input);
  CallArgs eval_args(const CallSpec& spec, const ScopePtr& scope);
  bool eval_compare(const Expr& e, const ScopePtr& scope);
  void assign(const Target& t, const Value& v, const ScopePtr& scope);
  void append(std::string& out, std::string_view s);
  std::string render_body(const Body& body, const ScopePtr& scope);
  [[noreturn]] void rethrow_located(TemplateError& e, size_t offset);

  const TemplateAst& ast_;
  Limits limits_;
  ScopePtr root_;
  uint64_t steps_ = 0;
  uint64_t appended_bytes_ = 0;
  int call_depth_ = 0;
  int recursion_ = 0;  // nested exec_node/eval frames, all macros together
  std::vector<std::shared_ptr<Namespace>> namespaces_;
};

}  // namespace nc::chat::detail
