#include "core/json_parse.h"

#include <fmt/format.h>

namespace nc {

int json_depth(std::string_view text, int stop_at) {
  int depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
      continue;
    }
    switch (c) {
      case '"': in_string = true; break;
      case '[':
      case '{':
        if (++depth > deepest) {
          deepest = depth;
          if (deepest > stop_at) return deepest;
        }
        break;
      case ']':
      case '}':
        if (depth > 0) --depth;
        break;
      default: break;
    }
  }
  return deepest;
}

Status check_json_depth(std::string_view text, int max_depth) {
  if (json_depth(text, max_depth) > max_depth)
    return invalid_argument(fmt::format("the JSON nests deeper than {} levels of arrays and objects", max_depth));
  return Status::ok();
}

namespace {
template <typename J>
Result<J> parse(std::string_view text, int max_depth) {
  NC_RETURN_IF_ERROR(check_json_depth(text, max_depth));
  try {
    return J::parse(text.begin(), text.end());
  } catch (const nlohmann::json::exception& e) {
    // nlohmann's message names the byte position; the library's own prefix is dropped.
    std::string what = e.what();
    if (const size_t p = what.find("] "); p != std::string::npos) what = what.substr(p + 2);
    return invalid_argument("the body is not valid JSON: " + what);
  }
}
}  // namespace

Result<nlohmann::json> parse_json(std::string_view text, int max_depth) { return parse<nlohmann::json>(text, max_depth); }
Result<nlohmann::ordered_json> parse_ordered_json(std::string_view text, int max_depth) {
  return parse<nlohmann::ordered_json>(text, max_depth);
}

nlohmann::json parse_json_or_discarded(std::string_view text, int max_depth) {
  auto r = parse_json(text, max_depth);
  if (!r.is_ok()) return nlohmann::json(nlohmann::json::value_t::discarded);
  return std::move(*r);
}

}  // namespace nc
