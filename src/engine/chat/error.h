// Internal error plumbing of the chat-template engine (not part of the public API).
// Inside the engine, errors travel as a thrown TemplateError carrying a Status; ChatTemplate::parse and
// ChatTemplate::render catch it (and std::bad_alloc / std::length_error) so no exception ever leaves
// the module. This keeps the evaluator readable: Python/Jinja2 semantics raise from deep inside
// operators, filters and methods, exactly like the reference implementation does.
#pragma once

#include <string>
#include <utility>

#include "core/status.h"

namespace nc::chat::detail {

struct TemplateError {
  Status status;
  bool located = false;  // the message already says where (or must stay verbatim: raise_exception)
};

[[noreturn]] inline void fail(StatusCode code, std::string message) {
  throw TemplateError{Status(code, std::move(message))};
}
// A Python/Jinja2 run-time error (TypeError, ValueError, UndefinedError, ...): InvalidArgument.
[[noreturn]] inline void runtime_error(std::string message) {
  fail(StatusCode::kInvalidArgument, std::move(message));
}
// A construct Jinja2 has but this engine does not implement.
[[noreturn]] inline void unsupported(const std::string& what) {
  fail(StatusCode::kUnimplemented, "unsupported construct: " + what);
}

}  // namespace nc::chat::detail
