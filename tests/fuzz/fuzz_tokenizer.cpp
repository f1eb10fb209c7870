// libFuzzer target: any byte string (invalid UTF-8, special-token text, long runs) through real
// tokenizers — SPM (llama-spm), byte-level BPE (llama-bpe, qwen2), WordPiece (bert-bge) and gemma-4's
// BPE — in every add/parse-special mode, then detokenized and streamed through Utf8Stream and a
// StopMatcher. Must never crash; the streamed text must be valid UTF-8; BPE tokenization of text
// (qwen2: no clean-up of spaces) without special tokens must round-trip byte for byte.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "engine/generate/text_stream.h"
#include "engine/gguf/gguf.h"
#include "engine/tokenizer/vocab.h"

namespace {
using namespace nc::engine;

std::vector<std::unique_ptr<Vocab>>& vocabs() {
  static std::vector<std::unique_ptr<Vocab>> v = [] {
    std::vector<std::unique_ptr<Vocab>> out;
    for (const char* name : {"llama-spm", "llama-bpe", "qwen2", "bert-bge", "gemma-4"}) {
      const std::string path = std::string(NC_LLAMA_SRC) + "/models/ggml-vocab-" + name + ".gguf";
      auto g = GgufFile::open(path);
      if (!g.is_ok()) std::abort();
      auto voc = Vocab::load(**g);
      if (!voc.is_ok()) std::abort();
      out.push_back(std::move(*voc));
    }
    return out;
  }();
  return v;
}

bool valid_utf8(const std::string& s) {
  Utf8Stream u;
  return u.push(s) == s && !u.pending();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 4096) return 0;
  const std::string text(reinterpret_cast<const char*>(data), size);
  for (auto& v : vocabs()) {
    for (int mode = 0; mode < 4; ++mode) {
      const auto ids = v->tokenize(text, mode & 1, mode & 2);
      for (auto id : ids) {
        if (id < 0 || id >= v->n_tokens()) std::abort();
      }
      const std::string back = v->detokenize(ids, false, true);
      Utf8Stream u;
      StopMatcher stop({"\n\n", "</s>"});
      std::string streamed;
      bool stopped = false;
      for (auto id : ids) {
        streamed += stop.push(u.push(v->token_to_piece(id, false)), &stopped);
        if (stopped) break;
      }
      if (!stopped) streamed += stop.push(u.flush(), &stopped) + stop.flush();
      if (!valid_utf8(streamed)) std::abort();
      // Byte-level BPE without special tokens and without space clean-up (qwen2) loses nothing.
      if (v->pre_name() == "qwen2" && mode == 0 && back != text && valid_utf8(text)) std::abort();
    }
  }
  return 0;
}
