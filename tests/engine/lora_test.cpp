// LoRA adapters in the engine (lora.h): the batched forward pass with adapters against the reference
// oracle, sequences with different adapters (and none) sharing one batch exactly as each alone, and
// the adapters a base model must refuse, each with an error naming what is wrong. llama.cpp parity is
// the conformance suite's (tests/data/golden/manifest.txt, lora-* entries).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "engine/gguf/gguf_writer.h"
#include "engine/model/context.h"
#include "engine/model/forward_ref.h"
#include "engine/model/lora.h"
#include "engine/model/lora_merge.h"
#include "engine/model/model.h"
#include "engine/model/synth.h"
#include "shared_model.h"
#include "test_util.h"

namespace nc::engine {
namespace {

double rel(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double d2 = 0, r2 = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    d2 += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
    r2 += static_cast<double>(b[i]) * b[i];
  }
  return std::sqrt(d2 / r2);
}

std::string base_model(const std::string& type, const std::string& shape = "tiny") {
  SynthOptions o;
  o.vocab_path = test::vocab_path("llama-spm");
  o.type = type;
  o.shape = shape;
  o.tied = 0;
  return test::shared_model(o);
}

std::string adapter_file(const std::string& base, const std::string& name, const std::string& type, uint64_t seed,
                         const std::string& targets = "qkvo,mlp,output") {
  SynthLoraOptions o;
  o.base_path = base;
  o.type = type;
  o.seed = seed;
  o.targets = targets;
  o.out_path = test::tmp_dir() + "/" + name + ".gguf";
  EXPECT_TRUE(synth_lora(o).is_ok());
  return o.out_path;
}

std::vector<int32_t> tokens(int n, int64_t n_vocab, uint64_t seed) {
  std::vector<int32_t> t(n);
  for (auto& v : t) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    v = static_cast<int32_t>((seed >> 33) % static_cast<uint64_t>(n_vocab));
  }
  return t;
}

std::vector<float> run(const Model& m, const std::vector<int32_t>& toks, const LoraAdapter* a, bool llamacpp = true) {
  ContextParams cp;
  cp.n_ctx = 128;
  cp.n_threads = 2;
  cp.llamacpp_numerics = llamacpp;
  auto ctx = Context::create(m, cp);
  EXPECT_TRUE(ctx.is_ok());
  Batch b;
  for (size_t i = 0; i < toks.size(); ++i) b.add_output(toks[i], static_cast<int32_t>(i), 0, Batch::kLogits, a);
  std::vector<float> logits;
  EXPECT_TRUE((*ctx)->decode(b, logits).is_ok());
  return logits;
}

TEST(Lora, ForwardMatchesTheReferenceWithAnAdapter) {
  for (const auto& [type, lora_type, limit] : {std::tuple{"f32", "f32", 1e-4}, std::tuple{"q8_0", "f16", 2e-2},
                                               std::tuple{"q4_k", "bf16", 2e-2}}) {
    auto m = Model::load(base_model(type));
    ASSERT_TRUE(m.is_ok());
    auto a = LoraAdapter::load(adapter_file(base_model(type), std::string("ref-") + type, lora_type, 3), **m);
    ASSERT_TRUE(a.is_ok()) << a.status().to_string();
    EXPECT_EQ((*a)->n_weights(), 2 * 7 + 1);  // 2 layers x (q, k, v, o, gate, up, down) + output
    const auto toks = tokens(20, (*m)->hparams().n_vocab, 11);
    auto ref = reference_forward(**m, toks, a->get());
    ASSERT_TRUE(ref.is_ok());
    auto base_ref = reference_forward(**m, toks);
    ASSERT_TRUE(base_ref.is_ok());
    EXPECT_GT(rel(*ref, *base_ref), 0.05) << type << ": the adapter changes the logits clearly";
    EXPECT_LE(rel(run(**m, toks, a->get(), false), *ref), limit) << type;
    EXPECT_LE(rel(run(**m, toks, a->get(), true), *ref), std::max(2 * limit, 1e-3)) << type << " (llama.cpp numerics)";
  }
}

// 8-bit adapter storage (the default on quantized bases) against f32 storage, on an f32 base (where no
// other rounding hides it): its own error stays a small fraction of what the adapter changes.
TEST(Lora, EightBitStorageStaysCloseToF32) {
  auto m = Model::load(base_model("f32"));
  ASSERT_TRUE(m.is_ok());
  const std::string path = adapter_file(base_model("f32"), "storage", "f16", 5, "qkvo,mlp");
  auto a32 = LoraAdapter::load(path, **m, 1.0f, LoraStorage::kF32);
  auto a8 = LoraAdapter::load(path, **m, 1.0f, LoraStorage::kQ8_0);
  ASSERT_TRUE(a32.is_ok() && a8.is_ok());
  EXPECT_EQ((*a32)->layer(0).wq->storage, LoraStorage::kF32);
  EXPECT_EQ((*a8)->layer(0).wq->storage, LoraStorage::kQ8_0);
  EXPECT_LT((*a8)->bytes() * 2, (*a32)->bytes());  // 8-bit values (A twice where a packed copy is kept)
  const auto toks = tokens(24, (*m)->hparams().n_vocab, 5);
  const auto base = run(**m, toks, nullptr), l32 = run(**m, toks, a32->get()), l8 = run(**m, toks, a8->get());
  const double effect = rel(l32, base), err = rel(l8, l32);
  EXPECT_GT(effect, 0.05);
  EXPECT_LT(err, 5e-3) << "effect " << effect;
  EXPECT_LT(err, effect / 20);
  // The reference pass models the same storage.
  auto ref8 = reference_forward(**m, toks, a8->get());
  ASSERT_TRUE(ref8.is_ok());
  EXPECT_LE(rel(run(**m, toks, a8->get(), false), *ref8), 3e-4);  // an 8-bit rounding may flip (as in forward_test)
}

TEST(Lora, SequencesWithDifferentAdaptersShareABatch) {
  auto m = Model::load(base_model("q8_0"));
  ASSERT_TRUE(m.is_ok());
  auto a1 = LoraAdapter::load(adapter_file(base_model("q8_0"), "mix-1", "f16", 1), **m);
  auto a2 = LoraAdapter::load(adapter_file(base_model("q8_0"), "mix-2", "f32", 2, "qkvo"), **m);
  ASSERT_TRUE(a1.is_ok() && a2.is_ok());
  const int64_t V = (*m)->hparams().n_vocab;
  const std::vector<const LoraAdapter*> adapters = {nullptr, a1->get(), a2->get(), a1->get()};
  std::vector<std::vector<int32_t>> seqs;
  std::vector<std::vector<float>> alone;
  for (size_t s = 0; s < adapters.size(); ++s) {
    seqs.push_back(tokens(6 + static_cast<int>(s), V, 100 + s));
    alone.push_back(run(**m, seqs[s], adapters[s]));
  }
  EXPECT_GT(rel(alone[1], run(**m, seqs[1], nullptr)), 0.02);  // adapter 1 matters
  ContextParams cp;
  cp.n_ctx = 128;
  cp.n_threads = 2;
  auto ctx = Context::create(**m, cp);
  ASSERT_TRUE(ctx.is_ok());
  // Prefill: the four sequences interleaved in one batch.
  Batch b;
  for (int i = 0; i < 9; ++i)
    for (size_t s = 0; s < seqs.size(); ++s)
      if (i < static_cast<int>(seqs[s].size())) b.add_output(seqs[s][i], i, static_cast<int32_t>(s), Batch::kLogits, adapters[s]);
  std::vector<float> out;
  ASSERT_TRUE((*ctx)->decode(b, out).is_ok());
  std::vector<std::vector<float>> got(seqs.size());
  for (int64_t i = 0; i < b.size(); ++i)
    got[b.seq[i]].insert(got[b.seq[i]].end(), out.begin() + i * V, out.begin() + (i + 1) * V);
  for (size_t s = 0; s < seqs.size(); ++s) EXPECT_EQ(rel(got[s], alone[s]), 0.0) << "sequence " << s;
  // A decode step of all four at once matches each one's own next step.
  const int32_t next = 42;
  Batch step;
  for (size_t s = 0; s < seqs.size(); ++s)
    step.add_output(next, static_cast<int32_t>(seqs[s].size()), static_cast<int32_t>(s), Batch::kLogits, adapters[s]);
  std::vector<float> step_out;
  ASSERT_TRUE((*ctx)->decode(step, step_out).is_ok());
  for (size_t s = 0; s < seqs.size(); ++s) {
    auto longer = seqs[s];
    longer.push_back(next);
    const auto solo = run(**m, longer, adapters[s]);
    const std::vector<float> last(solo.end() - V, solo.end()), mine(step_out.begin() + s * V, step_out.begin() + (s + 1) * V);
    EXPECT_LE(rel(mine, last), 1e-6) << "sequence " << s;
  }
}

// neocloud model merge-lora: the merged model's logits are the base's with the adapter.
TEST(Lora, MergedModelEqualsBasePlusAdapter) {
  // (An f32 adapter on the f32 base: no input rounding on either side; the q8_0 base's merged matrices
  // are f16, so their inputs round differently. f32: as forward_test, summation order may flip a K/V
  // value's fp16 rounding.)
  for (const auto& [type, lora_type, limit] : {std::tuple{"f32", "f32", 1e-4}, std::tuple{"q8_0", "f16", 2e-2}}) {
    const std::string base = base_model(type);
    MergeLoraOptions o;
    o.base_path = base;
    o.adapter_path = adapter_file(base, std::string("merge-") + type, lora_type, 9);
    o.out_path = test::tmp_dir() + "/merged-" + type + ".gguf";
    ASSERT_TRUE(merge_lora(o).is_ok());
    auto m = Model::load(base);
    auto merged = Model::load(o.out_path);
    ASSERT_TRUE(m.is_ok() && merged.is_ok()) << merged.status().to_string();
    auto a = LoraAdapter::load(o.adapter_path, **m, 1.0f, LoraStorage::kF32);
    ASSERT_TRUE(a.is_ok());
    const auto toks = tokens(16, (*m)->hparams().n_vocab, 3);
    const auto with_adapter = run(**m, toks, a->get(), false), from_merged = run(**merged, toks, nullptr, false);
    EXPECT_GT(rel(with_adapter, run(**m, toks, nullptr, false)), 0.05);
    EXPECT_LE(rel(from_merged, with_adapter), limit) << type;
  }
  // A mismatched adapter is refused, and nothing is written.
  MergeLoraOptions bad;
  bad.base_path = base_model("f32");
  bad.adapter_path = adapter_file(base_model("f32", "micro"), "merge-other", "f32", 1);
  bad.out_path = test::tmp_dir() + "/merged-bad.gguf";
  EXPECT_FALSE(merge_lora(bad).is_ok());
  EXPECT_FALSE(std::filesystem::exists(bad.out_path));
}

// Writes an adapter GGUF with the given tensors (name, ne0, ne1) and metadata overrides.
std::string custom_adapter(const std::string& name, const std::vector<std::tuple<std::string, int64_t, int64_t>>& tensors,
                           const std::string& arch = "llama", const std::string& type = "adapter") {
  GgufWriter w;
  w.set_string("general.architecture", arch);
  w.set_string("general.type", type);
  w.set_string("adapter.type", "lora");
  w.set_f32("adapter.lora.alpha", 16.0f);
  for (const auto& [tn, ne0, ne1] : tensors)
    w.add_tensor(tn, GgmlType::kF32, {ne0, ne1}, [](uint8_t* dst, size_t n) { std::fill(dst, dst + n, 0); });
  const std::string path = test::tmp_dir() + "/" + name + ".gguf";
  EXPECT_TRUE(w.write(path).is_ok());
  return path;
}

TEST(Lora, BadAdaptersAreRefusedNamingWhy) {
  auto m = Model::load(base_model("f32"));
  ASSERT_TRUE(m.is_ok());
  const int64_t E = (*m)->hparams().n_embd;
  auto expect_error = [&](const std::string& path, const std::string& words) {
    auto a = LoraAdapter::load(path, **m);
    ASSERT_FALSE(a.is_ok()) << path;
    EXPECT_NE(a.status().to_string().find(words), std::string::npos) << a.status().to_string();
  };
  // An adapter of another shape of model.
  expect_error(adapter_file(base_model("f32", "micro"), "other-base", "f32", 1), "another base model");
  expect_error(custom_adapter("not-adapter", {{"blk.0.attn_q.weight.lora_a", E, 4}}, "llama", "model"), "'adapter'");
  expect_error(custom_adapter("other-arch", {{"blk.0.attn_q.weight.lora_a", E, 4}}, "qwen2"), "architecture");
  expect_error(custom_adapter("half", {{"blk.0.attn_q.weight.lora_a", E, 4}}), "no lora_b");
  expect_error(custom_adapter("embd", {{"token_embd.weight.lora_a", E, 4}, {"token_embd.weight.lora_b", 4, 100}}),
               "not supported");
  expect_error(custom_adapter("layer", {{"blk.9.attn_q.weight.lora_a", E, 4}, {"blk.9.attn_q.weight.lora_b", 4, E}}),
               "not a matrix of this model");
  expect_error(custom_adapter("rank", {{"blk.0.attn_q.weight.lora_a", E, 4}, {"blk.0.attn_q.weight.lora_b", 8, E}}),
               "rank");
  expect_error(custom_adapter("plain", {{"blk.0.attn_q.weight", E, E}}), "not a LoRA tensor");
  expect_error(test::tmp_dir() + "/missing.gguf", "missing.gguf");
  // An adapter of another model in a batch: refused before anything is evaluated.
  auto other = Model::load(base_model("q8_0"));
  ASSERT_TRUE(other.is_ok());
  auto foreign = LoraAdapter::load(adapter_file(base_model("q8_0"), "foreign", "f32", 1), **other);
  ASSERT_TRUE(foreign.is_ok());
  ContextParams cp;
  cp.n_ctx = 32;
  cp.n_threads = 1;
  auto ctx = Context::create(**m, cp);
  Batch b;
  b.add_output(1, 0, 0, Batch::kLogits, foreign->get());
  std::vector<float> out;
  EXPECT_EQ((*ctx)->decode(b, out).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ((*ctx)->kv().n_used_blocks(), 0);
  EXPECT_TRUE(out.empty());
}

}  // namespace
}  // namespace nc::engine
