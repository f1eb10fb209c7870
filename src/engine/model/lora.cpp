// LoraAdapter (lora.h): reading llama.cpp's GGUF LoRA adapters, and the low-rank products.
#include "engine/model/lora.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
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
  // A NaN or infinity would poison every output it touches (and cannot be quantized).
  for (float v : out)
    if (!std::isfinite(v))
      return invalid_argument(fmt::format("adapter tensor '{}' holds a value that is not finite (NaN or infinity)", t.name));
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

float lora_quantize_b_input(float* v, int64_t n, uint8_t* hi, uint8_t* lo) {
  float amax = 0;
  for (int64_t j = 0; j < n; ++j) amax = std::max(amax, std::fabs(v[j]));
  const float d = std::isfinite(amax) ? amax / 32767.0f : 0.0f, id = d > 0 ? 1.0f / d : 0.0f;
  for (int64_t j = 0; j < n; ++j) {
    const float x = v[j] * id;  // |x| <= 32767 (a non-finite input, from overflowing activations, counts 0)
    const int32_t r = std::isfinite(x) ? static_cast<int32_t>(std::lround(std::clamp(x, -32767.0f, 32767.0f))) : 0;
    if (hi) {
      hi[j] = static_cast<uint8_t>((r >> 8) + 128);  // arithmetic shift: r = 256 * (r >> 8) + (r & 255)
      lo[j] = static_cast<uint8_t>(r & 255);
    } else {
      v[j] = d * static_cast<float>(r);
    }
  }
  return d;
}

Result<std::shared_ptr<const LoraAdapter>> LoraAdapter::load(const std::string& path, const Model& base,
                                                             float user_scale, LoraStorage storage) {
  NC_ASSIGN_OR_RETURN(auto file, GgufFile::open(path));
  auto r = from_gguf(*file, base, user_scale, storage);
  if (!r.is_ok()) return r.status().with_context("adapter " + path);
  return r;
}

Result<std::shared_ptr<const LoraAdapter>> LoraAdapter::from_gguf(const GgufFile& file, const Model& base,
                                                                  float user_scale, LoraStorage storage) {
  const HParams& hp = base.hparams();
  if (storage == LoraStorage::kAuto) {
    const GgmlType t = base.weights().layers.empty() ? GgmlType::kF32 : base.weights().layers[0].wq.type;
    const bool float_base = t == GgmlType::kF32 || t == GgmlType::kF16 || t == GgmlType::kBF16;
    storage = float_base ? LoraStorage::kF32 : LoraStorage::kQ8_0;
  }
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
  if (!std::isfinite(ad->alpha_) || !std::isfinite(user_scale))
    return invalid_argument("adapter.lora.alpha (and the scale) must be finite numbers");
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
    if (storage == LoraStorage::kQ8_0 && tg.n_in % 32 == 0 && tg.n_out % 32 == 0 && rank <= 256) {
      w->storage = LoraStorage::kQ8_0;
      w->a_type = GgmlType::kQ8_0;  // A's input is quantized like any Q8_0 matrix's; B's to 16 bits
      w->b_type = GgmlType::kF32;   // (lora_quantize_b_input, not the f32-storage rounding)
      const size_t a_row = ggml_row_bytes(GgmlType::kQ8_0, tg.n_in);
      w->a_q8.resize(a_row * rank);
      for (int64_t j = 0; j < rank; ++j) quantize_row_q8_0_ref(&w->a[j * tg.n_in], &w->a_q8[j * a_row], tg.n_in);
      if (const TypeKernels& k = type_kernels(GgmlType::kQ8_0); k.pack && k.gemm_packed) {
        const size_t n = k.packed_bytes(rank, tg.n_in);
        w->a_packed.resize(n);
        k.pack(w->a_q8.data(), a_row, rank, tg.n_in, w->a_packed.data());
        w->a_group_bytes = n / static_cast<size_t>((rank + k.pack_rows - 1) / k.pack_rows);
      }
      // B: each output row's rank values as int8 with one scale, in tiles of 16 rows (kernels.h).
      w->r4 = static_cast<int>((rank + 3) / 4 * 4);
      w->b_tiles.assign(static_cast<size_t>(tg.n_out * w->r4), 0);
      w->b_d.resize(static_cast<size_t>(tg.n_out));
      for (int64_t o = 0; o < tg.n_out; ++o) {
        float amax = 0;
        for (int64_t j = 0; j < rank; ++j) amax = std::max(amax, std::fabs(w->b[o * rank + j]));
        const float d = amax / 127.0f, id = d > 0 ? 1.0f / d : 0.0f;
        w->b_d[o] = fp32_to_fp16(d);
        for (int64_t j = 0; j < rank; ++j)
          w->b_tiles[w->b_tile_at(o, j)] = static_cast<int8_t>(std::lround(w->b[o * rank + j] * id));
      }
      w->a = {};
      w->b = {};
    }
    *tg.slot = w.get();
    ad->weights_.push_back(std::move(w));
  }
  return std::shared_ptr<const LoraAdapter>(std::move(ad));
}

size_t LoraAdapter::bytes() const {
  size_t n = 0;
  for (const auto& w : weights_)
    n += (w->a.size() + w->b.size()) * sizeof(float) + w->a_q8.size() + w->a_packed.size() + w->b_tiles.size() +
         w->b_d.size() * 2;
  return n;
}

void LoraWeight::to_f32(std::vector<float>* a_out, std::vector<float>* b_out) const {
  if (storage == LoraStorage::kF32) {
    *a_out = a;
    *b_out = b;
    return;
  }
  const TypeKernels& k = type_kernels(GgmlType::kQ8_0, KernelLevel::kScalar);
  const size_t a_row = ggml_row_bytes(GgmlType::kQ8_0, n_in);
  a_out->resize(static_cast<size_t>(rank * n_in));
  b_out->resize(static_cast<size_t>(n_out * rank));
  for (int64_t j = 0; j < rank; ++j) k.dequantize_row(&a_q8[j * a_row], &(*a_out)[j * n_in], n_in);
  for (int64_t o = 0; o < n_out; ++o)
    for (int64_t j = 0; j < rank; ++j)
      (*b_out)[o * rank + j] = fp16_to_fp32(b_d[o]) * b_tiles[b_tile_at(o, j)];
}

void lora_add(std::span<const LoraProduct> products, ThreadPool* pool, LoraScratch* scratch) {
  LoraScratch local;
  LoraScratch& sc = scratch ? *scratch : local;
  const size_t np = products.size();
  // Items of step A: (product, token, rank row), numbered product by product.
  sc.first_item.assign(np + 1, 0);
  for (size_t k = 0; k < np; ++k) sc.first_item[k + 1] = sc.first_item[k] + products[k].n * products[k].w->rank;
  const int64_t n_items = sc.first_item.back();
  if (n_items == 0) return;
  sc.tmp.resize(static_cast<size_t>(n_items));
  const TypeKernels& q8 = type_kernels(GgmlType::kQ8_0);
  const VecKernels& vk = vec_kernels();

  // Inputs: Q8_0 storage takes each token's input quantized in the Q8_0 kernels' activation format;
  // f32 storage of a non-f32 file takes it rounded as ggml would; f32 as it is. One conversion per
  // distinct (x, rows, n, n_in, kind), at input_at[k] (bytes into acts, or floats into rounded; -1: none).
  auto kind = [](const LoraWeight& w) {
    return w.storage == LoraStorage::kQ8_0 ? 1 : w.a_type == GgmlType::kF32 ? 0 : 2;
  };
  sc.input_at.assign(np, -1);
  size_t act_bytes = 0, rounded_floats = 0;
  struct Conversion {
    size_t product;  // the first product with this input
    int64_t at;
  };
  std::vector<Conversion> conversions;
  for (size_t k = 0; k < np; ++k) {
    const LoraProduct& p = products[k];
    const int kd = kind(*p.w);
    if (kd == 0) continue;
    for (const Conversion& c : conversions) {
      const LoraProduct& q = products[c.product];
      if (q.x == p.x && q.rows == p.rows && q.n == p.n && q.w->n_in == p.w->n_in && q.x_stride == p.x_stride &&
          kind(*q.w) == kd && (kd == 1 || q.w->a_type == p.w->a_type)) {
        sc.input_at[k] = c.at;
        break;
      }
    }
    if (sc.input_at[k] >= 0) continue;
    if (kd == 1) {
      sc.input_at[k] = static_cast<int64_t>(act_bytes);
      act_bytes += q8.act_bytes(p.w->n_in) * static_cast<size_t>(p.n);
    } else {
      sc.input_at[k] = static_cast<int64_t>(rounded_floats);
      rounded_floats += static_cast<size_t>(p.w->n_in * p.n);
    }
    conversions.push_back({k, sc.input_at[k]});
  }
  sc.acts.resize(act_bytes);
  sc.rounded.resize(rounded_floats);
  auto product_of = [&](const std::vector<int64_t>& first, int64_t item) {
    return static_cast<size_t>(std::upper_bound(first.begin(), first.end(), item) - first.begin() - 1);
  };
  std::vector<int64_t> first_conv(conversions.size() + 1, 0);  // (conversion, token) pairs
  for (size_t c = 0; c < conversions.size(); ++c) first_conv[c + 1] = first_conv[c] + products[conversions[c].product].n;
  auto convert = [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) {
      const size_t c = product_of(first_conv, i);
      const LoraProduct& p = products[conversions[c].product];
      const int64_t t = i - first_conv[c], n_in = p.w->n_in;
      const float* in = p.x + p.rows[t] * p.x_stride;
      if (kind(*p.w) == 1) {
        q8.quantize_act(in, &sc.acts[conversions[c].at + t * q8.act_bytes(n_in)], n_in);
      } else {
        float* r = &sc.rounded[conversions[c].at + t * n_in];
        std::copy_n(in, n_in, r);
        lora_round_input(p.w->a_type, r, n_in);
      }
    }
  };

  // Step A: tmp = A x. A work item is one (product, token) pair: all rank rows of A for that token.
  sc.first_pair.assign(np + 1, 0);
  for (size_t k = 0; k < np; ++k) sc.first_pair[k + 1] = sc.first_pair[k] + products[k].n;
  auto step_a = [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) {
      const size_t k = product_of(sc.first_pair, i);
      const LoraProduct& p = products[k];
      const LoraWeight& w = *p.w;
      const int64_t t = i - sc.first_pair[k];
      float* out = &sc.tmp[sc.first_item[k] + t * w.rank];
      if (w.storage == LoraStorage::kQ8_0) {
        const uint8_t* act = &sc.acts[sc.input_at[k] + t * q8.act_bytes(w.n_in)];
        if (!w.a_packed.empty()) {
          const int groups = static_cast<int>((w.rank + q8.pack_rows - 1) / q8.pack_rows);
          q8.gemm_packed(w.n_in, w.a_packed.data(), w.a_group_bytes, groups, static_cast<int>(w.rank), act,
                         q8.act_bytes(w.n_in), 1, out, static_cast<size_t>(w.rank));
        } else {
          const size_t a_row = ggml_row_bytes(GgmlType::kQ8_0, w.n_in);
          for (int64_t j = 0; j < w.rank; ++j) out[j] = q8.vec_dot(w.n_in, &w.a_q8[j * a_row], act);
        }
      } else {
        const float* in = sc.input_at[k] < 0 ? p.x + p.rows[t] * p.x_stride : &sc.rounded[sc.input_at[k] + t * w.n_in];
        for (int64_t j = 0; j < w.rank; ++j) out[j] = dot(&w.a[j * w.n_in], in, w.n_in);
      }
    }
  };
  // B's input (A x), rounded for B's type (f32 storage of a non-f32 file).
  auto round_tmp = [&] {
    for (size_t k = 0; k < np; ++k)
      if (products[k].w->b_type != GgmlType::kF32)
        for (int64_t t = 0; t < products[k].n; ++t)
          lora_round_input(products[k].w->b_type, &sc.tmp[sc.first_item[k] + t * products[k].w->rank], products[k].w->rank);
  };
  // Step B: out[t][o] += scale · B[o] · tmp[t], in chunks of output rows per product.
  constexpr int64_t kRows = 128;
  sc.first_chunk.assign(np + 1, 0);
  for (size_t k = 0; k < np; ++k)
    sc.first_chunk[k + 1] = sc.first_chunk[k] + (products[k].n > 0 ? (products[k].w->n_out + kRows - 1) / kRows : 0);
  auto step_b = [&](int64_t b, int64_t e, int) {
    uint8_t hi[256], lo[256];
    for (int64_t c = b; c < e; ++c) {
      const size_t k = product_of(sc.first_chunk, c);
      const LoraProduct& p = products[k];
      const LoraWeight& w = *p.w;
      const int64_t row0 = (c - sc.first_chunk[k]) * kRows, row1 = std::min(w.n_out, row0 + kRows);
      const float* tmp = &sc.tmp[sc.first_item[k]];
      if (w.storage == LoraStorage::kQ8_0) {  // out[row0, row1) += scale · B[row0, row1) · tmp, in int8
        for (int64_t t = 0; t < p.n; ++t) {
          // tmp as 16-bit integers with one scale, in two unsigned byte rows, zero-padded to r4.
          float v[256];
          std::copy_n(tmp + t * w.rank, w.rank, v);
          const float d = lora_quantize_b_input(v, w.rank, hi, lo);
          std::fill(hi + w.rank, hi + w.r4, uint8_t{128});
          std::fill(lo + w.rank, lo + w.r4, uint8_t{0});
          vk.lora_b_tiles(&w.b_tiles[row0 * w.r4], &w.b_d[row0], (row1 - row0) / 16, w.r4, hi, lo, w.scale * d,
                          p.out + p.rows[t] * p.out_stride + row0);
        }
        continue;
      }
      for (int64_t t = 0; t < p.n; ++t) {
        float* o = p.out + p.rows[t] * p.out_stride;
        const float* v = tmp + t * w.rank;
        for (int64_t row = row0; row < row1; ++row) o[row] += w.scale * dot(&w.b[row * w.rank], v, w.rank);
      }
    }
  };
  if (!pool) {
    convert(0, first_conv.back(), 0);
    step_a(0, sc.first_pair.back(), 0);
    round_tmp();
    step_b(0, sc.first_chunk.back(), 0);
    return;
  }
  // Small inputs (decode steps) are converted here: a parallel region costs more than the work.
  int64_t convert_values = 0;
  for (const Conversion& c : conversions) convert_values += products[c.product].n * products[c.product].w->n_in;
  if (convert_values <= (64 << 10)) convert(0, first_conv.back(), 0);
  else pool->parallel_for(first_conv.back(), 1, convert);
  bool few_tokens = true;
  for (const LoraProduct& p : products) few_tokens &= p.n <= 4 && p.w->b_type == GgmlType::kF32;
  if (few_tokens) {
    // Decode: one work item is one product, A then B (one parallel region instead of two).
    pool->parallel_for(static_cast<int64_t>(np), 1, [&](int64_t b, int64_t e, int tid) {
      for (int64_t k = b; k < e; ++k) {
        step_a(sc.first_pair[k], sc.first_pair[k + 1], tid);
        step_b(sc.first_chunk[k], sc.first_chunk[k + 1], tid);
      }
    });
    return;
  }
  pool->parallel_for(sc.first_pair.back(), 1, step_a);
  round_tmp();
  pool->parallel_for(sc.first_chunk.back(), 16, step_b);
}

}  // namespace nc::engine
