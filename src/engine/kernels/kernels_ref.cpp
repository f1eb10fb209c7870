// Scalar reference kernels: the oracle the SIMD kernels are tested against. Written for clarity,
// following ggml's generic code (ggml-quants.c, ggml-cpu/quants.c, vec.cpp) in arithmetic order.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "engine/kernels/fp16.h"
#include "engine/kernels/kernels.h"
#include "engine/kernels/ops.h"
#include "engine/kernels/quant_blocks.h"

namespace nc::engine {

namespace {

// ---- activation conversions ----

void quantize_f32(const float* x, void* out, int64_t n) { std::memcpy(out, x, n * sizeof(float)); }

void quantize_f16(const float* x, void* out, int64_t n) {
  auto* y = static_cast<uint16_t*>(out);
  for (int64_t i = 0; i < n; ++i) y[i] = fp32_to_fp16(x[i]);
}

void quantize_bf16(const float* x, void* out, int64_t n) {
  auto* y = static_cast<uint16_t*>(out);
  for (int64_t i = 0; i < n; ++i) y[i] = fp32_to_bf16(x[i]);
}

// Round half to even, as _mm256_round_ps(_MM_FROUND_TO_NEAREST_INT) does.
inline int round_even(float v) { return static_cast<int>(std::nearbyintf(v)); }

// Q8_0 activations as llama.cpp's x86 SIMD path makes them (ggml-cpu/arch/x86/quants.c):
// id = 127/amax, q = RNE(x*id), d = fp16(amax/127).
void quantize_q8_0_act(const float* x, void* out, int64_t n) {
  auto* y = static_cast<BlockQ8_0*>(out);
  for (int64_t b = 0; b < n / kQK8_0; ++b) {
    const float* xb = x + b * kQK8_0;
    float amax = 0.0f;
    for (int j = 0; j < kQK8_0; ++j) amax = std::max(amax, std::fabs(xb[j]));
    const float d = amax / 127.0f;
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    y[b].d = fp32_to_fp16(d);
    for (int j = 0; j < kQK8_0; ++j) y[b].qs[j] = static_cast<int8_t>(round_even(xb[j] * id));
  }
}

// ggml nearest_int: RNE through the 1.5*2^23 magic add.
inline int nearest_int(float fval) {
  float val = fval + 12582912.f;
  int i;
  std::memcpy(&i, &val, sizeof(int));
  return (i & 0x007fffff) - 0x00400000;
}

// quantize_row_q8_K_ref.
void quantize_q8_K_act(const float* x, void* out, int64_t n) {
  auto* y = static_cast<BlockQ8K*>(out);
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    const float* xb = x + b * kQK_K;
    float max = 0, amax = 0;
    for (int j = 0; j < kQK_K; ++j) {
      const float ax = std::fabs(xb[j]);
      if (ax > amax) {
        amax = ax;
        max = xb[j];
      }
    }
    if (amax == 0.0f) {
      y[b].d = 0;
      std::memset(y[b].qs, 0, kQK_K);
      std::memset(y[b].bsums, 0, sizeof(y[b].bsums));
      continue;
    }
    const float iscale = -127.f / max;
    for (int j = 0; j < kQK_K; ++j) {
      const int v = nearest_int(iscale * xb[j]);
      y[b].qs[j] = static_cast<int8_t>(std::min(127, v));
    }
    for (int g = 0; g < kQK_K / 16; ++g) {
      int sum = 0;
      for (int j = 0; j < 16; ++j) sum += y[b].qs[g * 16 + j];
      y[b].bsums[g] = static_cast<int16_t>(sum);
    }
    y[b].d = 1 / iscale;
  }
}

// ---- dot products ----

float dot_f32(int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const float*>(w);
  const auto* y = static_cast<const float*>(a);
  double s = 0;  // the oracle sums in double; SIMD kernels use f32 lanes
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(x[i] * y[i]);
  return static_cast<float>(s);
}

float dot_f16(int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const uint16_t*>(w);
  const auto* y = static_cast<const uint16_t*>(a);
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(fp16_to_fp32(x[i]) * fp16_to_fp32(y[i]));
  return static_cast<float>(s);
}

float dot_bf16(int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const uint16_t*>(w);
  const auto* y = static_cast<const uint16_t*>(a);
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(bf16_to_fp32(x[i]) * bf16_to_fp32(y[i]));
  return static_cast<float>(s);
}

float dot_q8_0(int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const BlockQ8_0*>(w);
  const auto* y = static_cast<const BlockQ8_0*>(a);
  float sumf = 0;
  for (int64_t b = 0; b < n / kQK8_0; ++b) {
    int sumi = 0;
    for (int j = 0; j < kQK8_0; ++j) sumi += x[b].qs[j] * y[b].qs[j];
    sumf += static_cast<float>(sumi) * (fp16_to_fp32(x[b].d) * fp16_to_fp32(y[b].d));
  }
  return sumf;
}

float dot_q4_0(int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const BlockQ4_0*>(w);
  const auto* y = static_cast<const BlockQ8_0*>(a);
  float sumf = 0;
  for (int64_t b = 0; b < n / kQK4_0; ++b) {
    int sumi = 0;
    for (int j = 0; j < kQK4_0 / 2; ++j) {
      const int v0 = (x[b].qs[j] & 0x0F) - 8;
      const int v1 = (x[b].qs[j] >> 4) - 8;
      sumi += v0 * y[b].qs[j] + v1 * y[b].qs[j + kQK4_0 / 2];
    }
    sumf += static_cast<float>(sumi) * (fp16_to_fp32(x[b].d) * fp16_to_fp32(y[b].d));
  }
  return sumf;
}

// ggml_vec_dot_q4_K_q8_K_generic, restated: per super-block,
// d*yd*Σ_s sc[s]*Σ(q4*q8) - dmin*yd*Σ_s m[s]*(bsums of sub-block s).
float dot_q4_K(int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const BlockQ4K*>(w);
  const auto* y = static_cast<const BlockQ8K*>(a);
  float sumf = 0;
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    const uint8_t* q4 = x[b].qs;
    const int8_t* q8 = y[b].qs;
    int32_t sum_qs = 0, sum_mins = 0;
    for (int c = 0; c < 4; ++c) {
      uint8_t sc0, m0, sc1, m1;
      q4k_scale_min(2 * c, x[b].scales, sc0, m0);
      q4k_scale_min(2 * c + 1, x[b].scales, sc1, m1);
      int s0 = 0, s1 = 0;
      for (int l = 0; l < 32; ++l) {
        s0 += (q4[32 * c + l] & 0xF) * q8[64 * c + l];
        s1 += (q4[32 * c + l] >> 4) * q8[64 * c + 32 + l];
      }
      sum_qs += sc0 * s0 + sc1 * s1;
      sum_mins += m0 * (y[b].bsums[4 * c + 0] + y[b].bsums[4 * c + 1]) +
                  m1 * (y[b].bsums[4 * c + 2] + y[b].bsums[4 * c + 3]);
    }
    const float d = fp16_to_fp32(x[b].d) * y[b].d;
    const float dmin = fp16_to_fp32(x[b].dmin) * y[b].d;
    sumf += d * static_cast<float>(sum_qs) - dmin * static_cast<float>(sum_mins);
  }
  return sumf;
}

// Q6_K · Q8_K: Σ d*yd*sc[g]*Σ(q6*q8) over 16-element groups, q6 in -32..31.
float dot_q6_K(int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const BlockQ6K*>(w);
  const auto* y = static_cast<const BlockQ8K*>(a);
  float sumf = 0;
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    int8_t q6[kQK_K];
    for (int h = 0; h < 2; ++h) {
      const uint8_t* ql = x[b].ql + 64 * h;
      const uint8_t* qh = x[b].qh + 32 * h;
      int8_t* o = q6 + 128 * h;
      for (int l = 0; l < 32; ++l) {
        o[l] = static_cast<int8_t>(((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
        o[l + 32] = static_cast<int8_t>(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
        o[l + 64] = static_cast<int8_t>(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
        o[l + 96] = static_cast<int8_t>(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
      }
    }
    int32_t sumi = 0;
    for (int g = 0; g < 16; ++g) {
      int s = 0;
      for (int j = 0; j < 16; ++j) s += q6[16 * g + j] * y[b].qs[16 * g + j];
      sumi += x[b].scales[g] * s;
    }
    sumf += fp16_to_fp32(x[b].d) * y[b].d * static_cast<float>(sumi);
  }
  return sumf;
}

// ---- dequantization (ggml-quants.c dequantize_row_*) ----

void deq_f32(const void* w, float* y, int64_t n) { std::memcpy(y, w, n * sizeof(float)); }
void deq_f16(const void* w, float* y, int64_t n) {
  const auto* x = static_cast<const uint16_t*>(w);
  for (int64_t i = 0; i < n; ++i) y[i] = fp16_to_fp32(x[i]);
}
void deq_bf16(const void* w, float* y, int64_t n) {
  const auto* x = static_cast<const uint16_t*>(w);
  for (int64_t i = 0; i < n; ++i) y[i] = bf16_to_fp32(x[i]);
}
void deq_q8_0(const void* w, float* y, int64_t n) {
  const auto* x = static_cast<const BlockQ8_0*>(w);
  for (int64_t b = 0; b < n / kQK8_0; ++b) {
    const float d = fp16_to_fp32(x[b].d);
    for (int j = 0; j < kQK8_0; ++j) y[b * kQK8_0 + j] = x[b].qs[j] * d;
  }
}
void deq_q4_0(const void* w, float* y, int64_t n) {
  const auto* x = static_cast<const BlockQ4_0*>(w);
  for (int64_t b = 0; b < n / kQK4_0; ++b) {
    const float d = fp16_to_fp32(x[b].d);
    for (int j = 0; j < kQK4_0 / 2; ++j) {
      y[b * kQK4_0 + j] = static_cast<float>((x[b].qs[j] & 0x0F) - 8) * d;
      y[b * kQK4_0 + j + 16] = static_cast<float>((x[b].qs[j] >> 4) - 8) * d;
    }
  }
}
void deq_q4_K(const void* w, float* y, int64_t n) {
  const auto* x = static_cast<const BlockQ4K*>(w);
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    const float d = fp16_to_fp32(x[b].d);
    const float min = fp16_to_fp32(x[b].dmin);
    const uint8_t* q = x[b].qs;
    int is = 0;
    for (int j = 0; j < kQK_K; j += 64) {
      uint8_t sc, m;
      q4k_scale_min(is + 0, x[b].scales, sc, m);
      const float d1 = d * sc, m1 = min * m;
      q4k_scale_min(is + 1, x[b].scales, sc, m);
      const float d2 = d * sc, m2 = min * m;
      for (int l = 0; l < 32; ++l) *y++ = d1 * (q[l] & 0xF) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * (q[l] >> 4) - m2;
      q += 32;
      is += 2;
    }
  }
}
void deq_q6_K(const void* w, float* y, int64_t n) {
  const auto* x = static_cast<const BlockQ6K*>(w);
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    const float d = fp16_to_fp32(x[b].d);
    const uint8_t* ql = x[b].ql;
    const uint8_t* qh = x[b].qh;
    const int8_t* sc = x[b].scales;
    for (int h = 0; h < 2; ++h) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l + 0] = d * sc[is + 0] * q1;
        y[l + 32] = d * sc[is + 2] * q2;
        y[l + 64] = d * sc[is + 4] * q3;
        y[l + 96] = d * sc[is + 6] * q4;
      }
      y += 128;
      ql += 64;
      qh += 32;
      sc += 8;
    }
  }
}

}  // namespace

void quantize_row_q8_0_ref(const float* x, void* out, int64_t n) {
  auto* y = static_cast<BlockQ8_0*>(out);
  for (int64_t b = 0; b < n / kQK8_0; ++b) {
    float amax = 0.0f;
    for (int j = 0; j < kQK8_0; ++j) amax = std::max(amax, std::fabs(x[b * kQK8_0 + j]));
    const float d = amax / ((1 << 7) - 1);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = fp32_to_fp16(d);
    for (int j = 0; j < kQK8_0; ++j) y[b].qs[j] = static_cast<int8_t>(std::roundf(x[b * kQK8_0 + j] * id));
  }
}

void quantize_row_q4_0_ref(const float* x, void* out, int64_t n) {
  auto* y = static_cast<BlockQ4_0*>(out);
  for (int64_t b = 0; b < n / kQK4_0; ++b) {
    const float* xb = x + b * kQK4_0;
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < kQK4_0; ++j) {
      if (amax < std::fabs(xb[j])) {
        amax = std::fabs(xb[j]);
        max = xb[j];
      }
    }
    const float d = max / -8;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = fp32_to_fp16(d);
    for (int j = 0; j < kQK4_0 / 2; ++j) {
      const float x0 = xb[j] * id;
      const float x1 = xb[kQK4_0 / 2 + j] * id;
      const uint8_t xi0 = static_cast<uint8_t>(std::min<int8_t>(15, static_cast<int8_t>(x0 + 8.5f)));
      const uint8_t xi1 = static_cast<uint8_t>(std::min<int8_t>(15, static_cast<int8_t>(x1 + 8.5f)));
      y[b].qs[j] = xi0 | static_cast<uint8_t>(xi1 << 4);
    }
  }
}

namespace {
void f32_to_f16_ref(const float* x, uint16_t* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = fp32_to_fp16(x[i]);
}
}  // namespace

namespace {
void lora_b_tiles_ref(const int8_t* tiles, const uint16_t* d, int64_t n_tiles, int r4, const uint8_t* hi,
                      const uint8_t* lo, float s, float* y) {
  for (int64_t t = 0; t < n_tiles; ++t) {
    const int8_t* tile = tiles + t * 16 * r4;
    for (int l = 0; l < 16; ++l) {
      int32_t acc_hi = 0, acc_lo = 0, sum = 0;
      for (int g = 0; g < r4 / 4; ++g)
        for (int b = 0; b < 4; ++b) {
          const int32_t q = tile[64 * g + 4 * l + b];
          acc_hi += static_cast<int32_t>(hi[4 * g + b]) * q;
          acc_lo += static_cast<int32_t>(lo[4 * g + b]) * q;
          sum += q;
        }
      const float v = 256.0f * static_cast<float>(acc_hi - 128 * sum) + static_cast<float>(acc_lo);
      y[16 * t + l] += (s * fp16_to_fp32(d[16 * t + l])) * v;
    }
  }
}
}  // namespace

void fill_vec_kernels_scalar(VecKernels& k) {
  k.swiglu = swiglu;
  k.f32_to_f16 = f32_to_f16_ref;
  k.lora_b_tiles = lora_b_tiles_ref;
}


namespace {
size_t act_bytes_f32(int64_t n) { return static_cast<size_t>(n) * 4; }
size_t act_bytes_16(int64_t n) { return static_cast<size_t>(n) * 2; }
size_t act_bytes_q8_0(int64_t n) { return static_cast<size_t>(n / kQK8_0) * sizeof(BlockQ8_0); }
size_t act_bytes_q8_K(int64_t n) { return static_cast<size_t>(n / kQK_K) * sizeof(BlockQ8K); }
}  // namespace

void fill_kernels_scalar(TypeKernels& k) {
  k.act_is_ggml = true;
  switch (k.weight_type) {
    case GgmlType::kF32:
      k.act_type = GgmlType::kF32; k.act_bytes = act_bytes_f32; k.quantize_act = quantize_f32; k.vec_dot = dot_f32; k.dequantize_row = deq_f32;
      break;
    case GgmlType::kF16:
      k.act_type = GgmlType::kF16; k.act_bytes = act_bytes_16; k.quantize_act = quantize_f16; k.vec_dot = dot_f16; k.dequantize_row = deq_f16;
      break;
    case GgmlType::kBF16:
      k.act_type = GgmlType::kBF16; k.act_bytes = act_bytes_16; k.quantize_act = quantize_bf16; k.vec_dot = dot_bf16; k.dequantize_row = deq_bf16;
      break;
    case GgmlType::kQ8_0:
      k.act_type = GgmlType::kQ8_0; k.act_bytes = act_bytes_q8_0; k.quantize_act = quantize_q8_0_act; k.vec_dot = dot_q8_0; k.dequantize_row = deq_q8_0;
      break;
    case GgmlType::kQ4_0:
      k.act_type = GgmlType::kQ8_0; k.act_bytes = act_bytes_q8_0; k.quantize_act = quantize_q8_0_act; k.vec_dot = dot_q4_0; k.dequantize_row = deq_q4_0;
      break;
    case GgmlType::kQ4_K:
      k.act_type = GgmlType::kQ8_K; k.act_bytes = act_bytes_q8_K; k.quantize_act = quantize_q8_K_act; k.vec_dot = dot_q4_K; k.dequantize_row = deq_q4_K;
      break;
    case GgmlType::kQ6_K:
      k.act_type = GgmlType::kQ8_K; k.act_bytes = act_bytes_q8_K; k.quantize_act = quantize_q8_K_act; k.vec_dot = dot_q6_K; k.dequantize_row = deq_q6_K;
      break;
    default:
      break;
  }
}

}  // namespace nc::engine
