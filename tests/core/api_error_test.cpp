// The one Status -> HTTP table (core/api_error.h) and the error body every API answers with.
#include "core/api_error.h"

#include <gtest/gtest.h>

namespace nc {
namespace {

struct Row {
  Status status;
  int http;
  const char* type;
  const char* code;  // "" : null
};

TEST(ApiError, EveryStatusCodeHasOneAnswer) {
  const std::vector<Row> rows = {
      {invalid_argument("bad"), 400, "invalid_request_error", ""},
      {out_of_range("too long"), 400, "invalid_request_error", "context_length_exceeded"},
      {unimplemented("no"), 400, "invalid_request_error", "unsupported_parameter"},
      {Status(StatusCode::kUnauthenticated, "who"), 401, "invalid_request_error", "invalid_api_key"},
      {Status(StatusCode::kPermissionDenied, "no"), 403, "invalid_request_error", "insufficient_permissions"},
      {not_found("gone"), 404, "invalid_request_error", "not_found"},
      {Status(StatusCode::kAlreadyExists, "dup"), 409, "invalid_request_error", "already_exists"},
      // Was 500 in the inference API and 400 in the admin API: a request that conflicts with the
      // resource's state is a 409 everywhere.
      {failed_precondition("state"), 409, "invalid_request_error", "conflict"},
      {resource_exhausted("slow down"), 429, "requests", "rate_limit_exceeded"},
      {Status(StatusCode::kCancelled, "gone"), 499, "invalid_request_error", "cancelled"},
      {unavailable("later"), 503, "server_error", ""},
      {Status(StatusCode::kDeadlineExceeded, "slow"), 504, "server_error", "timeout"},
  };
  for (const Row& r : rows) {
    const ApiError e = api_error_of(r.status);
    EXPECT_EQ(e.status, r.http) << r.status.to_string();
    EXPECT_EQ(e.type, r.type) << r.status.to_string();
    EXPECT_EQ(e.code, r.code) << r.status.to_string();
    EXPECT_EQ(e.message, r.status.message()) << "client errors keep their message";
  }
}

TEST(ApiError, InternalFailuresHideTheirMessage) {
  for (const Status& s : {internal_error("db password is hunter2"), data_loss("page 7 of /var/lib/x corrupt")}) {
    const ApiError e = api_error_of(s);
    EXPECT_EQ(e.status, 500);
    EXPECT_EQ(e.type, "server_error");
    EXPECT_EQ(e.message.find("hunter2"), std::string::npos);
    EXPECT_EQ(e.message.find("/var/lib"), std::string::npos);
    EXPECT_FALSE(e.message.empty());
  }
}

TEST(ApiError, StorageErrorsDoNotShowTheirSql) {
  const Status s(StatusCode::kAlreadyExists,
                 "sqlite: UNIQUE constraint failed: projects.org_id, projects.name (in: INSERT INTO projects (id, org_id)");
  const ApiError e = api_error_of(s);
  EXPECT_EQ(e.status, 409);
  EXPECT_EQ(e.code, "already_exists");
  EXPECT_EQ(e.message.find("INSERT"), std::string::npos) << e.message;
  EXPECT_EQ(e.message.find("sqlite"), std::string::npos) << e.message;
}

TEST(ApiError, ParamComesFromTheStatusFieldUnlessGiven) {
  const Status s = invalid_argument("'n' must be at least 1").with_field("n");
  EXPECT_EQ(api_error_of(s).param, "n");
  EXPECT_EQ(api_error_of(s, "messages").param, "messages");
  EXPECT_EQ(api_error_of(s.with_context("while parsing")).param, "n") << "context keeps the field";
  EXPECT_EQ(api_error_of(invalid_argument("x")).param, "");
}

TEST(ApiError, BodyHasOpenAisShapeAndKeyOrder) {
  ApiError e = api_error(400, "bad \"quote\"", "messages");
  const auto body = error_body(e);
  EXPECT_EQ(body.dump(), R"({"error":{"message":"bad \"quote\"","type":"invalid_request_error","param":"messages","code":null}})");
  e = api_error(404, "nope", "", "model_not_found");
  EXPECT_EQ(error_body(e)["error"]["param"], nullptr);
  EXPECT_EQ(error_body(e)["error"]["code"], "model_not_found");
}

TEST(ApiError, ResponseCarriesStatusAndHeaders) {
  ApiError e = api_error(429, "slow", "", "rate_limit_exceeded", "requests");
  e.headers = {{"x-ratelimit-remaining-requests", "0"}};
  const ApiResponse r = error_response(e);
  EXPECT_EQ(r.status, 429);
  ASSERT_EQ(r.headers.size(), 1u);
  EXPECT_EQ(r.body["error"]["type"], "requests");
  EXPECT_EQ(error_response(not_found("job 'x' not found")).status, 404);
}

}  // namespace
}  // namespace nc
