// AVX-512 (F, BW, DQ, VL, VNNI) kernels, selected at run time. Functions not specialised here keep
// their AVX2 versions.
//
// Q8_0 and Q4_0 weights: activations are quantized exactly as llama.cpp does (Q8_0 blocks: d =
// fp16(amax/127), q = RNE(x*127/amax)) but laid out for VNNI: the int8 values of a row, then per
// pair of blocks the two scales expanded to 16 floats, then per pair a 16 x int32 "init" vector
// holding the block's correction term in the block's first lane. The dot product of a weight block
// pair with an activation block pair is then one VPDPBUSD on unsigned weight bytes (Q8_0 weights
// are offset by +128 with an XOR, Q4_0 nibbles are already 0..15) whose accumulator starts at
// init = -offset * Σq, followed by one convert and a scale-and-accumulate.
//
// F16/BF16/F32 weights: activations are stored as f32 values already rounded to fp16/bf16 (as
// llama.cpp rounds them), so the inner loop is a plain f32 FMA.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "engine/kernels/fp16.h"
#include "engine/kernels/kernels.h"
#include "engine/kernels/quant_blocks.h"
#include "engine/kernels/simd_avx2.h"
#include "engine/kernels/simd_avx512.h"

namespace nc::engine {

namespace {

// ---------------------------------------------------------------- Q8_0 / Q4_0 ----------------------

inline size_t pad64(size_t n) { return (n + 63) / 64 * 64; }

// How far ahead of the current block pair the weight stream is prefetched.
constexpr int kPrefetchBytes = 1024;

// Layout of one activation row of n values (n % 32 == 0), with P = ceil(n / 64) block pairs:
// q[n] (zero-padded to 64) | d_exp[P][16] f32 | init[P][16] i32.
// Then, for the packed (16-row interleaved) kernels: d[n/32] f32 | corr[n/32] i32 (= -offset * Σq).
inline int64_t n_pairs_of(int64_t n) { return (n / 32 + 1) / 2; }
inline size_t q8p_d_offset(int64_t n) { return pad64(static_cast<size_t>(n)) + static_cast<size_t>(n_pairs_of(n)) * 128; }
size_t q8p_act_bytes(int64_t n) { return q8p_d_offset(n) + static_cast<size_t>(n / 32) * 8; }

template <int kOffset>
void quantize_q8p(const float* x, void* out, int64_t n) {
  auto* q = static_cast<int8_t*>(out);
  auto* dexp = reinterpret_cast<float*>(static_cast<uint8_t*>(out) + pad64(n));
  auto* init = reinterpret_cast<int32_t*>(static_cast<uint8_t*>(out) + pad64(n) + n_pairs_of(n) * 64);
  auto* dflat = reinterpret_cast<float*>(static_cast<uint8_t*>(out) + q8p_d_offset(n));
  auto* corr = reinterpret_cast<int32_t*>(dflat + n / 32);
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
    const int sum = simd::hsum_i32(_mm256_madd_epi16(s16, _mm256_set1_epi16(1)));
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
      if constexpr (MR >= 1) {
        // Several interleaved weight streams: help the prefetcher. (One stream needs no help.)
        _mm_prefetch(reinterpret_cast<const char*>(wr + kPrefetchBytes), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(wr + kPrefetchBytes + 64), _MM_HINT_T0);
      }
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

constexpr int kPackRows = 16;

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

inline __m512i bcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
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

template <GgmlType kType>
void gemm_packed(int64_t n, const uint8_t* pw, size_t group_bytes, int n_groups, int n_rows_valid,
                 const uint8_t* a, size_t a_stride, int n_cols, float* out, size_t ldo) {
  using Fn = void (*)(int64_t, const uint8_t*, size_t, int, int, const uint8_t*, size_t, float*, size_t);
  static constexpr Fn kTable[8] = {gemm_packed_tile<kType, 1>, gemm_packed_tile<kType, 2>, gemm_packed_tile<kType, 3>,
                                   gemm_packed_tile<kType, 4>, gemm_packed_tile<kType, 5>, gemm_packed_tile<kType, 6>,
                                   gemm_packed_tile<kType, 7>, gemm_packed_tile<kType, 8>};
  kTable[n_cols - 1](n, pw, group_bytes, n_groups, n_rows_valid, a, a_stride, out, ldo);
}


// ---------------------------------------------------------------- packed Q4_K ---------------------
// Groups of 16 rows. Per (group, super-block of 256): d[16] fp16 | dmin[16] fp16 | scales[8][16] u8
// (sub-block s, row j) | mins[4][16][2] u8 (pair i: row j's (m[2i], m[2i+1])) | quants[4][8][16][4]:
// chunk c, dword k, row j = the row's qs[32c + 4k, +4) — low nibbles are elements 64c+4k..,
// high nibbles 64c+32+4k.. . Activations are ggml's Q8_K blocks. Per row:
//   Σ_s sc[s]·Σ(q4·q8) · d·yd  −  Σ_s m[s]·bsum[s] · dmin·yd.

constexpr size_t kQ4KPackedBlock = 32 + 32 + 128 + 128 + 2048;

size_t q4k_packed_bytes(int64_t n_rows, int64_t n_cols) {
  const int64_t groups = (n_rows + kPackRows - 1) / kPackRows;
  return static_cast<size_t>(groups * (n_cols / kQK_K)) * kQ4KPackedBlock;
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

size_t q6k_packed_bytes(int64_t n_rows, int64_t n_cols) {
  const int64_t groups = (n_rows + kPackRows - 1) / kPackRows;
  return static_cast<size_t>(groups * (n_cols / kQK_K)) * kQ6KPackedBlock;
}

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
        _mm_prefetch(reinterpret_cast<const char*>(gw + (k + 32) * CB + off), _MM_HINT_T0);
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

// out = silu(g) * u = g / (1 + exp(-g)) * u.
void swiglu_avx512(const float* g, const float* u, float* out, int64_t n) {
  int64_t i = 0;
  const __m512 one = _mm512_set1_ps(1.0f);
  for (; i + 16 <= n; i += 16) {
    const __m512 x = _mm512_loadu_ps(g + i);
    const __m512 e = simd::exp512(_mm512_sub_ps(_mm512_setzero_ps(), x));
    _mm512_storeu_ps(out + i, _mm512_mul_ps(_mm512_div_ps(x, _mm512_add_ps(one, e)), _mm512_loadu_ps(u + i)));
  }
  for (; i < n; ++i) out[i] = (g[i] / (1.0f + std::exp(-g[i]))) * u[i];
}

}  // namespace

void fill_vec_kernels_avx512(VecKernels& k) { k.swiglu = swiglu_avx512; }

void fill_kernels_avx512(TypeKernels& k) {
  switch (k.weight_type) {
    case GgmlType::kQ8_0:
    case GgmlType::kQ4_0: {
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
      k.gemm_packed = q8 ? gemm_packed<GgmlType::kQ8_0> : gemm_packed<GgmlType::kQ4_0>;
      k.gemm_packed_max_cols = 8;
      break;
    }
    case GgmlType::kQ4_K:
      // Activations stay ggml's Q8_K blocks, so the row-major AVX2 kernels still apply too.
      k.pack_rows = kPackRows;
      k.packed_bytes = q4k_packed_bytes;
      k.pack = q4k_pack;
      k.gemm_packed = q4k_gemm_packed;
      k.gemm_packed_max_cols = 4;
      break;
    case GgmlType::kQ6_K:
      k.pack_rows = kPackRows;
      k.packed_bytes = q6k_packed_bytes;
      k.pack = q6k_pack;
      k.gemm_packed = q6k_gemm_packed;
      k.gemm_packed_max_cols = 4;
      break;
    case GgmlType::kF16:
    case GgmlType::kBF16:
    case GgmlType::kF32: {
      k.act_bytes = f32_act_bytes;
      k.act_is_ggml = k.weight_type == GgmlType::kF32;
      k.gemm_max_rows = 3;  // 3x3 tiles x 2 partial sums = 18 accumulators
      k.gemm_max_cols = 3;
      k.pack_rows = kPackRows;
      k.gemm_packed_max_cols = 8;
      if (k.weight_type == GgmlType::kF16) {
        k.packed_bytes = float_packed_bytes<GgmlType::kF16>;
        k.pack = float_pack<GgmlType::kF16>;
        k.gemm_packed = float_gemm_packed<GgmlType::kF16>;
        k.quantize_act = quantize_f16_as_f32;
        k.vec_dot = dot_float<GgmlType::kF16>;
        k.gemm = gemm_float<GgmlType::kF16>;
      } else if (k.weight_type == GgmlType::kBF16) {
        k.packed_bytes = float_packed_bytes<GgmlType::kBF16>;
        k.pack = float_pack<GgmlType::kBF16>;
        k.gemm_packed = float_gemm_packed<GgmlType::kBF16>;
        k.quantize_act = quantize_bf16_as_f32;
        k.vec_dot = dot_float<GgmlType::kBF16>;
        k.gemm = gemm_float<GgmlType::kBF16>;
      } else {
        k.packed_bytes = float_packed_bytes<GgmlType::kF32>;
        k.pack = float_pack<GgmlType::kF32>;
        k.gemm_packed = float_gemm_packed<GgmlType::kF32>;
        k.quantize_act = copy_f32;
        k.vec_dot = dot_float<GgmlType::kF32>;
        k.gemm = gemm_float<GgmlType::kF32>;
      }
      break;
    }
    default: break;
  }
}

}  // namespace nc::engine
