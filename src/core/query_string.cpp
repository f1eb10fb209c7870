#include "core/query_string.h"

namespace nc {

namespace {
int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

std::string percent_decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+' && plus_is_space) {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::string_view QueryString::query_of(std::string_view target) {
  const size_t q = target.find('?');
  return q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
}

std::string_view QueryString::path_of(std::string_view target) { return target.substr(0, target.find('?')); }

QueryString::QueryString(std::string_view query) {
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (part.empty()) continue;
    const size_t eq = part.find('=');
    std::string name = percent_decode(part.substr(0, eq));
    if (name.size() > 2 && name.ends_with("[]")) name.resize(name.size() - 2);
    pairs_.emplace_back(std::move(name), eq == std::string_view::npos ? "" : percent_decode(part.substr(eq + 1)));
  }
}

std::optional<std::string> QueryString::get(std::string_view name) const {
  std::optional<std::string> v;
  for (const auto& [k, value] : pairs_)
    if (k == name) v = value;
  return v;
}

std::string QueryString::get_or(std::string_view name, std::string_view fallback) const {
  auto v = get(name);
  return v ? *v : std::string(fallback);
}

std::vector<std::string> QueryString::list(std::string_view name) const {
  std::vector<std::string> out;
  for (const auto& [k, value] : pairs_) {
    if (k != name) continue;
    std::string_view rest = value;
    while (true) {
      const size_t comma = rest.find(',');
      const std::string_view item = rest.substr(0, comma);
      if (!item.empty()) out.emplace_back(item);
      if (comma == std::string_view::npos) break;
      rest = rest.substr(comma + 1);
    }
  }
  return out;
}

}  // namespace nc
