#include "core/status.h"

#include <gtest/gtest.h>

namespace nc {
namespace {

Result<int> parse_positive(int v) {
  if (v <= 0) return invalid_argument("not positive");
  return v;
}

Status use(int v, int& out) {
  NC_ASSIGN_OR_RETURN(out, parse_positive(v));
  return Status::ok();
}

TEST(Status, OkAndError) {
  EXPECT_TRUE(Status::ok().is_ok());
  Status s = data_loss("truncated");
  EXPECT_FALSE(s.is_ok());
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_EQ(s.to_string(), "DataLoss: truncated");
  EXPECT_EQ(s.with_context("file.gguf").message(), "file.gguf: truncated");
}

TEST(Result, ValueOrStatusAndMacros) {
  int out = 0;
  EXPECT_TRUE(use(5, out).is_ok());
  EXPECT_EQ(out, 5);
  Status s = use(-1, out);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(out, 5);
}

}  // namespace
}  // namespace nc
