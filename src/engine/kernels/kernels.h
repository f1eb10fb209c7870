// Per-weight-type compute kernels and their run-time dispatch.
//
// A matmul y = W·x with W in a GGUF weight type first converts the f32 activation row x into the
// type's activation format (as llama.cpp does: Q8_0 for Q8_0/Q4_0 weights, Q8_K for Q4_K/Q6_K,
// fp16 for F16, bf16 for BF16, f32 for F32), then takes one dot product per output element.
// Every type has a scalar reference implementation (the oracle) and SIMD versions (AVX2, AVX-512)
// chosen at run time from the CPU's features; tests check SIMD against the reference.
//
// All functions are pure over their arguments and may be called from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "engine/gguf/ggml_type.h"

namespace nc::engine {

enum class KernelLevel { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };
std::string_view kernel_level_name(KernelLevel level);
// The best level this CPU supports (respects the NEOCLOUD_KERNELS=scalar|avx2|avx512 override).
KernelLevel best_kernel_level();

// Tile kernel: out[c * ldo + r] = dot(W row r, activation row c) for r < n_rows, c < n_cols.
// Rows are w_stride bytes apart, activation rows a_stride bytes apart.
using GemmFn = void (*)(int64_t n, const uint8_t* w, size_t w_stride, int n_rows, const uint8_t* a, size_t a_stride,
                        int n_cols, float* out, size_t ldo);

struct TypeKernels {
  GgmlType weight_type = GgmlType::kF32;
  GgmlType act_type = GgmlType::kF32;  // llama.cpp's vec_dot_type for this weight type
  // Converts n f32 values into the activation format (n is a multiple of the activation block).
  // SIMD levels may use their own layout of the same values (e.g. unpacked scales); act_bytes gives
  // its size and act_is_ggml tells whether it is byte-identical to ggml's act_type rows.
  void (*quantize_act)(const float* x, void* out, int64_t n) = nullptr;
  size_t (*act_bytes)(int64_t n) = nullptr;
  bool act_is_ggml = true;
  // Dot product of one weight row with one activation row, n elements.
  float (*vec_dot)(int64_t n, const void* w_row, const void* act_row) = nullptr;
  // Optional multi-row x multi-column tile kernel; nullptr means use vec_dot.
  GemmFn gemm = nullptr;
  int gemm_max_rows = 0;  // the largest n_rows / n_cols the tile kernel accepts
  int gemm_max_cols = 0;
  // Optional: weights repacked once at load into groups of `pack_rows` interleaved rows.
  // gemm_packed computes out[c*ldo + 16g + j] for n_groups groups from `packed` (groups
  // group_bytes apart), writing only rows < n_rows_valid (counted from the first group).
  int pack_rows = 0;
  size_t (*packed_bytes)(int64_t n_rows, int64_t n_cols) = nullptr;
  void (*pack)(const uint8_t* w, size_t row_bytes, int64_t n_rows, int64_t n_cols, uint8_t* out) = nullptr;
  void (*gemm_packed)(int64_t n, const uint8_t* packed, size_t group_bytes, int n_groups, int n_rows_valid,
                      const uint8_t* a, size_t a_stride, int n_cols, float* out, size_t ldo) = nullptr;
  int gemm_packed_max_cols = 0;
  // Optional faster packed kernel that sums in another order than llama.cpp (gemm_packed keeps
  // llama.cpp's order where the two differ). matmul uses it for columns past ActBuffer::n_exact.
  void (*gemm_packed_fast)(int64_t n, const uint8_t* packed, size_t group_bytes, int n_groups, int n_rows_valid,
                           const uint8_t* a, size_t a_stride, int n_cols, float* out, size_t ldo) = nullptr;
  int gemm_packed_fast_max_cols = 0;
  // Weight row -> f32 (for embeddings lookup and the reference forward pass).
  void (*dequantize_row)(const void* w_row, float* out, int64_t n) = nullptr;
};

// True for the weight types the engine computes with: F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K.
bool weight_type_supported(GgmlType type);
// The kernels for a supported weight type at `level` (falls back to lower levels per function).
const TypeKernels& type_kernels(GgmlType weight_type, KernelLevel level);
inline const TypeKernels& type_kernels(GgmlType weight_type) { return type_kernels(weight_type, best_kernel_level()); }

// Vector primitives of the element-wise ops (attention has its own kernels: attention.h).
struct VecKernels {
  void (*f32_to_f16)(const float* x, uint16_t* y, int64_t n) = nullptr;
  // out = silu(g) * u
  void (*swiglu)(const float* g, const float* u, float* out, int64_t n) = nullptr;
  // LoRA's B products (lora.h): for each of n_tiles tiles of 16 outputs o, with the input v[j] =
  // 256 · (hi[j] − 128) + lo[j] given as two rows of r4 unsigned bytes (16 bits in all),
  //   y[o] += (s · fp16(d[o])) · (256 · (Σ_j hi[j] · q[o][j] − 128 · Σ_j q[o][j]) + Σ_j lo[j] · q[o][j])
  // where a tile stores q[16t + l][4g .. 4g+3] for lane l at byte 64g + 4l (r4 / 4 groups of 64 bytes).
  // The integer sums are exact, so every level gives the same result.
  void (*lora_b_tiles)(const int8_t* tiles, const uint16_t* d, int64_t n_tiles, int r4, const uint8_t* hi,
                       const uint8_t* lo, float s, float* y) = nullptr;
};
const VecKernels& vec_kernels(KernelLevel level);
inline const VecKernels& vec_kernels() { return vec_kernels(best_kernel_level()); }
void fill_vec_kernels_scalar(VecKernels& k);
void fill_vec_kernels_avx2(VecKernels& k);
void fill_vec_kernels_avx512(VecKernels& k);

// Reference weight quantizers (ggml's *_ref), used to write synthetic models and in tests.
void quantize_row_q8_0_ref(const float* x, void* out, int64_t n);
void quantize_row_q4_0_ref(const float* x, void* out, int64_t n);

// Table-filling functions implemented per SIMD level (kernels_avx2.cpp, kernels_avx512.cpp).
void fill_kernels_scalar(TypeKernels& k);
void fill_kernels_avx2(TypeKernels& k);
void fill_kernels_avx512(TypeKernels& k);

}  // namespace nc::engine
