// UTF-8 and Unicode helpers with Python str semantics: code-point indexing, Python's isspace()
// (the \s of Python regular expressions), case mapping. Stateless free functions; thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>


namespace nc::chat::detail {

bool utf8_valid(std::string_view s);
bool is_ascii(std::string_view s);
// Number of code points (Python len()); `s` must be valid UTF-8.
size_t utf8_length(std::string_view s);
std::u32string utf8_decode(std::string_view s);
std::string utf8_encode(std::u32string_view s);
void utf8_append(std::string& out, char32_t cp);
// Decodes the code point at byte offset `pos` and advances `pos` past it.
char32_t utf8_next(std::string_view s, size_t& pos);
// Decodes the code point that ends at byte offset `end` and moves `end` to its first byte.
char32_t utf8_prev(std::string_view s, size_t& end);

// Python str.isspace() for one code point (also what \s matches in Python 3 regular expressions).
bool py_isspace(char32_t c);
bool py_isalpha(char32_t c);
bool py_isdigit(char32_t c);      // str.isdigit (Nd plus digits like superscripts)
bool py_isdecimal(char32_t c);    // str.isdecimal (Nd)
bool py_isnumeric(char32_t c);    // str.isnumeric (Nd, Nl, No)
bool py_isalnum(char32_t c);
bool py_isprintable(char32_t c);  // what repr() leaves unescaped
bool py_iscased_lower(char32_t c);
bool py_iscased_upper(char32_t c);
bool py_iscased(char32_t c);

char32_t cp_upper(char32_t c);
char32_t cp_lower(char32_t c);
char32_t cp_title(char32_t c);

std::string py_upper(std::string_view s);
std::string py_lower(std::string_view s);
// str.capitalize(): first character title-cased, the rest lower-cased.
std::string py_capitalize(std::string_view s);
// str.title(): every cased run starts title-cased.
std::string py_title(std::string_view s);
std::string py_swapcase(std::string_view s);

// Python str.strip/lstrip/rstrip: without `chars` strips py_isspace, else the code points in chars.
std::string_view py_strip(std::string_view s, const std::u32string* chars, bool left, bool right);

// str.splitlines(keepends): splits at \n, \r, \r\n, \v, \f, \x1c-\x1e, \x85, \u2028, \u2029.
std::vector<std::string> py_splitlines(std::string_view s, bool keepends);

}  // namespace nc::chat::detail
