// The route table's path patterns (server/router.h).
#include "server/router.h"

#include <gtest/gtest.h>

namespace nc::server {
namespace {

std::optional<std::vector<std::string>> match(std::string_view pattern, std::string_view path) {
  std::vector<std::string> params;
  if (!match_pattern(pattern, path, &params)) return std::nullopt;
  return params;
}

TEST(Router, LiteralSegmentsMatchExactly) {
  EXPECT_TRUE(match("/v1/models", "/v1/models"));
  EXPECT_FALSE(match("/v1/models", "/v1/models/"));
  EXPECT_FALSE(match("/v1/models", "//v1/models"));
  EXPECT_FALSE(match("/v1/completions", "/v1/completions/"));
  EXPECT_FALSE(match("/v1/models", "/v1/model"));
  EXPECT_FALSE(match("/v1/models", "/v1"));
}

TEST(Router, NamedSegmentsArePercentDecoded) {
  EXPECT_EQ(match("/v1/x/{a}/y", "/v1/x/a%2Fb/y"), (std::vector<std::string>{"a/b"}));
  EXPECT_EQ(match("/v1/x/{a}/y", "/v1/x//y"), (std::vector<std::string>{""}));
  EXPECT_FALSE(match("/v1/x/{a}/y", "/v1/x/a/b/y"));
  EXPECT_EQ(match("/v1/x/{a}/{b}", "/v1/x/1/a+b"), (std::vector<std::string>{"1", "a+b"})) << "'+' is not a space in a path";
}

TEST(Router, RestParameterTakesSlashes) {
  EXPECT_EQ(match("/v1/models/{id*}", "/v1/models/acme/tiny"), (std::vector<std::string>{"acme/tiny"}));
  EXPECT_EQ(match("/v1/models/{id*}", "/v1/models/acme%2Ftiny"), (std::vector<std::string>{"acme/tiny"}));
  EXPECT_EQ(match("/v1/models/{id*}", "/v1/models/"), (std::vector<std::string>{""}));
  EXPECT_FALSE(match("/v1/models/{id*}", "/v1/models"));
}

TEST(Router, TrailingStarTakesAnyRest) {
  EXPECT_TRUE(match("/v1/jobs/*", "/v1/jobs"));
  EXPECT_TRUE(match("/v1/jobs/*", "/v1/jobs/job_1/logs"));
  EXPECT_FALSE(match("/v1/jobs/*", "/v1/jobsx"));
}

TEST(Router, FirstMatchingMethodAndPatternWins) {
  Router r;
  auto h = [](Call&) -> awaitable<bool> { co_return true; };
  r.add(http::verb::get, "/health", gateway::RouteAccess::kPublic, "", h);
  r.add(http::verb::post, "/v1/completions", gateway::RouteAccess::kInference, "completions", h);
  r.add(std::nullopt, "/v1/jobs/*", gateway::RouteAccess::kInferenceOrAdmin, "jobs", h);
  std::vector<std::string> p;
  ASSERT_NE(r.match(http::verb::post, "/v1/completions", &p), nullptr);
  EXPECT_EQ(r.match(http::verb::post, "/v1/completions", &p)->scope, "completions");
  EXPECT_EQ(r.match(http::verb::get, "/v1/completions", &p), nullptr) << "wrong method";
  EXPECT_NE(r.match(http::verb::delete_, "/v1/jobs/x", &p), nullptr) << "any method";
  EXPECT_EQ(r.match(http::verb::post, "/health", &p), nullptr);
  EXPECT_TRUE(r.public_path("/health")) << "a wrong method on a public path is a 404 without a key";
  EXPECT_FALSE(r.public_path("/v1/completions"));
}

}  // namespace
}  // namespace nc::server
