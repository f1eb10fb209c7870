// AVX-512 (F, BW, DQ, VL, VNNI) kernels, selected at run time: dispatches to the per-family files
// (kernels_avx512_q8.cpp, _kquants.cpp, _float.cpp). Functions not specialised keep their AVX2 versions.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "engine/kernels/fp16.h"
#include "engine/kernels/kernels.h"
#include "engine/kernels/quant_blocks.h"
#include "engine/kernels/kernels_avx512_impl.h"
#include "engine/kernels/simd_avx512.h"

namespace nc::engine {

namespace {

// out = silu(g) * u = g / (1 + exp(-g)) * u, with ggml's vector expf (bit-identical to llama.cpp).
void swiglu_avx512(const float* g, const float* u, float* out, int64_t n) {
  int64_t i = 0;
  const __m512 one = _mm512_set1_ps(1.0f);
  for (; i + 16 <= n; i += 16) {
    const __m512 x = _mm512_loadu_ps(g + i);
    const __m512 e = simd::expf_ggml(_mm512_sub_ps(_mm512_setzero_ps(), x));
    _mm512_storeu_ps(out + i, _mm512_mul_ps(_mm512_div_ps(x, _mm512_add_ps(one, e)), _mm512_loadu_ps(u + i)));
  }
  for (; i < n; ++i) out[i] = (g[i] / (1.0f + std::exp(-g[i]))) * u[i];
}

// lora_b_tiles (kernels.h): per tile, r4 / 4 VPDPBUSD for each input half and as many against ones for
// the sums of q (the +128 offset of the high half).
void lora_b_tiles_avx512(const int8_t* tiles, const uint16_t* d, int64_t n_tiles, int r4, const uint8_t* hi,
                         const uint8_t* lo, float s, float* y) {
  const __m512i ones = _mm512_set1_epi8(1);
  const __m512 sv = _mm512_set1_ps(s), k256 = _mm512_set1_ps(256.0f);
  for (int64_t t = 0; t < n_tiles; ++t) {
    const int8_t* tile = tiles + t * 16 * r4;
    __m512i acc_hi = _mm512_setzero_si512(), acc_lo = _mm512_setzero_si512(), sum = _mm512_setzero_si512();
    for (int g = 0; g < r4 / 4; ++g) {
      int32_t h4, l4;
      std::memcpy(&h4, hi + 4 * g, 4);
      std::memcpy(&l4, lo + 4 * g, 4);
      const __m512i w = _mm512_loadu_si512(tile + 64 * g);
      acc_hi = _mm512_dpbusd_epi32(acc_hi, _mm512_set1_epi32(h4), w);
      acc_lo = _mm512_dpbusd_epi32(acc_lo, _mm512_set1_epi32(l4), w);
      sum = _mm512_dpbusd_epi32(sum, ones, w);
    }
    const __m512 vh = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc_hi, _mm512_slli_epi32(sum, 7)));
    const __m512 v = _mm512_add_ps(_mm512_mul_ps(k256, vh), _mm512_cvtepi32_ps(acc_lo));
    const __m512 scale = _mm512_mul_ps(sv, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(d + 16 * t))));
    float* out = y + 16 * t;
    _mm512_storeu_ps(out, _mm512_add_ps(_mm512_loadu_ps(out), _mm512_mul_ps(scale, v)));
  }
}

}  // namespace

void fill_vec_kernels_avx512(VecKernels& k) {
  k.swiglu = swiglu_avx512;
  k.lora_b_tiles = lora_b_tiles_avx512;
}

void fill_kernels_avx512(TypeKernels& k) {
  switch (k.weight_type) {
    case GgmlType::kQ8_0:
    case GgmlType::kQ4_0: avx512::fill_q8_0_q4_0(k); break;
    case GgmlType::kQ4_K: avx512::fill_q4_K(k); break;
    case GgmlType::kQ6_K: avx512::fill_q6_K(k); break;
    case GgmlType::kF16:
    case GgmlType::kBF16:
    case GgmlType::kF32: avx512::fill_float(k); break;
    default: break;
  }
}

}  // namespace nc::engine
