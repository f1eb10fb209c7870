// Bounded JSON parsing for everything that arrives from outside (request bodies, stored documents):
// nesting deeper than kMaxJsonDepth is refused before nlohmann::json builds anything, so no recursive
// copy, comparison, serialization or destruction of a parsed value can exhaust the stack, whatever a
// client sends. Pure functions; any thread.
#pragma once

#include <nlohmann/json.hpp>

#include <string_view>

#include "core/status.h"

namespace nc {

// Real documents nest a few levels (a JSON Schema in a tool definition: a few dozen at most).
constexpr int kMaxJsonDepth = 128;

// The deepest array/object nesting of `text` (strings and escapes skipped; a malformed text gives the
// depth reached so far). Stops counting at `stop_at` + 1.
int json_depth(std::string_view text, int stop_at = kMaxJsonDepth);
// InvalidArgument naming the limit when `text` nests deeper than `max_depth`.
Status check_json_depth(std::string_view text, int max_depth = kMaxJsonDepth);

// Parses `text` (depth-checked first). InvalidArgument: "the JSON body nests deeper than 128 levels" or
// "... is not valid JSON: <where>".
Result<nlohmann::json> parse_json(std::string_view text, int max_depth = kMaxJsonDepth);
Result<nlohmann::ordered_json> parse_ordered_json(std::string_view text, int max_depth = kMaxJsonDepth);
// For code written against nlohmann's non-throwing parse: the value, or a discarded value (is_discarded())
// when the text is invalid or too deep.
nlohmann::json parse_json_or_discarded(std::string_view text, int max_depth = kMaxJsonDepth);

}  // namespace nc
