// ApiError: the one error contract of every HTTP API of neocloud (inference, admin, usage, jobs), in
// OpenAI's shape — {"error": {"message", "type", "param", "code"}} with an HTTP status and, for limits,
// retry headers — and the one table from an internal Status to it (api_error_of). Modules that
// implement an API without HTTP (gateway/admin_api, capacity/jobs_api) answer with ApiResponse; the HTTP
// edge writes it. Internal failures (Internal, DataLoss, unknown) are logged with their message and
// reach the client only as "The server had an error", so no internal detail leaks.
// Plain values and pure functions; any thread.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"

namespace nc {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct ApiError {
  int status = 400;
  std::string type = "invalid_request_error", code, message, param;  // code/param empty: null
  double retry_after_s = -1;  // >= 0: send retry-after / retry-after-ms
  bool should_retry = true;   // false: x-should-retry: false (the SDKs would otherwise retry a 429)
  Headers headers;            // extra headers (x-ratelimit-*)
};

// Builds an error (a function, not braces: GCC 12 miscompiles aggregate temporaries in coroutines).
ApiError api_error(int status, std::string message, std::string param = "", std::string code = "",
                   std::string type = "invalid_request_error");

// The one Status -> HTTP table (param: `param`, else the Status's field):
//   InvalidArgument 400 | OutOfRange 400 context_length_exceeded | Unimplemented 400 unsupported_parameter
//   Unauthenticated 401 invalid_api_key | PermissionDenied 403 insufficient_permissions
//   NotFound 404 not_found | AlreadyExists 409 already_exists | FailedPrecondition 409 conflict
//   ResourceExhausted 429 rate_limit_exceeded | Cancelled 499 cancelled | Unavailable 503 (server_error)
//   DeadlineExceeded 504 timeout (server_error) | Internal, DataLoss 500 (server_error, message hidden).
ApiError api_error_of(const Status& s, std::string param = "");

// {"error": {...}} (key order as OpenAI: message, type, param, code).
nlohmann::ordered_json error_body(const ApiError& e);

// An answer of an API module: a status and a JSON body (an error body for errors), plus headers.
struct ApiResponse {
  int status = 200;
  nlohmann::ordered_json body;
  Headers headers;
};
ApiResponse error_response(const ApiError& e);
ApiResponse error_response(const Status& s, std::string param = "");

}  // namespace nc
