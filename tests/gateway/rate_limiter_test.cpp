// RateLimiter: token buckets for requests and tokens per minute and a concurrency counter per scope;
// all-or-nothing admission across scopes; refill over time; unused tokens returned; OpenAI's headers.
#include "gateway/rate_limiter.h"

#include <gtest/gtest.h>

#include <map>

namespace nc::gateway {
namespace {

using Clock = RateLimiter::Clock;

std::map<std::string, std::string> headers(const RateLimiter::Decision& d) {
  return {d.headers.begin(), d.headers.end()};
}

TEST(RateLimiter, RequestsPerMinuteRefillContinuously) {
  RateLimiter rl;
  const std::vector<LimitedScope> scopes = {{"key:a", {.rpm = 3}}};
  const auto t0 = Clock::now();
  for (int i = 0; i < 3; ++i) {
    auto d = rl.acquire(scopes, 0, t0);
    ASSERT_TRUE(d.admitted);
    EXPECT_EQ(headers(d)["x-ratelimit-remaining-requests"], std::to_string(2 - i));
    EXPECT_EQ(headers(d)["x-ratelimit-limit-requests"], "3");
    rl.release(scopes, 0, t0);
  }
  auto d = rl.acquire(scopes, 0, t0);
  EXPECT_FALSE(d.admitted);
  EXPECT_EQ(d.reason, "requests");
  EXPECT_EQ(d.scope, "key:a");
  EXPECT_NEAR(d.retry_after_s, 20.0, 1e-6);  // one request refills in 60/3 s
  EXPECT_EQ(headers(d)["x-ratelimit-reset-requests"], "1m0s");
  // 20 s later exactly one more fits.
  EXPECT_TRUE(rl.acquire(scopes, 0, t0 + std::chrono::seconds(20)).admitted);
  EXPECT_FALSE(rl.acquire(scopes, 0, t0 + std::chrono::seconds(20)).admitted);
}

TEST(RateLimiter, TokensAreReservedAndUnusedOnesComeBack) {
  RateLimiter rl;
  const std::vector<LimitedScope> scopes = {{"project:p", {.tpm = 100}}};
  const auto t0 = Clock::now();
  auto d = rl.acquire(scopes, 60, t0);
  ASSERT_TRUE(d.admitted);
  EXPECT_EQ(headers(d)["x-ratelimit-remaining-tokens"], "40");
  auto refused = rl.acquire(scopes, 60, t0);
  EXPECT_FALSE(refused.admitted);
  EXPECT_EQ(refused.reason, "tokens");
  EXPECT_EQ(refused.used, 60);
  EXPECT_EQ(refused.requested, 60);
  EXPECT_NEAR(refused.retry_after_s, 20 * 60.0 / 100, 1e-6);
  rl.release(scopes, 50, t0);  // used 10 of the 60 reserved
  EXPECT_TRUE(rl.acquire(scopes, 60, t0).admitted);
  // More than the bucket can ever hold: refused for good, not "retry later".
  auto big = rl.acquire(scopes, 101, t0 + std::chrono::hours(1));
  EXPECT_FALSE(big.admitted);
  EXPECT_EQ(big.reason, "too_large");
}

TEST(RateLimiter, AdmissionIsAllOrNothingAcrossScopes) {
  RateLimiter rl;
  const auto t0 = Clock::now();
  const std::vector<LimitedScope> a = {{"key:a", {.rpm = 10}}, {"org:o", {.rpm = 2}}};
  const std::vector<LimitedScope> b = {{"key:b", {.rpm = 10}}, {"org:o", {.rpm = 2}}};
  EXPECT_TRUE(rl.acquire(a, 0, t0).admitted);
  EXPECT_TRUE(rl.acquire(b, 0, t0).admitted);
  auto d = rl.acquire(a, 0, t0);
  EXPECT_FALSE(d.admitted);
  EXPECT_EQ(d.scope, "org:o");
  // The refused request took nothing from key:a: its headers (tightest scope) show the org's 0 and
  // key:a still has 9 left once the org refills.
  EXPECT_EQ(headers(d)["x-ratelimit-remaining-requests"], "0");
  const std::vector<LimitedScope> only_key = {{"key:a", {.rpm = 10}}};
  EXPECT_EQ(headers(rl.acquire(only_key, 0, t0))["x-ratelimit-remaining-requests"], "8");
}

TEST(RateLimiter, ConcurrencyCountsRunningRequests) {
  RateLimiter rl;
  const std::vector<LimitedScope> s = {{"key:c", {.max_concurrent = 2}}};
  EXPECT_TRUE(rl.acquire(s, 0).admitted);
  EXPECT_TRUE(rl.acquire(s, 0).admitted);
  auto d = rl.acquire(s, 0);
  EXPECT_FALSE(d.admitted);
  EXPECT_EQ(d.reason, "concurrency");
  rl.release(s, 0);
  EXPECT_TRUE(rl.acquire(s, 0).admitted);
}

TEST(RateLimiter, NoLimitsMeansNoHeaders) {
  RateLimiter rl;
  auto d = rl.acquire({{"key:x", {}}}, 1000000);
  EXPECT_TRUE(d.admitted);
  EXPECT_TRUE(d.headers.empty());
}

TEST(RateLimiter, DurationsAreGoStyle) {
  EXPECT_EQ(RateLimiter::duration(0), "0s");
  EXPECT_EQ(RateLimiter::duration(0.12), "120ms");
  EXPECT_EQ(RateLimiter::duration(1), "1s");
  EXPECT_EQ(RateLimiter::duration(17.355), "17.355s");
  EXPECT_EQ(RateLimiter::duration(87.36), "1m27.36s");
  EXPECT_EQ(RateLimiter::duration(360), "6m0s");
}

}  // namespace
}  // namespace nc::gateway
