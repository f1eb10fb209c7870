// libFuzzer target: any bytes as an HTTP request body through the OpenAI request parsers — completion
// options (completions and chat), prompts, chat messages rendered with a real chat template (Llama 3.1's,
// through the Jinja engine) and the built-in format, embedding requests. Must never crash, throw or hang;
// what parses must tokenize.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "engine/gguf/gguf.h"
#include "engine/tokenizer/vocab.h"
#include "core/json_parse.h"
#include "server/chat_prompt.h"
#include "server/openai.h"

namespace {
using namespace nc;

struct State {
  std::unique_ptr<engine::Vocab> vocab;
  server::ChatFormatter jinja, builtin;
};

State& state() {
  static State s = [] {
    State st;
    auto g = engine::GgufFile::open(std::string(NC_LLAMA_SRC) + "/models/ggml-vocab-llama-bpe.gguf");
    if (!g.is_ok()) std::abort();
    auto v = engine::Vocab::load(**g);
    if (!v.is_ok()) std::abort();
    st.vocab = std::move(*v);
    std::ifstream in(std::string(NC_LLAMA_SRC) + "/models/templates/meta-llama-Llama-3.1-8B-Instruct.jinja");
    const std::string tmpl((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (tmpl.empty()) std::abort();
    st.jinja = server::ChatFormatter::create(*st.vocab, tmpl);
    if (st.jinja.kind() != "jinja") std::abort();
    st.builtin = server::ChatFormatter::create(*st.vocab, "");
    return st;
  }();
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  State& st = state();
  // As the server parses a body: depth-bounded (core/json_parse.h), so deep nesting is refused, never
  // parsed, destroyed or dumped recursively.
  const auto body = parse_json_or_discarded(std::string_view(reinterpret_cast<const char*>(data), size));
  if (body.is_discarded() || !body.is_object()) return 0;
  for (bool chat : {false, true}) (void)server::parse_completion_options(body, *st.vocab, chat ? -1 : 16, chat);
  (void)server::parse_prompts(body, *st.vocab);
  if (auto msgs = server::parse_messages(body); msgs.is_ok()) {
    for (const auto* f : {&st.jinja, &st.builtin}) {
      auto text = server::render_chat_request(*f, body);
      if (text.is_ok()) (void)st.vocab->tokenize(*text, true, true);
    }
  }
  if (auto opt = server::parse_embedding_request(body, *st.vocab, 256); opt.is_ok() && !opt->inputs.empty())
    (void)server::base64_floats(std::vector<float>(opt->inputs[0].begin(), opt->inputs[0].end()));
  (void)server::dump(body);
  return 0;
}
