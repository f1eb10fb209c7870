// libFuzzer target: any byte string given to the GGUF reader (and, when it parses, to the tokenizer
// loader, the LoRA adapter loader — against a micro base model made once — and the model loader) must
// produce a value or a Status — never a crash, hang or out-of-bounds read.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include <unistd.h>

#include <cstdlib>
#include <string>

#include "engine/gguf/gguf.h"
#include "engine/model/lora.h"
#include "engine/model/model.h"
#include "engine/model/synth.h"
#include "engine/tokenizer/vocab.h"

namespace {
// The base model adapters are checked against: the micro llama f32 model of tools/fuzz-corpus.sh's
// adapter seeds (placeholder vocabulary, seed 1).
const nc::engine::Model* base_model() {
  static std::unique_ptr<nc::engine::Model> model = [] {
    char path[] = "/tmp/nc-fuzz-base-XXXXXX";
    const int fd = ::mkstemp(path);
    if (fd >= 0) ::close(fd);
    nc::engine::SynthOptions o;
    o.vocab_path = "builtin:64";
    o.shape = "micro";
    o.type = "f32";
    o.out_path = path;
    std::unique_ptr<nc::engine::Model> m;
    if (nc::engine::synth_model(o).is_ok()) {
      auto r = nc::engine::Model::load(path, {.prefault = false});
      if (r.is_ok()) m = std::move(*r);
    }
    ::unlink(path);  // the mapping stays valid
    return m;
  }();
  return model.get();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace nc::engine;
  auto f = GgufFile::parse(std::span<const uint8_t>(data, size));
  if (!f.is_ok()) return 0;
  if (const Model* base = base_model()) {
    for (LoraStorage st : {LoraStorage::kF32, LoraStorage::kQ8_0}) (void)LoraAdapter::from_gguf(**f, *base, 1.0f, st);
  }
  for (const auto& kv : (*f)->kvs()) (void)kv.value.to_display_string(4);
  if (auto v = Vocab::load(**f); v.is_ok()) {
    const auto ids = (*v)->tokenize("Hello <|endoftext|> world 123 \xe2\x82\xac!", true, true);
    (void)(*v)->detokenize(ids, false, true);
  }
  auto m = Model::from_gguf(std::move(f).value(), {.prefault = false});
  (void)m;
  return 0;
}
