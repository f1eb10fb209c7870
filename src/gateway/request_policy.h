// The gateway's rules for one API request, decided here rather than at the HTTP edge:
//   - route access: who may call a route (declared per route in the server's route table as a
//     RouteAccess and an endpoint scope name), including the operator-only routes;
//   - the max_tokens cap of the caller's key, project and org: a default when the request sets none, a
//     ceiling (400 naming it) when it asks for more;
//   - the worst-case output a request may produce, which admission reserves and budgets hold.
// Pure functions over a Gateway's policy snapshot; thread-safe like Gateway.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "gateway/gateway.h"

namespace nc::gateway {

enum class RouteAccess {
  kPublic,            // no key needed (/health, /metrics)
  kInference,         // an inference key whose endpoint scopes allow the route's scope
  kInferenceOrAdmin,  // inference keys need the scope; admin keys may call it (jobs, usage events)
  kAdmin,             // an admin key (the tenant admin API, always its own organization)
  kOperator,          // an admin key of the operator organization (orgs, prices, GPU quotas, nodes)
};

// Whether `c` may call a route of `access` whose endpoint scope is `scope` ("completions", "jobs", ...).
std::optional<Denial> authorize_route(const Gateway& gw, const Caller& c, RouteAccess access, std::string_view scope);

// Applies the caller's max_tokens cap to `*max_tokens` (-1: the request set none and the context
// decides). `given`: the request set max_tokens/max_completion_tokens. 400 invalid_value when over.
std::optional<Denial> apply_max_tokens_cap(Gateway& gw, const Caller& c, bool given, int32_t* max_tokens);

// The most output tokens a request can produce: n choices per prompt, each max_tokens (or, when -1, the
// context left after its prompt).
int64_t worst_case_output_tokens(const std::vector<int64_t>& prompt_lengths, int n, int32_t max_tokens, int64_t n_ctx);

}  // namespace nc::gateway
