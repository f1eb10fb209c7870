// Synthetic models: writes a Llama-family GGUF with random (but well-scaled, deterministic by seed)
// weights and the real tokenizer copied from a vocab-only GGUF. Used for conformance tests against
// llama.cpp and for benchmarks; a user's real GGUF is used the same way.
// Thread-safety: pure function of its arguments.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace nc::engine {

struct SynthShape {
  std::string name;
  int64_t n_embd, n_layer, n_head, n_head_kv, n_ff;
  float rope_base;
  bool llama3_rope;  // write llama3 rope_freqs (factor 32, low 1, high 4, original ctx 8192)
};

// micro (fuzz seeds), tiny (test-sized), tinyllama-1.1b, llama3.2-1b, llama3.2-3b, qwen2-0.5b.
const std::vector<SynthShape>& synth_shapes();

struct SynthOptions {
  // Vocab-only GGUF to take tokenizer.* from; "demo": neocloud's own small SentencePiece vocabulary with
  // a ChatML template (demo_vocab.h); "builtin:N": N placeholder tokens (no tokenizer).
  std::string vocab_path;
  std::string shape = "tiny";
  std::string type = "q8_0";  // f32 f16 bf16 q8_0 q4_0 q4_k q6_k q4_k_m
  std::string arch = "llama"; // llama | qwen2 (adds q/k/v biases, NEOX rope)
  int tied = -1;              // 1: no output.weight, 0: separate output, -1: arch default (qwen2 tied)
  int llama3_rope = -1;       // -1: shape default
  std::string chat_template;  // non-empty: written as tokenizer.chat_template (replacing the vocab's)
  uint64_t seed = 1;
  int64_t n_ctx = 4096;
  std::string out_path;
};

Status synth_model(const SynthOptions& options);

// A random LoRA adapter (lora.h's format, as convert_lora_to_gguf.py writes it) for the model in
// base_path: lora_a/lora_b for each targeted matrix of every layer, deterministic by seed, sized so
// that it changes the model's outputs clearly (as a trained adapter does) without swamping them.
struct SynthLoraOptions {
  std::string base_path;
  int64_t rank = 16;
  float alpha = 32.0f;
  std::string type = "f32";   // f32 | f16 | bf16 (lora_a may also be q8_0 with --type q8_0)
  std::string targets = "qkvo,mlp";  // comma list of: qkvo (attn_q/k/v/output), mlp (gate/up/down), output
  uint64_t seed = 1;
  std::string out_path;
};

Status synth_lora(const SynthLoraOptions& options);

}  // namespace nc::engine
