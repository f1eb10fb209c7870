// JobBudgets: how jobs are held against the billing budgets (the key's, project's and organization's
// monthly budgets, which the gateway owns) like inference requests are. The app gives the hooks (the
// capacity module knows no gateway):
//   - at submit, one run's worst case (GPUs x max_duration_s, priced at the dearest item the job may be
//     billed as) is held; a budget without room refuses the job: ResourceExhausted with field "budget"
//     (HTTP 429 insufficient_quota);
//   - the hold is given back when the job ends, after the pass that meters its last segment (its
//     real cost is then in the budget's spend);
//   - while it runs, every heartbeat asks whether its budgets still have room (an operator may have
//     lowered one; metered segments of a requeued job count twice until it ends): a job whose budget
//     ran out is stopped after grace_s.
// Without hooks nothing is held.
//
// Ownership: a value in the JobController. Threads: not synchronized; the controller calls it under
// its lock (the hooks must not call back into the controller).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "capacity/job_record.h"
#include "core/status.h"

namespace nc::capacity {

struct JobBudgetHooks {
  // Holds the cost of `quantity` units of the dearest of `items` against the budgets of
  // org / project / key; returns a hold id (0: no budget applies, nothing held) or ResourceExhausted.
  std::function<Result<int64_t>(const std::string& org, const std::string& project, const std::string& key,
                                const std::vector<std::string>& items, int64_t quantity)>
      hold;
  std::function<void(int64_t hold)> release;
  // Whether the hold's budgets are still within their limits.
  std::function<bool(int64_t hold)> within;
  int grace_s = 60;  // SIGTERM -> SIGKILL for a job whose budget ran out
};

class JobBudgets {
 public:
  explicit JobBudgets(JobBudgetHooks hooks) : hooks_(std::move(hooks)) {}

  bool enabled() const { return static_cast<bool>(hooks_.hold); }
  int grace_s() const { return hooks_.grace_s; }
  // One run's worst case for a job of this spec that may run on `gpu_types` (the cluster's types when
  // the spec names none). The hold id (0: none).
  Result<int64_t> hold(const std::string& org, const std::string& project, const std::string& key, const JobSpec& spec,
                       const std::vector<std::string>& gpu_types);
  // At the job's end: given back by release_due() (after the pass's metering).
  void release_later(int64_t hold) {
    if (hold != 0) due_.push_back(hold);
  }
  void release_due();
  // A hold that bought nothing (its job never queued): given back at once, alone.
  void release_now(int64_t hold) {
    if (hold != 0 && hooks_.release) hooks_.release(hold);
  }
  bool within(int64_t hold) const { return hold == 0 || !hooks_.within || hooks_.within(hold); }

 private:
  JobBudgetHooks hooks_;
  std::vector<int64_t> due_;
};

}  // namespace nc::capacity
