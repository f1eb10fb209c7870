// Attention over a paged fp16 KV cache, flash-attention style: for a set of queries that read the
// same KV head (the query heads of a GQA group, for one or more tokens of one sequence), walk the
// sequence's KV blocks once, keep a running max and sum per query (online softmax, f32) and
// accumulate softmax(q·K^T·scale)·V in f32. Each K/V block is converted from fp16 once and used by
// every query of the set. Causal: query i sees positions 0..max_pos[i].
//
// The scalar version is the reference; the AVX-512 version is tested against it.
// Pure function over caller-owned memory; any thread (scratch must be per thread).
#pragma once

#include <cstdint>

#include "engine/kernels/kernels.h"

namespace nc::engine {

struct AttnArgs {
  int64_t head_dim = 0;        // D
  int n_q = 0;                 // queries in the set
  const float* const* q = nullptr;  // [n_q] pointers to D floats
  const int64_t* max_pos = nullptr; // [n_q] last visible position of each query
  int64_t block_size = 0;      // KV cells per block
  int64_t n_blocks = 0;        // blocks to visit (covering positions 0..max(max_pos))
  const uint16_t* const* k_blocks = nullptr;  // [n_blocks] K of this head at the block's first cell
  const uint16_t* const* v_blocks = nullptr;
  int64_t kv_stride = 0;       // elements between consecutive cells (n_embd_kv)
  float scale = 1.0f;
  float* const* out = nullptr; // [n_q] pointers to D floats
  float* scratch = nullptr;    // attn_scratch_floats(head_dim, n_q, block_size) floats
};

inline int64_t attn_scratch_floats(int64_t head_dim, int n_q, int64_t block_size) {
  return 2 * head_dim * block_size + static_cast<int64_t>(n_q) * (head_dim + 2) + block_size + 64;
}

using AttnFn = void (*)(const AttnArgs& a);
AttnFn attention_kernel(KernelLevel level);
inline AttnFn attention_kernel() { return attention_kernel(best_kernel_level()); }

void attention_ref(const AttnArgs& a);
void attention_avx512(const AttnArgs& a);  // needs head_dim % 16 == 0 and block_size == 16

// llama.cpp's "one-chunk" flash attention numerics (ggml-cpu ops.cpp
// ggml_compute_forward_flash_attn_ext_f16_one_chunk), which it uses for ubatches of fewer than 64
// tokens, single-token decode included: per query, Q is rounded to fp16, cells are visited one by
// one in position order, and the running V accumulator is kept in fp16 (rounded after every fused
// multiply-add and every rescale); the output is acc * (1/sum). Same arguments; `scratch` unused.
void attention_f16acc_ref(const AttnArgs& a);
void attention_f16acc_avx512(const AttnArgs& a);  // needs head_dim % 16 == 0
AttnFn attention_f16acc_kernel(KernelLevel level);

}  // namespace nc::engine
