// SequenceOutput: the output side of one generating sequence — samples a token from its logits, turns
// it into released text (partial UTF-8 held back, stop strings removed) and decides whether the
// sequence is done (end-of-generation token, stop string, max_tokens, a full context). generate()
// (one sequence) and the Scheduler (many) both drive it, so they finish requests identically.
//
// Ownership: borrows the Vocab; owns its Sampler and text state. Thread-safety: one thread at a time.
#pragma once
#include <cstdint>
#include <span>
#include <string>

#include "engine/generate/generate.h"
#include "engine/generate/sampler.h"
#include "engine/generate/text_stream.h"
#include "engine/tokenizer/vocab.h"

namespace nc::engine {

class SequenceOutput {
 public:
  // `params` must have passed validate(); the prompt primes the sampler's penalty window.
  SequenceOutput(const GenerateParams& params, const Vocab& vocab, int32_t n_vocab, std::span<const TokenId> prompt);

  struct Step {
    GeneratedToken token;
    bool done = false;
    FinishReason finish = FinishReason::kLength;  // when done
    bool context_full = false;                    // done because the sequence cannot grow
    std::string stop_matched;                     // the stop string, if one ended it
  };
  // Samples the next token from `logits` ([n_vocab]). `pos` is where that token would be evaluated;
  // the sequence is full when pos >= max_len.
  Step next(const float* logits, int64_t pos, int64_t max_len);

  int32_t n_generated() const { return n_generated_; }

 private:
  GenerateParams params_;
  const Vocab& vocab_;
  Sampler sampler_;
  Utf8Stream utf8_;
  StopMatcher stops_;
  int32_t n_generated_ = 0;
};

}  // namespace nc::engine
