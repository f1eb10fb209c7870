// AVX-512 blocked attention (see attention.h). Per KV block of 16 cells: K is converted to f32 and
// transposed once ([D][16]), so each query's 16 scores are D broadcast-FMAs with no horizontal
// sums; V is converted once ([16][D]). exp is a vectorised polynomial (max error ~2 ulp).
#include <immintrin.h>

#include <cmath>

#include "engine/kernels/attention.h"
#include "engine/kernels/simd_avx512.h"

namespace nc::engine {

void attention_avx512(const AttnArgs& a) {
  const int64_t D = a.head_dim;
  constexpr int B = 16;
  float* kt = a.scratch;                  // [D][16]
  float* vf = kt + D * B;                 // [16][D]
  float* o = vf + D * B;                  // [n_q][D]
  float* ms = o + a.n_q * D;              // [n_q] running max
  float* ss = ms + a.n_q;                 // [n_q] running sum
  for (int i = 0; i < a.n_q; ++i) {
    ms[i] = -INFINITY;
    ss[i] = 0.0f;
    for (int64_t d = 0; d < D; ++d) o[i * D + d] = 0.0f;
  }
  const __m512i idx = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  for (int64_t b = 0; b < a.n_blocks; ++b) {
    const int64_t first = b * B;
    // Which cells of this block does any query see?
    int64_t max_seen = -1;
    for (int i = 0; i < a.n_q; ++i) max_seen = std::max(max_seen, a.max_pos[i]);
    const int n_cells = static_cast<int>(std::min<int64_t>(B, max_seen - first + 1));
    if (n_cells <= 0) break;
    // K -> transposed f32 [D][16]; V -> f32 [16][D]. Cells past n_cells are zero.
    for (int j = 0; j < B; ++j) {
      if (j < n_cells) {
        const uint16_t* k = a.k_blocks[b] + j * a.kv_stride;
        const uint16_t* v = a.v_blocks[b] + j * a.kv_stride;
        for (int64_t d = 0; d < D; d += 16) {
          const __m512 kv = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(k + d)));
          _mm512_i32scatter_ps(kt + d * B + j, _mm512_mullo_epi32(idx, _mm512_set1_epi32(B)), kv, 4);
          _mm512_storeu_ps(vf + j * D + d,
                           _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(v + d))));
        }
      } else {
        for (int64_t d = 0; d < D; ++d) {
          kt[d * B + j] = 0.0f;
          vf[j * D + d] = 0.0f;
        }
      }
    }
    for (int i = 0; i < a.n_q; ++i) {
      const int64_t visible = a.max_pos[i] - first + 1;
      if (visible <= 0) continue;
      const float* q = a.q[i];
      __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
      for (int64_t d = 0; d < D; d += 2) {
        s0 = _mm512_fmadd_ps(_mm512_set1_ps(q[d]), _mm512_loadu_ps(kt + d * B), s0);
        s1 = _mm512_fmadd_ps(_mm512_set1_ps(q[d + 1]), _mm512_loadu_ps(kt + (d + 1) * B), s1);
      }
      __m512 s = _mm512_mul_ps(_mm512_add_ps(s0, s1), _mm512_set1_ps(a.scale));
      const __mmask16 vis = visible >= B ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << visible) - 1);
      s = _mm512_mask_blend_ps(vis, _mm512_set1_ps(-INFINITY), s);
      const float m_new = std::max(ms[i], _mm512_reduce_max_ps(s));
      const float corr = std::exp(ms[i] - m_new);
      const __m512 p = simd::exp512(_mm512_sub_ps(s, _mm512_set1_ps(m_new)));
      ss[i] = ss[i] * corr + _mm512_reduce_add_ps(p);
      ms[i] = m_new;
      alignas(64) float pv[B];
      _mm512_store_ps(pv, p);
      float* oi = o + i * D;
      for (int64_t d = 0; d < D; d += 16) {
        __m512 acc = _mm512_mul_ps(_mm512_loadu_ps(oi + d), _mm512_set1_ps(corr));
        for (int j = 0; j < n_cells; ++j)
          acc = _mm512_fmadd_ps(_mm512_set1_ps(pv[j]), _mm512_loadu_ps(vf + j * D + d), acc);
        _mm512_storeu_ps(oi + d, acc);
      }
    }
  }
  for (int i = 0; i < a.n_q; ++i) {
    const __m512 inv = _mm512_set1_ps(1.0f / ss[i]);
    for (int64_t d = 0; d < D; d += 16)
      _mm512_storeu_ps(a.out[i] + d, _mm512_mul_ps(_mm512_loadu_ps(o + i * D + d), inv));
  }
}

}  // namespace nc::engine
