// merge_lora (lora_merge.h).
#include "engine/model/lora_merge.h"

#include <fmt/format.h>

#include <cstring>
#include <map>

#include "engine/gguf/gguf_writer.h"
#include "engine/kernels/fp16.h"
#include "engine/kernels/kernels.h"
#include "engine/model/lora.h"
#include "engine/model/model.h"

namespace nc::engine {

Status merge_lora(const MergeLoraOptions& o) {
  // The base twice: as a Model (to check the adapter's shapes) and as a plain file (its bytes).
  NC_ASSIGN_OR_RETURN(auto model, Model::load(o.base_path, {.prefault = false, .repack = false}));
  NC_ASSIGN_OR_RETURN(auto adapter, LoraAdapter::load(o.adapter_path, *model, o.scale, LoraStorage::kF32));
  NC_ASSIGN_OR_RETURN(auto base, GgufFile::open(o.base_path));
  std::map<std::string, const LoraWeight*, std::less<>> adapted;
  for (int64_t il = 0; il < model->hparams().n_layer; ++il) {
    const LoraLayer& L = adapter->layer(il);
    const std::string p = fmt::format("blk.{}.", il);
    for (const auto& [name, w] : {std::pair{"attn_q.weight", L.wq}, {"attn_k.weight", L.wk}, {"attn_v.weight", L.wv},
                                  {"attn_output.weight", L.wo}, {"ffn_gate.weight", L.gate}, {"ffn_up.weight", L.up},
                                  {"ffn_down.weight", L.down}})
      if (w) adapted[p + name] = w;
  }
  if (adapter->output()) adapted["output.weight"] = adapter->output();

  GgufWriter w;
  for (const GgufKv& kv : base->kvs()) w.set_value(std::string(kv.key), kv.value);
  const GgufFile* file = base.get();
  for (const GgufTensorInfo& t : base->tensors()) {
    std::vector<int64_t> ne(t.ne.begin(), t.ne.begin() + std::max<uint32_t>(1, t.n_dims));
    auto it = adapted.find(t.name);
    if (it == adapted.end()) {
      const uint8_t* src = file->tensor_data(t);
      w.add_tensor(std::string(t.name), t.type, ne, [src](uint8_t* dst, size_t n) { std::memcpy(dst, src, n); });
      continue;
    }
    const LoraWeight* lw = it->second;
    const GgmlType out_type =
        t.type == GgmlType::kF32 || t.type == GgmlType::kF16 || t.type == GgmlType::kBF16 ? t.type : GgmlType::kF16;
    const uint8_t* src = file->tensor_data(t);
    const GgmlType in_type = t.type;
    w.add_tensor(std::string(t.name), out_type, ne, [=](uint8_t* dst, size_t) {
      // Row o of W (n_in values) + scale · Σ_j B[o][j] A[j].
      const int64_t n_in = lw->n_in, r = lw->rank;
      const TypeKernels& k = type_kernels(in_type, KernelLevel::kScalar);
      const size_t in_row = ggml_row_bytes(in_type, n_in);
      std::vector<float> row(static_cast<size_t>(n_in));
      for (int64_t out = 0; out < lw->n_out; ++out) {
        k.dequantize_row(src + out * in_row, row.data(), n_in);
        for (int64_t j = 0; j < r; ++j) {
          const float c = lw->scale * lw->b[out * r + j];
          const float* a = &lw->a[j * n_in];
          for (int64_t i = 0; i < n_in; ++i) row[i] += c * a[i];
        }
        if (out_type == GgmlType::kF32) {
          std::memcpy(dst + out * n_in * 4, row.data(), static_cast<size_t>(n_in) * 4);
        } else {
          auto* d = reinterpret_cast<uint16_t*>(dst) + out * n_in;
          for (int64_t i = 0; i < n_in; ++i) d[i] = out_type == GgmlType::kF16 ? fp32_to_fp16(row[i]) : fp32_to_bf16(row[i]);
        }
      }
    });
    adapted.erase(it);
  }
  if (!adapted.empty()) return internal_error(fmt::format("the base has no tensor '{}'", adapted.begin()->first));
  return w.write(o.out_path);
}

}  // namespace nc::engine
