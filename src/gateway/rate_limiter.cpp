#include "gateway/rate_limiter.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace nc::gateway {

void RateLimiter::Bucket::refill(int64_t cap, Clock::time_point now) {
  if (capacity < 0) {
    level = static_cast<double>(cap);  // a new bucket starts full
    at = now;
  } else if (now > at) {
    level += std::chrono::duration<double>(now - at).count() * static_cast<double>(cap) / 60.0;
    at = now;
  }
  level = std::min(level, static_cast<double>(cap));
  capacity = cap;
}

double RateLimiter::Bucket::seconds_until(double need, int64_t cap) const {
  if (level >= need || cap <= 0) return 0;
  return (need - level) * 60.0 / static_cast<double>(cap);
}

std::string RateLimiter::duration(double s) {
  if (s <= 0) return "0s";
  if (s < 1) return fmt::format("{}ms", std::max<int64_t>(1, static_cast<int64_t>(std::ceil(s * 1000))));
  const int64_t ms = static_cast<int64_t>(std::ceil(s * 1000));
  const int64_t minutes = ms / 60000;
  const int64_t rest_ms = ms % 60000;
  std::string secs = fmt::format("{}.{:03}", rest_ms / 1000, rest_ms % 1000);
  while (secs.back() == '0') secs.pop_back();  // "17.355", "6.", ...
  if (secs.back() == '.') secs.pop_back();
  return minutes > 0 ? fmt::format("{}m{}s", minutes, secs) : secs + "s";
}

RateLimiter::Decision RateLimiter::acquire(const std::vector<LimitedScope>& scopes, int64_t tokens,
                                           Clock::time_point now) {
  Decision d;
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<State*> states;
  states.reserve(scopes.size());
  auto refuse = [&](const char* reason, const LimitedScope& sc, int64_t limit, int64_t used, int64_t requested,
                    double retry) {
    d.reason = reason;
    d.scope = sc.key;
    d.limit = limit;
    d.used = used;
    d.requested = requested;
    d.retry_after_s = retry;
  };
  for (const auto& sc : scopes) {
    State& st = states_[sc.key];
    states.push_back(&st);
    if (sc.limits.rpm > 0) st.requests.refill(sc.limits.rpm, now);
    if (sc.limits.tpm > 0) st.tokens.refill(sc.limits.tpm, now);
    if (!d.reason.empty()) continue;
    if (sc.limits.tpm > 0 && tokens > sc.limits.tpm) {
      refuse("too_large", sc, sc.limits.tpm, 0, tokens, 0);
    } else if (sc.limits.max_concurrent > 0 && st.running >= sc.limits.max_concurrent) {
      refuse("concurrency", sc, sc.limits.max_concurrent, st.running, 1, 1.0);
    } else if (sc.limits.rpm > 0 && st.requests.level < 1.0) {
      refuse("requests", sc, sc.limits.rpm, sc.limits.rpm - static_cast<int64_t>(std::floor(st.requests.level)), 1,
             st.requests.seconds_until(1.0, sc.limits.rpm));
    } else if (sc.limits.tpm > 0 && st.tokens.level < static_cast<double>(tokens)) {
      refuse("tokens", sc, sc.limits.tpm, sc.limits.tpm - static_cast<int64_t>(std::floor(st.tokens.level)), tokens,
             st.tokens.seconds_until(static_cast<double>(tokens), sc.limits.tpm));
    }
  }
  d.admitted = d.reason.empty();
  if (d.admitted) {
    for (size_t i = 0; i < scopes.size(); ++i) {
      if (scopes[i].limits.rpm > 0) states[i]->requests.level -= 1.0;
      if (scopes[i].limits.tpm > 0) states[i]->tokens.level -= static_cast<double>(tokens);
      states[i]->running += 1;
    }
  }
  // Headers: the scope with the least left in each dimension.
  int req_i = -1, tok_i = -1;
  for (size_t i = 0; i < scopes.size(); ++i) {
    if (scopes[i].limits.rpm > 0 && (req_i < 0 || states[i]->requests.level < states[req_i]->requests.level))
      req_i = static_cast<int>(i);
    if (scopes[i].limits.tpm > 0 && (tok_i < 0 || states[i]->tokens.level < states[tok_i]->tokens.level))
      tok_i = static_cast<int>(i);
  }
  auto put_headers = [&](const Bucket& b, int64_t cap, const char* limit, const char* remaining, const char* reset) {
    d.headers.emplace_back(limit, std::to_string(cap));
    d.headers.emplace_back(remaining, std::to_string(std::max<int64_t>(0, static_cast<int64_t>(std::floor(b.level)))));
    d.headers.emplace_back(reset, duration(b.seconds_until(static_cast<double>(cap), cap)));
  };
  if (req_i >= 0) {
    put_headers(states[req_i]->requests, scopes[req_i].limits.rpm, "x-ratelimit-limit-requests", "x-ratelimit-remaining-requests",
                "x-ratelimit-reset-requests");
  }
  if (tok_i >= 0) {
    put_headers(states[tok_i]->tokens, scopes[tok_i].limits.tpm, "x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens",
                "x-ratelimit-reset-tokens");
  }
  return d;
}

void RateLimiter::release(const std::vector<LimitedScope>& scopes, int64_t unused_tokens, Clock::time_point now) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& sc : scopes) {
    auto it = states_.find(sc.key);
    if (it == states_.end()) continue;
    State& st = it->second;
    st.running = std::max<int64_t>(0, st.running - 1);
    if (sc.limits.tpm > 0 && unused_tokens > 0) {
      st.tokens.refill(sc.limits.tpm, now);
      st.tokens.level = std::min(st.tokens.level + static_cast<double>(unused_tokens), static_cast<double>(sc.limits.tpm));
    }
  }
}

}  // namespace nc::gateway
