// Reference greedy generation from llama.cpp (built by tools/llama-cpp.sh): tokenizes PROMPT (BOS as
// the model asks, special text parsed), evaluates it as one batch, then picks the argmax (first
// maximum) N times, evaluating each token as a single-token batch, never stopping at end-of-generation.
// Writes "prompt: ids", "tokens: ids" and "gaps: g..." (top-1 minus top-2 logit at each step).
// Usage: llama_generate MODEL PROMPT N OUT [threads]   (NC_DUMP_LOGITS=FILE also writes each step's logits)
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "llama.h"

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: %s MODEL PROMPT N OUT [threads]\n", argv[0]);
    return 2;
  }
  llama_backend_init();
  llama_log_set([](ggml_log_level, const char*, void*) {}, nullptr);
  llama_model* model = llama_model_load_from_file(argv[1], llama_model_default_params());
  if (!model) return 1;
  const llama_vocab* vocab = llama_model_get_vocab(model);
  const std::string prompt = argv[2];
  const int n = std::atoi(argv[3]);
  std::vector<llama_token> toks(prompt.size() + 8);
  const int np = llama_tokenize(vocab, prompt.data(), (int)prompt.size(), toks.data(), (int)toks.size(), true, true);
  if (np <= 0) return 1;
  toks.resize(np);
  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = np + n + 16;
  const int th = argc > 5 ? std::atoi(argv[5]) : 2;
  cp.n_threads = th;
  cp.n_threads_batch = th;
  if (const char* fa = std::getenv("NC_FLASH_ATTN")) cp.flash_attn_type = std::atoi(fa) ? LLAMA_FLASH_ATTN_TYPE_ENABLED : LLAMA_FLASH_ATTN_TYPE_DISABLED;
  llama_context* ctx = llama_init_from_model(model, cp);
  const int nv = llama_vocab_n_tokens(vocab);
  llama_batch b = llama_batch_get_one(toks.data(), np);
  if (llama_decode(ctx, b)) return 1;
  std::vector<llama_token> out;
  std::vector<float> gaps;
  FILE* dump = std::getenv("NC_DUMP_LOGITS") ? std::fopen(std::getenv("NC_DUMP_LOGITS"), "wb") : nullptr;
  for (int i = 0; i < n; ++i) {
    const float* l = llama_get_logits_ith(ctx, -1);
    if (dump) std::fwrite(l, sizeof(float), nv, dump);
    int best = 0;
    for (int k = 1; k < nv; ++k) if (l[k] > l[best]) best = k;
    float second = -1e30f;
    for (int k = 0; k < nv; ++k) if (k != best && l[k] > second) second = l[k];
    out.push_back(best);
    gaps.push_back(l[best] - second);
    llama_token t = best;
    if (llama_decode(ctx, llama_batch_get_one(&t, 1))) return 1;
  }
  if (dump) std::fclose(dump);
  FILE* f = std::fopen(argv[4], "w");
  std::fprintf(f, "prompt:");
  for (auto t : toks) std::fprintf(f, " %d", t);
  std::fprintf(f, "\ntokens:");
  for (auto t : out) std::fprintf(f, " %d", t);
  std::fprintf(f, "\ngaps:");
  for (auto g : gaps) std::fprintf(f, " %.9g", g);
  std::fprintf(f, "\n");
  std::fclose(f);
  llama_free(ctx);
  llama_model_free(model);
  return 0;
}
