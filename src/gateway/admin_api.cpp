#include "gateway/admin_api.h"
#include "core/timer.h"

#include <fmt/format.h>

#include "core/json_parse.h"
#include "core/log.h"
#include "gateway/usage_api.h"

namespace nc::gateway {

using nlohmann::json;
using nlohmann::ordered_json;

namespace {

AdminResponse error(int status, const std::string& message, const std::string& code = "", const std::string& param = "") {
  return error_response(api_error(status, message, param, code));
}

AdminResponse from_status(const Status& s) { return error_response(s); }

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    if (j > i) out.push_back(path.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

ordered_json opt(const std::optional<int64_t>& v) { return v ? ordered_json(*v) : ordered_json(); }
int64_t to_s(int64_t us) { return us / 1000000; }

ordered_json project_json(const tenancy::Project& p) {
  return {{"object", "organization.project"}, {"id", p.id}, {"name", p.name}, {"created_at", to_s(p.created_at)}, {"status", "active"}};
}

ordered_json key_json(const tenancy::KeyInfo& k) {
  ordered_json j = {{"object", "organization.api_key"},
                    {"id", k.id},
                    {"kind", k.kind == tenancy::KeyKind::kAdmin ? "admin" : "inference"},
                    {"name", k.name},
                    {"redacted_value", k.redacted},
                    {"project_id", k.project_id.empty() ? ordered_json() : ordered_json(k.project_id)},
                    {"scopes", ordered_json::parse(k.scopes, nullptr, false)},
                    {"created_at", to_s(k.created_at)},
                    {"expires_at", k.expires_at ? ordered_json(to_s(*k.expires_at)) : ordered_json()},
                    {"revoked_at", k.revoked_at ? ordered_json(to_s(*k.revoked_at)) : ordered_json()}};
  if (j["scopes"].is_discarded()) j["scopes"] = ordered_json::object();
  return j;
}

ordered_json limits_json(Scope s, const std::string& id, const Limits& l) {
  return {{"object", "organization.rate_limit"}, {"scope", scope_name(s)}, {"scope_id", id},
          {"rpm", opt(l.rpm)}, {"tpm", opt(l.tpm)}, {"max_concurrent", opt(l.max_concurrent)}, {"max_tokens", opt(l.max_tokens)}};
}

ordered_json price_json(const Price& p) {
  return {{"object", "price"}, {"item", p.item}, {"effective_from", to_s(p.effective_from)},
          {"input_per_mtok", p.input_per_mtok}, {"output_per_mtok", p.output_per_mtok},
          {"cached_per_mtok", p.cached_per_mtok}, {"per_unit", p.per_unit}, {"currency", "usd"}};
}

// 200 {"object": "list", "data": [to_json(item)...]}.
template <typename Items, typename ToJson>
AdminResponse list_response(const Items& items, ToJson to_json) {
  ordered_json data = ordered_json::array();
  for (const auto& x : items) data.push_back(to_json(x));
  return AdminResponse{200, ordered_json{{"object", "list"}, {"data", std::move(data)}}};
}

// Reads an optional positive integer field (null or absent: none).
Result<std::optional<int64_t>> opt_int(const json& b, const char* k) {
  auto it = b.find(k);
  if (it == b.end() || it->is_null()) return std::optional<int64_t>();
  if (!it->is_number_integer()) return invalid_argument(fmt::format("'{}' must be an integer or null", k));
  return std::optional<int64_t>(it->get<int64_t>());
}

Result<std::string> req_str(const json& b, const char* k) {
  auto it = b.find(k);
  if (it == b.end() || !it->is_string() || it->get<std::string>().empty())
    return invalid_argument(fmt::format("'{}' (a non-empty string) is required", k));
  return it->get<std::string>();
}

Result<Limits> parse_limits(const json& b) {
  Limits l;
  NC_ASSIGN_OR_RETURN(l.rpm, opt_int(b, "rpm"));
  NC_ASSIGN_OR_RETURN(l.tpm, opt_int(b, "tpm"));
  NC_ASSIGN_OR_RETURN(l.max_concurrent, opt_int(b, "max_concurrent"));
  NC_ASSIGN_OR_RETURN(l.max_tokens, opt_int(b, "max_tokens"));
  return l;
}

Result<Scope> tenant_scope(const json& b) {
  NC_ASSIGN_OR_RETURN(std::string s, req_str(b, "scope"));
  NC_ASSIGN_OR_RETURN(Scope scope, parse_scope(s));
  if (scope == Scope::kOrg)
    return invalid_argument("organization-wide limits and budgets are set by the operator (/v1/admin/organizations/{id}/...)");
  return scope;
}

struct Handler {
  Gateway& gw;
  const Caller& c;
  const std::string& org;
  tenancy::Actor actor;

  Result<AdminResponse> organization(std::string_view method, const std::vector<std::string_view>& p, std::string_view query,
                                     const json& b) {
    const std::string what = p.size() > 2 ? std::string(p[2]) : "";
    const bool get = method == "GET", post = method == "POST", put = method == "PUT", del = method == "DELETE";
    if (what == "projects" && p.size() == 3) {
      if (get) {
        NC_ASSIGN_OR_RETURN(auto ps, gw.tenants().list_projects(org));
        return list_response(ps, project_json);
      }
      if (post) {
        NC_ASSIGN_OR_RETURN(std::string name, req_str(b, "name"));
        NC_ASSIGN_OR_RETURN(auto pr, gw.tenants().create_project(org, name, actor));
        return AdminResponse{201, project_json(pr)};
      }
    }
    if (what == "api_keys" && p.size() == 3) {
      if (get) {
        NC_ASSIGN_OR_RETURN(auto ks, gw.tenants().list_keys(org));
        return list_response(ks, key_json);
      }
      if (post) {
        std::string kind = "inference";
        if (auto it = b.find("kind"); it != b.end() && !it->is_null()) {
          if (!it->is_string()) return invalid_argument("'kind' must be 'inference' or 'admin'");
          kind = it->get<std::string>();
        }
        if (kind != "inference" && kind != "admin") return invalid_argument("'kind' must be 'inference' or 'admin'");
        const std::string project = b.contains("project_id") && b["project_id"].is_string() ? b["project_id"].get<std::string>() : "";
        const std::string name = b.contains("name") && b["name"].is_string() ? b["name"].get<std::string>() : "";
        std::string scopes = "{}";
        if (auto it = b.find("scopes"); it != b.end() && !it->is_null()) scopes = it->dump();
        std::optional<int64_t> expires;
        NC_ASSIGN_OR_RETURN(auto in, opt_int(b, "expires_in_seconds"));
        if (in) {
          if (*in < 1 || *in > 366LL * 86400) return invalid_argument("'expires_in_seconds' must be 1 .. 31622400");
          expires = nc::unix_us() + *in * 1000000;
        }
        NC_ASSIGN_OR_RETURN(auto ck, gw.tenants().create_key(org, project, kind == "admin" ? tenancy::KeyKind::kAdmin
                                                                                          : tenancy::KeyKind::kInference,
                                                             name, scopes, expires, actor));
        ordered_json j = key_json(ck.info);
        j["value"] = ck.plaintext;
        return AdminResponse{201, j};
      }
    }
    if (what == "api_keys" && p.size() == 4 && del) {
      NC_RETURN_IF_ERROR(gw.tenants().revoke_key(org, std::string(p[3]), actor));
      gw.invalidate_auth_cache();
      return AdminResponse{200, ordered_json{{"object", "organization.api_key.deleted"}, {"id", p[3]}, {"deleted", true}}};
    }
    if (what == "api_keys" && p.size() == 5 && p[4] == "rotate" && post) {
      NC_ASSIGN_OR_RETURN(auto overlap, opt_int(b, "overlap_seconds"));
      if (overlap && (*overlap < 0 || *overlap > 30LL * 86400)) return invalid_argument("'overlap_seconds' must be 0 .. 2592000");
      NC_ASSIGN_OR_RETURN(auto ck, gw.tenants().rotate_key(org, std::string(p[3]), overlap.value_or(3600) * 1000000, actor));
      gw.invalidate_auth_cache();
      ordered_json j = key_json(ck.info);
      j["value"] = ck.plaintext;
      return AdminResponse{201, j};
    }
    if (what == "limits" && p.size() == 3) {
      if (get) {
        NC_ASSIGN_OR_RETURN(auto ls, gw.policy().limits(org));
        return list_response(ls, [](const auto& kl) { return limits_json(kl.first.first, kl.first.second, kl.second); });
      }
      if (put) {
        NC_ASSIGN_OR_RETURN(Scope s, tenant_scope(b));
        NC_ASSIGN_OR_RETURN(std::string id, req_str(b, "scope_id"));
        NC_ASSIGN_OR_RETURN(Limits l, parse_limits(b));
        NC_RETURN_IF_ERROR(gw.policy().set_limits(org, s, id, l, actor));
        return AdminResponse{200, limits_json(s, id, l)};
      }
    }
    if (what == "budgets" && p.size() == 3) {
      if (get) {
        NC_ASSIGN_OR_RETURN(auto bs, gw.policy().budgets(org, budget_period(nc::unix_us())));
        return list_response(bs, [](const Policy::BudgetStatus& st) -> ordered_json {
          return {{"object", "organization.budget"}, {"scope", scope_name(st.budget.scope)},
                  {"scope_id", st.budget.scope_id}, {"monthly_limit_micros", st.budget.monthly_limit_micros},
                  {"period", budget_period(nc::unix_us())}, {"spent_micros", st.spent_micros},
                  {"held_micros", st.held_micros}};
        });
      }
      if (put) {
        NC_ASSIGN_OR_RETURN(Scope s, tenant_scope(b));
        NC_ASSIGN_OR_RETURN(std::string id, req_str(b, "scope_id"));
        NC_ASSIGN_OR_RETURN(auto limit, opt_int(b, "monthly_limit_micros"));
        NC_RETURN_IF_ERROR(gw.policy().set_budget(org, s, id, limit, actor));
        return AdminResponse{200, ordered_json{{"object", "organization.budget"}, {"scope", scope_name(s)}, {"scope_id", id},
                                               {"monthly_limit_micros", opt(limit)}}};
      }
    }
    if (what == "prices" && p.size() == 3 && get) return prices();
    if (what == "audit_logs" && p.size() == 3 && get) {
      NC_ASSIGN_OR_RETURN(auto entries, gw.tenants().audit_log(org));
      return list_response(entries, [](const auto& e) -> ordered_json {
        return {{"object", "organization.audit_log"}, {"actor_api_key_id", e.actor_key_id}, {"type", e.action},
                {"target", e.target}, {"before", ordered_json::parse(e.before_json.empty() ? "null" : e.before_json, nullptr, false)},
                {"after", ordered_json::parse(e.after_json.empty() ? "null" : e.after_json, nullptr, false)},
                {"effective_at", to_s(e.at)}, {"effective_at_us", e.at}};
      });
    }
    if (what == "usage" && p.size() == 4 && p[3] == "completions" && get) {
      NC_ASSIGN_OR_RETURN(auto j, usage_completions(gw.db(), org, query, nc::unix_us() / 1000000));
      return AdminResponse{200, std::move(j)};
    }
    if (what == "usage" && p.size() == 4 && p[3] == "fine_tuning" && get) {
      NC_ASSIGN_OR_RETURN(auto j, usage_fine_tuning(gw.db(), org, query, nc::unix_us() / 1000000));
      return AdminResponse{200, std::move(j)};
    }
    if (what == "costs" && p.size() == 3 && get) {
      NC_ASSIGN_OR_RETURN(auto j, organization_costs(gw.db(), org, query, nc::unix_us() / 1000000));
      return AdminResponse{200, std::move(j)};
    }
    return AdminResponse{error(404, fmt::format("Invalid URL ({} /{})", method, fmt::join(p, "/")))};
  }

  Result<AdminResponse> prices() {
    NC_ASSIGN_OR_RETURN(auto ps, gw.policy().prices());
    return list_response(ps, price_json);
  }

  Result<AdminResponse> operator_api(std::string_view method, const std::vector<std::string_view>& p, const json& b) {
    if (!c.principal.operator_org) {
      return AdminResponse{error(403, "Only the operator's admin keys can manage organizations and prices.", "insufficient_permissions")};
    }
    const std::string what = p.size() > 2 ? std::string(p[2]) : "";
    if (what == "organizations" && p.size() == 3 && method == "GET") {
      NC_ASSIGN_OR_RETURN(auto os, gw.tenants().list_orgs());
      return list_response(os, [](const auto& o) -> ordered_json {
        return {{"object", "organization"}, {"id", o.id}, {"name", o.name}, {"created_at", to_s(o.created_at)}};
      });
    }
    if (what == "organizations" && p.size() == 3 && method == "POST") {
      NC_ASSIGN_OR_RETURN(std::string name, req_str(b, "name"));
      NC_ASSIGN_OR_RETURN(auto o, gw.tenants().create_org(name, actor));
      NC_ASSIGN_OR_RETURN(auto ck, gw.tenants().create_key(o.id, "", tenancy::KeyKind::kAdmin, "first admin key", "{}",
                                                           std::nullopt, actor));
      ordered_json key = key_json(ck.info);
      key["value"] = ck.plaintext;
      return AdminResponse{201, ordered_json{{"object", "organization"}, {"id", o.id}, {"name", o.name},
                                             {"created_at", to_s(o.created_at)}, {"admin_key", key}}};
    }
    if (what == "organizations" && p.size() == 5 && method == "PUT" && p[4] == "limits") {
      NC_ASSIGN_OR_RETURN(Limits l, parse_limits(b));
      const std::string id(p[3]);
      NC_RETURN_IF_ERROR(gw.policy().set_limits(id, Scope::kOrg, id, l, actor));
      return AdminResponse{200, limits_json(Scope::kOrg, id, l)};
    }
    if (what == "organizations" && p.size() == 5 && method == "PUT" && p[4] == "budget") {
      NC_ASSIGN_OR_RETURN(auto limit, opt_int(b, "monthly_limit_micros"));
      const std::string id(p[3]);
      NC_RETURN_IF_ERROR(gw.policy().set_budget(id, Scope::kOrg, id, limit, actor));
      return AdminResponse{200, ordered_json{{"object", "organization.budget"}, {"scope", "org"}, {"scope_id", id},
                                             {"monthly_limit_micros", opt(limit)}}};
    }
    if (what == "prices" && p.size() == 3 && method == "GET") return prices();
    if (what == "prices" && p.size() == 3 && method == "POST") {
      Price pr;
      NC_ASSIGN_OR_RETURN(pr.item, req_str(b, "item"));
      for (auto [k, v] : {std::pair{"input_per_mtok", &pr.input_per_mtok}, std::pair{"output_per_mtok", &pr.output_per_mtok},
                          std::pair{"cached_per_mtok", &pr.cached_per_mtok}, std::pair{"per_unit", &pr.per_unit}}) {
        NC_ASSIGN_OR_RETURN(auto x, opt_int(b, k));
        *v = x.value_or(0);
      }
      NC_ASSIGN_OR_RETURN(auto from, opt_int(b, "effective_from"));
      pr.effective_from = from ? *from * 1000000 : nc::unix_us();
      NC_RETURN_IF_ERROR(gw.policy().add_price(pr, actor));
      return AdminResponse{201, price_json(pr)};
    }
    return AdminResponse{error(404, fmt::format("Invalid URL ({} /{})", method, fmt::join(p, "/")))};
  }
};

}  // namespace

bool is_admin_path(std::string_view path) {
  return path.rfind("/v1/organization/", 0) == 0 || path.rfind("/v1/admin/", 0) == 0;
}

AdminResponse handle_admin(Gateway& gw, const Caller& caller, std::string_view method, std::string_view path,
                           std::string_view query, const std::string& body) {
  json b = json::object();
  if (method == "POST" || method == "PUT") {
    auto parsed = parse_json(body.empty() ? std::string_view("{}") : std::string_view(body));
    if (!parsed.is_ok() || !parsed->is_object()) {
      return error(400, "We could not parse the JSON body of your request: " +
                            (parsed.is_ok() ? std::string("it must be a JSON object") : parsed.status().message()) + ".");
    }
    b = std::move(*parsed);
  }
  const auto parts = split_path(path);
  Handler h{gw, caller, caller.principal.org_id, tenancy::Actor{caller.principal.key_id}};
  Result<AdminResponse> r = parts[1] == "admin" ? h.operator_api(method, parts, b) : h.organization(method, parts, query, b);
  if (!r.is_ok()) return from_status(r.status());
  return std::move(*r);
}

}  // namespace nc::gateway
