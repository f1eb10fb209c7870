// Threaded matrix multiplication of GGUF weights with f32 activations: y[t][r] = W_r · x[t].
// Activations are first converted to the weight type's activation format (see kernels.h), once
// per input, so several weights that read the same input (Q/K/V, gate/up) share the conversion and
// run in one parallel region.
// Thread-safety: functions take the pool and scratch explicitly; call from the pool's owner thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "core/thread_pool.h"
#include "engine/gguf/ggml_type.h"
#include "engine/kernels/kernels.h"

namespace nc::engine {

// A weight matrix used in place (e.g. from the mmap): n_rows rows of n_cols elements.
struct WeightView {
  GgmlType type = GgmlType::kF32;
  const uint8_t* data = nullptr;  // not owned
  int64_t n_cols = 0;             // K, ne[0]
  int64_t n_rows = 0;             // ne[1]
  size_t row_bytes = 0;
  // Optional copy in the kernel's interleaved layout (see TypeKernels::pack); owned by the Model.
  const uint8_t* packed = nullptr;
  size_t packed_group_bytes = 0;  // bytes per group of pack_rows rows
};

// Activation rows converted for one activation type. Owns its buffer; reuse it across calls.
struct ActBuffer {
  GgmlType act_type = GgmlType::kF32;
  int64_t n_tokens = 0;
  int64_t n_cols = 0;
  size_t row_bytes = 0;
  int64_t n_exact = 0;  // the first n_exact rows need llama.cpp-identical sums (TypeKernels::gemm_packed)
  std::vector<uint8_t> data;
  const uint8_t* row(int64_t t) const { return data.data() + static_cast<size_t>(t) * row_bytes; }
};

// Converts x [n_tokens][n_cols] (row stride ldx floats) for weights of type `weight_type`. The
// first `n_exact` rows (-1: all) are computed in llama.cpp's summation order; the others may use a
// faster kernel that sums in another order (TypeKernels::gemm_packed_fast).
void matmul_prepare(GgmlType weight_type, const float* x, int64_t n_tokens, int64_t n_cols, int64_t ldx,
                    ActBuffer& out, ThreadPool& pool, int64_t n_exact = -1);

struct MatmulJob {
  const WeightView* w;
  float* y;      // [n_tokens][ldy]
  int64_t ldy;
};

// Runs every job against the same prepared activations, in one parallel region.
void matmul_run(std::span<const MatmulJob> jobs, const ActBuffer& acts, ThreadPool& pool);

// Convenience: prepare + run for one weight.
void matmul(const WeightView& w, const float* x, int64_t n_tokens, int64_t ldx, float* y, int64_t ldy,
            ActBuffer& scratch, ThreadPool& pool, int64_t n_exact = -1);

}  // namespace nc::engine
