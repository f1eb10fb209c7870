// RateLimiter: requests per minute, tokens per minute and concurrent requests, per scope (an API key,
// a project, an organization), in this process's memory — the hot path never touches the database.
//
// Requests and tokens are token buckets that refill continuously (capacity = the per-minute limit,
// refill = limit / 60 per second), as OpenAI describes its limits. A request is admitted against ALL
// its scopes at once or none: it takes 1 request, `tokens` tokens (prompt + max_tokens, reserved at
// admission) and one concurrency slot from each. release() gives the slot back and returns the
// tokens that were reserved but not used (capped at the capacity). A request that needs more tokens
// than a bucket can ever hold is refused for good ("too_large").
//
// Limits change at run time: acquire() takes the current limits of each scope; a bucket whose limit
// changed keeps its level, clamped to the new capacity. Several processes on one PostgreSQL each keep
// their own buckets (documented limit: the effective cluster limit is per process).
//
// Thread-safety: all methods are thread-safe (one mutex; every call is O(scopes)).
#pragma once
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/api_error.h"

namespace nc::gateway {

using Headers = nc::Headers;  // core/api_error.h

struct ScopeLimits {
  int64_t rpm = 0, tpm = 0, max_concurrent = 0;  // 0: unlimited
};

struct LimitedScope {
  std::string key;  // e.g. "key:key_ab12", "project:proj_..", "org:org_.."
  ScopeLimits limits;
};

class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;

  struct Decision {
    bool admitted = false;
    // When refused: "requests", "tokens", "concurrency" or "too_large"; the scope that refused;
    // its limit, what it had used and what the request asked for; seconds until a retry can pass.
    std::string reason, scope;
    int64_t limit = 0, used = 0, requested = 0;
    double retry_after_s = 0;
    // x-ratelimit-{limit,remaining,reset}-{requests,tokens} of the tightest scope (after this request
    // when admitted); empty for a dimension no scope limits.
    Headers headers;
  };

  Decision acquire(const std::vector<LimitedScope>& scopes, int64_t tokens, Clock::time_point now = Clock::now());
  // Gives back a request admitted by acquire(): its concurrency slot and `unused_tokens`.
  void release(const std::vector<LimitedScope>& scopes, int64_t unused_tokens, Clock::time_point now = Clock::now());

  // Go-style duration as OpenAI writes reset headers: "120ms", "1s", "17.355s", "1m27.36s", "6m0s".
  static std::string duration(double seconds);

 private:
  struct Bucket {
    double level = 0;
    int64_t capacity = -1;  // -1: never used
    Clock::time_point at;
    void refill(int64_t cap, Clock::time_point now);
    double seconds_until(double need, int64_t cap) const;
  };
  struct State {
    Bucket requests, tokens;
    int64_t running = 0;
  };

  std::mutex mu_;
  std::unordered_map<std::string, State> states_;
};

}  // namespace nc::gateway
