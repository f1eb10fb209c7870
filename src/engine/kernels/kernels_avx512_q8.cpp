// AVX-512 VNNI kernels for Q8_0 and Q4_0 weights.
//
// Row-major (unpacked) path: activations are quantized exactly as llama.cpp does (Q8_0 blocks: d =
// fp16(amax/127), q = RNE(x*127/amax)) but laid out for VNNI: the int8 values of a row, then per
// pair of blocks the two scales expanded to 16 floats, then per pair a 16 x int32 "init" vector
// holding the block's correction term in the block's first lane. The dot product of a weight block
// pair with an activation block pair is then one VPDPBUSD on unsigned weight bytes (Q8_0 weights
// are offset by +128 with an XOR, Q4_0 nibbles are already 0..15) whose accumulator starts at
// init = -offset * Σq, followed by one convert and a scale-and-accumulate.
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

// ---------------------------------------------------------------- Q8_0 / Q4_0 ----------------------

// How far ahead of the current block pair the weight stream is prefetched.
constexpr int kPrefetchBytes = 1024;

// Layout of one activation row of n values (n % 32 == 0), with P = ceil(n / 64) block pairs:
// q[n] (zero-padded to 64) | d_exp[P][16] f32 | init[P][16] i32.
// Then, for the packed (16-row interleaved) kernels: d[n/32] f32 | corr[n/32] i32 (= -offset * Σq)
// | corr8[n/32][8] i32 (= -offset * Σ of the block's 4-byte group k, for the ggml-order Q8_0 kernel).
inline int64_t n_pairs_of(int64_t n) { return (n / 32 + 1) / 2; }
inline size_t q8p_d_offset(int64_t n) { return pad64(static_cast<size_t>(n)) + static_cast<size_t>(n_pairs_of(n)) * 128; }
inline size_t q8p_corr8_offset(int64_t n) { return q8p_d_offset(n) + static_cast<size_t>(n / 32) * 8; }
size_t q8p_act_bytes(int64_t n) { return q8p_corr8_offset(n) + static_cast<size_t>(n / 32) * 32; }

template <int kOffset>
void quantize_q8p(const float* x, void* out, int64_t n) {
  auto* q = static_cast<int8_t*>(out);
  auto* dexp = reinterpret_cast<float*>(static_cast<uint8_t*>(out) + pad64(n));
  auto* init = reinterpret_cast<int32_t*>(static_cast<uint8_t*>(out) + pad64(n) + n_pairs_of(n) * 64);
  auto* dflat = reinterpret_cast<float*>(static_cast<uint8_t*>(out) + q8p_d_offset(n));
  auto* corr = reinterpret_cast<int32_t*>(dflat + n / 32);
  auto* corr8 = reinterpret_cast<int32_t*>(static_cast<uint8_t*>(out) + q8p_corr8_offset(n));
  std::memset(q + n, 0, pad64(n) - n);
  if ((n / 32) % 2) {  // zero the unused half of the last pair
    std::fill(dexp + (n_pairs_of(n) - 1) * 16 + 8, dexp + n_pairs_of(n) * 16, 0.0f);
    std::fill(init + (n_pairs_of(n) - 1) * 16 + 8, init + n_pairs_of(n) * 16, 0);
  }
  const __m256 sign_bit = _mm256_set1_ps(-0.0f);
  for (int64_t b = 0; b < n / 32; ++b) {
    const float* xb = x + b * 32;
    __m256 v[4];
    __m256 m = _mm256_setzero_ps();
    for (int j = 0; j < 4; ++j) {
      v[j] = _mm256_loadu_ps(xb + 8 * j);
      m = _mm256_max_ps(m, _mm256_andnot_ps(sign_bit, v[j]));
    }
    __m128 m4 = _mm_max_ps(_mm256_extractf128_ps(m, 1), _mm256_castps256_ps128(m));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    const float amax = _mm_cvtss_f32(m4);
    const float d = fp16_to_fp32(fp32_to_fp16(amax / 127.f));
    const __m256 mul = _mm256_set1_ps(amax != 0.0f ? 127.f / amax : 0.0f);
    __m256i i[4];
    for (int j = 0; j < 4; ++j) i[j] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v[j], mul), _MM_ROUND_NEAREST));
    __m256i p0 = _mm256_packs_epi32(i[0], i[1]);
    __m256i p2 = _mm256_packs_epi32(i[2], i[3]);
    __m256i p = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(p0, p2), _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + b * 32), p);
    // Σq for the correction term.
    const __m256i s16 = _mm256_maddubs_epi16(_mm256_set1_epi8(1), p);
    const __m256i s32 = _mm256_madd_epi16(s16, _mm256_set1_epi16(1));  // lane k: Σ of bytes 4k..4k+3
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(corr8 + b * 8), _mm256_mullo_epi32(s32, _mm256_set1_epi32(-kOffset)));
    const int sum = simd::hsum_i32(s32);
    dflat[b] = d;
    corr[b] = -kOffset * sum;
    const int64_t pair = b / 2, half = b % 2;
    for (int l = 0; l < 8; ++l) {
      dexp[pair * 16 + half * 8 + l] = d;
      init[pair * 16 + half * 8 + l] = l == 0 ? -kOffset * sum : 0;
    }
  }
}

// Two fp16 scales at p0 and p1 -> [f(p0) x8, f(p1) x8].
inline __m512 load_scale_pair(const uint8_t* p0, const uint8_t* p1) {
  uint16_t h0, h1;
  std::memcpy(&h0, p0, 2);
  std::memcpy(&h1, p1, 2);
  const __m128 f = _mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(h0 | (static_cast<uint32_t>(h1) << 16))));
  return _mm512_permutexvar_ps(_mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1),
                               _mm512_castps128_ps512(f));
}

// Weight block pair -> 64 unsigned bytes in activation order.
template <GgmlType kType>
inline __m512i load_weight_pair(const uint8_t* w) {
  if constexpr (kType == GgmlType::kQ8_0) {
    const __m256i q0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 2));
    const __m256i q1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 36));
    const __m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(q0), q1, 1);
    return _mm512_xor_si512(q, _mm512_set1_epi8(static_cast<char>(0x80)));  // q + 128
  } else {
    const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 2));
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 20));
    const __m256i y = _mm256_set_m128i(b, a);
    const __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(y), _mm256_srli_epi16(y, 4), 1);
    const __m512i n = _mm512_and_si512(z, _mm512_set1_epi8(0x0F));
    return _mm512_shuffle_i64x2(n, n, _MM_SHUFFLE(3, 1, 2, 0));  // [a lo, a hi, b lo, b hi]
  }
}

template <GgmlType kType>
constexpr size_t block_bytes() {
  return kType == GgmlType::kQ8_0 ? 34 : 18;
}

// out[c*ldo + r] = W_r · A_c for r < MR, c < NR.
template <GgmlType kType, int MR, int NR>
void gemm_q8p_tile(int64_t n, const uint8_t* w, size_t w_stride, const uint8_t* a, size_t a_stride, float* out,
                   size_t ldo) {
  constexpr size_t BB = block_bytes<kType>();
  const int64_t n_full = n / 64;  // complete block pairs; an odd last block is done with 256-bit ops
  const int64_t n_pairs = n_pairs_of(n);
  const size_t q_bytes = pad64(static_cast<size_t>(n));
  __m512 acc[MR][NR];
  for (int r = 0; r < MR; ++r)
    for (int c = 0; c < NR; ++c) acc[r][c] = _mm512_setzero_ps();
  for (int64_t p = 0; p < n_full; ++p) {
    __m512i av[NR], iv[NR];
    __m512 dv[NR];
#pragma GCC unroll 4
    for (int c = 0; c < NR; ++c) {
      const uint8_t* ac = a + c * a_stride;
      av[c] = _mm512_loadu_si512(ac + p * 64);
      dv[c] = _mm512_loadu_ps(reinterpret_cast<const float*>(ac + q_bytes) + p * 16);
      iv[c] = _mm512_loadu_si512(ac + q_bytes + n_pairs * 64 + p * 64);
    }
#pragma GCC unroll 4
    for (int r = 0; r < MR; ++r) {
      const uint8_t* wr = w + r * w_stride + p * 2 * BB;
      // The two cache lines of this block pair, kPrefetchBytes ahead.
      _mm_prefetch(reinterpret_cast<const char*>(wr + kPrefetchBytes), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(wr + kPrefetchBytes + 64), _MM_HINT_T0);
      const __m512i wv = load_weight_pair<kType>(wr);
      const __m512 ws = load_scale_pair(wr, wr + BB);
#pragma GCC unroll 4
      for (int c = 0; c < NR; ++c) {
        const __m512i dp = _mm512_dpbusd_epi32(iv[c], wv, av[c]);
        acc[r][c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dp), _mm512_mul_ps(ws, dv[c]), acc[r][c]);
      }
    }
  }
  if (n_full < n_pairs) {
    const int64_t p = n_full;
    for (int r = 0; r < MR; ++r) {
      const uint8_t* wr = w + r * w_stride + p * 2 * BB;
      __m256i wv;
      if constexpr (kType == GgmlType::kQ8_0) {
        wv = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(wr + 2)),
                              _mm256_set1_epi8(static_cast<char>(0x80)));
      } else {
        const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(wr + 2));
        wv = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(x, 4), x), _mm256_set1_epi8(0x0F));
      }
      uint16_t h;
      std::memcpy(&h, wr, 2);
      const __m256 ws = _mm256_set1_ps(fp16_to_fp32(h));
      for (int c = 0; c < NR; ++c) {
        const uint8_t* ac = a + c * a_stride;
        const __m256i av = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ac + p * 64));
        const __m256 dv = _mm256_loadu_ps(reinterpret_cast<const float*>(ac + q_bytes) + p * 16);
        const __m256i iv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ac + q_bytes + n_pairs * 64 + p * 64));
        const __m256i dp = _mm256_dpbusd_epi32(iv, wv, av);
        const __m256 t = _mm256_mul_ps(_mm256_cvtepi32_ps(dp), _mm256_mul_ps(ws, dv));
        acc[r][c] = _mm512_add_ps(acc[r][c], _mm512_zextps256_ps512(t));
      }
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int c = 0; c < NR; ++c) out[c * ldo + r] = _mm512_reduce_add_ps(acc[r][c]);
}

template <GgmlType kType>
void gemm_q8p(int64_t n, const uint8_t* w, size_t w_stride, int n_rows, const uint8_t* a, size_t a_stride, int n_cols,
              float* out, size_t ldo) {
  using Fn = void (*)(int64_t, const uint8_t*, size_t, const uint8_t*, size_t, float*, size_t);
  static constexpr Fn kTable[4][4] = {
      {gemm_q8p_tile<kType, 1, 1>, gemm_q8p_tile<kType, 1, 2>, gemm_q8p_tile<kType, 1, 3>, gemm_q8p_tile<kType, 1, 4>},
      {gemm_q8p_tile<kType, 2, 1>, gemm_q8p_tile<kType, 2, 2>, gemm_q8p_tile<kType, 2, 3>, gemm_q8p_tile<kType, 2, 4>},
      {gemm_q8p_tile<kType, 3, 1>, gemm_q8p_tile<kType, 3, 2>, gemm_q8p_tile<kType, 3, 3>, gemm_q8p_tile<kType, 3, 4>},
      {gemm_q8p_tile<kType, 4, 1>, gemm_q8p_tile<kType, 4, 2>, gemm_q8p_tile<kType, 4, 3>, gemm_q8p_tile<kType, 4, 4>},
  };
  kTable[n_rows - 1][n_cols - 1](n, w, w_stride, a, a_stride, out, ldo);
}

template <GgmlType kType>
float dot_q8p(int64_t n, const void* w, const void* a) {
  float out;
  gemm_q8p_tile<kType, 1, 1>(n, static_cast<const uint8_t*>(w), 0, static_cast<const uint8_t*>(a), 0, &out, 1);
  return out;
}


// ---------------------------------------------------------------- packed Q8_0 / Q4_0 ---------------
// Weights repacked once at load into groups of 16 rows. Per (group, block): the 16 rows' fp16 scales
// (32 bytes), then the quants interleaved by 4-byte groups: vector k, lane j holds row j's bytes
// [4k, 4k+4). Q8_0 quants are stored +128 (unsigned); Q4_0 keeps its packed nibbles (lane bytes give
// elements 4k.. in the low nibbles and 16+4k.. in the high nibbles). One VPDPBUSD with the
// activation's 4 bytes broadcast then advances 16 rows at once, and the per-block scale is one
// 16-lane vector: ~3x fewer instructions per weight byte than the row-major kernel.

template <GgmlType kType>
constexpr size_t packed_block_bytes() {
  return kType == GgmlType::kQ8_0 ? 32 + 8 * 64 : 32 + 4 * 64;
}

template <GgmlType kType>
size_t packed_bytes(int64_t n_rows, int64_t n_cols) {
  const int64_t groups = (n_rows + kPackRows - 1) / kPackRows;
  return static_cast<size_t>(groups * (n_cols / 32)) * packed_block_bytes<kType>();
}

template <GgmlType kType>
void pack_rows(const uint8_t* w, size_t row_bytes, int64_t n_rows, int64_t n_cols, uint8_t* out) {
  constexpr size_t BB = block_bytes<kType>();
  const int64_t nb = n_cols / 32, groups = (n_rows + kPackRows - 1) / kPackRows;
  for (int64_t g = 0; g < groups; ++g) {
    for (int64_t b = 0; b < nb; ++b) {
      uint8_t* o = out + (g * nb + b) * packed_block_bytes<kType>();
      auto* sc = reinterpret_cast<uint16_t*>(o);
      uint8_t* q = o + 32;
      for (int j = 0; j < kPackRows; ++j) {
        const int64_t r = g * kPackRows + j;
        if (r >= n_rows) {  // padding rows: scale 0, quants 0
          sc[j] = 0;
          for (int k = 0; k < (kType == GgmlType::kQ8_0 ? 8 : 4); ++k)
            for (int i = 0; i < 4; ++i) q[k * 64 + j * 4 + i] = kType == GgmlType::kQ8_0 ? 0x80 : 0;
          continue;
        }
        const uint8_t* blk = w + r * row_bytes + b * BB;
        std::memcpy(&sc[j], blk, 2);
        for (int k = 0; k < (kType == GgmlType::kQ8_0 ? 8 : 4); ++k)
          for (int i = 0; i < 4; ++i)
            q[k * 64 + j * 4 + i] = kType == GgmlType::kQ8_0 ? static_cast<uint8_t>(blk[2 + 4 * k + i] ^ 0x80)
                                                             : blk[2 + 4 * k + i];
      }
    }
  }
}

// out[c*ldo + 16*g + j] for groups g < n_groups, rows j < 16 (only rows < n_rows_valid written).
template <GgmlType kType, int NR>
void gemm_packed_tile(int64_t n, const uint8_t* pw, size_t group_bytes, int n_groups, int n_rows_valid,
                      const uint8_t* a, size_t a_stride, float* out, size_t ldo) {
  constexpr size_t PB = packed_block_bytes<kType>();
  const int64_t nb = n / 32;
  const size_t d_off = q8p_d_offset(n);
  for (int g = 0; g < n_groups; ++g) {
    const uint8_t* gw = pw + g * group_bytes;
    __m512 acc[NR];
    for (int c = 0; c < NR; ++c) acc[c] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* blk = gw + b * PB;
      // Every cache line of the block 8 blocks ahead (the hardware prefetcher alone falls short
      // when both cores stream from DRAM).
      for (size_t off = 0; off < PB; off += 64)
        _mm_prefetch(reinterpret_cast<const char*>(blk + 8 * PB + off), _MM_HINT_T0);
      const __m512 ws = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk)));
      __m512i wv[8];
      if constexpr (kType == GgmlType::kQ8_0) {
        for (int k = 0; k < 8; ++k) wv[k] = _mm512_loadu_si512(blk + 32 + 64 * k);
      } else {
        const __m512i m4 = _mm512_set1_epi8(0x0F);
        for (int k = 0; k < 4; ++k) {
          const __m512i v = _mm512_loadu_si512(blk + 32 + 64 * k);
          wv[k] = _mm512_and_si512(v, m4);
          wv[k + 4] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
        }
      }
#pragma GCC unroll 8
      for (int c = 0; c < NR; ++c) {
        const uint8_t* ac = a + c * a_stride;
        const int8_t* q = reinterpret_cast<const int8_t*>(ac) + b * 32;
        const float da = reinterpret_cast<const float*>(ac + d_off)[b];
        const int32_t corr = reinterpret_cast<const int32_t*>(ac + d_off + nb * 4)[b];
        // Elements 4k..4k+3 meet wv[k] (Q4_0: wv[k] low nibbles are 4k.., wv[k+4] high are 16+4k..).
        __m512i i0 = _mm512_set1_epi32(corr), i1 = _mm512_setzero_si512();
        i0 = _mm512_dpbusd_epi32(i0, wv[0], bcast4(q + 0));
        i1 = _mm512_dpbusd_epi32(i1, wv[1], bcast4(q + 4));
        i0 = _mm512_dpbusd_epi32(i0, wv[2], bcast4(q + 8));
        i1 = _mm512_dpbusd_epi32(i1, wv[3], bcast4(q + 12));
        i0 = _mm512_dpbusd_epi32(i0, wv[4], bcast4(q + 16));
        i1 = _mm512_dpbusd_epi32(i1, wv[5], bcast4(q + 20));
        i0 = _mm512_dpbusd_epi32(i0, wv[6], bcast4(q + 24));
        i1 = _mm512_dpbusd_epi32(i1, wv[7], bcast4(q + 28));
        const __m512 dot = _mm512_cvtepi32_ps(_mm512_add_epi32(i0, i1));
        acc[c] = _mm512_fmadd_ps(dot, _mm512_mul_ps(ws, _mm512_set1_ps(da)), acc[c]);
      }
    }
    const int valid = std::min(kPackRows, n_rows_valid - g * kPackRows);
    const __mmask16 m = static_cast<__mmask16>((1u << valid) - 1);
    for (int c = 0; c < NR; ++c) _mm512_mask_storeu_ps(out + c * ldo + g * kPackRows, m, acc[c]);
  }
}

// Q8_0 in llama.cpp's summation order (ggml_vec_dot_q8_0_q8_0's AVX2 branch and llamafile's
// tinyBLAS_Q0_AVX, which agree): per row, eight f32 lanes, lane k accumulating
// fma(d_w * d_a, float(Σ of the block's bytes 4k..4k+3 products), lane k) over the blocks in order,
// then summed as hsum_float_8 does. The int32 group sums are exact, so every row's result is
// bit-identical to llama.cpp's. Twice the instructions of gemm_packed_tile, for the same bytes.
template <int NR>
void gemm_packed_q8_0_ggml_tile(int64_t n, const uint8_t* pw, size_t group_bytes, int n_groups, int n_rows_valid,
                                const uint8_t* a, size_t a_stride, float* out, size_t ldo) {
  constexpr size_t PB = packed_block_bytes<GgmlType::kQ8_0>();
  const int64_t nb = n / 32;
  const size_t d_off = q8p_d_offset(n), c8_off = q8p_corr8_offset(n);
  for (int g = 0; g < n_groups; ++g) {
    const uint8_t* gw = pw + g * group_bytes;
    __m512 acc[NR][8];
    for (int c = 0; c < NR; ++c)
      for (int k = 0; k < 8; ++k) acc[c][k] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* blk = gw + b * PB;
      for (size_t off = 0; off < PB; off += 64)
        _mm_prefetch(reinterpret_cast<const char*>(blk + 8 * PB + off), _MM_HINT_T0);
      const __m512 ws = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk)));
      for (int c = 0; c < NR; ++c) {
        const uint8_t* ac = a + c * a_stride;
        const int8_t* q = reinterpret_cast<const int8_t*>(ac) + b * 32;
        const float da = reinterpret_cast<const float*>(ac + d_off)[b];
        const int32_t* c8 = reinterpret_cast<const int32_t*>(ac + c8_off) + b * 8;
        const __m512 d = _mm512_mul_ps(ws, _mm512_set1_ps(da));
#pragma GCC unroll 8
        for (int k = 0; k < 8; ++k) {
          // Weights straight from memory (L1 for the second column): keeping eight of them in
          // registers makes the compiler spill them.
          const __m512i w = _mm512_loadu_si512(blk + 32 + 64 * k);
          const __m512i l = _mm512_dpbusd_epi32(_mm512_set1_epi32(c8[k]), w, bcast4(q + 4 * k));
          acc[c][k] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(l), acc[c][k]);
        }
      }
    }
    const int valid = std::min(kPackRows, n_rows_valid - g * kPackRows);
    const __mmask16 m = static_cast<__mmask16>((1u << valid) - 1);
    for (int c = 0; c < NR; ++c) {
      const __m512 t0 = _mm512_add_ps(_mm512_add_ps(acc[c][4], acc[c][0]), _mm512_add_ps(acc[c][6], acc[c][2]));
      const __m512 t1 = _mm512_add_ps(_mm512_add_ps(acc[c][5], acc[c][1]), _mm512_add_ps(acc[c][7], acc[c][3]));
      _mm512_mask_storeu_ps(out + c * ldo + g * kPackRows, m, _mm512_add_ps(t0, t1));
    }
  }
}

void gemm_packed_q8_0_ggml(int64_t n, const uint8_t* pw, size_t group_bytes, int n_groups, int n_rows_valid,
                           const uint8_t* a, size_t a_stride, int n_cols, float* out, size_t ldo) {
  if (n_cols >= 2) {
    gemm_packed_q8_0_ggml_tile<2>(n, pw, group_bytes, n_groups, n_rows_valid, a, a_stride, out, ldo);
  } else {
    gemm_packed_q8_0_ggml_tile<1>(n, pw, group_bytes, n_groups, n_rows_valid, a, a_stride, out, ldo);
  }
}

template <GgmlType kType>
void gemm_packed(int64_t n, const uint8_t* pw, size_t group_bytes, int n_groups, int n_rows_valid,
                 const uint8_t* a, size_t a_stride, int n_cols, float* out, size_t ldo) {
  using Fn = void (*)(int64_t, const uint8_t*, size_t, int, int, const uint8_t*, size_t, float*, size_t);
  static constexpr Fn kTable[8] = {gemm_packed_tile<kType, 1>, gemm_packed_tile<kType, 2>, gemm_packed_tile<kType, 3>,
                                   gemm_packed_tile<kType, 4>, gemm_packed_tile<kType, 5>, gemm_packed_tile<kType, 6>,
                                   gemm_packed_tile<kType, 7>, gemm_packed_tile<kType, 8>};
  kTable[n_cols - 1](n, pw, group_bytes, n_groups, n_rows_valid, a, a_stride, out, ldo);
}


}  // namespace

void fill_q8_0_q4_0(TypeKernels& k) {
  const bool q8 = k.weight_type == GgmlType::kQ8_0;
  k.act_bytes = q8p_act_bytes;
  k.act_is_ggml = false;
  k.quantize_act = q8 ? quantize_q8p<128> : quantize_q8p<8>;
  k.vec_dot = q8 ? dot_q8p<GgmlType::kQ8_0> : dot_q8p<GgmlType::kQ4_0>;
  k.gemm = q8 ? gemm_q8p<GgmlType::kQ8_0> : gemm_q8p<GgmlType::kQ4_0>;
  k.gemm_max_rows = 4;
  k.gemm_max_cols = 4;
  k.pack_rows = kPackRows;
  k.packed_bytes = q8 ? packed_bytes<GgmlType::kQ8_0> : packed_bytes<GgmlType::kQ4_0>;
  k.pack = q8 ? pack_rows<GgmlType::kQ8_0> : pack_rows<GgmlType::kQ4_0>;
  if (q8) {
    k.gemm_packed = gemm_packed_q8_0_ggml;
    k.gemm_packed_max_cols = 2;
    k.gemm_packed_fast = gemm_packed<GgmlType::kQ8_0>;
    k.gemm_packed_fast_max_cols = 8;
  } else {
    k.gemm_packed = gemm_packed<GgmlType::kQ4_0>;
    k.gemm_packed_max_cols = 8;
  }
}

}  // namespace nc::engine::avx512
