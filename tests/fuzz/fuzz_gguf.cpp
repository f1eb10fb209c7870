// libFuzzer target: any byte string given to the GGUF reader (and, when it parses, to the tokenizer
// loader and the model loader) must produce a value or a Status — never a crash, hang or
// out-of-bounds read.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "engine/gguf/gguf.h"
#include "engine/model/model.h"
#include "engine/tokenizer/vocab.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace nc::engine;
  auto f = GgufFile::parse(std::span<const uint8_t>(data, size));
  if (!f.is_ok()) return 0;
  for (const auto& kv : (*f)->kvs()) (void)kv.value.to_display_string(4);
  if (auto v = Vocab::load(**f); v.is_ok()) {
    const auto ids = (*v)->tokenize("Hello <|endoftext|> world 123 \xe2\x82\xac!", true, true);
    (void)(*v)->detokenize(ids, false, true);
  }
  auto m = Model::from_gguf(std::move(f).value(), {.prefault = false});
  (void)m;
  return 0;
}
