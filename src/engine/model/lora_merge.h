// merge_lora: bakes a LoRA adapter (lora.h) into its base model and writes a standalone GGUF
// (`neocloud model merge-lora`), as llama.cpp's llama-export-lora does: every adapted matrix becomes
// W + scale · B A, computed in f32 from the dequantized base; it is written in the base's type when
// that is f32, f16 or bf16, and in f16 when the base is quantized (re-quantizing would add a second
// rounding); every other tensor and all metadata are copied as they are.
// Thread-safety: a pure function of its files.
#pragma once

#include <string>

#include "core/status.h"

namespace nc::engine {

struct MergeLoraOptions {
  std::string base_path, adapter_path, out_path;
  float scale = 1.0f;  // llama.cpp's --lora-scaled factor
};

Status merge_lora(const MergeLoraOptions& options);

}  // namespace nc::engine
