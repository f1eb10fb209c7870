// FineTuneStore: fine-tuning jobs and their events in the database (schema.h, version 7), so that a
// restarted server knows every job, its state, checkpoints and events.
// Ownership: borrows the Database. Threads: thread-safe; calls block on database I/O.
#pragma once

#include <string>
#include <vector>

#include "storage/database.h"
#include "training/fine_tune_job.h"

namespace nc::training {

class FineTuneStore {
 public:
  explicit FineTuneStore(storage::Database& db) : db_(db) {}
  // The job and the new events (their seq above every stored one), in one transaction.
  Status save(const FineTuneJob& j, const std::vector<FineTuneEvent>& new_events = {});
  Result<std::vector<FineTuneJob>> load_all();
  // Newest first (OpenAI's order): those with seq below `before_seq` (0: from the newest), at most limit.
  Result<std::vector<FineTuneEvent>> events(const std::string& job_id, int64_t before_seq, int64_t limit);

 private:
  storage::Database& db_;
};

}  // namespace nc::training
