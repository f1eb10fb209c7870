// LoraAdapter (lora.h): reading llama.cpp's GGUF LoRA adapters, and the low-rank products.
#include "engine/model/lora.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <string_view>

#include "engine/kernels/fp16.h"
#include "engine/kernels/kernels.h"

namespace nc::engine {
namespace {

// A tensor as f32 rows: `rows` rows of `cols`.
Result<std::vector<float>> read_f32(const GgufFile& file, const GgufTensorInfo& t, int64_t cols, int64_t rows) {
  switch (t.type) {
    case GgmlType::kF32:
    case GgmlType::kF16:
    case GgmlType::kBF16:
    case GgmlType::kQ8_0:
      break;
    default:
      return unimplemented(fmt::format("adapter tensor '{}' has type {}; adapters may be f32, f16, bf16 or q8_0", t.name,
                                       ggml_type_name(t.type)));
  }
  if (cols % ggml_traits(t.type).block_elems != 0)
    return invalid_argument(fmt::format("adapter tensor '{}': rows of {} are not whole {} blocks", t.name, cols,
                                        ggml_type_name(t.type)));
  const TypeKernels& k = type_kernels(t.type, KernelLevel::kScalar);
  const size_t row_bytes = ggml_row_bytes(t.type, cols);
  const uint8_t* data = file.tensor_data(t);
  std::vector<float> out(static_cast<size_t>(cols * rows));
  for (int64_t r = 0; r < rows; ++r) k.dequantize_row(data + r * row_bytes, &out[r * cols], cols);
  return out;
}

float dot(const float* a, const float* b, int64_t n) {
  // Eight partial sums in a fixed order: the same result for a row whatever else is computed.
  float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) s[j] += a[i + j] * b[i + j];
  for (; i < n; ++i) s[0] += a[i] * b[i];
  return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

}  // namespace

void lora_round_input(GgmlType type, float* x, int64_t n) {
  switch (type) {
    case GgmlType::kF16:
      for (int64_t i = 0; i < n; ++i) x[i] = fp16_to_fp32(fp32_to_fp16(x[i]));
      break;
    case GgmlType::kBF16:
      for (int64_t i = 0; i < n; ++i) x[i] = bf16_to_fp32(fp32_to_bf16(x[i]));
      break;
    case GgmlType::kQ8_0: {
      std::vector<uint8_t> q(ggml_row_bytes(GgmlType::kQ8_0, n));
      quantize_row_q8_0_ref(x, q.data(), n);
      type_kernels(GgmlType::kQ8_0, KernelLevel::kScalar).dequantize_row(q.data(), x, n);
      break;
    }
    default:
      break;
  }
}

Result<std::shared_ptr<const LoraAdapter>> LoraAdapter::load(const std::string& path, const Model& base,
                                                             float user_scale) {
  NC_ASSIGN_OR_RETURN(auto file, GgufFile::open(path));
  auto r = from_gguf(*file, base, user_scale);
  if (!r.is_ok()) return r.status().with_context("adapter " + path);
  return r;
}

Result<std::shared_ptr<const LoraAdapter>> LoraAdapter::from_gguf(const GgufFile& file, const Model& base,
                                                                  float user_scale) {
  const HParams& hp = base.hparams();
  NC_ASSIGN_OR_RETURN(std::string_view type, file.get_string("general.type"));
  if (type != "adapter") return invalid_argument(fmt::format("general.type is '{}', not 'adapter'", type));
  NC_ASSIGN_OR_RETURN(std::string_view adapter_type, file.get_string("adapter.type"));
  if (adapter_type != "lora")
    return invalid_argument(fmt::format("adapter.type is '{}'; only 'lora' adapters are supported", adapter_type));
  NC_ASSIGN_OR_RETURN(std::string_view arch, file.get_string("general.architecture"));
  if (arch != hp.arch)
    return invalid_argument(fmt::format("the adapter is for architecture '{}', the model is '{}'", arch, hp.arch));
  std::shared_ptr<LoraAdapter> ad(new LoraAdapter());
  ad->base_ = &base;
  NC_ASSIGN_OR_RETURN(ad->alpha_, file.get_f32_or("adapter.lora.alpha", 0.0f));
  if (file.find("adapter.alora.invocation_tokens"))
    return unimplemented("activated LoRA (adapter.alora.invocation_tokens) is not supported");
  ad->layers_.resize(static_cast<size_t>(hp.n_layer));

  // The base matrices an adapter may change, by name: where the product goes and the base's shape.
  struct Target {
    const LoraWeight** slot;
    int64_t n_in, n_out;
  };
  std::map<std::string, Target, std::less<>> targets;
  const int64_t E = hp.n_embd, Eq = hp.n_embd_q(), Ekv = hp.n_embd_kv(), F = hp.n_ff;
  for (int64_t il = 0; il < hp.n_layer; ++il) {
    LoraLayer& L = ad->layers_[static_cast<size_t>(il)];
    const std::string p = fmt::format("blk.{}.", il);
    targets[p + "attn_q.weight"] = {&L.wq, E, Eq};
    targets[p + "attn_k.weight"] = {&L.wk, E, Ekv};
    targets[p + "attn_v.weight"] = {&L.wv, E, Ekv};
    targets[p + "attn_output.weight"] = {&L.wo, Eq, E};
    targets[p + "ffn_gate.weight"] = {&L.gate, E, F};
    targets[p + "ffn_up.weight"] = {&L.up, E, F};
    targets[p + "ffn_down.weight"] = {&L.down, F, E};
  }
  targets["output.weight"] = {&ad->output_, E, hp.n_vocab};

  // Pair "<W>.lora_a" with "<W>.lora_b".
  std::map<std::string, std::pair<const GgufTensorInfo*, const GgufTensorInfo*>> pairs;
  for (const GgufTensorInfo& t : file.tensors()) {
    const std::string_view name = t.name;
    const bool is_a = name.ends_with(".lora_a"), is_b = name.ends_with(".lora_b");
    if (!is_a && !is_b) return invalid_argument(fmt::format("tensor '{}' is not a LoRA tensor (.lora_a / .lora_b)", name));
    auto& pair = pairs[std::string(name.substr(0, name.size() - 7))];
    (is_a ? pair.first : pair.second) = &t;
  }
  if (pairs.empty()) return invalid_argument("the adapter has no tensors");
  for (const auto& [name, pair] : pairs) {
    if (!pair.first || !pair.second)
      return invalid_argument(fmt::format("'{}' has a lora_{} but no lora_{}", name, pair.first ? "a" : "b",
                                          pair.first ? "b" : "a"));
    auto it = targets.find(name);
    if (it == targets.end()) {
      if (name == "output.weight" || name.starts_with("blk."))
        return invalid_argument(fmt::format("'{}' is not a matrix of this model that adapters may change", name));
      return unimplemented(fmt::format("adapters of '{}' are not supported (attention, MLP and output projections are)",
                                       name));
    }
    if (name == "output.weight" && base.weights().tied_output)
      return unimplemented("an adapter of output.weight on a model whose output is tied to token_embd");
    const Target& tg = it->second;
    const GgufTensorInfo& a = *pair.first;
    const GgufTensorInfo& b = *pair.second;
    const int64_t rank = a.ne[1];
    if (a.ne[2] != 1 || a.ne[3] != 1 || b.ne[2] != 1 || b.ne[3] != 1 || a.ne[0] != tg.n_in || b.ne[1] != tg.n_out)
      return invalid_argument(fmt::format("'{}': lora_a is [{}, {}] and lora_b [{}, {}]; the model's matrix is {} in, {} "
                                          "out (an adapter of another base model?)",
                                          name, a.ne[0], a.ne[1], b.ne[0], b.ne[1], tg.n_in, tg.n_out));
    if (b.ne[0] != rank || rank <= 0)
      return invalid_argument(fmt::format("'{}': lora_a has rank {} but lora_b {} (lora_a must be transposed as "
                                          "convert_lora_to_gguf.py writes it)",
                                          name, rank, b.ne[0]));
    auto w = std::make_unique<LoraWeight>();
    w->rank = rank;
    w->n_in = tg.n_in;
    w->n_out = tg.n_out;
    w->scale = ad->alpha_ != 0.0f ? user_scale * ad->alpha_ / static_cast<float>(rank) : user_scale;
    w->a_type = a.type;
    w->b_type = b.type;
    NC_ASSIGN_OR_RETURN(w->a, read_f32(file, a, tg.n_in, rank));
    NC_ASSIGN_OR_RETURN(w->b, read_f32(file, b, rank, tg.n_out));
    *tg.slot = w.get();
    ad->weights_.push_back(std::move(w));
  }
  return std::shared_ptr<const LoraAdapter>(std::move(ad));
}

size_t LoraAdapter::bytes() const {
  size_t n = 0;
  for (const auto& w : weights_) n += (w->a.size() + w->b.size()) * sizeof(float);
  return n;
}

void lora_add(std::span<const LoraProduct> products, const float* x, int64_t x_stride, float* out, int64_t out_stride,
              ThreadPool* pool) {
  // Step A: tmp = A x for every (product, token, rank row); items numbered product by product.
  std::vector<int64_t> first_item(products.size() + 1, 0);
  for (size_t k = 0; k < products.size(); ++k) first_item[k + 1] = first_item[k] + products[k].n * products[k].w->rank;
  const int64_t n_items = first_item.back();
  if (n_items == 0) return;
  std::vector<float> tmp(static_cast<size_t>(n_items));
  // Inputs of products whose A is not f32, rounded as ggml would (one copy per token).
  std::vector<std::vector<float>> rounded(products.size());
  for (size_t k = 0; k < products.size(); ++k) {
    const LoraProduct& p = products[k];
    if (p.w->a_type == GgmlType::kF32) continue;
    rounded[k].resize(static_cast<size_t>(p.n * p.w->n_in));
    for (int64_t t = 0; t < p.n; ++t) {
      std::copy_n(x + p.rows[t] * x_stride, p.w->n_in, &rounded[k][t * p.w->n_in]);
      lora_round_input(p.w->a_type, &rounded[k][t * p.w->n_in], p.w->n_in);
    }
  }
  auto product_of = [&](int64_t item) {
    return static_cast<size_t>(std::upper_bound(first_item.begin(), first_item.end(), item) - first_item.begin() - 1);
  };
  auto step_a = [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) {
      const size_t k = product_of(i);
      const LoraProduct& p = products[k];
      const int64_t local = i - first_item[k], r = p.w->rank, t = local / r;
      const float* in = rounded[k].empty() ? x + p.rows[t] * x_stride : &rounded[k][t * p.w->n_in];
      tmp[i] = dot(&p.w->a[(local % r) * p.w->n_in], in, p.w->n_in);
    }
  };
  // Step B: out[t][o] += scale · B[o] · tmp[t], in chunks of output rows per product.
  constexpr int64_t kRows = 64;
  std::vector<int64_t> first_chunk(products.size() + 1, 0);
  for (size_t k = 0; k < products.size(); ++k)
    first_chunk[k + 1] = first_chunk[k] + (products[k].n > 0 ? (products[k].w->n_out + kRows - 1) / kRows : 0);
  auto step_b = [&](int64_t b, int64_t e, int) {
    for (int64_t c = b; c < e; ++c) {
      const size_t k = static_cast<size_t>(std::upper_bound(first_chunk.begin(), first_chunk.end(), c) -
                                           first_chunk.begin() - 1);
      const LoraProduct& p = products[k];
      const LoraWeight& w = *p.w;
      const int64_t row0 = (c - first_chunk[k]) * kRows, row1 = std::min(w.n_out, row0 + kRows);
      for (int64_t t = 0; t < p.n; ++t) {
        float* o = out + p.rows[t] * out_stride;
        const float* v = &tmp[first_item[k] + t * w.rank];
        for (int64_t row = row0; row < row1; ++row) o[row] += w.scale * dot(&w.b[row * w.rank], v, w.rank);
      }
    }
  };
  auto round_tmp = [&] {  // B's input (A x), rounded for B's type
    for (size_t k = 0; k < products.size(); ++k)
      if (products[k].w->b_type != GgmlType::kF32)
        for (int64_t t = 0; t < products[k].n; ++t)
          lora_round_input(products[k].w->b_type, &tmp[first_item[k] + t * products[k].w->rank], products[k].w->rank);
  };
  if (pool) {
    pool->parallel_for(n_items, 8, step_a);
    round_tmp();
    pool->parallel_for(first_chunk.back(), 1, step_b);
  } else {
    step_a(0, n_items, 0);
    round_tmp();
    step_b(0, first_chunk.back(), 0);
  }
}

}  // namespace nc::engine
