// Python semantics of the operations a template performs on values: truthiness, ==, ordering,
// `in`, iteration, len(), arithmetic, and Jinja2's sandboxed attribute/item lookup (a missing key
// or attribute is Undefined; using an Undefined beyond printing, testing or iterating raises).
// Stateless free functions; thread-safe. Errors are thrown as TemplateError (see error.h).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "engine/chat/value.h"

namespace nc::chat::detail {

enum class BinaryOp { kAdd, kSub, kMul, kDiv, kFloorDiv, kMod, kPow };

// Largest string or list an operation may build (repetition, joins); larger is ResourceExhausted.
inline constexpr size_t kMaxValueBytes = 16u << 20;

bool truthy(const Value& v);
bool py_equal(const Value& a, const Value& b);
// Three-way compare for <, <=, >, >= (op names the operator for the TypeError message).
int py_compare(const Value& a, const Value& b, const char* op);
bool py_contains(const Value& container, const Value& item);
// The items a for-loop over `v` visits (list items, dict keys, str characters, nothing for Undefined).
List py_iterate(const Value& v);
size_t py_len(const Value& v);
Value binary_op(BinaryOp op, const Value& a, const Value& b);
Value negate(const Value& v);
Value unary_plus(const Value& v);

// Throws Jinja2's UndefinedError for `v` (which must be Undefined).
[[noreturn]] void undefined_error(const Value& v);
// Throws UndefinedError if `v` is Undefined; returns `v` otherwise.
const Value& require_defined(const Value& v);

// environment.getattr / environment.getitem of ImmutableSandboxedEnvironment.
Value py_getattr(const Value& obj, std::string_view name);
Value py_getitem(const Value& obj, const Value& key);
// obj[start:stop:step]; absent bounds are None.
Value py_slice(const Value& obj, const Value& start, const Value& stop, const Value& step);

// markupsafe.escape.
std::string html_escape(std::string_view s);
// Value::string(s) checked against kMaxValueBytes.
Value make_string(std::string s, bool safe = false);

}  // namespace nc::chat::detail
