// AVX-512 (F, BW, DQ, VL, VNNI) kernels, selected at run time: dispatches to the per-family files
// (kernels_avx512_q8.cpp, _kquants.cpp, _float.cpp). Functions not specialised keep their AVX2 versions.
#include <immintrin.h>

#include <cmath>

#include "engine/kernels/kernels.h"
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

}  // namespace

void fill_vec_kernels_avx512(VecKernels& k) { k.swiglu = swiglu_avx512; }

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
