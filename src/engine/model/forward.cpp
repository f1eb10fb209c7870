// The batched Llama/Qwen2 forward pass (Context::decode). Shapes are in trailing comments;
// T is the number of tokens in the current ubatch. Numerics follow llama.cpp (engine-facts §4):
// activations f32, K/V stored fp16 and read back from the cache, attention softmax in f32.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string_view>
#include <unordered_map>

#include "engine/kernels/attention.h"
#include "engine/kernels/ops.h"
#include "engine/model/context.h"
#include "engine/model/lora.h"

namespace nc::engine {

Context::Context(const Model& model, const ContextParams& params) : model_(model), params_(params) {}

Result<std::unique_ptr<Context>> Context::create(const Model& model, const ContextParams& params) {
  if (params.n_ctx <= 0) return invalid_argument("context size must be positive");
  if (params.n_ubatch <= 0) return invalid_argument("ubatch size must be positive");
  std::unique_ptr<Context> c(new Context(model, params));
  // NEOCLOUD_ATTENTION=f32 turns llama.cpp's small-batch numerics off (f32 attention and the fastest
  // kernels everywhere), for numerics experiments.
  if (const char* a = std::getenv("NEOCLOUD_ATTENTION"); a && std::string_view(a) == "f32") c->params_.llamacpp_numerics = false;
  const HParams& hp = model.hparams();
  c->pool_ = std::make_unique<ThreadPool>(params.n_threads);
  c->kv_ = std::make_unique<KvCache>(hp.n_layer, hp.n_embd_kv(), params.n_ctx, params.kv_block_size);
  const int64_t T = params.n_ubatch;
  c->x_.resize(T * hp.n_embd);
  c->h_.resize(T * hp.n_embd);
  c->q_.resize(T * hp.n_embd_q());
  c->k_.resize(T * hp.n_embd_kv());
  c->v_.resize(T * hp.n_embd_kv());
  c->att_.resize(T * hp.n_embd_q());
  c->gate_.resize(T * hp.n_ff);
  c->up_.resize(T * hp.n_ff);
  c->rope_cs_.resize(T * hp.n_rot);
  c->scores_.resize(c->pool_->size());
  return c;
}

Result<std::unordered_map<int32_t, int64_t>> Context::check_batch(const Batch& batch) const {
  const HParams& hp = model_.hparams();
  const int64_t n = batch.size();
  if (batch.pos.size() != batch.tokens.size() || batch.seq.size() != batch.tokens.size() ||
      batch.want_logits.size() != batch.tokens.size() ||
      (!batch.adapters.empty() && batch.adapters.size() != batch.tokens.size()))
    return invalid_argument("batch arrays have different lengths");
  for (const LoraAdapter* a : batch.adapters)
    if (a && a->base() != &model_) return invalid_argument("a LoRA adapter of another model is in the batch");
  std::unordered_map<int32_t, int64_t> next;  // seq -> its length after this batch
  for (int64_t i = 0; i < n; ++i) {
    if (batch.tokens[i] < 0 || batch.tokens[i] >= hp.n_vocab)
      return invalid_argument(fmt::format("token id {} at batch index {} is outside the vocabulary [0, {})",
                                          batch.tokens[i], i, hp.n_vocab));
    if (batch.pos[i] < 0) return invalid_argument(fmt::format("negative position at batch index {}", i));
    if (batch.want_logits[i] > Batch::kEmbedding)
      return invalid_argument(fmt::format("unknown output kind {} at batch index {}", batch.want_logits[i], i));
    auto it = next.find(batch.seq[i]);
    const int64_t len = it == next.end() ? kv_->length(batch.seq[i]) : it->second;
    if (batch.pos[i] > len)
      return invalid_argument(fmt::format("position {} of sequence {} leaves a gap (sequence length {})", batch.pos[i],
                                          batch.seq[i], len));
    next[batch.seq[i]] = std::max<int64_t>(len, batch.pos[i] + 1);
  }
  // Capacity: every sequence's final length must fit in the free blocks (checked before any write).
  int64_t need_blocks = 0;
  const int64_t bs = kv_->block_size();
  for (const auto& [seq, len] : next) {
    const int64_t have = kv_->has_seq(seq) ? static_cast<int64_t>(kv_->block_table(seq).size()) : 0;
    need_blocks += std::max<int64_t>(0, (len + bs - 1) / bs - have);
  }
  if (need_blocks > kv_->n_free_blocks())
    return resource_exhausted(fmt::format("KV cache full: the batch needs {} more blocks of {} cells, {} are free",
                                          need_blocks, bs, kv_->n_free_blocks()));
  return next;
}

Status Context::decode(const Batch& batch, std::vector<float>& logits, std::vector<float>* embeddings) {
  bool want_embd = false;
  for (auto w : batch.want_logits) want_embd |= w == Batch::kEmbedding;
  if (want_embd && !embeddings) return invalid_argument("the batch asks for embeddings but no buffer was given");
  std::vector<float> no_embd;
  std::vector<float>& embd = embeddings ? *embeddings : no_embd;
  // Final length of every sequence in the batch; reserving them cannot fail after the check.
  NC_ASSIGN_OR_RETURN(const auto final_len, check_batch(batch));
  for (const auto& [seq, len] : final_len) NC_RETURN_IF_ERROR(kv_->reserve(seq, len));
  const int64_t V = model_.hparams().n_vocab, E = model_.hparams().n_embd;
  logits.reserve(logits.size() + batch.n_outputs() * V);
  Batch ub;
  std::vector<int64_t> order;
  std::vector<float> ub_logits, ub_embd;
  for (int64_t b = 0; b < batch.size(); b += params_.n_ubatch) {
    const int64_t e = std::min(batch.size(), b + params_.n_ubatch);
    // Tokens of sequences with fewer than kTiledMinTokens tokens in this ubatch get llama.cpp's
    // small-batch numerics; they go first so that the kernels see them as one column range.
    std::unordered_map<int32_t, int64_t> count;
    for (int64_t i = b; i < e; ++i) ++count[batch.seq[i]];
    auto small = [&](int64_t i) { return params_.llamacpp_numerics && count[batch.seq[i]] < kTiledMinTokens; };
    order.clear();
    for (int64_t i = b; i < e; ++i)
      if (small(i)) order.push_back(i);
    const int64_t n_exact = static_cast<int64_t>(order.size());
    for (int64_t i = b; i < e; ++i)
      if (!small(i)) order.push_back(i);
    bool identity = true;
    for (int64_t k = 0; k < e - b; ++k) identity &= order[k] == b + k;
    if (identity) {
      forward_ubatch(batch, b, e, n_exact, logits, embd);
    } else {
      ub.clear();
      for (int64_t i : order)
        ub.add_output(batch.tokens[i], batch.pos[i], batch.seq[i], batch.want_logits[i], batch.adapter(i));
      ub_logits.clear();
      ub_embd.clear();
      forward_ubatch(ub, 0, ub.size(), n_exact, ub_logits, ub_embd);
      // Output rows back in batch order (logits and embeddings are numbered separately).
      std::vector<int64_t> row_of(e - b, -1);
      int64_t r = 0, re = 0;
      for (int64_t i : order) {
        if (batch.want_logits[i] == Batch::kLogits) row_of[i - b] = r++;
        if (batch.want_logits[i] == Batch::kEmbedding) row_of[i - b] = re++;
      }
      for (int64_t i = b; i < e; ++i) {
        const int64_t row = row_of[i - b];
        if (batch.want_logits[i] == Batch::kLogits)
          logits.insert(logits.end(), ub_logits.begin() + row * V, ub_logits.begin() + (row + 1) * V);
        if (batch.want_logits[i] == Batch::kEmbedding)
          embd.insert(embd.end(), ub_embd.begin() + row * E, ub_embd.begin() + (row + 1) * E);
      }
    }
    // Sequences grow as their positions are written, so later ubatches attend to earlier ones.
    for (int64_t i = b; i < e; ++i)
      if (batch.pos[i] + 1 > kv_->length(batch.seq[i])) kv_->set_length(batch.seq[i], batch.pos[i] + 1);
  }
  return Status::ok();
}

void Context::forward_ubatch(const Batch& batch, int64_t begin, int64_t end, int64_t n_exact, std::vector<float>& logits,
                             std::vector<float>& embeddings) {
  const HParams& hp = model_.hparams();
  const ModelWeights& W = model_.weights();
  ThreadPool& pool = *pool_;
  const int64_t T = end - begin;
  const int64_t E = hp.n_embd, Eq = hp.n_embd_q(), Ekv = hp.n_embd_kv(), F = hp.n_ff, D = hp.head_dim;

  // x = token_embd[tokens]                                          // [T, E]
  const TypeKernels& ek = type_kernels(W.token_embd.type);
  for (int64_t t = 0; t < T; ++t)
    ek.dequantize_row(W.token_embd.data + batch.tokens[begin + t] * W.token_embd.row_bytes, &x_[t * E], E);

  // Tokens by LoRA adapter (lora.h): each matrix's product with the adapters is added after it.
  lora_groups_.clear();
  for (int64_t t = 0; t < T; ++t) {
    const LoraAdapter* a = batch.adapter(begin + t);
    if (!a) continue;
    auto it = std::find_if(lora_groups_.begin(), lora_groups_.end(), [&](const LoraGroup& g) { return g.adapter == a; });
    if (it == lora_groups_.end()) it = lora_groups_.insert(lora_groups_.end(), LoraGroup{a, {}});
    it->rows.push_back(t);
  }
  // The adapters' products for matrices of one input (q/k/v, gate/up), in one call.
  struct LoraTarget {
    const LoraWeight* LoraLayer::*m;
    float* out;
    int64_t out_stride;
  };
  auto lora = [&](int64_t il, const float* in, int64_t in_stride, std::initializer_list<LoraTarget> targets) {
    if (lora_groups_.empty()) return;
    lora_products_.clear();
    for (const LoraTarget& tg : targets)
      for (const LoraGroup& g : lora_groups_)
        if (const LoraWeight* w = g.adapter->layer(il).*tg.m)
          lora_products_.push_back({w, g.rows.data(), static_cast<int64_t>(g.rows.size()), in, in_stride, tg.out, tg.out_stride});
    lora_add(lora_products_, &pool, &lora_scratch_);
  };

  // RoPE tables per token position                                  // [T, n_rot]
  for (int64_t t = 0; t < T; ++t)
    rope_cache(batch.pos[begin + t], hp.n_rot, hp.rope_freq_base, hp.rope_freq_scale, W.rope_freqs,
               &rope_cs_[t * hp.n_rot]);

  const VecKernels& vk = vec_kernels();
  for (int64_t il = 0; il < hp.n_layer; ++il) {
    const LayerWeights& L = W.layers[il];
    // h = rms_norm(x) * attn_norm                                   // [T, E]
    for (int64_t t = 0; t < T; ++t) rms_norm(&x_[t * E], L.attn_norm, &h_[t * E], E, hp.rms_eps);
    // q = h Wq^T (+bq), k = h Wk^T (+bk), v = h Wv^T (+bv)          // [T, Eq], [T, Ekv], [T, Ekv]
    matmul_prepare(L.wq.type, h_.data(), T, E, E, acts_, pool, n_exact);
    if (L.wk.type == L.wq.type && L.wv.type == L.wq.type) {
      const MatmulJob jobs[3] = {{&L.wq, q_.data(), Eq}, {&L.wk, k_.data(), Ekv}, {&L.wv, v_.data(), Ekv}};
      matmul_run(jobs, acts_, pool);
    } else {
      matmul(L.wq, h_.data(), T, E, q_.data(), Eq, acts_, pool, n_exact);
      matmul(L.wk, h_.data(), T, E, k_.data(), Ekv, acts_, pool, n_exact);
      matmul(L.wv, h_.data(), T, E, v_.data(), Ekv, acts_, pool, n_exact);
    }
    lora(il, h_.data(), E, {{&LoraLayer::wq, q_.data(), Eq}, {&LoraLayer::wk, k_.data(), Ekv}, {&LoraLayer::wv, v_.data(), Ekv}});
    for (int64_t t = 0; t < T; ++t) {
      if (L.bq) add_inplace(&q_[t * Eq], L.bq, Eq);
      if (L.bk) add_inplace(&k_[t * Ekv], L.bk, Ekv);
      if (L.bv) add_inplace(&v_[t * Ekv], L.bv, Ekv);
      const float* cs = &rope_cs_[t * hp.n_rot];
      for (int64_t hh = 0; hh < hp.n_head; ++hh) {
        float* qh = &q_[t * Eq + hh * D];
        hp.rope_type == RopeType::kNorm ? rope_apply_norm(qh, cs, hp.n_rot) : rope_apply_neox(qh, cs, hp.n_rot);
      }
      for (int64_t hh = 0; hh < hp.n_head_kv; ++hh) {
        float* kh = &k_[t * Ekv + hh * D];
        hp.rope_type == RopeType::kNorm ? rope_apply_norm(kh, cs, hp.n_rot) : rope_apply_neox(kh, cs, hp.n_rot);
      }
      // K and V go into the cache as fp16; attention reads them back from there.
      const int64_t cell = kv_->cell(batch.seq[begin + t], batch.pos[begin + t]);
      vk.f32_to_f16(&k_[t * Ekv], kv_->k(il, cell), Ekv);
      vk.f32_to_f16(&v_[t * Ekv], kv_->v(il, cell), Ekv);
    }
    attention(il, batch, begin, T, n_exact);                                  // att: [T, Eq]
    // x += att Wo^T (+bo)                                           // [T, E]
    matmul(L.wo, att_.data(), T, Eq, h_.data(), E, acts_, pool, n_exact);
    lora(il, att_.data(), Eq, {{&LoraLayer::wo, h_.data(), E}});
    for (int64_t t = 0; t < T; ++t) {
      if (L.bo) add_inplace(&h_[t * E], L.bo, E);
      add_inplace(&x_[t * E], &h_[t * E], E);
    }
    // h = rms_norm(x) * ffn_norm; x += Wdown (silu(Wgate h) * (Wup h))
    for (int64_t t = 0; t < T; ++t) rms_norm(&x_[t * E], L.ffn_norm, &h_[t * E], E, hp.rms_eps);
    matmul_prepare(L.gate.type, h_.data(), T, E, E, acts_, pool, n_exact);
    if (L.up.type == L.gate.type) {
      const MatmulJob jobs[2] = {{&L.gate, gate_.data(), F}, {&L.up, up_.data(), F}};
      matmul_run(jobs, acts_, pool);
    } else {
      matmul(L.gate, h_.data(), T, E, gate_.data(), F, acts_, pool, n_exact);
      matmul(L.up, h_.data(), T, E, up_.data(), F, acts_, pool, n_exact);
    }
    lora(il, h_.data(), E, {{&LoraLayer::gate, gate_.data(), F}, {&LoraLayer::up, up_.data(), F}});
    for (int64_t t = 0; t < T; ++t) vk.swiglu(&gate_[t * F], &up_[t * F], &gate_[t * F], F);  // [T, F]
    matmul(L.down, gate_.data(), T, F, h_.data(), E, acts_, pool, n_exact);
    lora(il, gate_.data(), F, {{&LoraLayer::down, h_.data(), E}});
    for (int64_t t = 0; t < T; ++t) add_inplace(&x_[t * E], &h_[t * E], E);
  }

  // embeddings = rms_norm(x) * output_norm for the rows that want them   // [n_embd_out, E]
  for (int64_t t = 0; t < T; ++t) {
    if (batch.want_logits[begin + t] != Batch::kEmbedding) continue;
    const size_t at = embeddings.size();
    embeddings.resize(at + E);
    rms_norm(&x_[t * E], W.output_norm, &embeddings[at], E, hp.rms_eps);
  }
  // logits = rms_norm(x) * output_norm · Wout^T, only for the rows that want them   // [n_out, V]
  std::vector<int64_t> rows;
  for (int64_t t = 0; t < T; ++t)
    if (batch.want_logits[begin + t] == Batch::kLogits) rows.push_back(t);
  if (rows.empty()) return;
  const int64_t n_out = static_cast<int64_t>(rows.size());
  out_h_.resize(n_out * E);
  for (int64_t o = 0; o < n_out; ++o) rms_norm(&x_[rows[o] * E], W.output_norm, &out_h_[o * E], E, hp.rms_eps);
  const int64_t V = hp.n_vocab;
  const size_t base = logits.size();
  logits.resize(base + n_out * V);
  int64_t n_out_exact = 0;  // output rows of small-batch tokens (they come first)
  for (int64_t o = 0; o < n_out; ++o) n_out_exact += rows[o] < n_exact;
  matmul(W.output, out_h_.data(), n_out, E, logits.data() + base, V, acts_, pool, n_out_exact);
  if (!lora_groups_.empty()) {  // the output's adapters, over output rows
    std::vector<std::vector<int64_t>> out_rows(lora_groups_.size());
    lora_products_.clear();
    for (size_t g = 0; g < lora_groups_.size(); ++g) {
      const LoraWeight* w = lora_groups_[g].adapter->output();
      if (!w) continue;
      for (int64_t o = 0; o < n_out; ++o)
        if (batch.adapter(begin + rows[o]) == lora_groups_[g].adapter) out_rows[g].push_back(o);
      if (!out_rows[g].empty())
        lora_products_.push_back({w, out_rows[g].data(), static_cast<int64_t>(out_rows[g].size()), out_h_.data(), E,
                                  logits.data() + base, V});
    }
    lora_add(lora_products_, &pool, &lora_scratch_);
  }
  if (W.output_bias)
    for (int64_t o = 0; o < n_out; ++o) add_inplace(logits.data() + base + o * V, W.output_bias, V);
}

// att[t, head h] = softmax(q·K^T * 1/sqrt(D)) · V over the cells of positions 0..pos[t] of the
// token's sequence. Query head h reads KV head h / (n_head / n_head_kv). Work items are (up to
// kAttnTokens tokens of one sequence) x (one KV head): all their query heads share each K/V block.
void Context::attention(int64_t layer, const Batch& batch, int64_t begin, int64_t T, int64_t n_exact) {
  constexpr int64_t kAttnTokens = 16;
  const HParams& hp = model_.hparams();
  const int64_t D = hp.head_dim, Eq = hp.n_embd_q(), Ekv = hp.n_embd_kv();
  const int64_t group = hp.n_head / hp.n_head_kv;
  const int64_t bs = kv_->block_size();
  AttnFn kernel = (D % 16 == 0 && bs == 16) ? attention_kernel() : attention_ref;
  AttnFn small_kernel = D % 16 == 0 ? attention_f16acc_kernel(best_kernel_level()) : attention_f16acc_ref;

  // Tokens of each sequence, in batch order, cut into chunks.
  std::unordered_map<int32_t, std::vector<int64_t>> by_seq;
  for (int64_t t = 0; t < T; ++t) by_seq[batch.seq[begin + t]].push_back(t);
  struct Chunk {
    int32_t seq;
    const int64_t* tokens;
    int64_t n;
    AttnFn fn;
  };
  std::vector<Chunk> chunks;
  for (const auto& [seq, toks] : by_seq) {
    // The first n_exact tokens belong to sequences with llama.cpp's small-batch numerics. A single
    // token past position 255 is where llama.cpp's decode switches to its split-KV path (its KV
    // view, padded to 256 cells, reaches 512), which depends on its thread count: we do not imitate
    // that and use the fast f32 kernel there.
    const bool split_kv = toks.size() == 1 && batch.pos[begin + toks.front()] >= kLlamaSplitKvMinPos;
    const AttnFn fn = toks.front() < n_exact && !split_kv ? small_kernel : kernel;
    for (size_t i = 0; i < toks.size(); i += kAttnTokens)
      chunks.push_back({seq, toks.data() + i, std::min<int64_t>(kAttnTokens, static_cast<int64_t>(toks.size() - i)), fn});
  }
  const int64_t n_tasks = static_cast<int64_t>(chunks.size()) * hp.n_head_kv;
  const int max_q = static_cast<int>(kAttnTokens * group);
  pool_->parallel_for(n_tasks, 1, [&](int64_t b, int64_t e, int tid) {
    std::vector<float>& scratch = scores_[tid];
    const size_t need = static_cast<size_t>(attn_scratch_floats(D, max_q, bs));
    if (scratch.size() < need) scratch.resize(need);
    std::vector<const float*> q(max_q);
    std::vector<float*> out(max_q);
    std::vector<int64_t> max_pos(max_q);
    std::vector<const uint16_t*> kb, vb;
    for (int64_t task = b; task < e; ++task) {
      const Chunk& c = chunks[task / hp.n_head_kv];
      const int64_t g = task % hp.n_head_kv;
      int n_q = 0;
      int64_t last = 0;
      for (int64_t i = 0; i < c.n; ++i) {
        const int64_t t = c.tokens[i];
        const int64_t pos = batch.pos[begin + t];
        last = std::max(last, pos);
        for (int64_t h = g * group; h < (g + 1) * group; ++h) {
          q[n_q] = &q_[t * Eq + h * D];
          out[n_q] = &att_[t * Eq + h * D];
          max_pos[n_q] = pos;
          ++n_q;
        }
      }
      const std::vector<int32_t>& table = kv_->block_table(c.seq);
      const int64_t n_blocks = last / bs + 1;
      kb.resize(n_blocks);
      vb.resize(n_blocks);
      for (int64_t blk = 0; blk < n_blocks; ++blk) {
        const int64_t cell = static_cast<int64_t>(table[blk]) * bs;
        kb[blk] = kv_->k(layer, cell) + g * D;
        vb[blk] = kv_->v(layer, cell) + g * D;
      }
      AttnArgs args;
      args.head_dim = D;
      args.n_q = n_q;
      args.q = q.data();
      args.max_pos = max_pos.data();
      args.block_size = bs;
      args.n_blocks = n_blocks;
      args.k_blocks = kb.data();
      args.v_blocks = vb.data();
      args.kv_stride = Ekv;
      args.scale = 1.0f / std::sqrt(static_cast<float>(D));
      args.out = out.data();
      args.scratch = scratch.data();
      c.fn(args);
    }
  });
}

}  // namespace nc::engine
