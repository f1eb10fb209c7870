// OpenAI wire format helpers: error bodies, request-field parsing into engine requests, ids.
// Pure functions; any thread.
#pragma once
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "core/status.h"
#include "engine/sched/scheduler.h"
#include "engine/tokenizer/vocab.h"
#include "server/chat_prompt.h"

namespace nc::server {

using json = nlohmann::json;

// An error to send: HTTP status and OpenAI's error object.
struct ApiError {
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param;  // empty: null
  std::string code;   // empty: null
};
json error_body(const ApiError& e);
ApiError from_status(const Status& s, const std::string& param = "");

// Serializes without throwing on invalid UTF-8 (replaced by U+FFFD).
std::string dump(const json& j);

// "cmpl-<24 hex>", "chatcmpl-...".
std::string random_id(const std::string& prefix, int hex_chars);
// "req_<32 hex>" whose first 12 hex digits are the unix time in milliseconds (the rest random), so
// ids sort by creation time and the ledger's index on them grows at one end instead of touching a
// random page per request.
std::string time_ordered_id(const std::string& prefix, int hex_chars);

// Fields shared by /v1/completions and /v1/chat/completions.
struct CompletionOptions {
  engine::GenerateParams gen;
  int n = 1;
  bool stream = false;
  bool include_usage = false;
  int logprobs = -1;  // completions: 0..5 alternatives; -1: none
};

// Reads sampling, limits, stop, n, stream, logprobs. `max_tokens_default` is 16 for completions.
// Returns ApiError (as Status payload through `err`) on invalid or unsupported fields.
// `chat`: logprobs is a bool with top_logprobs 0..20 (else an int 0..5), and echo does not exist.
bool parse_completion_options(const json& body, const engine::Vocab& vocab, int max_tokens_default, bool chat,
                              CompletionOptions* out, ApiError* err);

// The prompt field of /v1/completions: string | string[] | int[] | int[][] (default "<|endoftext|>").
bool parse_prompts(const json& body, const engine::Vocab& vocab, std::vector<std::vector<engine::TokenId>>* out,
                   ApiError* err);

// POST /v1/embeddings: input (string | string[] | int[] | int[][], at most kMaxEmbeddingInputs items and
// kMaxEmbeddingTokens tokens),
// encoding_format (float | base64), dimensions (only the model's own), user.
constexpr size_t kMaxEmbeddingInputs = 2048;
constexpr size_t kMaxEmbeddingTokens = 300'000;  // over all inputs of one request (OpenAI's limit)
struct EmbeddingOptions {
  std::vector<std::vector<engine::TokenId>> inputs;
  bool base64 = false;
};
bool parse_embedding_request(const json& body, const engine::Vocab& vocab, int64_t n_embd, EmbeddingOptions* out,
                             ApiError* err);
// Little-endian float32 bytes in base64 (what encoding_format "base64" returns).
std::string base64_floats(const std::vector<float>& v);

// /v1/chat/completions messages: roles system/developer (as system)/user/assistant/tool, content a
// string or text parts; assistant tool_calls are refused until tools exist.
bool parse_messages(const json& body, std::vector<ChatMessage>* out, ApiError* err);

}  // namespace nc::server
