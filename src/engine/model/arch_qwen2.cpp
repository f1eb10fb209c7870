// Architecture "qwen2": like llama but with Q/K/V biases (required), NEOX RoPE (rotating
// x[i] with x[i + n_rot/2]) and no rope frequency factors; output often tied to token_embd.
#include "engine/model/model_loader.h"

namespace nc::engine {

Status load_arch_qwen2(Model& m) {
  ModelLoader l(m);
  l.hp().rope_type = RopeType::kNeox;
  NC_RETURN_IF_ERROR(l.load_common_hparams());
  return l.load_common_tensors(/*require_qkv_bias=*/true);
}

}  // namespace nc::engine
