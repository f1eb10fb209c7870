// ReservationBook: the tenants' advance reservations as the job controller keeps them — the records
// (job_record.h's ReservationRecord) next to the Scheduler's own reservations (scheduler.h), their
// persistence through the JobStore, and the usage of each one's hold. A reservation is billed from the
// moment it holds its GPUs (activation) to the moment it gives them back (release): refresh() turns the
// Scheduler's view into those times and hands each ended hold to the meter's list once.
//
// Ownership: the JobController owns one; it borrows the controller's Scheduler and JobStore (null: memory
// only), which outlive it. Threads: not synchronized; the controller calls it only under its own mutex
// (reserve() and cancel() write to the store under it, as the controller's submit does).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "capacity/job_record.h"
#include "capacity/scheduler.h"
#include "core/status.h"

namespace nc::capacity {

class JobStore;

class ReservationBook {
 public:
  ReservationBook(Scheduler& scheduler, JobStore* store) : scheduler_(scheduler), store_(store) {}

  // The stored reservations after a restart: those still to come or running are handed to the Scheduler
  // again (pending; an active one keeps its activation time, so it is billed across the restart); one
  // that ended while the process was down is closed at its end. Ended holds not yet metered go to
  // `unmetered`. new_sched_id gives each its Scheduler id.
  void restore(std::vector<ReservationRecord> records, const std::function<uint64_t()>& new_sched_id,
               std::vector<SegmentUsage>& unmetered);

  // InvalidArgument (bad fields); fills in spec's start (now when 0). max_duration_limit_s bounds what
  // is left of it from now.
  static Status validate(ReservationRecord& spec, int64_t now_us, int64_t max_duration_limit_s);
  // Adds a validated reservation (spec.id and org set): FailedPrecondition when the Scheduler has no
  // room in the window, Unavailable when it could not be stored (then nothing was added).
  Result<ReservationRecord> add(ReservationRecord spec, uint64_t sched_id, int64_t now_us);
  std::vector<ReservationRecord> list(const std::string& org) const;  // newest start first
  Result<ReservationRecord> get(const std::string& org, const std::string& id) const;
  // Its queued jobs are dropped and its running jobs stopped by the Scheduler's next cycle.
  Result<ReservationRecord> cancel(const std::string& org, const std::string& id);

  // A job of org may be submitted into reservation id: NotFound (unknown, another org's) or
  // FailedPrecondition (ended, cancelled).
  // `project`: the job's; a reservation made by another project's key is NotFound to it.
  Status check_usable(const std::string& org, const std::string& project, const std::string& id) const;
  // The Scheduler's id of a reservation; UINT64_MAX if unknown (the Scheduler then refuses the job).
  uint64_t sched_id(const std::string& id) const;

  // Follows the Scheduler: activation (the GPUs it holds), why a pending one waits, and the release of
  // those whose end came, whose ended holds go to `usage`.
  void refresh(int64_t now_us, std::vector<SegmentUsage>& usage);
  // The hold of reservation id reached the meter; false if id is no reservation.
  bool mark_metered(const std::string& id);

  // The records changed since the last call (to be saved), and a failed save's id back.
  std::vector<ReservationRecord> take_dirty();
  void mark_dirty(const std::string& id) { dirty_.push_back(id); }

 private:
  struct Live {
    ReservationRecord rec;
    uint64_t sched_id = 0;
  };
  const Live* find(const std::string& org, const std::string& id) const;

  Scheduler& scheduler_;
  JobStore* store_;
  std::map<std::string, Live> reservations_;
  std::vector<std::string> dirty_;
};

}  // namespace nc::capacity
