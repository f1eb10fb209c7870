// Internal to engine/kernels: helpers shared by the AVX-512 kernel files (compiled with the AVX-512
// flags only) and the per-family fill functions that kernels_avx512.cpp dispatches to.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "engine/kernels/kernels.h"

namespace nc::engine::avx512 {

// Packed layouts group this many weight rows, one per 32-bit lane of a zmm register.
constexpr int kPackRows = 16;

inline size_t pad64(size_t n) { return (n + 63) / 64 * 64; }

// Four activation bytes broadcast to every lane (the signed operand of VPDPBUSD).
inline __m512i bcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

void fill_q8_0_q4_0(TypeKernels& k);  // kernels_avx512_q8.cpp
void fill_q4_K(TypeKernels& k);       // kernels_avx512_kquants.cpp
void fill_q6_K(TypeKernels& k);
void fill_float(TypeKernels& k);      // kernels_avx512_float.cpp

}  // namespace nc::engine::avx512
