// Status and Result<T>: the one error type used across every neocloud module (LevelDB style).
// A Status is either OK or carries a code and a human-readable message saying what is wrong, and
// optionally the input field it is about (a request parameter such as "temperature" or "messages[2].role";
// the HTTP edge sends it as OpenAI's error `param`).
// Values are cheap to copy when OK; they are plain values and may be used from any thread.
#pragma once

#include <cassert>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

namespace nc {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,    // the caller's input is malformed (bad JSON, bad GGUF, bad flag)
  kNotFound,           // a named thing does not exist (file, model, key)
  kAlreadyExists,
  kPermissionDenied,   // authenticated but not allowed
  kUnauthenticated,    // no or bad credentials
  kResourceExhausted,  // quota, budget, rate limit, memory, KV blocks
  kFailedPrecondition, // the system is not in a state to do this
  kOutOfRange,         // e.g. a context longer than the model supports
  kUnimplemented,      // a feature that does not exist yet: say which
  kInternal,           // a bug or an unexpected failure of something we depend on
  kUnavailable,        // try again later (loading, shutting down)
  kDataLoss,           // a file is truncated or corrupt
  kCancelled,
  kDeadlineExceeded,
};

std::string_view status_code_name(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return Status(); }
  bool is_ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "InvalidArgument: <message>" or "OK".
  std::string to_string() const;

  // Returns a copy whose message is "<context>: <message>", for adding where an error happened.
  Status with_context(std::string_view context) const;
  // The input field the error is about ("" when none).
  const std::string& field() const { return field_; }
  Status with_field(std::string field) const {
    Status s = *this;
    s.field_ = std::move(field);
    return s;
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
  std::string field_;
};

inline Status invalid_argument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
inline Status not_found(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status data_loss(std::string m) { return {StatusCode::kDataLoss, std::move(m)}; }
inline Status internal_error(std::string m) { return {StatusCode::kInternal, std::move(m)}; }
inline Status unimplemented(std::string m) { return {StatusCode::kUnimplemented, std::move(m)}; }
inline Status out_of_range(std::string m) { return {StatusCode::kOutOfRange, std::move(m)}; }
inline Status resource_exhausted(std::string m) { return {StatusCode::kResourceExhausted, std::move(m)}; }
inline Status failed_precondition(std::string m) { return {StatusCode::kFailedPrecondition, std::move(m)}; }
inline Status unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }

// Result<T> holds a T or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT
    assert(!std::get<Status>(v_).is_ok() && "Result constructed from OK status");
  }

  bool is_ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return is_ok(); }
  Status status() const { return is_ok() ? Status() : std::get<Status>(v_); }

  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace nc

#define NC_CONCAT_INNER(a, b) a##b
#define NC_CONCAT(a, b) NC_CONCAT_INNER(a, b)

// Returns the Status from the enclosing function if `expr` is not OK.
#define NC_RETURN_IF_ERROR(expr)                   \
  do {                                             \
    ::nc::Status nc_status_ = (expr);              \
    if (!nc_status_.is_ok()) return nc_status_;    \
  } while (0)

// `NC_ASSIGN_OR_RETURN(auto x, f());` unwraps a Result or returns its Status.
#define NC_ASSIGN_OR_RETURN(lhs, expr) NC_ASSIGN_OR_RETURN_IMPL(NC_CONCAT(nc_result_, __LINE__), lhs, expr)
#define NC_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                             \
  if (!tmp.is_ok()) return tmp.status();         \
  lhs = std::move(tmp).value()

// For programmer errors only (broken invariants), never for bad input.
#define NC_CHECK(cond)                                                          \
  do {                                                                          \
    if (!(cond)) ::nc::check_failed(#cond, __FILE__, __LINE__);                 \
  } while (0)

namespace nc {
[[noreturn]] void check_failed(const char* cond, const char* file, int line);
}
