// The admin API (JSON over HTTP, admin keys), without HTTP: the server hands it the method, path,
// query and body of a request to /v1/organization/... or /v1/admin/... from an authenticated admin
// caller and sends back what it returns.
//
// Tenant admins (any admin key; always the key's own organization):
//   GET|POST   /v1/organization/projects                  list | create {name}
//   GET|POST   /v1/organization/api_keys                  list | create {kind, project_id, name, scopes, expires_in_seconds}
//   DELETE     /v1/organization/api_keys/{id}             revoke
//   POST       /v1/organization/api_keys/{id}/rotate      {overlap_seconds} (default 3600)
//   GET|PUT    /v1/organization/limits                    {scope: project|key, scope_id, rpm, tpm, max_concurrent, max_tokens}
//   GET|PUT    /v1/organization/budgets                   {scope: project|key, scope_id, monthly_limit_micros|null}
//   GET        /v1/organization/prices                    the operator's price list
//   GET        /v1/organization/audit_logs
//   GET        /v1/organization/usage/completions, /v1/organization/costs   (usage_api.h)
// Operator (admin keys of the operator organization, the one the first start created):
//   GET|POST   /v1/admin/organizations                    list | create {name} (returns its first admin key)
//   PUT        /v1/admin/organizations/{id}/limits        org-wide limits (a tenant cannot raise its own)
//   PUT        /v1/admin/organizations/{id}/budget        {monthly_limit_micros|null}
//   GET|POST   /v1/admin/prices                           {item, input_per_mtok, output_per_mtok, cached_per_mtok,
//                                                          per_unit, effective_from (unix s, default now)}
// Money is integer micro-units (1 USD = 1,000,000); prices per 1M tokens. Every mutation is audited.
// Objects of another organization are 404, exactly like objects that do not exist.
//
// Thread-safety: does blocking database work — call it off the I/O thread.
#pragma once
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/api_error.h"
#include "gateway/gateway.h"

namespace nc::gateway {

// The admin API answers with the one API response/error type (core/api_error.h).
using AdminResponse = ApiResponse;

bool is_admin_path(std::string_view path);
// `caller` has passed authorize_admin(). Errors come back as OpenAI error bodies.
AdminResponse handle_admin(Gateway& gw, const Caller& caller, std::string_view method, std::string_view path,
                           std::string_view query, const std::string& body);

}  // namespace nc::gateway
