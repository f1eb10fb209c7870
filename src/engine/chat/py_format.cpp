#include "engine/chat/py_format.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "engine/chat/error.h"
#include "engine/chat/py_ops.h"
#include "engine/chat/utf8.h"

namespace nc::chat::detail {

namespace {

constexpr int kMaxReprDepth = 512;

const char* kHex = "0123456789abcdef";

void append_hex(std::string& out, uint32_t v, int digits) {
  for (int i = digits - 1; i >= 0; --i) out.push_back(kHex[(v >> (4 * i)) & 0xF]);
}

void check_depth(int depth) {
  if (depth > kMaxReprDepth) fail(StatusCode::kResourceExhausted, "value nested too deeply to print");
}

void repr_into(std::string& out, const Value& v, int depth);

void str_into(std::string& out, const Value& v, int depth) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return;
    case Value::Kind::kString:
      out += v.as_string();
      return;
    case Value::Kind::kNone:
    case Value::Kind::kBool:
    case Value::Kind::kInt:
    case Value::Kind::kFloat:
    case Value::Kind::kList:
    case Value::Kind::kDict:
    case Value::Kind::kNamespace:
    case Value::Kind::kCallable:
    case Value::Kind::kLoop:
      repr_into(out, v, depth);
      return;
  }
}

void repr_into(std::string& out, const Value& v, int depth) {
  check_depth(depth);
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      out += "Undefined";
      return;
    case Value::Kind::kNone:
      out += "None";
      return;
    case Value::Kind::kBool:
      out += v.as_bool() ? "True" : "False";
      return;
    case Value::Kind::kInt:
      out += std::to_string(v.as_int());
      return;
    case Value::Kind::kFloat:
      out += float_repr(v.as_double());
      return;
    case Value::Kind::kString:
      if (v.is_safe()) {
        out += "Markup(" + string_repr(v.as_string()) + ")";
      } else {
        out += string_repr(v.as_string());
      }
      return;
    case Value::Kind::kList: {
      const List& l = v.as_list();
      switch (v.seq()) {
        case Value::Seq::kGenerator:
          out += "<generator object>";
          return;
        case Value::Seq::kDictItems:
        case Value::Seq::kDictKeys:
        case Value::Seq::kDictValues:
          out += type_name(v) + "(";
          repr_into(out, Value::list(v.list_ptr()), depth + 1);
          out += ")";
          return;
        case Value::Seq::kList:
        case Value::Seq::kTuple:
          break;
      }
      out += v.is_tuple() ? '(' : '[';
      for (size_t i = 0; i < l.size(); ++i) {
        if (i) out += ", ";
        repr_into(out, l[i], depth + 1);
      }
      if (v.is_tuple() && l.size() == 1) out += ',';
      out += v.is_tuple() ? ')' : ']';
      return;
    }
    case Value::Kind::kDict: {
      out += '{';
      bool first = true;
      for (const auto& [k, val] : v.as_dict().items()) {
        if (!first) out += ", ";
        first = false;
        repr_into(out, k, depth + 1);
        out += ": ";
        repr_into(out, val, depth + 1);
      }
      out += '}';
      return;
    }
    case Value::Kind::kNamespace: {
      out += "<Namespace {";
      bool first = true;
      for (const auto& [k, val] : v.as_namespace().attrs()) {
        if (!first) out += ", ";
        first = false;
        out += string_repr(k);
        out += ": ";
        repr_into(out, val, depth + 1);
      }
      out += "}>";
      return;
    }
    case Value::Kind::kCallable:
      out += v.as_callable().repr();
      return;
    case Value::Kind::kLoop: {
      const LoopState& l = v.as_loop();
      out += "<LoopContext " + std::to_string(l.index0 + 1) + "/" + std::to_string(l.items->size()) + ">";
      return;
    }
  }
}

void json_string(std::string& out, std::string_view s, bool ensure_ascii) {
  out += '"';
  size_t pos = 0;
  while (pos < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[pos]);
    if (c >= 0x80) {
      if (!ensure_ascii) {
        out += static_cast<char>(c);
        ++pos;
        continue;
      }
      char32_t cp = utf8_next(s, pos);
      if (cp >= 0x10000) {
        cp -= 0x10000;
        out += "\\u";
        append_hex(out, 0xD800 + (cp >> 10), 4);
        out += "\\u";
        append_hex(out, 0xDC00 + (cp & 0x3FF), 4);
      } else {
        out += "\\u";
        append_hex(out, cp, 4);
      }
      continue;
    }
    ++pos;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20 || (c == 0x7F && ensure_ascii)) {
          out += "\\u";
          append_hex(out, c, 4);
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

std::string json_float(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d < 0 ? "-Infinity" : "Infinity";
  return float_repr(d);
}

std::string json_key(const Value& k) {
  switch (k.kind()) {
    case Value::Kind::kString: return k.as_string();
    case Value::Kind::kBool: return k.as_bool() ? "true" : "false";
    case Value::Kind::kInt: return std::to_string(k.as_int());
    case Value::Kind::kFloat: return json_float(k.as_double());
    case Value::Kind::kNone: return "null";
    default:
      runtime_error("TypeError: keys must be str, int, float, bool or None, not " + type_name(k));
  }
}

void json_into(std::string& out, const Value& v, const JsonDumpOptions& o, int level) {
  check_depth(level);
  switch (v.kind()) {
    case Value::Kind::kNone: out += "null"; return;
    case Value::Kind::kBool: out += v.as_bool() ? "true" : "false"; return;
    case Value::Kind::kInt: out += std::to_string(v.as_int()); return;
    case Value::Kind::kFloat: out += json_float(v.as_double()); return;
    case Value::Kind::kString: json_string(out, v.as_string(), o.ensure_ascii); return;
    case Value::Kind::kList: {
      if (!v.is_indexable_list()) {
        runtime_error("TypeError: Object of type " + type_name(v) + " is not JSON serializable");
      }
      const List& l = v.as_list();
      if (l.empty()) {
        out += "[]";
        return;
      }
      out += '[';
      std::string newline_indent;
      if (o.indent) {
        newline_indent = "\n";
        for (int i = 0; i <= level; ++i) newline_indent += *o.indent;
        out += newline_indent;
      }
      for (size_t i = 0; i < l.size(); ++i) {
        if (i) {
          out += o.item_separator;
          out += newline_indent;
        }
        json_into(out, l[i], o, level + 1);
      }
      if (o.indent) {
        out += '\n';
        for (int i = 0; i < level; ++i) out += *o.indent;
      }
      out += ']';
      return;
    }
    case Value::Kind::kDict: {
      const Dict& d = v.as_dict();
      if (d.size() == 0) {
        out += "{}";
        return;
      }
      std::vector<const std::pair<Value, Value>*> items;
      items.reserve(d.size());
      for (const auto& kv : d.items()) items.push_back(&kv);
      if (o.sort_keys) {
        std::stable_sort(items.begin(), items.end(), [](const auto* a, const auto* b) {
          return py_compare(a->first, b->first, "<") < 0;
        });
      }
      out += '{';
      std::string newline_indent;
      if (o.indent) {
        newline_indent = "\n";
        for (int i = 0; i <= level; ++i) newline_indent += *o.indent;
        out += newline_indent;
      }
      bool first = true;
      for (const auto* kv : items) {
        if (!first) {
          out += o.item_separator;
          out += newline_indent;
        }
        first = false;
        json_string(out, json_key(kv->first), o.ensure_ascii);
        out += o.key_separator;
        json_into(out, kv->second, o, level + 1);
      }
      if (o.indent) {
        out += '\n';
        for (int i = 0; i < level; ++i) out += *o.indent;
      }
      out += '}';
      return;
    }
    case Value::Kind::kUndefined:
    case Value::Kind::kNamespace:
    case Value::Kind::kCallable:
    case Value::Kind::kLoop:
      runtime_error("TypeError: Object of type " + type_name(v) + " is not JSON serializable");
  }
}

// ---- printf-style formatting ----

struct Spec {
  bool left = false, plus = false, space = false, alt = false, zero = false;
  int width = -1;
  int precision = -1;
};

std::string pad(std::string body, const Spec& s, bool numeric) {
  const size_t len = utf8_length(body);
  if (s.width < 0 || len >= static_cast<size_t>(s.width)) return body;
  const size_t n = static_cast<size_t>(s.width) - len;
  if (s.left) return body + std::string(n, ' ');
  if (s.zero && numeric) {
    size_t sign = (!body.empty() && (body[0] == '-' || body[0] == '+' || body[0] == ' ')) ? 1 : 0;
    if (body.size() > sign + 1 && body[sign] == '0' && (body[sign + 1] == 'x' || body[sign + 1] == 'X' ||
                                                          body[sign + 1] == 'o')) {
      sign += 2;
    }
    return body.substr(0, sign) + std::string(n, '0') + body.substr(sign);
  }
  return std::string(n, ' ') + body;
}

std::string int_digits(int64_t v, int base, bool upper) {
  if (v == 0) return "0";
  uint64_t u = v < 0 ? 0 - static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
  std::string d;
  while (u) {
    const int r = static_cast<int>(u % base);
    d.push_back(static_cast<char>(r < 10 ? '0' + r : (upper ? 'A' : 'a') + r - 10));
    u /= base;
  }
  std::reverse(d.begin(), d.end());
  return d;
}

int64_t to_int_for_format(const Value& v, char conv) {
  if (v.is_int() || v.is_bool()) return v.as_int();
  if (v.is_float()) {
    const double d = v.as_double();
    if (std::isnan(d) || std::isinf(d)) runtime_error("ValueError: cannot convert float to integer");
    if (conv == 'x' || conv == 'X' || conv == 'o') {
      runtime_error(std::string("TypeError: %") + conv + " format: an integer is required, not float");
    }
    if (std::fabs(d) >= 9.2e18) fail(StatusCode::kOutOfRange, "integer out of 64-bit range");
    return static_cast<int64_t>(d);
  }
  runtime_error(std::string("TypeError: %") + conv + " format: a real number is required, not " + type_name(v));
}

std::string format_c_double(double d, char conv, int precision, bool alt, bool plus, bool space) {
  if (std::isnan(d) || std::isinf(d)) {
    std::string s = std::isnan(d) ? "nan" : "inf";
    if (conv >= 'A' && conv <= 'Z') s = py_upper(s);
    if (std::signbit(d) && !std::isnan(d)) s = "-" + s;
    else if (plus) s = "+" + s;
    else if (space) s = " " + s;
    return s;
  }
  std::string f = "%";
  if (alt) f += '#';
  if (plus) f += '+';
  else if (space) f += ' ';
  f += '.';
  f += std::to_string(precision < 0 ? 6 : std::min(precision, 300));
  f += conv;
  char buf[512];
  std::snprintf(buf, sizeof buf, f.c_str(), d);
  return buf;
}

}  // namespace

std::string float_repr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d < 0 ? "-inf" : "inf";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string s(buf, res.ptr);
  std::string out;
  if (s[0] == '-') {
    out = "-";
    s.erase(0, 1);
  }
  const size_t epos = s.find('e');
  std::string digits;
  for (size_t i = 0; i < epos; ++i) {
    if (s[i] != '.') digits.push_back(s[i]);
  }
  const int exp = std::atoi(s.c_str() + epos + 1);
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  if (exp < -4 || exp >= 16) {
    out += digits[0];
    if (digits.size() > 1) out += "." + digits.substr(1);
    out += 'e';
    out += exp < 0 ? '-' : '+';
    const int a = std::abs(exp);
    if (a < 10) out += '0';
    out += std::to_string(a);
    return out;
  }
  const int decpt = exp + 1;
  if (decpt <= 0) {
    out += "0." + std::string(static_cast<size_t>(-decpt), '0') + digits;
  } else if (static_cast<size_t>(decpt) >= digits.size()) {
    out += digits + std::string(static_cast<size_t>(decpt) - digits.size(), '0') + ".0";
  } else {
    out += digits.substr(0, decpt) + "." + digits.substr(decpt);
  }
  return out;
}

std::string string_repr(std::string_view s) {
  const bool has_single = s.find('\'') != std::string_view::npos;
  const bool has_double = s.find('"') != std::string_view::npos;
  const char quote = (has_single && !has_double) ? '"' : '\'';
  std::string out;
  out.reserve(s.size() + 2);
  out += quote;
  size_t pos = 0;
  while (pos < s.size()) {
    const char32_t c = utf8_next(s, pos);
    if (c == static_cast<char32_t>(quote) || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c < 0x20 || c == 0x7F) {
      out += "\\x";
      append_hex(out, c, 2);
    } else if (c < 0x80 || py_isprintable(c)) {
      utf8_append(out, c);
    } else if (c < 0x100) {
      out += "\\x";
      append_hex(out, c, 2);
    } else if (c < 0x10000) {
      out += "\\u";
      append_hex(out, c, 4);
    } else {
      out += "\\U";
      append_hex(out, c, 8);
    }
  }
  out += quote;
  return out;
}

std::string to_str(const Value& v) {
  if (v.is_string()) return v.as_string();
  std::string out;
  str_into(out, v, 0);
  return out;
}

std::string to_repr(const Value& v) {
  std::string out;
  repr_into(out, v, 0);
  return out;
}

std::string type_name(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined: return "Undefined";
    case Value::Kind::kNone: return "NoneType";
    case Value::Kind::kBool: return "bool";
    case Value::Kind::kInt: return "int";
    case Value::Kind::kFloat: return "float";
    case Value::Kind::kString: return v.is_safe() ? "Markup" : "str";
    case Value::Kind::kList:
      switch (v.seq()) {
        case Value::Seq::kList: return "list";
        case Value::Seq::kTuple: return "tuple";
        case Value::Seq::kGenerator: return "generator";
        case Value::Seq::kDictItems: return "dict_items";
        case Value::Seq::kDictKeys: return "dict_keys";
        case Value::Seq::kDictValues: return "dict_values";
      }
      return "list";
    case Value::Kind::kDict: return "dict";
    case Value::Kind::kNamespace: return "Namespace";
    case Value::Kind::kCallable: return "function";
    case Value::Kind::kLoop: return "LoopContext";
  }
  return "object";
}

std::string json_dumps(const Value& v, const JsonDumpOptions& options) {
  std::string out;
  json_into(out, v, options, 0);
  return out;
}

std::string percent_format(std::string_view fmt, const Value& args) {
  std::vector<Value> list;
  const Dict* mapping = nullptr;
  bool exempt = false;  // Python skips the "not all arguments converted" check for mappings/lists
  if (args.is_tuple()) {
    list = args.as_list();
  } else {
    list.push_back(args);
    if (args.is_dict()) mapping = &args.as_dict();
    // Python treats any non-tuple with __getitem__ (other than str) as a mapping here.
    if (args.is_dict() || args.is_indexable_list() || args.is_undefined()) exempt = true;
  }
  size_t next = 0;
  bool used_mapping = false;
  auto take = [&]() -> const Value& {
    if (next >= list.size()) runtime_error("TypeError: not enough arguments for format string");
    return list[next++];
  };
  std::string out;
  size_t i = 0;
  while (i < fmt.size()) {
    const char ch = fmt[i];
    if (ch != '%') {
      out += ch;
      ++i;
      continue;
    }
    ++i;
    if (i >= fmt.size()) runtime_error("ValueError: incomplete format");
    Value keyed;
    bool has_key = false;
    if (fmt[i] == '(') {
      int depth = 1;
      size_t j = i + 1;
      while (j < fmt.size() && depth) {
        if (fmt[j] == '(') ++depth;
        if (fmt[j] == ')') --depth;
        ++j;
      }
      if (depth) runtime_error("ValueError: incomplete format key");
      if (!mapping) runtime_error("TypeError: format requires a mapping");
      const std::string key(fmt.substr(i + 1, j - i - 2));
      const Value* v = mapping->find(key);
      if (!v) runtime_error("KeyError: " + string_repr(key));
      keyed = *v;
      has_key = true;
      used_mapping = true;
      i = j;
    }
    Spec s;
    while (i < fmt.size() && std::strchr("-+ #0", fmt[i])) {
      switch (fmt[i]) {
        case '-': s.left = true; break;
        case '+': s.plus = true; break;
        case ' ': s.space = true; break;
        case '#': s.alt = true; break;
        case '0': s.zero = true; break;
        default: break;
      }
      ++i;
    }
    auto read_num = [&](int& target) {
      if (i < fmt.size() && fmt[i] == '*') {
        const Value& w = take();
        if (!w.is_int() && !w.is_bool()) runtime_error("TypeError: * wants int");
        target = static_cast<int>(std::clamp<int64_t>(w.as_int(), -100000, 100000));
        ++i;
        return;
      }
      int64_t n = -1;
      while (i < fmt.size() && fmt[i] >= '0' && fmt[i] <= '9') {
        n = (n < 0 ? 0 : n) * 10 + (fmt[i] - '0');
        if (n > 100000) fail(StatusCode::kResourceExhausted, "format width too large");
        ++i;
      }
      if (n >= 0) target = static_cast<int>(n);
    };
    read_num(s.width);
    if (s.width < 0 && s.width != -1) {
      s.left = true;
      s.width = -s.width;
    }
    if (i < fmt.size() && fmt[i] == '.') {
      ++i;
      s.precision = 0;
      read_num(s.precision);
      if (s.precision < 0) s.precision = 0;
    }
    while (i < fmt.size() && (fmt[i] == 'h' || fmt[i] == 'l' || fmt[i] == 'L')) ++i;
    if (i >= fmt.size()) runtime_error("ValueError: incomplete format");
    const char conv = fmt[i++];
    if (conv == '%') {
      out += '%';
      continue;
    }
    const Value& v = has_key ? keyed : take();
    switch (conv) {
      case 's':
      case 'r':
      case 'a': {
        std::string body = conv == 's' ? to_str(v) : to_repr(v);
        if (s.precision >= 0) {
          const std::u32string u = utf8_decode(body);
          if (u.size() > static_cast<size_t>(s.precision)) body = utf8_encode(u.substr(0, s.precision));
        }
        out += pad(body, s, false);
        break;
      }
      case 'd':
      case 'i':
      case 'u':
      case 'x':
      case 'X':
      case 'o': {
        const int64_t n = to_int_for_format(v, conv);
        const int base = (conv == 'x' || conv == 'X') ? 16 : conv == 'o' ? 8 : 10;
        std::string digits = int_digits(n, base, conv == 'X');
        if (s.precision >= 0 && digits.size() < static_cast<size_t>(s.precision)) {
          digits = std::string(s.precision - digits.size(), '0') + digits;
        }
        if (s.alt && base == 16) digits = (conv == 'X' ? "0X" : "0x") + digits;
        if (s.alt && base == 8) digits = "0o" + digits;
        std::string sign = n < 0 ? "-" : s.plus ? "+" : s.space ? " " : "";
        out += pad(sign + digits, s, true);
        break;
      }
      case 'e':
      case 'E':
      case 'f':
      case 'F':
      case 'g':
      case 'G': {
        if (!v.is_number()) {
          runtime_error(std::string("TypeError: must be real number, not ") + type_name(v));
        }
        out += pad(format_c_double(v.as_double(), conv, s.precision, s.alt, s.plus, s.space), s, true);
        break;
      }
      case 'c': {
        std::string body;
        if (v.is_int()) {
          if (v.as_int() < 0 || v.as_int() > 0x10FFFF) runtime_error("OverflowError: %c arg not in range");
          utf8_append(body, static_cast<char32_t>(v.as_int()));
        } else if (v.is_string() && utf8_length(v.as_string()) == 1) {
          body = v.as_string();
        } else {
          runtime_error("TypeError: %c requires int or char");
        }
        out += pad(body, s, false);
        break;
      }
      default:
        runtime_error(std::string("ValueError: unsupported format character '") + conv + "'");
    }
  }
  if (!used_mapping && !exempt && next < list.size()) {
    runtime_error("TypeError: not all arguments converted during string formatting");
  }
  return out;
}

std::string format_spec(const Value& v, std::string_view spec) {
  if (spec.empty()) return to_str(v);
  // [[fill]align][sign][#][0][width][grouping][.precision][type]
  size_t i = 0;
  std::string fill = " ";
  char align = 0;
  {
    size_t p = 0;
    if (!spec.empty()) {
      size_t q = 0;
      utf8_next(spec, q);
      if (q < spec.size() && std::strchr("<>=^", spec[q])) {
        fill = std::string(spec.substr(0, q));
        align = spec[q];
        i = q + 1;
      } else if (std::strchr("<>=^", spec[p])) {
        align = spec[p];
        i = 1;
      }
    }
  }
  char sign = '-';
  if (i < spec.size() && std::strchr("+- ", spec[i])) sign = spec[i++];
  bool alt = false;
  if (i < spec.size() && spec[i] == '#') {
    alt = true;
    ++i;
  }
  if (i < spec.size() && spec[i] == '0') {
    if (!align) {
      fill = "0";
      align = '=';
    }
    ++i;
  }
  int64_t width = -1;
  while (i < spec.size() && spec[i] >= '0' && spec[i] <= '9') {
    width = (width < 0 ? 0 : width) * 10 + (spec[i] - '0');
    if (width > 100000) fail(StatusCode::kResourceExhausted, "format width too large");
    ++i;
  }
  char grouping = 0;
  if (i < spec.size() && (spec[i] == ',' || spec[i] == '_')) grouping = spec[i++];
  int precision = -1;
  if (i < spec.size() && spec[i] == '.') {
    ++i;
    precision = 0;
    bool any = false;
    while (i < spec.size() && spec[i] >= '0' && spec[i] <= '9') {
      precision = precision * 10 + (spec[i] - '0');
      if (precision > 1000) fail(StatusCode::kResourceExhausted, "format precision too large");
      any = true;
      ++i;
    }
    if (!any) runtime_error("ValueError: Format specifier missing precision");
  }
  char type = 0;
  if (i < spec.size()) type = spec[i++];
  if (i != spec.size()) runtime_error("ValueError: Invalid format specifier");

  std::string body;
  bool numeric = false;
  if (v.is_string()) {
    if (type && type != 's') runtime_error(std::string("ValueError: Unknown format code '") + type + "' for object of type 'str'");
    if (sign != '-' || align == '=') runtime_error("ValueError: Sign not allowed in string format specifier");
    body = v.as_string();
    if (precision >= 0) {
      const std::u32string u = utf8_decode(body);
      if (u.size() > static_cast<size_t>(precision)) body = utf8_encode(u.substr(0, precision));
    }
    if (!align) align = '<';
  } else if ((v.is_int() || v.is_bool()) && (type == 0 || std::strchr("bcdoxXn", type))) {
    numeric = true;
    const int64_t n = v.as_int();
    if (type == 'c') {
      if (n < 0 || n > 0x10FFFF) runtime_error("OverflowError: %c arg not in range(0x110000)");
      utf8_append(body, static_cast<char32_t>(n));
    } else {
      const int base = type == 'b' ? 2 : type == 'o' ? 8 : (type == 'x' || type == 'X') ? 16 : 10;
      std::string digits = int_digits(n, base, type == 'X');
      if (grouping) {
        const int group = base == 10 ? 3 : 4;
        std::string g;
        int cnt = 0;
        for (size_t k = digits.size(); k-- > 0;) {
          if (cnt && cnt % group == 0) g.push_back(grouping);
          g.push_back(digits[k]);
          ++cnt;
        }
        std::reverse(g.begin(), g.end());
        digits = g;
      }
      if (alt && base != 10) digits = std::string("0") + (type == 'b' ? "b" : type == 'o' ? "o" : type == 'X' ? "X" : "x") + digits;
      body = (n < 0 ? "-" : sign == '+' ? "+" : sign == ' ' ? " " : "") + digits;
    }
    if (!align) align = '>';
  } else if (v.is_number() && (type == 0 || std::strchr("eEfFgG%", type))) {
    numeric = true;
    double d = v.as_double();
    if (type == 0 && precision < 0) {
      body = float_repr(d);
      if (d >= 0 && sign == '+') body = "+" + body;
      if (d >= 0 && sign == ' ') body = " " + body;
    } else {
      char t = type ? type : 'g';
      bool percent = false;
      if (t == '%') {
        percent = true;
        d *= 100;
        t = 'f';
      }
      body = format_c_double(d, t, precision < 0 ? 6 : precision, alt, sign == '+', sign == ' ');
      if (type == 0 && body.find_first_of(".e") == std::string::npos && std::isfinite(d)) body += ".0";
      if (percent) body += '%';
    }
    if (!align) align = '>';
  } else {
    runtime_error("TypeError: unsupported format string passed to " + type_name(v) + ".__format__");
  }
  const size_t len = utf8_length(body);
  if (width < 0 || len >= static_cast<size_t>(width)) return body;
  const size_t n = static_cast<size_t>(width) - len;
  auto fills = [&](size_t k) {
    std::string r;
    for (size_t j = 0; j < k; ++j) r += fill;
    return r;
  };
  switch (align) {
    case '<': return body + fills(n);
    case '^': return fills(n / 2) + body + fills(n - n / 2);
    case '=': {
      if (!numeric) return fills(n) + body;
      const size_t s = (!body.empty() && (body[0] == '-' || body[0] == '+' || body[0] == ' ')) ? 1 : 0;
      return body.substr(0, s) + fills(n) + body.substr(s);
    }
    default: return fills(n) + body;
  }
}

std::string str_format(std::string_view fmt, const CallArgs& args) {
  std::string out;
  size_t auto_index = 0;
  bool used_auto = false, used_manual = false;
  size_t i = 0;
  while (i < fmt.size()) {
    const char c = fmt[i];
    if (c == '}') {
      if (i + 1 < fmt.size() && fmt[i + 1] == '}') {
        out += '}';
        i += 2;
        continue;
      }
      runtime_error("ValueError: Single '}' encountered in format string");
    }
    if (c != '{') {
      out += c;
      ++i;
      continue;
    }
    if (i + 1 < fmt.size() && fmt[i + 1] == '{') {
      out += '{';
      i += 2;
      continue;
    }
    // Replacement field up to the matching '}'.
    size_t j = i + 1;
    int depth = 1;
    while (j < fmt.size()) {
      if (fmt[j] == '{') ++depth;
      if (fmt[j] == '}' && --depth == 0) break;
      ++j;
    }
    if (j >= fmt.size()) runtime_error("ValueError: expected '}' before end of string");
    std::string_view field = fmt.substr(i + 1, j - i - 1);
    i = j + 1;
    std::string_view spec;
    char conversion = 0;
    {
      size_t k = 0;
      int bracket = 0;
      for (; k < field.size(); ++k) {
        if (field[k] == '[') ++bracket;
        if (field[k] == ']') --bracket;
        if (bracket == 0 && (field[k] == '!' || field[k] == ':')) break;
      }
      std::string_view name = field.substr(0, k);
      if (k < field.size() && field[k] == '!') {
        if (k + 1 >= field.size()) runtime_error("ValueError: end of string while looking for conversion specifier");
        conversion = field[k + 1];
        k += 2;
        if (k < field.size() && field[k] != ':') runtime_error("ValueError: expected ':' after conversion specifier");
      }
      if (k < field.size() && field[k] == ':') spec = field.substr(k + 1);
      if (spec.find('{') != std::string_view::npos) unsupported("nested replacement field in str.format");
      // arg_name then .attr / [key] chain
      size_t e = 0;
      while (e < name.size() && name[e] != '.' && name[e] != '[') ++e;
      const std::string_view arg_name = name.substr(0, e);
      Value v;
      if (arg_name.empty()) {
        if (used_manual) runtime_error("ValueError: cannot switch from manual field specification to automatic field numbering");
        used_auto = true;
        if (auto_index >= args.args.size()) runtime_error("IndexError: Replacement index " + std::to_string(auto_index) + " out of range for positional args tuple");
        v = args.args[auto_index++];
      } else if (std::all_of(arg_name.begin(), arg_name.end(), [](char ch) { return ch >= '0' && ch <= '9'; })) {
        if (used_auto) runtime_error("ValueError: cannot switch from automatic field numbering to manual field specification");
        used_manual = true;
        size_t idx = 0;
        for (char ch : arg_name) {
          idx = idx * 10 + (ch - '0');
          if (idx > 1000000) break;
        }
        if (idx >= args.args.size()) runtime_error("IndexError: Replacement index " + std::string(arg_name) + " out of range for positional args tuple");
        v = args.args[idx];
      } else {
        bool found = false;
        for (const auto& [k2, val] : args.kwargs) {
          if (k2 == arg_name) {
            v = val;
            found = true;
          }
        }
        if (!found) runtime_error("KeyError: " + string_repr(arg_name));
      }
      while (e < name.size()) {
        if (name[e] == '.') {
          size_t f = e + 1;
          while (f < name.size() && name[f] != '.' && name[f] != '[') ++f;
          v = py_getattr(v, name.substr(e + 1, f - e - 1));
          e = f;
        } else {
          const size_t f = name.find(']', e);
          if (f == std::string_view::npos) runtime_error("ValueError: Missing ']' in format string");
          const std::string_view key = name.substr(e + 1, f - e - 1);
          Value kv;
          if (!key.empty() && std::all_of(key.begin(), key.end(), [](char ch) { return ch >= '0' && ch <= '9'; })) {
            kv = Value::integer(std::atoll(std::string(key).c_str()));
          } else {
            kv = Value::string(std::string(key));
          }
          v = py_getitem(v, kv);
          e = f + 1;
        }
        if (v.is_undefined()) runtime_error(v.undefined_message());
      }
      if (conversion == 'r' || conversion == 'a') {
        v = Value::string(to_repr(v));
      } else if (conversion == 's') {
        v = Value::string(to_str(v));
      } else if (conversion != 0) {
        runtime_error(std::string("ValueError: Unknown conversion specifier ") + conversion);
      }
      out += format_spec(v, spec);
    }
  }
  return out;
}

std::string py_strftime(std::string_view fmt, const std::tm& tm) {
  // Python handles %f, %z and %Z itself for datetime objects; the rest goes to the C library.
  std::string f;
  for (size_t i = 0; i < fmt.size(); ++i) {
    if (fmt[i] == '%' && i + 1 < fmt.size()) {
      const char c = fmt[i + 1];
      if (c == 'f') {
        f += "000000";
        ++i;
        continue;
      }
      if (c == 'z' || c == 'Z') {
        ++i;
        continue;
      }
      f += '%';
      f += c;
      ++i;
      continue;
    }
    if (fmt[i] == '\0') runtime_error("ValueError: embedded null character");
    f += fmt[i];
  }
  f += ' ';  // distinguishes an empty result from a too-small buffer
  std::string buf(f.size() * 4 + 64, '\0');
  for (int attempt = 0; attempt < 8; ++attempt) {
    const size_t n = std::strftime(buf.data(), buf.size(), f.c_str(), &tm);
    if (n > 0) {
      buf.resize(n - 1);
      return buf;
    }
    buf.resize(buf.size() * 4);
  }
  fail(StatusCode::kResourceExhausted, "strftime result too large");
}

}  // namespace nc::chat::detail
