// Vocab: token -> piece and tokens -> text (llama.cpp's token_to_piece / detokenize).
#include <fmt/format.h>

#include "engine/tokenizer/unicode.h"
#include "engine/tokenizer/vocab.h"

namespace nc::engine {
namespace {

std::string unescape_spaces(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (i + 2 < s.size() && s[i] == '\xe2' && s[i + 1] == '\x96' && s[i + 2] == '\x81') {
      out.push_back(' ');
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

uint8_t hex_byte(const std::string& t) {
  auto h = [](char c) -> uint8_t {
    if (c >= '0' && c <= '9') return static_cast<uint8_t>(c - '0');
    if (c >= 'a' && c <= 'f') return static_cast<uint8_t>(c - 'a' + 10);
    return static_cast<uint8_t>(c - 'A' + 10);
  };
  return static_cast<uint8_t>(h(t[3]) << 4 | h(t[4]));
}

}  // namespace

// The piece with special = true (cached per token at load).
std::string Vocab::piece_uncached(TokenId id) const {
  const TokenData& t = tokens_[static_cast<size_t>(id)];
  if (t.attr & (kAttrControl | kAttrUnknown | kAttrUserDefined)) return t.text;
  if (t.attr & kAttrNormal) {
    if (type_ != VocabType::kBpe || escape_whitespaces_) return unescape_spaces(t.text);
    // Byte-level BPE: map each code point back to its byte.
    std::string out;
    for (uint32_t cp : unicode::decode_utf8(t.text)) {
      const int b = unicode::cp_to_byte(cp);
      if (b >= 0) {
        out.push_back(static_cast<char>(b));
      } else {
        std::string utf8;
        unicode::append_utf8(utf8, cp);
        out += "[UNK_BYTE_0x";
        for (char c : utf8) out += fmt::format("{:02x}", static_cast<uint8_t>(c));
        out += t.text + "]";
      }
    }
    return out;
  }
  if (t.attr & kAttrByte) {
    return std::string(1, static_cast<char>(hex_byte(t.text)));
  }
  return std::string();  // unused / undefined tokens print nothing
}

std::string Vocab::token_to_piece(TokenId id, bool special, int lstrip) const {
  if (id < 0 || id >= n_tokens()) return std::string();
  const uint32_t attr = tokens_[static_cast<size_t>(id)].attr;
  if (!special && (attr & (kAttrControl | kAttrUnknown))) return std::string();
  std::string_view p = piece_cache_[static_cast<size_t>(id)];
  for (int i = 0; i < lstrip && !p.empty() && p.front() == ' '; ++i) p.remove_prefix(1);
  return std::string(p);
}

std::string Vocab::detokenize(std::span<const TokenId> toks, bool remove_special, bool unparse_special) const {
  bool remove_space = add_space_prefix_;
  if (remove_special && add_bos_ && !toks.empty() && toks.front() == bos_) {
    remove_space = false;
    toks = toks.subspan(1);
  }
  if (remove_special && add_eos_ && !toks.empty() && toks.back() == eos_) toks = toks.subspan(0, toks.size() - 1);
  std::string text;
  for (TokenId t : toks) {
    text += token_to_piece(t, unparse_special, remove_space ? 1 : 0);
    remove_space = false;
  }
  if (!clean_spaces_ || text.empty()) return text;

  // Three clean-up passes, with llama.cpp's exact in-place semantics.
  std::string& s = text;
  // (1) " ?", " !", " .", " ," lose the space.
  size_t total = s.size(), w = 1;
  for (size_t i = 1; i < total; ++i) {
    const char x = s[i];
    if (s[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) --w;
    s[w++] = x;
  }
  total = w;
  // (2) " ' " -> "'".
  w = total ? 1 : 0;
  for (size_t i = 1; i < total; ++i) {
    const char x = s[i];
    if (x == '\'' && i + 1 < total && s[i - 1] == ' ' && s[i + 1] == ' ') {
      --w;
      s[++i] = '\0';
    }
    s[w++] = x;
  }
  total = w;
  // (3) " 's", " 'm", " 're", " 've" lose the space.
  w = total ? 1 : 0;
  for (size_t i = 1; i < total; ++i) {
    const char x = s[i];
    if (s[i - 1] == ' ' && x == '\'' && i + 1 < total) {
      const char x1 = s[i + 1];
      if (x1 == 's' || x1 == 'm') {
        --w;
      } else if (x1 != 't' && x1 != 'd' && i + 2 < total) {
        const char x2 = s[i + 2];
        if ((x1 == 'r' && x2 == 'e') || (x1 == 'v' && x2 == 'e')) --w;
      }
    }
    s[w++] = x;
  }
  s.resize(w);
  return text;
}

}  // namespace nc::engine
