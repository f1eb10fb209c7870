// Vocab: a model's tokenizer, built from GGUF metadata (tokenizer.ggml.*), with llama.cpp's semantics:
// SPM ("llama"), byte-level BPE ("gpt2", with the pre-tokenizer named by tokenizer.ggml.pre; also
// "gemma4"'s non-byte-level BPE) and WordPiece ("bert"). Special-token partitioning, add_bos/add_eos,
// byte fallback, detokenization with clean-up, end-of-generation tokens.
//
// Ownership: a Vocab owns copies of every string it needs; the GgufFile may be closed after `load`.
// Thread-safety: immutable after `load`; `tokenize`, `token_to_piece` and `detokenize` may be called
// concurrently from any threads.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/status.h"
#include "engine/tokenizer/regex.h"

namespace nc::engine {

class GgufFile;

using TokenId = int32_t;
constexpr TokenId kNoToken = -1;

enum class VocabType { kSpm, kBpe, kWpm };

// Token attributes (llama.cpp's llama_token_attr bits).
enum TokenAttr : uint32_t {
  kAttrUndefined = 0,
  kAttrUnknown = 1 << 0,
  kAttrUnused = 1 << 1,
  kAttrNormal = 1 << 2,
  kAttrControl = 1 << 3,
  kAttrUserDefined = 1 << 4,
  kAttrByte = 1 << 5,
  kAttrLstrip = 1 << 7,
  kAttrRstrip = 1 << 8,
};

struct TokenData {
  std::string text;
  float score = 0;
  uint32_t attr = kAttrNormal;
};

class Vocab {
 public:
  // Reads and validates the tokenizer metadata. Errors name the key and the problem (missing token
  // list, scores or types of the wrong length or type, a merge naming a token that does not exist,
  // an unknown token type, an unknown tokenizer model or pre-tokenizer).
  static Result<std::unique_ptr<Vocab>> load(const GgufFile& gguf);

  // Text -> tokens. `add_special` adds BOS/EOS as the model asks; `parse_special` lets control-token
  // text such as "<|eot_id|>" become that token (user-defined tokens always do).
  std::vector<TokenId> tokenize(std::string_view text, bool add_special, bool parse_special) const;

  // One token's bytes (may be a partial UTF-8 sequence). Control/unknown tokens give "" unless
  // `special`. Up to `lstrip` leading spaces are dropped.
  std::string token_to_piece(TokenId id, bool special, int lstrip = 0) const;
  // Tokens -> text, as llama.cpp's llama_detokenize.
  std::string detokenize(std::span<const TokenId> tokens, bool remove_special, bool unparse_special) const;

  int32_t n_tokens() const { return static_cast<int32_t>(tokens_.size()); }
  const TokenData& token(TokenId id) const { return tokens_[static_cast<size_t>(id)]; }
  TokenId find(std::string_view text) const;
  VocabType type() const { return type_; }
  const std::string& model_name() const { return model_; }  // tokenizer.ggml.model
  const std::string& pre_name() const { return pre_; }      // tokenizer.ggml.pre
  TokenId bos() const { return bos_; }
  TokenId eos() const { return eos_; }
  TokenId eot() const { return eot_; }
  TokenId unk() const { return unk_; }
  TokenId sep() const { return sep_; }
  bool add_bos() const { return add_bos_; }
  bool add_eos() const { return add_eos_; }
  // Whether the model asks for SEP between the parts of a multi-part input (a rerank query and
  // document). As in llama.cpp, `tokenize` never adds it for BPE: the caller that joins the parts does
  // (llama.cpp's llama_vocab_get_add_sep, read by its server's rerank prompt builder). WordPiece's
  // `tokenize(add_special)` ends every input with SEP regardless.
  bool add_sep() const { return add_sep_; }
  bool is_eog(TokenId id) const { return eog_.count(id) != 0; }
  const std::unordered_set<TokenId>& eog_tokens() const { return eog_; }
  bool is_control(TokenId id) const { return (token(id).attr & kAttrControl) != 0; }

 private:
  Vocab() = default;
  struct Fragment {
    TokenId token = kNoToken;  // kNoToken: raw text [offset, offset + length)
    size_t offset = 0, length = 0;
  };
  void partition(std::string_view text, bool parse_special, std::vector<Fragment>& out) const;
  void tokenize_spm(std::string_view text, std::vector<TokenId>& out) const;
  void tokenize_bpe(std::string_view text, std::vector<TokenId>& out) const;
  void tokenize_wpm(std::string_view text, std::vector<TokenId>& out) const;
  void bpe_word(std::string_view word, std::vector<TokenId>& out) const;
  // The <0xNN> byte token for `b`, or kNoToken.
  TokenId find_byte_token(uint8_t b) const;
  // find_byte_token, else the byte as a 1-character token (llama.cpp's byte_to_token), else kNoToken.
  TokenId byte_to_token(uint8_t b) const;
  std::string piece_uncached(TokenId id) const;

  VocabType type_ = VocabType::kSpm;
  std::string model_, pre_;
  std::vector<TokenData> tokens_;
  std::unordered_map<std::string_view, TokenId> text_to_id_;  // keys point into tokens_[i].text
  size_t max_token_len_ = 0;
  // BPE merges: (left id, right id) -> (rank, merged id).
  std::unordered_map<uint64_t, std::pair<int32_t, TokenId>> merges_;
  std::vector<Regex> pre_regexes_;
  std::vector<TokenId> special_tokens_;  // partition candidates, longest text first
  std::vector<std::string> piece_cache_;  // token_to_piece(id, special=true)
  std::unordered_set<TokenId> eog_;

  TokenId bos_ = kNoToken, eos_ = kNoToken, eot_ = kNoToken, eom_ = kNoToken, unk_ = kNoToken,
          sep_ = kNoToken, pad_ = kNoToken;
  bool add_bos_ = false, add_eos_ = false, add_sep_ = false;
  bool add_space_prefix_ = false, escape_whitespaces_ = false, clean_spaces_ = false;
  bool ignore_merges_ = false, byte_encode_ = true, gemma4_newlines_ = false;
  bool wpm_lowercase_ = true, wpm_strip_accents_ = true;
};

}  // namespace nc::engine
