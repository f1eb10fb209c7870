// UsageHolds (usage_holds.h).
#include "gateway/usage_holds.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/timer.h"

namespace nc::gateway {
namespace {

Status refusal(const std::string& why) {
  return resource_exhausted("You exceeded your current quota, please check your plan and billing details. " + why)
      .with_field("budget");
}

// The stored counters (database budgets) of the first of `mine` whose spent + held + extra passes its
// limit (mine's), or null.
const Policy::BudgetStatus* first_over(const std::vector<Policy::BudgetStatus>& status, const std::vector<Budget>& mine,
                                       int64_t extra, const Budget** which) {
  for (const auto& b : status) {
    for (const auto& m : mine) {
      if (b.budget.scope == m.scope && b.budget.scope_id == m.scope_id &&
          b.spent_micros + b.held_micros + extra > m.monthly_limit_micros) {
        *which = &m;
        return &b;
      }
    }
  }
  return nullptr;
}

}  // namespace

Result<int64_t> UsageHolds::hold(const std::string& org, const std::string& project, const std::string& key,
                                 const std::vector<std::string>& items, int64_t quantity) {
  auto snap = policy_.snapshot();
  const int64_t now = nc::unix_us();
  int64_t per_unit = 0;
  for (const auto& item : items) {
    if (const Price* p = snap->price_at(item, now)) per_unit = std::max(per_unit, p->per_unit);
  }
  const __int128 cost = static_cast<__int128>(per_unit) * quantity;
  const int64_t micros = cost > INT64_MAX / 2 ? INT64_MAX / 2 : static_cast<int64_t>(cost);
  return hold_micros(org, project, key, micros,
                     fmt::format("this job may cost up to {:.6f} USD ({} units at {:.6f}); lower max_duration_seconds or "
                                 "ask for a larger budget",
                                 micros / 1e6, quantity, per_unit / 1e6));
}

Result<int64_t> UsageHolds::hold_micros(const std::string& org, const std::string& project, const std::string& key,
                                        int64_t micros, const std::string& what) {
  const int64_t now = nc::unix_us();
  auto snap = policy_.snapshot();
  Hold h;
  h.org = org;
  h.period = budget_period(now);
  for (auto [s, id] : {std::pair{Scope::kOrg, &org}, std::pair{Scope::kProject, &project}, std::pair{Scope::kKey, &key}}) {
    if (id->empty()) continue;
    if (const Budget* b = snap->find_budget(s, *id)) h.budgets.push_back(*b);
  }
  if (h.budgets.empty()) return int64_t{0};
  h.micros = micros;
  if (in_process_) {
    if (auto refused = accountant_.try_hold(h.budgets, h.period, h.micros)) return refusal(*refused + "; " + what);
  } else {
    NC_ASSIGN_OR_RETURN(auto status, policy_.budgets(org, h.period));
    const Budget* mine = nullptr;
    if (const auto* b = first_over(status, h.budgets, h.micros, &mine)) {
      return refusal(fmt::format("the monthly budget of {} {} is {:.6f} USD; {:.6f} spent, {:.6f} held; {}",
                                 scope_name(mine->scope), mine->scope_id, mine->monthly_limit_micros / 1e6,
                                 b->spent_micros / 1e6, b->held_micros / 1e6, what));
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t id = next_++;
  holds_.emplace(id, std::move(h));
  return id;
}

void UsageHolds::release(int64_t id) {
  Hold h;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = holds_.find(id);
    if (it == holds_.end()) return;
    h = std::move(it->second);
    holds_.erase(it);
  }
  if (in_process_) accountant_.release(h.budgets, h.period, h.micros);
}

bool UsageHolds::within(int64_t id) {
  Hold h;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = holds_.find(id);
    if (it == holds_.end()) return true;
    h = it->second;
  }
  // The limits as they are now (an operator may have lowered one).
  auto snap = policy_.snapshot();
  for (Budget& b : h.budgets) {
    const Budget* now = snap->find_budget(b.scope, b.scope_id);
    b.monthly_limit_micros = now ? now->monthly_limit_micros : INT64_MAX / 2;
  }
  if (in_process_) return accountant_.within(h.budgets, h.period);
  auto status = policy_.budgets(h.org, h.period);
  if (!status.is_ok()) return true;  // unknown: keep running; the next heartbeat asks again
  const Budget* mine = nullptr;
  return first_over(*status, h.budgets, 0, &mine) == nullptr;
}

}  // namespace nc::gateway
