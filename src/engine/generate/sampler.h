// Sampler: turns one row of logits into the next token, with llama.cpp's chain and numerics
// (common/sampling.cpp, src/llama-sampler.cpp): logit bias -> repetition/presence/frequency penalties
// -> top-k -> top-p -> min-p -> temperature -> a seeded draw (std::mt19937). temperature <= 0 is
// greedy (the first maximum wins). Optionally reports the chosen token's log-probability and the
// top-N alternatives, computed on the raw logits (before bias, penalties and truncation).
//
// Ownership: owns its RNG, penalty history and scratch. Thread-safety: one thread per Sampler.
#pragma once
#include <cstdint>
#include <deque>
#include <optional>
#include <random>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/status.h"

namespace nc::engine {

struct SamplingParams {
  float temperature = 0.8f;
  int32_t top_k = 40;              // <= 0: off
  float top_p = 0.95f;             // >= 1: off
  float min_p = 0.05f;             // <= 0: off
  float repeat_penalty = 1.0f;     // 1: off (llama.cpp semantics: logit/p if > 0 else logit*p)
  float presence_penalty = 0.0f;   // subtracted once if the token occurred
  float frequency_penalty = 0.0f;  // subtracted per occurrence
  int32_t penalty_last_n = 64;     // window of accepted tokens the penalties see; -1: all of them
  std::vector<std::pair<int32_t, float>> logit_bias;  // added to the logits (token, bias)
  std::optional<uint64_t> seed;    // unset: a random seed
  int32_t n_logprobs = -1;         // < 0: no log-probabilities; N >= 0: chosen token + top-N alternatives
  size_t min_keep = 0;
};

// Checks ranges (temperature >= 0, 0 < top_p <= 1, 0 <= min_p <= 1, penalties finite, logprobs <= 20,
// bias ids inside the vocabulary). The message names the field.
Status validate(const SamplingParams& p, int32_t n_vocab);

struct TokenLogprob {
  int32_t token = -1;
  float logprob = 0;
};

struct SampleResult {
  int32_t token = -1;
  float logprob = 0;                  // of `token` under the raw distribution (when requested)
  std::vector<TokenLogprob> top;      // the N most likely tokens, most likely first (when requested)
};

class Sampler {
 public:
  Sampler(const SamplingParams& params, int32_t n_vocab);

  // Samples from `logits` (n_vocab floats). Does not accept the token: call `accept`.
  SampleResult sample(const float* logits);
  // Adds a token to the penalty history (prompt tokens too, as llama.cpp's CLI does).
  void accept(int32_t token);
  uint32_t seed() const { return seed_; }

 private:
  struct Cand {
    int32_t id;
    float logit;
    float p;
  };
  void sort_prefix(size_t k);
  int32_t greedy(const float* logits);

  SamplingParams p_;
  int32_t n_vocab_;
  uint32_t seed_;
  std::mt19937 rng_;
  std::deque<int32_t> history_;
  std::unordered_map<int32_t, int32_t> counts_;
  std::vector<Cand> cur_;
  size_t size_ = 0;
  bool sorted_ = false;
};

}  // namespace nc::engine
