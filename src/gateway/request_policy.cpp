#include "gateway/request_policy.h"

#include <fmt/format.h>

#include <algorithm>

namespace nc::gateway {

std::optional<Denial> authorize_route(const Gateway& gw, const Caller& c, RouteAccess access, std::string_view scope) {
  switch (access) {
    case RouteAccess::kPublic: return std::nullopt;
    case RouteAccess::kInference: return gw.authorize_inference(c, scope, "");
    case RouteAccess::kInferenceOrAdmin:
      if (c.principal.kind == tenancy::KeyKind::kInference) return gw.authorize_inference(c, scope, "");
      return std::nullopt;
    case RouteAccess::kAdmin: return gw.authorize_admin(c);
    case RouteAccess::kOperator:
      if (auto d = gw.authorize_admin(c)) return d;
      if (!c.principal.operator_org) {
        return api_error(403, "Only the operator's admin keys may call this endpoint.", "", "insufficient_permissions");
      }
      return std::nullopt;
  }
  return std::nullopt;
}

std::optional<Denial> apply_max_tokens_cap(Gateway& gw, const Caller& c, bool given, int32_t* max_tokens) {
  const int64_t cap = gw.max_tokens_cap(c);
  if (cap <= 0) return std::nullopt;
  if (!given) {
    // The endpoint's default (16 for completions, the context for chat) within the cap.
    *max_tokens = *max_tokens < 0 ? static_cast<int32_t>(cap) : static_cast<int32_t>(std::min<int64_t>(*max_tokens, cap));
  }
  if (*max_tokens > cap) {
    return api_error(400,
                     fmt::format("max_tokens is too large: {}. This API key may request at most {} completion tokens.",
                                 *max_tokens, cap),
                     "max_tokens", "invalid_value");
  }
  return std::nullopt;
}

int64_t worst_case_output_tokens(const std::vector<int64_t>& prompt_lengths, int n, int32_t max_tokens, int64_t n_ctx) {
  int64_t out = 0;
  for (const int64_t p : prompt_lengths) out += (max_tokens >= 0 ? max_tokens : std::max<int64_t>(n_ctx - p, 0)) * n;
  return out;
}

}  // namespace nc::gateway
