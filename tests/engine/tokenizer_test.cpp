// Tokenizer tests: llama.cpp's own reference tokenizations (models/ggml-vocab-*.gguf with .inp/.out,
// every case), detokenization round trips, and clear errors for malformed vocab metadata.
#include <gtest/gtest.h>
#include <zlib.h>

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

std::vector<std::string> split_cases(const std::string& raw) {
  std::vector<std::string> cases;
  const std::string sep = "\n__ggml_vocab_test__\n";
  for (size_t pos = 0; pos < raw.size();) {
    const size_t next = raw.find(sep, pos);
    if (next == std::string::npos) {
      cases.push_back(raw.substr(pos));
      break;
    }
    cases.push_back(raw.substr(pos, next - pos));
    pos = next + sep.size();
  }
  return cases;
}

std::string gunzip_file(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) return {};
  std::string out;
  char buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  gzclose(f);
  return out;
}

std::string hex(const std::string& s) {
  static const char* h = "0123456789abcdef";
  std::string o;
  for (unsigned char c : s) o += h[c >> 4], o += h[c & 15];
  return o;
}

std::string ids_str(const std::vector<TokenId>& ids) {
  std::string s;
  for (auto t : ids) s += " " + std::to_string(t);
  return s;
}

// Differential test: a generated corpus (random scripts, emoji, combining marks, whitespace runs,
// code, numbers, special-token text, invalid UTF-8; tools/tokenizer-corpus.py) tokenized by libllama
// in all four (add_special, parse_special) modes and detokenized two ways
// (tools/make-tokenizer-goldens.sh). Zero mismatches allowed.
class Differential : public ::testing::TestWithParam<std::string> {};

TEST_P(Differential, CorpusMatchesLibllama) {
  // NC_TOKENIZER_DATA points the test at another corpus (e.g. a bigger stress corpus made with
  // tools/make-tokenizer-goldens.sh into another directory).
  const char* env = std::getenv("NC_TOKENIZER_DATA");
  const std::string dir = env ? env : std::string(NC_SOURCE_DIR) + "/tests/data/tokenizer";
  auto vocab = load_vocab(test::vocab_path(GetParam()));
  ASSERT_NE(vocab, nullptr);
  const auto cases = split_cases(slurp(dir + "/corpus.txt"));
  ASSERT_GE(cases.size(), 500u);
  std::istringstream ref(gunzip_file(dir + "/" + GetParam() + ".ref.gz"));
  std::string line;
  int mismatches = 0, checked = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    std::vector<TokenId> last;
    for (int add = 0; add < 2; ++add) {
      for (int parse = 0; parse < 2; ++parse) {
        ASSERT_TRUE(std::getline(ref, line)) << "reference file too short";
        const auto got = vocab->tokenize(cases[i], add != 0, parse != 0);
        const std::string want = line.substr(line.find(':') + 1);
        ++checked;
        if (ids_str(got) != want && ++mismatches <= 5) {
          ADD_FAILURE() << GetParam() << " case " << i << " add=" << add << " parse=" << parse << " '" << cases[i]
                        << "'\n  got:     " << ids_str(got) << "\n  libllama:" << want;
        }
        last = got;
      }
    }
    ASSERT_TRUE(std::getline(ref, line));
    const std::string d = hex(vocab->detokenize(last, /*remove_special=*/false, /*unparse_special=*/true));
    if (line != "D: " + d && ++mismatches <= 5) ADD_FAILURE() << GetParam() << " case " << i << " detokenize: " << line << " vs " << d;
    ASSERT_TRUE(std::getline(ref, line));
    const std::string r = hex(vocab->detokenize(last, /*remove_special=*/true, /*unparse_special=*/false));
    if (line != "R: " + r && ++mismatches <= 5) ADD_FAILURE() << GetParam() << " case " << i << " detokenize(rm): " << line << " vs " << r;
  }
  EXPECT_EQ(mismatches, 0) << "of " << checked << " tokenizations";
}

INSTANTIATE_TEST_SUITE_P(Vocabs, Differential,
                         ::testing::Values("aquila", "baichuan", "bert-bge", "command-r", "deepseek-coder", "deepseek-llm",
                                           "falcon", "gemma-4", "gpt-2", "gpt-neox", "llama-bpe", "llama-spm", "mpt",
                                           "phi-3", "qwen2", "qwen35", "refact", "starcoder"),
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
