// AVX-512 kernels for F16 / BF16 / F32 weights. Activations are stored as f32 values already
// rounded to fp16/bf16 (as llama.cpp rounds them), so the inner loop is a plain f32 FMA.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "engine/kernels/fp16.h"
#include "engine/kernels/kernels.h"
#include "engine/kernels/kernels_avx512_impl.h"
#include "engine/kernels/quant_blocks.h"
#include "engine/kernels/simd_avx2.h"
#include "engine/kernels/simd_avx512.h"

namespace nc::engine::avx512 {

namespace {

// ---------------------------------------------------------------- F16 / BF16 / F32 ----------------

size_t f32_act_bytes(int64_t n) { return static_cast<size_t>(n) * 4; }

void quantize_f16_as_f32(const float* x, void* out, int64_t n) {
  auto* y = static_cast<float*>(out);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(y + i, _mm512_cvtph_ps(_mm512_cvtps_ph(_mm512_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT)));
  for (; i < n; ++i) y[i] = fp16_to_fp32(fp32_to_fp16(x[i]));
}
void quantize_bf16_as_f32(const float* x, void* out, int64_t n) {
  auto* y = static_cast<float*>(out);
  for (int64_t i = 0; i < n; ++i) y[i] = bf16_to_fp32(fp32_to_bf16(x[i]));
}
void copy_f32(const float* x, void* out, int64_t n) { std::memcpy(out, x, static_cast<size_t>(n) * 4); }

template <GgmlType kType>
inline __m512 load_w16(const uint8_t* w, int64_t i) {
  if constexpr (kType == GgmlType::kF16) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 2 * i)));
  } else if constexpr (kType == GgmlType::kBF16) {
    const __m512i v = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 2 * i)));
    return _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
  } else {
    return _mm512_loadu_ps(reinterpret_cast<const float*>(w) + i);
  }
}
template <GgmlType kType>
inline float load_w1(const uint8_t* w, int64_t i) {
  uint16_t h;
  if constexpr (kType == GgmlType::kF16) {
    std::memcpy(&h, w + 2 * i, 2);
    return fp16_to_fp32(h);
  } else if constexpr (kType == GgmlType::kBF16) {
    std::memcpy(&h, w + 2 * i, 2);
    return bf16_to_fp32(h);
  } else {
    return reinterpret_cast<const float*>(w)[i];
  }
}

template <GgmlType kType, int MR, int NR>
void gemm_float_tile(int64_t n, const uint8_t* w, size_t w_stride, const uint8_t* a, size_t a_stride, float* out,
                     size_t ldo) {
  // Two interleaved partial sums per output, whatever the tile shape: every output is summed in
  // the same order whether it is computed in a decode step or inside a prefill tile, so a
  // sequence's logits do not depend on what else is in the batch.
  constexpr int U = 2;
  __m512 acc[MR][NR][U];
  for (int r = 0; r < MR; ++r)
    for (int c = 0; c < NR; ++c)
      for (int u = 0; u < U; ++u) acc[r][c][u] = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 16 * U <= n; i += 16 * U) {
#pragma GCC unroll 4
    for (int u = 0; u < U; ++u) {
      __m512 av[NR];
#pragma GCC unroll 4
      for (int c = 0; c < NR; ++c)
        av[c] = _mm512_loadu_ps(reinterpret_cast<const float*>(a + c * a_stride) + i + 16 * u);
#pragma GCC unroll 4
      for (int r = 0; r < MR; ++r) {
        const __m512 wv = load_w16<kType>(w + r * w_stride, i + 16 * u);
#pragma GCC unroll 4
        for (int c = 0; c < NR; ++c) acc[r][c][u] = _mm512_fmadd_ps(wv, av[c], acc[r][c][u]);
      }
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int c = 0; c < NR; ++c) {
      __m512 t = acc[r][c][0];
      for (int u = 1; u < U; ++u) t = _mm512_add_ps(t, acc[r][c][u]);
      float s = _mm512_reduce_add_ps(t);
      for (int64_t j = i; j < n; ++j)
        s += load_w1<kType>(w + r * w_stride, j) * reinterpret_cast<const float*>(a + c * a_stride)[j];
      out[c * ldo + r] = s;
    }
}

template <GgmlType kType>
void gemm_float(int64_t n, const uint8_t* w, size_t w_stride, int n_rows, const uint8_t* a, size_t a_stride,
                int n_cols, float* out, size_t ldo) {
  using Fn = void (*)(int64_t, const uint8_t*, size_t, const uint8_t*, size_t, float*, size_t);
  static constexpr Fn kTable[3][4] = {
      {gemm_float_tile<kType, 1, 1>, gemm_float_tile<kType, 1, 2>, gemm_float_tile<kType, 1, 3>,
       gemm_float_tile<kType, 1, 4>},
      {gemm_float_tile<kType, 2, 1>, gemm_float_tile<kType, 2, 2>, gemm_float_tile<kType, 2, 3>,
       gemm_float_tile<kType, 2, 4>},
      {gemm_float_tile<kType, 3, 1>, gemm_float_tile<kType, 3, 2>, gemm_float_tile<kType, 3, 3>,
       gemm_float_tile<kType, 3, 4>},
  };
  kTable[n_rows - 1][n_cols - 1](n, w, w_stride, a, a_stride, out, ldo);
}


// Packed float weights (F16 / BF16 / F32): groups of 16 rows stored column-major, [K][16], so one
// 16-lane vector holds element k of 16 rows and each activation value is a broadcast operand.
// Every output sums its K products in the same order (two interleaved partial sums, even and odd
// k) whatever the tile width: decode and prefill give identical values.
template <GgmlType kType>
constexpr size_t float_elem_bytes() {
  return kType == GgmlType::kF32 ? 4 : 2;
}

template <GgmlType kType>
size_t float_packed_bytes(int64_t n_rows, int64_t n_cols) {
  const int64_t groups = (n_rows + kPackRows - 1) / kPackRows;
  return static_cast<size_t>(groups * kPackRows * n_cols) * float_elem_bytes<kType>();
}

template <GgmlType kType>
void float_pack(const uint8_t* w, size_t row_bytes, int64_t n_rows, int64_t n_cols, uint8_t* out) {
  constexpr size_t E = float_elem_bytes<kType>();
  const int64_t groups = (n_rows + kPackRows - 1) / kPackRows;
  for (int64_t g = 0; g < groups; ++g) {
    uint8_t* o = out + static_cast<size_t>(g * kPackRows * n_cols) * E;
    for (int j = 0; j < kPackRows; ++j) {
      const int64_t r = g * kPackRows + j;
      for (int64_t k = 0; k < n_cols; ++k) {
        if (r < n_rows) std::memcpy(o + (k * kPackRows + j) * E, w + r * row_bytes + k * E, E);
        else std::memset(o + (k * kPackRows + j) * E, 0, E);
      }
    }
  }
}

template <GgmlType kType>
inline __m512 load_col16(const uint8_t* p) {
  if constexpr (kType == GgmlType::kF16) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  } else if constexpr (kType == GgmlType::kBF16) {
    const __m512i v = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    return _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
  } else {
    return _mm512_loadu_ps(reinterpret_cast<const float*>(p));
  }
}

template <GgmlType kType, int NR>
void float_gemm_packed_tile(int64_t n, const uint8_t* pw, size_t group_bytes, int n_groups, int n_rows_valid,
                            const uint8_t* a, size_t a_stride, float* out, size_t ldo) {
  constexpr size_t CB = kPackRows * float_elem_bytes<kType>();  // bytes per packed column
  const float* ac[NR];
  for (int c = 0; c < NR; ++c) ac[c] = reinterpret_cast<const float*>(a + c * a_stride);
  for (int g = 0; g < n_groups; ++g) {
    const uint8_t* gw = pw + g * group_bytes;
    __m512 acc0[NR], acc1[NR];
    for (int c = 0; c < NR; ++c) acc0[c] = acc1[c] = _mm512_setzero_ps();
    int64_t k = 0;
    for (; k + 2 <= n; k += 2) {
      for (size_t off = 0; off < 2 * CB; off += 64)
        _mm_prefetch(reinterpret_cast<const char*>(gw + (k + 128) * CB + off), _MM_HINT_T0);
      const __m512 w0 = load_col16<kType>(gw + k * CB);
      const __m512 w1 = load_col16<kType>(gw + (k + 1) * CB);
#pragma GCC unroll 8
      for (int c = 0; c < NR; ++c) {
        acc0[c] = _mm512_fmadd_ps(w0, _mm512_set1_ps(ac[c][k]), acc0[c]);
        acc1[c] = _mm512_fmadd_ps(w1, _mm512_set1_ps(ac[c][k + 1]), acc1[c]);
      }
    }
    if (k < n) {
      const __m512 w0 = load_col16<kType>(gw + k * CB);
      for (int c = 0; c < NR; ++c) acc0[c] = _mm512_fmadd_ps(w0, _mm512_set1_ps(ac[c][k]), acc0[c]);
    }
    const int valid = std::min(kPackRows, n_rows_valid - g * kPackRows);
    const __mmask16 m = static_cast<__mmask16>((1u << valid) - 1);
    for (int c = 0; c < NR; ++c)
      _mm512_mask_storeu_ps(out + c * ldo + g * kPackRows, m, _mm512_add_ps(acc0[c], acc1[c]));
  }
}

template <GgmlType kType>
void float_gemm_packed(int64_t n, const uint8_t* pw, size_t group_bytes, int n_groups, int n_rows_valid,
                       const uint8_t* a, size_t a_stride, int n_cols, float* out, size_t ldo) {
  using Fn = void (*)(int64_t, const uint8_t*, size_t, int, int, const uint8_t*, size_t, float*, size_t);
  static constexpr Fn kTable[8] = {
      float_gemm_packed_tile<kType, 1>, float_gemm_packed_tile<kType, 2>, float_gemm_packed_tile<kType, 3>,
      float_gemm_packed_tile<kType, 4>, float_gemm_packed_tile<kType, 5>, float_gemm_packed_tile<kType, 6>,
      float_gemm_packed_tile<kType, 7>, float_gemm_packed_tile<kType, 8>};
  kTable[n_cols - 1](n, pw, group_bytes, n_groups, n_rows_valid, a, a_stride, out, ldo);
}

template <GgmlType kType>
float dot_float(int64_t n, const void* w, const void* a) {
  float out;
  gemm_float_tile<kType, 1, 1>(n, static_cast<const uint8_t*>(w), 0, static_cast<const uint8_t*>(a), 0, &out, 1);
  return out;
}

template <GgmlType kType>
void set_float_kernels(TypeKernels& k, void (*quantize)(const float*, void*, int64_t)) {
  k.packed_bytes = float_packed_bytes<kType>;
  k.pack = float_pack<kType>;
  k.gemm_packed = float_gemm_packed<kType>;
  k.quantize_act = quantize;
  k.vec_dot = dot_float<kType>;
  k.gemm = gemm_float<kType>;
}

}  // namespace

void fill_float(TypeKernels& k) {
  k.act_bytes = f32_act_bytes;
  k.act_is_ggml = k.weight_type == GgmlType::kF32;
  k.gemm_max_rows = 3;  // 3x3 tiles x 2 partial sums = 18 accumulators
  k.gemm_max_cols = 3;
  k.pack_rows = kPackRows;
  k.gemm_packed_max_cols = 8;
  if (k.weight_type == GgmlType::kF16) set_float_kernels<GgmlType::kF16>(k, quantize_f16_as_f32);
  else if (k.weight_type == GgmlType::kBF16) set_float_kernels<GgmlType::kBF16>(k, quantize_bf16_as_f32);
  else set_float_kernels<GgmlType::kF32>(k, copy_f32);
}

}  // namespace nc::engine::avx512
