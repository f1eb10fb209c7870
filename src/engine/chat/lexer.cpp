#include "engine/chat/lexer.h"

#include <cstdlib>
#include <cstring>

#include "engine/chat/error.h"
#include "engine/chat/utf8.h"

namespace nc::chat::detail {

namespace {

// Longest first, as jinja2.lexer sorts them.
const char* const kOperators[] = {"//", "**", "==", "!=", ">=", "<=", "+", "-", "/", "*", "%", "~", "[", "]",
                                  "(", ")", "{", "}", ">", "<", "=", ".", ":", "|", ",", ";"};

class Lexer {
 public:
  explicit Lexer(std::string source) { out_.source = std::move(source); }

  LexResult run() {
    const std::string_view src = out_.source;
    size_t pos = 0;
    while (pos < src.size()) {
      const size_t tag = find_tag(pos);
      if (tag == std::string_view::npos) {
        emit_data(src.substr(pos), pos);
        line_starting_ = src.back() == '\n';
        pos = src.size();
        break;
      }
      const char kind = src[tag + 1];
      size_t after = tag + 2;
      char sign = 0;
      if (after < src.size() && (src[after] == '-' || src[after] == '+')) sign = src[after++];
      const std::string_view text = src.substr(pos, tag - pos);
      size_t raw_end = 0;
      const bool raw = kind == '%' && match_raw_begin(tag, &raw_end);
      emit_data(strip_before(text, sign, kind == '{'), pos);
      if (raw) {
        line_starting_ = src[raw_end - 1] == '\n';
        pos = lex_raw(raw_end);
      } else if (kind == '#') {
        pos = lex_comment(after, tag);
      } else {
        line_starting_ = false;
        pos = lex_tag(kind, after, tag);
      }
    }
    Token eof;
    eof.type = TokenType::kEof;
    eof.offset = src.size();
    out_.tokens.push_back(std::move(eof));
    return std::move(out_);
  }

 private:
  [[noreturn]] void error(size_t offset, const std::string& msg) {
    fail(StatusCode::kInvalidArgument, describe_position(out_.source, offset) + ": " + msg);
  }

  size_t find_tag(size_t pos) const {
    const std::string_view src = out_.source;
    while (true) {
      const size_t i = src.find('{', pos);
      if (i == std::string_view::npos || i + 1 >= src.size()) return std::string_view::npos;
      const char c = src[i + 1];
      if (c == '{' || c == '%' || c == '#') return i;
      pos = i + 1;
    }
  }

  // Python's \s* from `pos`; returns the position after it.
  size_t skip_space(size_t pos) const {
    const std::string_view src = out_.source;
    while (pos < src.size()) {
      size_t p = pos;
      const char32_t c = utf8_next(src, p);
      if (!py_isspace(c)) break;
      pos = p;
    }
    return pos;
  }

  bool starts_with(size_t pos, const char* s) const {
    return out_.source.compare(pos, std::strlen(s), s) == 0;
  }

  // {%(-|+|)\s*raw\s*(?:-%}\s*|%})
  bool match_raw_begin(size_t tag, size_t* end) const {
    size_t p = tag + 2;
    if (p < out_.source.size() && (out_.source[p] == '-' || out_.source[p] == '+')) ++p;
    p = skip_space(p);
    if (!starts_with(p, "raw")) return false;
    p = skip_space(p + 3);
    if (starts_with(p, "-%}")) {
      *end = skip_space(p + 3);
      return true;
    }
    if (starts_with(p, "%}")) {
      *end = p + 2;
      return true;
    }
    return false;
  }

  // The lstrip_blocks / `-` handling jinja2 applies to the text before a tag (OptionalLStrip).
  std::string_view strip_before(std::string_view text, char sign, bool is_variable) const {
    if (sign == '-') return py_strip(text, nullptr, false, true);
    if (sign != '+' && !is_variable) {
      const size_t nl = text.rfind('\n');
      const size_t l_pos = nl == std::string_view::npos ? 0 : nl + 1;
      if (l_pos > 0 || line_starting_) {
        const std::string_view rest = text.substr(l_pos);
        if (!rest.empty() && py_strip(rest, nullptr, true, false).empty()) return text.substr(0, l_pos);
      }
    }
    return text;
  }

  void emit_data(std::string_view text, size_t offset) {
    if (text.empty()) return;
    Token t;
    t.type = TokenType::kData;
    t.value = std::string(text);
    t.offset = offset;
    out_.tokens.push_back(std::move(t));
  }

  void emit(TokenType type, size_t offset, std::string value = {}) {
    Token t;
    t.type = type;
    t.value = std::move(value);
    t.offset = offset;
    out_.tokens.push_back(std::move(t));
  }

  // (.*?)((?:{%(-|+|))\s*endraw\s*(?:+%}|-%}\s*|%}\n?))
  size_t lex_raw(size_t pos) {
    const std::string_view src = out_.source;
    size_t search = pos;
    while (true) {
      const size_t tag = src.find("{%", search);
      if (tag == std::string_view::npos) error(pos, "Missing end of raw directive");
      size_t p = tag + 2;
      char sign = 0;
      if (p < src.size() && (src[p] == '-' || src[p] == '+')) sign = src[p++];
      p = skip_space(p);
      if (starts_with(p, "endraw")) {
        p = skip_space(p + 6);
        size_t end = 0;
        if (starts_with(p, "+%}")) {
          end = p + 3;
        } else if (starts_with(p, "-%}")) {
          end = skip_space(p + 3);
        } else if (starts_with(p, "%}")) {
          end = p + 2;
          if (end < src.size() && src[end] == '\n') ++end;
        }
        if (end) {
          emit_data(strip_before(src.substr(pos, tag - pos), sign, false), pos);
          line_starting_ = src[end - 1] == '\n';
          return end;
        }
      }
      search = tag + 1;
    }
  }

  // (.*?)((?:+#}|-#}\s*|#}\n?))
  size_t lex_comment(size_t pos, size_t tag) {
    const std::string_view src = out_.source;
    const size_t close = src.find("#}", pos);
    if (close == std::string_view::npos) error(tag, "Missing end of comment tag");
    size_t end = close + 2;
    if (close > pos && src[close - 1] == '-') {
      end = skip_space(end);
    } else if (close > pos && src[close - 1] == '+') {
      // keep what follows
    } else if (end < src.size() && src[end] == '\n') {
      ++end;
    }
    line_starting_ = src[end - 1] == '\n';
    return end;
  }

  size_t lex_tag(char kind, size_t pos, size_t tag) {
    const std::string_view src = out_.source;
    const bool block = kind == '%';
    emit(block ? TokenType::kBlockBegin : TokenType::kVariableBegin, tag);
    std::string balance;  // expected closing brackets
    while (pos < src.size()) {
      if (balance.empty()) {
        size_t end = 0;
        if (block) {
          if (starts_with(pos, "+%}")) {
            end = pos + 3;
          } else if (starts_with(pos, "-%}")) {
            end = skip_space(pos + 3);
          } else if (starts_with(pos, "%}")) {
            end = pos + 2;
            if (end < src.size() && src[end] == '\n') ++end;
          }
        } else {
          if (starts_with(pos, "-}}")) {
            end = skip_space(pos + 3);
          } else if (starts_with(pos, "}}")) {
            end = pos + 2;
          }
        }
        if (end) {
          emit(block ? TokenType::kBlockEnd : TokenType::kVariableEnd, pos);
          line_starting_ = src[end - 1] == '\n';
          return end;
        }
      }
      const size_t ws = skip_space(pos);
      if (ws != pos) {
        line_starting_ = src[ws - 1] == '\n';
        pos = ws;
        continue;
      }
      line_starting_ = false;
      const unsigned char c = static_cast<unsigned char>(src[pos]);
      if (c >= '0' && c <= '9') {
        pos = lex_number(pos);
        continue;
      }
      if (c == '_' || (c < 0x80 && std::isalpha(c)) || c >= 0x80) {
        size_t p = pos;
        while (p < src.size()) {
          const unsigned char d = static_cast<unsigned char>(src[p]);
          if (d < 0x80) {
            if (d == '_' || std::isalnum(d)) {
              ++p;
              continue;
            }
            break;
          }
          size_t q = p;
          const char32_t cp = utf8_next(src, q);
          if (!py_isalnum(cp)) break;
          p = q;
        }
        if (p == pos) error(pos, "unexpected char " + std::string(1, src[pos]));
        emit(TokenType::kName, pos, std::string(src.substr(pos, p - pos)));
        pos = p;
        continue;
      }
      if (c == '\'' || c == '"') {
        size_t p = pos + 1;
        bool closed = false;
        while (p < src.size()) {
          if (src[p] == '\\' && p + 1 < src.size()) {
            p += 2;
            continue;
          }
          if (src[p] == static_cast<char>(c)) {
            closed = true;
            break;
          }
          ++p;
        }
        if (!closed) error(pos, "unexpected char '" + std::string(1, static_cast<char>(c)) + "'");
        Token t;
        t.type = TokenType::kString;
        t.offset = pos;
        t.value = unescape(src.substr(pos + 1, p - pos - 1), pos);
        out_.tokens.push_back(std::move(t));
        pos = p + 1;
        continue;
      }
      bool matched = false;
      for (const char* op : kOperators) {
        if (!starts_with(pos, op)) continue;
        const std::string o(op);
        if (o == "{" || o == "(" || o == "[") {
          balance.push_back(o == "{" ? '}' : o == "(" ? ')' : ']');
        } else if (o == "}" || o == ")" || o == "]") {
          if (balance.empty()) error(pos, "unexpected '" + o + "'");
          const char expected = balance.back();
          balance.pop_back();
          if (expected != o[0]) error(pos, "unexpected '" + o + "', expected '" + std::string(1, expected) + "'");
        }
        emit(TokenType::kOperator, pos, o);
        pos += o.size();
        matched = true;
        break;
      }
      if (!matched) error(pos, "unexpected char '" + std::string(1, src[pos]) + "'");
    }
    return pos;  // end of template inside a tag: the parser reports it
  }

  // float_re (checked first, not right after a '.') and integer_re of jinja2.lexer.
  size_t lex_number(size_t pos) {
    const std::string_view src = out_.source;
    auto digits = [&](size_t p, bool (*ok)(char)) -> size_t {
      // (\d+_)*\d+ style: runs of digits separated by single underscores; returns end or p.
      size_t q = p;
      if (q >= src.size() || !ok(src[q])) return p;
      while (q < src.size()) {
        if (ok(src[q])) {
          ++q;
        } else if (src[q] == '_' && q + 1 < src.size() && ok(src[q + 1])) {
          ++q;
        } else {
          break;
        }
      }
      return q;
    };
    auto is_dec = [](char ch) { return ch >= '0' && ch <= '9'; };
    if (pos == 0 || src[pos - 1] != '.') {
      const size_t int_end = digits(pos, is_dec);
      size_t p = int_end;
      bool has_frac = false;
      if (p < src.size() && src[p] == '.') {
        const size_t f = digits(p + 1, is_dec);
        if (f != p + 1) {
          has_frac = true;
          p = f;
        }
      }
      size_t float_end = has_frac ? p : 0;
      if (p < src.size() && (src[p] == 'e' || src[p] == 'E')) {
        size_t q = p + 1;
        if (q < src.size() && (src[q] == '+' || src[q] == '-')) ++q;
        const size_t e = digits(q, is_dec);
        if (e != q) float_end = e;
      }
      if (float_end) {
        std::string clean;
        for (size_t i = pos; i < float_end; ++i) {
          if (src[i] != '_') clean.push_back(src[i]);
        }
        Token t;
        t.type = TokenType::kFloat;
        t.offset = pos;
        t.float_value = std::strtod(clean.c_str(), nullptr);
        t.value = std::string(src.substr(pos, float_end - pos));
        out_.tokens.push_back(std::move(t));
        return float_end;
      }
    }
    int base = 10;
    size_t start = pos, end = pos;
    auto lower = [&](size_t i) { return i < src.size() ? static_cast<char>(std::tolower(src[i])) : '\0'; };
    if (src[pos] == '0' && (lower(pos + 1) == 'b' || lower(pos + 1) == 'o' || lower(pos + 1) == 'x')) {
      const char b = lower(pos + 1);
      base = b == 'b' ? 2 : b == 'o' ? 8 : 16;
      auto ok = [&](char ch) {
        ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        if (base == 2) return ch == '0' || ch == '1';
        if (base == 8) return ch >= '0' && ch <= '7';
        return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f');
      };
      // (_?[digit])+
      size_t q = pos + 2;
      while (true) {
        if (q < src.size() && ok(src[q])) {
          ++q;
        } else if (q + 1 < src.size() && src[q] == '_' && ok(src[q + 1])) {
          q += 2;
        } else {
          break;
        }
      }
      if (q == pos + 2) {
        base = 10;  // just "0"
        end = pos + 1;
      } else {
        start = pos + 2;
        end = q;
      }
    } else if (src[pos] == '0') {
      // 0(_?0)*
      size_t q = pos + 1;
      while (true) {
        if (q < src.size() && src[q] == '0') {
          ++q;
        } else if (q + 1 < src.size() && src[q] == '_' && src[q + 1] == '0') {
          q += 2;
        } else {
          break;
        }
      }
      end = q;
    } else {
      end = digits(pos, is_dec);
    }
    uint64_t v = 0;
    for (size_t i = start; i < end; ++i) {
      if (src[i] == '_') continue;
      const int d = std::isdigit(static_cast<unsigned char>(src[i])) ? src[i] - '0' : std::tolower(src[i]) - 'a' + 10;
      if (v > (UINT64_MAX - d) / base) fail(StatusCode::kOutOfRange, describe_position(src, pos) + ": integer literal too large");
      v = v * base + d;
    }
    if (v > static_cast<uint64_t>(INT64_MAX)) fail(StatusCode::kOutOfRange, describe_position(src, pos) + ": integer literal too large");
    Token t;
    t.type = TokenType::kInteger;
    t.offset = pos;
    t.int_value = static_cast<int64_t>(v);
    t.value = std::string(src.substr(pos, end - pos));
    out_.tokens.push_back(std::move(t));
    return end;
  }

  // Python's .encode("ascii", "backslashreplace").decode("unicode-escape") of the literal's body.
  std::string unescape(std::string_view s, size_t offset) {
    std::string out;
    out.reserve(s.size());
    size_t i = 0;
    auto hex = [&](size_t n, size_t at) -> char32_t {
      if (at + n > s.size()) error(offset, "truncated escape sequence");
      char32_t v = 0;
      for (size_t k = 0; k < n; ++k) {
        const char ch = s[at + k];
        int d;
        if (ch >= '0' && ch <= '9') d = ch - '0';
        else if (ch >= 'a' && ch <= 'f') d = ch - 'a' + 10;
        else if (ch >= 'A' && ch <= 'F') d = ch - 'A' + 10;
        else error(offset, "truncated escape sequence");
        v = v * 16 + d;
      }
      return v;
    };
    while (i < s.size()) {
      const char c = s[i];
      if (c != '\\' || i + 1 >= s.size()) {
        out.push_back(c);
        ++i;
        continue;
      }
      const char n = s[i + 1];
      i += 2;
      switch (n) {
        case '\n': break;
        case '\\': out.push_back('\\'); break;
        case '\'': out.push_back('\''); break;
        case '"': out.push_back('"'); break;
        case 'a': out.push_back('\a'); break;
        case 'b': out.push_back('\b'); break;
        case 'f': out.push_back('\f'); break;
        case 'n': out.push_back('\n'); break;
        case 'r': out.push_back('\r'); break;
        case 't': out.push_back('\t'); break;
        case 'v': out.push_back('\v'); break;
        case 'x': utf8_append(out, hex(2, i)); i += 2; break;
        case 'u': {
          const char32_t cp = hex(4, i);
          i += 4;
          if (cp >= 0xD800 && cp <= 0xDFFF) unsupported("surrogate escape in string literal");
          utf8_append(out, cp);
          break;
        }
        case 'U': {
          const char32_t cp = hex(8, i);
          i += 8;
          if (cp > 0x10FFFF) error(offset, "illegal Unicode character");
          if (cp >= 0xD800 && cp <= 0xDFFF) unsupported("surrogate escape in string literal");
          utf8_append(out, cp);
          break;
        }
        case 'N': unsupported("\\N{...} escape in string literal");
        default:
          if (n >= '0' && n <= '7') {
            char32_t v = n - '0';
            for (int k = 0; k < 2 && i < s.size() && s[i] >= '0' && s[i] <= '7'; ++k) v = v * 8 + (s[i++] - '0');
            utf8_append(out, v);
          } else if (static_cast<unsigned char>(n) >= 0x80) {
            // backslashreplace turned the character into \xNN / \uNNNN / \UNNNNNNNN, whose
            // backslash the escaped backslash consumed: the escape's letters stay literal.
            size_t p = i - 1;
            const char32_t cp = utf8_next(s, p);
            i = p;
            static const char* kHexDigits = "0123456789abcdef";
            out.push_back('\\');
            const int width = cp < 0x100 ? 2 : cp < 0x10000 ? 4 : 8;
            out.push_back(cp < 0x100 ? 'x' : cp < 0x10000 ? 'u' : 'U');
            for (int k = width - 1; k >= 0; --k) out.push_back(kHexDigits[(cp >> (4 * k)) & 0xF]);
          } else {
            out.push_back('\\');
            out.push_back(n);
          }
      }
    }
    return out;
  }

  LexResult out_;
  bool line_starting_ = true;
};

}  // namespace

std::string describe_position(std::string_view source, size_t offset) {
  if (offset > source.size()) offset = source.size();
  size_t line = 1, line_start = 0;
  for (size_t i = 0; i < offset; ++i) {
    if (source[i] == '\n') {
      ++line;
      line_start = i + 1;
    }
  }
  const size_t column = utf8_length(source.substr(line_start, offset - line_start)) + 1;
  return "line " + std::to_string(line) + ", column " + std::to_string(column);
}

LexResult lex(std::string_view source) {
  std::string norm;
  norm.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      norm.push_back('\n');
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      norm.push_back(source[i]);
    }
  }
  if (!norm.empty() && norm.back() == '\n') norm.pop_back();
  return Lexer(std::move(norm)).run();
}

}  // namespace nc::chat::detail
