// QueryString: the one parser of URL query strings (and percent-decoding of path segments) for every
// API: `name=value` pairs split on '&', percent-decoded ('+' is a space), `name[]` read as `name`.
// A plain value; parse once per request, read from any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace nc {

// %XX decoded; '+' becomes a space only when `plus_is_space` (query strings, not paths); a stray '%' is
// kept as it is.
std::string percent_decode(std::string_view s, bool plus_is_space = true);

class QueryString {
 public:
  QueryString() = default;
  // `query`: the raw text after '?', or a whole request target (everything up to '?' is skipped).
  explicit QueryString(std::string_view query);
  // The request target's query part ("" when it has none) and path part.
  static std::string_view query_of(std::string_view target);
  static std::string_view path_of(std::string_view target);

  // The last value given for `name`, if any.
  std::optional<std::string> get(std::string_view name) const;
  // The last value, or `fallback` when absent.
  std::string get_or(std::string_view name, std::string_view fallback) const;
  // Every value of `name`: repeated parameters and comma-separated lists, empty items dropped.
  std::vector<std::string> list(std::string_view name) const;
  const std::vector<std::pair<std::string, std::string>>& pairs() const { return pairs_; }

 private:
  std::vector<std::pair<std::string, std::string>> pairs_;
};

}  // namespace nc
