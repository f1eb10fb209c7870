// Bounded JSON parsing (core/json_parse.h): hostile nesting is refused before anything recursive runs.
#include "core/json_parse.h"

#include <gtest/gtest.h>

#include <string>

namespace nc {
namespace {

std::string nested(int depth, char open = '[', char close = ']') {
  return std::string(depth, open) + std::string(depth, close);
}

TEST(JsonParse, DepthCountsArraysAndObjectsNotStrings) {
  EXPECT_EQ(json_depth("1"), 0);
  EXPECT_EQ(json_depth("[]"), 1);
  EXPECT_EQ(json_depth(R"({"a":[{"b":[]}]})"), 4);
  EXPECT_EQ(json_depth(R"({"a":"[[[[[[{{{{"})"), 1) << "brackets inside strings do not count";
  EXPECT_EQ(json_depth(R"(["\"[[[["])"), 1) << "escaped quotes do not end the string";
  EXPECT_EQ(json_depth(R"(["\\", [[]]])"), 3) << "an escaped backslash does end the escape";
}

TEST(JsonParse, DepthStopsCountingPastTheLimit) {
  const std::string deep = nested(1'000'000);
  EXPECT_EQ(json_depth(deep, 10), 11);
}

TEST(JsonParse, AcceptsUpToTheLimitAndRefusesDeeper) {
  EXPECT_TRUE(parse_json(nested(kMaxJsonDepth)).is_ok());
  auto r = parse_json(nested(kMaxJsonDepth + 1));
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("128"), std::string::npos) << r.status().message();
}

TEST(JsonParse, HundredThousandLevelsAreRefusedWithoutRecursion) {
  // ~200 KB, the body that used to crash `serve` (recursive destruction of the parsed value).
  std::string body = R"({"model":"m","data":)" + nested(100'000, '{', '}') + "}";
  EXPECT_FALSE(check_json_depth(body).is_ok());
  EXPECT_FALSE(parse_json(body).is_ok());
  EXPECT_FALSE(parse_ordered_json(body).is_ok());
  EXPECT_TRUE(parse_json_or_discarded(body).is_discarded());
  // Arrays of objects mixed: the deepest path counts.
  std::string mixed;
  for (int i = 0; i < 50'000; ++i) mixed += R"({"a":[)";
  EXPECT_FALSE(parse_json(mixed).is_ok()) << "malformed and deep: refused either way";
}

TEST(JsonParse, InvalidJsonNamesWhere) {
  auto r = parse_json(R"({"a": tru})");
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(r.status().message().empty());
  EXPECT_TRUE(parse_json_or_discarded("{").is_discarded());
  EXPECT_EQ((*parse_json(R"({"a":[1,2]})"))["a"][1], 2);
}

TEST(JsonParse, OrderedKeepsKeyOrder) {
  auto r = parse_ordered_json(R"({"z":1,"a":2})");
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->dump(), R"({"z":1,"a":2})");
}

}  // namespace
}  // namespace nc
