// Context: the mutable state needed to run a Model — a paged KV cache, scratch buffers and a thread
// pool — and the batched forward pass itself (`decode`), which evaluates tokens of several
// sequences at their positions in one call.
//
// Ownership: borrows the Model (which must outlive it); owns the KV cache, scratch and pool.
// Thread-safety: one thread drives a Context (the engine's step loop); `decode` uses the pool's
// threads internally.
#pragma once

#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "core/thread_pool.h"
#include "engine/kernels/matmul.h"
#include "engine/kv/kv_cache.h"
#include "engine/model/batch.h"
#include "engine/model/lora.h"
#include "engine/model/model.h"

namespace nc::engine {

struct ContextParams {
  int64_t n_ctx = 4096;          // KV cells in total, shared by all sequences
  int64_t n_ubatch = 512;        // tokens per internal forward chunk (bounds scratch memory)
  int64_t kv_block_size = 16;
  int n_threads = 0;             // 0: all hardware threads
  // Numerics of small batches. true: as llama.cpp on the CPU — the tokens of a sequence with fewer
  // than 64 tokens in a ubatch (every decode step) use llama.cpp's one-chunk attention with an fp16
  // V accumulator (attention_f16acc) and matmul kernels that sum in ggml's order where they differ
  // (Q8_0), so greedy generation follows llama.cpp token for token; a sequence's larger chunks use
  // the f32 blocked attention and the fastest kernels (llama.cpp's tiled path is f32 too).
  // false: always the f32 attention and fastest kernels. Either way a token's result depends only on
  // its own sequence, never on the rest of the batch.
  bool llamacpp_numerics = true;
};

// llama.cpp's CPU flash attention switches to its tiled f32 path for ubatches of this many queries.
constexpr int64_t kTiledMinTokens = 64;
// ... and single-token decode switches to split-KV once the position reaches this.
constexpr int64_t kLlamaSplitKvMinPos = 256;

class Context {
 public:
  static Result<std::unique_ptr<Context>> create(const Model& model, const ContextParams& params);

  // Evaluates every token of `batch`, writing K/V into the cache. For each token with want_logits,
  // in batch order, appends one row of n_vocab logits to `logits` ([n_outputs][n_vocab]).
  // For each token marked Batch::kEmbedding, in batch order, appends its final hidden state after the
  // output norm (n_embd floats, what llama.cpp pools for embeddings) to `*embeddings` (required then).
  // Positions of a sequence must continue it without gaps (a position below its length overwrites).
  // On InvalidArgument/ResourceExhausted nothing is evaluated.
  Status decode(const Batch& batch, std::vector<float>& logits, std::vector<float>* embeddings = nullptr);

  KvCache& kv() { return *kv_; }
  const Model& model() const { return model_; }
  ThreadPool& pool() { return *pool_; }
  const ContextParams& params() const { return params_; }

 private:
  Context(const Model& model, const ContextParams& params);
  // Validates the batch and returns each sequence's length after it.
  Result<std::unordered_map<int32_t, int64_t>> check_batch(const Batch& batch) const;
  // `n_exact`: the first n_exact tokens of [begin, end) need llama.cpp-identical numerics.
  void forward_ubatch(const Batch& batch, int64_t begin, int64_t end, int64_t n_exact, std::vector<float>& logits,
                      std::vector<float>& embeddings);
  void attention(int64_t layer, const Batch& batch, int64_t begin, int64_t n_tokens, int64_t n_exact);

  const Model& model_;
  ContextParams params_;
  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<KvCache> kv_;

  // Scratch, sized for n_ubatch tokens.
  std::vector<float> x_, h_, q_, k_, v_, att_, gate_, up_, rope_cs_, out_h_;
  std::vector<std::vector<float>> scores_;  // per pool thread
  ActBuffer acts_;
  // The ubatch's tokens by LoRA adapter, and the products of one matrix (forward_ubatch).
  struct LoraGroup {
    const LoraAdapter* adapter;
    std::vector<int64_t> rows;
  };
  std::vector<LoraGroup> lora_groups_;
  std::vector<LoraProduct> lora_products_;
  LoraScratch lora_scratch_;
};

}  // namespace nc::engine
