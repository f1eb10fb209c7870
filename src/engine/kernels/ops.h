// Element-wise and normalisation operators of the Llama forward pass, computed as llama.cpp computes
// them (ggml-cpu/ops.cpp, vec.cpp). Pure functions over caller-owned buffers; any thread.
#pragma once

#include <cstdint>

namespace nc::engine {

// y = (x * 1/sqrt(mean(x^2) + eps)) * w; the sum of squares accumulates f32 products in double.
void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps);

// cos/sin table for one position: cs[2i] = cos(theta_i), cs[2i+1] = sin(theta_i), i < n_rot/2, with
// theta_i built iteratively in f32 (theta_0 = pos, theta_{i+1} = theta_i * base^(-2/n_rot)),
// divided by freq_factors[i] when given, times freq_scale.
void rope_cache(int64_t pos, int64_t n_rot, float freq_base, float freq_scale, const float* freq_factors, float* cs);
// Rotates one head vector in place. NORM: pairs (2i, 2i+1); NEOX: pairs (i, i + n_rot/2).
void rope_apply_norm(float* x, const float* cs, int64_t n_rot);
void rope_apply_neox(float* x, const float* cs, int64_t n_rot);

// out = silu(g) * u, silu(x) = x / (1 + exp(-x)).
void swiglu(const float* g, const float* u, float* out, int64_t n);

inline void add_inplace(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

}  // namespace nc::engine
