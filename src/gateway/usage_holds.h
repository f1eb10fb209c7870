// UsageHolds: budget holds for metered usage that runs for a while — a GPU job — taken before it
// starts, like an inference request's hold: the worst-case cost (quantity x the dearest per-unit price
// of the items it may be billed as) against the monthly budgets of its key, project and organization.
// In-process budgets (SQLite: this process is the ledger's only writer) hold it in BudgetAccountant,
// so concurrent inference and jobs can never spend past a budget; database budgets (several
// processes on PostgreSQL) only check the room at hold time (spent + held in the database), so
// concurrent holds there may overspend by what they check at the same moment.
// A refusal is ResourceExhausted with field "budget" (HTTP 429 insufficient_quota).
//
// Ownership: the Gateway owns one; it borrows the Gateway's Policy and BudgetAccountant.
// Threads: thread-safe. hold() and within() may read the database (database budgets).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "core/status.h"
#include "gateway/budget_accountant.h"
#include "gateway/policy.h"

namespace nc::gateway {

class UsageHolds {
 public:
  UsageHolds(Policy& policy, BudgetAccountant& accountant) : policy_(policy), accountant_(accountant) {}
  void set_in_process(bool in_process) { in_process_ = in_process; }

  // The hold's id, or 0 when no budget applies or the usage is unpriced (nothing held).
  Result<int64_t> hold(const std::string& org, const std::string& project, const std::string& key,
                       const std::vector<std::string>& items, int64_t quantity);
  // The same for a cost already computed (fine-tuning's training tokens); `what` ends the refusal.
  Result<int64_t> hold_micros(const std::string& org, const std::string& project, const std::string& key, int64_t micros,
                              const std::string& what);
  void release(int64_t id);
  // Whether every budget of the hold is within its limit (spent + held <= limit).
  bool within(int64_t id);

 private:
  struct Hold {
    std::string org;
    std::vector<Budget> budgets;
    std::string period;
    int64_t micros = 0;
  };
  Policy& policy_;
  BudgetAccountant& accountant_;
  bool in_process_ = false;
  std::mutex mu_;
  std::map<int64_t, Hold> holds_;
  int64_t next_ = 1;
};

}  // namespace nc::gateway
