// Conformance against llama.cpp: for every model in tests/data/golden/manifest.txt, a synthetic
// model is regenerated (deterministic by seed), evaluated as one batch, and its logits compared
// with llama.cpp's (committed goldens; regenerate with tools/make-goldens.sh).
//   rms(Δ)/rms(ref) over the golden's sampled columns of every position:
//     f32 ≤ 1e-4, f16/bf16 ≤ 3e-3, quantized ≤ 2e-2;   top-1 agreement (full row) ≥ 97%.
// Entries with a LoRA adapter (the manifest's last four columns: adapter type, rank, alpha, targets) are
// compared with llama.cpp's logits under --lora (lora.h); the adapter is written by synth_lora. Twice:
// with the adapter kept in f32 (the same limits), and as serving keeps it on a quantized base (8-bit
// storage, LoraStorage::kAuto), whose own error is ~0.15% of the logits on an exact base (lora_test) but
// which these random quantized models amplify as they amplify any rounding (see forward_test): 1.5x
// the limit and top-1 >= 94% there. (Top-1 with an adapter on a quantized base: >= 95%.)
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/golden.h"
#include "engine/model/context.h"
#include "engine/model/lora.h"
#include "engine/model/model.h"
#include "engine/model/synth.h"
#include "shared_model.h"
#include "test_util.h"

namespace nc::engine {
namespace {

struct Entry {
  std::string name, vocab, arch, type;
  int llama3_rope = 0, tied = 0;
  uint32_t n_tokens = 0;
  uint64_t seed = 0;
  std::string lora_type, lora_targets;  // lora_type "": no adapter
  int64_t lora_rank = 0;
  float lora_alpha = 0;
};

std::vector<Entry> manifest() {
  std::vector<Entry> out;
  std::ifstream f(std::string(NC_GOLDEN_DIR) + "/manifest.txt");
  std::string line;
  while (std::getline(f, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ss(line);
    Entry e;
    ss >> e.name >> e.vocab >> e.arch >> e.type >> e.llama3_rope >> e.tied >> e.n_tokens >> e.seed;
    ss >> e.lora_type >> e.lora_rank >> e.lora_alpha >> e.lora_targets;
    out.push_back(e);
  }
  return out;
}

double tolerance(const std::string& type) {
  if (type == "f32") return 1e-4;
  if (type == "f16" || type == "bf16") return 3e-3;
  return 2e-2;
}

class Conformance : public ::testing::TestWithParam<Entry> {};

TEST_P(Conformance, MatchesLlamaCpp) {
  const Entry e = GetParam();
  test::Golden g;
  ASSERT_TRUE(test::golden_read(std::string(NC_GOLDEN_DIR) + "/" + e.name + ".golden", g)) << e.name;
  SynthOptions o;
  o.vocab_path = test::vocab_path(e.vocab);
  o.arch = e.arch;
  o.type = e.type;
  o.llama3_rope = e.llama3_rope;
  o.tied = e.tied;
  o.seed = 1;
  const std::string path = test::shared_model(o);  // one file for the three kernel levels' runs
  {
    auto m = Model::load(path);
    ASSERT_TRUE(m.is_ok()) << m.status().to_string();
    ASSERT_EQ((*m)->hparams().n_vocab, g.n_vocab);
    ContextParams cp;
    cp.n_ctx = g.tokens.size();
    cp.n_ubatch = g.tokens.size();
    cp.n_threads = 2;
    auto ctx = Context::create(**m, cp);
    ASSERT_TRUE(ctx.is_ok());
    std::string adapter_path;
    if (!e.lora_type.empty()) {
      SynthLoraOptions lo;
      lo.base_path = path;
      lo.type = e.lora_type;
      lo.rank = e.lora_rank;
      lo.alpha = e.lora_alpha;
      lo.targets = e.lora_targets;
      lo.out_path = adapter_path = test::tmp_dir() + "/" + e.name + "-adapter.gguf";
      ASSERT_TRUE(synth_lora(lo).is_ok());
    }
    for (const LoraStorage storage : {LoraStorage::kF32, LoraStorage::kAuto}) {
    std::shared_ptr<const LoraAdapter> adapter;
    if (!adapter_path.empty()) {
      auto a = LoraAdapter::load(adapter_path, **m, 1.0f, storage);
      ASSERT_TRUE(a.is_ok()) << a.status().to_string();
      adapter = *a;
    } else if (storage != LoraStorage::kF32) {
      break;  // no adapter: one run
    }
    (*ctx)->kv().free_seq(0);
    Batch b;
    for (size_t i = 0; i < g.tokens.size(); ++i)
      b.add_output(g.tokens[i], static_cast<int32_t>(i), 0, Batch::kLogits, adapter.get());
    std::vector<float> logits;
    ASSERT_TRUE((*ctx)->decode(b, logits).is_ok());
    double d2 = 0, r2 = 0;
    int agree = 0;
    const size_t V = g.n_vocab;
    for (size_t r = 0; r < g.rows.size(); ++r) {
      const float* row = logits.data() + r * V;
      for (size_t c = 0; c < g.cols.size(); ++c) {
        const double d = row[g.cols[c]] - g.rows[r].vals[c];
        d2 += d * d;
        r2 += static_cast<double>(g.rows[r].vals[c]) * g.rows[r].vals[c];
      }
      size_t am = 0;
      for (size_t i = 1; i < V; ++i)
        if (row[i] > row[am]) am = i;
      agree += static_cast<int>(am) == g.rows[r].argmax;
    }
    const double rel = std::sqrt(d2 / r2);
    const double top1 = static_cast<double>(agree) / g.rows.size();
    const bool int8 = adapter && adapter->layer(0).wq && adapter->layer(0).wq->storage == LoraStorage::kQ8_0;
    const double limit = tolerance(e.type) * (int8 ? 1.5 : 1.0);
    std::printf("[conformance] %-14s rms(d)/rms(ref)=%.3e (limit %.0e) top1=%.1f%%%s\n", e.name.c_str(), rel, limit,
                100 * top1, int8 ? " (adapter in 8-bit storage)" : "");
    EXPECT_LE(rel, limit) << (int8 ? "8-bit adapter storage" : "");
    // Top-1: an adapter on a quantized base leaves more near-ties (4 of 128 rows at the scalar level).
    const bool quantized = e.type != "f32" && e.type != "f16" && e.type != "bf16";
    EXPECT_GE(top1, int8 ? 0.94 : adapter && quantized ? 0.95 : 0.97) << (int8 ? "8-bit adapter storage" : "");
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Goldens, Conformance, ::testing::ValuesIn(manifest()),
                         [](const auto& info) {
                           std::string n = info.param.name;
                           for (auto& ch : n)
                             if (ch == '-') ch = '_';
                           return n;
                         });

TEST(ConformanceManifest, CoversEveryTypeAndFamily) {
  const auto m = manifest();
  for (const char* fam : {"spm", "llama3", "qwen2"})
    for (const char* t : {"f32", "f16", "bf16", "q8_0", "q4_0", "q4_k", "q6_k"}) {
      bool found = false;
      for (const auto& e : m) found |= e.name == std::string(fam) + "-" + t && e.n_tokens >= 64;
      EXPECT_TRUE(found) << fam << "-" << t;
    }
  // Adapters: an f32 base with an f32 adapter (every target, the output too) and quantized bases.
  int lora_quantized = 0;
  bool lora_f32 = false;
  for (const auto& e : m) {
    if (e.lora_type.empty()) continue;
    lora_f32 |= e.type == "f32" && e.lora_type == "f32" && e.lora_targets.find("output") != std::string::npos;
    lora_quantized += e.type != "f32" && e.type != "f16" && e.type != "bf16";
  }
  EXPECT_TRUE(lora_f32);
  EXPECT_GE(lora_quantized, 2);
}

}  // namespace
}  // namespace nc::engine
