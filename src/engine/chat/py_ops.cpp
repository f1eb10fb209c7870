#include "engine/chat/py_ops.h"

#include <cmath>
#include <limits>

#include "engine/chat/error.h"
#include "engine/chat/methods.h"
#include "engine/chat/py_format.h"
#include "engine/chat/utf8.h"

namespace nc::chat::detail {

namespace {

[[noreturn]] void overflow() {
  fail(StatusCode::kOutOfRange, "OverflowError: integer result does not fit in 64 bits");
}

[[noreturn]] void unsupported_operands(const char* op, const Value& a, const Value& b) {
  runtime_error(std::string("TypeError: unsupported operand type(s) for ") + op + ": '" + type_name(a) + "' and '" +
                type_name(b) + "'");
}

bool is_intlike(const Value& v) { return v.is_int() || v.is_bool(); }

// CPython float_divmod.
void float_divmod(double vx, double wx, double* floordiv, double* mod) {
  if (wx == 0.0) runtime_error("ZeroDivisionError: float division by zero");
  double m = std::fmod(vx, wx);
  double div = (vx - m) / wx;
  if (m) {
    if ((wx < 0) != (m < 0)) {
      m += wx;
      div -= 1.0;
    }
  } else {
    m = std::copysign(0.0, wx);
  }
  double fd;
  if (div) {
    fd = std::floor(div);
    if (div - fd > 0.5) fd += 1.0;
  } else {
    fd = std::copysign(0.0, vx / wx);
  }
  *floordiv = fd;
  *mod = m;
}

int64_t int_floordiv(int64_t a, int64_t b) {
  if (b == 0) runtime_error("ZeroDivisionError: integer division or modulo by zero");
  if (a == std::numeric_limits<int64_t>::min() && b == -1) overflow();
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

int64_t int_mod(int64_t a, int64_t b) {
  if (b == 0) runtime_error("ZeroDivisionError: integer division or modulo by zero");
  if (b == -1) return 0;
  int64_t m = a % b;
  if (m != 0 && ((m < 0) != (b < 0))) m += b;
  return m;
}

Value repeat(const Value& seq, int64_t n) {
  if (n <= 0) return seq.is_string() ? Value::string("", seq.is_safe()) : Value::list(List{}, seq.is_tuple());
  if (seq.is_string()) {
    const std::string& s = seq.as_string();
    if (!s.empty() && static_cast<uint64_t>(n) > kMaxValueBytes / s.size()) {
      fail(StatusCode::kResourceExhausted, "string repetition result too large");
    }
    std::string out;
    out.reserve(s.size() * n);
    for (int64_t i = 0; i < n; ++i) out += s;
    return Value::string(std::move(out), seq.is_safe());
  }
  const List& l = seq.as_list();
  if (!l.empty() && static_cast<uint64_t>(n) > (kMaxValueBytes / 16) / l.size()) {
    fail(StatusCode::kResourceExhausted, "list repetition result too large");
  }
  List out;
  out.reserve(l.size() * n);
  for (int64_t i = 0; i < n; ++i) out.insert(out.end(), l.begin(), l.end());
  return Value::list(std::move(out), seq.is_tuple());
}

std::string unsafe_message(const Value& obj, std::string_view name) {
  return "access to attribute '" + std::string(name) + "' of '" + type_name(obj) + "' object is unsafe.";
}

// jinja2.utils.object_type_repr
std::string object_type_repr(const Value& obj) { return obj.is_none() ? "None" : type_name(obj) + " object"; }

Value no_attribute(const Value& obj, std::string_view name) {
  return Value::undefined(string_repr(object_type_repr(obj)) + " has no attribute " + string_repr(name));
}

Value no_element(const Value& obj, const Value& key) {
  return Value::undefined(object_type_repr(obj) + " has no element " + to_repr(key));
}

int64_t normalize_index(int64_t i, int64_t n) { return i < 0 ? i + n : i; }

Value loop_attribute(const Value& obj, std::string_view name) {
  const LoopState& l = obj.as_loop();
  const int64_t n = static_cast<int64_t>(l.items->size());
  const int64_t i = static_cast<int64_t>(l.index0);
  if (name == "index") return Value::integer(i + 1);
  if (name == "index0") return Value::integer(i);
  if (name == "revindex") return Value::integer(n - i);
  if (name == "revindex0") return Value::integer(n - i - 1);
  if (name == "first") return Value::boolean(i == 0);
  if (name == "last") return Value::boolean(i == n - 1);
  if (name == "length") return Value::integer(n);
  if (name == "depth") return Value::integer(1);
  if (name == "depth0") return Value::integer(0);
  if (name == "previtem") {
    if (i == 0) return Value::undefined("there is no previous item");
    return (*l.items)[i - 1];
  }
  if (name == "nextitem") {
    if (i + 1 >= n) return Value::undefined("there is no next item");
    return (*l.items)[i + 1];
  }
  if (auto m = method_attribute(obj, name)) return *m;
  return no_attribute(obj, name);
}

}  // namespace

bool truthy(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
    case Value::Kind::kNone:
      return false;
    case Value::Kind::kBool:
      return v.as_bool();
    case Value::Kind::kInt:
      return v.as_int() != 0;
    case Value::Kind::kFloat:
      return v.as_double() != 0.0;
    case Value::Kind::kString:
      return !v.as_string().empty();
    case Value::Kind::kList:
      return v.is_generator() || !v.as_list().empty();
    case Value::Kind::kDict:
      return v.as_dict().size() != 0;
    case Value::Kind::kNamespace:
    case Value::Kind::kCallable:
    case Value::Kind::kLoop:
      return true;
  }
  return false;
}

bool py_equal(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (is_intlike(a) && is_intlike(b)) return a.as_int() == b.as_int();
    return a.as_double() == b.as_double();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Value::Kind::kUndefined:
    case Value::Kind::kNone:
      return true;
    case Value::Kind::kString:
      return a.as_string() == b.as_string();
    case Value::Kind::kList: {
      if (a.seq() != b.seq()) return false;
      if (a.is_generator()) return a.same_object(b);
      const List& x = a.as_list();
      const List& y = b.as_list();
      if (x.size() != y.size()) return false;
      for (size_t i = 0; i < x.size(); ++i) {
        if (!py_equal(x[i], y[i])) return false;
      }
      return true;
    }
    case Value::Kind::kDict: {
      const Dict& x = a.as_dict();
      const Dict& y = b.as_dict();
      if (x.size() != y.size()) return false;
      for (const auto& [k, v] : x.items()) {
        const Value* o = y.find(k);
        if (!o || !py_equal(v, *o)) return false;
      }
      return true;
    }
    default:
      return a.same_object(b);
  }
}

int py_compare(const Value& a, const Value& b, const char* op) {
  if (a.is_undefined()) undefined_error(a);
  if (b.is_undefined()) undefined_error(b);
  if (a.is_number() && b.is_number()) {
    if (is_intlike(a) && is_intlike(b)) return a.as_int() < b.as_int() ? -1 : a.as_int() > b.as_int() ? 1 : 0;
    const double x = a.as_double(), y = b.as_double();
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a.is_string() && b.is_string()) {
    const int c = a.as_string().compare(b.as_string());
    return c < 0 ? -1 : c > 0 ? 1 : 0;
  }
  if (a.is_indexable_list() && b.is_indexable_list() && a.is_tuple() == b.is_tuple()) {
    const List& x = a.as_list();
    const List& y = b.as_list();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (!py_equal(x[i], y[i])) return py_compare(x[i], y[i], op);
    }
    return x.size() < y.size() ? -1 : x.size() > y.size() ? 1 : 0;
  }
  runtime_error(std::string("TypeError: '") + op + "' not supported between instances of '" + type_name(a) +
                "' and '" + type_name(b) + "'");
}

bool py_contains(const Value& container, const Value& item) {
  switch (container.kind()) {
    case Value::Kind::kUndefined:
      return false;
    case Value::Kind::kString:
      if (!item.is_string()) {
        runtime_error("TypeError: 'in <string>' requires string as left operand, not " + type_name(item));
      }
      return container.as_string().find(item.as_string()) != std::string::npos;
    case Value::Kind::kList:
      for (const Value& v : container.as_list()) {
        if (py_equal(v, item)) return true;
      }
      return false;
    case Value::Kind::kDict:
      if (item.is_list() && !item.is_tuple() && !item.is_generator()) {
        runtime_error("TypeError: unhashable type: '" + type_name(item) + "'");
      }
      if (item.is_dict()) runtime_error("TypeError: unhashable type: 'dict'");
      return container.as_dict().find(item) != nullptr;
    default:
      runtime_error("TypeError: argument of type '" + type_name(container) + "' is not iterable");
  }
}

List py_iterate(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return {};
    case Value::Kind::kList:
      return v.as_list();
    case Value::Kind::kDict: {
      List keys;
      keys.reserve(v.as_dict().size());
      for (const auto& kv : v.as_dict().items()) keys.push_back(kv.first);
      return keys;
    }
    case Value::Kind::kString: {
      List chars;
      const std::string& s = v.as_string();
      size_t pos = 0;
      while (pos < s.size()) {
        const size_t start = pos;
        utf8_next(s, pos);
        chars.push_back(Value::string(s.substr(start, pos - start)));
      }
      return chars;
    }
    default:
      runtime_error("TypeError: '" + type_name(v) + "' object is not iterable");
  }
}

size_t py_len(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return 0;
    case Value::Kind::kString:
      return utf8_length(v.as_string());
    case Value::Kind::kList:
      if (v.is_generator()) runtime_error("TypeError: object of type 'generator' has no len()");
      return v.as_list().size();
    case Value::Kind::kDict:
      return v.as_dict().size();
    case Value::Kind::kLoop:
      return v.as_loop().items->size();
    default:
      runtime_error("TypeError: object of type '" + type_name(v) + "' has no len()");
  }
}

Value binary_op(BinaryOp op, const Value& a, const Value& b) {
  if (a.is_undefined()) undefined_error(a);
  // str % Undefined formats it (str.__mod__ runs first); every other operator defers to Undefined's
  // reflected method, which raises.
  if (b.is_undefined() && !(op == BinaryOp::kMod && a.is_string())) undefined_error(b);
  const bool ints = is_intlike(a) && is_intlike(b);
  const bool nums = a.is_number() && b.is_number();
  switch (op) {
    case BinaryOp::kAdd: {
      if (ints) {
        int64_t r;
        if (__builtin_add_overflow(a.as_int(), b.as_int(), &r)) overflow();
        return Value::integer(r);
      }
      if (nums) return Value::number(a.as_double() + b.as_double());
      if (a.is_string() && b.is_string()) {
        // markupsafe: Markup + str escapes the str (and str + Markup, via Markup.__radd__).
        if (a.is_safe() || b.is_safe()) {
          std::string l = a.is_safe() ? a.as_string() : html_escape(a.as_string());
          std::string r = b.is_safe() ? b.as_string() : html_escape(b.as_string());
          return make_string(l + r, true);
        }
        if (a.as_string().size() + b.as_string().size() > kMaxValueBytes) {
          fail(StatusCode::kResourceExhausted, "string result too large");
        }
        return Value::string(a.as_string() + b.as_string());
      }
      if (a.is_indexable_list() && b.is_indexable_list() && a.is_tuple() == b.is_tuple()) {
        List out = a.as_list();
        out.insert(out.end(), b.as_list().begin(), b.as_list().end());
        return Value::list(std::move(out), a.is_tuple());
      }
      if (a.is_string()) {
        runtime_error("TypeError: can only concatenate str (not \"" + type_name(b) + "\") to str");
      }
      if (a.is_indexable_list()) {
        runtime_error("TypeError: can only concatenate " + type_name(a) + " (not \"" + type_name(b) + "\") to " +
                      type_name(a));
      }
      unsupported_operands("+", a, b);
    }
    case BinaryOp::kSub:
      if (ints) {
        int64_t r;
        if (__builtin_sub_overflow(a.as_int(), b.as_int(), &r)) overflow();
        return Value::integer(r);
      }
      if (nums) return Value::number(a.as_double() - b.as_double());
      unsupported_operands("-", a, b);
    case BinaryOp::kMul:
      if (ints) {
        int64_t r;
        if (__builtin_mul_overflow(a.as_int(), b.as_int(), &r)) overflow();
        return Value::integer(r);
      }
      if (nums) return Value::number(a.as_double() * b.as_double());
      if ((a.is_string() || a.is_indexable_list()) && is_intlike(b)) return repeat(a, b.as_int());
      if ((b.is_string() || b.is_indexable_list()) && is_intlike(a)) return repeat(b, a.as_int());
      if (a.is_string() || a.is_indexable_list() || b.is_string() || b.is_indexable_list()) {
        const Value& other = (a.is_string() || a.is_indexable_list()) ? b : a;
        runtime_error("TypeError: can't multiply sequence by non-int of type '" + type_name(other) + "'");
      }
      unsupported_operands("*", a, b);
    case BinaryOp::kDiv:
      if (nums) {
        if (b.as_double() == 0.0) runtime_error("ZeroDivisionError: division by zero");
        return Value::number(a.as_double() / b.as_double());
      }
      unsupported_operands("/", a, b);
    case BinaryOp::kFloorDiv:
      if (ints) return Value::integer(int_floordiv(a.as_int(), b.as_int()));
      if (nums) {
        double d, m;
        float_divmod(a.as_double(), b.as_double(), &d, &m);
        return Value::number(d);
      }
      unsupported_operands("//", a, b);
    case BinaryOp::kMod:
      if (ints) return Value::integer(int_mod(a.as_int(), b.as_int()));
      if (nums) {
        double d, m;
        float_divmod(a.as_double(), b.as_double(), &d, &m);
        return Value::number(m);
      }
      if (a.is_string()) {
        if (a.is_safe()) {
          // Markup % args escapes the arguments.
          auto esc = [](const Value& v) { return v.is_string() && !v.is_safe() ? Value::string(html_escape(v.as_string())) : v; };
          Value args = b;
          if (b.is_tuple()) {
            List l;
            for (const Value& v : b.as_list()) l.push_back(esc(v));
            args = Value::list(std::move(l), true);
          } else {
            args = esc(b);
          }
          return make_string(percent_format(a.as_string(), args), true);
        }
        return make_string(percent_format(a.as_string(), b));
      }
      unsupported_operands("%", a, b);
    case BinaryOp::kPow:
      if (ints && b.as_int() >= 0) {
        int64_t base = a.as_int(), e = b.as_int(), r = 1;
        while (e > 0) {
          if (e & 1) {
            if (__builtin_mul_overflow(r, base, &r)) overflow();
          }
          e >>= 1;
          if (e > 0 && __builtin_mul_overflow(base, base, &base)) overflow();
        }
        return Value::integer(r);
      }
      if (nums) {
        const double x = a.as_double(), y = b.as_double();
        if (x == 0.0 && y < 0) runtime_error("ZeroDivisionError: 0.0 cannot be raised to a negative power");
        if (x < 0 && y != std::floor(y)) unsupported("complex result of **");
        const double r = std::pow(x, y);
        if (std::isinf(r) && std::isfinite(x) && std::isfinite(y)) {
          fail(StatusCode::kOutOfRange, "OverflowError: (34, 'Numerical result out of range')");
        }
        return Value::number(r);
      }
      unsupported_operands("** or pow()", a, b);
  }
  return Value();
}

Value negate(const Value& v) {
  if (v.is_undefined()) undefined_error(v);
  if (is_intlike(v)) {
    if (v.as_int() == std::numeric_limits<int64_t>::min()) overflow();
    return Value::integer(-v.as_int());
  }
  if (v.is_float()) return Value::number(-v.as_double());
  runtime_error("TypeError: bad operand type for unary -: '" + type_name(v) + "'");
}

Value unary_plus(const Value& v) {
  if (v.is_undefined()) undefined_error(v);
  if (is_intlike(v)) return Value::integer(v.as_int());
  if (v.is_float()) return v;
  runtime_error("TypeError: bad operand type for unary +: '" + type_name(v) + "'");
}

void undefined_error(const Value& v) {
  const std::string m = v.undefined_message();
  // The sandbox's refusals are SecurityErrors in Jinja2.
  runtime_error((m.rfind("access to attribute", 0) == 0 ? "SecurityError: " : "UndefinedError: ") + m);
}

const Value& require_defined(const Value& v) {
  if (v.is_undefined()) undefined_error(v);
  return v;
}

Value py_getattr(const Value& obj, std::string_view name) {
  if (obj.is_undefined()) undefined_error(obj);
  if (name.size() >= 2 && name.substr(0, 2) == "__") return Value::undefined(unsafe_message(obj, name));
  switch (obj.kind()) {
    case Value::Kind::kDict: {
      if (auto m = method_attribute(obj, name)) return *m;
      if (const Value* v = obj.as_dict().find(name)) return *v;
      return no_attribute(obj, name);
    }
    case Value::Kind::kNamespace: {
      if (const Value* v = obj.as_namespace().find(name)) return *v;
      return no_attribute(obj, name);
    }
    case Value::Kind::kLoop:
      return loop_attribute(obj, name);
    default:
      if (auto m = method_attribute(obj, name)) return *m;
      return no_attribute(obj, name);
  }
}

Value py_getitem(const Value& obj, const Value& key) {
  if (obj.is_undefined()) undefined_error(obj);
  switch (obj.kind()) {
    case Value::Kind::kDict: {
      if (!key.is_dict() && !(key.is_list() && !key.is_tuple() && !key.is_generator())) {
        if (const Value* v = obj.as_dict().find(key)) return *v;
      }
      break;
    }
    case Value::Kind::kList:
      if (is_intlike(key) && obj.is_indexable_list()) {
        const List& l = obj.as_list();
        const int64_t i = normalize_index(key.as_int(), static_cast<int64_t>(l.size()));
        if (i >= 0 && i < static_cast<int64_t>(l.size())) return l[i];
        return no_element(obj, key);
      }
      break;
    case Value::Kind::kString:
      if (is_intlike(key)) {
        const std::string& s = obj.as_string();
        if (is_ascii(s)) {
          const int64_t i = normalize_index(key.as_int(), static_cast<int64_t>(s.size()));
          if (i >= 0 && i < static_cast<int64_t>(s.size())) return Value::string(std::string(1, s[i]));
        } else {
          const std::u32string u = utf8_decode(s);
          const int64_t i = normalize_index(key.as_int(), static_cast<int64_t>(u.size()));
          if (i >= 0 && i < static_cast<int64_t>(u.size())) return Value::string(utf8_encode(u.substr(i, 1)));
        }
        return no_element(obj, key);
      }
      break;
    default:
      break;
  }
  if (key.is_string()) {
    if (obj.is_dict()) {
      if (auto m = method_attribute(obj, key.as_string())) return *m;
      return no_attribute(obj, key.as_string());
    }
    return py_getattr(obj, key.as_string());
  }
  return no_element(obj, key);
}

Value py_slice(const Value& obj, const Value& start, const Value& stop, const Value& step) {
  if (obj.is_undefined()) undefined_error(obj);
  auto bound = [](const Value& v) -> std::optional<int64_t> {
    if (v.is_none() || v.is_undefined()) return std::nullopt;
    if (!is_intlike(v)) {
      runtime_error("TypeError: slice indices must be integers or None or have an __index__ method");
    }
    return v.as_int();
  };
  const std::optional<int64_t> b = bound(start), e = bound(stop), st = bound(step);
  const int64_t s = st.value_or(1);
  if (s == 0) runtime_error("ValueError: slice step cannot be zero");
  if (s == std::numeric_limits<int64_t>::min()) overflow();
  // Jinja2 compiles slices to plain Python subscripts (not environment.getitem): errors propagate.
  if (obj.is_dict()) runtime_error("TypeError: unhashable type: 'slice'");
  if (!obj.is_indexable_list() && !obj.is_string()) {
    runtime_error("TypeError: '" + type_name(obj) + "' object is not subscriptable");
  }
  std::u32string u;
  const bool ascii = obj.is_string() && is_ascii(obj.as_string());
  if (obj.is_string() && !ascii) u = utf8_decode(obj.as_string());
  const int64_t n = obj.is_list() ? static_cast<int64_t>(obj.as_list().size())
                                  : ascii ? static_cast<int64_t>(obj.as_string().size())
                                          : static_cast<int64_t>(u.size());
  // CPython PySlice_AdjustIndices.
  auto adjust = [&](std::optional<int64_t> v, bool is_start) -> int64_t {
    if (!v) return s > 0 ? (is_start ? 0 : n) : (is_start ? n - 1 : -1);
    int64_t x = *v;
    if (x < 0) {
      x += n;
      if (x < 0) x = s < 0 ? -1 : 0;
    } else if (x >= n) {
      x = s < 0 ? n - 1 : n;
    }
    return x;
  };
  const int64_t lo = adjust(b, true), hi = adjust(e, false);
  std::vector<int64_t> idx;
  if (s > 0) {
    for (int64_t i = lo; i < hi; i += s) idx.push_back(i);
  } else {
    for (int64_t i = lo; i > hi; i += s) idx.push_back(i);
  }
  if (obj.is_list()) {
    List out;
    out.reserve(idx.size());
    for (int64_t i : idx) out.push_back(obj.as_list()[i]);
    return Value::list(std::move(out), obj.is_tuple());
  }
  std::string out;
  if (ascii) {
    for (int64_t i : idx) out.push_back(obj.as_string()[i]);
  } else {
    for (int64_t i : idx) utf8_append(out, u[i]);
  }
  return Value::string(std::move(out));
}

std::string html_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

Value make_string(std::string s, bool safe) {
  if (s.size() > kMaxValueBytes) fail(StatusCode::kResourceExhausted, "string result too large");
  return Value::string(std::move(s), safe);
}

}  // namespace nc::chat::detail
