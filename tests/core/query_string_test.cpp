// QueryString and percent_decode (core/query_string.h): the one query parser of every API.
#include "core/query_string.h"

#include <gtest/gtest.h>

namespace nc {
namespace {

TEST(QueryString, DecodesNamesAndValues) {
  const QueryString q("a=1&b=x%20y&c=x+y&d%5B%5D=z&e=&f");
  EXPECT_EQ(q.get("a"), "1");
  EXPECT_EQ(q.get("b"), "x y");
  EXPECT_EQ(q.get("c"), "x y") << "'+' is a space in a query string";
  EXPECT_EQ(q.get("d"), "z") << "name[] reads as name";
  EXPECT_EQ(q.get("e"), "");
  EXPECT_EQ(q.get("f"), "");
  EXPECT_EQ(q.get("g"), std::nullopt);
  EXPECT_EQ(q.get_or("g", "def"), "def");
}

TEST(QueryString, LastValueWinsAndListsJoinRepeatsAndCommas) {
  const QueryString q("limit=5&limit=7&state=queued,running&state=done&state=&state=,,");
  EXPECT_EQ(q.get("limit"), "7");
  EXPECT_EQ(q.list("state"), (std::vector<std::string>{"queued", "running", "done"}));
  EXPECT_TRUE(q.list("other").empty());
}

TEST(QueryString, SplitsATarget) {
  EXPECT_EQ(QueryString::path_of("/v1/jobs?limit=2"), "/v1/jobs");
  EXPECT_EQ(QueryString::query_of("/v1/jobs?limit=2"), "limit=2");
  EXPECT_EQ(QueryString::query_of("/v1/jobs"), "");
  EXPECT_EQ(QueryString::path_of("/v1/jobs"), "/v1/jobs");
  EXPECT_EQ(QueryString(QueryString::query_of("/x?a=%41")).get("a"), "A");
}

TEST(PercentDecode, PathsKeepPlusAndStrayPercents) {
  EXPECT_EQ(percent_decode("a+b%2Fc", /*plus_is_space=*/false), "a+b/c");
  EXPECT_EQ(percent_decode("100%"), "100%");
  EXPECT_EQ(percent_decode("%zz%4"), "%zz%4");
  EXPECT_EQ(percent_decode("%e2%82%ac"), "\xe2\x82\xac");
  EXPECT_EQ(percent_decode("%00").size(), 1u);
}

}  // namespace
}  // namespace nc
