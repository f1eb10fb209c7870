// Architecture "llama": Llama 2/3/3.x, TinyLlama, Mistral-style models. NORM (adjacent-pair) RoPE,
// optional llama3 `rope_freqs.weight`, GQA/MQA, SwiGLU FFN, optional attention biases, tied output
// when output.weight is absent.
#include <fmt/format.h>

#include "engine/model/model_loader.h"

namespace nc::engine {

Status load_arch_llama(Model& m) {
  ModelLoader l(m);
  l.hp().rope_type = RopeType::kNorm;
  NC_RETURN_IF_ERROR(l.load_common_hparams());
  NC_RETURN_IF_ERROR(l.load_common_tensors(/*require_qkv_bias=*/false));
  return l.optional_vector("rope_freqs.weight", l.hp().n_rot / 2, l.w().rope_freqs);
}

}  // namespace nc::engine
