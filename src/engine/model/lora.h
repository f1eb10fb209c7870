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
// Memory (bytes() says how much; independent of the file, closed after load): A and B as f32, or — the
// default on a quantized base model (LoraStorage::kAuto) — as 8-bit integers: A's rows in Q8_0, B's
// rows with one scale each in VPDPBUSD tiles, about 8.5 bits per value, so that a decode step with many
// different adapters reads a quarter of the bytes (with one token per adapter the products are bound
// by memory, not arithmetic; A is also kept in the kernels' packed layout, so it is held twice). A's input is then quantized to 8 bits as for a Q8_0 matrix, B's (the
// rank values A x) to 16 bits. The error this adds to an adapter's
// output is far below the quantized base's own; on an f32/f16/bf16 base kAuto keeps f32 (llama.cpp's
// results to its own tolerance).
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

enum class LoraStorage { kAuto, kF32, kQ8_0 };

// One adapted matrix: out[n_out] += scale · B (A x), x of n_in.
struct LoraWeight {
  int64_t rank = 0, n_in = 0, n_out = 0;
  float scale = 1.0f;
  // What the products' inputs are rounded to, as ggml rounds them for a matrix of that type (f16,
  // bf16, q8_0 blocks; f32: not at all): the file's types of A and B with f32 storage; Q8_0 and f32
  // with Q8_0 storage.
  GgmlType a_type = GgmlType::kF32, b_type = GgmlType::kF32;
  LoraStorage storage = LoraStorage::kF32;
  std::vector<float> a;  // kF32: [rank][n_in]
  std::vector<float> b;  // kF32: [n_out][rank]
  // kQ8_0: A as rank rows of n_in in Q8_0 blocks; B as int8 with one fp16 scale per output row (b_d),
  // rank padded to r4 (a multiple of 4) with zeros, in tiles of 16 outputs laid out for VPDPBUSD
  // (kernels.h lora_b_tiles: q[16t + l][4g .. 4g+3] at byte 16·r4·t + 64g + 4l).
  std::vector<uint8_t> a_q8;
  // A again in the Q8_0 kernels' packed layout (16 rows interleaved, TypeKernels::pack) where this
  // machine's kernels have one: step A is then one VNNI tile per token.
  std::vector<uint8_t> a_packed;
  size_t a_group_bytes = 0;
  std::vector<int8_t> b_tiles;
  std::vector<uint16_t> b_d;
  int r4 = 0;
  size_t b_tile_at(int64_t o, int64_t j) const {  // where q[o][j] is in b_tiles
    return static_cast<size_t>((o / 16) * 16 * r4 + (j / 4) * 64 + (o % 16) * 4 + j % 4);
  }

  // A as [rank][n_in] and B as [n_out][rank] in f32, whatever the storage (the reference pass).
  void to_f32(std::vector<float>* a_out, std::vector<float>* b_out) const;
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
                                                         float user_scale = 1.0f,
                                                         LoraStorage storage = LoraStorage::kAuto);
  static Result<std::shared_ptr<const LoraAdapter>> from_gguf(const GgufFile& file, const Model& base,
                                                              float user_scale = 1.0f,
                                                              LoraStorage storage = LoraStorage::kAuto);

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

// With LoraStorage::kQ8_0, B's input (A x, n values) is quantized to 16-bit integers with one scale
// (amax / 32767), split for lora_b_tiles (kernels.h) into high bytes + 128 (hi) and low bytes (lo);
// returns the scale. With hi null, v is rounded in place instead (the reference pass).
float lora_quantize_b_input(float* v, int64_t n, uint8_t* hi, uint8_t* lo);

// One adapter's product over some tokens of a batch: for each of the n row indices t in `rows`,
// out[t] += scale · B (A x[t]) (rows of x and out are x_stride / out_stride floats apart).
struct LoraProduct {
  const LoraWeight* w = nullptr;
  const int64_t* rows = nullptr;
  int64_t n = 0;
  const float* x = nullptr;
  int64_t x_stride = 0;
  float* out = nullptr;
  int64_t out_stride = 0;
};

// Buffers lora_add reuses from call to call (a Context keeps one); any contents.
struct LoraScratch {
  std::vector<float> tmp, rounded;
  std::vector<uint8_t> acts;
  std::vector<int64_t> first_item, first_pair, first_chunk, input_at;
};

// Every product, in one parallel region per step (S-LoRA/Punica's gathered products: different
// adapters on disjoint tokens, or several matrices of one input, such as q/k/v, at once). A product's
// input is converted once per token for all products that share it (same x, rows and conversion).
// Each token's sums are in one fixed order whatever else is in the batch, so its result does not
// depend on the batch. `pool` may be null (single-threaded); `scratch` may be null.
void lora_add(std::span<const LoraProduct> products, ThreadPool* pool, LoraScratch* scratch = nullptr);

}  // namespace nc::engine
