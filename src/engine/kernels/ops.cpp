#include "engine/kernels/ops.h"

#include <cmath>

namespace nc::engine {

void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i] * x[i]);
  const float mean = static_cast<float>(sum / static_cast<double>(n));
  const float scale = 1.0f / std::sqrt(mean + eps);
  for (int64_t i = 0; i < n; ++i) y[i] = (x[i] * scale) * w[i];
}

void rope_cache(int64_t pos, int64_t n_rot, float freq_base, float freq_scale, const float* freq_factors, float* cs) {
  const float theta_scale = std::pow(freq_base, -2.0f / static_cast<float>(n_rot));
  float theta = static_cast<float>(pos);
  for (int64_t i = 0; i < n_rot / 2; ++i) {
    const float ff = freq_factors ? freq_factors[i] : 1.0f;
    const float th = freq_scale * (theta / ff);
    cs[2 * i] = std::cos(th);
    cs[2 * i + 1] = std::sin(th);
    theta *= theta_scale;
  }
}

void rope_apply_norm(float* x, const float* cs, int64_t n_rot) {
  for (int64_t i = 0; i < n_rot / 2; ++i) {
    const float c = cs[2 * i], s = cs[2 * i + 1];
    const float x0 = x[2 * i], x1 = x[2 * i + 1];
    // llama.cpp's ggml-cpu is built with -march=native and GCC's default contraction, which turns
    // x0*c - x1*s into fma(x0, c, -(x1*s)) and x0*s + x1*c into fma(x0, s, x1*c).
    x[2 * i] = std::fma(x0, c, -(x1 * s));
    x[2 * i + 1] = std::fma(x0, s, x1 * c);
  }
}

void rope_apply_neox(float* x, const float* cs, int64_t n_rot) {
  const int64_t h = n_rot / 2;
  for (int64_t i = 0; i < h; ++i) {
    const float c = cs[2 * i], s = cs[2 * i + 1];
    const float x0 = x[i], x1 = x[i + h];
    x[i] = std::fma(x0, c, -(x1 * s));
    x[i + h] = std::fma(x0, s, x1 * c);
  }
}

void swiglu(const float* g, const float* u, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = (g[i] / (1.0f + std::exp(-g[i]))) * u[i];
}

}  // namespace nc::engine
