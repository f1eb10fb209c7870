// llama.cpp's one-chunk attention numerics (see attention.h): scalar reference and AVX-512 version.
#include <immintrin.h>

#include <cmath>
#include <vector>

#include "engine/kernels/attention.h"
#include "engine/kernels/fp16.h"

namespace nc::engine {

void attention_f16acc_ref(const AttnArgs& a) {
  const int64_t D = a.head_dim, B = a.block_size;
  std::vector<float> q16(D);
  std::vector<uint16_t> acc(D);
  for (int i = 0; i < a.n_q; ++i) {
    for (int64_t d = 0; d < D; ++d) q16[d] = fp16_to_fp32(fp32_to_fp16(a.q[i][d]));
    std::fill(acc.begin(), acc.end(), uint16_t{0});
    float S = 0.0f, M = -INFINITY;
    for (int64_t pos = 0; pos <= a.max_pos[i]; ++pos) {
      const uint16_t* k = a.k_blocks[pos / B] + (pos % B) * a.kv_stride;
      const uint16_t* v = a.v_blocks[pos / B] + (pos % B) * a.kv_stride;
      float s = 0.0f;
      for (int64_t d = 0; d < D; ++d) s = std::fma(q16[d], fp16_to_fp32(k[d]), s);
      s = s * a.scale;
      const float Mold = M;
      float ms = 1.0f, vs = 1.0f;
      if (s > M) {
        M = s;
        ms = std::exp(Mold - M);
        for (int64_t d = 0; d < D; ++d) acc[d] = fp32_to_fp16(fp16_to_fp32(acc[d]) * ms);
      } else {
        vs = std::exp(s - M);
      }
      for (int64_t d = 0; d < D; ++d) acc[d] = fp32_to_fp16(std::fma(fp16_to_fp32(v[d]), vs, fp16_to_fp32(acc[d])));
      S = std::fma(S, ms, vs);
    }
    const float inv = S == 0.0f ? 0.0f : 1.0f / S;
    for (int64_t d = 0; d < D; ++d) a.out[i][d] = fp16_to_fp32(acc[d]) * inv;
  }
}

__attribute__((target("avx512f,avx512bw,avx512vl,f16c,fma")))
void attention_f16acc_avx512(const AttnArgs& a) {
  const int64_t D = a.head_dim, B = a.block_size;
  constexpr int kMaxD = 512;
  alignas(64) uint16_t q16[kMaxD];
  alignas(64) uint16_t acc[kMaxD];
  if (D > kMaxD) {
    attention_f16acc_ref(a);
    return;
  }
  const int nv = static_cast<int>(D / 16);
  for (int i = 0; i < a.n_q; ++i) {
    for (int c = 0; c < nv; ++c) {
      const __m512 x = _mm512_loadu_ps(a.q[i] + c * 16);
      _mm256_store_si256(reinterpret_cast<__m256i*>(q16 + c * 16), _mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT));
      _mm256_store_si256(reinterpret_cast<__m256i*>(acc + c * 16), _mm256_setzero_si256());
    }
    float S = 0.0f, M = -INFINITY;
    for (int64_t pos = 0; pos <= a.max_pos[i]; ++pos) {
      const uint16_t* k = a.k_blocks[pos / B] + (pos % B) * a.kv_stride;
      const uint16_t* v = a.v_blocks[pos / B] + (pos % B) * a.kv_stride;
      // q·k in ggml_vec_dot_f16's order: four 16-lane accumulators over 64-element steps, reduced
      // (0+2, 1+3, then 0+1), then a double-precision tail.
      __m512 sum[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
      const int64_t np = D & ~int64_t{63};
      for (int64_t i0 = 0; i0 < np; i0 += 64) {
        for (int j = 0; j < 4; ++j) {
          const __m512 kf = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(k + i0 + 16 * j)));
          const __m512 qf = _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(q16 + i0 + 16 * j)));
          sum[j] = _mm512_fmadd_ps(kf, qf, sum[j]);
        }
      }
      sum[0] = _mm512_add_ps(sum[0], sum[2]);
      sum[1] = _mm512_add_ps(sum[1], sum[3]);
      sum[0] = _mm512_add_ps(sum[0], sum[1]);
      double sd = _mm512_reduce_add_ps(sum[0]);
      for (int64_t d = np; d < D; ++d) sd += static_cast<double>(fp16_to_fp32(k[d]) * fp16_to_fp32(q16[d]));
      float s = static_cast<float>(sd) * a.scale;
      const float Mold = M;
      float ms = 1.0f, vs = 1.0f;
      if (s > M) {
        M = s;
        ms = std::exp(Mold - M);
        const __m512 msv = _mm512_set1_ps(ms);
        for (int c = 0; c < nv; ++c) {
          __m256i* p = reinterpret_cast<__m256i*>(acc + c * 16);
          const __m512 y = _mm512_mul_ps(_mm512_cvtph_ps(_mm256_load_si256(p)), msv);
          _mm256_store_si256(p, _mm512_cvtps_ph(y, _MM_FROUND_TO_NEAREST_INT));
        }
      } else {
        vs = std::exp(s - M);
      }
      const __m512 vsv = _mm512_set1_ps(vs);
      for (int c = 0; c < nv; ++c) {
        __m256i* p = reinterpret_cast<__m256i*>(acc + c * 16);
        const __m512 vf = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(v + c * 16)));
        const __m512 y = _mm512_fmadd_ps(vf, vsv, _mm512_cvtph_ps(_mm256_load_si256(p)));
        _mm256_store_si256(p, _mm512_cvtps_ph(y, _MM_FROUND_TO_NEAREST_INT));
      }
      S = std::fma(S, ms, vs);
    }
    const __m512 inv = _mm512_set1_ps(S == 0.0f ? 0.0f : 1.0f / S);
    for (int c = 0; c < nv; ++c) {
      const __m512 y = _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(acc + c * 16)));
      _mm512_storeu_ps(a.out[i] + c * 16, _mm512_mul_ps(y, inv));
    }
  }
}

AttnFn attention_f16acc_kernel(KernelLevel level) {
  return level == KernelLevel::kAvx512 ? attention_f16acc_avx512 : attention_f16acc_ref;
}

}  // namespace nc::engine
