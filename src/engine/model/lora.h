// LoraAdapter: a LoRA adapter in llama.cpp's GGUF format (convert_lora_to_gguf.py; read as
// src/llama-adapter.cpp reads it), bound to the base Model it was checked against, and the products
// the forward pass adds with it.
//
// Format: general.type = "adapter", adapter.type = "lora", general.architecture = the base's,
// adapter.lora.alpha (f32; 0 or absent: no alpha scaling); per adapted matrix W (named as in the base:
// "blk.N.attn_q.weight", ...) two tensors "<W>.lora_a" (ne = [n_in, rank]: rank rows of n_in) and
// "<W>.lora_b" (ne = [rank, n_out]: n_out rows of rank), in F32, F16, BF16 or Q8_0. A token's output
// row then gains scale · B(A x), with scale = user_scale · alpha / rank (user_scale when alpha is 0),
// exactly llama.cpp's build_lora_mm. Adaptable here: attn_q/k/v/output, ffn_gate/up/down of every layer
// and the output (lm head) — what convert_lora_to_gguf.py writes for llama/qwen2 LoRAs of attention and
// MLP projections. Any other tensor (token_embd, norms), a shape that does not match the base, a
// different architecture, or a missing half of a pair is an InvalidArgument naming it; the file is
// validated whole before anything is used.
//
// Memory: A and B are kept as f32 (bytes() says how much), independent of the file (closed after load).
// Ownership: immutable after load; shared (shared_ptr) by every request that uses it, so that unloading
// it elsewhere never touches a request in flight. Threads: any thread may read it.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/thread_pool.h"
#include "engine/gguf/gguf.h"
#include "engine/model/model.h"

namespace nc::engine {

// One adapted matrix: out[n_out] += scale · B (A x), x of n_in.
struct LoraWeight {
  int64_t rank = 0, n_in = 0, n_out = 0;
  float scale = 1.0f;
  // The file's types of A and B: the products' inputs are rounded as ggml rounds them for a matrix
  // of that type (f16, bf16, q8_0 blocks; f32: not at all), so that results follow llama.cpp's.
  GgmlType a_type = GgmlType::kF32, b_type = GgmlType::kF32;
  std::vector<float> a;  // [rank][n_in]
  std::vector<float> b;  // [n_out][rank]
};

// The adapted matrices of one layer (nullptr: that matrix is not adapted).
struct LoraLayer {
  const LoraWeight *wq = nullptr, *wk = nullptr, *wv = nullptr, *wo = nullptr;
  const LoraWeight *gate = nullptr, *up = nullptr, *down = nullptr;
};

class LoraAdapter {
 public:
  // Reads and checks `path` against `base`. user_scale: llama.cpp's --lora-scaled factor (1: --lora).
  static Result<std::shared_ptr<const LoraAdapter>> load(const std::string& path, const Model& base,
                                                         float user_scale = 1.0f);
  static Result<std::shared_ptr<const LoraAdapter>> from_gguf(const GgufFile& file, const Model& base,
                                                              float user_scale = 1.0f);

  const LoraLayer& layer(int64_t il) const { return layers_[static_cast<size_t>(il)]; }
  const LoraWeight* output() const { return output_; }
  float alpha() const { return alpha_; }
  int64_t n_weights() const { return static_cast<int64_t>(weights_.size()); }
  size_t bytes() const;  // memory held by A and B
  // The model it was checked against (a Context refuses an adapter of another model).
  const Model* base() const { return base_; }

 private:
  LoraAdapter() = default;
  const Model* base_ = nullptr;
  float alpha_ = 0;
  std::vector<std::unique_ptr<LoraWeight>> weights_;
  std::vector<LoraLayer> layers_;
  const LoraWeight* output_ = nullptr;
};

// x rounded in place as ggml rounds a product's input for a weight of `type` (its vec_dot_type: f16,
// bf16, q8_0 blocks; f32 and others unchanged). n: a multiple of 32 for q8_0.
void lora_round_input(GgmlType type, float* x, int64_t n);

// One adapter's product over some tokens of a batch: the n row indices in `rows`.
struct LoraProduct {
  const LoraWeight* w = nullptr;
  const int64_t* rows = nullptr;
  int64_t n = 0;
};

// For every product and each of its tokens t: out[t] += scale · B (A x[t]) (rows of x and out are
// x_stride / out_stride floats apart; products of different adapters, on disjoint tokens, share one
// parallel region — S-LoRA/Punica's gathered products). Each token's sums are in one fixed order
// whatever else is in the batch, so its result does not depend on the batch. `pool` may be null.
void lora_add(std::span<const LoraProduct> products, const float* x, int64_t x_stride, float* out, int64_t out_stride,
              ThreadPool* pool);

}  // namespace nc::engine
