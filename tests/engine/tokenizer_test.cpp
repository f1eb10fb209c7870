// Tokenizer tests: llama.cpp's own reference tokenizations (models/ggml-vocab-*.gguf with .inp/.out,
// every case), detokenization round trips, and clear errors for malformed vocab metadata.
#include <gtest/gtest.h>
#include <zlib.h>

#include <filesystem>
#include <functional>
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
  std::error_code ec;  // no llama.cpp source (`make fetch` not run): no cases; ReferenceData.Fetched fails
  for (const auto& e : std::filesystem::directory_iterator(test::llama_src() + "/models", ec)) {
    const std::string f = e.path().filename().string();
    if (f.rfind("ggml-vocab-", 0) == 0 && f.size() > 9 && f.substr(f.size() - 9) == ".gguf.inp") {
      names.push_back(f.substr(11, f.size() - 11 - 9));
    }
  }
  std::sort(names.begin(), names.end());
  return names;
}

// The reference tokenizations come from llama.cpp's source (`make fetch`; `make test` fetches it).
TEST(ReferenceData, Fetched) {
  EXPECT_FALSE(reference_vocabs().empty()) << "no ggml-vocab-*.gguf.inp under " << test::llama_src()
                                           << "/models: run `make fetch`";
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

GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(ReferenceTokenization);  // without `make fetch`
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

// ---------------------------------------------------------------- malformed vocabularies ----------

// A small valid BPE vocabulary: bytes of "ab" plus merges, written with the project's GGUF writer.
struct VocabSpec {
  std::string model = "gpt2";
  std::string pre = "gpt-2";
  std::vector<std::string> tokens = {"a", "b", "ab", "<|endoftext|>"};
  std::vector<int32_t> types = {1, 1, 1, 3};
  std::vector<float> scores;
  std::vector<std::string> merges = {"a b"};
  bool with_types = true, with_merges = true, with_scores = false;
  std::function<void(GgufWriter&)> extra;  // more metadata (special ids, add_* flags)
};

Result<std::unique_ptr<Vocab>> load_spec(const VocabSpec& v, const std::string& name) {
  GgufWriter w;
  w.set_string("general.architecture", "llama");
  w.set_string("tokenizer.ggml.model", v.model);
  if (!v.pre.empty()) w.set_string("tokenizer.ggml.pre", v.pre);
  w.set_array_string("tokenizer.ggml.tokens", v.tokens);
  if (v.with_types) w.set_array_i32("tokenizer.ggml.token_type", v.types);
  if (v.with_scores) w.set_array_f32("tokenizer.ggml.scores", v.scores);
  if (v.with_merges) w.set_array_string("tokenizer.ggml.merges", v.merges);
  if (v.extra) v.extra(w);
  const std::string path = test::tmp_dir() + "/" + name + ".gguf";
  NC_RETURN_IF_ERROR(w.write(path));
  NC_ASSIGN_OR_RETURN(auto g, GgufFile::open(path));
  return Vocab::load(*g);
}

void expect_error(const VocabSpec& v, const std::string& name, const std::string& needle) {
  auto r = load_spec(v, name);
  ASSERT_FALSE(r.is_ok()) << name << " was accepted";
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().to_string();
  EXPECT_NE(r.status().message().find(needle), std::string::npos) << name << ": " << r.status().message();
}

TEST(MalformedVocab, ValidSmallVocabLoadsAndTokenizes) {
  auto r = load_spec(VocabSpec{}, "valid");
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ((*r)->tokenize("abab", false, false), (std::vector<TokenId>{2, 2}));
  EXPECT_EQ((*r)->tokenize("<|endoftext|>", false, true), (std::vector<TokenId>{3}));
  EXPECT_TRUE((*r)->is_eog(3));
}

TEST(MalformedVocab, SpmWithoutByteTokensGivesUnkNotAnInvalidId) {
  // Regression: a missing byte token was emitted as kNoToken (-1), an id outside the vocabulary.
  VocabSpec v;
  v.model = "llama";
  v.pre = "";
  v.tokens = {"<unk>", "<s>", "</s>", "\xE2\x96\x81" "a", "a"};
  v.types = {2, 3, 3, 1, 1};
  v.scores = {0, 0, 0, -1, -2};
  v.with_scores = true;
  v.with_merges = false;
  auto r = load_spec(v, "spm-no-bytes");
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  const auto ids = (*r)->tokenize("a\xE2\x82\xAC", false, false);  // "a€": no token for "€" or its bytes
  ASSERT_FALSE(ids.empty());
  for (TokenId id : ids) EXPECT_TRUE(id >= 0 && id < (*r)->n_tokens()) << id;
  EXPECT_EQ(ids.front(), 3) << ::testing::PrintToString(ids);
  EXPECT_EQ(ids.back(), 0);
}

TEST(MalformedVocab, ClearErrors) {
  VocabSpec v;
  v.merges = {"a c"};
  expect_error(v, "merge-unknown", "not in the vocabulary ('c')");
  v = {};
  v.merges = {"ab"};
  expect_error(v, "merge-no-space", "not two tokens");
  v = {};
  v.tokens = {"a", "b", "<|endoftext|>"};
  v.types = {1, 1, 3};
  expect_error(v, "merge-result-unknown", "not in the vocabulary ('ab')");
  v = {};
  v.with_merges = false;
  expect_error(v, "no-merges", "without tokenizer.ggml.merges");
  v = {};
  v.types = {1, 1, 9, 3};
  expect_error(v, "bad-type", "token_type[2] = 9");
  v = {};
  v.types = {1, 1};
  expect_error(v, "short-types", "2 entries for 4 tokens");
  v = {};
  v.types = {1, 6, 1, 3};
  expect_error(v, "bad-byte-token", "not <0xNN>");
  v = {};
  v.pre = "no-such-pre";
  expect_error(v, "bad-pre", "unknown pre-tokenizer type");
  v = {};
  v.model = "sentencepiece-ish";
  expect_error(v, "bad-model", "unknown tokenizer model");
  v = {};
  v.tokens.clear();
  v.types.clear();
  expect_error(v, "empty-tokens", "is empty");
  // SPM needs scores.
  v = {};
  v.model = "llama";
  v.pre.clear();
  v.tokens = {"<unk>", "<s>", "</s>", "a"};
  v.types = {2, 3, 3, 1};
  v.with_merges = false;
  expect_error(v, "spm-no-scores", "without tokenizer.ggml.scores");
  v.with_scores = true;
  v.scores = {0, 0};
  expect_error(v, "spm-short-scores", "2 entries for 4 tokens");
  v.scores = {0, 0, 0, -1};
  EXPECT_TRUE(load_spec(v, "spm-ok").is_ok());
}

TEST(MalformedVocab, MissingTokenList) {
  GgufWriter w;
  w.set_string("tokenizer.ggml.model", "gpt2");
  const std::string path = test::tmp_dir() + "/no-tokens.gguf";
  ASSERT_TRUE(w.write(path).is_ok());
  auto g = GgufFile::open(path);
  ASSERT_TRUE(g.is_ok());
  auto r = Vocab::load(**g);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("no token list"), std::string::npos) << r.status().message();
}

// ---------------------------------------------------------------- SEP (add_sep) ----------
// llama.cpp (src/llama-vocab.cpp, llama_vocab::impl::tokenize): a BPE vocab with add_special gets BOS
// if add_bos and EOS if add_eos (llm_tokenizer_bpe_session::append_bos/append_eos), never SEP;
// add_sep (set by the jina-v1-en / jina-v2-code / roberta-bpe pre-tokenizers or
// tokenizer.ggml.add_sep_token) is only exposed as llama_vocab_get_add_sep for the callers that join
// a query and a document (the server's rerank prompt). WordPiece with add_special always adds BOS
// ([CLS]) and SEP, whatever add_bos/add_sep say. The expected ids below were checked against libllama
// (tools/ref/llama_tokenize_dump.cpp) on the GGUFs these tests write.

// A RoBERTa-style byte-level BPE vocab with a SEP distinct from EOS, so an appended SEP would show.
VocabSpec roberta_like(const std::string& pre, int add_sep_key /* -1: absent */, bool add_eos = true) {
  VocabSpec v;
  v.pre = pre;
  v.tokens = {"<s>", "<pad>", "</s>", "<unk>", "<sep>", "a", "b", "ab"};
  v.types = {3, 3, 3, 2, 3, 1, 1, 1};
  v.merges = {"a b"};
  v.extra = [add_sep_key, add_eos](GgufWriter& w) {
    w.set_u32("tokenizer.ggml.bos_token_id", 0);
    w.set_u32("tokenizer.ggml.padding_token_id", 1);
    w.set_u32("tokenizer.ggml.eos_token_id", 2);
    w.set_u32("tokenizer.ggml.unknown_token_id", 3);
    w.set_u32("tokenizer.ggml.seperator_token_id", 4);
    w.set_bool("tokenizer.ggml.add_bos_token", true);
    w.set_bool("tokenizer.ggml.add_eos_token", add_eos);
    if (add_sep_key >= 0) w.set_bool("tokenizer.ggml.add_sep_token", add_sep_key != 0);
  };
  return v;
}

TEST(AddSep, BpeTokenizeNeverAppendsSepAsLlamaCpp) {
  struct Case {
    std::string pre;
    int add_sep_key;
    bool add_eos, want_add_sep;
    std::vector<TokenId> want;  // tokenize("abab", add_special=true, parse_special=false)
  };
  const std::vector<Case> cases = {
      {"roberta-bpe", -1, true, true, {0, 7, 7, 2}},   // the pre-tokenizer sets add_sep
      {"jina-v1-en", -1, true, true, {0, 7, 7, 2}},
      {"jina-v2-code", -1, true, true, {0, 7, 7, 2}},
      {"roberta-bpe", -1, false, true, {0, 7, 7}},     // no EOS, and still no SEP
      {"roberta-bpe", 0, true, false, {0, 7, 7, 2}},   // the GGUF key overrides the pre-tokenizer
      {"gpt-2", 1, true, true, {0, 7, 7, 2}},          // add_sep from the GGUF key alone
      {"gpt-2", -1, true, false, {0, 7, 7, 2}},
  };
  for (const Case& c : cases) {
    const std::string name = "addsep-" + c.pre + "-" + std::to_string(c.add_sep_key) + (c.add_eos ? "-eos" : "-noeos");
    auto r = load_spec(roberta_like(c.pre, c.add_sep_key, c.add_eos), name);
    ASSERT_TRUE(r.is_ok()) << name << ": " << r.status().to_string();
    const Vocab& v = **r;
    EXPECT_EQ(v.add_sep(), c.want_add_sep) << name;
    EXPECT_EQ(v.sep(), 4) << name;
    EXPECT_EQ(v.tokenize("abab", true, false), c.want) << name;
    EXPECT_EQ(v.tokenize("abab", false, false), (std::vector<TokenId>{7, 7})) << name;
    // SEP written in the text is a control token: it becomes SEP only with parse_special.
    std::vector<TokenId> want_parsed = {0, 7, 4, 7};
    if (c.add_eos) want_parsed.push_back(2);
    EXPECT_EQ(v.tokenize("ab<sep>ab", true, true), want_parsed) << name;
  }
}

TEST(AddSep, WpmAppendsSepWithAddSpecialWhateverAddSepSays) {
  // [CLS] and [SEP] come with add_special even when the GGUF turns add_bos and add_sep off.
  VocabSpec v;
  v.model = "bert";
  v.pre.clear();
  v.tokens = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "\xe2\x96\x81" "a", "\xe2\x96\x81" "b"};
  v.types = {3, 2, 3, 3, 1, 1};
  v.with_merges = false;
  v.extra = [](GgufWriter& w) {
    w.set_u32("tokenizer.ggml.padding_token_id", 0);
    w.set_u32("tokenizer.ggml.unknown_token_id", 1);
    w.set_u32("tokenizer.ggml.bos_token_id", 2);
    w.set_u32("tokenizer.ggml.seperator_token_id", 3);
    w.set_bool("tokenizer.ggml.add_bos_token", false);
    w.set_bool("tokenizer.ggml.add_sep_token", false);
  };
  auto r = load_spec(v, "addsep-wpm");
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_FALSE((*r)->add_sep());
  EXPECT_EQ((*r)->sep(), 3);
  EXPECT_EQ((*r)->tokenize("a b", true, false), (std::vector<TokenId>{2, 4, 5, 3}));
  EXPECT_EQ((*r)->tokenize("a b", false, false), (std::vector<TokenId>{4, 5}));
  // A SEP already at the end of the text is not merged with the added one.
  EXPECT_EQ((*r)->tokenize("a b[SEP]", true, true), (std::vector<TokenId>{2, 4, 5, 3, 3}));
  // The real BERT vocab: add_sep defaults on, SEP is [SEP] (102) and ends every add_special input.
  auto bge = load_vocab(test::vocab_path("bert-bge"));
  ASSERT_NE(bge, nullptr);
  EXPECT_TRUE(bge->add_sep());
  EXPECT_EQ(bge->sep(), 102);
  const auto ids = bge->tokenize("hello world", true, false);
  ASSERT_GE(ids.size(), 2u);
  EXPECT_EQ(ids.front(), 101);
  EXPECT_EQ(ids.back(), 102);
}

TEST(Tokenizer, InvalidUtf8AndEmptyInputAreHandled) {
  auto v = load_vocab(test::vocab_path("llama-bpe"));
  ASSERT_NE(v, nullptr);
  EXPECT_TRUE(v->tokenize("", false, false).empty());
  EXPECT_EQ(v->tokenize("", true, false), (std::vector<TokenId>{v->bos()}));
  // Invalid bytes tokenize (as U+FFFD, like llama.cpp) and never crash; detokenizing gives valid pieces back.
  const auto ids = v->tokenize(std::string("a\xff\xc3(b\xed\xa0\x80", 8), false, false);
  EXPECT_FALSE(ids.empty());
  EXPECT_EQ(v->detokenize(ids, false, false).find('a'), 0u);
  // Out-of-range ids detokenize to nothing rather than crashing.
  EXPECT_EQ(v->token_to_piece(-5, true), "");
  EXPECT_EQ(v->token_to_piece(v->n_tokens(), true), "");
}

TEST(ReferenceTokenization, AllReferenceVocabsPresent) {
  // The llama.cpp bundle ships these; a missing one means the fetch is incomplete.
  EXPECT_GE(reference_vocabs().size(), 15u);
}

}  // namespace
}  // namespace nc::engine
