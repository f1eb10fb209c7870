#include "engine/chat/filters.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "engine/chat/error.h"
#include "engine/chat/methods.h"
#include "engine/chat/parser.h"
#include "engine/chat/py_format.h"
#include "engine/chat/py_ops.h"
#include "engine/chat/utf8.h"

namespace nc::chat::detail {

ArgBinder::ArgBinder(std::string_view function, CallArgs& args, std::initializer_list<std::string_view> params,
                     bool allow_extra)
    : bound_(params.size()), given_(params.size(), false) {
  const std::vector<std::string_view> names(params);
  for (size_t i = 0; i < args.args.size(); ++i) {
    if (i < names.size()) {
      bound_[i] = args.args[i];
      given_[i] = true;
    } else if (allow_extra) {
      extra_.push_back(args.args[i]);
    } else {
      runtime_error("TypeError: " + std::string(function) + "() takes at most " + std::to_string(names.size()) +
                    " argument(s) (" + std::to_string(args.args.size()) + " given)");
    }
  }
  for (auto& [k, v] : args.kwargs) {
    const auto it = std::find(names.begin(), names.end(), k);
    if (it == names.end()) {
      runtime_error("TypeError: " + std::string(function) + "() got an unexpected keyword argument " + string_repr(k));
    }
    const size_t i = static_cast<size_t>(it - names.begin());
    if (given_[i]) {
      runtime_error("TypeError: " + std::string(function) + "() got multiple values for argument " + string_repr(k));
    }
    bound_[i] = v;
    given_[i] = true;
  }
}

namespace {

// soft_str: str() of anything, keeping a Markup string as is.
std::string soft_str(const Value& v) { return v.is_string() ? v.as_string() : to_str(v); }

bool arg_bool(const Value* v, bool dflt) { return v ? truthy(*v) : dflt; }

int64_t arg_int(const Value* v, int64_t dflt, const char* what) {
  if (!v) return dflt;
  if (v->is_int() || v->is_bool()) return v->as_int();
  runtime_error(std::string("TypeError: '") + type_name(*v) + "' object cannot be interpreted as an integer (" +
                what + ")");
}

// make_attrgetter / make_multi_attrgetter: "a.b.0" walks getitem with integer parts for digits.
std::vector<Value> attribute_parts(const Value& attribute) {
  std::vector<Value> parts;
  if (attribute.is_none() || attribute.is_undefined()) return parts;
  if (!attribute.is_string()) {
    parts.push_back(attribute);
    return parts;
  }
  for (const std::string& p : [&] {
         std::vector<std::string> out;
         const std::string& s = attribute.as_string();
         size_t start = 0;
         while (true) {
           const size_t dot = s.find('.', start);
           out.push_back(s.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
           if (dot == std::string::npos) break;
           start = dot + 1;
         }
         return out;
       }()) {
    const bool digits = !p.empty() && std::all_of(p.begin(), p.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (digits && p.size() < 18) {
      parts.push_back(Value::integer(std::stoll(p)));
    } else {
      parts.push_back(Value::string(p));
    }
  }
  return parts;
}

Value lower_if_string(const Value& v) { return v.is_string() ? Value::string(py_lower(v.as_string())) : v; }

Value get_attribute_path(const Value& item, const std::vector<Value>& parts, const Value* dflt) {
  Value v = item;
  for (const Value& p : parts) {
    v = py_getitem(v, p);
    if (dflt && !dflt->is_none() && v.is_undefined()) v = *dflt;
  }
  return v;
}

// A sort key: one value per comma-separated attribute (make_multi_attrgetter), lower-cased unless
// case-sensitive.
struct KeyFn {
  std::vector<std::vector<Value>> paths;
  bool ignore_case = true;
  Value operator()(const Value& item) const {
    List key;
    for (const auto& p : paths) {
      Value v = get_attribute_path(item, p, nullptr);
      key.push_back(ignore_case ? lower_if_string(v) : v);
    }
    return Value::list(std::move(key));
  }
};

KeyFn multi_key(const Value* attribute, bool case_sensitive) {
  KeyFn k;
  k.ignore_case = !case_sensitive;
  if (attribute && attribute->is_string()) {
    const std::string& s = attribute->as_string();
    size_t start = 0;
    while (true) {
      const size_t comma = s.find(',', start);
      k.paths.push_back(attribute_parts(Value::string(s.substr(start, comma == std::string::npos ? std::string::npos : comma - start))));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  } else {
    k.paths.push_back(attribute ? attribute_parts(*attribute) : std::vector<Value>{});
  }
  return k;
}

bool less_than(const Value& a, const Value& b) { return py_compare(a, b, "<") < 0; }

void check_hashable(const Value& v) {
  if ((v.is_list() && v.seq() != Value::Seq::kTuple && v.seq() != Value::Seq::kGenerator) || v.is_dict() ||
      v.is_namespace()) {
    runtime_error("TypeError: unhashable type: '" + type_name(v) + "'");
  }
  if (v.is_tuple()) {
    for (const Value& x : v.as_list()) check_hashable(x);
  }
}

// Python float(str).
std::optional<double> parse_py_float(std::string_view text) {
  const std::string_view s = py_strip(text, nullptr, true, true);
  std::string clean;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '_') {
      if (i == 0 || i + 1 >= s.size() || !std::isdigit(static_cast<unsigned char>(s[i - 1])) ||
          !std::isdigit(static_cast<unsigned char>(s[i + 1]))) {
        return std::nullopt;
      }
      continue;
    }
    if (static_cast<unsigned char>(c) >= 0x80) return std::nullopt;
    clean.push_back(c);
  }
  if (clean.empty()) return std::nullopt;
  std::string lower = py_lower(clean);
  size_t sign = (lower[0] == '+' || lower[0] == '-') ? 1 : 0;
  const std::string body = lower.substr(sign);
  if (body == "inf" || body == "infinity" || body == "nan") {
    double d = body == "nan" ? NAN : INFINITY;
    return lower[0] == '-' ? -d : d;
  }
  // Only digits, '.', exponent: reject hex floats and other strtod extensions.
  for (char c : body) {
    if (!std::isdigit(static_cast<unsigned char>(c)) && c != '.' && c != 'e' && c != '+' && c != '-') return std::nullopt;
  }
  char* end = nullptr;
  const double d = std::strtod(clean.c_str(), &end);
  if (end != clean.c_str() + clean.size()) return std::nullopt;
  if (!std::any_of(body.begin(), body.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) return std::nullopt;
  return d;
}

// Python int(str, base).
std::optional<int64_t> parse_py_int(std::string_view text, int64_t base) {
  std::string_view s = py_strip(text, nullptr, true, true);
  bool neg = false;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    neg = s[0] == '-';
    s.remove_prefix(1);
  }
  auto prefix_base = [&](char c) { c = static_cast<char>(std::tolower(c)); return c == 'x' ? 16 : c == 'o' ? 8 : c == 'b' ? 2 : 0; };
  bool had_prefix = false;
  if (s.size() >= 2 && s[0] == '0' && prefix_base(s[1])) {
    const int pb = prefix_base(s[1]);
    if (base == 0 || base == pb) {
      base = pb;
      s.remove_prefix(2);
      had_prefix = true;
    }
  }
  if (base == 0) {
    base = 10;
    if (s.size() > 1 && s[0] == '0' && s.find_first_not_of("0_") != std::string_view::npos) return std::nullopt;
  }
  if (base < 2 || base > 36 || s.empty()) return std::nullopt;
  uint64_t v = 0;
  bool prev_digit = had_prefix;  // "0x_1f" is valid
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '_') {
      if (!prev_digit || i + 1 >= s.size()) return std::nullopt;
      prev_digit = false;
      continue;
    }
    int d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'z') d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'Z') d = c - 'A' + 10;
    else return std::nullopt;
    if (d >= base) return std::nullopt;
    if (v > (UINT64_MAX - d) / static_cast<uint64_t>(base)) fail(StatusCode::kOutOfRange, "integer out of 64-bit range");
    v = v * base + d;
    prev_digit = true;
  }
  if (v > static_cast<uint64_t>(INT64_MAX)) fail(StatusCode::kOutOfRange, "integer out of 64-bit range");
  return neg ? -static_cast<int64_t>(v) : static_cast<int64_t>(v);
}

int64_t float_to_int(double d) {
  if (std::isinf(d)) runtime_error("OverflowError: cannot convert float infinity to integer");
  if (std::fabs(d) >= 9.2e18) fail(StatusCode::kOutOfRange, "integer out of 64-bit range");
  return static_cast<int64_t>(d);
}

// round(x, ndigits) for a float: correctly rounded, ties to even on the exact binary value.
double py_round(double x, int64_t ndigits) {
  if (!std::isfinite(x) || ndigits > 320) return x;
  if (ndigits >= 0) {
    char buf[512];
    std::snprintf(buf, sizeof buf, "%.*f", static_cast<int>(ndigits), x);
    return std::strtod(buf, nullptr);
  }
  if (ndigits < -330) return 0.0 * x;
  const double p = std::pow(10.0, static_cast<double>(-ndigits));
  return std::nearbyint(x / p) * p;
}

std::string url_quote(const std::string& s, bool for_qs) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '_' || c == '.' || c == '-' || c == '~' || (c == '/' && !for_qs)) {
      out.push_back(static_cast<char>(c));
    } else if (c == ' ' && for_qs) {
      out.push_back('+');
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::string striptags(const std::string& s) {
  // markupsafe: drop comments and tags, collapse whitespace, unescape the basic entities.
  std::string t;
  size_t i = 0;
  while (i < s.size()) {
    if (s.compare(i, 4, "<!--") == 0) {
      const size_t e = s.find("-->", i + 4);
      if (e == std::string::npos) {
        t.append(s, i, std::string::npos);
        break;
      }
      i = e + 3;
      continue;
    }
    if (s[i] == '<') {
      const size_t e = s.find('>', i + 1);
      if (e != std::string::npos) {
        i = e + 1;
        continue;
      }
    }
    t.push_back(s[i++]);
  }
  std::string collapsed;
  for (const std::string& w : split_whitespace(t, -1, false)) {  // ' '.join(t.split()), as Jinja2
    if (!collapsed.empty()) collapsed += ' ';
    collapsed += w;
  }
  std::string out;
  for (size_t k = 0; k < collapsed.size(); ++k) {
    if (collapsed[k] == '&') {
      static const std::pair<const char*, const char*> kEntities[] = {
          {"&amp;", "&"}, {"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&#39;", "'"}, {"&#34;", "\""}, {"&apos;", "'"}};
      bool done = false;
      for (const auto& [ent, rep] : kEntities) {
        if (collapsed.compare(k, std::strlen(ent), ent) == 0) {
          out += rep;
          k += std::strlen(ent) - 1;
          done = true;
          break;
        }
      }
      if (done) continue;
    }
    out.push_back(collapsed[k]);
  }
  return out;
}

// jinja2's do_title: split on runs of [-\s({\[<], upper-case the first char of each piece.
std::string jinja_title(const std::string& s) {
  auto is_sep = [](char32_t c) { return c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || py_isspace(c); };
  std::string out;
  size_t pos = 0;
  bool at_start = true;
  while (pos < s.size()) {
    const char32_t c = utf8_next(s, pos);
    if (is_sep(c)) {
      utf8_append(out, c);
      at_start = true;
      continue;
    }
    std::string one;
    utf8_append(one, c);
    out += at_start ? py_upper(one) : py_lower(one);
    at_start = false;
  }
  return out;
}

JsonDumpOptions tojson_options(ArgBinder& b) {
  JsonDumpOptions o;
  o.ensure_ascii = arg_bool(b.get(0), false);
  const Value* indent = b.get(1);
  if (indent && !indent->is_none()) {
    if (indent->is_string()) {
      o.indent = indent->as_string();
    } else if (indent->is_int() || indent->is_bool()) {
      o.indent = std::string(static_cast<size_t>(std::clamp<int64_t>(indent->as_int(), 0, 1000)), ' ');
    } else {
      runtime_error("TypeError: can't multiply sequence by non-int of type '" + type_name(*indent) + "'");
    }
    o.item_separator = ",";
  }
  const Value* sep = b.get(2);
  if (sep && !sep->is_none()) {
    const List parts = py_iterate(*sep);
    if (parts.size() != 2 || !parts[0].is_string() || !parts[1].is_string()) {
      runtime_error("ValueError: separators must be a (item_separator, key_separator) pair of str");
    }
    o.item_separator = parts[0].as_string();
    o.key_separator = parts[1].as_string();
  }
  o.sort_keys = arg_bool(b.get(3), false);
  return o;
}

List select_or_reject(Interpreter& in, const Value& value, CallArgs& args, bool select, bool lookup_attr,
                      const char* fname) {
  List out;
  if (!truthy(value)) return out;
  size_t off = 0;
  std::vector<Value> path;
  if (lookup_attr) {
    if (args.args.empty()) runtime_error("FilterArgumentError: Missing parameter for attribute name");
    path = attribute_parts(args.args[0]);
    off = 1;
  }
  std::optional<std::string> test;
  CallArgs test_args;
  if (args.args.size() > off) {
    if (!args.args[off].is_string()) runtime_error(std::string("TypeError: ") + fname + ": test name must be a string");
    test = args.args[off].as_string();
    test_args.args.assign(args.args.begin() + off + 1, args.args.end());
  }
  test_args.kwargs = args.kwargs;
  for (const Value& item : py_iterate(value)) {
    in.step();
    const Value subject = lookup_attr ? get_attribute_path(item, path, nullptr) : item;
    bool ok;
    if (test) {
      CallArgs a = test_args;
      ok = apply_test(in, *test, subject, a);
    } else {
      ok = truthy(subject);
    }
    if (ok == select) out.push_back(item);
  }
  return out;
}

}  // namespace

Value apply_filter(Interpreter& in, std::string_view name, const Value& input, CallArgs& args) {
  in.charge(input);
  const std::string n(name);
  const char* fn = n.c_str();
  if (n == "tojson") {
    // transformers: json.dumps(x, ensure_ascii=False, indent=indent, separators=separators, sort_keys=sort_keys)
    ArgBinder b(n, args, {"ensure_ascii", "indent", "separators", "sort_keys"});
    return make_string(json_dumps(input, tojson_options(b)));
  }
  if (n == "trim") {
    ArgBinder b(n, args, {"chars"});
    std::u32string chars;
    const bool has = b.get(0) && !b.get(0)->is_none();
    if (has) {
      if (!b.get(0)->is_string()) runtime_error("TypeError: strip arg must be None or str");
      chars = utf8_decode(b.get(0)->as_string());
    }
    const std::string s = soft_str(input);
    return Value::string(std::string(py_strip(s, has ? &chars : nullptr, true, true)), input.is_safe());
  }
  if (n == "upper" || n == "lower" || n == "capitalize" || n == "title" || n == "wordcount" || n == "string" ||
      n == "striptags" || n == "forceescape") {
    ArgBinder b(n, args, {});
    const std::string s = soft_str(input);
    if (n == "upper") return Value::string(py_upper(s));
    if (n == "lower") return Value::string(py_lower(s));
    if (n == "capitalize") return Value::string(py_capitalize(s));
    if (n == "title") return Value::string(jinja_title(s));
    if (n == "string") return input.is_string() ? input : Value::string(s);
    if (n == "striptags") return Value::string(striptags(s));
    if (n == "forceescape") return Value::string(html_escape(s), true);
    int64_t words = 0;
    bool in_word = false;
    size_t pos = 0;
    while (pos < s.size()) {
      const char32_t c = utf8_next(s, pos);
      const bool w = c == '_' || py_isalnum(c);
      if (w && !in_word) ++words;
      in_word = w;
    }
    return Value::integer(words);
  }
  if (n == "length" || n == "count") {
    ArgBinder b(n, args, {});
    return Value::integer(static_cast<int64_t>(py_len(input)));
  }
  if (n == "safe") {
    ArgBinder b(n, args, {});
    return Value::string(soft_str(input), true);
  }
  if (n == "escape" || n == "e") {
    ArgBinder b(n, args, {});
    if (input.is_safe()) return input;
    return make_string(html_escape(soft_str(input)), true);
  }
  if (n == "default" || n == "d") {
    ArgBinder b(n, args, {"default_value", "boolean"});
    if (input.is_undefined() || (arg_bool(b.get(1), false) && !truthy(input))) {
      return b.get(0) ? *b.get(0) : Value::string("");
    }
    return input;
  }
  if (n == "first" || n == "last") {
    ArgBinder b(n, args, {});
    if (input.is_dict() && n == "last") {
      if (input.as_dict().size() == 0) return Value::undefined("No last item, sequence was empty.");
      return input.as_dict().items().back().first;
    }
    if (n == "last" && input.is_generator()) runtime_error("TypeError: 'generator' object is not reversible");
    const List items = py_iterate(input);
    if (items.empty()) return Value::undefined(std::string("No ") + fn + " item, sequence was empty.");
    return n == "first" ? items.front() : items.back();
  }
  if (n == "join") {
    ArgBinder b(n, args, {"d", "attribute"});
    const std::string sep = b.get(0) ? to_str(*b.get(0)) : std::string();
    std::vector<Value> path;
    const bool by_attr = b.get(1) && !b.get(1)->is_none();
    if (by_attr) path = attribute_parts(*b.get(1));
    std::string out;
    bool first = true;
    for (const Value& item : py_iterate(input)) {
      if (!first) out += sep;
      first = false;
      const Value v = by_attr ? get_attribute_path(item, path, nullptr) : item;
      out += v.is_string() ? v.as_string() : to_str(v);
      if (out.size() > kMaxValueBytes) fail(StatusCode::kResourceExhausted, "string result too large");
    }
    return Value::string(std::move(out));
  }
  if (n == "items") {
    ArgBinder b(n, args, {});
    if (input.is_undefined()) return Value::list(List{});
    if (!input.is_dict()) runtime_error("TypeError: Can only get item pairs from a mapping.");
    List out;
    for (const auto& [k, v] : input.as_dict().items()) out.push_back(Value::list(List{k, v}, true));
    return Value::sequence(std::move(out), Value::Seq::kGenerator);
  }
  if (n == "list") {
    ArgBinder b(n, args, {});
    return Value::list(py_iterate(input));
  }
  if (n == "reverse") {
    ArgBinder b(n, args, {});
    if (input.is_string()) return py_slice(input, Value::none(), Value::none(), Value::integer(-1));
    if (!input.is_list() && !input.is_dict() && !input.is_undefined()) {
      runtime_error("FilterArgumentError: argument must be iterable");
    }
    List items = py_iterate(input);
    std::reverse(items.begin(), items.end());
    // reversed() gives an iterator; a generator is not reversible, so Jinja2 lists it instead.
    return input.is_generator() ? Value::list(std::move(items)) : Value::sequence(std::move(items), Value::Seq::kGenerator);
  }
  if (n == "int") {
    ArgBinder b(n, args, {"default", "base"});
    const Value dflt = b.get(0) ? *b.get(0) : Value::integer(0);
    if (input.is_undefined()) undefined_error(input);
    if (input.is_int() || input.is_bool()) return Value::integer(input.as_int());
    if (input.is_float()) {
      if (std::isnan(input.as_double())) return dflt;
      return Value::integer(float_to_int(input.as_double()));
    }
    if (input.is_string()) {
      const int64_t base = arg_int(b.get(1), 10, "base");
      if (base != 0 && (base < 2 || base > 36)) runtime_error("ValueError: int() base must be >= 2 and <= 36, or 0");
      if (auto v = parse_py_int(input.as_string(), base)) return Value::integer(*v);
      if (auto d = parse_py_float(input.as_string())) {
        if (std::isnan(*d)) return dflt;
        return Value::integer(float_to_int(*d));
      }
    }
    return dflt;
  }
  if (n == "float") {
    ArgBinder b(n, args, {"default"});
    if (input.is_undefined()) undefined_error(input);
    if (input.is_number()) return Value::number(input.as_double());
    if (input.is_string()) {
      if (auto d = parse_py_float(input.as_string())) return Value::number(*d);
    }
    return b.get(0) ? *b.get(0) : Value::number(0.0);
  }
  if (n == "abs") {
    ArgBinder b(n, args, {});
    if (input.is_int() || input.is_bool()) {
      if (input.as_int() == INT64_MIN) fail(StatusCode::kOutOfRange, "integer out of 64-bit range");
      return Value::integer(std::llabs(input.as_int()));
    }
    if (input.is_float()) return Value::number(std::fabs(input.as_double()));
    runtime_error("TypeError: bad operand type for abs(): '" + type_name(input) + "'");
  }
  if (n == "round") {
    ArgBinder b(n, args, {"precision", "method"});
    const int64_t precision = arg_int(b.get(0), 0, "precision");
    const std::string method = b.get(1) ? soft_str(*b.get(1)) : "common";
    if (method != "common" && method != "ceil" && method != "floor") {
      runtime_error("FilterArgumentError: method must be common, ceil or floor");
    }
    if (!input.is_number()) runtime_error("TypeError: type " + type_name(input) + " doesn't define __round__ method");
    if (method == "common") {
      if (input.is_float()) return Value::number(py_round(input.as_double(), precision));
      if (precision >= 0) return Value::integer(input.as_int());
      const double r = py_round(static_cast<double>(input.as_int()), precision);
      return Value::integer(static_cast<int64_t>(r));
    }
    const double scale = std::pow(10.0, static_cast<double>(precision));
    const double x = input.as_double() * scale;
    const double r = method == "ceil" ? std::ceil(x) : std::floor(x);
    return Value::number(r / scale);
  }
  if (n == "replace") {
    ArgBinder b(n, args, {"old", "new", "count"});
    if (!b.get(0) || !b.get(1)) runtime_error("TypeError: do_replace() missing required positional arguments");
    CallArgs m;
    m.args = {Value::string(soft_str(*b.get(0))), Value::string(soft_str(*b.get(1)))};
    if (b.get(2) && !b.get(2)->is_none()) m.args.push_back(*b.get(2));
    const Value s = Value::string(soft_str(input));
    return in.call(*method_attribute(s, "replace"), m);
  }
  if (n == "center") {
    ArgBinder b(n, args, {"width"});
    CallArgs m;
    m.args = {b.get(0) ? *b.get(0) : Value::integer(80)};
    return in.call(*method_attribute(Value::string(soft_str(input)), "center"), m);
  }
  if (n == "indent") {
    ArgBinder b(n, args, {"width", "first", "blank"});
    if (input.is_undefined()) undefined_error(input);
    if (input.is_indexable_list() && !input.is_tuple()) {
      runtime_error("AttributeError: 'list' object has no attribute 'splitlines'");
    }
    if (!input.is_string()) {
      runtime_error("TypeError: unsupported operand type(s) for +=: '" + type_name(input) + "' and 'str'");
    }
    std::string indention;
    if (b.get(0) && b.get(0)->is_string()) {
      indention = b.get(0)->as_string();
    } else {
      const int64_t w = arg_int(b.get(0), 4, "width");
      if (w > 10000) fail(StatusCode::kResourceExhausted, "indent width too large");
      indention = std::string(static_cast<size_t>(std::max<int64_t>(0, w)), ' ');
    }
    const std::vector<std::string> lines = py_splitlines(input.as_string() + "\n", false);
    std::string rv;
    if (arg_bool(b.get(2), false)) {
      for (size_t i = 0; i < lines.size(); ++i) {
        if (i) rv += "\n" + indention;
        rv += lines[i];
        if (rv.size() > kMaxValueBytes) fail(StatusCode::kResourceExhausted, "string result too large");
      }
    } else {
      rv = lines.empty() ? std::string() : lines[0];
      for (size_t i = 1; i < lines.size(); ++i) {
        rv += "\n";
        if (!lines[i].empty()) rv += indention;
        rv += lines[i];
        if (rv.size() > kMaxValueBytes) fail(StatusCode::kResourceExhausted, "string result too large");
      }
    }
    if (arg_bool(b.get(1), false)) rv = indention + rv;
    return Value::string(std::move(rv), input.is_safe());
  }
  if (n == "dictsort") {
    ArgBinder b(n, args, {"case_sensitive", "by", "reverse"});
    if (input.is_undefined()) undefined_error(input);
    if (!input.is_dict()) runtime_error("AttributeError: '" + type_name(input) + "' object has no attribute 'items'");
    const bool cs = arg_bool(b.get(0), false);
    const std::string by = b.get(1) ? soft_str(*b.get(1)) : "key";
    if (by != "key" && by != "value") runtime_error("FilterArgumentError: You can only sort by either \"key\" or \"value\"");
    const size_t pos = by == "key" ? 0 : 1;
    List items;
    for (const auto& [k, v] : input.as_dict().items()) items.push_back(Value::list(List{k, v}, true));
    auto key = [&](const Value& item) { return cs ? item.as_list()[pos] : lower_if_string(item.as_list()[pos]); };
    const bool rev = arg_bool(b.get(2), false);
    std::stable_sort(items.begin(), items.end(), [&](const Value& a, const Value& c) {
      return rev ? less_than(key(c), key(a)) : less_than(key(a), key(c));
    });
    return Value::list(std::move(items));
  }
  if (n == "sort") {
    ArgBinder b(n, args, {"reverse", "case_sensitive", "attribute"});
    const KeyFn key = multi_key(b.get(2) && !b.get(2)->is_none() ? b.get(2) : nullptr, arg_bool(b.get(1), false));
    List items = py_iterate(input);
    std::vector<std::pair<Value, size_t>> keyed;
    for (size_t i = 0; i < items.size(); ++i) keyed.emplace_back(key(items[i]), i);
    const bool rev = arg_bool(b.get(0), false);
    in.step(items.size());
    std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& a, const auto& c) {
      return rev ? less_than(c.first, a.first) : less_than(a.first, c.first);
    });
    List out;
    for (const auto& [k, i] : keyed) out.push_back(items[i]);
    return Value::list(std::move(out));
  }
  if (n == "unique") {
    ArgBinder b(n, args, {"case_sensitive", "attribute"});
    const bool cs = arg_bool(b.get(0), false);
    std::vector<Value> path;
    if (b.get(1) && !b.get(1)->is_none()) path = attribute_parts(*b.get(1));
    List out;
    List seen;
    for (const Value& item : py_iterate(input)) {
      in.step();
      Value k = get_attribute_path(item, path, nullptr);
      if (!cs) k = lower_if_string(k);
      check_hashable(k);
      in.step(seen.size() / 4);
      if (std::none_of(seen.begin(), seen.end(), [&](const Value& s) { return py_equal(s, k); })) {
        seen.push_back(k);
        out.push_back(item);
      }
    }
    return Value::sequence(std::move(out), Value::Seq::kGenerator);
  }
  if (n == "min" || n == "max") {
    ArgBinder b(n, args, {"case_sensitive", "attribute"});
    const List items = py_iterate(input);
    in.step(items.size());
    if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
    const bool cs = arg_bool(b.get(0), false);
    std::vector<Value> path;
    if (b.get(1) && !b.get(1)->is_none()) path = attribute_parts(*b.get(1));
    auto key = [&](const Value& v) {
      Value k = get_attribute_path(v, path, nullptr);
      return cs ? k : lower_if_string(k);
    };
    size_t best = 0;
    Value best_key = key(items[0]);
    for (size_t i = 1; i < items.size(); ++i) {
      Value k = key(items[i]);
      if (n == "min" ? less_than(k, best_key) : less_than(best_key, k)) {
        best = i;
        best_key = k;
      }
    }
    return items[best];
  }
  if (n == "sum") {
    ArgBinder b(n, args, {"attribute", "start"});
    Value total = b.get(1) ? *b.get(1) : Value::integer(0);
    std::vector<Value> path;
    const bool by_attr = b.get(0) && !b.get(0)->is_none();
    if (by_attr) path = attribute_parts(*b.get(0));
    if (total.is_string()) runtime_error("TypeError: sum() can't sum strings [use ''.join(seq) instead]");
    for (const Value& item : py_iterate(input)) {
      in.step();
      total = binary_op(BinaryOp::kAdd, total, by_attr ? get_attribute_path(item, path, nullptr) : item);
    }
    return total;
  }
  if (n == "map") {
    List out;
    if (!truthy(input)) return Value::sequence(std::move(out), Value::Seq::kGenerator);
    const List items = py_iterate(input);
    if (args.args.empty()) {
      const Value* attribute = nullptr;
      const Value* dflt = nullptr;
      for (const auto& [k, v] : args.kwargs) {
        if (k == "attribute") attribute = &v;
        else if (k == "default") dflt = &v;
        else runtime_error("FilterArgumentError: Unexpected keyword argument " + string_repr(k));
      }
      if (!attribute) runtime_error("FilterArgumentError: map requires a filter argument");
      const std::vector<Value> path = attribute_parts(*attribute);
      for (const Value& item : items) {
        in.step();
        out.push_back(get_attribute_path(item, path, dflt));
      }
      return Value::sequence(std::move(out), Value::Seq::kGenerator);
    }
    if (!args.args[0].is_string()) runtime_error("TypeError: map: filter name must be a string");
    const std::string filter = args.args[0].as_string();
    CallArgs rest;
    rest.args.assign(args.args.begin() + 1, args.args.end());
    rest.kwargs = args.kwargs;
    if (!is_known_filter(filter)) {
      if (is_jinja_filter(filter)) unsupported("filter '" + filter + "'");
      runtime_error("TemplateRuntimeError: No filter named " + string_repr(filter) + ".");
    }
    for (const Value& item : items) {
      in.step();
      CallArgs a = rest;
      out.push_back(apply_filter(in, filter, item, a));
    }
    return Value::sequence(std::move(out), Value::Seq::kGenerator);
  }
  if (n == "select" || n == "reject" || n == "selectattr" || n == "rejectattr") {
    return Value::sequence(select_or_reject(in, input, args, n == "select" || n == "selectattr",
                                            n == "selectattr" || n == "rejectattr", fn),
                           Value::Seq::kGenerator);
  }
  if (n == "batch" || n == "slice") {
    ArgBinder b(n, args, {n == "batch" ? "linecount" : "slices", "fill_with"});
    if (!b.get(0)) runtime_error(std::string("TypeError: ") + fn + "() missing 1 required positional argument");
    const int64_t count = arg_int(b.get(0), 0, fn);
    const Value* fill = b.get(1) && !b.get(1)->is_none() ? b.get(1) : nullptr;
    const List items = py_iterate(input);
    List out;
    if (n == "batch") {
      if (count <= 0) runtime_error("ValueError: batch size must be positive");
      for (size_t i = 0; i < items.size(); i += count) {
        List chunk(items.begin() + i, items.begin() + std::min<size_t>(items.size(), i + count));
        if (fill) {
          if (count > 100000) fail(StatusCode::kResourceExhausted, "batch too large");
          while (static_cast<int64_t>(chunk.size()) < count) chunk.push_back(*fill);
        }
        out.push_back(Value::list(std::move(chunk)));
      }
    } else {
      if (count <= 0) runtime_error("ZeroDivisionError: integer division or modulo by zero");
      if (count > 100000) fail(StatusCode::kResourceExhausted, "too many slices");
      const int64_t length = static_cast<int64_t>(items.size());
      const int64_t per = length / count, extra = length % count;
      int64_t offset = 0;
      for (int64_t k = 0; k < count; ++k) {
        const int64_t start = offset + k * per;
        if (k < extra) ++offset;
        const int64_t end = offset + (k + 1) * per;
        List chunk(items.begin() + start, items.begin() + end);
        if (fill && k >= extra) chunk.push_back(*fill);
        out.push_back(Value::list(std::move(chunk)));
      }
    }
    return Value::sequence(std::move(out), Value::Seq::kGenerator);
  }
  if (n == "groupby") {
    ArgBinder b(n, args, {"attribute", "default", "case_sensitive"});
    if (!b.get(0)) runtime_error("TypeError: groupby() missing 1 required positional argument: 'attribute'");
    const std::vector<Value> path = attribute_parts(*b.get(0));
    const bool cs = arg_bool(b.get(2), false);
    const Value* dflt = b.get(1);
    List items = py_iterate(input);
    in.step(items.size() * 2);
    auto key = [&](const Value& v) {
      const Value k = get_attribute_path(v, path, dflt);
      return cs ? k : lower_if_string(k);
    };
    std::stable_sort(items.begin(), items.end(), [&](const Value& a, const Value& c) { return less_than(key(a), key(c)); });
    List out;
    for (size_t i = 0; i < items.size();) {
      const Value k = key(items[i]);
      List group;
      size_t j = i;
      while (j < items.size() && py_equal(key(items[j]), k)) group.push_back(items[j++]);
      const Value grouper = cs ? k : get_attribute_path(items[i], path, dflt);
      out.push_back(Value::list(List{grouper, Value::list(std::move(group))}, true));
      i = j;
    }
    return Value::list(std::move(out));
  }
  if (n == "attr") {
    ArgBinder b(n, args, {"name"});
    if (input.is_undefined()) undefined_error(input);
    if (!b.get(0) || !b.get(0)->is_string()) runtime_error("TypeError: attribute name must be string");
    const std::string& a = b.get(0)->as_string();
    if (input.is_namespace() || input.is_loop()) return py_getattr(input, a);
    if (auto m = method_attribute(input, a)) return *m;
    return Value::undefined(string_repr(input.is_none() ? "None" : type_name(input) + " object") + " has no attribute " +
                            string_repr(a));
  }
  if (n == "format") {
    if (!args.args.empty() && !args.kwargs.empty()) {
      runtime_error("FilterArgumentError: can't handle positional and keyword arguments at the same time");
    }
    Value fmt_args;
    if (!args.kwargs.empty()) {
      Dict d;
      for (const auto& [k, v] : args.kwargs) d.set(Value::string(k), v);
      fmt_args = Value::dict(std::move(d));
    } else {
      fmt_args = Value::list(args.args, true);
    }
    return binary_op(BinaryOp::kMod, Value::string(soft_str(input), input.is_safe()), fmt_args);
  }
  if (n == "truncate") {
    ArgBinder b(n, args, {"length", "killwords", "end", "leeway"});
    const int64_t length = arg_int(b.get(0), 255, "length");
    const std::string end = b.get(2) ? soft_str(*b.get(2)) : "...";
    const int64_t leeway = arg_int(b.get(3) && !b.get(3)->is_none() ? b.get(3) : nullptr, 5, "leeway");
    const int64_t end_len = static_cast<int64_t>(utf8_length(end));
    if (length < end_len) runtime_error("AssertionError: expected length >= " + std::to_string(end_len));
    if (leeway < 0) runtime_error("AssertionError: expected leeway >= 0");
    if (input.is_undefined()) return input;
    if (!input.is_string()) {
      if (static_cast<int64_t>(py_len(input)) <= length + leeway) return input;
      runtime_error("TypeError: can only concatenate " + type_name(input) + " (not \"str\") to " + type_name(input));
    }
    const std::string& s = input.as_string();
    if (static_cast<int64_t>(utf8_length(s)) <= length + leeway) return input;
    const Value head = py_slice(input, Value::none(), Value::integer(length - end_len), Value::none());
    if (arg_bool(b.get(1), false)) return Value::string(head.as_string() + end);
    const std::string& h = head.as_string();
    const size_t sp = h.rfind(' ');
    return Value::string((sp == std::string::npos ? h : h.substr(0, sp)) + end);
  }
  if (n == "urlencode") {
    ArgBinder b(n, args, {});
    if (input.is_string() || !(input.is_list() || input.is_dict())) return Value::string(url_quote(soft_str(input), false));
    List pairs;
    if (input.is_dict()) {
      for (const auto& [k, v] : input.as_dict().items()) pairs.push_back(Value::list(List{k, v}, true));
    } else {
      pairs = py_iterate(input);
    }
    std::string out;
    for (const Value& p : pairs) {
      const List kv = py_iterate(p);
      if (kv.size() != 2) runtime_error("ValueError: urlencode expects (key, value) pairs");
      if (!out.empty()) out += '&';
      out += url_quote(soft_str(kv[0]), true) + "=" + url_quote(soft_str(kv[1]), true);
    }
    return Value::string(std::move(out));
  }
  if (is_jinja_filter(n)) unsupported("filter '" + n + "'");
  runtime_error("TemplateRuntimeError: No filter named " + string_repr(n) + " found.");
}

bool apply_test(Interpreter& in, std::string_view name, const Value& v, CallArgs& args) {
  in.charge(v);
  const std::string n(name);
  auto one_arg = [&]() -> Value {
    ArgBinder b(n, args, {"other"});
    if (!b.get(0)) runtime_error("TypeError: test_" + n + "() missing 1 required positional argument");
    return *b.get(0);
  };
  auto no_args = [&]() { ArgBinder b(n, args, {}); };
  if (n == "defined") return no_args(), !v.is_undefined();
  if (n == "undefined") return no_args(), v.is_undefined();
  if (n == "none") return no_args(), v.is_none();
  if (n == "boolean") return no_args(), v.is_bool();
  if (n == "false") return no_args(), v.is_bool() && !v.as_bool();
  if (n == "true") return no_args(), v.is_bool() && v.as_bool();
  if (n == "integer") return no_args(), v.is_int();
  if (n == "float") return no_args(), v.is_float();
  if (n == "number") return no_args(), v.is_number();
  if (n == "string") return no_args(), v.is_string();
  if (n == "mapping") return no_args(), v.is_dict();
  if (n == "escaped") return no_args(), v.is_safe();
  if (n == "callable") return no_args(), v.is_callable() || v.is_undefined() || v.is_loop();
  if (n == "iterable") {
    no_args();
    return v.is_undefined() || v.is_string() || v.is_list() || v.is_dict() || v.is_loop();
  }
  if (n == "sequence") {
    no_args();
    return v.is_undefined() || v.is_string() || v.is_indexable_list() || v.is_dict();
  }
  if (n == "lower" || n == "upper") {
    no_args();
    CallArgs none;
    return truthy(in.call(*method_attribute(Value::string(to_str(v)), n == "lower" ? "islower" : "isupper"), none));
  }
  if (n == "odd" || n == "even") {
    no_args();
    const Value r = binary_op(BinaryOp::kMod, v, Value::integer(2));
    return py_equal(r, Value::integer(n == "odd" ? 1 : 0));
  }
  if (n == "divisibleby") {
    const Value num = one_arg();
    return py_equal(binary_op(BinaryOp::kMod, v, num), Value::integer(0));
  }
  if (n == "eq" || n == "equalto" || n == "==") return py_equal(v, one_arg());
  if (n == "ne" || n == "!=") return !py_equal(v, one_arg());
  if (n == "lt" || n == "lessthan" || n == "<") return py_compare(v, one_arg(), "<") < 0;
  if (n == "le" || n == "<=") return py_compare(v, one_arg(), "<=") <= 0;
  if (n == "gt" || n == "greaterthan" || n == ">") return py_compare(v, one_arg(), ">") > 0;
  if (n == "ge" || n == ">=") return py_compare(v, one_arg(), ">=") >= 0;
  if (n == "in") return py_contains(one_arg(), v);
  if (n == "sameas") {
    const Value o = one_arg();
    if (v.is_string() && o.is_string()) return v.as_string() == o.as_string();
    return v.same_object(o);
  }
  if (n == "filter") return no_args(), v.is_string() && is_jinja_filter(v.as_string());
  if (n == "test") return no_args(), v.is_string() && is_jinja_test(v.as_string());
  runtime_error("TemplateRuntimeError: No test named " + string_repr(n) + " found.");
}

}  // namespace nc::chat::detail
