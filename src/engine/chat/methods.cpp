#include "engine/chat/methods.h"

#include <algorithm>
#include <set>

#include "engine/chat/error.h"
#include "engine/chat/filters.h"
#include "engine/chat/interpreter.h"
#include "engine/chat/py_format.h"
#include "engine/chat/py_ops.h"
#include "engine/chat/utf8.h"

namespace nc::chat::detail {

namespace {

using NameSet = std::set<std::string, std::less<>>;

const NameSet kStrMethods = {
    "capitalize", "casefold", "center", "count", "encode", "endswith", "expandtabs", "find", "format",
    "format_map", "index", "isalnum", "isalpha", "isascii", "isdecimal", "isdigit", "isidentifier", "islower",
    "isnumeric", "isprintable", "isspace", "istitle", "isupper", "join", "ljust", "lower", "lstrip", "maketrans",
    "partition", "removeprefix", "removesuffix", "replace", "rfind", "rindex", "rjust", "rpartition", "rsplit",
    "rstrip", "split", "splitlines", "startswith", "strip", "swapcase", "title", "translate", "upper", "zfill"};
const NameSet kDictMethods = {"clear", "copy", "fromkeys", "get", "items", "keys",
                              "pop", "popitem", "setdefault", "update", "values"};
const NameSet kDictMutators = {"clear", "pop", "popitem", "setdefault", "update"};
const NameSet kListMethods = {"append", "clear", "copy", "count", "extend", "index",
                              "insert", "pop", "remove", "reverse", "sort"};
const NameSet kListMutators = {"append", "clear", "extend", "insert", "pop", "remove", "reverse", "sort"};
const NameSet kTupleMethods = {"count", "index"};
const NameSet kLoopMethods = {"cycle", "changed"};

class BoundMethod : public Callable {
 public:
  BoundMethod(Value self, std::string name) : self_(std::move(self)), name_(std::move(name)) {}
  Value call(Interpreter& in, CallArgs& args) const override;
  std::string repr() const override {
    return "<built-in method " + name_ + " of " + type_name(self_) + " object>";
  }

 private:
  Value call_str(Interpreter& in, CallArgs& args) const;
  Value call_dict(CallArgs& args) const;
  Value call_list(CallArgs& args) const;
  Value call_loop(CallArgs& args) const;

  Value self_;
  std::string name_;
};

const std::string& str_arg(const Value* v, const char* method, const char* what = "argument") {
  if (!v || !v->is_string()) {
    runtime_error(std::string("TypeError: ") + method + "() " + what + " must be str, not " +
                  (v ? type_name(*v) : std::string("NoneType")));
  }
  return v->as_string();
}

int64_t int_arg(const Value* v, const char* method) {
  if (!v->is_int() && !v->is_bool()) {
    runtime_error(std::string("TypeError: '") + type_name(*v) + "' object cannot be interpreted as an integer (in " +
                  method + ")");
  }
  return v->as_int();
}

// Python's slice-style clamp of optional [start, end) arguments over n code points.
void clamp_range(const Value* start, const Value* end, int64_t n, int64_t* lo, int64_t* hi) {
  auto conv = [&](const Value* v, int64_t dflt) {
    if (!v || v->is_none()) return dflt;
    int64_t x = int_arg(v, "slice");
    if (x < 0) x = std::max<int64_t>(0, x + n);
    return std::min(x, n);
  };
  *lo = conv(start, 0);
  *hi = conv(end, n);
}


std::vector<std::string> split_sep(std::string_view s, std::string_view sep, int64_t maxsplit, bool from_right) {
  if (sep.empty()) runtime_error("ValueError: empty separator");
  std::vector<std::string> out;
  if (!from_right) {
    size_t pos = 0;
    while (maxsplit < 0 || static_cast<int64_t>(out.size()) < maxsplit) {
      const size_t f = s.find(sep, pos);
      if (f == std::string_view::npos) break;
      out.emplace_back(s.substr(pos, f - pos));
      pos = f + sep.size();
    }
    out.emplace_back(s.substr(pos));
    return out;
  }
  size_t end = s.size();
  while (maxsplit < 0 || static_cast<int64_t>(out.size()) < maxsplit) {
    if (end < sep.size()) break;
    const size_t f = s.rfind(sep, end - sep.size());
    if (f == std::string_view::npos) break;
    out.emplace_back(s.substr(f + sep.size(), end - f - sep.size()));
    end = f;
  }
  out.emplace_back(s.substr(0, end));
  std::reverse(out.begin(), out.end());
  return out;
}

Value string_list(std::vector<std::string> parts) {
  List l;
  l.reserve(parts.size());
  for (auto& p : parts) l.push_back(Value::string(std::move(p)));
  return Value::list(std::move(l));
}

// Code-point offsets -> byte offsets for find/count with start/end.
size_t byte_offset(std::string_view s, int64_t cp) {
  size_t pos = 0;
  for (int64_t i = 0; i < cp && pos < s.size(); ++i) utf8_next(s, pos);
  return pos;
}

template <typename Pred>
bool all_chars(std::string_view s, Pred pred) {
  if (s.empty()) return false;
  size_t pos = 0;
  while (pos < s.size()) {
    if (!pred(utf8_next(s, pos))) return false;
  }
  return true;
}

std::string pad_to(std::string_view s, int64_t width, std::string_view fill, char align) {
  const int64_t len = static_cast<int64_t>(utf8_length(s));
  if (width <= len) return std::string(s);
  if (width > static_cast<int64_t>(kMaxValueBytes)) fail(StatusCode::kResourceExhausted, "padded string too large");
  const int64_t n = width - len;
  auto fills = [&](int64_t k) {
    std::string r;
    for (int64_t i = 0; i < k; ++i) r += fill;
    return r;
  };
  if (align == '<') return std::string(s) + fills(n);
  if (align == '>') return fills(n) + std::string(s);
  // str.center: extra padding goes left when n and width are both odd (CPython's rule).
  const int64_t left = n / 2 + (n & width & 1);
  return fills(left) + std::string(s) + fills(n - left);
}

Value BoundMethod::call(Interpreter& in, CallArgs& args) const {
  in.charge(self_);
  switch (self_.kind()) {
    case Value::Kind::kString: return call_str(in, args);
    case Value::Kind::kDict: return call_dict(args);
    case Value::Kind::kList: return call_list(args);
    case Value::Kind::kLoop: return call_loop(args);
    default: break;
  }
  unsupported(type_name(self_) + "." + name_ + "()");
}

Value BoundMethod::call_str(Interpreter& in, CallArgs& args) const {
  const std::string& s = self_.as_string();
  const std::string& m = name_;
  const char* mc = m.c_str();
  if (m == "format") return make_string(str_format(s, args));
  if (m == "strip" || m == "lstrip" || m == "rstrip") {
    ArgBinder b(m, args, {"chars"});
    std::u32string chars;
    const Value* c = b.get(0);
    if (c && !c->is_none()) chars = utf8_decode(str_arg(c, mc));
    const bool has = c && !c->is_none();
    return Value::string(std::string(py_strip(s, has ? &chars : nullptr, m != "rstrip", m != "lstrip")));
  }
  if (m == "split" || m == "rsplit") {
    ArgBinder b(m, args, {"sep", "maxsplit"});
    const int64_t maxsplit = b.get(1) ? int_arg(b.get(1), mc) : -1;
    const Value* sep = b.get(0);
    if (!sep || sep->is_none()) return string_list(split_whitespace(s, maxsplit, m == "rsplit"));
    return string_list(split_sep(s, str_arg(sep, mc), maxsplit, m == "rsplit"));
  }
  if (m == "splitlines") {
    ArgBinder b(m, args, {"keepends"});
    std::vector<std::string> lines = py_splitlines(s, b.get(0) && truthy(*b.get(0)));
    return string_list(std::move(lines));
  }
  if (m == "startswith" || m == "endswith") {
    ArgBinder b(m, args, {"prefix", "start", "end"});
    if (!b.get(0)) runtime_error("TypeError: " + m + "() takes at least 1 argument (0 given)");
    std::string_view sub = s;
    if (b.get(1) || b.get(2)) {
      int64_t lo, hi;
      clamp_range(b.get(1), b.get(2), static_cast<int64_t>(utf8_length(s)), &lo, &hi);
      if (lo > hi) return Value::boolean(false);
      const size_t blo = byte_offset(s, lo), bhi = byte_offset(s, hi);
      sub = std::string_view(s).substr(blo, bhi - blo);
    }
    std::vector<std::string> options;
    const Value& p = *b.get(0);
    if (p.is_string()) {
      options.push_back(p.as_string());
    } else if (p.is_tuple()) {
      for (const Value& o : p.as_list()) {
        if (!o.is_string()) runtime_error("TypeError: tuple for " + m + " must only contain str, not " + type_name(o));
        options.push_back(o.as_string());
      }
    } else {
      runtime_error("TypeError: " + m + " first arg must be str or a tuple of str, not " + type_name(p));
    }
    for (const auto& o : options) {
      if (o.size() > sub.size()) continue;
      if (m == "startswith" ? sub.substr(0, o.size()) == o : sub.substr(sub.size() - o.size()) == o) {
        return Value::boolean(true);
      }
    }
    return Value::boolean(false);
  }
  if (m == "upper") return Value::string(py_upper(s));
  if (m == "lower" || m == "casefold") return Value::string(py_lower(s));
  if (m == "title") return Value::string(py_title(s));
  if (m == "capitalize") return Value::string(py_capitalize(s));
  if (m == "swapcase") return Value::string(py_swapcase(s));
  if (m == "replace") {
    ArgBinder b(m, args, {"old", "new", "count"});
    const std::string& old = str_arg(b.get(0), mc, "argument 1");
    const std::string& rep = str_arg(b.get(1), mc, "argument 2");
    int64_t count = b.get(2) ? int_arg(b.get(2), mc) : -1;
    std::string out;
    if (old.empty()) {
      // Inserts `rep` between every character (and at both ends).
      size_t pos = 0;
      int64_t done = 0;
      if (count != 0) {
        out += rep;
        ++done;
      }
      while (pos < s.size()) {
        const size_t st = pos;
        utf8_next(s, pos);
        out.append(s, st, pos - st);
        if (pos < s.size() && (count < 0 || done < count)) {
          out += rep;
          ++done;
        }
        if (out.size() > kMaxValueBytes) fail(StatusCode::kResourceExhausted, "string result too large");
      }
      if (!s.empty() && (count < 0 || done < count)) out += rep;
      return make_string(std::move(out));
    }
    size_t pos = 0;
    while (count != 0) {
      const size_t f = s.find(old, pos);
      if (f == std::string::npos) break;
      out.append(s, pos, f - pos);
      out += rep;
      if (out.size() > kMaxValueBytes) fail(StatusCode::kResourceExhausted, "string result too large");
      pos = f + old.size();
      if (count > 0) --count;
    }
    out.append(s, pos, std::string::npos);
    return make_string(std::move(out));
  }
  if (m == "find" || m == "rfind" || m == "index" || m == "rindex" || m == "count") {
    ArgBinder b(m, args, {"sub", "start", "end"});
    const std::string& sub = str_arg(b.get(0), mc);
    const int64_t n = static_cast<int64_t>(utf8_length(s));
    int64_t lo, hi;
    clamp_range(b.get(1), b.get(2), n, &lo, &hi);
    if (m == "count") {
      if (lo > hi) return Value::integer(0);
      if (sub.empty()) return Value::integer(hi - lo + 1);
      const size_t blo = byte_offset(s, lo), bhi = byte_offset(s, hi);
      const std::string_view hay = std::string_view(s).substr(blo, bhi - blo);
      int64_t c = 0;
      for (size_t p = hay.find(sub); p != std::string_view::npos; p = hay.find(sub, p + sub.size())) ++c;
      return Value::integer(c);
    }
    int64_t result = -1;
    if (lo <= hi) {
      const size_t blo = byte_offset(s, lo), bhi = byte_offset(s, hi);
      const std::string_view hay = std::string_view(s).substr(blo, bhi - blo);
      const size_t f = (m == "find" || m == "index") ? hay.find(sub) : hay.rfind(sub);
      if (f != std::string_view::npos) result = lo + static_cast<int64_t>(utf8_length(hay.substr(0, f)));
    }
    if (result < 0 && (m == "index" || m == "rindex")) runtime_error("ValueError: substring not found");
    return Value::integer(result);
  }
  if (m == "join") {
    ArgBinder b(m, args, {"iterable"});
    if (!b.get(0)) runtime_error("TypeError: str.join() takes exactly one argument (0 given)");
    const List items = py_iterate(*b.get(0));
    std::string out;
    for (size_t i = 0; i < items.size(); ++i) {
      if (!items[i].is_string()) {
        runtime_error("TypeError: sequence item " + std::to_string(i) + ": expected str instance, " +
                      type_name(items[i]) + " found");
      }
      if (i) out += s;
      out += items[i].as_string();
      if (out.size() > kMaxValueBytes) fail(StatusCode::kResourceExhausted, "string result too large");
    }
    return Value::string(std::move(out));
  }
  if (m == "center" || m == "ljust" || m == "rjust") {
    ArgBinder b(m, args, {"width", "fillchar"});
    if (!b.get(0)) runtime_error("TypeError: " + m + "() takes at least 1 argument (0 given)");
    std::string fill = " ";
    if (b.get(1)) {
      fill = str_arg(b.get(1), mc);
      if (utf8_length(fill) != 1) runtime_error("TypeError: The fill character must be exactly one character long");
    }
    return make_string(pad_to(s, int_arg(b.get(0), mc), fill, m == "center" ? '^' : m == "ljust" ? '<' : '>'));
  }
  if (m == "zfill") {
    ArgBinder b(m, args, {"width"});
    if (!b.get(0)) runtime_error("TypeError: zfill() takes exactly one argument (0 given)");
    const int64_t width = int_arg(b.get(0), mc);
    const int64_t len = static_cast<int64_t>(utf8_length(s));
    if (width <= len) return self_.is_safe() ? Value::string(s) : self_;
    if (width > static_cast<int64_t>(kMaxValueBytes)) fail(StatusCode::kResourceExhausted, "string too large");
    const size_t sign = (!s.empty() && (s[0] == '+' || s[0] == '-')) ? 1 : 0;
    return Value::string(s.substr(0, sign) + std::string(width - len, '0') + s.substr(sign));
  }
  if (m == "partition" || m == "rpartition") {
    ArgBinder b(m, args, {"sep"});
    const std::string& sep = str_arg(b.get(0), mc);
    if (sep.empty()) runtime_error("ValueError: empty separator");
    const size_t f = m == "partition" ? s.find(sep) : s.rfind(sep);
    List parts;
    if (f == std::string::npos) {
      if (m == "partition") {
        parts = {Value::string(s), Value::string(""), Value::string("")};
      } else {
        parts = {Value::string(""), Value::string(""), Value::string(s)};
      }
    } else {
      parts = {Value::string(s.substr(0, f)), Value::string(sep), Value::string(s.substr(f + sep.size()))};
    }
    return Value::list(std::move(parts), true);
  }
  if (m == "removeprefix" || m == "removesuffix") {
    ArgBinder b(m, args, {"affix"});
    const std::string& a = str_arg(b.get(0), mc);
    if (m == "removeprefix" && s.compare(0, a.size(), a) == 0) return Value::string(s.substr(a.size()));
    if (m == "removesuffix" && !a.empty() && s.size() >= a.size() && s.compare(s.size() - a.size(), a.size(), a) == 0) {
      return Value::string(s.substr(0, s.size() - a.size()));
    }
    return Value::string(s);
  }
  if (m == "expandtabs") {
    ArgBinder b(m, args, {"tabsize"});
    const int64_t tab = b.get(0) ? int_arg(b.get(0), mc) : 8;
    std::string out;
    int64_t col = 0;
    size_t pos = 0;
    while (pos < s.size()) {
      const size_t st = pos;
      const char32_t c = utf8_next(s, pos);
      if (c == '\t') {
        if (tab > 0) {
          const int64_t n = tab - col % tab;
          if (out.size() + n > kMaxValueBytes) fail(StatusCode::kResourceExhausted, "string too large");
          out.append(n, ' ');
          col += n;
        }
      } else if (c == '\n' || c == '\r') {
        out += static_cast<char>(c);
        col = 0;
      } else {
        out.append(s, st, pos - st);
        ++col;
      }
    }
    return Value::string(std::move(out));
  }
  // Predicates take no arguments.
  if (m.rfind("is", 0) == 0) {
    ArgBinder b(m, args, {});
    if (m == "isdigit") return Value::boolean(all_chars(s, py_isdigit));
    if (m == "isdecimal") return Value::boolean(all_chars(s, py_isdecimal));
    if (m == "isnumeric") return Value::boolean(all_chars(s, py_isnumeric));
    if (m == "isalpha") return Value::boolean(all_chars(s, py_isalpha));
    if (m == "isalnum") return Value::boolean(all_chars(s, py_isalnum));
    if (m == "isspace") return Value::boolean(all_chars(s, py_isspace));
    if (m == "isascii") return Value::boolean(is_ascii(s));
    if (m == "isprintable") return Value::boolean(s.empty() || all_chars(s, py_isprintable));
    if (m == "isidentifier") {
      if (s.empty()) return Value::boolean(false);
      size_t pos = 0;
      const char32_t first = utf8_next(s, pos);
      if (!(first == '_' || py_isalpha(first))) return Value::boolean(false);
      return Value::boolean(pos == s.size() ||
                            all_chars(std::string_view(s).substr(pos), [](char32_t c) { return c == '_' || py_isalnum(c); }));
    }
    if (m == "islower" || m == "isupper") {
      bool cased = false;
      size_t pos = 0;
      while (pos < s.size()) {
        const char32_t c = utf8_next(s, pos);
        if (m == "islower" ? py_iscased_upper(c) : py_iscased_lower(c)) return Value::boolean(false);
        if (m == "islower" ? py_iscased_lower(c) : py_iscased_upper(c)) cased = true;
      }
      return Value::boolean(cased);
    }
    if (m == "istitle") {
      bool cased = false, prev_cased = false;
      size_t pos = 0;
      while (pos < s.size()) {
        const char32_t c = utf8_next(s, pos);
        if (py_iscased_upper(c) || (py_iscased(c) && !py_iscased_lower(c))) {
          if (prev_cased) return Value::boolean(false);
          prev_cased = cased = true;
        } else if (py_iscased_lower(c)) {
          if (!prev_cased) return Value::boolean(false);
          prev_cased = cased = true;
        } else {
          prev_cased = false;
        }
      }
      return Value::boolean(cased);
    }
  }
  (void)in;
  unsupported("str." + m + "()");
}

Value BoundMethod::call_dict(CallArgs& args) const {
  const Dict& d = self_.as_dict();
  if (name_ == "get") {
    ArgBinder b("get", args, {"key", "default"});
    if (!b.get(0)) runtime_error("TypeError: get expected at least 1 argument, got 0");
    const Value& key = *b.get(0);
    if ((key.is_list() && !key.is_tuple() && !key.is_generator()) || key.is_dict()) {
      runtime_error("TypeError: unhashable type: '" + type_name(key) + "'");
    }
    if (const Value* v = d.find(key)) return *v;
    return b.get(1) ? *b.get(1) : Value::none();
  }
  if (name_ == "items" || name_ == "keys" || name_ == "values") {
    ArgBinder b(name_, args, {});
    List out;
    out.reserve(d.size());
    for (const auto& [k, v] : d.items()) {
      if (name_ == "items") {
        out.push_back(Value::list(List{k, v}, true));
      } else {
        out.push_back(name_ == "keys" ? k : v);
      }
    }
    return Value::sequence(std::move(out), name_ == "items"  ? Value::Seq::kDictItems
                                           : name_ == "keys" ? Value::Seq::kDictKeys
                                                             : Value::Seq::kDictValues);
  }
  if (name_ == "copy") {
    ArgBinder b(name_, args, {});
    return self_;
  }
  unsupported("dict." + name_ + "()");
}

Value BoundMethod::call_list(CallArgs& args) const {
  const List& l = self_.as_list();
  if (name_ == "count") {
    ArgBinder b("count", args, {"value"});
    if (!b.get(0)) runtime_error("TypeError: count() takes exactly one argument (0 given)");
    int64_t c = 0;
    for (const Value& v : l) c += py_equal(v, *b.get(0)) ? 1 : 0;
    return Value::integer(c);
  }
  if (name_ == "index") {
    ArgBinder b("index", args, {"value", "start", "stop"});
    if (!b.get(0)) runtime_error("TypeError: index expected at least 1 argument, got 0");
    int64_t lo, hi;
    clamp_range(b.get(1), b.get(2), static_cast<int64_t>(l.size()), &lo, &hi);
    for (int64_t i = lo; i < hi; ++i) {
      if (py_equal(l[i], *b.get(0))) return Value::integer(i);
    }
    runtime_error("ValueError: " + to_repr(*b.get(0)) + " is not in " + type_name(self_));
  }
  if (name_ == "copy") {
    ArgBinder b(name_, args, {});
    return Value::list(l);
  }
  unsupported(type_name(self_) + "." + name_ + "()");
}

Value BoundMethod::call_loop(CallArgs& args) const {
  LoopState& l = self_.as_loop();
  if (name_ == "cycle") {
    if (!args.kwargs.empty()) runtime_error("TypeError: cycle() got an unexpected keyword argument");
    if (args.args.empty()) runtime_error("TypeError: no items for cycling given");
    return args.args[l.index0 % args.args.size()];
  }
  // changed(*values)
  const Value v = Value::list(args.args, true);
  if (!l.has_changed_value || !py_equal(l.changed_value, v)) {
    l.has_changed_value = true;
    l.changed_value = v;
    return Value::boolean(true);
  }
  return Value::boolean(false);
}

std::string unsafe(const Value& self, std::string_view name) {
  return "access to attribute '" + std::string(name) + "' of '" + type_name(self) + "' object is unsafe.";
}

}  // namespace

std::vector<std::string> split_whitespace(std::string_view s, int64_t maxsplit, bool from_right) {
  std::vector<std::string> out;
  if (!from_right) {
    size_t pos = 0;
    while (true) {
      // skip whitespace
      while (pos < s.size()) {
        size_t p = pos;
        if (!py_isspace(utf8_next(s, p))) break;
        pos = p;
      }
      if (pos >= s.size()) break;
      if (maxsplit >= 0 && static_cast<int64_t>(out.size()) == maxsplit) {
        out.emplace_back(s.substr(pos));
        break;
      }
      size_t end = pos;
      while (end < s.size()) {
        size_t p = end;
        if (py_isspace(utf8_next(s, p))) break;
        end = p;
      }
      out.emplace_back(s.substr(pos, end - pos));
      pos = end;
    }
    return out;
  }
  size_t end = s.size();
  while (true) {
    while (end > 0) {
      size_t p = end;
      if (!py_isspace(utf8_prev(s, p))) break;
      end = p;
    }
    if (end == 0) break;
    if (maxsplit >= 0 && static_cast<int64_t>(out.size()) == maxsplit) {
      out.emplace_back(s.substr(0, end));
      break;
    }
    size_t start = end;
    while (start > 0) {
      size_t p = start;
      if (py_isspace(utf8_prev(s, p))) break;
      start = p;
    }
    out.emplace_back(s.substr(start, end - start));
    end = start;
  }
  std::reverse(out.begin(), out.end());
  return out;
}

std::optional<Value> method_attribute(const Value& self, std::string_view name) {
  const NameSet* methods = nullptr;
  const NameSet* mutators = nullptr;
  switch (self.kind()) {
    case Value::Kind::kString: methods = &kStrMethods; break;
    case Value::Kind::kDict:
      methods = &kDictMethods;
      mutators = &kDictMutators;
      break;
    case Value::Kind::kList:
      if (!self.is_indexable_list()) return std::nullopt;
      methods = self.is_tuple() ? &kTupleMethods : &kListMethods;
      mutators = self.is_tuple() ? nullptr : &kListMutators;
      break;
    case Value::Kind::kLoop: methods = &kLoopMethods; break;
    default: return std::nullopt;
  }
  if (!methods->count(name)) return std::nullopt;
  if (mutators && mutators->count(name)) return Value::undefined(unsafe(self, name));
  return Value::callable(std::make_shared<BoundMethod>(self, std::string(name)));
}

}  // namespace nc::chat::detail
