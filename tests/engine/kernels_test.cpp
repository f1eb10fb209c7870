// Kernels: every SIMD level against the scalar reference on random data, and every quantized dot
// product against an independent oracle (dequantize both sides, dot in double).
#include "engine/kernels/kernels.h"

#include "engine/kernels/attention.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "engine/kernels/fp16.h"
#include "engine/kernels/ops.h"
#include "engine/kernels/quant_blocks.h"

namespace nc::engine {
namespace {

const GgmlType kTypes[] = {GgmlType::kF32,  GgmlType::kF16,  GgmlType::kBF16, GgmlType::kQ8_0,
                           GgmlType::kQ4_0, GgmlType::kQ4_K, GgmlType::kQ6_K};

std::vector<KernelLevel> levels() {
  std::vector<KernelLevel> l{KernelLevel::kScalar};
  if (static_cast<int>(best_kernel_level()) >= 1) l.push_back(KernelLevel::kAvx2);
  if (static_cast<int>(best_kernel_level()) >= 2) l.push_back(KernelLevel::kAvx512);
  return l;
}

// Random weight row of n elements in `type`, with sane scales.
std::vector<uint8_t> random_row(GgmlType type, int64_t n, std::mt19937& rng) {
  std::vector<uint8_t> row(ggml_row_bytes(type, n));
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> f(n);
  for (auto& v : f) v = u(rng);
  switch (type) {
    case GgmlType::kF32: std::memcpy(row.data(), f.data(), n * 4); break;
    case GgmlType::kF16:
      for (int64_t i = 0; i < n; ++i) reinterpret_cast<uint16_t*>(row.data())[i] = fp32_to_fp16(f[i]);
      break;
    case GgmlType::kBF16:
      for (int64_t i = 0; i < n; ++i) reinterpret_cast<uint16_t*>(row.data())[i] = fp32_to_bf16(f[i]);
      break;
    case GgmlType::kQ8_0: quantize_row_q8_0_ref(f.data(), row.data(), n); break;
    case GgmlType::kQ4_0: quantize_row_q4_0_ref(f.data(), row.data(), n); break;
    case GgmlType::kQ4_K: {
      for (auto& b : row) b = static_cast<uint8_t>(rng());
      auto* blk = reinterpret_cast<BlockQ4K*>(row.data());
      for (int64_t i = 0; i < n / kQK_K; ++i) {
        blk[i].d = fp32_to_fp16(0.002f);
        blk[i].dmin = fp32_to_fp16(0.001f);
      }
      break;
    }
    case GgmlType::kQ6_K: {
      for (auto& b : row) b = static_cast<uint8_t>(rng());
      auto* blk = reinterpret_cast<BlockQ6K*>(row.data());
      for (int64_t i = 0; i < n / kQK_K; ++i) blk[i].d = fp32_to_fp16(0.0005f);
      break;
    }
    default: break;
  }
  return row;
}

std::vector<float> random_acts(int64_t n, std::mt19937& rng) {
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> x(n);
  for (auto& v : x) v = g(rng);
  return x;
}

TEST(Fp16, RoundTripEveryHalf) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = fp16_to_fp32(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      EXPECT_EQ(fp32_to_fp16(f), (h & 0x8000) | 0x7E00);  // NaN -> quiet NaN, sign kept
      continue;
    }
    ASSERT_EQ(fp32_to_fp16(f), h) << h;
  }
}

TEST(Fp16, RoundsToNearestEven) {
  // 1 + 2^-11 is halfway between 1 and the next half (1 + 2^-10): ties to even -> 1.
  EXPECT_EQ(fp32_to_fp16(1.0f + std::ldexp(1.0f, -11)), 0x3C00);
  EXPECT_EQ(fp32_to_fp16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3C02);
  EXPECT_EQ(fp32_to_bf16(1.0f + std::ldexp(1.0f, -8)), 0x3F80);
  EXPECT_EQ(fp32_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3F82);
  EXPECT_EQ(fp32_to_fp16(70000.0f), 0x7C00);  // overflow to inf
}

TEST(Kernels, QuantizedDotMatchesDequantizedOracle) {
  std::mt19937 rng(1);
  const int64_t n = 1024;
  for (GgmlType t : kTypes) {
    const TypeKernels& k = type_kernels(t, KernelLevel::kScalar);
    const TypeKernels& act = type_kernels(k.act_type == GgmlType::kQ8_K ? GgmlType::kQ4_K
                                          : k.act_type == GgmlType::kQ8_0 ? GgmlType::kQ8_0
                                                                          : t,
                                          KernelLevel::kScalar);
    for (int rep = 0; rep < 20; ++rep) {
      auto w = random_row(t, n, rng);
      auto x = random_acts(n, rng);
      std::vector<uint8_t> a(k.act_bytes(n));
      k.quantize_act(x.data(), a.data(), n);
      std::vector<float> wd(n), ad(n);
      k.dequantize_row(w.data(), wd.data(), n);
      if (k.act_type == GgmlType::kQ8_K) {
        const auto* b = reinterpret_cast<const BlockQ8K*>(a.data());
        for (int64_t i = 0; i < n; ++i) ad[i] = b[i / kQK_K].d * b[i / kQK_K].qs[i % kQK_K];
      } else {
        act.dequantize_row(a.data(), ad.data(), n);  // f32/f16/bf16/q8_0 activations dequantize like weights
      }
      double oracle = 0, mag = 0;
      for (int64_t i = 0; i < n; ++i) {
        oracle += static_cast<double>(wd[i]) * ad[i];
        mag += std::fabs(static_cast<double>(wd[i]) * ad[i]);
      }
      const float got = k.vec_dot(n, w.data(), a.data());
      ASSERT_NEAR(got, oracle, 1e-5 * mag + 1e-6) << ggml_type_name(t);
    }
  }
}

TEST(Kernels, SimdMatchesScalar) {
  std::mt19937 rng(2);
  for (KernelLevel level : levels()) {
    for (GgmlType t : kTypes) {
      const TypeKernels& ref = type_kernels(t, KernelLevel::kScalar);
      const TypeKernels& k = type_kernels(t, level);
      for (int64_t n : {256, 512, 2048, 5632}) {
        if (n % ggml_traits(t).block_elems) continue;
        auto w = random_row(t, n, rng);
        auto x = random_acts(n, rng);
        std::vector<uint8_t> a_ref(ref.act_bytes(n)), a(k.act_bytes(n));
        ref.quantize_act(x.data(), a_ref.data(), n);
        k.quantize_act(x.data(), a.data(), n);
        if (k.act_is_ggml) {
          ASSERT_EQ(a, a_ref) << "activation conversion differs: " << ggml_type_name(t) << " "
                              << kernel_level_name(level);
        }
        std::vector<float> wd(n);
        ref.dequantize_row(w.data(), wd.data(), n);
        double mag = 0;
        for (int64_t i = 0; i < n; ++i) mag += std::fabs(wd[i] * x[i]);
        const float want = ref.vec_dot(n, w.data(), a_ref.data());
        const float got = k.vec_dot(n, w.data(), a.data());
        ASSERT_NEAR(got, want, 2e-6 * mag + 1e-6) << ggml_type_name(t) << " " << kernel_level_name(level) << " n=" << n;
        if (k.gemm) {
          // A 3-row x 5-column tile against vec_dot.
          std::vector<uint8_t> W;
          for (int r = 0; r < 3; ++r) {
            auto row = random_row(t, n, rng);
            W.insert(W.end(), row.begin(), row.end());
          }
          std::vector<uint8_t> A, A_ref;
          for (int c = 0; c < 5; ++c) {
            auto xc = random_acts(n, rng);
            std::vector<uint8_t> ac(a.size()), ac_ref(a_ref.size());
            k.quantize_act(xc.data(), ac.data(), n);
            ref.quantize_act(xc.data(), ac_ref.data(), n);
            A.insert(A.end(), ac.begin(), ac.end());
            A_ref.insert(A_ref.end(), ac_ref.begin(), ac_ref.end());
          }
          const size_t rb = ggml_row_bytes(t, n);
          std::vector<float> out(5 * 8, -1.0f);
          const int nr = std::min(3, k.gemm_max_rows), ncol = std::min(5, k.gemm_max_cols);
          k.gemm(n, W.data(), rb, nr, A.data(), a.size(), ncol, out.data(), 8);
          for (int c = 0; c < ncol; ++c)
            for (int r = 0; r < nr; ++r) {
              const float v = ref.vec_dot(n, W.data() + r * rb, A_ref.data() + c * a_ref.size());
              ASSERT_NEAR(out[c * 8 + r], v, 1e-4 * std::fabs(v) + 1e-3) << ggml_type_name(t) << " r" << r << " c" << c;
            }
        }
      }
    }
  }
}

TEST(Kernels, PackedTilesMatchScalar) {
  std::mt19937 rng(5);
  for (KernelLevel level : levels()) {
    for (GgmlType t : kTypes) {
      const TypeKernels& k = type_kernels(t, level);
      const TypeKernels& ref = type_kernels(t, KernelLevel::kScalar);
      if (k.pack == nullptr) continue;
      for (int64_t rows : {16, 37}) {
        const int64_t n = 512;
        const size_t rb = ggml_row_bytes(t, n);
        std::vector<uint8_t> W;
        for (int64_t r = 0; r < rows; ++r) {
          auto row = random_row(t, n, rng);
          W.insert(W.end(), row.begin(), row.end());
        }
        std::vector<uint8_t> P(k.packed_bytes(rows, n));
        k.pack(W.data(), rb, rows, n, P.data());
        const int64_t groups = (rows + k.pack_rows - 1) / k.pack_rows;
        const size_t gb = P.size() / groups;
        for (int cols : {1, 3, k.gemm_packed_max_cols}) {
          std::vector<uint8_t> A(cols * k.act_bytes(n)), A_ref(cols * ref.act_bytes(n));
          for (int c = 0; c < cols; ++c) {
            auto x = random_acts(n, rng);
            k.quantize_act(x.data(), A.data() + c * k.act_bytes(n), n);
            ref.quantize_act(x.data(), A_ref.data() + c * ref.act_bytes(n), n);
          }
          const size_t ldo = 48;
          for (auto fn : {k.gemm_packed, k.gemm_packed_fast}) {
            if (fn == nullptr) continue;
            const int max_cols = fn == k.gemm_packed ? k.gemm_packed_max_cols : k.gemm_packed_fast_max_cols;
            std::vector<float> out(cols * ldo, -12345.0f);
            for (int c0 = 0; c0 < cols; c0 += max_cols)
              fn(n, P.data(), gb, static_cast<int>(groups), static_cast<int>(rows), A.data() + c0 * k.act_bytes(n),
                 k.act_bytes(n), std::min(max_cols, cols - c0), out.data() + c0 * ldo, ldo);
            for (int c = 0; c < cols; ++c) {
              for (int64_t r = 0; r < rows; ++r) {
                const float v = ref.vec_dot(n, W.data() + r * rb, A_ref.data() + c * ref.act_bytes(n));
                ASSERT_NEAR(out[c * ldo + r], v, 1e-4 * std::fabs(v) + 1e-3)
                    << ggml_type_name(t) << " rows=" << rows << " r=" << r << " c=" << c;
              }
              for (size_t r = rows; r < ldo; ++r) ASSERT_EQ(out[c * ldo + r], -12345.0f) << "wrote past the valid rows";
            }
          }
        }
      }
    }
  }
}

// llama.cpp's Q8_0 dot product (ggml_vec_dot_q8_0_q8_0, AVX2 branch; tinyBLAS_Q0_AVX sums the same
// way), emulated: eight f32 lanes, lane k += d_w*d_a * Σ(bytes 4k..4k+3) fused, blocks in order,
// then ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7)).
float ggml_dot_q8_0(int64_t n, const BlockQ8_0* x, const BlockQ8_0* y) {
  float lane[8] = {};
  for (int64_t b = 0; b < n / 32; ++b) {
    const float d = fp16_to_fp32(x[b].d) * fp16_to_fp32(y[b].d);
    for (int k = 0; k < 8; ++k) {
      int s = 0;
      for (int i = 4 * k; i < 4 * k + 4; ++i) s += x[b].qs[i] * y[b].qs[i];
      lane[k] = std::fma(d, static_cast<float>(s), lane[k]);
    }
  }
  return ((lane[4] + lane[0]) + (lane[6] + lane[2])) + ((lane[5] + lane[1]) + (lane[7] + lane[3]));
}

// The AVX-512 Q8_0 packed kernel used for small batches and the AVX2 dot product must be
// bit-identical to llama.cpp's sums.
TEST(Kernels, Q8_0PackedKernelIsBitIdenticalToGgmlOrder) {
  if (best_kernel_level() != KernelLevel::kAvx512) GTEST_SKIP() << "no AVX-512 on this CPU";
  std::mt19937 rng(11);
  const TypeKernels& k = type_kernels(GgmlType::kQ8_0, KernelLevel::kAvx512);
  const TypeKernels& g = type_kernels(GgmlType::kQ8_0, KernelLevel::kAvx2);
  const TypeKernels& sref = type_kernels(GgmlType::kQ8_0, KernelLevel::kScalar);
  const int64_t n = 2048, rows = 37;
  const size_t rb = ggml_row_bytes(GgmlType::kQ8_0, n);
  std::vector<uint8_t> W;
  for (int64_t r = 0; r < rows; ++r) {
    auto row = random_row(GgmlType::kQ8_0, n, rng);
    W.insert(W.end(), row.begin(), row.end());
  }
  std::vector<uint8_t> P(k.packed_bytes(rows, n));
  k.pack(W.data(), rb, rows, n, P.data());
  const size_t gb = P.size() / ((rows + 15) / 16);
  for (int cols : {1, 2}) {
    std::vector<uint8_t> A(cols * k.act_bytes(n)), Ag(cols * g.act_bytes(n));
    for (int c = 0; c < cols; ++c) {
      auto x = random_acts(n, rng);
      k.quantize_act(x.data(), A.data() + c * k.act_bytes(n), n);
      g.quantize_act(x.data(), Ag.data() + c * g.act_bytes(n), n);
    }
    std::vector<float> out(cols * 48);
    k.gemm_packed(n, P.data(), gb, static_cast<int>((rows + 15) / 16), static_cast<int>(rows), A.data(), k.act_bytes(n),
                  cols, out.data(), 48);
    ASSERT_TRUE(g.act_is_ggml);  // the AVX2 activations are ggml's block_q8_0 rows
    for (int c = 0; c < cols; ++c)
      for (int64_t r = 0; r < rows; ++r) {
        const auto* wr = reinterpret_cast<const BlockQ8_0*>(W.data() + r * rb);
        const auto* ar = reinterpret_cast<const BlockQ8_0*>(Ag.data() + c * g.act_bytes(n));
        const float want = ggml_dot_q8_0(n, wr, ar);
        ASSERT_EQ(out[c * 48 + r], want) << "avx512 packed r=" << r << " c=" << c;
        ASSERT_EQ(g.vec_dot(n, W.data() + r * rb, Ag.data() + c * g.act_bytes(n)), want) << "avx2 r=" << r;
      }
    (void)sref;
  }
}

TEST(Kernels, VecKernelsMatchScalar) {
  std::mt19937 rng(3);
  const VecKernels& ref = vec_kernels(KernelLevel::kScalar);
  for (KernelLevel level : levels()) {
    const VecKernels& k = vec_kernels(level);
    for (int64_t n : {1, 7, 64, 128, 100}) {
      auto x = random_acts(n, rng);
      auto y = random_acts(n, rng);
      std::vector<uint16_t> h(n), h2(n);
      ref.f32_to_f16(y.data(), h.data(), n);
      k.f32_to_f16(y.data(), h2.data(), n);
      ASSERT_EQ(h, h2);
      std::vector<float> g1(n), g2(n);
      ref.swiglu(x.data(), y.data(), g1.data(), n);
      k.swiglu(x.data(), y.data(), g2.data(), n);
      for (int64_t i = 0; i < n; ++i) ASSERT_NEAR(g1[i], g2[i], 1e-6f + 1e-6f * std::fabs(g1[i]));
    }
  }
}

// Runs `fast` and `ref` on random paged K/V (blocks out of order, interleaved heads) and returns the
// largest |difference| relative to max(1, |ref|).
float attention_max_diff(AttnFn ref, AttnFn fast, int n_blocks, int n_q, std::mt19937& rng) {
  const int64_t D = 64, B = 16, stride = 3 * D;  // three KV heads interleaved per cell
  {
    {
      std::vector<uint16_t> k(n_blocks * B * stride), v(n_blocks * B * stride);
      for (auto& x : k) x = fp32_to_fp16(std::normal_distribution<float>(0, 1)(rng));
      for (auto& x : v) x = fp32_to_fp16(std::normal_distribution<float>(0, 1)(rng));
      // Blocks in reverse order, as a paged table might hold them.
      std::vector<const uint16_t*> kb(n_blocks), vb(n_blocks);
      for (int b = 0; b < n_blocks; ++b) {
        kb[b] = k.data() + (n_blocks - 1 - b) * B * stride + D;
        vb[b] = v.data() + (n_blocks - 1 - b) * B * stride + D;
      }
      std::vector<float> qs(n_q * D), o1(n_q * D), o2(n_q * D);
      for (auto& x : qs) x = std::normal_distribution<float>(0, 2)(rng);
      std::vector<const float*> q(n_q);
      std::vector<float*> out1(n_q), out2(n_q);
      std::vector<int64_t> max_pos(n_q);
      for (int i = 0; i < n_q; ++i) {
        q[i] = &qs[i * D];
        out1[i] = &o1[i * D];
        out2[i] = &o2[i * D];
        max_pos[i] = std::uniform_int_distribution<int64_t>(0, n_blocks * B - 1)(rng);
      }
      std::vector<float> scratch(attn_scratch_floats(D, n_q, B));
      AttnArgs a;
      a.head_dim = D;
      a.n_q = n_q;
      a.q = q.data();
      a.max_pos = max_pos.data();
      a.block_size = B;
      a.n_blocks = n_blocks;
      a.k_blocks = kb.data();
      a.v_blocks = vb.data();
      a.kv_stride = stride;
      a.scale = 0.125f;
      a.scratch = scratch.data();
      a.out = out1.data();
      ref(a);
      a.out = out2.data();
      fast(a);
      float worst = 0;
      for (size_t i = 0; i < o1.size(); ++i) worst = std::max(worst, std::fabs(o1[i] - o2[i]) / std::max(1.0f, std::fabs(o1[i])));
      return worst;
    }
  }
}

TEST(Attention, BlockedKernelMatchesReference) {
  if (best_kernel_level() != KernelLevel::kAvx512) GTEST_SKIP() << "no AVX-512 on this CPU";
  std::mt19937 rng(9);
  for (int n_blocks : {1, 3})
    for (int n_q : {1, 8, 20}) EXPECT_LT(attention_max_diff(attention_ref, attention_avx512, n_blocks, n_q, rng), 4e-5f);
}

// The fp16-accumulator kernel: the SIMD version sums each score in another order, which may flip an
// fp16 rounding of the accumulator now and then (one fp16 ulp is 1e-3 relative).
TEST(Attention, F16AccumulatorKernelMatchesReference) {
  if (best_kernel_level() != KernelLevel::kAvx512) GTEST_SKIP() << "no AVX-512 on this CPU";
  std::mt19937 rng(10);
  for (int n_blocks : {1, 3})
    for (int n_q : {1, 8, 30}) EXPECT_LT(attention_max_diff(attention_f16acc_ref, attention_f16acc_avx512, n_blocks, n_q, rng), 3e-3f);
}



TEST(Ops, RmsNormAndRope) {
  std::vector<float> x{1, 2, 3, 4}, w{1, 1, 2, 2}, y(4);
  rms_norm(x.data(), w.data(), y.data(), 4, 0.0f);
  const float s = 1.0f / std::sqrt(7.5f);
  EXPECT_FLOAT_EQ(y[0], 1 * s);
  EXPECT_FLOAT_EQ(y[3], 4 * s * 2);
  // Position 0 is the identity; rotation preserves norms.
  std::vector<float> cs(8), v{1, 2, 3, 4, 5, 6, 7, 8}, v0 = v;
  rope_cache(0, 8, 10000.0f, 1.0f, nullptr, cs.data());
  rope_apply_norm(v.data(), cs.data(), 8);
  EXPECT_EQ(v, v0);
  rope_cache(37, 8, 10000.0f, 1.0f, nullptr, cs.data());
  rope_apply_neox(v.data(), cs.data(), 8);
  double n0 = 0, n1 = 0;
  for (int i = 0; i < 8; ++i) {
    n0 += v0[i] * v0[i];
    n1 += v[i] * v[i];
  }
  EXPECT_NEAR(n0, n1, 1e-4);
  EXPECT_NEAR(cs[0], std::cos(37.0f), 1e-6);
}

}  // namespace
}  // namespace nc::engine
