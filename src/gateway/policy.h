// Policy: what the operator and tenants configured — rate limits, prices and budgets — stored in the
// database (schema v2) and served to the request path from an immutable in-memory Snapshot that is
// reloaded after every change made through this process, and by whoever calls refresh() periodically
// (the Gateway's refresher thread: changes made by another process on the same PostgreSQL apply within
// its period). snapshot() never touches the database.
//
// Scopes: "org", "project" or "key" with the object's id; every mutation names the caller's org and
// checks that the scope object belongs to it in the same transaction (another tenant's object is
// NotFound). Every mutation writes an audit record (tenancy::record_audit) in its transaction.
//
// Money: integer micro-units (1 USD = 1,000,000). Prices are micro-units per 1M tokens (input,
// output, cached input) or per unit of a metered quantity (per_unit), effective from a time on:
// a price change adds a row and never rewrites the past; the price of a request is the newest row
// effective at the request's start.
//
// Thread-safety: thread-safe; snapshot() is cheap (one shared_ptr copy under a mutex).
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "storage/database.h"
#include "tenancy/tenant_store.h"

namespace nc::gateway {

enum class Scope { kOrg, kProject, kKey };
const char* scope_name(Scope s);
Result<Scope> parse_scope(const std::string& s);

struct Limits {
  std::optional<int64_t> rpm, tpm, max_concurrent, max_tokens;
};

struct Price {
  std::string item;  // a model id or a meter name (e.g. "gpu_seconds:H100")
  int64_t effective_from = 0;  // unix microseconds
  int64_t input_per_mtok = 0, output_per_mtok = 0, cached_per_mtok = 0, per_unit = 0;
};

struct Budget {
  Scope scope = Scope::kOrg;
  std::string scope_id, org_id;
  int64_t monthly_limit_micros = 0;
};

// Cost in micro-units of tokens at `p`, rounded up (a hold computed the same way is never below the
// settled cost), saturating at INT64_MAX / 2. `prompt_tokens` includes `cached_tokens`.
int64_t token_cost_micros(const Price& p, int64_t prompt_tokens, int64_t completion_tokens, int64_t cached_tokens);
// "YYYY-MM" (UTC) of a unix-microsecond time: the budget period.
std::string budget_period(int64_t t_us);

struct Snapshot {
  std::map<std::pair<Scope, std::string>, Limits> limits;
  std::map<std::pair<Scope, std::string>, Budget> budgets;
  std::map<std::string, std::vector<Price>> prices;  // per item, ascending effective_from
  const Limits* find_limits(Scope s, const std::string& id) const;
  const Budget* find_budget(Scope s, const std::string& id) const;
  // The price of `item` at time t, or null (unpriced: costs 0).
  const Price* price_at(const std::string& item, int64_t t_us) const;
};

class Policy {
 public:
  explicit Policy(storage::Database& db) : db_(db) {}

  // Loads everything now (a failure keeps the current snapshot).
  Status refresh();
  // The current snapshot.
  std::shared_ptr<const Snapshot> snapshot() const;

  // Sets (replaces) the limits of one scope object of org_id; all-empty Limits delete them.
  Status set_limits(const std::string& org_id, Scope scope, const std::string& scope_id, const Limits& l,
                    const tenancy::Actor& actor);
  Status set_budget(const std::string& org_id, Scope scope, const std::string& scope_id,
                    std::optional<int64_t> monthly_limit_micros, const tenancy::Actor& actor);
  // Adds a price row (operator only: the HTTP layer checks). AlreadyExists for the same item and time.
  Status add_price(const Price& p, const tenancy::Actor& actor);

  struct BudgetStatus {
    Budget budget;
    int64_t spent_micros = 0, held_micros = 0;
  };
  Result<std::vector<BudgetStatus>> budgets(const std::string& org_id, const std::string& period);
  Result<std::vector<std::pair<std::pair<Scope, std::string>, Limits>>> limits(const std::string& org_id);
  Result<std::vector<Price>> prices();

 private:
  // NotFound unless the scope object exists in org_id.
  static Status check_owner(storage::Transaction& tx, const std::string& org_id, Scope scope, const std::string& id);

  storage::Database& db_;
  mutable std::mutex mu_;
  std::shared_ptr<const Snapshot> snap_ = std::make_shared<Snapshot>();
};

}  // namespace nc::gateway
