// The BPE pre-tokenizers: `tokenizer.ggml.pre` name -> split regexes and the flags that name implies
// (llama.cpp's llama_vocab::impl::load and llm_tokenizer_bpe). Thread-safety: pure function.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace nc::engine {

struct PreTokenizerSpec {
  std::string type;                  // canonical family, e.g. "llama3"
  std::vector<std::string> regexes;  // applied in sequence
  bool clean_spaces = true;
  bool ignore_merges = false;
  bool force_add_bos = false;        // the family sets add_bos = true (GGUF may still override)
  bool escape_whitespaces = false;   // ' ' -> U+2581 before splitting (SPM-style BPE)
  bool byte_encode = true;           // GPT-2 byte-level encoding of each word
  bool add_sep = false;
  bool no_bos = false;               // the family has no BOS token (chatglm)
  bool gemma4_newlines = false;      // a word of only '\n' that is a token is kept whole
};

// An empty name or "default" selects the default splitter; an unknown name is an error, and so is a
// known name whose splitter this engine does not implement (the error says which).
Result<PreTokenizerSpec> pre_tokenizer_for(std::string_view name);

}  // namespace nc::engine
