// BudgetAccountant: month-to-date spend and in-flight holds per (scope, id, month) in this process's
// memory, so a budget check and hold costs a mutex instead of a durable database commit on the
// request's path. Exact when this process is the ledger's only writer — serve on SQLite, which
// `neocloud serve` enforces with a lock file; several processes on one PostgreSQL use the ledger's
// transactional hold instead (Ledger::hold with budgets).
//
// load() reads the `spend` counters once at start (after Ledger::reconcile). Every settled request and
// usage event of this process is added with add_spent(); holds are taken with try_hold() — all the
// request's budgets at once or none — and given back with release().
//
// Thread-safety: thread-safe (one mutex; every call is O(budgets)).
#pragma once
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "core/status.h"
#include "gateway/policy.h"
#include "storage/database.h"

namespace nc::gateway {

class BudgetAccountant {
 public:
  // The counters of `period` from the database.
  Status load(storage::Database& db, const std::string& period);

  // Holds `amount` against every budget in `budgets` for `period` if all of them have room; otherwise
  // returns the refusal's message and holds nothing.
  std::optional<std::string> try_hold(const std::vector<Budget>& budgets, const std::string& period, int64_t amount);
  void release(const std::vector<Budget>& budgets, const std::string& period, int64_t amount);
  // Whether spent + held is within every budget's limit.
  bool within(const std::vector<Budget>& budgets, const std::string& period);
  // Spend of a settled request or event, on each of its counter scopes ((scope, id) pairs).
  void add_spent(const std::vector<std::pair<Scope, std::string>>& scopes, const std::string& period, int64_t cost);

 private:
  struct Totals {
    int64_t spent = 0, held = 0;
  };
  using Key = std::tuple<Scope, std::string, std::string>;
  std::mutex mu_;
  std::map<Key, Totals> totals_;
};

}  // namespace nc::gateway
