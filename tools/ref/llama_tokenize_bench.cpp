// Times libllama's tokenizer on a file: best of R runs of llama_tokenize(add_special=true,
// parse_special=false) over the whole text. Prints "tokens=N best_s=S".
// Usage: llama_tokenize_bench VOCAB.gguf FILE R
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "llama.h"

int main(int argc, char** argv) {
  if (argc != 4) return 1;
  llama_log_set([](ggml_log_level, const char*, void*) {}, nullptr);
  llama_backend_init();
  auto mp = llama_model_default_params();
  mp.vocab_only = true;
  llama_model* model = llama_model_load_from_file(argv[1], mp);
  if (!model) return 1;
  const llama_vocab* v = llama_model_get_vocab(model);
  std::ifstream in(argv[2], std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  const int reps = std::atoi(argv[3]);
  std::vector<llama_token> out(text.size() + 16);
  double best = 1e30;
  int n = 0;
  for (int r = 0; r < reps; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    n = llama_tokenize(v, text.data(), (int32_t)text.size(), out.data(), (int32_t)out.size(), true, false);
    auto t1 = std::chrono::steady_clock::now();
    best = std::min(best, std::chrono::duration<double>(t1 - t0).count());
  }
  printf("tokens=%d best_s=%.6f\n", n, best);
  llama_model_free(model);
  return 0;
}
