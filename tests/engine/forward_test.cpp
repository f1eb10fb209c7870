// The fast batched forward pass (Context::decode) against the reference forward pass (the oracle),
// plus batching invariants: several sequences in one batch, chunked prefill and token-by-token
// decode all give the logits of a plain single-sequence run.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "engine/gguf/gguf_writer.h"
#include "engine/model/context.h"
#include "engine/model/forward_ref.h"
#include "engine/model/model.h"
#include "engine/model/synth.h"
#include "shared_model.h"
#include "test_util.h"

namespace nc::engine {
namespace {

struct Cmp {
  double rel = 0;
  double top1 = 0;
};
Cmp compare(const std::vector<float>& a, const std::vector<float>& b, int64_t n_vocab) {
  EXPECT_EQ(a.size(), b.size());
  double d2 = 0, r2 = 0;
  int64_t agree = 0, rows = static_cast<int64_t>(b.size()) / n_vocab;
  for (int64_t r = 0; r < rows; ++r) {
    int64_t ia = 0, ib = 0;
    for (int64_t i = 0; i < n_vocab; ++i) {
      const double x = a[r * n_vocab + i], y = b[r * n_vocab + i];
      d2 += (x - y) * (x - y);
      r2 += y * y;
      if (a[r * n_vocab + i] > a[r * n_vocab + ia]) ia = i;
      if (b[r * n_vocab + i] > b[r * n_vocab + ib]) ib = i;
    }
    agree += ia == ib;
  }
  return {std::sqrt(d2 / r2), static_cast<double>(agree) / rows};
}

std::string synth(const std::string& type, const std::string& arch, int tied = -1) {
  SynthOptions o;
  o.vocab_path = test::vocab_path("llama-spm");
  o.type = type;
  o.arch = arch;
  o.tied = tied;
  return test::shared_model(o);
}

std::vector<int32_t> tokens(int n, int64_t n_vocab, uint32_t seed = 7) {
  std::vector<int32_t> t(n);
  uint64_t s = seed;
  for (auto& v : t) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    v = static_cast<int32_t>((s >> 33) % static_cast<uint64_t>(n_vocab));
  }
  return t;
}

std::vector<float> run_batch(const Model& m, const std::vector<int32_t>& toks, int64_t ubatch = 512, int threads = 2,
                             bool llamacpp_numerics = true) {
  ContextParams cp;
  cp.llamacpp_numerics = llamacpp_numerics;
  cp.n_ctx = 256;
  cp.n_ubatch = ubatch;
  cp.n_threads = threads;
  auto ctx = Context::create(m, cp);
  EXPECT_TRUE(ctx.is_ok());
  Batch b;
  for (size_t i = 0; i < toks.size(); ++i) b.add(toks[i], static_cast<int32_t>(i), 0, true);
  std::vector<float> logits;
  Status s = (*ctx)->decode(b, logits);
  EXPECT_TRUE(s.is_ok()) << s.to_string();
  return logits;
}

struct Case {
  const char* type;
  const char* arch;
  double max_rel;
};

class ForwardVsReference : public ::testing::TestWithParam<Case> {};

TEST_P(ForwardVsReference, LogitsAgree) {
  const Case c = GetParam();
  auto m = Model::load(synth(c.type, c.arch));
  ASSERT_TRUE(m.is_ok()) << m.status().to_string();
  const auto toks = tokens(24, (*m)->hparams().n_vocab);
  auto ref = reference_forward(**m, toks);
  ASSERT_TRUE(ref.is_ok());
  // The f32 attention kernel against the oracle.
  const auto got = run_batch(**m, toks, 512, 2, /*llamacpp_numerics=*/false);
  const Cmp r = compare(got, *ref, (*m)->hparams().n_vocab);
  EXPECT_LE(r.rel, c.max_rel) << c.type << " " << c.arch;
  EXPECT_GE(r.top1, 0.95) << c.type << " " << c.arch;
  // llama.cpp's small-batch attention (fp16 V accumulator, used here since 24 < 64 tokens) costs
  // some accuracy: about one fp16 rounding per step of the accumulation.
  const auto got16 = run_batch(**m, toks);
  const Cmp r16 = compare(got16, *ref, (*m)->hparams().n_vocab);
  EXPECT_LE(r16.rel, std::max(2 * c.max_rel, 1e-3)) << c.type << " " << c.arch << " (fp16-accumulator attention)";
  EXPECT_GE(r16.top1, 0.95) << c.type << " " << c.arch;
}

// Tolerances: f32 differs in summation order, which occasionally flips the fp16 rounding of a K/V
// value (2^-11 relative) and so reaches ~5e-5; f16/bf16 by that order through rounding of
// activations; quantized types by occasional flips of an activation's 8-bit rounding that cascade.
INSTANTIATE_TEST_SUITE_P(AllTypes, ForwardVsReference,
                         ::testing::Values(Case{"f32", "llama", 1e-4}, Case{"f16", "llama", 2e-3},
                                           Case{"bf16", "llama", 3e-3}, Case{"q8_0", "llama", 2e-2},
                                           Case{"q4_0", "llama", 2e-2}, Case{"q4_k", "llama", 2e-2},
                                           Case{"q6_k", "llama", 2e-2}, Case{"q4_k_m", "llama", 2e-2},
                                           Case{"f32", "qwen2", 1e-4}, Case{"q8_0", "qwen2", 2e-2}),
                         [](const auto& info) { return std::string(info.param.type) + "_" + info.param.arch; });

TEST(Forward, ChunkedPrefillAndTokenByTokenMatchOneBatch) {
  auto m = Model::load(synth("f32", "llama"));
  ASSERT_TRUE(m.is_ok());
  const int64_t V = (*m)->hparams().n_vocab;
  const auto toks = tokens(40, V);
  const auto whole = run_batch(**m, toks);
  EXPECT_LE(compare(run_batch(**m, toks, 7), whole, V).rel, 1e-6);
  EXPECT_LE(compare(run_batch(**m, toks, 512, 1), whole, V).rel, 1e-6);
  // Token by token through the KV cache.
  ContextParams cp;
  cp.n_ctx = 64;
  cp.n_threads = 2;
  auto ctx = Context::create(**m, cp);
  std::vector<float> step;
  for (size_t i = 0; i < toks.size(); ++i) {
    Batch b;
    b.add(toks[i], static_cast<int32_t>(i), 0, true);
    ASSERT_TRUE((*ctx)->decode(b, step).is_ok());
  }
  EXPECT_LE(compare(step, whole, V).rel, 1e-6);
}

TEST(Forward, SequencesInOneBatchAreIndependent) {
  auto m = Model::load(synth("q8_0", "llama"));
  ASSERT_TRUE(m.is_ok());
  const int64_t V = (*m)->hparams().n_vocab;
  const auto a = tokens(12, V, 1), b = tokens(9, V, 2);
  const auto la = run_batch(**m, a), lb = run_batch(**m, b);
  ContextParams cp;
  cp.n_ctx = 128;
  cp.n_threads = 2;
  auto ctx = Context::create(**m, cp);
  // Interleave the two sequences (ids 3 and 5) in one batch.
  Batch batch;
  for (size_t i = 0; i < 12; ++i) {
    batch.add(a[i], static_cast<int32_t>(i), 3, true);
    if (i < 9) batch.add(b[i], static_cast<int32_t>(i), 5, true);
  }
  std::vector<float> out;
  ASSERT_TRUE((*ctx)->decode(batch, out).is_ok());
  std::vector<float> oa, ob;
  for (int64_t i = 0, k = 0; i < batch.size(); ++i, ++k)
    (batch.seq[i] == 3 ? oa : ob).insert((batch.seq[i] == 3 ? oa : ob).end(), out.begin() + k * V,
                                         out.begin() + (k + 1) * V);
  EXPECT_LE(compare(oa, la, V).rel, 1e-6);
  EXPECT_LE(compare(ob, lb, V).rel, 1e-6);
  EXPECT_EQ((*ctx)->kv().length(3), 12);
  (*ctx)->kv().free_seq(3);
  (*ctx)->kv().free_seq(5);
  EXPECT_EQ((*ctx)->kv().n_used_blocks(), 0);
}

TEST(Forward, BadBatchesAreRejectedWithoutSideEffects) {
  auto m = Model::load(synth("f32", "llama"));
  ASSERT_TRUE(m.is_ok());
  ContextParams cp;
  cp.n_ctx = 32;
  cp.n_threads = 1;
  auto ctx = Context::create(**m, cp);
  std::vector<float> out;
  Batch bad_token;
  bad_token.add(static_cast<int32_t>((*m)->hparams().n_vocab), 0, 0, true);
  Status s = (*ctx)->decode(bad_token, out);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("outside the vocabulary"), std::string::npos);
  Batch gap;
  gap.add(1, 5, 0, true);
  EXPECT_EQ((*ctx)->decode(gap, out).code(), StatusCode::kInvalidArgument);
  Batch too_long;
  for (int i = 0; i < 40; ++i) too_long.add(1, i, 0, i == 39);
  s = (*ctx)->decode(too_long, out);
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted);
  EXPECT_NE(s.message().find("KV cache full"), std::string::npos);
  EXPECT_EQ((*ctx)->kv().n_used_blocks(), 0);
  EXPECT_TRUE(out.empty());
}

TEST(ModelLoad, ClearErrorsForUnusableFiles) {
  const std::string dir = test::tmp_dir();
  auto write = [&](const std::string& name, const std::function<void(GgufWriter&)>& f) {
    GgufWriter w;
    f(w);
    EXPECT_TRUE(w.write(dir + "/" + name).is_ok());
    return dir + "/" + name;
  };
  auto err = [](const std::string& path) { return Model::load(path).status().message(); };
  EXPECT_NE(err(write("noarch.gguf", [](GgufWriter&) {})).find("general.architecture"), std::string::npos);
  EXPECT_NE(err(write("gpt.gguf", [](GgufWriter& w) { w.set_string("general.architecture", "gptj"); }))
                .find("architecture 'gptj' is not supported"),
            std::string::npos);
  auto base = [](GgufWriter& w) {
    w.set_string("general.architecture", "llama");
    w.set_u32("llama.context_length", 128);
    w.set_u32("llama.embedding_length", 32);
    w.set_u32("llama.block_count", 1);
    w.set_u32("llama.feed_forward_length", 64);
    w.set_u32("llama.attention.head_count", 4);
  };
  EXPECT_NE(err(write("noeps.gguf", base)).find("layer_norm_rms_epsilon"), std::string::npos);
  EXPECT_NE(err(write("wrongtype.gguf",
                      [&](GgufWriter& w) {
                        base(w);
                        w.set_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
                        w.set_f32("llama.block_count", 1.0f);
                      }))
                .find("has type f32, expected u32"),
            std::string::npos);
  // A block count the file cannot back is refused before anything is allocated for it (found by fuzzing).
  EXPECT_NE(err(write("hugelayers.gguf",
                      [&](GgufWriter& w) {
                        base(w);
                        w.set_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
                        w.set_u32("llama.block_count", 2000000000u);
                        w.add_tensor("token_embd.weight", GgmlType::kF32, {32, 10}, nullptr);
                      }))
                .find("block_count is 2000000000 but the file has only 1 tensors"),
            std::string::npos);
  EXPECT_NE(err(write("notensors.gguf",
                      [&](GgufWriter& w) {
                        base(w);
                        w.set_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
                      }))
                .find("'token_embd.weight' is missing"),
            std::string::npos);
  EXPECT_NE(err(write("badshape.gguf",
                      [&](GgufWriter& w) {
                        base(w);
                        w.set_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
                        w.add_tensor("token_embd.weight", GgmlType::kF32, {32, 10}, nullptr);
                        w.add_tensor("blk.0.attn_norm.weight", GgmlType::kF32, {32}, nullptr);
                        w.add_tensor("blk.0.attn_q.weight", GgmlType::kF32, {32, 16}, nullptr);
                      }))
                .find("'blk.0.attn_q.weight' has shape [32, 16, 1, 1], expected [32, 32]"),
            std::string::npos);
  EXPECT_NE(err(write("q5.gguf",
                      [&](GgufWriter& w) {
                        base(w);
                        w.set_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
                        w.add_tensor("token_embd.weight", GgmlType::kQ5_0, {32, 10}, nullptr);
                      }))
                .find("type q5_0, which the engine cannot compute with yet"),
            std::string::npos);
}

}  // namespace
}  // namespace nc::engine
