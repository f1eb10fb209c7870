// JobUsers (job_users.h).
#include "capacity/job_users.h"

#include <fmt/format.h>

#include <algorithm>

#include "capacity/job_store.h"

namespace nc::capacity {

JobUsers::JobUsers(JobStore* store, JobUserRange range) : store_(store), range_(range), next_(range.base) {}

Status JobUsers::load() {
  if (!store_) return Status::ok();
  NC_ASSIGN_OR_RETURN(auto rows, store_->load_job_users());
  for (const auto& [org, uid] : rows) {
    uids_[org] = uid;
    next_ = std::max(next_, uid + 1);
  }
  return Status::ok();
}

Result<int64_t> JobUsers::uid_for(const std::string& org) {
  if (auto it = uids_.find(org); it != uids_.end()) return it->second;
  if (next_ >= range_.base + range_.count) {
    return resource_exhausted(fmt::format("every job uid of {}..{} is taken; widen --job-uid-range", range_.base,
                                          range_.base + range_.count - 1));
  }
  const int64_t uid = next_;
  if (store_) NC_RETURN_IF_ERROR(store_->save_job_user(org, uid));
  uids_[org] = uid;
  ++next_;
  return uid;
}

}  // namespace nc::capacity
