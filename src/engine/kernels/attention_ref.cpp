// Scalar reference of the blocked online-softmax attention (see attention.h).
#include <cmath>
#include <vector>

#include "engine/kernels/attention.h"
#include "engine/kernels/fp16.h"

namespace nc::engine {

void attention_ref(const AttnArgs& a) {
  const int64_t D = a.head_dim, B = a.block_size;
  for (int i = 0; i < a.n_q; ++i) {
    float m = -INFINITY, sum = 0.0f;
    std::vector<float> o(D, 0.0f);
    for (int64_t b = 0; b < a.n_blocks; ++b) {
      for (int64_t j = 0; j < B; ++j) {
        const int64_t pos = b * B + j;
        if (pos > a.max_pos[i]) break;
        const uint16_t* k = a.k_blocks[b] + j * a.kv_stride;
        const uint16_t* v = a.v_blocks[b] + j * a.kv_stride;
        float s = 0.0f;
        for (int64_t d = 0; d < D; ++d) s += a.q[i][d] * fp16_to_fp32(k[d]);
        s *= a.scale;
        const float m_new = std::max(m, s);
        const float corr = std::exp(m - m_new), p = std::exp(s - m_new);
        sum = sum * corr + p;
        for (int64_t d = 0; d < D; ++d) o[d] = o[d] * corr + p * fp16_to_fp32(v[d]);
        m = m_new;
      }
    }
    for (int64_t d = 0; d < D; ++d) a.out[i][d] = o[d] / sum;
  }
}

AttnFn attention_kernel(KernelLevel level) {
  return level == KernelLevel::kAvx512 ? attention_avx512 : attention_ref;
}

}  // namespace nc::engine
