// Unicode helpers for the tokenizers: lenient UTF-8 decoding with llama.cpp's rules, code point
// category flags (general category from utf8proc, White_Space from the Unicode property list), simple
// lowercase and first-code-point NFD (what llama.cpp's BERT normalizer uses), and the GPT-2 byte map.
//
// Thread-safety: every function is pure; the flag table is built once on first use (thread-safe
// static initialization) and then read-only.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace nc::engine::unicode {

// Category flags of one code point; exactly one category bit is set, kWhitespace may be added.
enum CpFlag : uint16_t {
  kUndefined = 1 << 0,   // Cn, or beyond U+10FFFF
  kNumber = 1 << 1,      // \p{N}
  kLetter = 1 << 2,      // \p{L}
  kSeparator = 1 << 3,   // \p{Z}
  kMark = 1 << 4,        // \p{M}
  kPunctuation = 1 << 5, // \p{P}
  kSymbol = 1 << 6,      // \p{S}
  kControl = 1 << 7,     // \p{C} (Cc, Cf, Co, Cs)
  kWhitespace = 1 << 8,  // \s: the Unicode White_Space property
};

constexpr uint32_t kMaxCodePoint = 0x10FFFF;
constexpr uint32_t kReplacement = 0xFFFD;

uint16_t flags(uint32_t cp);
// A pointer to the whole table (kMaxCodePoint + 1 entries), for hot loops.
const uint16_t* flag_table();

// Byte length of a UTF-8 sequence from its lead byte, as llama.cpp's `unicode_len_utf8`
// (continuation and invalid lead bytes count as 1).
inline size_t utf8_len(uint8_t lead) {
  static constexpr uint8_t kLen[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLen[lead >> 4];
}

// Decodes leniently, exactly as llama.cpp's `unicode_cpts_from_utf8`: a lead byte followed by the
// right number of continuation bytes decodes (overlong forms and surrogates included); anything else
// yields U+FFFD for one byte and decoding resumes at the next byte. Values above U+10FFFF (lead bytes
// F5-F7) also become U+FFFD (llama.cpp throws on them).
void decode_utf8(std::string_view s, std::vector<uint32_t>& out);
std::vector<uint32_t> decode_utf8(std::string_view s);
void append_utf8(std::string& out, uint32_t cp);

// Simple (1:1) lowercase mapping.
uint32_t to_lower(uint32_t cp);
// First code point of the canonical decomposition (llama.cpp's `unicode_cpts_normalize_nfd`).
uint32_t nfd_first(uint32_t cp);

// GPT-2 byte-level encoding: byte -> code point and back (-1 when the code point is not a byte).
uint32_t byte_to_cp(uint8_t b);
int cp_to_byte(uint32_t cp);

}  // namespace nc::engine::unicode
