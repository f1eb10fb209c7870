// JobStore: GPU jobs and quotas in the database (schema v3 "capacity": tables jobs and gpu_quotas), so
// that a restarted server still knows every job, its events and segments, and the operator's quotas.
// A job is one row holding its whole JSON document (job_to_doc) plus the columns queries filter on.
//
// Ownership: borrows the Database (outlives the store). Threads: thread-safe (the Database is); calls
// block on database I/O — not for an I/O thread.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "capacity/job_record.h"
#include "core/status.h"
#include "storage/database.h"

namespace nc::capacity {

struct QuotaRow {
  std::string org, gpu_type;  // gpu_type "" = over all types
  int64_t gpus_milli = 0;
};

// The stored JSON of a job, and back (InvalidArgument naming the field for a malformed document).
nlohmann::json job_to_doc(const Job& j);
Result<Job> job_from_doc(const nlohmann::json& doc);

class JobStore {
 public:
  explicit JobStore(storage::Database& db) : db_(db) {}

  // Inserts or replaces the job's row; durable when it returns OK.
  Status save(const Job& j);
  Status save_all(const std::vector<Job>& jobs);  // one transaction
  // Every stored job (oldest first).
  Result<std::vector<Job>> load_all();

  // nullopt removes the quota. FailedPrecondition if the organization does not exist.
  Status save_quota(const std::string& org, const std::string& gpu_type, std::optional<int64_t> gpus_milli);
  Result<std::vector<QuotaRow>> load_quotas();

  // Organizations' job uids (job_users.h). save_job_user: AlreadyExists if either is taken.
  Status save_job_user(const std::string& org, int64_t uid);
  Result<std::vector<std::pair<std::string, int64_t>>> load_job_users();

  Status save_reservation(const ReservationRecord& r);
  Result<std::vector<ReservationRecord>> load_reservations();

 private:
  storage::Database& db_;
};

}  // namespace nc::capacity
