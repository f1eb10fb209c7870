#include "core/api_error.h"

#include "core/log.h"

namespace nc {

ApiError api_error(int status, std::string message, std::string param, std::string code, std::string type) {
  ApiError e;
  e.status = status;
  e.message = std::move(message);
  e.param = std::move(param);
  e.code = std::move(code);
  e.type = std::move(type);
  return e;
}

ApiError api_error_of(const Status& s, std::string param) {
  ApiError e;
  e.message = s.message();
  e.param = param.empty() ? s.field() : std::move(param);
  switch (s.code()) {
    case StatusCode::kOk: e.status = 200; break;
    case StatusCode::kInvalidArgument: e.status = 400; break;
    case StatusCode::kOutOfRange: e.status = 400; e.code = "context_length_exceeded"; break;
    case StatusCode::kUnimplemented: e.status = 400; e.code = "unsupported_parameter"; break;
    case StatusCode::kUnauthenticated: e.status = 401; e.code = "invalid_api_key"; break;
    case StatusCode::kPermissionDenied: e.status = 403; e.code = "insufficient_permissions"; break;
    case StatusCode::kNotFound: e.status = 404; e.code = "not_found"; break;
    case StatusCode::kAlreadyExists: e.status = 409; e.code = "already_exists"; break;
    case StatusCode::kFailedPrecondition: e.status = 409; e.code = "conflict"; break;
    case StatusCode::kResourceExhausted:
      e.status = 429;
      if (s.field() == "budget") {  // a budget, not a rate: OpenAI's insufficient_quota
        e.type = e.code = "insufficient_quota";
        e.param.clear();
      } else {
        e.type = "requests";
        e.code = "rate_limit_exceeded";
      }
      break;
    case StatusCode::kCancelled: e.status = 499; e.code = "cancelled"; break;
    case StatusCode::kUnavailable: e.status = 503; e.type = "server_error"; break;
    case StatusCode::kDeadlineExceeded: e.status = 504; e.type = "server_error"; e.code = "timeout"; break;
    case StatusCode::kInternal:
    case StatusCode::kDataLoss:
    default:
      NC_LOG_ERROR("internal error answered as 500: {}", s.to_string());
      e.status = 500;
      e.type = "server_error";
      e.message = "The server had an error while processing your request.";
      break;
  }
  // A database error carries its SQL ("... (in: INSERT INTO ...)", storage/): never shown to clients.
  if (e.status < 500 && e.message.find(" (in: ") != std::string::npos) {
    NC_LOG_WARN("storage error answered as {}: {}", e.status, s.to_string());
    e.message = s.code() == StatusCode::kAlreadyExists ? "A resource with this name or id already exists."
                                                       : "The request conflicts with the stored data.";
  }
  return e;
}

nlohmann::ordered_json error_body(const ApiError& e) {
  using oj = nlohmann::ordered_json;
  oj err = oj::object();
  err["message"] = e.message;
  err["type"] = e.type;
  err["param"] = e.param.empty() ? oj() : oj(e.param);
  err["code"] = e.code.empty() ? oj() : oj(e.code);
  return oj{{"error", std::move(err)}};
}

ApiResponse error_response(const ApiError& e) {
  ApiResponse r;
  r.status = e.status;
  r.body = error_body(e);
  r.headers = e.headers;
  return r;
}

ApiResponse error_response(const Status& s, std::string param) { return error_response(api_error_of(s, std::move(param))); }

}  // namespace nc
