// The route table of the API server: method + path pattern -> handler, one line per route, each with
// who may call it (gateway::RouteAccess) and the endpoint scope name API keys' scopes use. Patterns are
// literal segments, `{name}` (one segment, percent-decoded into the call's params), a trailing
// `{name*}` (the rest of the path, slashes included: model ids like "org/model") and a trailing `*`
// (the rest of the path, for APIs that dispatch their own sub-routes: admin, jobs). Segments are split
// on every '/': empty ones count, so "/v1/models/" and "//v1/models" are not "/v1/models".
// Ownership: owns its routes. Thread-safety: built once, then read-only (match from any thread).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/request_policy.h"
#include "server/transport.h"

namespace nc::server {

// One authenticated request on its way to a handler.
struct Call {
  Exchange& ex;
  std::shared_ptr<const gateway::Caller> caller;  // null without a gateway (a private engine server)
  std::vector<std::string> params;                // the route pattern's {name} segments, in order
};

using RouteHandler = std::function<awaitable<bool>(Call&)>;

struct Route {
  std::optional<http::verb> method;  // nullopt: any method (the API dispatches methods itself)
  std::string pattern;
  gateway::RouteAccess access = gateway::RouteAccess::kPublic;
  std::string scope;  // the endpoint name in API keys' scopes ("completions", "jobs", ...)
  RouteHandler handler;
  // Set on an upload route: its handler reads the body itself (Exchange::body), at most this many bytes.
  std::optional<uint64_t> streamed_body_limit;
};

class Router {
 public:
  void add(std::optional<http::verb> method, std::string pattern, gateway::RouteAccess access, std::string scope,
           RouteHandler handler, std::optional<uint64_t> streamed_body_limit = std::nullopt);
  // The first route whose method and pattern match, with its {name} params; nullptr when none.
  const Route* match(http::verb method, std::string_view path, std::vector<std::string>* params) const;
  // Whether a public route (any method) has this path: a wrong method there is a 404, not a 401.
  bool public_path(std::string_view path) const;
  const std::vector<Route>& routes() const { return routes_; }

 private:
  std::vector<Route> routes_;
};

// Whether `path` matches `pattern` (see above); fills `params` when it does.
bool match_pattern(std::string_view pattern, std::string_view path, std::vector<std::string>* params);

}  // namespace nc::server
