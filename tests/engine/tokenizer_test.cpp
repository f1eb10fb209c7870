// Tokenizer tests: llama.cpp's own reference tokenizations (models/ggml-vocab-*.gguf with .inp/.out,
// every case), detokenization round trips, and clear errors for malformed vocab metadata.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/gguf/gguf.h"
#include "engine/gguf/gguf_writer.h"
#include "engine/tokenizer/regex.h"
#include "engine/tokenizer/unicode.h"
#include "engine/tokenizer/vocab.h"
#include "test_util.h"

namespace nc::engine {
namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::unique_ptr<Vocab> load_vocab(const std::string& path) {
  auto g = GgufFile::open(path);
  EXPECT_TRUE(g.is_ok()) << g.status().to_string();
  if (!g.is_ok()) return nullptr;
  auto v = Vocab::load(**g);
  EXPECT_TRUE(v.is_ok()) << path << ": " << v.status().to_string();
  return v.is_ok() ? std::move(*v) : nullptr;
}

// The vocab files that come with reference tokenizations.
std::vector<std::string> reference_vocabs() {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(test::llama_src() + "/models")) {
    const std::string f = e.path().filename().string();
    if (f.rfind("ggml-vocab-", 0) == 0 && f.size() > 9 && f.substr(f.size() - 9) == ".gguf.inp") {
      names.push_back(f.substr(11, f.size() - 11 - 9));
    }
  }
  std::sort(names.begin(), names.end());
  return names;
}

class ReferenceTokenization : public ::testing::TestWithParam<std::string> {};

TEST_P(ReferenceTokenization, EveryCaseMatchesLlamaCpp) {
  const std::string base = test::vocab_path(GetParam());
  auto vocab = load_vocab(base);
  ASSERT_NE(vocab, nullptr);
  const std::string raw = slurp(base + ".inp");
  std::vector<std::string> inputs;
  const std::string sep = "\n__ggml_vocab_test__\n";
  for (size_t pos = 0; pos < raw.size();) {
    const size_t next = raw.find(sep, pos);
    if (next == std::string::npos) {
      inputs.push_back(raw.substr(pos));
      break;
    }
    inputs.push_back(raw.substr(pos, next - pos));
    pos = next + sep.size();
  }
  std::ifstream out(base + ".out");
  std::vector<std::vector<TokenId>> expected;
  for (std::string line; std::getline(out, line);) {
    std::istringstream ls(line);
    std::vector<TokenId> ids;
    for (TokenId id; ls >> id;) ids.push_back(id);
    expected.push_back(ids);
  }
  ASSERT_EQ(inputs.size(), expected.size());
  ASSERT_GT(inputs.size(), 10u);
  int failures = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const auto got = vocab->tokenize(inputs[i], /*add_special=*/false, /*parse_special=*/false);
    if (got != expected[i]) {
      ++failures;
      std::string g, e;
      for (auto t : got) g += std::to_string(t) + " ";
      for (auto t : expected[i]) e += std::to_string(t) + " ";
      ADD_FAILURE() << GetParam() << " case " << i << " '" << inputs[i] << "'\n  got:      " << g << "\n  expected: " << e;
      if (failures > 5) break;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Vocabs, ReferenceTokenization, ::testing::ValuesIn(reference_vocabs()),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n) if (!isalnum(static_cast<unsigned char>(c))) c = '_';
                           return n;
                         });

TEST(ReferenceTokenization, AllReferenceVocabsPresent) {
  // The llama.cpp bundle ships these; a missing one means the fetch is incomplete.
  EXPECT_GE(reference_vocabs().size(), 15u);
}

}  // namespace
}  // namespace nc::engine
