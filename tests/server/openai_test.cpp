// The OpenAI request parsers (server/openai.h) on a real tokenizer (llama.cpp's Llama 3 BPE vocabulary)
// and real chat formatters (the built-in llama3 format and Llama 3.1's Jinja template): defaults, range
// errors naming the field (OpenAI's `param`), unsupported features as Unimplemented, prompts and
// embedding inputs in every shape, chat messages, rendering, base64 embeddings and UTF-8-safe dumps.
#include "server/openai.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "engine/gguf/gguf.h"
#include "engine/tokenizer/vocab.h"
#include "server/chat_prompt.h"
#include "server/test_vocab.h"

namespace nc::server {
namespace {

using engine::TokenId;


constexpr int64_t kNEmbd = 256;

Result<CompletionOptions> completion(const json& body) { return parse_completion_options(body, vocab(), 16, false); }
Result<CompletionOptions> chat(const json& body) { return parse_completion_options(body, vocab(), -1, true); }

// Asserts `r` failed with `code`, naming `field`.
template <typename T>
void expect_error(const Result<T>& r, StatusCode code, const std::string& field) {
  ASSERT_FALSE(r.is_ok()) << "expected an error about '" << field << "'";
  EXPECT_EQ(r.status().code(), code) << r.status().to_string();
  EXPECT_EQ(r.status().field(), field) << r.status().to_string();
  EXPECT_FALSE(r.status().message().empty());
}

// ---- parse_completion_options -------------------------------------------------------------------------

TEST(CompletionOptions, DefaultsAreOpenAIs) {
  auto r = completion(json::object());
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  const auto& s = r->gen.sampling;
  EXPECT_FLOAT_EQ(s.temperature, 1.0f);
  EXPECT_FLOAT_EQ(s.top_p, 1.0f);
  EXPECT_EQ(s.top_k, 0);
  EXPECT_FLOAT_EQ(s.min_p, 0.0f);
  EXPECT_EQ(s.penalty_last_n, -1);
  EXPECT_FLOAT_EQ(s.presence_penalty, 0.0f);
  EXPECT_FLOAT_EQ(s.frequency_penalty, 0.0f);
  EXPECT_FLOAT_EQ(s.repeat_penalty, 1.0f);
  EXPECT_FALSE(s.seed.has_value());
  EXPECT_TRUE(s.logit_bias.empty());
  EXPECT_EQ(s.n_logprobs, -1);
  EXPECT_EQ(r->gen.max_tokens, 16);
  EXPECT_TRUE(r->gen.stop.empty());
  EXPECT_FALSE(r->gen.ignore_eos);
  EXPECT_EQ(r->n, 1);
  EXPECT_FALSE(r->stream);
  EXPECT_FALSE(r->include_usage);
  EXPECT_EQ(r->logprobs, -1);
}

TEST(CompletionOptions, ChatDefaultMaxTokensIsNone) {
  auto r = chat(json::object());
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->gen.max_tokens, -1);
  EXPECT_FLOAT_EQ(r->gen.sampling.temperature, 1.0f);
  EXPECT_FLOAT_EQ(r->gen.sampling.top_p, 1.0f);
  EXPECT_EQ(r->logprobs, -1);
}

TEST(CompletionOptions, NullMeansAbsent) {
  auto r = completion({{"temperature", nullptr}, {"top_p", nullptr}, {"max_tokens", nullptr}, {"n", nullptr},
                       {"stop", nullptr}, {"seed", nullptr}, {"logprobs", nullptr}, {"tools", nullptr}});
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_FLOAT_EQ(r->gen.sampling.temperature, 1.0f);
  EXPECT_EQ(r->gen.max_tokens, 16);
  EXPECT_EQ(r->n, 1);
  EXPECT_FALSE(r->gen.sampling.seed.has_value());
}

TEST(CompletionOptions, ReadsSamplingFields) {
  auto r = completion({{"temperature", 0.25}, {"top_p", 0.5}, {"top_k", 7}, {"min_p", 0.1},
                       {"presence_penalty", -1.5}, {"frequency_penalty", 2}, {"repetition_penalty", 1.3},
                       {"ignore_eos", true}, {"user", "u-1"}});
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  const auto& s = r->gen.sampling;
  EXPECT_FLOAT_EQ(s.temperature, 0.25f);
  EXPECT_FLOAT_EQ(s.top_p, 0.5f);
  EXPECT_EQ(s.top_k, 7);
  EXPECT_FLOAT_EQ(s.min_p, 0.1f);
  EXPECT_FLOAT_EQ(s.presence_penalty, -1.5f);
  EXPECT_FLOAT_EQ(s.frequency_penalty, 2.0f);
  EXPECT_FLOAT_EQ(s.repeat_penalty, 1.3f);
  EXPECT_TRUE(r->gen.ignore_eos);
}

TEST(CompletionOptions, RangeBoundsAreInclusive) {
  for (double t : {0.0, 2.0}) {
    auto r = completion({{"temperature", t}});
    ASSERT_TRUE(r.is_ok()) << t << ": " << r.status().to_string();
    EXPECT_FLOAT_EQ(r->gen.sampling.temperature, static_cast<float>(t));
  }
  EXPECT_TRUE(completion({{"top_p", 1}}).is_ok());
  EXPECT_EQ(completion({{"n", 128}})->n, 128);
  EXPECT_EQ(completion({{"logprobs", 5}})->logprobs, 5);
  EXPECT_EQ(completion({{"logprobs", 0}})->logprobs, 0);
}

TEST(CompletionOptions, RangeErrorsNameTheField) {
  expect_error(completion({{"temperature", 3}}), StatusCode::kInvalidArgument, "temperature");
  expect_error(completion({{"temperature", -0.1}}), StatusCode::kInvalidArgument, "temperature");
  expect_error(completion({{"temperature", "hot"}}), StatusCode::kInvalidArgument, "temperature");
  expect_error(completion({{"top_p", 0}}), StatusCode::kInvalidArgument, "top_p");
  expect_error(completion({{"top_p", 1.5}}), StatusCode::kInvalidArgument, "top_p");
  expect_error(completion({{"min_p", 2}}), StatusCode::kInvalidArgument, "min_p");
  expect_error(completion({{"top_k", -2}}), StatusCode::kInvalidArgument, "top_k");
  expect_error(completion({{"top_k", 1.5}}), StatusCode::kInvalidArgument, "top_k");
  expect_error(completion({{"presence_penalty", 2.5}}), StatusCode::kInvalidArgument, "presence_penalty");
  expect_error(completion({{"frequency_penalty", -3}}), StatusCode::kInvalidArgument, "frequency_penalty");
  expect_error(completion({{"repetition_penalty", 0}}), StatusCode::kInvalidArgument, "repetition_penalty");
  expect_error(completion({{"n", 0}}), StatusCode::kInvalidArgument, "n");
  expect_error(completion({{"n", 129}}), StatusCode::kInvalidArgument, "n");
  expect_error(completion({{"n", 2.0}}), StatusCode::kInvalidArgument, "n");
  expect_error(completion({{"logprobs", 6}}), StatusCode::kInvalidArgument, "logprobs");
  expect_error(completion({{"logprobs", -1}}), StatusCode::kInvalidArgument, "logprobs");
  expect_error(completion({{"logprobs", true}}), StatusCode::kInvalidArgument, "logprobs");
  expect_error(completion({{"max_tokens", -1}}), StatusCode::kInvalidArgument, "max_tokens");
  expect_error(completion({{"max_completion_tokens", -1}}), StatusCode::kInvalidArgument, "max_completion_tokens");
  expect_error(completion({{"ignore_eos", 1}}), StatusCode::kInvalidArgument, "ignore_eos");
  expect_error(completion({{"user", 5}}), StatusCode::kInvalidArgument, "user");
  expect_error(completion({{"stream", "yes"}}), StatusCode::kInvalidArgument, "stream");
}

TEST(CompletionOptions, Stop) {
  auto one = completion({{"stop", "\n"}});
  ASSERT_TRUE(one.is_ok()) << one.status().to_string();
  EXPECT_EQ(one->gen.stop, (std::vector<std::string>{"\n"}));
  auto four = completion({{"stop", {"a", "b", "c", "d"}}});
  ASSERT_TRUE(four.is_ok()) << four.status().to_string();
  EXPECT_EQ(four->gen.stop, (std::vector<std::string>{"a", "b", "c", "d"}));
  expect_error(completion({{"stop", {"a", "b", "c", "d", "e"}}}), StatusCode::kInvalidArgument, "stop");
  expect_error(completion({{"stop", {"a", 1}}}), StatusCode::kInvalidArgument, "stop");
  expect_error(completion({{"stop", 7}}), StatusCode::kInvalidArgument, "stop");
}

TEST(CompletionOptions, StreamOptions) {
  expect_error(completion({{"stream_options", {{"include_usage", true}}}}), StatusCode::kInvalidArgument,
               "stream_options");
  expect_error(completion({{"stream", false}, {"stream_options", {{"include_usage", true}}}}),
               StatusCode::kInvalidArgument, "stream_options");
  expect_error(completion({{"stream", true}, {"stream_options", "usage"}}), StatusCode::kInvalidArgument,
               "stream_options");
  expect_error(completion({{"stream", true}, {"stream_options", {{"include_usage", "yes"}}}}),
               StatusCode::kInvalidArgument, "stream_options.include_usage");
  auto r = completion({{"stream", true}, {"stream_options", {{"include_usage", true}}}});
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_TRUE(r->stream);
  EXPECT_TRUE(r->include_usage);
  auto plain = completion({{"stream", true}});
  ASSERT_TRUE(plain.is_ok());
  EXPECT_TRUE(plain->stream);
  EXPECT_FALSE(plain->include_usage);
}

TEST(CompletionOptions, UnsupportedFeaturesAreUnimplemented) {
  const json tool = json::array({{{"type", "function"}, {"function", {{"name", "f"}}}}});
  expect_error(chat({{"tools", tool}}), StatusCode::kUnimplemented, "tools");
  expect_error(chat({{"tool_choice", "auto"}}), StatusCode::kUnimplemented, "tool_choice");
  expect_error(completion({{"suffix", "x"}}), StatusCode::kUnimplemented, "suffix");
  expect_error(chat({{"response_format", {{"type", "json_object"}}}}), StatusCode::kUnimplemented,
               "response_format");
  expect_error(chat({{"response_format", "text"}}), StatusCode::kUnimplemented, "response_format");
  expect_error(completion({{"echo", true}}), StatusCode::kUnimplemented, "echo");
  expect_error(completion({{"best_of", 2}}), StatusCode::kUnimplemented, "best_of");
  expect_error(completion({{"n", 3}, {"best_of", 4}}), StatusCode::kUnimplemented, "best_of");
  // What is accepted: response_format text, echo false, best_of equal to n.
  EXPECT_TRUE(chat({{"response_format", {{"type", "text"}}}}).is_ok());
  EXPECT_TRUE(completion({{"echo", false}}).is_ok());
  auto r = completion({{"n", 2}, {"best_of", 2}});
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->n, 2);
}

// response_format.type that is not a string used to throw nlohmann's type_error out of the parser.
TEST(CompletionOptions, ResponseFormatWithNonStringTypeIsAnErrorNotAThrow) {
  Result<CompletionOptions> r = invalid_argument("unset");
  EXPECT_NO_THROW(r = chat({{"response_format", {{"type", 5}}}}));
  expect_error(r, StatusCode::kUnimplemented, "response_format");
}

TEST(CompletionOptions, MaxCompletionTokensWinsOverMaxTokens) {
  auto r = completion({{"max_tokens", 100}, {"max_completion_tokens", 5}});
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->gen.max_tokens, 5);
  auto only = chat({{"max_tokens", 100}});
  ASSERT_TRUE(only.is_ok());
  EXPECT_EQ(only->gen.max_tokens, 100);
  auto c = chat({{"max_completion_tokens", 7}});
  ASSERT_TRUE(c.is_ok());
  EXPECT_EQ(c->gen.max_tokens, 7);
  // A completion may ask for 0 tokens (prompt logprobs only); a chat max_tokens must be >= 1.
  EXPECT_EQ(completion({{"max_tokens", 0}})->gen.max_tokens, 0);
  expect_error(chat({{"max_tokens", 0}}), StatusCode::kInvalidArgument, "max_tokens");
  expect_error(chat({{"max_tokens", 5}, {"max_completion_tokens", "x"}}), StatusCode::kInvalidArgument,
               "max_completion_tokens");
}

TEST(CompletionOptions, MaxTokensGiven) {
  EXPECT_FALSE(max_tokens_given(json::object()));
  EXPECT_FALSE(max_tokens_given({{"max_tokens", nullptr}}));
  EXPECT_FALSE(max_tokens_given({{"max_completion_tokens", nullptr}, {"temperature", 1}}));
  EXPECT_TRUE(max_tokens_given({{"max_tokens", 3}}));
  EXPECT_TRUE(max_tokens_given({{"max_completion_tokens", 3}}));
  EXPECT_TRUE(max_tokens_given({{"max_tokens", nullptr}, {"max_completion_tokens", 0}}));
}

TEST(CompletionOptions, LogitBias) {
  auto r = completion({{"logit_bias", {{"15", -100}, {"42", 2.5}}}});
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  auto bias = r->gen.sampling.logit_bias;
  std::sort(bias.begin(), bias.end());
  ASSERT_EQ(bias.size(), 2u);
  EXPECT_EQ(bias[0].first, 15);
  EXPECT_FLOAT_EQ(bias[0].second, -100.0f);
  EXPECT_EQ(bias[1].first, 42);
  EXPECT_FLOAT_EQ(bias[1].second, 2.5f);

  const std::string last = std::to_string(vocab().n_tokens() - 1);
  const std::string past = std::to_string(vocab().n_tokens());
  EXPECT_TRUE(completion({{"logit_bias", {{last, 1}}}}).is_ok());
  expect_error(completion({{"logit_bias", {{past, 1}}}}), StatusCode::kInvalidArgument, "logit_bias");
  expect_error(completion({{"logit_bias", {{"-1", 1}}}}), StatusCode::kInvalidArgument, "logit_bias");
  expect_error(completion({{"logit_bias", {{"abc", 1}}}}), StatusCode::kInvalidArgument, "logit_bias");
  expect_error(completion({{"logit_bias", {{"12x", 1}}}}), StatusCode::kInvalidArgument, "logit_bias");
  expect_error(completion({{"logit_bias", {{"", 1}}}}), StatusCode::kInvalidArgument, "logit_bias");
  expect_error(completion({{"logit_bias", {{"99999999999999999999999", 1}}}}), StatusCode::kInvalidArgument,
               "logit_bias");
  expect_error(completion({{"logit_bias", {{"5", 101}}}}), StatusCode::kInvalidArgument, "logit_bias");
  expect_error(completion({{"logit_bias", {{"5", "high"}}}}), StatusCode::kInvalidArgument, "logit_bias");
  expect_error(completion({{"logit_bias", json::array({1, 2})}}), StatusCode::kInvalidArgument, "logit_bias");
  // Only digits: strtol's leading spaces and signs are not token ids.
  expect_error(completion({{"logit_bias", {{" 5", 1}}}}), StatusCode::kInvalidArgument, "logit_bias");
  expect_error(completion({{"logit_bias", {{"+5", 1}}}}), StatusCode::kInvalidArgument, "logit_bias");
}

// An unsigned integer past INT64_MAX used to wrap (top_k 2^64-1 became -1, "off") instead of being refused.
TEST(CompletionOptions, HugeUnsignedIntegersAreRangeErrorsNotWrapped) {
  const json huge = json::parse("18446744073709551615");
  for (const char* field : {"top_k", "max_tokens", "n", "top_logprobs"}) {
    json body = {{field, huge}};
    if (std::string(field) == "top_logprobs") body["logprobs"] = true;
    expect_error(chat(body), StatusCode::kInvalidArgument, field);
  }
}

TEST(CompletionOptions, Seed) {
  auto r = completion({{"seed", 42}});
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  ASSERT_TRUE(r->gen.sampling.seed.has_value());
  EXPECT_EQ(*r->gen.sampling.seed, 42u);
  auto neg = completion({{"seed", -1}});
  ASSERT_TRUE(neg.is_ok());
  EXPECT_EQ(*neg->gen.sampling.seed, UINT64_MAX);
  expect_error(completion({{"seed", "42"}}), StatusCode::kInvalidArgument, "seed");
  expect_error(completion({{"seed", 1.5}}), StatusCode::kInvalidArgument, "seed");
}

TEST(CompletionOptions, ChatLogprobs) {
  expect_error(chat({{"top_logprobs", 3}}), StatusCode::kInvalidArgument, "top_logprobs");
  expect_error(chat({{"logprobs", false}, {"top_logprobs", 3}}), StatusCode::kInvalidArgument, "top_logprobs");
  expect_error(chat({{"logprobs", true}, {"top_logprobs", 21}}), StatusCode::kInvalidArgument, "top_logprobs");
  expect_error(chat({{"logprobs", 3}}), StatusCode::kInvalidArgument, "logprobs");
  auto top = chat({{"logprobs", true}, {"top_logprobs", 20}});
  ASSERT_TRUE(top.is_ok()) << top.status().to_string();
  EXPECT_EQ(top->logprobs, 20);
  EXPECT_EQ(top->gen.sampling.n_logprobs, 20);
  auto chosen = chat({{"logprobs", true}});
  ASSERT_TRUE(chosen.is_ok());
  EXPECT_EQ(chosen->logprobs, 0);
  EXPECT_EQ(chosen->gen.sampling.n_logprobs, 0);
  auto off = chat({{"logprobs", false}});
  ASSERT_TRUE(off.is_ok());
  EXPECT_EQ(off->logprobs, -1);
  EXPECT_EQ(off->gen.sampling.n_logprobs, -1);
  // A completion's logprobs is an int (0..5), and its n_logprobs follows.
  auto comp = completion({{"logprobs", 3}});
  ASSERT_TRUE(comp.is_ok());
  EXPECT_EQ(comp->logprobs, 3);
  EXPECT_EQ(comp->gen.sampling.n_logprobs, 3);
}

// ---- parse_prompts --------------------------------------------------------------------------------------

TEST(Prompts, String) {
  auto r = parse_prompts({{"prompt", "Hello world"}}, vocab());
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0], vocab().tokenize("Hello world", true, true));
  EXPECT_GE((*r)[0].size(), 2u);
}

TEST(Prompts, StringArray) {
  auto r = parse_prompts({{"prompt", {"Hello", "world peace"}}}, vocab());
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0], vocab().tokenize("Hello", true, true));
  EXPECT_EQ((*r)[1], vocab().tokenize("world peace", true, true));
  EXPECT_NE((*r)[0], (*r)[1]);
}

TEST(Prompts, EmptyStringIsAValidPrompt) {
  auto r = parse_prompts({{"prompt", ""}}, vocab());
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0], vocab().tokenize("", true, true));
  EXPECT_FALSE((*r)[0].empty());  // BOS alone
}

TEST(Prompts, TokenArrays) {
  auto flat = parse_prompts({{"prompt", {1, 2, 3}}}, vocab());
  ASSERT_TRUE(flat.is_ok()) << flat.status().to_string();
  ASSERT_EQ(flat->size(), 1u);
  EXPECT_EQ((*flat)[0], (std::vector<TokenId>{1, 2, 3}));
  auto nested = parse_prompts({{"prompt", {{4, 5}, {vocab().n_tokens() - 1}}}}, vocab());
  ASSERT_TRUE(nested.is_ok()) << nested.status().to_string();
  ASSERT_EQ(nested->size(), 2u);
  EXPECT_EQ((*nested)[0], (std::vector<TokenId>{4, 5}));
  EXPECT_EQ((*nested)[1], (std::vector<TokenId>{vocab().n_tokens() - 1}));
}

TEST(Prompts, DefaultWhenAbsentOrNull) {
  const auto want = vocab().tokenize("<|endoftext|>", true, true);
  for (const json& body : {json::object(), json{{"prompt", nullptr}}}) {
    auto r = parse_prompts(body, vocab());
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    ASSERT_EQ(r->size(), 1u);
    EXPECT_EQ((*r)[0], want);
  }
}

TEST(Prompts, Errors) {
  const int32_t n = vocab().n_tokens();
  expect_error(parse_prompts({{"prompt", {1, n}}}, vocab()), StatusCode::kInvalidArgument, "prompt");
  expect_error(parse_prompts({{"prompt", {1, -1}}}, vocab()), StatusCode::kInvalidArgument, "prompt");
  expect_error(parse_prompts({{"prompt", {{1}, {n}}}}, vocab()), StatusCode::kInvalidArgument, "prompt");
  expect_error(parse_prompts({{"prompt", json::array({json::array({1}), json::array()})}}, vocab()),
               StatusCode::kInvalidArgument, "prompt");
  expect_error(parse_prompts({{"prompt", json::array()}}, vocab()), StatusCode::kInvalidArgument, "prompt");
  expect_error(parse_prompts({{"prompt", {"a", 1}}}, vocab()), StatusCode::kInvalidArgument, "prompt");
  expect_error(parse_prompts({{"prompt", {1, "a"}}}, vocab()), StatusCode::kInvalidArgument, "prompt");
  expect_error(parse_prompts({{"prompt", {1, 2.5}}}, vocab()), StatusCode::kInvalidArgument, "prompt");
  expect_error(parse_prompts({{"prompt", json::array({json::array({1}), 2})}}, vocab()),
               StatusCode::kInvalidArgument, "prompt");
  expect_error(parse_prompts({{"prompt", 42}}, vocab()), StatusCode::kInvalidArgument, "prompt");
  expect_error(parse_prompts({{"prompt", {{"k", "v"}}}}, vocab()), StatusCode::kInvalidArgument, "prompt");
  expect_error(parse_prompts({{"prompt", true}}, vocab()), StatusCode::kInvalidArgument, "prompt");
}

// ---- parse_embedding_request ----------------------------------------------------------------------------

TEST(Embeddings, InputShapes) {
  auto s = parse_embedding_request({{"input", "The food was delicious"}}, vocab(), kNEmbd);
  ASSERT_TRUE(s.is_ok()) << s.status().to_string();
  ASSERT_EQ(s->inputs.size(), 1u);
  EXPECT_EQ(s->inputs[0], vocab().tokenize("The food was delicious", true, true));
  EXPECT_FALSE(s->base64);
  auto arr = parse_embedding_request({{"input", {"a", "b", "c"}}}, vocab(), kNEmbd);
  ASSERT_TRUE(arr.is_ok());
  EXPECT_EQ(arr->inputs.size(), 3u);
  auto ids = parse_embedding_request({{"input", {{1, 2}, {3}}}}, vocab(), kNEmbd);
  ASSERT_TRUE(ids.is_ok());
  ASSERT_EQ(ids->inputs.size(), 2u);
  EXPECT_EQ(ids->inputs[1], (std::vector<TokenId>{3}));
}

TEST(Embeddings, InputRequiredAndNotEmpty) {
  expect_error(parse_embedding_request(json::object(), vocab(), kNEmbd), StatusCode::kInvalidArgument, "input");
  expect_error(parse_embedding_request({{"input", nullptr}}, vocab(), kNEmbd), StatusCode::kInvalidArgument, "input");
  expect_error(parse_embedding_request({{"input", ""}}, vocab(), kNEmbd), StatusCode::kInvalidArgument, "input");
  expect_error(parse_embedding_request({{"input", {"a", ""}}}, vocab(), kNEmbd), StatusCode::kInvalidArgument,
               "input");
  expect_error(parse_embedding_request({{"input", json::array()}}, vocab(), kNEmbd), StatusCode::kInvalidArgument,
               "input");
  expect_error(parse_embedding_request({{"input", {vocab().n_tokens()}}}, vocab(), kNEmbd),
               StatusCode::kInvalidArgument, "input");
  expect_error(parse_embedding_request({{"input", 3.5}}, vocab(), kNEmbd), StatusCode::kInvalidArgument, "input");
}

TEST(Embeddings, TooManyItemsRefusedBeforeTokenizing) {
  json ok = json::array();
  for (size_t i = 0; i < kMaxEmbeddingInputs; ++i) ok.push_back("x");
  auto at = parse_embedding_request({{"input", ok}}, vocab(), kNEmbd);
  ASSERT_TRUE(at.is_ok()) << at.status().to_string();
  EXPECT_EQ(at->inputs.size(), kMaxEmbeddingInputs);

  // One more item, the last an empty string: the count is checked first, so the error is about it and
  // not about the empty string parse_token_inputs would find.
  json over = ok;
  over.push_back("");
  auto r = parse_embedding_request({{"input", over}}, vocab(), kNEmbd);
  expect_error(r, StatusCode::kInvalidArgument, "input");
  EXPECT_NE(r.status().message().find(std::to_string(kMaxEmbeddingInputs + 1) + " items"), std::string::npos)
      << r.status().message();
  // Token arrays count as items too.
  json arrays = json::array();
  for (size_t i = 0; i <= kMaxEmbeddingInputs; ++i) arrays.push_back(json::array({1}));
  auto r2 = parse_embedding_request({{"input", arrays}}, vocab(), kNEmbd);
  expect_error(r2, StatusCode::kInvalidArgument, "input");
  EXPECT_NE(r2.status().message().find("items"), std::string::npos) << r2.status().message();
  // One flat token array is a single input, however long.
  json flat = json::array();
  for (size_t i = 0; i <= kMaxEmbeddingInputs; ++i) flat.push_back(1);
  auto r3 = parse_embedding_request({{"input", flat}}, vocab(), kNEmbd);
  ASSERT_TRUE(r3.is_ok()) << r3.status().to_string();
  ASSERT_EQ(r3->inputs.size(), 1u);
  EXPECT_EQ(r3->inputs[0].size(), kMaxEmbeddingInputs + 1);
}

TEST(Embeddings, TotalTokenLimit) {
  const size_t half = kMaxEmbeddingTokens / 2;
  json at = json::array({json(std::vector<int>(half, 1)), json(std::vector<int>(half, 2))});
  EXPECT_TRUE(parse_embedding_request({{"input", at}}, vocab(), kNEmbd).is_ok());
  json over = json::array({json(std::vector<int>(half, 1)), json(std::vector<int>(half + 1, 2))});
  auto r = parse_embedding_request({{"input", over}}, vocab(), kNEmbd);
  expect_error(r, StatusCode::kInvalidArgument, "input");
  EXPECT_NE(r.status().message().find("tokens"), std::string::npos) << r.status().message();
}

TEST(Embeddings, EncodingFormat) {
  auto f = parse_embedding_request({{"input", "hi"}, {"encoding_format", "float"}}, vocab(), kNEmbd);
  ASSERT_TRUE(f.is_ok());
  EXPECT_FALSE(f->base64);
  auto b = parse_embedding_request({{"input", "hi"}, {"encoding_format", "base64"}}, vocab(), kNEmbd);
  ASSERT_TRUE(b.is_ok());
  EXPECT_TRUE(b->base64);
  expect_error(parse_embedding_request({{"input", "hi"}, {"encoding_format", "binary"}}, vocab(), kNEmbd),
               StatusCode::kInvalidArgument, "encoding_format");
  expect_error(parse_embedding_request({{"input", "hi"}, {"encoding_format", 1}}, vocab(), kNEmbd),
               StatusCode::kInvalidArgument, "encoding_format");
}

TEST(Embeddings, Dimensions) {
  EXPECT_TRUE(parse_embedding_request({{"input", "hi"}, {"dimensions", kNEmbd}}, vocab(), kNEmbd).is_ok());
  expect_error(parse_embedding_request({{"input", "hi"}, {"dimensions", 64}}, vocab(), kNEmbd),
               StatusCode::kUnimplemented, "dimensions");
  expect_error(parse_embedding_request({{"input", "hi"}, {"dimensions", 0}}, vocab(), kNEmbd),
               StatusCode::kInvalidArgument, "dimensions");
  expect_error(parse_embedding_request({{"input", "hi"}, {"dimensions", "256"}}, vocab(), kNEmbd),
               StatusCode::kInvalidArgument, "dimensions");
  expect_error(parse_embedding_request({{"input", "hi"}, {"user", 1}}, vocab(), kNEmbd),
               StatusCode::kInvalidArgument, "user");
}

// ---- base64_floats, dump --------------------------------------------------------------------------------

TEST(Base64Floats, KnownValues) {
  EXPECT_EQ(base64_floats({}), "");
  EXPECT_EQ(base64_floats({1.0f}), "AACAPw==");
  EXPECT_EQ(base64_floats({1.0f, -2.0f}), "AACAPwAAAMA=");
  EXPECT_EQ(base64_floats({0.5f, 1.0f, 3.25f}), "AAAAPwAAgD8AAFBA");
}

TEST(Dump, InvalidUtf8IsReplacedNotThrown) {
  const json j = {{"text", std::string("a\xff" "b")}};
  std::string out;
  ASSERT_NO_THROW(out = dump(j));
  EXPECT_EQ(out, "{\"text\":\"a\xEF\xBF\xBD" "b\"}");
  nlohmann::ordered_json o = {{"z", std::string("\xc3")}, {"a", 1}};
  std::string out2;
  ASSERT_NO_THROW(out2 = dump(o));
  EXPECT_EQ(out2, "{\"z\":\"\xEF\xBF\xBD\",\"a\":1}");
  EXPECT_EQ(dump(json{{"k", "v"}}), "{\"k\":\"v\"}");
}

// ---- parse_messages, render_chat_request ----------------------------------------------------------------

TEST(Messages, RolesAndContent) {
  const json body = {{"messages",
                      {{{"role", "developer"}, {"content", "Be brief."}},
                       {{"role", "system"}, {"content", "S"}},
                       {{"role", "user"}, {"content", {{{"type", "text"}, {"text", "one"}}, {{"type", "text"}, {"text", "two"}}}}},
                       {{"role", "assistant"}, {"content", nullptr}},
                       {{"role", "assistant"}},
                       {{"role", "tool"}, {"content", "42"}, {"tool_call_id", "call_1"}, {"name", "calc"}}}}};
  auto r = parse_messages(body);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  ASSERT_EQ(r->size(), 6u);
  EXPECT_EQ((*r)[0].role, "system");
  EXPECT_EQ((*r)[0].content, "Be brief.");
  EXPECT_EQ((*r)[1].role, "system");
  EXPECT_EQ((*r)[2].role, "user");
  EXPECT_EQ((*r)[2].content, "one\ntwo");
  EXPECT_EQ((*r)[3].role, "assistant");
  EXPECT_EQ((*r)[3].content, "");
  EXPECT_EQ((*r)[4].content, "");
  EXPECT_EQ((*r)[5].role, "tool");
  EXPECT_EQ((*r)[5].content, "42");
  EXPECT_EQ((*r)[5].tool_call_id, "call_1");
  EXPECT_EQ((*r)[5].name, "calc");
}

TEST(Messages, Errors) {
  auto msgs = [](json m) { return parse_messages({{"messages", std::move(m)}}); };
  expect_error(parse_messages(json::object()), StatusCode::kInvalidArgument, "messages");
  expect_error(msgs(json::array()), StatusCode::kInvalidArgument, "messages");
  expect_error(msgs("hi"), StatusCode::kInvalidArgument, "messages");
  expect_error(msgs({"hi"}), StatusCode::kInvalidArgument, "messages[0]");
  expect_error(msgs({{{"role", "user"}, {"content", "a"}}, {{"role", "robot"}, {"content", "b"}}}),
               StatusCode::kInvalidArgument, "messages[1].role");
  expect_error(msgs({{{"content", "a"}}}), StatusCode::kInvalidArgument, "messages[0].role");
  expect_error(msgs({{{"role", 1}, {"content", "a"}}}), StatusCode::kInvalidArgument, "messages[0].role");
  expect_error(msgs({{{"role", "user"}}}), StatusCode::kInvalidArgument, "messages[0].content");
  expect_error(msgs({{{"role", "system"}, {"content", nullptr}}}), StatusCode::kInvalidArgument,
               "messages[0].content");
  expect_error(msgs({{{"role", "user"}, {"content", 5}}}), StatusCode::kInvalidArgument, "messages[0].content");
  expect_error(msgs({{{"role", "user"}, {"content", {{{"type", "image_url"}, {"image_url", {{"url", "x"}}}}}}}}),
               StatusCode::kUnimplemented, "messages[0].content");
  expect_error(msgs({{{"role", "user"}, {"content", {"plain"}}}}), StatusCode::kUnimplemented,
               "messages[0].content");
  expect_error(msgs({{{"role", "user"}, {"content", {{{"type", "text"}, {"text", 1}}}}}}),
               StatusCode::kUnimplemented, "messages[0].content");
  expect_error(msgs({{{"role", "assistant"}, {"content", ""}, {"tool_calls", json::array()}}}),
               StatusCode::kUnimplemented, "messages[0].tool_calls");
  expect_error(msgs({{{"role", "user"}, {"content", "a"}, {"name", 3}}}), StatusCode::kInvalidArgument,
               "messages[0].name");
  expect_error(msgs({{{"role", "tool"}, {"content", "a"}, {"tool_call_id", false}}}), StatusCode::kInvalidArgument,
               "messages[0].tool_call_id");
}

TEST(RenderChat, BuiltInFormat) {
  const auto f = ChatFormatter::create(vocab(), "");
  ASSERT_EQ(f.kind(), "llama3");
  const json body = {{"messages", {{{"role", "developer"}, {"content", "S"}}, {{"role", "user"}, {"content", "Hi"}}}}};
  auto r = render_chat_request(f, body);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(*r,
            "<|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  json no_prompt = body;
  no_prompt["add_generation_prompt"] = false;
  auto r2 = render_chat_request(f, no_prompt);
  ASSERT_TRUE(r2.is_ok()) << r2.status().to_string();
  EXPECT_EQ(*r2,
            "<|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>");
  json null_prompt = body;
  null_prompt["add_generation_prompt"] = nullptr;
  null_prompt["chat_template_kwargs"] = nullptr;
  EXPECT_EQ(*render_chat_request(f, null_prompt), *r);
}

TEST(RenderChat, Errors) {
  const auto f = ChatFormatter::create(vocab(), "");
  const json msgs = {{{"role", "user"}, {"content", "Hi"}}};
  expect_error(render_chat_request(f, {{"messages", msgs}, {"chat_template_kwargs", "x"}}),
               StatusCode::kInvalidArgument, "chat_template_kwargs");
  expect_error(render_chat_request(f, {{"messages", msgs}, {"chat_template_kwargs", json::array()}}),
               StatusCode::kInvalidArgument, "chat_template_kwargs");
  expect_error(render_chat_request(f, {{"messages", msgs}, {"add_generation_prompt", "yes"}}),
               StatusCode::kInvalidArgument, "add_generation_prompt");
  expect_error(render_chat_request(f, {{"messages", {{{"role", "bot"}, {"content", "Hi"}}}}}),
               StatusCode::kInvalidArgument, "messages[0].role");
  expect_error(render_chat_request(f, json::object()), StatusCode::kInvalidArgument, "messages");
}

TEST(RenderChat, Llama31JinjaTemplate) {
  const std::string tmpl = llama31_template();
  ASSERT_FALSE(tmpl.empty()) << "missing Llama 3.1 template (run `make fetch`)";
  const auto f = ChatFormatter::create(vocab(), tmpl);
  ASSERT_EQ(f.kind(), "jinja") << f.fallback_reason();
  const json msgs = {{{"role", "system"}, {"content", "You are terse."}}, {{"role", "user"}, {"content", "Hi"}}};
  auto r = render_chat_request(f, {{"messages", msgs}, {"chat_template_kwargs", {{"date_string", "01 Jan 2030"}}}});
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_NE(r->find("Today Date: 01 Jan 2030"), std::string::npos) << *r;
  EXPECT_NE(r->find("You are terse.<|eot_id|>"), std::string::npos) << *r;
  EXPECT_NE(r->find("<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"), std::string::npos) << *r;
  const std::string gen = "<|start_header_id|>assistant<|end_header_id|>\n\n";
  ASSERT_GE(r->size(), gen.size());
  EXPECT_EQ(r->substr(r->size() - gen.size()), gen);
  // The tokenizer adds BOS itself, so the template's leading BOS text is dropped.
  EXPECT_NE(r->rfind("<|begin_of_text|>", 0), 0u) << *r;

  auto r2 = render_chat_request(f, {{"messages", msgs}, {"add_generation_prompt", false}});
  ASSERT_TRUE(r2.is_ok()) << r2.status().to_string();
  EXPECT_EQ(r2->find("<|start_header_id|>assistant"), std::string::npos) << *r2;
  EXPECT_EQ(r2->find("01 Jan 2030"), std::string::npos) << *r2;
}

}  // namespace
}  // namespace nc::server
