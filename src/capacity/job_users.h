// JobUsers: the Unix uid each organization's jobs run as when the executor confines them
// (executor.h: LaunchSpec::run_as_uid). An organization gets the next free uid of the range
// [base, base + count) the first time one of its jobs launches, and keeps it for good: the mapping is
// persisted (capacity schema v5, table job_users, through JobStore) and a uid is never given to a second
// organization, so files one tenant's jobs left behind can never become another's. The uids need no
// /etc/passwd entry for the local executor.
//
// Ownership: borrows the JobStore (null: memory only, for tests). Threads: not synchronized; the job
// controller calls it under its lock.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "core/status.h"

namespace nc::capacity {

class JobStore;

struct JobUserRange {
  int64_t base = 1'900'000'000;  // above the ranges distributions give to users and containers
  int64_t count = 1'000'000;
};

class JobUsers {
 public:
  JobUsers(JobStore* store, JobUserRange range);
  Status load();  // the stored mapping (call once before uid_for)
  // The organization's uid, allocated (and persisted first) on first use. ResourceExhausted when the
  // range is used up.
  Result<int64_t> uid_for(const std::string& org);

 private:
  JobStore* store_;
  JobUserRange range_;
  std::map<std::string, int64_t> uids_;
  int64_t next_ = 0;
};

}  // namespace nc::capacity
