// Single-sequence text generation on a Context: evaluates the prompt, then samples, streams and
// stops (end-of-generation token, stop string, max tokens, context full). Used by `neocloud generate`
// and the tests; the serving step loop (many sequences) reuses Sampler, Utf8Stream and StopMatcher.
//
// Ownership: borrows the Context and Vocab. Thread-safety: the calling thread drives the Context for
// the whole call (sequence `seq` of its KV cache, freed on return).
#pragma once
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "core/status.h"
#include "engine/generate/sampler.h"
#include "engine/model/context.h"
#include "engine/tokenizer/vocab.h"

namespace nc::engine {

struct GenerateParams {
  SamplingParams sampling;
  int32_t max_tokens = 128;         // < 0: until end-of-generation or a full context
  std::vector<std::string> stop;    // stop strings (not emitted)
  bool ignore_eos = false;          // keep going past end-of-generation tokens
  int32_t seq = 0;                  // KV sequence id to use
  bool keep_logits = false;         // copy every step's logits into GenerateResult::step_logits
};

enum class FinishReason { kStop, kLength, kCancelled };
const char* finish_reason_name(FinishReason r);  // "stop", "length", "cancelled"

struct GeneratedToken {
  TokenId id = kNoToken;
  std::string text;     // text released by this token (may be empty: held UTF-8 or stop-string prefix)
  SampleResult sample;  // logprobs when requested
};

struct GenerateResult {
  std::vector<TokenId> tokens;  // generated tokens (including a final end-of-generation token)
  std::string text;             // all released text
  FinishReason finish = FinishReason::kLength;
  bool context_full = false;    // kLength because the context filled up
  std::string stop_matched;     // the stop string, if one ended generation
  int32_t n_prompt = 0;
  double prompt_seconds = 0, generate_seconds = 0;  // prompt evaluation; sampling + decoding after it
  std::vector<float> step_logits;  // [n_generated][n_vocab], with keep_logits
};

// Calls `on_token` after every generated token (return false to cancel). The prompt must be
// non-empty and leave room for one token in the context.
Result<GenerateResult> generate(Context& ctx, const Vocab& vocab, std::span<const TokenId> prompt,
                                const GenerateParams& params,
                                const std::function<bool(const GeneratedToken&)>& on_token = {});

}  // namespace nc::engine
