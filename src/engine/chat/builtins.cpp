#include "engine/chat/builtins.h"

#include <ctime>

#include "engine/chat/error.h"
#include "engine/chat/filters.h"
#include "engine/chat/interpreter.h"
#include "engine/chat/py_format.h"
#include "engine/chat/py_ops.h"

namespace nc::chat::detail {

namespace {

// jinja2.sandbox.MAX_RANGE
constexpr int64_t kMaxRange = 100000;

using BuiltinFn = Value (*)(Interpreter&, CallArgs&);

class Builtin : public Callable {
 public:
  Builtin(const char* name, BuiltinFn fn) : name_(name), fn_(fn) {}
  Value call(Interpreter& in, CallArgs& args) const override { return fn_(in, args); }
  std::string repr() const override { return std::string("<built-in function ") + name_ + ">"; }

 private:
  const char* name_;
  BuiltinFn fn_;
};

int64_t range_arg(const Value& v) {
  if (!v.is_int() && !v.is_bool()) {
    runtime_error("TypeError: '" + type_name(v) + "' object cannot be interpreted as an integer");
  }
  return v.as_int();
}

Value fn_range(Interpreter& in, CallArgs& args) {
  if (!args.kwargs.empty()) runtime_error("TypeError: range() takes no keyword arguments");
  const auto& a = args.args;
  if (a.empty() || a.size() > 3) {
    runtime_error("TypeError: range expected at least 1 argument, got " + std::to_string(a.size()));
  }
  int64_t start = 0, stop, step = 1;
  if (a.size() == 1) {
    stop = range_arg(a[0]);
  } else {
    start = range_arg(a[0]);
    stop = range_arg(a[1]);
    if (a.size() == 3) step = range_arg(a[2]);
  }
  if (step == 0) runtime_error("ValueError: range() arg 3 must not be zero");
  // Length computed without overflow (values are int64; the differences fit in __int128).
  __int128 len = 0;
  if (step > 0 && start < stop) len = ((__int128)stop - start + step - 1) / step;
  if (step < 0 && start > stop) len = ((__int128)start - stop - step - 1) / -(__int128)step;
  if (len > kMaxRange) {
    runtime_error("OverflowError: Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
  }
  in.step(static_cast<uint64_t>(len) / 16);
  List out;
  out.reserve(static_cast<size_t>(len));
  for (__int128 i = 0; i < len; ++i) out.push_back(Value::integer(static_cast<int64_t>(start + i * step)));
  return Value::list(std::move(out));
}

// dict(*args, **kwargs) as Python's dict constructor.
Dict make_dict(CallArgs& args, const char* fname) {
  if (args.args.size() > 1) {
    runtime_error(std::string("TypeError: ") + fname + " expected at most 1 argument, got " +
                  std::to_string(args.args.size()));
  }
  Dict d;
  if (!args.args.empty()) {
    const Value& src = args.args[0];
    if (src.is_dict()) {
      d = src.as_dict();
    } else if (src.is_namespace()) {
      runtime_error("TypeError: 'Namespace' object is not iterable");
    } else {
      const List items = py_iterate(src);
      for (size_t i = 0; i < items.size(); ++i) {
        const List pair = py_iterate(items[i]);
        if (pair.size() != 2) {
          runtime_error("ValueError: dictionary update sequence element #" + std::to_string(i) + " has length " +
                        std::to_string(pair.size()) + "; 2 is required");
        }
        d.set(pair[0], pair[1]);
      }
    }
  }
  for (auto& [k, v] : args.kwargs) d.set(Value::string(k), v);
  return d;
}

Value fn_dict(Interpreter&, CallArgs& args) { return Value::dict(make_dict(args, "dict")); }

Value fn_namespace(Interpreter& in, CallArgs& args) {
  const Dict d = make_dict(args, "Namespace");
  auto ns = std::make_shared<Namespace>();
  for (const auto& [k, v] : d.items()) {
    if (!k.is_string()) runtime_error("TypeError: keywords must be strings");
    ns->set(k.as_string(), v);
  }
  in.track(ns);
  in.step();
  return Value::namespace_object(std::move(ns));
}

Value fn_raise_exception(Interpreter&, CallArgs& args) {
  ArgBinder b("raise_exception", args, {"message"});
  if (!b.get(0)) runtime_error("TypeError: raise_exception() missing 1 required positional argument: 'message'");
  throw TemplateError{Status(StatusCode::kInvalidArgument, to_str(*b.get(0))), true};
}

Value fn_strftime_now(Interpreter& in, CallArgs& args) {
  ArgBinder b("strftime_now", args, {"format"});
  if (!b.get(0)) runtime_error("TypeError: strftime_now() missing 1 required positional argument: 'format'");
  if (!b.get(0)->is_string()) {
    runtime_error("TypeError: strftime() argument 1 must be str, not " + type_name(*b.get(0)));
  }
  std::tm tm{};
  if (in.limits().now) {
    tm = *in.limits().now;
  } else {
    const std::time_t t = std::time(nullptr);
    localtime_r(&t, &tm);
  }
  return make_string(py_strftime(b.get(0)->as_string(), tm));
}

class Joiner : public Callable {
 public:
  explicit Joiner(std::string sep) : sep_(std::move(sep)) {}
  Value call(Interpreter&, CallArgs& args) const override {
    ArgBinder b("joiner", args, {});
    if (!used_) {
      used_ = true;
      return Value::string("");
    }
    return Value::string(sep_);
  }
  std::string repr() const override { return "<jinja2.utils.Joiner object>"; }

 private:
  std::string sep_;
  mutable bool used_ = false;  // only the render that created it touches it
};

Value fn_joiner(Interpreter&, CallArgs& args) {
  ArgBinder b("joiner", args, {"sep"});
  return Value::callable(std::make_shared<Joiner>(b.get(0) ? to_str(*b.get(0)) : std::string(", ")));
}

Value fn_cycler(Interpreter&, CallArgs&) { unsupported("cycler()"); }
Value fn_lipsum(Interpreter&, CallArgs&) { unsupported("lipsum()"); }

}  // namespace

std::optional<Value> builtin_global(std::string_view name) {
  static const std::pair<const char*, BuiltinFn> kTable[] = {
      {"range", fn_range},
      {"dict", fn_dict},
      {"namespace", fn_namespace},
      {"raise_exception", fn_raise_exception},
      {"strftime_now", fn_strftime_now},
      {"joiner", fn_joiner},
      {"cycler", fn_cycler},
      {"lipsum", fn_lipsum},
  };
  static const auto* values = [] {
    auto* v = new std::vector<std::pair<std::string_view, Value>>();
    for (const auto& [n, fn] : kTable) v->emplace_back(n, Value::callable(std::make_shared<Builtin>(n, fn)));
    return v;
  }();
  for (const auto& [n, v] : *values) {
    if (n == name) return v;
  }
  return std::nullopt;
}

}  // namespace nc::chat::detail
