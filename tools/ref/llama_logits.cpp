// Reference logits from llama.cpp (built by tools/llama-cpp.sh): evaluates comma-separated token ids
// as one batch of sequence 0, positions 0..n-1, and writes float32 logits [n_tokens][n_vocab].
// Usage: llama_logits MODEL IDS OUT [threads]; NC_LORA=ADAPTER.gguf applies a LoRA adapter with scale 1
// (llama.cpp's --lora).
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "llama.h"

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s MODEL IDS OUT [threads]\n", argv[0]);
    return 2;
  }
  llama_backend_init();
  llama_log_set([](ggml_log_level, const char*, void*) {}, nullptr);
  llama_model_params mp = llama_model_default_params();
  llama_model* model = llama_model_load_from_file(argv[1], mp);
  if (!model) {
    std::fprintf(stderr, "load failed: %s\n", argv[1]);
    return 1;
  }
  std::vector<llama_token> toks;
  std::stringstream ss(argv[2]);
  std::string item;
  while (std::getline(ss, item, ',')) toks.push_back(std::atoi(item.c_str()));
  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = toks.size() + 16;
  cp.n_batch = toks.size();
  cp.n_ubatch = toks.size();
  if (const char* ub = std::getenv("NC_UBATCH")) cp.n_ubatch = std::atoi(ub);  // e.g. 1: token-by-token
  const int th = argc > 4 ? std::atoi(argv[4]) : 2;
  cp.n_threads = th;
  cp.n_threads_batch = th;
  llama_context* ctx = llama_init_from_model(model, cp);
  if (const char* lora_path = std::getenv("NC_LORA"); lora_path && *lora_path) {
    llama_adapter_lora* lora = llama_adapter_lora_init(model, lora_path);
    if (!lora) {
      std::fprintf(stderr, "adapter load failed: %s\n", lora_path);
      return 1;
    }
    float scale = 1.0f;
    if (llama_set_adapters_lora(ctx, &lora, 1, &scale) != 0) {
      std::fprintf(stderr, "adapter set failed\n");
      return 1;
    }
  }
  llama_batch b = llama_batch_init(toks.size(), 0, 1);
  for (size_t i = 0; i < toks.size(); i++) {
    b.token[i] = toks[i];
    b.pos[i] = i;
    b.n_seq_id[i] = 1;
    b.seq_id[i][0] = 0;
    b.logits[i] = 1;
  }
  b.n_tokens = toks.size();
  if (llama_decode(ctx, b)) {
    std::fprintf(stderr, "decode failed\n");
    return 1;
  }
  const int nv = llama_vocab_n_tokens(llama_model_get_vocab(model));
  FILE* f = std::fopen(argv[3], "wb");
  for (size_t i = 0; i < toks.size(); i++) std::fwrite(llama_get_logits_ith(ctx, i), sizeof(float), nv, f);
  std::fclose(f);
  std::printf("n_tokens=%zu n_vocab=%d\n", toks.size(), nv);
  llama_batch_free(b);
  llama_free(ctx);
  llama_model_free(model);
  return 0;
}
