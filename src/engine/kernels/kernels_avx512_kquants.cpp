// AVX-512 VNNI kernels for the K-quants (Q4_K, Q6_K) on 16-row packed weights.
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

// ---------------------------------------------------------------- packed Q4_K ---------------------
// Groups of 16 rows. Per (group, super-block of 256): d[16] fp16 | dmin[16] fp16 | scales[8][16] u8
// (sub-block s, row j) | mins[4][16][2] u8 (pair i: row j's (m[2i], m[2i+1])) | quants[4][8][16][4]:
// chunk c, dword k, row j = the row's qs[32c + 4k, +4) — low nibbles are elements 64c+4k..,
// high nibbles 64c+32+4k.. . Activations are ggml's Q8_K blocks. Per row:
//   Σ_s sc[s]·Σ(q4·q8) · d·yd  −  Σ_s m[s]·bsum[s] · dmin·yd.

constexpr size_t kQ4KPackedBlock = 32 + 32 + 128 + 128 + 2048;

// Bytes of a packed K-quant matrix: one kBlock per (group of 16 rows, super-block of 256).
template <size_t kBlock>
size_t kquant_packed_bytes(int64_t n_rows, int64_t n_cols) {
  const int64_t groups = (n_rows + kPackRows - 1) / kPackRows;
  return static_cast<size_t>(groups * (n_cols / kQK_K)) * kBlock;
}

void q4k_pack(const uint8_t* w, size_t row_bytes, int64_t n_rows, int64_t n_cols, uint8_t* out) {
  const int64_t nsb = n_cols / kQK_K, groups = (n_rows + kPackRows - 1) / kPackRows;
  for (int64_t g = 0; g < groups; ++g) {
    for (int64_t b = 0; b < nsb; ++b) {
      uint8_t* o = out + (g * nsb + b) * kQ4KPackedBlock;
      std::memset(o, 0, kQ4KPackedBlock);
      auto* d = reinterpret_cast<uint16_t*>(o);
      auto* dmin = reinterpret_cast<uint16_t*>(o + 32);
      uint8_t* sc = o + 64;
      uint8_t* mn = o + 192;
      uint8_t* q = o + 320;
      for (int j = 0; j < kPackRows; ++j) {
        const int64_t r = g * kPackRows + j;
        if (r >= n_rows) continue;  // padding rows stay zero
        const auto* blk = reinterpret_cast<const BlockQ4K*>(w + r * row_bytes) + b;
        d[j] = blk->d;
        dmin[j] = blk->dmin;
        for (int s = 0; s < 8; ++s) {
          uint8_t scv, mv;
          q4k_scale_min(s, blk->scales, scv, mv);
          sc[s * 16 + j] = scv;
          mn[(s / 2) * 32 + j * 2 + (s % 2)] = mv;
        }
        for (int c = 0; c < 4; ++c)
          for (int k = 0; k < 8; ++k) std::memcpy(q + ((c * 8 + k) * 16 + j) * 4, blk->qs + 32 * c + 4 * k, 4);
      }
    }
  }
}

template <int NR>
void q4k_gemm_packed_tile(int64_t n, const uint8_t* pw, size_t group_bytes, int n_groups, int n_rows_valid,
                          const uint8_t* a, size_t a_stride, float* out, size_t ldo) {
  const int64_t nsb = n / kQK_K;
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  for (int g = 0; g < n_groups; ++g) {
    __m512 acc[NR];
    for (int c = 0; c < NR; ++c) acc[c] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nsb; ++b) {
      const uint8_t* blk = pw + g * group_bytes + b * kQ4KPackedBlock;
      _mm_prefetch(reinterpret_cast<const char*>(blk + 2 * kQ4KPackedBlock), _MM_HINT_T0);
      const __m512 d16 = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk)));
      const __m512 dmin16 = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 32)));
      __m512i sumi[NR], summ[NR];
      const BlockQ8K* y[NR];
      for (int c = 0; c < NR; ++c) {
        sumi[c] = _mm512_setzero_si512();
        summ[c] = _mm512_setzero_si512();
        y[c] = reinterpret_cast<const BlockQ8K*>(a + c * a_stride) + b;
      }
      // mins · bsums: 4 x VPDPWSSD on (m[2i], m[2i+1]) x (bsum[2i], bsum[2i+1]).
      for (int i = 0; i < 4; ++i) {
        const __m512i mn = _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 192 + 32 * i)));
#pragma GCC unroll 4
        for (int c = 0; c < NR; ++c) {
          const int16_t* bs = y[c]->bsums;
          const uint32_t lo = static_cast<uint16_t>(bs[4 * i] + bs[4 * i + 1]);
          const uint32_t hi = static_cast<uint16_t>(bs[4 * i + 2] + bs[4 * i + 3]);
          summ[c] = _mm512_dpwssd_epi32(summ[c], mn, _mm512_set1_epi32(static_cast<int>(lo | (hi << 16))));
        }
      }
      for (int ch = 0; ch < 4; ++ch) {
        __m512i lo[8], hi[8];
        for (int k = 0; k < 8; ++k) {
          const __m512i v = _mm512_loadu_si512(blk + 320 + (ch * 8 + k) * 64);
          lo[k] = _mm512_and_si512(v, m4);
          hi[k] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
        }
        const __m512i sc_lo = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 64 + 32 * ch)));
        const __m512i sc_hi =
            _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 64 + 32 * ch + 16)));
#pragma GCC unroll 4
        for (int c = 0; c < NR; ++c) {
          const int8_t* q = y[c]->qs + 64 * ch;
          __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
#pragma GCC unroll 8
          for (int k = 0; k < 8; ++k) {
            s0 = _mm512_dpbusd_epi32(s0, lo[k], bcast4(q + 4 * k));
            s1 = _mm512_dpbusd_epi32(s1, hi[k], bcast4(q + 32 + 4 * k));
          }
          sumi[c] = _mm512_add_epi32(sumi[c], _mm512_add_epi32(_mm512_mullo_epi32(s0, sc_lo), _mm512_mullo_epi32(s1, sc_hi)));
        }
      }
#pragma GCC unroll 4
      for (int c = 0; c < NR; ++c) {
        const __m512 yd = _mm512_set1_ps(y[c]->d);
        acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi[c]), _mm512_mul_ps(d16, yd), acc[c]);
        acc[c] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(summ[c]), _mm512_mul_ps(dmin16, yd), acc[c]);
      }
    }
    const int valid = std::min(kPackRows, n_rows_valid - g * kPackRows);
    const __mmask16 m = static_cast<__mmask16>((1u << valid) - 1);
    for (int c = 0; c < NR; ++c) _mm512_mask_storeu_ps(out + c * ldo + g * kPackRows, m, acc[c]);
  }
}

void q4k_gemm_packed(int64_t n, const uint8_t* pw, size_t group_bytes, int n_groups, int n_rows_valid,
                     const uint8_t* a, size_t a_stride, int n_cols, float* out, size_t ldo) {
  using Fn = void (*)(int64_t, const uint8_t*, size_t, int, int, const uint8_t*, size_t, float*, size_t);
  static constexpr Fn kTable[4] = {q4k_gemm_packed_tile<1>, q4k_gemm_packed_tile<2>, q4k_gemm_packed_tile<3>,
                                   q4k_gemm_packed_tile<4>};
  kTable[n_cols - 1](n, pw, group_bytes, n_groups, n_rows_valid, a, a_stride, out, ldo);
}


// ---------------------------------------------------------------- packed Q6_K ---------------------
// Groups of 16 rows. Per (group, super-block): d[16] fp16 | scales[16 groups][16 rows] i8 |
// for half h, dword k: A = ql[64h+4k,+4), B = ql[64h+32+4k,+4), H = qh[32h+4k,+4) as 16-lane vectors.
// From (A, B, H) come the 6-bit values of elements 128h + 32j + 4k.. (j = 0..3), which belong to
// 16-element group 8h + 2j + k/4. Per row: Σ_g sc[g]·(Σ q6·q8 − 32·bsum[g]) · d·yd.

constexpr size_t kQ6KPackedBlock = 32 + 256 + 16 * 192;

void q6k_pack(const uint8_t* w, size_t row_bytes, int64_t n_rows, int64_t n_cols, uint8_t* out) {
  const int64_t nsb = n_cols / kQK_K, groups = (n_rows + kPackRows - 1) / kPackRows;
  for (int64_t g = 0; g < groups; ++g) {
    for (int64_t b = 0; b < nsb; ++b) {
      uint8_t* o = out + (g * nsb + b) * kQ6KPackedBlock;
      std::memset(o, 0, kQ6KPackedBlock);
      auto* d = reinterpret_cast<uint16_t*>(o);
      auto* sc = reinterpret_cast<int8_t*>(o + 32);
      uint8_t* q = o + 288;
      for (int j = 0; j < kPackRows; ++j) {
        const int64_t r = g * kPackRows + j;
        if (r >= n_rows) continue;
        const auto* blk = reinterpret_cast<const BlockQ6K*>(w + r * row_bytes) + b;
        d[j] = blk->d;
        for (int gi = 0; gi < 16; ++gi) sc[gi * 16 + j] = blk->scales[gi];
        for (int h = 0; h < 2; ++h)
          for (int k = 0; k < 8; ++k) {
            uint8_t* v = q + (h * 8 + k) * 192;
            std::memcpy(v + j * 4, blk->ql + 64 * h + 4 * k, 4);
            std::memcpy(v + 64 + j * 4, blk->ql + 64 * h + 32 + 4 * k, 4);
            std::memcpy(v + 128 + j * 4, blk->qh + 32 * h + 4 * k, 4);
          }
      }
    }
  }
}

template <int NR>
void q6k_gemm_packed_tile(int64_t n, const uint8_t* pw, size_t group_bytes, int n_groups, int n_rows_valid,
                          const uint8_t* a, size_t a_stride, float* out, size_t ldo) {
  const int64_t nsb = n / kQK_K;
  const __m512i m4 = _mm512_set1_epi8(0x0F), m2 = _mm512_set1_epi8(0x03);
  for (int g = 0; g < n_groups; ++g) {
    __m512 acc[NR];
    for (int c = 0; c < NR; ++c) acc[c] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nsb; ++b) {
      const uint8_t* blk = pw + g * group_bytes + b * kQ6KPackedBlock;
      _mm_prefetch(reinterpret_cast<const char*>(blk + 2 * kQ6KPackedBlock), _MM_HINT_T0);
      const __m512 d16 = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk)));
      const BlockQ8K* y[NR];
      __m512i sumi[NR];
      for (int c = 0; c < NR; ++c) {
        y[c] = reinterpret_cast<const BlockQ8K*>(a + c * a_stride) + b;
        sumi[c] = _mm512_setzero_si512();
      }
      for (int h = 0; h < 2; ++h) {
        // q[j][k]: 6-bit values of elements 128h + 32j + 4k.. for 16 rows.
        __m512i qv[4][8];
        for (int k = 0; k < 8; ++k) {
          const uint8_t* v = blk + 288 + (h * 8 + k) * 192;
          const __m512i A = _mm512_loadu_si512(v), B = _mm512_loadu_si512(v + 64), H = _mm512_loadu_si512(v + 128);
          qv[0][k] = _mm512_or_si512(_mm512_and_si512(A, m4), _mm512_slli_epi16(_mm512_and_si512(H, m2), 4));
          qv[1][k] = _mm512_or_si512(_mm512_and_si512(B, m4),
                                     _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(H, 2), m2), 4));
          qv[2][k] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(A, 4), m4),
                                     _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(H, 4), m2), 4));
          qv[3][k] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(B, 4), m4),
                                     _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(H, 6), m2), 4));
        }
        for (int j = 0; j < 4; ++j) {
          for (int kk = 0; kk < 2; ++kk) {
            const int grp = 8 * h + 2 * j + kk;
            const __m512i sc = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 32 + 16 * grp)));
#pragma GCC unroll 4
            for (int c = 0; c < NR; ++c) {
              const int8_t* q8 = y[c]->qs + 128 * h + 32 * j + 16 * kk;
              __m512i is = _mm512_set1_epi32(-32 * y[c]->bsums[grp]);
              is = _mm512_dpbusd_epi32(is, qv[j][4 * kk + 0], bcast4(q8 + 0));
              is = _mm512_dpbusd_epi32(is, qv[j][4 * kk + 1], bcast4(q8 + 4));
              is = _mm512_dpbusd_epi32(is, qv[j][4 * kk + 2], bcast4(q8 + 8));
              is = _mm512_dpbusd_epi32(is, qv[j][4 * kk + 3], bcast4(q8 + 12));
              sumi[c] = _mm512_add_epi32(sumi[c], _mm512_mullo_epi32(is, sc));
            }
          }
        }
      }
#pragma GCC unroll 4
      for (int c = 0; c < NR; ++c)
        acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi[c]), _mm512_mul_ps(d16, _mm512_set1_ps(y[c]->d)), acc[c]);
    }
    const int valid = std::min(kPackRows, n_rows_valid - g * kPackRows);
    const __mmask16 m = static_cast<__mmask16>((1u << valid) - 1);
    for (int c = 0; c < NR; ++c) _mm512_mask_storeu_ps(out + c * ldo + g * kPackRows, m, acc[c]);
  }
}

void q6k_gemm_packed(int64_t n, const uint8_t* pw, size_t group_bytes, int n_groups, int n_rows_valid,
                     const uint8_t* a, size_t a_stride, int n_cols, float* out, size_t ldo) {
  using Fn = void (*)(int64_t, const uint8_t*, size_t, int, int, const uint8_t*, size_t, float*, size_t);
  static constexpr Fn kTable[4] = {q6k_gemm_packed_tile<1>, q6k_gemm_packed_tile<2>, q6k_gemm_packed_tile<3>,
                                   q6k_gemm_packed_tile<4>};
  kTable[n_cols - 1](n, pw, group_bytes, n_groups, n_rows_valid, a, a_stride, out, ldo);
}

}  // namespace

void fill_q4_K(TypeKernels& k) {
  // Activations stay ggml's Q8_K blocks, so the row-major AVX2 kernels still apply too.
  k.pack_rows = kPackRows;
  k.packed_bytes = kquant_packed_bytes<kQ4KPackedBlock>;
  k.pack = q4k_pack;
  k.gemm_packed = q4k_gemm_packed;
  k.gemm_packed_max_cols = 4;
}

void fill_q6_K(TypeKernels& k) {
  k.pack_rows = kPackRows;
  k.packed_bytes = kquant_packed_bytes<kQ6KPackedBlock>;
  k.pack = q6k_pack;
  k.gemm_packed = q6k_gemm_packed;
  k.gemm_packed_max_cols = 4;
}

}  // namespace nc::engine::avx512
