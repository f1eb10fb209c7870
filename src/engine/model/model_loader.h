// Internal to engine/model: checked lookup of a model's tensors by name and shape. Used by the
// per-architecture loaders (arch_*.cpp). Not thread-safe; used during Model::load only.
#pragma once

#include <string>

#include "engine/model/model.h"

namespace nc::engine {

class ModelLoader {
 public:
  explicit ModelLoader(Model& m) : m_(m) {}
  HParams& hp() { return m_.hp_; }
  ModelWeights& w() { return m_.w_; }
  const GgufFile& file() const { return *m_.file_; }

  // A 2-D weight of n_rows rows x n_cols columns in a supported compute type.
  Status matrix(const std::string& name, int64_t n_cols, int64_t n_rows, WeightView& out);
  // Optional matrix: absent -> returns OK and leaves `present` false.
  Status optional_matrix(const std::string& name, int64_t n_cols, int64_t n_rows, WeightView& out, bool& present);
  // A 1-D F32 vector of n elements (norm weights, biases).
  Status vector(const std::string& name, int64_t n, const float*& out);
  Status optional_vector(const std::string& name, int64_t n, const float*& out);

  // Loads the hyper-parameters under "<arch>." common to llama and qwen2.
  Status load_common_hparams();
  // Loads token_embd, every layer's attention/FFN weights (biases optional unless required), the output.
  Status load_common_tensors(bool require_qkv_bias);

 private:
  Model& m_;
};

Status load_arch_llama(Model& m);
Status load_arch_qwen2(Model& m);

}  // namespace nc::engine
