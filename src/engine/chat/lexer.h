// Lexer for the Jinja2 template language, configured as HuggingFace configures it:
// trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False, newlines normalized to "\n",
// the `-`/`+` whitespace-control markers, {# comments #} and {% raw %} blocks — reproducing
// jinja2/lexer.py rule by rule (including Python's Unicode notion of whitespace and its string
// escapes). Produces the whole token list up front. Stateless between calls; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace nc::chat::detail {

enum class TokenType {
  kData,           // template text to output verbatim
  kVariableBegin,  // {{
  kVariableEnd,    // }}
  kBlockBegin,     // {%
  kBlockEnd,       // %}
  kName,
  kString,
  kInteger,
  kFloat,
  kOperator,
  kEof,
};

struct Token {
  TokenType type = TokenType::kEof;
  std::string value;  // data text, name, operator, or unescaped string literal
  int64_t int_value = 0;
  double float_value = 0;
  size_t offset = 0;  // byte offset in the normalized source
};

struct LexResult {
  std::string source;  // normalized: "\r\n" and "\r" -> "\n", one trailing "\n" dropped
  std::vector<Token> tokens;
};

// Throws TemplateError (InvalidArgument "line L, column C: ...") on lexical errors.
LexResult lex(std::string_view source);

// "line L, column C" (1-based, columns in code points) of a byte offset of `source`.
std::string describe_position(std::string_view source, size_t offset);

}  // namespace nc::chat::detail
