// Route patterns and matching (router.h).
#include "server/router.h"

#include "core/query_string.h"

namespace nc::server {

namespace {
// Split on every '/', empty segments kept: "/v1/models/" and "//v1/models" are not "/v1/models".
std::vector<std::string_view> segments(std::string_view p) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (true) {
    const size_t j = p.find('/', i);
    if (j == std::string_view::npos) {
      out.push_back(p.substr(i));
      return out;
    }
    out.push_back(p.substr(i, j - i));
    i = j + 1;
  }
}
}  // namespace

bool match_pattern(std::string_view pattern, std::string_view path, std::vector<std::string>* params) {
  const auto pat = segments(pattern), got = segments(path);
  std::vector<std::string> found;
  for (size_t i = 0; i < pat.size(); ++i) {
    if (pat[i] == "*" && i + 1 == pat.size()) {
      if (params) *params = std::move(found);
      return true;  // the rest (possibly nothing)
    }
    if (i >= got.size()) return false;
    if (i + 1 == pat.size() && pat[i].size() >= 3 && pat[i].front() == '{' && pat[i].ends_with("*}")) {
      // {name*}: the rest of the path, slashes included (model ids like "org/model").
      const size_t start = static_cast<size_t>(got[i].data() - path.data());
      found.push_back(percent_decode(path.substr(start), /*plus_is_space=*/false));
      if (params) *params = std::move(found);
      return true;
    }
    if (pat[i].size() >= 2 && pat[i].front() == '{' && pat[i].back() == '}') {
      found.push_back(percent_decode(got[i], /*plus_is_space=*/false));
    } else if (pat[i] != got[i]) {
      return false;
    }
  }
  if (got.size() != pat.size()) return false;
  if (params) *params = std::move(found);
  return true;
}

void Router::add(std::optional<http::verb> method, std::string pattern, gateway::RouteAccess access, std::string scope,
                 RouteHandler handler, std::optional<uint64_t> streamed_body_limit) {
  routes_.push_back(Route{method, std::move(pattern), access, std::move(scope), std::move(handler), streamed_body_limit});
}

bool Router::public_path(std::string_view path) const {
  for (const Route& r : routes_) {
    if (r.access == gateway::RouteAccess::kPublic && match_pattern(r.pattern, path, nullptr)) return true;
  }
  return false;
}

const Route* Router::match(http::verb method, std::string_view path, std::vector<std::string>* params) const {
  for (const Route& r : routes_) {
    if (r.method && *r.method != method) continue;
    if (match_pattern(r.pattern, path, params)) return &r;
  }
  return nullptr;
}

}  // namespace nc::server
