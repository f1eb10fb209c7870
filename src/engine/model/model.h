// Model: a Llama-family model loaded from a GGUF file — hyper-parameters plus weight views that
// point into the file's memory map (weights are used in place, never copied).
//
// Supported architectures (one file each: arch_llama.cpp, arch_qwen2.cpp): `llama` (Llama 2/3/3.x,
// TinyLlama, Mistral-style; NORM RoPE, optional llama3 rope_freqs, GQA, SwiGLU, tied output when
// output.weight is absent) and `qwen2` (Q/K/V biases, NEOX RoPE).
//
// Ownership: the Model owns the GgufFile (and so the mapping); WeightViews borrow from it.
// Thread-safety: immutable after load; any number of Contexts on any threads may share one Model.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "engine/gguf/gguf.h"
#include "engine/kernels/matmul.h"

namespace nc::engine {

enum class RopeType { kNorm, kNeox };

// How token states become one embedding ({arch}.pooling_type, llama.cpp's numbering). kUnspecified:
// the file does not say (generative models); the server then pools by mean.
enum class Pooling { kUnspecified = -1, kNone = 0, kMean = 1, kCls = 2, kLast = 3, kRank = 4 };
const char* pooling_name(Pooling p);  // "unspecified", "none", "mean", "cls", "last", "rank"

struct HParams {
  std::string arch;          // "llama" | "qwen2"
  std::string name;          // general.name, if any
  int64_t n_vocab = 0;
  int64_t n_ctx_train = 0;
  int64_t n_embd = 0;
  int64_t n_layer = 0;
  int64_t n_head = 0;
  int64_t n_head_kv = 0;
  int64_t head_dim = 0;      // key/value length per head
  int64_t n_ff = 0;
  int64_t n_rot = 0;         // RoPE dimensions (== head_dim for llama/qwen2)
  float rms_eps = 1e-5f;
  float rope_freq_base = 10000.0f;
  float rope_freq_scale = 1.0f;
  RopeType rope_type = RopeType::kNorm;
  Pooling pooling = Pooling::kUnspecified;
  int64_t n_embd_kv() const { return head_dim * n_head_kv; }
  int64_t n_embd_q() const { return head_dim * n_head; }
};

struct LayerWeights {
  const float* attn_norm = nullptr;  // [n_embd]
  WeightView wq, wk, wv, wo;         // [n_embd_q|kv rows][n_embd cols], wo: [n_embd][n_embd_q]
  const float* bq = nullptr;         // optional biases (qwen2 has q/k/v)
  const float* bk = nullptr;
  const float* bv = nullptr;
  const float* bo = nullptr;
  const float* ffn_norm = nullptr;
  WeightView gate, up, down;         // gate/up: [n_ff][n_embd], down: [n_embd][n_ff]
};

struct ModelWeights {
  WeightView token_embd;             // [n_vocab rows][n_embd]
  std::vector<LayerWeights> layers;
  const float* output_norm = nullptr;
  WeightView output;                 // token_embd when tied
  const float* output_bias = nullptr;
  const float* rope_freqs = nullptr; // [n_rot/2] llama3 frequency factors, optional
  bool tied_output = false;
};

struct LoadOptions {
  // Touch every weight page at load so the first forward pass does not stall on page faults.
  bool prefault = true;
  // Repack weights whose kernels have an interleaved layout (Q8_0/Q4_0 on AVX-512) once at load, and
  // drop the originals' pages, so memory stays ~ the file size.
  bool repack = true;
};

class Model {
 public:
  static Result<std::unique_ptr<Model>> load(const std::string& path, const LoadOptions& options = {});
  // Builds a Model over an already-open file (takes ownership).
  static Result<std::unique_ptr<Model>> from_gguf(std::unique_ptr<GgufFile> file, const LoadOptions& options = {});

  const HParams& hparams() const { return hp_; }
  const ModelWeights& weights() const { return w_; }
  const GgufFile& gguf() const { return *file_; }
  // Bytes of weights read per decoded token (every matrix once, plus one embedding row).
  size_t weight_bytes_per_token() const;
  double load_seconds() const { return load_seconds_; }
  size_t repacked_bytes() const { return repacked_bytes_; }

 private:
  Model() = default;
  std::unique_ptr<GgufFile> file_;
  HParams hp_;
  ModelWeights w_;
  double load_seconds_ = 0;
  size_t repacked_bytes_ = 0;
  // Repacked weights live in anonymous memory backed by transparent huge pages where the kernel
  // allows it: the decode loop streams them, and 2 MiB pages keep the prefetcher going.
  struct HugeBuffer {
    uint8_t* data = nullptr;
    size_t n_bytes = 0;
    HugeBuffer() = default;
    HugeBuffer(const HugeBuffer&) = delete;
    HugeBuffer& operator=(const HugeBuffer&) = delete;
    ~HugeBuffer();
  };
  std::unique_ptr<HugeBuffer> packed_;
  void repack_weights();

  friend Status load_arch_llama(Model& m);
  friend Status load_arch_qwen2(Model& m);
  friend class ModelLoader;
};

}  // namespace nc::engine
