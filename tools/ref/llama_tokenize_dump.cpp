// Reference dump for the differential tokenizer test: tokenizes every case of a corpus (llama.cpp .inp
// format) with libllama in the four (add_special, parse_special) modes and detokenizes the result.
// Output: one line per case and mode, "A P: id id id", then "D: <hex of llama_detokenize(ids of mode
// 1 1, remove_special=false, unparse_special=true)>" and "R: <hex, remove_special=true,
// unparse_special=false>".
// Usage: llama_tokenize_dump VOCAB.gguf CORPUS OUT
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "llama.h"

static std::vector<llama_token> tok(const llama_vocab* v, const std::string& s, bool add, bool parse) {
  std::vector<llama_token> out(s.size() + 16);
  int n = llama_tokenize(v, s.data(), (int32_t)s.size(), out.data(), (int32_t)out.size(), add, parse);
  if (n < 0) {
    out.resize(-n);
    n = llama_tokenize(v, s.data(), (int32_t)s.size(), out.data(), (int32_t)out.size(), add, parse);
  }
  out.resize(n);
  return out;
}

static std::string detok(const llama_vocab* v, const std::vector<llama_token>& t, bool rm, bool unparse) {
  std::string s(t.size() * 16 + 64, '\0');
  int n = llama_detokenize(v, t.data(), (int32_t)t.size(), &s[0], (int32_t)s.size(), rm, unparse);
  if (n < 0) {
    s.resize(-n);
    n = llama_detokenize(v, t.data(), (int32_t)t.size(), &s[0], (int32_t)s.size(), rm, unparse);
  }
  s.resize(n);
  return s;
}

static std::string hex(const std::string& s) {
  static const char* h = "0123456789abcdef";
  std::string o;
  for (unsigned char c : s) o += h[c >> 4], o += h[c & 15];
  return o;
}

int main(int argc, char** argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s VOCAB.gguf CORPUS OUT\n", argv[0]);
    return 1;
  }
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
  const std::string raw = ss.str(), sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> cases;
  for (size_t pos = 0; pos < raw.size();) {
    size_t next = raw.find(sep, pos);
    if (next == std::string::npos) { cases.push_back(raw.substr(pos)); break; }
    cases.push_back(raw.substr(pos, next - pos));
    pos = next + sep.size();
  }
  FILE* f = fopen(argv[3], "w");
  for (const auto& c : cases) {
    std::vector<llama_token> last;
    for (int add = 0; add < 2; ++add) {
      for (int parse = 0; parse < 2; ++parse) {
        auto t = tok(v, c, add, parse);
        fprintf(f, "%d %d:", add, parse);
        for (auto x : t) fprintf(f, " %d", x);
        fprintf(f, "\n");
        last = t;
      }
    }
    fprintf(f, "D: %s\n", hex(detok(v, last, false, true)).c_str());
    fprintf(f, "R: %s\n", hex(detok(v, last, true, false)).c_str());
  }
  fclose(f);
  llama_model_free(model);
  return 0;
}
