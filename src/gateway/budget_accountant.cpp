#include "gateway/budget_accountant.h"

#include <fmt/format.h>

namespace nc::gateway {

Status BudgetAccountant::load(storage::Database& db, const std::string& period) {
  std::map<Key, Totals> loaded;
  NC_RETURN_IF_ERROR(db.read([&](storage::Transaction& tx) -> Status {
    loaded.clear();
    NC_ASSIGN_OR_RETURN(auto rows, tx.query("SELECT scope, scope_id, spent_micros FROM spend WHERE period = $1", {period}));
    for (const auto& r : rows) {
      NC_ASSIGN_OR_RETURN(std::string scope, r.get_text(0));
      NC_ASSIGN_OR_RETURN(Scope s, parse_scope(scope));
      NC_ASSIGN_OR_RETURN(std::string id, r.get_text(1));
      NC_ASSIGN_OR_RETURN(int64_t spent, r.get_int(2));
      loaded[Key{s, id, period}].spent = spent;
    }
    return Status::ok();
  }));
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [k, t] : loaded) totals_[k].spent = t.spent;
  return Status::ok();
}

std::optional<std::string> BudgetAccountant::try_hold(const std::vector<Budget>& budgets, const std::string& period,
                                                      int64_t amount) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const Budget& b : budgets) {
    const Totals& t = totals_[Key{b.scope, b.scope_id, period}];
    if (t.spent + t.held + amount > b.monthly_limit_micros) {
      return fmt::format("the monthly budget of {} {} is {:.6f} USD; {:.6f} spent, {:.6f} held by requests in flight, this "
                         "request may cost up to {:.6f}",
                         scope_name(b.scope), b.scope_id, b.monthly_limit_micros / 1e6, t.spent / 1e6, t.held / 1e6,
                         amount / 1e6);
    }
  }
  for (const Budget& b : budgets) totals_[Key{b.scope, b.scope_id, period}].held += amount;
  return std::nullopt;
}

void BudgetAccountant::release(const std::vector<Budget>& budgets, const std::string& period, int64_t amount) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const Budget& b : budgets) totals_[Key{b.scope, b.scope_id, period}].held -= amount;
}

bool BudgetAccountant::within(const std::vector<Budget>& budgets, const std::string& period) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const Budget& b : budgets) {
    const Totals& t = totals_[Key{b.scope, b.scope_id, period}];
    if (t.spent + t.held > b.monthly_limit_micros) return false;
  }
  return true;
}

void BudgetAccountant::add_spent(const std::vector<std::pair<Scope, std::string>>& scopes, const std::string& period,
                                 int64_t cost) {
  if (cost == 0) return;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [s, id] : scopes) totals_[Key{s, id, period}].spent += cost;
}

}  // namespace nc::gateway
