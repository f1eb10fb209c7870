// Shared by the server's unit tests: llama.cpp's Llama 3 (BPE) vocabulary and the Llama 3.1 chat
// template, from the fetched llama.cpp sources (NC_LLAMA_SRC; `make fetch`).
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>

#include "engine/gguf/gguf.h"
#include "engine/tokenizer/vocab.h"

namespace nc::server {

inline const engine::Vocab& vocab() {
  static const std::unique_ptr<engine::Vocab> v = [] {
    auto g = engine::GgufFile::open(std::string(NC_LLAMA_SRC) + "/models/ggml-vocab-llama-bpe.gguf");
    EXPECT_TRUE(g.is_ok()) << g.status().to_string() << " (run `make fetch`)";
    if (!g.is_ok()) return std::unique_ptr<engine::Vocab>();
    auto r = engine::Vocab::load(**g);
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    if (!r.is_ok()) return std::unique_ptr<engine::Vocab>();
    return std::move(*r);
  }();
  if (!v) std::abort();  // every test below needs it
  return *v;
}

inline std::string llama31_template() {
  std::ifstream in(std::string(NC_LLAMA_SRC) + "/models/templates/meta-llama-Llama-3.1-8B-Instruct.jinja");
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace nc::server
