// JobController's reservation calls (job_controller.h), which it hands to its ReservationBook
// (reservation_book.h) under its lock, waking the loop when the schedule may change.
#include "capacity/job_controller.h"

#include "core/ids.h"
#include "core/timer.h"

namespace nc::capacity {

Result<ReservationRecord> JobController::reserve(const std::string& org, ReservationRecord spec) {
  const int64_t now = unix_us();
  NC_RETURN_IF_ERROR(ReservationBook::validate(spec, now, options_.max_duration_limit_s));
  spec.id = random_id("res_", 16);
  spec.org = org;
  std::lock_guard<std::mutex> lock(mu_);
  NC_ASSIGN_OR_RETURN(auto rec, reservations_.add(std::move(spec), next_sched_id_++, now));
  wake();
  return rec;
}

std::vector<ReservationRecord> JobController::reservations(const std::string& org) const {
  std::lock_guard<std::mutex> lock(mu_);
  return reservations_.list(org);
}

Result<ReservationRecord> JobController::reservation(const std::string& org, const std::string& id) const {
  std::lock_guard<std::mutex> lock(mu_);
  return reservations_.get(org, id);
}

Result<ReservationRecord> JobController::cancel_reservation(const std::string& org, const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  NC_ASSIGN_OR_RETURN(auto rec, reservations_.cancel(org, id));
  wake();
  return rec;
}

}  // namespace nc::capacity
