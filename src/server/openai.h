// The OpenAI request parsers: request fields -> engine parameters, each a Result (an error is
// InvalidArgument, Unimplemented for a feature that does not exist yet, or OutOfRange, with the field
// named as the Status's field; the HTTP edge maps it through core/api_error.h). Pure functions; any thread.
#pragma once
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "core/api_error.h"
#include "core/status.h"
#include "engine/sched/scheduler.h"
#include "engine/tokenizer/vocab.h"
#include "server/chat_prompt.h"

namespace nc::server {

using json = nlohmann::json;

// Serializes without throwing on invalid UTF-8 (replaced by U+FFFD).
std::string dump(const json& j);
std::string dump(const nlohmann::ordered_json& j);

// Fields shared by /v1/completions and /v1/chat/completions.
struct CompletionOptions {
  engine::GenerateParams gen;
  int n = 1;
  bool stream = false;
  bool include_usage = false;
  int logprobs = -1;  // completions: 0..5 alternatives; -1: none
};

// Reads sampling, limits, stop, n, stream, logprobs. `max_tokens_default` is 16 for completions (-1:
// none given, the context decides). `chat`: logprobs is a bool with top_logprobs 0..20 (else an int
// 0..5), and echo does not exist.
Result<CompletionOptions> parse_completion_options(const json& body, const engine::Vocab& vocab, int max_tokens_default,
                                                   bool chat);
// Whether the request set max_tokens or max_completion_tokens (a non-null value).
bool max_tokens_given(const json& body);

// The prompt field of /v1/completions: string | string[] | int[] | int[][] (default "<|endoftext|>").
Result<std::vector<std::vector<engine::TokenId>>> parse_prompts(const json& body, const engine::Vocab& vocab);

// POST /v1/embeddings: input (string | string[] | int[] | int[][], at most kMaxEmbeddingInputs items and
// kMaxEmbeddingTokens tokens),
// encoding_format (float | base64), dimensions (only the model's own), user.
constexpr size_t kMaxEmbeddingInputs = 2048;
constexpr size_t kMaxEmbeddingTokens = 300'000;  // over all inputs of one request (OpenAI's limit)
struct EmbeddingOptions {
  std::vector<std::vector<engine::TokenId>> inputs;
  bool base64 = false;
};
Result<EmbeddingOptions> parse_embedding_request(const json& body, const engine::Vocab& vocab, int64_t n_embd);
// Little-endian float32 bytes in base64 (what encoding_format "base64" returns).
std::string base64_floats(const std::vector<float>& v);

// /v1/chat/completions messages: roles system/developer (as system)/user/assistant/tool, content a
// string or text parts; assistant tool_calls are refused until tools exist.
Result<std::vector<ChatMessage>> parse_messages(const json& body);

// The prompt text of a chat request: its messages (parse_messages), chat_template_kwargs and
// add_generation_prompt through the model's chat formatter.
Result<std::string> render_chat_request(const ChatFormatter& chat, const json& body);

}  // namespace nc::server
