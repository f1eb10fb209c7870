#include "engine/chat/interpreter.h"

#include "engine/chat/builtins.h"
#include "engine/chat/error.h"
#include "engine/chat/filters.h"
#include "engine/chat/lexer.h"
#include "engine/chat/py_format.h"

namespace nc::chat::detail {

namespace {

// Nested statement and expression frames of one render (each is bounded by the parser, but macro
// recursion multiplies them). Keeps the native stack well inside 8 MiB, sanitizers included.
constexpr int kMaxRecursion = 2500;

struct RecursionGuard {
  explicit RecursionGuard(int* depth) : depth_(depth) {
    if (++*depth_ > kMaxRecursion) {
      --*depth_;
      fail(StatusCode::kResourceExhausted, "template recursion too deep");
    }
  }
  ~RecursionGuard() { --*depth_; }
  int* depth_;
};

// A macro defined by {% macro %} or the body of a {% call %} block. The closure is weak: scopes
// own macros (as variables), so a strong reference would be a cycle. A macro that outlives its
// defining scope (stored in a namespace and called after a loop ends) resolves names from the root.
class MacroValue : public Callable {
 public:
  MacroValue(std::shared_ptr<const MacroSpec> spec, const ScopePtr& closure) : spec_(std::move(spec)), closure_(closure) {}

  Value call(Interpreter& in, CallArgs& args) const override {
    ScopePtr closure = closure_.lock();
    return in.call_macro(*spec_, closure ? closure : in.root(), args);
  }
  std::string repr() const override { return "<Macro " + string_repr(spec_->name) + ">"; }

 private:
  std::shared_ptr<const MacroSpec> spec_;
  std::weak_ptr<Scope> closure_;
};

}  // namespace

const Value* Scope::find(std::string_view name) const {
  for (const Scope* s = this; s; s = s->parent_.get()) {
    for (auto it = s->vars_.rbegin(); it != s->vars_.rend(); ++it) {
      if (it->first == name) return &it->second;
    }
  }
  return nullptr;
}

void Scope::set(const std::string& name, Value value) {
  for (auto& kv : vars_) {
    if (kv.first == name) {
      kv.second = std::move(value);
      return;
    }
  }
  vars_.emplace_back(name, std::move(value));
}

Interpreter::Interpreter(const TemplateAst& ast, Limits limits)
    : ast_(ast), limits_(std::move(limits)), root_(std::make_shared<Scope>(nullptr)) {}

Interpreter::~Interpreter() {
  // Namespaces can hold themselves (ns.self = ns): drop their contents so nothing leaks.
  std::vector<Value> graveyard;
  for (auto& ns : namespaces_) {
    for (const auto& kv : ns->attrs()) graveyard.push_back(kv.second);
    *ns = Namespace();
  }
  graveyard.clear();
  root_.reset();
}

void Interpreter::step(uint64_t n) {
  steps_ += n;
  if (steps_ > limits_.max_steps) {
    fail(StatusCode::kResourceExhausted, "template exceeded its step budget (" + std::to_string(limits_.max_steps) + ")");
  }
}

void Interpreter::charge(const Value& v) {
  if (v.is_string()) {
    step(v.as_string().size() / 32);
  } else if (v.is_list()) {
    step(v.as_list().size() / 16);
  } else if (v.is_dict()) {
    step(v.as_dict().size() / 16);
  }
}

void Interpreter::append(std::string& out, std::string_view s) {
  if (out.size() + s.size() > limits_.max_output_bytes) {
    fail(StatusCode::kResourceExhausted,
         "template output exceeds " + std::to_string(limits_.max_output_bytes) + " bytes");
  }
  appended_bytes_ += s.size();
  if (appended_bytes_ > 4 * static_cast<uint64_t>(limits_.max_output_bytes)) {
    fail(StatusCode::kResourceExhausted, "template rendered more than " +
                                             std::to_string(4 * static_cast<uint64_t>(limits_.max_output_bytes)) +
                                             " bytes in total");
  }
  out.append(s);
}

std::string Interpreter::render(const Value& context) {
  if (context.is_dict()) {
    for (const auto& [k, v] : context.as_dict().items()) {
      if (k.is_string()) root_->set(k.as_string(), v);
    }
  }
  std::string out;
  exec(ast_.body, root_, out);
  return out;
}

void Interpreter::rethrow_located(TemplateError& e, size_t offset) {
  if (!e.located) {
    e.located = true;
    e.status = Status(e.status.code(), describe_position(ast_.source, offset) + ": " + e.status.message());
  }
  throw e;
}

Interpreter::Flow Interpreter::exec(const Body& body, const ScopePtr& scope, std::string& out) {
  for (const auto& n : body) {
    const Flow f = exec_node(*n, scope, out);
    if (f != Flow::kNormal) return f;
  }
  return Flow::kNormal;
}

std::string Interpreter::render_body(const Body& body, const ScopePtr& scope) {
  std::string out;
  exec(body, scope, out);
  return out;
}

Interpreter::Flow Interpreter::exec_node(const Node& n, const ScopePtr& scope, std::string& out) {
  step();
  RecursionGuard guard(&recursion_);
  try {
    switch (n.kind) {
      case NodeKind::kText:
        append(out, n.text);
        return Flow::kNormal;
      case NodeKind::kPrint: {
        const Value v = eval(*n.expr, scope);
        if (v.is_string()) {
          append(out, v.as_string());
        } else {
          append(out, to_str(v));
        }
        return Flow::kNormal;
      }
      case NodeKind::kIf:
        for (const auto& [test, body] : n.branches) {
          if (truthy(eval(*test, scope))) return exec(body, scope, out);
        }
        return exec(n.else_body, scope, out);
      case NodeKind::kFor:
        return exec_for(n, scope, out);
      case NodeKind::kSet:
        assign(n.target, eval(*n.expr, scope), scope);
        return Flow::kNormal;
      case NodeKind::kSetBlock: {
        auto inner = std::make_shared<Scope>(scope);
        Value v = Value::string(render_body(n.body, inner));
        if (n.filter) v = eval_filter(*n.filter, scope, &v);
        assign(n.target, v, scope);
        return Flow::kNormal;
      }
      case NodeKind::kMacro:
        scope->set(n.macro->name, Value::callable(std::make_shared<MacroValue>(n.macro, scope)));
        return Flow::kNormal;
      case NodeKind::kCallBlock: {
        const Expr& call = *n.expr;
        Value callee = eval(*call.items[0], scope);
        CallArgs args = eval_args(call.call, scope);
        args.kwargs.emplace_back("caller", Value::callable(std::make_shared<MacroValue>(n.macro, scope)));
        const Value v = this->call(callee, args);
        append(out, to_str(v));
        return Flow::kNormal;
      }
      case NodeKind::kFilterBlock: {
        auto inner = std::make_shared<Scope>(scope);
        const Value body = Value::string(render_body(n.body, inner));
        append(out, to_str(eval_filter(*n.filter, scope, &body)));
        return Flow::kNormal;
      }
      case NodeKind::kWith: {
        auto inner = std::make_shared<Scope>(scope);
        std::vector<Value> values;
        for (const auto& v : n.with_values) values.push_back(eval(*v, scope));
        for (size_t i = 0; i < values.size(); ++i) assign(n.with_targets[i], values[i], inner);
        return exec(n.body, inner, out);
      }
      case NodeKind::kScopedBody: {
        if (++call_depth_ > limits_.max_call_depth) fail(StatusCode::kResourceExhausted, "macro calls nested too deeply");
        auto inner = std::make_shared<Scope>(scope);
        const std::string body = render_body(n.body, inner);
        --call_depth_;
        append(out, body);
        return Flow::kNormal;
      }
      case NodeKind::kBreak:
        return Flow::kBreak;
      case NodeKind::kContinue:
        return Flow::kContinue;
    }
  } catch (TemplateError& e) {
    rethrow_located(e, n.offset);
  }
  return Flow::kNormal;
}

Interpreter::Flow Interpreter::exec_for(const Node& n, const ScopePtr& scope, std::string& out) {
  const Value iterable = eval(*n.expr, scope);
  List items = py_iterate(iterable);
  if (n.filter) {
    List kept;
    for (const Value& item : items) {
      step();
      auto s = std::make_shared<Scope>(scope);
      assign(n.target, item, s);
      if (truthy(eval(*n.filter, s))) kept.push_back(item);
    }
    items = std::move(kept);
  }
  if (items.empty()) {
    auto s = std::make_shared<Scope>(scope);
    exec(n.else_body, s, out);
    return Flow::kNormal;
  }
  auto state = std::make_shared<LoopState>();
  state->items = std::make_shared<const List>(std::move(items));
  const Value loop = Value::loop(state);
  for (size_t i = 0; i < state->items->size(); ++i) {
    step();
    state->index0 = i;
    auto s = std::make_shared<Scope>(scope);
    assign(n.target, (*state->items)[i], s);
    s->set("loop", loop);
    if (exec(n.body, s, out) == Flow::kBreak) break;
  }
  state->changed_value = Value();  // loop.changed(loop) would otherwise keep the loop alive
  return Flow::kNormal;
}

void Interpreter::assign(const Target& t, const Value& v, const ScopePtr& scope) {
  switch (t.kind) {
    case Target::Kind::kName:
      scope->set(t.name, v);
      return;
    case Target::Kind::kNamespaceAttr: {
      const Value* ns = scope->find(t.name);
      if (!ns || !ns->is_namespace()) {
        runtime_error("TemplateRuntimeError: cannot assign attribute on non-namespace object");
      }
      ns->as_namespace().set(t.attr, v);
      return;
    }
    case Target::Kind::kTuple: {
      const List items = py_iterate(v);
      if (items.size() > t.items.size()) {
        runtime_error("ValueError: too many values to unpack (expected " + std::to_string(t.items.size()) + ")");
      }
      if (items.size() < t.items.size()) {
        runtime_error("ValueError: not enough values to unpack (expected " + std::to_string(t.items.size()) +
                      ", got " + std::to_string(items.size()) + ")");
      }
      for (size_t i = 0; i < items.size(); ++i) assign(t.items[i], items[i], scope);
      return;
    }
  }
}

Value Interpreter::call(const Value& callee, CallArgs& args) {
  if (callee.is_undefined()) undefined_error(callee);
  if (!callee.is_callable()) runtime_error("TypeError: '" + type_name(callee) + "' object is not callable");
  step();
  return callee.as_callable().call(*this, args);
}

Value Interpreter::call_macro(const MacroSpec& m, const ScopePtr& closure, CallArgs& args) {
  if (call_depth_ + 1 > limits_.max_call_depth) {
    fail(StatusCode::kResourceExhausted, "macro calls nested too deeply (limit " +
                                             std::to_string(limits_.max_call_depth) + ")");
  }
  auto scope = std::make_shared<Scope>(closure);
  const size_t n_params = m.params.size();
  std::vector<std::optional<Value>> bound(n_params);
  for (size_t i = 0; i < n_params && i < args.args.size(); ++i) bound[i] = args.args[i];
  std::vector<std::pair<std::string, Value>> kwargs = std::move(args.kwargs);
  auto take_kwarg = [&](const std::string& name) -> std::optional<Value> {
    for (auto it = kwargs.begin(); it != kwargs.end(); ++it) {
      if (it->first == name) {
        Value v = std::move(it->second);
        kwargs.erase(it);
        return v;
      }
    }
    return std::nullopt;
  };
  bool found_caller = false;
  if (args.args.size() < n_params) {
    for (size_t i = args.args.size(); i < n_params; ++i) {
      bound[i] = take_kwarg(m.params[i]);
      if (m.params[i] == "caller") found_caller = true;
    }
  }
  std::optional<Value> caller;
  if (m.uses_caller && !found_caller) {
    caller = take_kwarg("caller");
    if (!caller || caller->is_none()) caller = Value::undefined("No caller defined");
  }
  Dict extra_kwargs;
  if (m.catch_kwargs) {
    for (auto& [k, v] : kwargs) extra_kwargs.set(Value::string(k), v);
  } else if (!kwargs.empty()) {
    for (const auto& kv : kwargs) {
      if (kv.first == "caller") {
        runtime_error("TypeError: macro " + string_repr(m.name) +
                      " was invoked with two values for the special caller argument. This is most likely a bug.");
      }
    }
    runtime_error("TypeError: macro " + string_repr(m.name) + " takes no keyword argument " +
                  string_repr(kwargs.front().first));
  }
  List varargs;
  if (args.args.size() > n_params) {
    if (!m.catch_varargs) {
      runtime_error("TypeError: macro " + string_repr(m.name) + " takes not more than " + std::to_string(n_params) +
                    " argument(s)");
    }
    varargs.assign(args.args.begin() + n_params, args.args.end());
  }
  ++call_depth_;
  // Parameters bind in order; a default may refer to the parameters before it.
  const size_t first_default = n_params - m.defaults.size();
  for (size_t i = 0; i < n_params; ++i) {
    if (bound[i]) {
      scope->set(m.params[i], *bound[i]);
    } else if (i >= first_default) {
      scope->set(m.params[i], eval(*m.defaults[i - first_default], scope));
    } else {
      scope->set(m.params[i], Value::undefined("parameter " + string_repr(m.params[i]) + " was not provided"));
    }
  }
  if (caller) scope->set("caller", *caller);
  if (m.catch_kwargs) scope->set("kwargs", Value::dict(std::move(extra_kwargs)));
  if (m.catch_varargs) scope->set("varargs", Value::list(std::move(varargs), true));
  std::string out;
  exec(m.body, scope, out);
  --call_depth_;
  return Value::string(std::move(out));
}

CallArgs Interpreter::eval_args(const CallSpec& spec, const ScopePtr& scope) {
  CallArgs a;
  for (const auto& e : spec.args) a.args.push_back(eval(*e, scope));
  for (const auto& [k, e] : spec.kwargs) a.kwargs.emplace_back(k, eval(*e, scope));
  if (spec.dyn_args) {
    for (Value& v : py_iterate(eval(*spec.dyn_args, scope))) a.args.push_back(std::move(v));
  }
  if (spec.dyn_kwargs) {
    const Value d = eval(*spec.dyn_kwargs, scope);
    if (!d.is_dict()) runtime_error("TypeError: argument after ** must be a mapping, not " + type_name(d));
    for (const auto& [k, v] : d.as_dict().items()) {
      if (!k.is_string()) runtime_error("TypeError: keywords must be strings");
      a.kwargs.emplace_back(k.as_string(), v);
    }
  }
  return a;
}

Value Interpreter::eval_filter(const Expr& e, const ScopePtr& scope, const Value* block_input) {
  Value input;
  if (e.items[0]) {
    const Expr& inner = *e.items[0];
    input = inner.kind == ExprKind::kFilter && block_input ? eval_filter(inner, scope, block_input) : eval(inner, scope);
  } else if (block_input) {
    input = *block_input;
  }
  CallArgs args = eval_args(e.call, scope);
  step();
  return apply_filter(*this, e.name, input, args);
}

bool Interpreter::eval_compare(const Expr& e, const ScopePtr& scope) {
  Value left = eval(*e.items[0], scope);
  charge(left);
  for (size_t i = 0; i < e.compare_ops.size(); ++i) {
    Value right = eval(*e.items[i + 1], scope);
    charge(right);
    bool ok = false;
    switch (e.compare_ops[i]) {
      case CompareOp::kEq: ok = py_equal(left, right); break;
      case CompareOp::kNe: ok = !py_equal(left, right); break;
      case CompareOp::kLt: ok = py_compare(left, right, "<") < 0; break;
      case CompareOp::kLe: ok = py_compare(left, right, "<=") <= 0; break;
      case CompareOp::kGt: ok = py_compare(left, right, ">") > 0; break;
      case CompareOp::kGe: ok = py_compare(left, right, ">=") >= 0; break;
      case CompareOp::kIn: ok = py_contains(right, left); break;
      case CompareOp::kNotIn: ok = !py_contains(right, left); break;
    }
    if (!ok) return false;
    left = std::move(right);
  }
  return true;
}

Value Interpreter::eval(const Expr& e, const ScopePtr& scope) {
  RecursionGuard guard(&recursion_);
  Value v = eval_inner(e, scope);
  // Charge for what was built, so loops that grow strings or lists stay within the budget.
  if (v.is_string() && v.as_string().size() > 256) {
    step(v.as_string().size() / 256);
  } else if (v.is_list() && v.as_list().size() > 16) {
    step(v.as_list().size() / 16);
  }
  return v;
}

Value Interpreter::eval_inner(const Expr& e, const ScopePtr& scope) {
  switch (e.kind) {
    case ExprKind::kConst:
      return e.value;
    case ExprKind::kName: {
      if (const Value* v = scope->find(e.name)) return *v;
      if (auto g = builtin_global(e.name)) return *g;
      return Value::undefined(string_repr(e.name) + " is undefined");
    }
    case ExprKind::kList:
    case ExprKind::kTuple: {
      List items;
      items.reserve(e.items.size());
      for (const auto& i : e.items) items.push_back(eval(*i, scope));
      return Value::list(std::move(items), e.kind == ExprKind::kTuple);
    }
    case ExprKind::kDict: {
      Dict d;
      for (size_t i = 0; i + 1 < e.items.size(); i += 2) {
        Value k = eval(*e.items[i], scope);
        if (k.is_undefined()) undefined_error(k);
        if ((k.is_list() && !k.is_tuple() && !k.is_generator()) || k.is_dict() || k.is_namespace()) {
          runtime_error("TypeError: unhashable type: '" + type_name(k) + "'");
        }
        d.set(std::move(k), eval(*e.items[i + 1], scope));
      }
      return Value::dict(std::move(d));
    }
    case ExprKind::kGetattr:
      return py_getattr(eval(*e.items[0], scope), e.name);
    case ExprKind::kGetitem: {
      const Value obj = eval(*e.items[0], scope);
      if (obj.is_string()) charge(obj);  // code-point indexing scans non-ASCII strings
      return py_getitem(obj, eval(*e.items[1], scope));
    }
    case ExprKind::kSlice: {
      const Value obj = eval(*e.items[0], scope);
      charge(obj);
      Value b[3];
      for (int i = 0; i < 3; ++i) {
        if (e.items[i + 1]) b[i] = eval(*e.items[i + 1], scope);
        else b[i] = Value::none();
      }
      return py_slice(obj, b[0], b[1], b[2]);
    }
    case ExprKind::kCall: {
      const Value callee = eval(*e.items[0], scope);
      CallArgs args = eval_args(e.call, scope);
      return call(callee, args);
    }
    case ExprKind::kFilter:
      return eval_filter(e, scope, nullptr);
    case ExprKind::kTest: {
      const Value v = eval(*e.items[0], scope);
      CallArgs args = eval_args(e.call, scope);
      return Value::boolean(apply_test(*this, e.name, v, args));
    }
    case ExprKind::kNot:
      return Value::boolean(!truthy(eval(*e.items[0], scope)));
    case ExprKind::kNeg:
      return negate(eval(*e.items[0], scope));
    case ExprKind::kPos:
      return unary_plus(eval(*e.items[0], scope));
    case ExprKind::kBinary: {
      const Value a = eval(*e.items[0], scope);
      return binary_op(e.op, a, eval(*e.items[1], scope));
    }
    case ExprKind::kConcat: {
      std::string s;
      for (const auto& i : e.items) {
        const Value v = eval(*i, scope);
        s += v.is_string() ? v.as_string() : to_str(v);
        if (s.size() > kMaxValueBytes) fail(StatusCode::kResourceExhausted, "string result too large");
      }
      return Value::string(std::move(s));
    }
    case ExprKind::kCompare:
      return Value::boolean(eval_compare(e, scope));
    case ExprKind::kAnd: {
      Value a = eval(*e.items[0], scope);
      if (!truthy(a)) return a;
      return eval(*e.items[1], scope);
    }
    case ExprKind::kOr: {
      Value a = eval(*e.items[0], scope);
      if (truthy(a)) return a;
      return eval(*e.items[1], scope);
    }
    case ExprKind::kCondExpr:
      if (truthy(eval(*e.items[0], scope))) return eval(*e.items[1], scope);
      if (e.items[2]) return eval(*e.items[2], scope);
      return Value::undefined("the inline if-expression evaluated to false and no else section was defined.");
  }
  return Value();
}

}  // namespace nc::chat::detail
