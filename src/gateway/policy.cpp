#include "gateway/policy.h"
#include "core/timer.h"

#include <fmt/format.h>

#include <algorithm>
#include <ctime>

#include <nlohmann/json.hpp>


namespace nc::gateway {

using storage::Row;
using storage::SqlValue;
using storage::Transaction;

const char* scope_name(Scope s) {
  switch (s) {
    case Scope::kOrg: return "org";
    case Scope::kProject: return "project";
    case Scope::kKey: return "key";
  }
  return "?";
}

Result<Scope> parse_scope(const std::string& s) {
  if (s == "org") return Scope::kOrg;
  if (s == "project") return Scope::kProject;
  if (s == "key") return Scope::kKey;
  return invalid_argument(fmt::format("scope must be 'org', 'project' or 'key', not '{}'", s));
}

int64_t token_cost_micros(const Price& p, int64_t prompt, int64_t completion, int64_t cached) {
  const __int128 uncached = std::max<int64_t>(0, prompt - cached);
  const __int128 num = uncached * p.input_per_mtok + static_cast<__int128>(completion) * p.output_per_mtok +
                       static_cast<__int128>(cached) * p.cached_per_mtok;
  const __int128 micros = (num + 999999) / 1000000;
  // Saturated: a count no real request reaches must never wrap into a negative (crediting) cost.
  return micros > INT64_MAX / 2 ? INT64_MAX / 2 : static_cast<int64_t>(micros < 0 ? 0 : micros);
}

std::string budget_period(int64_t t_us) {
  const std::time_t t = static_cast<std::time_t>(t_us / 1000000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  return fmt::format("{:04}-{:02}", tm.tm_year + 1900, tm.tm_mon + 1);
}

const Limits* Snapshot::find_limits(Scope s, const std::string& id) const {
  auto it = limits.find({s, id});
  return it == limits.end() ? nullptr : &it->second;
}

const Budget* Snapshot::find_budget(Scope s, const std::string& id) const {
  auto it = budgets.find({s, id});
  return it == budgets.end() ? nullptr : &it->second;
}

const Price* Snapshot::price_at(const std::string& item, int64_t t) const {
  auto it = prices.find(item);
  if (it == prices.end()) return nullptr;
  const Price* best = nullptr;
  for (const Price& p : it->second) {
    if (p.effective_from <= t) best = &p;
  }
  return best;
}

namespace {

Result<std::optional<int64_t>> opt_int(const Row& r, int i) {
  if (r.is_null(i)) return std::optional<int64_t>();
  NC_ASSIGN_OR_RETURN(int64_t v, r.get_int(i));
  return std::optional<int64_t>(v);
}

SqlValue opt_value(const std::optional<int64_t>& v) { return v ? SqlValue(*v) : SqlValue(); }

nlohmann::json limits_json(const Limits& l) {
  nlohmann::json j = nlohmann::json::object();
  auto put = [&](const char* k, const std::optional<int64_t>& v) { j[k] = v ? nlohmann::json(*v) : nlohmann::json(); };
  put("rpm", l.rpm);
  put("tpm", l.tpm);
  put("max_concurrent", l.max_concurrent);
  put("max_tokens", l.max_tokens);
  return j;
}

Result<Scope> scope_at(const Row& r, int i) {
  NC_ASSIGN_OR_RETURN(std::string scope, r.get_text(i));
  return parse_scope(scope);
}

// A rate_limits row of kLimitColumns: the scope object and its limits (null columns: no limit).
constexpr const char* kLimitColumns = "scope, scope_id, rpm, tpm, max_concurrent, max_tokens";
using ScopedLimits = std::pair<std::pair<Scope, std::string>, Limits>;

Result<ScopedLimits> limits_from_row(const Row& r) {
  ScopedLimits out;
  NC_ASSIGN_OR_RETURN(out.first.first, scope_at(r, 0));
  NC_ASSIGN_OR_RETURN(out.first.second, r.get_text(1));
  Limits& l = out.second;
  NC_ASSIGN_OR_RETURN(l.rpm, opt_int(r, 2));
  NC_ASSIGN_OR_RETURN(l.tpm, opt_int(r, 3));
  NC_ASSIGN_OR_RETURN(l.max_concurrent, opt_int(r, 4));
  NC_ASSIGN_OR_RETURN(l.max_tokens, opt_int(r, 5));
  return out;
}

// A budgets row's first four columns: scope, scope_id, org_id, monthly_limit_micros.
Result<Budget> budget_from_row(const Row& r) {
  Budget b;
  NC_ASSIGN_OR_RETURN(b.scope, scope_at(r, 0));
  NC_ASSIGN_OR_RETURN(b.scope_id, r.get_text(1));
  NC_ASSIGN_OR_RETURN(b.org_id, r.get_text(2));
  NC_ASSIGN_OR_RETURN(b.monthly_limit_micros, r.get_int(3));
  return b;
}

Result<Price> price_from_row(const Row& r) {
  Price p;
  NC_ASSIGN_OR_RETURN(p.item, r.get_text(0));
  NC_ASSIGN_OR_RETURN(p.effective_from, r.get_int(1));
  NC_ASSIGN_OR_RETURN(p.input_per_mtok, r.get_int(2));
  NC_ASSIGN_OR_RETURN(p.output_per_mtok, r.get_int(3));
  NC_ASSIGN_OR_RETURN(p.cached_per_mtok, r.get_int(4));
  NC_ASSIGN_OR_RETURN(p.per_unit, r.get_int(5));
  return p;
}

constexpr const char* kPriceColumns = "item, effective_from, input_per_mtok, output_per_mtok, cached_per_mtok, per_unit";

}  // namespace

Status Policy::refresh() {
  auto snap = std::make_shared<Snapshot>();
  NC_RETURN_IF_ERROR(db_.read([&](Transaction& tx) -> Status {
    snap->limits.clear();
    snap->budgets.clear();
    snap->prices.clear();
    NC_ASSIGN_OR_RETURN(auto rows, tx.query(fmt::format("SELECT {} FROM rate_limits", kLimitColumns)));
    for (const Row& r : rows) {
      NC_ASSIGN_OR_RETURN(ScopedLimits l, limits_from_row(r));
      snap->limits[l.first] = l.second;
    }
    NC_ASSIGN_OR_RETURN(rows, tx.query("SELECT scope, scope_id, org_id, monthly_limit_micros FROM budgets"));
    for (const Row& r : rows) {
      NC_ASSIGN_OR_RETURN(Budget b, budget_from_row(r));
      snap->budgets[{b.scope, b.scope_id}] = b;
    }
    NC_ASSIGN_OR_RETURN(rows, tx.query(fmt::format("SELECT {} FROM prices ORDER BY item, effective_from", kPriceColumns)));
    for (const Row& r : rows) {
      NC_ASSIGN_OR_RETURN(Price p, price_from_row(r));
      snap->prices[p.item].push_back(p);
    }
    return Status::ok();
  }));
  std::lock_guard<std::mutex> lock(mu_);
  snap_ = std::move(snap);
  return Status::ok();
}

std::shared_ptr<const Snapshot> Policy::snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return snap_;
}

Status Policy::check_owner(Transaction& tx, const std::string& org_id, Scope scope, const std::string& id) {
  const char* sql = scope == Scope::kOrg       ? "SELECT id FROM organizations WHERE id = $1 AND $2 = $1 AND deleted_at IS NULL"
                    : scope == Scope::kProject ? "SELECT id FROM projects WHERE id = $1 AND org_id = $2 AND archived_at IS NULL"
                                               : "SELECT id FROM api_keys WHERE id = $1 AND org_id = $2";
  NC_ASSIGN_OR_RETURN(auto row, tx.query_optional(sql, {id, org_id}));
  if (!row) return not_found(fmt::format("{} {} not found", scope_name(scope), id));
  return Status::ok();
}

Status Policy::set_limits(const std::string& org_id, Scope scope, const std::string& scope_id, const Limits& l,
                          const tenancy::Actor& actor) {
  for (const auto* v : {&l.rpm, &l.tpm, &l.max_concurrent, &l.max_tokens}) {
    if (*v && **v <= 0) return invalid_argument("limits must be positive integers (or null for none)");
  }
  const bool clear = !l.rpm && !l.tpm && !l.max_concurrent && !l.max_tokens;
  NC_RETURN_IF_ERROR(db_.transact([&](Transaction& tx) -> Status {
    NC_RETURN_IF_ERROR(check_owner(tx, org_id, scope, scope_id));
    NC_ASSIGN_OR_RETURN(auto before,
                        tx.query_optional(fmt::format("SELECT {} FROM rate_limits WHERE scope = $1 AND scope_id = $2", kLimitColumns),
                                          {scope_name(scope), scope_id}));
    std::string before_json;
    if (before) {
      NC_ASSIGN_OR_RETURN(ScopedLimits b, limits_from_row(*before));
      before_json = limits_json(b.second).dump();
    }
    if (clear) {
      NC_RETURN_IF_ERROR(tx.exec("DELETE FROM rate_limits WHERE scope = $1 AND scope_id = $2", {scope_name(scope), scope_id}).status());
    } else {
      NC_RETURN_IF_ERROR(tx.exec("INSERT INTO rate_limits (scope, scope_id, org_id, rpm, tpm, max_concurrent, max_tokens, updated_at) "
                                 "VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (scope, scope_id) DO UPDATE SET "
                                 "rpm = $4, tpm = $5, max_concurrent = $6, max_tokens = $7, updated_at = $8",
                                 {scope_name(scope), scope_id, org_id, opt_value(l.rpm), opt_value(l.tpm),
                                  opt_value(l.max_concurrent), opt_value(l.max_tokens), nc::unix_us()})
                             .status());
    }
    return tenancy::record_audit(tx, org_id, actor, clear ? "rate_limits.delete" : "rate_limits.set",
                                 fmt::format("{}:{}", scope_name(scope), scope_id), before_json,
                                 clear ? "" : limits_json(l).dump());
  }));
  return refresh();
}

Status Policy::set_budget(const std::string& org_id, Scope scope, const std::string& scope_id,
                          std::optional<int64_t> limit, const tenancy::Actor& actor) {
  if (limit && *limit < 0) return invalid_argument("a budget cannot be negative");
  NC_RETURN_IF_ERROR(db_.transact([&](Transaction& tx) -> Status {
    NC_RETURN_IF_ERROR(check_owner(tx, org_id, scope, scope_id));
    NC_ASSIGN_OR_RETURN(auto before, tx.query_optional("SELECT monthly_limit_micros FROM budgets WHERE scope = $1 AND scope_id = $2",
                                                       {scope_name(scope), scope_id}));
    std::string before_json;
    if (before) {
      NC_ASSIGN_OR_RETURN(int64_t b, before->get_int(0));
      before_json = fmt::format(R"({{"monthly_limit_micros":{}}})", b);
    }
    if (!limit) {
      NC_RETURN_IF_ERROR(tx.exec("DELETE FROM budgets WHERE scope = $1 AND scope_id = $2", {scope_name(scope), scope_id}).status());
    } else {
      NC_RETURN_IF_ERROR(tx.exec("INSERT INTO budgets (scope, scope_id, org_id, monthly_limit_micros, updated_at) "
                                 "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (scope, scope_id) DO UPDATE SET "
                                 "monthly_limit_micros = $4, updated_at = $5",
                                 {scope_name(scope), scope_id, org_id, *limit, nc::unix_us()})
                             .status());
    }
    return tenancy::record_audit(tx, org_id, actor, limit ? "budget.set" : "budget.delete",
                                 fmt::format("{}:{}", scope_name(scope), scope_id), before_json,
                                 limit ? fmt::format(R"({{"monthly_limit_micros":{}}})", *limit) : "");
  }));
  return refresh();
}

Status Policy::add_price(const Price& p, const tenancy::Actor& actor) {
  if (p.item.empty()) return invalid_argument("a price needs an item (a model id or a meter name)");
  if (p.input_per_mtok < 0 || p.output_per_mtok < 0 || p.cached_per_mtok < 0 || p.per_unit < 0)
    return invalid_argument("prices cannot be negative");
  NC_RETURN_IF_ERROR(db_.transact([&](Transaction& tx) -> Status {
    NC_RETURN_IF_ERROR(tx.exec("INSERT INTO prices (item, effective_from, input_per_mtok, output_per_mtok, cached_per_mtok, "
                               "per_unit, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                               {p.item, p.effective_from, p.input_per_mtok, p.output_per_mtok, p.cached_per_mtok, p.per_unit,
                                nc::unix_us()})
                           .status());
    nlohmann::json j = {{"item", p.item},
                        {"effective_from", p.effective_from},
                        {"input_per_mtok", p.input_per_mtok},
                        {"output_per_mtok", p.output_per_mtok},
                        {"cached_per_mtok", p.cached_per_mtok},
                        {"per_unit", p.per_unit}};
    return tenancy::record_audit(tx, "", actor, "price.add", p.item, "", j.dump());
  }));
  return refresh();
}

Result<std::vector<Policy::BudgetStatus>> Policy::budgets(const std::string& org_id, const std::string& period) {
  return db_.read([&](Transaction& tx) -> Result<std::vector<BudgetStatus>> {
    NC_ASSIGN_OR_RETURN(auto rows,
                        tx.query("SELECT b.scope, b.scope_id, b.org_id, b.monthly_limit_micros, COALESCE(s.spent_micros, 0), "
                                 "COALESCE(s.held_micros, 0) FROM budgets b LEFT JOIN spend s ON s.scope = b.scope AND "
                                 "s.scope_id = b.scope_id AND s.period = $2 WHERE b.org_id = $1 ORDER BY b.scope, b.scope_id",
                                 {org_id, period}));
    std::vector<BudgetStatus> out;
    for (const Row& r : rows) {
      BudgetStatus st;
      NC_ASSIGN_OR_RETURN(st.budget, budget_from_row(r));
      NC_ASSIGN_OR_RETURN(st.spent_micros, r.get_int(4));
      NC_ASSIGN_OR_RETURN(st.held_micros, r.get_int(5));
      out.push_back(std::move(st));
    }
    return out;
  });
}

Result<std::vector<std::pair<std::pair<Scope, std::string>, Limits>>> Policy::limits(const std::string& org_id) {
  return db_.read([&](Transaction& tx) -> Result<std::vector<ScopedLimits>> {
    NC_ASSIGN_OR_RETURN(auto rows, tx.query(fmt::format("SELECT {} FROM rate_limits WHERE org_id = $1 ORDER BY scope, scope_id",
                                                        kLimitColumns),
                                            {org_id}));
    std::vector<ScopedLimits> out;
    for (const Row& r : rows) {
      NC_ASSIGN_OR_RETURN(ScopedLimits l, limits_from_row(r));
      out.push_back(std::move(l));
    }
    return out;
  });
}

Result<std::vector<Price>> Policy::prices() {
  return db_.read([&](Transaction& tx) -> Result<std::vector<Price>> {
    NC_ASSIGN_OR_RETURN(auto rows, tx.query(fmt::format("SELECT {} FROM prices ORDER BY item, effective_from", kPriceColumns)));
    std::vector<Price> out;
    for (const Row& r : rows) {
      NC_ASSIGN_OR_RETURN(Price p, price_from_row(r));
      out.push_back(std::move(p));
    }
    return out;
  });
}

}  // namespace nc::gateway
