#include "engine/model/forward_ref.h"

#include <fmt/format.h>

#include <cmath>

#include "engine/kernels/fp16.h"
#include "engine/kernels/kernels.h"
#include "engine/kernels/ops.h"
#include "engine/model/lora.h"

namespace nc::engine {

namespace {

// y[r] = W_r · x for every row r, with the scalar reference kernels.   // x: [K], y: [n_rows]
void matvec_ref(const WeightView& w, const float* x, float* y) {
  const TypeKernels& k = type_kernels(w.type, KernelLevel::kScalar);
  std::vector<uint8_t> act(k.act_bytes(w.n_cols));
  k.quantize_act(x, act.data(), w.n_cols);
  for (int64_t r = 0; r < w.n_rows; ++r) y[r] = k.vec_dot(w.n_cols, w.data + r * w.row_bytes, act.data());
}

float round_fp16(float v) { return fp16_to_fp32(fp32_to_fp16(v)); }

// y += scale · B (A x), textbook, in double, with each product's input rounded as llama.cpp's.
void lora_ref(const LoraWeight* w, const float* x_in, float* y) {
  if (!w) return;
  std::vector<float> x(x_in, x_in + w->n_in), ax(static_cast<size_t>(w->rank)), a, b;
  w->to_f32(&a, &b);
  lora_round_input(w->a_type, x.data(), w->n_in);
  for (int64_t j = 0; j < w->rank; ++j) {
    double s = 0;
    for (int64_t i = 0; i < w->n_in; ++i) s += static_cast<double>(a[j * w->n_in + i]) * x[i];
    ax[j] = static_cast<float>(s);
  }
  if (w->storage == LoraStorage::kQ8_0) lora_quantize_b_input(ax.data(), w->rank, nullptr, nullptr);
  else lora_round_input(w->b_type, ax.data(), w->rank);
  for (int64_t o = 0; o < w->n_out; ++o) {
    double s = 0;
    for (int64_t j = 0; j < w->rank; ++j) s += static_cast<double>(b[o * w->rank + j]) * ax[j];
    y[o] += static_cast<float>(w->scale * s);
  }
}

}  // namespace

Result<std::vector<float>> reference_forward(const Model& model, std::span<const int32_t> tokens,
                                             const LoraAdapter* adapter) {
  if (adapter && adapter->base() != &model) return invalid_argument("the adapter is another model's");
  const LoraLayer no_lora;
  auto lo = [&](int64_t il) -> const LoraLayer& { return adapter ? adapter->layer(il) : no_lora; };
  const HParams& hp = model.hparams();
  const ModelWeights& W = model.weights();
  const int64_t T = static_cast<int64_t>(tokens.size());
  const int64_t E = hp.n_embd, Eq = hp.n_embd_q(), Ekv = hp.n_embd_kv(), F = hp.n_ff, D = hp.head_dim;
  const int64_t V = hp.n_vocab, group = hp.n_head / hp.n_head_kv;
  for (int32_t t : tokens)
    if (t < 0 || t >= V) return invalid_argument(fmt::format("token id {} outside [0, {})", t, V));

  std::vector<float> x(T * E), h(E), q(Eq), kv_k(hp.n_layer * T * Ekv), kv_v(hp.n_layer * T * Ekv);
  std::vector<float> att(Eq), o(E), g(F), u(F), cs(hp.n_rot), logits(T * V);
  const TypeKernels& ek = type_kernels(W.token_embd.type, KernelLevel::kScalar);
  for (int64_t t = 0; t < T; ++t) ek.dequantize_row(W.token_embd.data + tokens[t] * W.token_embd.row_bytes, &x[t * E], E);

  // Token by token, layer by layer: each token attends to the fp16 K/V of positions 0..t.
  for (int64_t t = 0; t < T; ++t) {
    float* xt = &x[t * E];
    rope_cache(t, hp.n_rot, hp.rope_freq_base, hp.rope_freq_scale, W.rope_freqs, cs.data());
    for (int64_t il = 0; il < hp.n_layer; ++il) {
      const LayerWeights& L = W.layers[il];
      float* K = &kv_k[il * T * Ekv];  // [T, Ekv]
      float* Vc = &kv_v[il * T * Ekv];
      rms_norm(xt, L.attn_norm, h.data(), E, hp.rms_eps);
      matvec_ref(L.wq, h.data(), q.data());
      matvec_ref(L.wk, h.data(), &K[t * Ekv]);
      matvec_ref(L.wv, h.data(), &Vc[t * Ekv]);
      lora_ref(lo(il).wq, h.data(), q.data());
      lora_ref(lo(il).wk, h.data(), &K[t * Ekv]);
      lora_ref(lo(il).wv, h.data(), &Vc[t * Ekv]);
      for (int64_t i = 0; i < Eq; ++i) q[i] += L.bq ? L.bq[i] : 0.0f;
      for (int64_t i = 0; i < Ekv; ++i) {
        K[t * Ekv + i] += L.bk ? L.bk[i] : 0.0f;
        Vc[t * Ekv + i] += L.bv ? L.bv[i] : 0.0f;
      }
      for (int64_t hh = 0; hh < hp.n_head; ++hh)
        (hp.rope_type == RopeType::kNorm ? rope_apply_norm : rope_apply_neox)(&q[hh * D], cs.data(), hp.n_rot);
      for (int64_t hh = 0; hh < hp.n_head_kv; ++hh)
        (hp.rope_type == RopeType::kNorm ? rope_apply_norm : rope_apply_neox)(&K[t * Ekv + hh * D], cs.data(),
                                                                              hp.n_rot);
      for (int64_t i = 0; i < Ekv; ++i) {
        K[t * Ekv + i] = round_fp16(K[t * Ekv + i]);
        Vc[t * Ekv + i] = round_fp16(Vc[t * Ekv + i]);
      }
      // softmax(q K^T / sqrt(D)) V per head
      const float scale = 1.0f / std::sqrt(static_cast<float>(D));
      std::vector<double> p(t + 1);
      for (int64_t hh = 0; hh < hp.n_head; ++hh) {
        const int64_t kvh = hh / group;
        double mx = -INFINITY;
        for (int64_t j = 0; j <= t; ++j) {
          double s = 0;
          for (int64_t d = 0; d < D; ++d) s += static_cast<double>(q[hh * D + d]) * K[j * Ekv + kvh * D + d];
          p[j] = s * scale;
          mx = std::max(mx, p[j]);
        }
        double sum = 0;
        for (int64_t j = 0; j <= t; ++j) sum += (p[j] = std::exp(p[j] - mx));
        for (int64_t d = 0; d < D; ++d) {
          double acc = 0;
          for (int64_t j = 0; j <= t; ++j) acc += p[j] * Vc[j * Ekv + kvh * D + d];
          att[hh * D + d] = static_cast<float>(acc / sum);
        }
      }
      matvec_ref(L.wo, att.data(), o.data());
      lora_ref(lo(il).wo, att.data(), o.data());
      for (int64_t i = 0; i < E; ++i) xt[i] += o[i] + (L.bo ? L.bo[i] : 0.0f);
      rms_norm(xt, L.ffn_norm, h.data(), E, hp.rms_eps);
      matvec_ref(L.gate, h.data(), g.data());
      matvec_ref(L.up, h.data(), u.data());
      lora_ref(lo(il).gate, h.data(), g.data());
      lora_ref(lo(il).up, h.data(), u.data());
      swiglu(g.data(), u.data(), g.data(), F);
      matvec_ref(L.down, g.data(), o.data());
      lora_ref(lo(il).down, g.data(), o.data());
      for (int64_t i = 0; i < E; ++i) xt[i] += o[i];
    }
    rms_norm(xt, W.output_norm, h.data(), E, hp.rms_eps);
    matvec_ref(W.output, h.data(), &logits[t * V]);
    lora_ref(adapter ? adapter->output() : nullptr, h.data(), &logits[t * V]);
    if (W.output_bias)
      for (int64_t i = 0; i < V; ++i) logits[t * V + i] += W.output_bias[i];
  }
  return logits;
}

}  // namespace nc::engine
