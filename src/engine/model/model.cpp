#include "engine/model/model.h"

#include <fmt/format.h>
#include <sys/mman.h>

#include "core/timer.h"
#include "engine/kernels/kernels.h"
#include "engine/model/model_loader.h"

namespace nc::engine {

Status ModelLoader::matrix(const std::string& name, int64_t n_cols, int64_t n_rows, WeightView& out) {
  bool present = false;
  NC_RETURN_IF_ERROR(optional_matrix(name, n_cols, n_rows, out, present));
  if (!present) return invalid_argument(fmt::format("required tensor '{}' is missing", name));
  return Status::ok();
}

Status ModelLoader::optional_matrix(const std::string& name, int64_t n_cols, int64_t n_rows, WeightView& out,
                                    bool& present) {
  const GgufTensorInfo* t = file().find_tensor(name);
  present = t != nullptr;
  if (!t) return Status::ok();
  if (t->ne[0] != n_cols || t->ne[1] != n_rows || t->ne[2] != 1 || t->ne[3] != 1)
    return invalid_argument(fmt::format("tensor '{}' has shape [{}, {}, {}, {}], expected [{}, {}]", name, t->ne[0],
                                        t->ne[1], t->ne[2], t->ne[3], n_cols, n_rows));
  if (!weight_type_supported(t->type))
    return unimplemented(fmt::format("tensor '{}' has type {}, which the engine cannot compute with yet (supported: "
                                     "f32, f16, bf16, q8_0, q4_0, q4_K, q6_K)",
                                     name, ggml_type_name(t->type)));
  out.type = t->type;
  out.data = file().tensor_data(*t);
  out.n_cols = n_cols;
  out.n_rows = n_rows;
  out.row_bytes = ggml_row_bytes(t->type, n_cols);
  return Status::ok();
}

Status ModelLoader::vector(const std::string& name, int64_t n, const float*& out) {
  NC_RETURN_IF_ERROR(optional_vector(name, n, out));
  if (!out) return invalid_argument(fmt::format("required tensor '{}' is missing", name));
  return Status::ok();
}

Status ModelLoader::optional_vector(const std::string& name, int64_t n, const float*& out) {
  out = nullptr;
  const GgufTensorInfo* t = file().find_tensor(name);
  if (!t) return Status::ok();
  if (t->n_elements() != n || t->ne[0] != n)
    return invalid_argument(fmt::format("tensor '{}' has {} elements, expected {}", name, t->n_elements(), n));
  if (t->type != GgmlType::kF32)
    return unimplemented(fmt::format("tensor '{}' has type {}; 1-D tensors must be f32", name, ggml_type_name(t->type)));
  out = reinterpret_cast<const float*>(file().tensor_data(*t));
  return Status::ok();
}

Status ModelLoader::load_common_hparams() {
  HParams& h = hp();
  const std::string a = h.arch + ".";
  auto u32 = [&](const char* key, int64_t& out) -> Status {
    auto r = file().get_u32(a + key);
    if (!r) return r.status();
    out = *r;
    return Status::ok();
  };
  NC_RETURN_IF_ERROR(u32("context_length", h.n_ctx_train));
  NC_RETURN_IF_ERROR(u32("embedding_length", h.n_embd));
  NC_RETURN_IF_ERROR(u32("block_count", h.n_layer));
  NC_RETURN_IF_ERROR(u32("feed_forward_length", h.n_ff));
  NC_RETURN_IF_ERROR(u32("attention.head_count", h.n_head));
  NC_ASSIGN_OR_RETURN(uint32_t n_head_kv, file().get_u32_or(a + "attention.head_count_kv", h.n_head));
  h.n_head_kv = n_head_kv;
  NC_ASSIGN_OR_RETURN(h.rms_eps, file().get_f32(a + "attention.layer_norm_rms_epsilon"));
  NC_ASSIGN_OR_RETURN(h.rope_freq_base, file().get_f32_or(a + "rope.freq_base", 10000.0f));
  if (file().find(a + "pooling_type")) {
    NC_ASSIGN_OR_RETURN(uint32_t pooling, file().get_u32(a + "pooling_type"));
    if (pooling > static_cast<uint32_t>(Pooling::kRank))
      return invalid_argument(fmt::format("{}pooling_type {} is not a known pooling type (0-4)", a, pooling));
    h.pooling = static_cast<Pooling>(pooling);
  }
  if (h.n_embd <= 0 || h.n_layer <= 0 || h.n_head <= 0 || h.n_head_kv <= 0 || h.n_ff <= 0)
    return invalid_argument("model hyper-parameters must be positive (embedding_length, block_count, head_count, "
                            "head_count_kv, feed_forward_length)");
  if (h.n_embd % h.n_head != 0)
    return invalid_argument(fmt::format("embedding_length {} is not a multiple of head_count {}", h.n_embd, h.n_head));
  if (h.n_head % h.n_head_kv != 0)
    return invalid_argument(fmt::format("head_count {} is not a multiple of head_count_kv {}", h.n_head, h.n_head_kv));
  NC_ASSIGN_OR_RETURN(uint32_t key_len, file().get_u32_or(a + "attention.key_length", h.n_embd / h.n_head));
  NC_ASSIGN_OR_RETURN(uint32_t val_len, file().get_u32_or(a + "attention.value_length", h.n_embd / h.n_head));
  if (key_len != val_len) return unimplemented("attention.key_length != attention.value_length");
  h.head_dim = key_len;
  if (h.head_dim % 2 != 0) return invalid_argument(fmt::format("head dimension {} must be even", h.head_dim));
  NC_ASSIGN_OR_RETURN(uint32_t n_rot, file().get_u32_or(a + "rope.dimension_count", h.head_dim));
  h.n_rot = n_rot;
  if (h.n_rot != h.head_dim)
    return unimplemented(fmt::format("rope.dimension_count {} differs from the head dimension {}", h.n_rot, h.head_dim));

  // RoPE scaling: linear (factor) is supported; YaRN and others are not yet.
  std::string scaling_type = "linear";
  if (const GgufValue* v = file().find(a + "rope.scaling.type")) {
    if (v->type != GgufType::kString) return invalid_argument(a + "rope.scaling.type must be a string");
    scaling_type = std::string(v->str);
  }
  NC_ASSIGN_OR_RETURN(float factor, file().get_f32_or(a + "rope.scaling.factor", 0.0f));
  h.rope_freq_scale = factor == 0.0f ? 1.0f : 1.0f / factor;
  if (scaling_type == "none") h.rope_freq_scale = 1.0f;
  else if (scaling_type != "linear")
    return unimplemented(fmt::format("rope.scaling.type '{}' is not supported yet (linear and none are)", scaling_type));
  if (const GgufValue* v = file().find("general.name"); v && v->type == GgufType::kString) h.name = std::string(v->str);
  return Status::ok();
}

Status ModelLoader::load_common_tensors(bool require_qkv_bias) {
  HParams& h = hp();
  ModelWeights& mw = w();
  const GgufTensorInfo* emb = file().find_tensor("token_embd.weight");
  if (!emb) return invalid_argument("required tensor 'token_embd.weight' is missing");
  h.n_vocab = emb->ne[1];
  if (const GgufValue* toks = file().find("tokenizer.ggml.tokens")) {
    if (toks->type == GgufType::kArray && static_cast<int64_t>(toks->n_elems) > h.n_vocab)
      return invalid_argument(fmt::format("the tokenizer has {} tokens but token_embd.weight only {} rows",
                                          toks->n_elems, h.n_vocab));
  }
  NC_RETURN_IF_ERROR(matrix("token_embd.weight", h.n_embd, h.n_vocab, mw.token_embd));
  const int64_t nq = h.n_embd_q(), nkv = h.n_embd_kv();
  // Every layer has tensors of its own: a block_count the file cannot back is an error, not a huge
  // allocation (a missing tensor of a smaller count is reported by name below).
  if (h.n_layer > static_cast<int64_t>(file().tensors().size()))
    return invalid_argument(fmt::format("block_count is {} but the file has only {} tensors", h.n_layer,
                                        file().tensors().size()));
  mw.layers.resize(h.n_layer);
  for (int64_t il = 0; il < h.n_layer; ++il) {
    LayerWeights& L = mw.layers[il];
    const std::string p = fmt::format("blk.{}.", il);
    NC_RETURN_IF_ERROR(vector(p + "attn_norm.weight", h.n_embd, L.attn_norm));
    NC_RETURN_IF_ERROR(matrix(p + "attn_q.weight", h.n_embd, nq, L.wq));
    NC_RETURN_IF_ERROR(matrix(p + "attn_k.weight", h.n_embd, nkv, L.wk));
    NC_RETURN_IF_ERROR(matrix(p + "attn_v.weight", h.n_embd, nkv, L.wv));
    NC_RETURN_IF_ERROR(matrix(p + "attn_output.weight", nq, h.n_embd, L.wo));
    if (require_qkv_bias) {
      NC_RETURN_IF_ERROR(vector(p + "attn_q.bias", nq, L.bq));
      NC_RETURN_IF_ERROR(vector(p + "attn_k.bias", nkv, L.bk));
      NC_RETURN_IF_ERROR(vector(p + "attn_v.bias", nkv, L.bv));
    } else {
      NC_RETURN_IF_ERROR(optional_vector(p + "attn_q.bias", nq, L.bq));
      NC_RETURN_IF_ERROR(optional_vector(p + "attn_k.bias", nkv, L.bk));
      NC_RETURN_IF_ERROR(optional_vector(p + "attn_v.bias", nkv, L.bv));
      NC_RETURN_IF_ERROR(optional_vector(p + "attn_output.bias", h.n_embd, L.bo));
    }
    NC_RETURN_IF_ERROR(vector(p + "ffn_norm.weight", h.n_embd, L.ffn_norm));
    NC_RETURN_IF_ERROR(matrix(p + "ffn_gate.weight", h.n_embd, h.n_ff, L.gate));
    NC_RETURN_IF_ERROR(matrix(p + "ffn_up.weight", h.n_embd, h.n_ff, L.up));
    NC_RETURN_IF_ERROR(matrix(p + "ffn_down.weight", h.n_ff, h.n_embd, L.down));
  }
  NC_RETURN_IF_ERROR(vector("output_norm.weight", h.n_embd, mw.output_norm));
  bool has_output = false;
  NC_RETURN_IF_ERROR(optional_matrix("output.weight", h.n_embd, h.n_vocab, mw.output, has_output));
  if (!has_output) {
    mw.output = mw.token_embd;
    mw.tied_output = true;
  }
  NC_RETURN_IF_ERROR(optional_vector("output.bias", h.n_vocab, mw.output_bias));
  return Status::ok();
}

Result<std::unique_ptr<Model>> Model::load(const std::string& path, const LoadOptions& options) {
  NC_ASSIGN_OR_RETURN(auto file, GgufFile::open(path));
  auto m = from_gguf(std::move(file), options);
  if (!m) return m.status().with_context(path);
  return m;
}

Result<std::unique_ptr<Model>> Model::from_gguf(std::unique_ptr<GgufFile> file, const LoadOptions& options) {
  const double t0 = now_s();
  std::unique_ptr<Model> m(new Model());
  m->file_ = std::move(file);
  NC_ASSIGN_OR_RETURN(std::string_view arch, m->file_->get_string("general.architecture"));
  m->hp_.arch = std::string(arch);
  if (arch == "llama") {
    NC_RETURN_IF_ERROR(load_arch_llama(*m));
  } else if (arch == "qwen2") {
    NC_RETURN_IF_ERROR(load_arch_qwen2(*m));
  } else {
    return unimplemented(fmt::format("architecture '{}' is not supported (supported: llama, qwen2)", arch));
  }
  if (options.repack) m->repack_weights();
  if (options.prefault && m->file_->mapped() != nullptr && m->repacked_bytes_ == 0) {
    // Read one byte per page so the weights are resident before the first token.
    const auto bytes = m->file_->mapped()->bytes();
    m->file_->mapped()->prefetch(0, bytes.size());
    volatile uint8_t sink = 0;
    for (size_t off = m->file_->data_offset(); off < bytes.size(); off += 4096) sink = sink + bytes[off];
    (void)sink;
  }
  m->load_seconds_ = now_s() - t0;
  return m;
}

Model::HugeBuffer::~HugeBuffer() {
  if (data != nullptr) ::munmap(data, n_bytes);
}

void Model::repack_weights() {
  const MappedFile* map = file_->mapped();
  // Every matrix with a packed layout, and whether its file pages can be dropped afterwards
  // (a tied output shares token_embd, whose rows the embedding lookup still reads).
  std::vector<std::pair<WeightView*, bool>> todo;
  for (auto& L : w_.layers)
    for (WeightView* v : {&L.wq, &L.wk, &L.wv, &L.wo, &L.gate, &L.up, &L.down}) todo.emplace_back(v, true);
  todo.emplace_back(&w_.output, !w_.tied_output);
  // One arena for all of them (64-byte aligned each): rounding every tensor up to a 2 MiB page
  // separately would waste up to ~150 MB on a 1B model.
  size_t total = 0;
  for (auto& [v, discard] : todo) {
    const TypeKernels& k = type_kernels(v->type);
    if (k.pack != nullptr && v->n_rows > 0) total += (k.packed_bytes(v->n_rows, v->n_cols) + 63) / 64 * 64;
  }
  if (total == 0) return;
  auto hb = std::make_unique<HugeBuffer>();
  constexpr size_t kHuge = size_t{2} << 20;
  hb->n_bytes = (total + kHuge - 1) / kHuge * kHuge;
  void* p = ::mmap(nullptr, hb->n_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return;  // keep using the original layouts
  ::madvise(p, hb->n_bytes, MADV_HUGEPAGE);
  hb->data = static_cast<uint8_t*>(p);
  uint8_t* next = hb->data;
  for (auto& [v, discard] : todo) {
    const TypeKernels& k = type_kernels(v->type);
    if (k.pack == nullptr || v->n_rows == 0) continue;
    const size_t n = k.packed_bytes(v->n_rows, v->n_cols);
    k.pack(v->data, v->row_bytes, v->n_rows, v->n_cols, next);
    if (discard && map != nullptr)
      map->discard(static_cast<size_t>(v->data - map->bytes().data()), v->row_bytes * static_cast<size_t>(v->n_rows));
    v->packed = next;
    v->packed_group_bytes = n / static_cast<size_t>((v->n_rows + k.pack_rows - 1) / k.pack_rows);
    next += (n + 63) / 64 * 64;
    repacked_bytes_ += n;
  }
  packed_ = std::move(hb);
}

size_t Model::weight_bytes_per_token() const {
  size_t n = w_.token_embd.row_bytes;
  for (const auto& L : w_.layers) {
    for (const WeightView* v : {&L.wq, &L.wk, &L.wv, &L.wo, &L.gate, &L.up, &L.down})
      n += v->row_bytes * static_cast<size_t>(v->n_rows);
  }
  n += w_.output.row_bytes * static_cast<size_t>(w_.output.n_rows);
  return n;
}

const char* pooling_name(Pooling p) {
  switch (p) {
    case Pooling::kUnspecified: return "unspecified";
    case Pooling::kNone: return "none";
    case Pooling::kMean: return "mean";
    case Pooling::kCls: return "cls";
    case Pooling::kLast: return "last";
    case Pooling::kRank: return "rank";
  }
  return "?";
}

}  // namespace nc::engine
