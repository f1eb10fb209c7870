#include "engine/tokenizer/regex.h"

#include <fmt/format.h>

#include <memory>

#include "engine/tokenizer/unicode.h"

namespace nc::engine {

namespace {

struct Node {
  enum Kind { kEmpty, kChar, kClass, kAny, kConcat, kAlt, kRepeat, kLook, kEnd, kWordB, kNotWordB } kind;
  uint32_t value = 0;  // kChar: code point; kClass: class index
  int min = 0, max = 0;  // kRepeat; max < 0 means unbounded
  bool neg = false;      // kLook
  std::vector<std::unique_ptr<Node>> kids;
};
using NodeP = std::unique_ptr<Node>;

NodeP make(Node::Kind k) {
  auto n = std::make_unique<Node>();
  n->kind = k;
  return n;
}

}  // namespace

class RegexCompiler {
 public:
  RegexCompiler(Regex& re, std::string_view pattern) : re_(re), pattern_(pattern), p_(unicode::decode_utf8(pattern)) {}

  Status compile() {
    NodeP root;
    NC_ASSIGN_OR_RETURN(root, parse_alt());
    if (i_ != p_.size()) return err("unbalanced ')'");
    emit(*root);
    re_.prog_.push_back({Regex::Op::kMatch});
    return Status::ok();
  }

 private:
  Status err(std::string_view what) const {
    return invalid_argument(fmt::format("regex '{}': {} at offset {}", pattern_, what, i_));
  }
  bool at_end() const { return i_ >= p_.size(); }
  uint32_t peek() const { return p_[i_]; }

  Result<NodeP> parse_alt() {
    NodeP first;
    NC_ASSIGN_OR_RETURN(first, parse_concat());
    if (at_end() || peek() != '|') return first;
    auto alt = make(Node::kAlt);
    alt->kids.push_back(std::move(first));
    while (!at_end() && peek() == '|') {
      ++i_;
      NodeP next;
      NC_ASSIGN_OR_RETURN(next, parse_concat());
      alt->kids.push_back(std::move(next));
    }
    return alt;
  }

  Result<NodeP> parse_concat() {
    auto cat = make(Node::kConcat);
    while (!at_end() && peek() != '|' && peek() != ')') {
      NodeP atom;
      NC_ASSIGN_OR_RETURN(atom, parse_atom());
      NC_ASSIGN_OR_RETURN(atom, parse_quantifiers(std::move(atom)));
      cat->kids.push_back(std::move(atom));
    }
    return cat;
  }

  Result<int> parse_int() {
    if (at_end() || peek() < '0' || peek() > '9') return err("expected a number");
    int v = 0;
    while (!at_end() && peek() >= '0' && peek() <= '9') {
      v = v * 10 + static_cast<int>(peek() - '0');
      if (v > 100000) return err("repeat count too large");
      ++i_;
    }
    return v;
  }

  Result<NodeP> parse_quantifiers(NodeP atom) {
    while (!at_end()) {
      int mn, mx;
      const uint32_t c = peek();
      if (c == '?') { mn = 0; mx = 1; ++i_; }
      else if (c == '*') { mn = 0; mx = -1; ++i_; }
      else if (c == '+') { mn = 1; mx = -1; ++i_; }
      else if (c == '{') {
        ++i_;
        NC_ASSIGN_OR_RETURN(mn, parse_int());
        mx = mn;
        if (!at_end() && peek() == ',') {
          ++i_;
          if (!at_end() && peek() == '}') {
            mx = -1;
          } else {
            NC_ASSIGN_OR_RETURN(mx, parse_int());
          }
        }
        if (at_end() || peek() != '}') return err("expected '}'");
        ++i_;
        if (mx >= 0 && mx < mn) return err("bad repeat range");
      } else {
        break;
      }
      if (!at_end() && (peek() == '?' || peek() == '+')) return err("lazy or possessive quantifiers are not supported");
      auto rep = make(Node::kRepeat);
      rep->min = mn;
      rep->max = mx;
      rep->kids.push_back(std::move(atom));
      atom = std::move(rep);
    }
    return atom;
  }

  Result<NodeP> parse_atom() {
    const uint32_t c = peek();
    if (c == '(') {
      ++i_;
      NodeP inner;
      if (!at_end() && peek() == '?') {
        ++i_;
        if (at_end()) return err("bad group");
        const uint32_t k = peek();
        ++i_;
        if (k == ':') {
          NC_ASSIGN_OR_RETURN(inner, parse_alt());
        } else if (k == '=' || k == '!') {
          auto look = make(Node::kLook);
          look->neg = k == '!';
          NodeP body;
          NC_ASSIGN_OR_RETURN(body, parse_alt());
          look->kids.push_back(std::move(body));
          inner = std::move(look);
        } else {
          return err("unsupported group construct (?" + std::string(1, static_cast<char>(k)));
        }
      } else {
        NC_ASSIGN_OR_RETURN(inner, parse_alt());
      }
      if (at_end() || peek() != ')') return err("missing ')'");
      ++i_;
      return inner;
    }
    if (c == '[') return parse_class();
    if (c == '.') {
      ++i_;
      return make(Node::kAny);
    }
    if (c == '$') {
      ++i_;
      return make(Node::kEnd);
    }
    if (c == '^') return err("'^' is not supported");
    if (c == ')' || c == '*' || c == '+' || c == '?' || c == '{') return err("unexpected character");
    if (c == '\\') {
      ++i_;
      if (at_end()) return err("trailing backslash");
      const uint32_t e = peek();
      if (e == 'b' || e == 'B') {
        ++i_;
        return make(e == 'b' ? Node::kWordB : Node::kNotWordB);
      }
      Regex::Class cls;
      uint32_t ch = 0;
      bool is_set = false;
      NC_RETURN_IF_ERROR(parse_escape(&cls, &ch, &is_set, /*in_class=*/false));
      if (is_set) return class_node(std::move(cls));
      auto n = make(Node::kChar);
      n->value = ch;
      return n;
    }
    ++i_;
    auto n = make(Node::kChar);
    n->value = c;
    return n;
  }

  NodeP class_node(Regex::Class cls) {
    auto n = make(Node::kClass);
    n->value = static_cast<uint32_t>(re_.classes_.size());
    re_.classes_.push_back(std::move(cls));
    return n;
  }

  // Parses the escape after a backslash (at i_). Either a single character (*ch) or a set added to *cls.
  Status parse_escape(Regex::Class* cls, uint32_t* ch, bool* is_set, bool in_class) {
    const uint32_t e = peek();
    ++i_;
    *is_set = false;
    auto set_flags = [&](uint16_t mask, bool negated) -> Status {
      if (negated) {
        if (in_class) return err("negated escapes inside a class are not supported");
        cls->negate = true;
      }
      cls->flag_mask |= mask;
      *is_set = true;
      return Status::ok();
    };
    auto add_ranges = [&](std::initializer_list<std::pair<uint32_t, uint32_t>> r, bool negated) -> Status {
      if (negated) {
        if (in_class) return err("negated escapes inside a class are not supported");
        cls->negate = true;
      }
      for (auto x : r) cls->ranges.push_back(x);
      *is_set = true;
      return Status::ok();
    };
    switch (e) {
      case 's': return set_flags(unicode::kWhitespace, false);
      case 'S': return set_flags(unicode::kWhitespace, true);
      case 'd': return add_ranges({{'0', '9'}}, false);
      case 'D': return add_ranges({{'0', '9'}}, true);
      case 'w': return add_ranges({{'0', '9'}, {'A', 'Z'}, {'a', 'z'}, {'_', '_'}}, false);
      case 'W': return add_ranges({{'0', '9'}, {'A', 'Z'}, {'a', 'z'}, {'_', '_'}}, true);
      case 'p':
      case 'P': {
        if (at_end() || peek() != '{') return err("expected '{' after \\p");
        ++i_;
        std::string name;
        while (!at_end() && peek() != '}') name.push_back(static_cast<char>(peek())), ++i_;
        if (at_end()) return err("unterminated \\p{");
        ++i_;
        uint16_t mask = 0;
        if (name == "L" || name == "Lu" || name == "Ll" || name == "Lt" || name == "Lm" || name == "Lo") mask = unicode::kLetter;
        else if (name == "N") mask = unicode::kNumber;
        else if (name == "P") mask = unicode::kPunctuation;
        else if (name == "S") mask = unicode::kSymbol;
        else if (name == "M") mask = unicode::kMark;
        else if (name == "Z") mask = unicode::kSeparator;
        else if (name == "C") mask = unicode::kControl;
        else return err("unsupported Unicode property \\p{" + name + "}");
        return set_flags(mask, e == 'P');
      }
      case 'r': *ch = '\r'; return Status::ok();
      case 'n': *ch = '\n'; return Status::ok();
      case 't': *ch = '\t'; return Status::ok();
      case 'f': *ch = '\f'; return Status::ok();
      case 'v': *ch = '\v'; return Status::ok();
      case '0': *ch = 0; return Status::ok();
      default:
        if ((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z') || (e >= '0' && e <= '9')) {
          --i_;
          return err("unsupported escape");
        }
        *ch = e;  // escaped punctuation or a literal
        return Status::ok();
    }
  }

  Result<NodeP> parse_class() {
    ++i_;  // '['
    Regex::Class cls;
    if (!at_end() && peek() == '^') {
      cls.negate = true;
      ++i_;
    }
    bool first = true;
    while (true) {
      if (at_end()) return err("unterminated class");
      uint32_t c = peek();
      if (c == ']' && !first) {
        ++i_;
        break;
      }
      first = false;
      uint32_t lo;
      if (c == '\\') {
        ++i_;
        if (at_end()) return err("trailing backslash");
        bool is_set = false;
        const bool neg_before = cls.negate;
        cls.negate = false;
        NC_RETURN_IF_ERROR(parse_escape(&cls, &lo, &is_set, /*in_class=*/true));
        cls.negate = neg_before;
        if (is_set) continue;
      } else {
        lo = c;
        ++i_;
      }
      uint32_t hi = lo;
      if (i_ + 1 < p_.size() && peek() == '-' && p_[i_ + 1] != ']') {
        ++i_;
        uint32_t h = peek();
        if (h == '\\') {
          ++i_;
          if (at_end()) return err("trailing backslash");
          bool is_set = false;
          Regex::Class dummy;
          NC_RETURN_IF_ERROR(parse_escape(&dummy, &h, &is_set, true));
          if (is_set) return err("a class escape cannot end a range");
        } else {
          ++i_;
        }
        hi = h;
        if (hi < lo) return err("bad class range");
      }
      cls.ranges.emplace_back(lo, hi);
    }
    return class_node(std::move(cls));
  }

  // ---- code generation ----
  uint32_t pc() const { return static_cast<uint32_t>(re_.prog_.size()); }
  uint32_t push(Regex::Inst in) {
    re_.prog_.push_back(in);
    return pc() - 1;
  }

  void emit(const Node& n) {
    using Op = Regex::Op;
    switch (n.kind) {
      case Node::kEmpty: break;
      case Node::kChar: push({Op::kChar, false, n.value}); break;
      case Node::kClass: push({Op::kClass, false, n.value}); break;
      case Node::kAny: push({Op::kAny}); break;
      case Node::kEnd: push({Op::kEnd}); break;
      case Node::kWordB: push({Op::kWordB}); break;
      case Node::kNotWordB: push({Op::kNotWordB}); break;
      case Node::kConcat:
        for (const auto& k : n.kids) emit(*k);
        break;
      case Node::kAlt: {
        std::vector<uint32_t> jumps;
        for (size_t k = 0; k < n.kids.size(); ++k) {
          if (k + 1 < n.kids.size()) {
            const uint32_t split = push({Op::kSplit});
            re_.prog_[split].a = pc();
            emit(*n.kids[k]);
            jumps.push_back(push({Op::kJmp}));
            re_.prog_[split].b = pc();
          } else {
            emit(*n.kids[k]);
          }
        }
        for (uint32_t j : jumps) re_.prog_[j].a = pc();
        break;
      }
      case Node::kRepeat: {
        const Node& body = *n.kids[0];
        for (int k = 0; k < n.min; ++k) emit(body);
        if (n.max < 0) {
          const uint32_t split = push({Op::kSplit});
          re_.prog_[split].a = pc();
          emit(body);
          push({Op::kJmp, false, split});
          re_.prog_[split].b = pc();
        } else {
          std::vector<uint32_t> splits;
          for (int k = n.min; k < n.max; ++k) {
            const uint32_t split = push({Op::kSplit});
            re_.prog_[split].a = pc();
            splits.push_back(split);
            emit(body);
          }
          for (uint32_t s : splits) re_.prog_[s].b = pc();
        }
        break;
      }
      case Node::kLook: {
        const uint32_t look = push({Op::kLook, n.neg});
        re_.prog_[look].a = pc();
        emit(*n.kids[0]);
        push({Op::kMatch});
        re_.prog_[look].b = pc();
        break;
      }
    }
  }

  Regex& re_;
  std::string_view pattern_;  // the source, for error messages
  std::vector<uint32_t> p_;
  size_t i_ = 0;
};

Result<Regex> Regex::compile(std::string_view pattern) {
  Regex re;
  RegexCompiler c(re, pattern);
  NC_RETURN_IF_ERROR(c.compile());
  return re;
}

bool Regex::class_match(const Class& c, uint32_t cp) const {
  bool in = (unicode::flags(cp) & c.flag_mask) != 0;
  if (!in) {
    for (const auto& r : c.ranges) {
      if (cp >= r.first && cp <= r.second) {
        in = true;
        break;
      }
    }
  }
  return in != c.negate;
}

namespace {
bool is_word(uint32_t cp) {
  return (cp >= '0' && cp <= '9') || (cp >= 'A' && cp <= 'Z') || (cp >= 'a' && cp <= 'z') || cp == '_';
}
thread_local std::vector<std::pair<uint32_t, size_t>> g_stack;
}  // namespace

bool Regex::run(const uint32_t* cps, size_t begin, size_t end, uint32_t pc, size_t pos, size_t* out_end) const {
  auto& stk = g_stack;
  const size_t base = stk.size();
  stk.emplace_back(pc, pos);
  while (stk.size() > base) {
    std::tie(pc, pos) = stk.back();
    stk.pop_back();
    while (true) {
      const Inst& in = prog_[pc];
      bool ok = true;
      switch (in.op) {
        case Op::kChar:
          ok = pos < end && cps[pos] == in.a;
          ++pc, ++pos;
          break;
        case Op::kClass:
          ok = pos < end && class_match(classes_[in.a], cps[pos]);
          ++pc, ++pos;
          break;
        case Op::kAny:
          ok = pos < end && cps[pos] != '\n' && cps[pos] != '\r' && cps[pos] != 0x2028 && cps[pos] != 0x2029;
          ++pc, ++pos;
          break;
        case Op::kSplit:
          stk.emplace_back(in.b, pos);
          pc = in.a;
          break;
        case Op::kJmp:
          pc = in.a;
          break;
        case Op::kMatch:
          *out_end = pos;
          stk.resize(base);
          return true;
        case Op::kLook: {
          size_t dummy;
          const bool m = run(cps, begin, end, in.a, pos, &dummy);
          ok = m != in.neg;
          pc = in.b;
          break;
        }
        case Op::kEnd:
          ok = pos == end;
          ++pc;
          break;
        case Op::kWordB:
        case Op::kNotWordB: {
          const bool a = pos > begin && is_word(cps[pos - 1]);
          const bool b = pos < end && is_word(cps[pos]);
          ok = (a != b) == (in.op == Op::kWordB);
          ++pc;
          break;
        }
      }
      if (!ok) break;
    }
  }
  return false;
}

bool Regex::search(const uint32_t* cps, size_t begin, size_t end, size_t from, size_t* mbegin, size_t* mend) const {
  for (size_t s = from; s < end; ++s) {
    size_t e;
    if (run(cps, begin, end, 0, s, &e)) {
      *mbegin = s;
      *mend = e;
      return true;
    }
  }
  return false;
}

}  // namespace nc::engine
