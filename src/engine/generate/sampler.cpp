#include "engine/generate/sampler.h"

#include <atomic>

#include <fmt/format.h>

#include <algorithm>
#include <cfloat>
#include <cmath>

namespace nc::engine {

Status validate(const SamplingParams& p, int32_t n_vocab) {
  auto finite = [](float x) { return std::isfinite(x); };
  if (!finite(p.temperature) || p.temperature < 0) return invalid_argument("temperature must be >= 0");
  if (!finite(p.top_p) || p.top_p <= 0 || p.top_p > 1) return invalid_argument("top_p must be in (0, 1]");
  if (!finite(p.min_p) || p.min_p < 0 || p.min_p > 1) return invalid_argument("min_p must be in [0, 1]");
  if (!finite(p.repeat_penalty) || p.repeat_penalty <= 0) return invalid_argument("repetition_penalty must be > 0");
  if (!finite(p.presence_penalty) || p.presence_penalty < -2 || p.presence_penalty > 2) {
    return invalid_argument("presence_penalty must be in [-2, 2]");
  }
  if (!finite(p.frequency_penalty) || p.frequency_penalty < -2 || p.frequency_penalty > 2) {
    return invalid_argument("frequency_penalty must be in [-2, 2]");
  }
  if (p.penalty_last_n < -1) return invalid_argument("penalty_last_n must be >= -1");
  if (p.n_logprobs > 20) return invalid_argument("top_logprobs must be <= 20");
  for (const auto& [id, bias] : p.logit_bias) {
    if (id < 0 || id >= n_vocab) return invalid_argument(fmt::format("logit_bias: token {} is not in the vocabulary", id));
    if (!std::isfinite(bias) || bias < -100 || bias > 100) return invalid_argument("logit_bias values must be in [-100, 100]");
  }
  return Status::ok();
}

namespace {

// A seed for a request that gives none: a process-wide counter started from std::random_device once,
// mixed by splitmix64 (opening the random device per request cost more than sampling).
uint32_t fresh_seed() {
  static std::atomic<uint64_t> counter{(static_cast<uint64_t>(std::random_device()()) << 32) | std::random_device()()};
  uint64_t z = counter.fetch_add(0x9e3779b97f4a7c15ULL, std::memory_order_relaxed) + 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return static_cast<uint32_t>(z ^ (z >> 31));
}

// The first index of the largest value. Eight running maxima, then one equality scan: branch-free and
// 13x faster than the one-comparison-per-element loop on a 32000-token vocabulary (114 -> 8.5 us).
int32_t first_argmax(const float* x, int32_t n) {
  float m[8];
  for (float& v : m) v = x[0];
  int32_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int k = 0; k < 8; ++k) m[k] = x[i + k] > m[k] ? x[i + k] : m[k];
  }
  float mx = m[0];
  for (int k = 1; k < 8; ++k) mx = m[k] > mx ? m[k] : mx;
  for (; i < n; ++i) mx = x[i] > mx ? x[i] : mx;
  for (int32_t j = 0; j < n; ++j) {
    if (x[j] == mx) return j;
  }
  return 0;
}

}  // namespace

Sampler::Sampler(const SamplingParams& params, int32_t n_vocab) : p_(params), n_vocab_(n_vocab) {
  seed_ = p_.seed ? static_cast<uint32_t>(*p_.seed) : fresh_seed();
  rng_.seed(seed_);
  // cur_ (n_vocab candidates) is allocated by the first sample that needs it: greedy never does.
}

int32_t Sampler::greedy(const float* logits) {
  // The largest logit after logit_bias and penalties, the lowest id among equals — exactly what the
  // chain below returns at temperature <= 0 (top-k/top-p/min-p never drop the maximum).
  const bool penalize =
      !counts_.empty() && (p_.repeat_penalty != 1.0f || p_.presence_penalty != 0.0f || p_.frequency_penalty != 0.0f);
  if (p_.logit_bias.empty() && !penalize) return first_argmax(logits, n_vocab_);
  thread_local std::vector<float> adjusted;
  adjusted.assign(logits, logits + n_vocab_);
  for (const auto& [id, bias] : p_.logit_bias) adjusted[id] += bias;
  if (penalize) {
    for (const auto& [id, c] : counts_) {
      if (id < 0 || id >= n_vocab_) continue;
      float& l = adjusted[id];
      if (l <= 0) l *= p_.repeat_penalty;
      else l /= p_.repeat_penalty;
      l -= static_cast<float>(c) * p_.frequency_penalty + (c > 0 ? 1.0f : 0.0f) * p_.presence_penalty;
    }
  }
  return first_argmax(adjusted.data(), n_vocab_);
}

void Sampler::accept(int32_t token) {
  history_.push_back(token);
  ++counts_[token];
  if (p_.penalty_last_n >= 0) {
    while (history_.size() > static_cast<size_t>(p_.penalty_last_n)) {
      const int32_t old = history_.front();
      history_.pop_front();
      if (--counts_[old] == 0) counts_.erase(old);
    }
  }
}

void Sampler::sort_prefix(size_t k) {
  auto cmp = [](const Cand& a, const Cand& b) { return a.logit > b.logit || (a.logit == b.logit && a.id < b.id); };
  k = std::min(k, size_);
  if (k < size_) std::nth_element(cur_.begin(), cur_.begin() + static_cast<ptrdiff_t>(k), cur_.begin() + static_cast<ptrdiff_t>(size_), cmp);
  std::sort(cur_.begin(), cur_.begin() + static_cast<ptrdiff_t>(k), cmp);
}

SampleResult Sampler::sample(const float* logits) {
  SampleResult res;
  // Log-probabilities of the raw distribution.
  if (p_.n_logprobs >= 0) {
    float mx = -INFINITY;
    for (int32_t i = 0; i < n_vocab_; ++i) mx = std::max(mx, logits[i]);
    double sum = 0;
    for (int32_t i = 0; i < n_vocab_; ++i) sum += std::exp(static_cast<double>(logits[i]) - mx);
    const double lse = mx + std::log(sum);
    std::vector<TokenLogprob> all;
    if (p_.n_logprobs > 0) {
      all.resize(static_cast<size_t>(n_vocab_));
      for (int32_t i = 0; i < n_vocab_; ++i) all[i] = {i, static_cast<float>(logits[i] - lse)};
      const size_t k = std::min<size_t>(static_cast<size_t>(p_.n_logprobs), all.size());
      auto cmp = [](const TokenLogprob& a, const TokenLogprob& b) {
        return a.logprob > b.logprob || (a.logprob == b.logprob && a.token < b.token);
      };
      std::partial_sort(all.begin(), all.begin() + static_cast<ptrdiff_t>(k), all.end(), cmp);
      res.top.assign(all.begin(), all.begin() + static_cast<ptrdiff_t>(k));
    }
    res.logprob = static_cast<float>(lse);  // subtracted below once the token is known
  }

  if (p_.temperature <= 0.0f) {
    std::uniform_real_distribution<double> dist(0.0, 1.0);
    dist(rng_);  // the draw the chain makes, so the random stream is the same either way
    res.token = greedy(logits);
    if (p_.n_logprobs >= 0) res.logprob = logits[res.token] - res.logprob;
    return res;
  }
  size_ = static_cast<size_t>(n_vocab_);
  sorted_ = false;
  cur_.resize(static_cast<size_t>(n_vocab_));
  for (int32_t i = 0; i < n_vocab_; ++i) cur_[i] = {i, logits[i], 0.0f};
  for (const auto& [id, bias] : p_.logit_bias) cur_[id].logit += bias;
  // Penalties (ids still equal indices: nothing is sorted yet).
  if (!counts_.empty() && (p_.repeat_penalty != 1.0f || p_.presence_penalty != 0.0f || p_.frequency_penalty != 0.0f)) {
    for (const auto& [id, c] : counts_) {
      if (id < 0 || id >= n_vocab_) continue;
      float& l = cur_[id].logit;
      if (l <= 0) l *= p_.repeat_penalty;
      else l /= p_.repeat_penalty;
      l -= static_cast<float>(c) * p_.frequency_penalty + (c > 0 ? 1.0f : 0.0f) * p_.presence_penalty;
    }
  }
  // top-k
  if (p_.top_k > 0) {
    const size_t k = std::min(static_cast<size_t>(p_.top_k), size_);
    sort_prefix(k);
    size_ = k;
    sorted_ = true;
  }
  // top-p
  if (p_.top_p < 1.0f && size_ > 0) {
    if (!sorted_) {
      sort_prefix(size_);
      sorted_ = true;
    }
    const float mx = cur_[0].logit;
    float sum = 0;
    for (size_t i = 0; i < size_; ++i) {
      cur_[i].p = std::exp(cur_[i].logit - mx);
      sum += cur_[i].p;
    }
    float cum = 0;
    size_t last = size_;
    for (size_t i = 0; i < size_; ++i) {
      cum += cur_[i].p / sum;
      if (cum >= p_.top_p && i + 1 >= p_.min_keep) {
        last = i + 1;
        break;
      }
    }
    size_ = last;
  }
  // min-p
  if (p_.min_p > 0.0f && size_ > 0) {
    if (!sorted_) {
      float mx = -FLT_MAX;
      for (size_t i = 0; i < size_; ++i) mx = std::max(mx, cur_[i].logit);
      const float min_logit = mx + std::log(p_.min_p);
      size_t w = 0;
      for (size_t i = 0; i < size_; ++i) {
        if (cur_[i].logit >= min_logit) cur_[w++] = cur_[i];
      }
      if (w > 0 && w >= p_.min_keep) size_ = w;
    } else {
      const float min_logit = cur_[0].logit + std::log(p_.min_p);
      size_t i = 1;
      for (; i < size_; ++i) {
        if (cur_[i].logit < min_logit && i >= p_.min_keep) break;
      }
      size_ = i;
    }
  }
  // temperature
  if (p_.temperature <= 0.0f) {
    size_t best = 0;
    for (size_t i = 1; i < size_; ++i) {
      if (cur_[i].logit > cur_[best].logit) best = i;
    }
    cur_[0] = cur_[best];
    size_ = 1;
  } else if (p_.temperature != 1.0f) {
    for (size_t i = 0; i < size_; ++i) cur_[i].logit /= p_.temperature;
  }
  // draw
  std::uniform_real_distribution<double> dist(0.0, 1.0);
  size_t chosen = 0;
  if (size_ == 1) {
    dist(rng_);
  } else {
    float mx = cur_[0].logit;
    for (size_t i = 1; i < size_; ++i) mx = std::max(mx, cur_[i].logit);
    double sum = 0;
    for (size_t i = 0; i < size_; ++i) {
      cur_[i].p = std::exp(cur_[i].logit - mx);
      sum += cur_[i].p;
    }
    const double target = sum * dist(rng_);
    double run = 0;
    chosen = size_ - 1;
    for (size_t i = 0; i < size_; ++i) {
      run += cur_[i].p;
      if (run >= target) {
        chosen = i;
        break;
      }
    }
  }
  res.token = cur_[chosen].id;
  if (p_.n_logprobs >= 0) res.logprob = logits[res.token] - res.logprob;
  return res;
}

}  // namespace nc::engine
