// Block layouts of the quantized weight and activation types, byte-compatible with ggml
// (ggml-common.h). Plain structs; no behaviour.
#pragma once

#include <cstdint>

namespace nc::engine {

constexpr int kQK8_0 = 32;
constexpr int kQK4_0 = 32;
constexpr int kQK_K = 256;

struct BlockQ8_0 {
  uint16_t d;  // fp16 scale
  int8_t qs[kQK8_0];
};
static_assert(sizeof(BlockQ8_0) == 34);

struct BlockQ4_0 {
  uint16_t d;               // fp16 scale
  uint8_t qs[kQK4_0 / 2];   // low nibbles: elements 0..15, high nibbles: 16..31
};
static_assert(sizeof(BlockQ4_0) == 18);

struct BlockQ4K {
  uint16_t d;         // fp16 super-block scale for scales
  uint16_t dmin;      // fp16 super-block scale for mins
  uint8_t scales[12]; // 8 x (6-bit scale, 6-bit min)
  uint8_t qs[kQK_K / 2];
};
static_assert(sizeof(BlockQ4K) == 144);

struct BlockQ6K {
  uint8_t ql[kQK_K / 2];     // low 4 bits
  uint8_t qh[kQK_K / 4];     // high 2 bits
  int8_t scales[kQK_K / 16]; // 8-bit scales of 16-element groups
  uint16_t d;                // fp16 super-block scale
};
static_assert(sizeof(BlockQ6K) == 210);

struct BlockQ8K {
  float d;
  int8_t qs[kQK_K];
  int16_t bsums[kQK_K / 16];  // sums of groups of 16
};
static_assert(sizeof(BlockQ8K) == 292);

// Q4_K 6-bit scale/min unpacking (ggml get_scale_min_k4).
inline void q4k_scale_min(int j, const uint8_t* q, uint8_t& d, uint8_t& m) {
  if (j < 4) {
    d = q[j] & 63;
    m = q[j + 4] & 63;
  } else {
    d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    m = (q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4);
  }
}

}  // namespace nc::engine
