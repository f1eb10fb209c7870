// ReservationBook (reservation_book.h): reservations' states, holds and metering.
#include "capacity/reservation_book.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <utility>

#include "capacity/job_store.h"
#include "core/log.h"
#include "core/timer.h"

namespace nc::capacity {

void ReservationBook::restore(std::vector<ReservationRecord> records, const std::function<uint64_t()>& new_sched_id,
                              std::vector<SegmentUsage>& unmetered) {
  for (auto& rec : records) {
    Live lr;
    lr.sched_id = new_sched_id();
    const int64_t t = unix_us();
    if (rec.released_us == 0 && (rec.state == ReservationState::kPending || rec.state == ReservationState::kActive) &&
        rec.end_us > t) {
      Status s = scheduler_.add_reservation({lr.sched_id, rec.org, rec.gpu_type, rec.gpus, rec.start_us, rec.end_us}, t);
      if (!s.is_ok()) NC_LOG_WARN("reservation {} could not be restored: {}", rec.id, s.to_string());
      rec.state = ReservationState::kPending;  // activates again (activated_us is kept: billed across the restart)
    } else if (rec.released_us == 0) {
      // It ended while the server was down: it held its GPUs until its end.
      if (rec.state == ReservationState::kPending || rec.state == ReservationState::kActive) rec.state = ReservationState::kEnded;
      if (rec.activated_us > 0) {
        rec.released_us = std::min(t, rec.end_us);
        unmetered.push_back(reservation_usage(rec));
      } else {
        rec.released_us = -1;
      }
    } else if (rec.released_us > 0 && !rec.metered) {
      unmetered.push_back(reservation_usage(rec));
    }
    lr.rec = rec;
    dirty_.push_back(rec.id);
    reservations_[rec.id] = std::move(lr);
  }
}

Status ReservationBook::validate(ReservationRecord& spec, int64_t now_us, int64_t max_duration_limit_s) {
  if (spec.gpus < 1) return invalid_argument("'gpus' must be at least 1");
  if (spec.gpu_type.empty()) return invalid_argument("'gpu_type' is required");
  if (spec.start_us == 0) spec.start_us = now_us;
  if (spec.end_us <= spec.start_us) return invalid_argument("the end must be after the start");
  if (spec.end_us <= now_us) return invalid_argument("the reservation would already be over");
  if (spec.end_us - std::max(spec.start_us, now_us) > max_duration_limit_s * 1000000) {
    return invalid_argument(fmt::format("a reservation lasts at most {} s", max_duration_limit_s));
  }
  return Status::ok();
}

Result<ReservationRecord> ReservationBook::add(ReservationRecord spec, uint64_t sched_id, int64_t now_us) {
  spec.created_us = now_us;
  spec.state = ReservationState::kPending;
  Live lr;
  lr.sched_id = sched_id;
  Reservation r{lr.sched_id, spec.org, spec.gpu_type, spec.gpus, spec.start_us, spec.end_us};
  NC_RETURN_IF_ERROR(scheduler_.add_reservation(r, now_us));
  if (store_) {
    Status saved = store_->save_reservation(spec);
    if (!saved.is_ok()) {
      (void)scheduler_.cancel_reservation(lr.sched_id);
      return unavailable("the reservation could not be stored: " + saved.message());
    }
  }
  lr.rec = spec;
  reservations_[spec.id] = lr;
  return spec;
}

const ReservationBook::Live* ReservationBook::find(const std::string& org, const std::string& id) const {
  auto it = reservations_.find(id);
  if (it == reservations_.end() || it->second.rec.org != org) return nullptr;
  return &it->second;
}

std::vector<ReservationRecord> ReservationBook::list(const std::string& org) const {
  std::vector<ReservationRecord> out;
  for (const auto& [id, lr] : reservations_) {
    if (lr.rec.org == org) out.push_back(lr.rec);
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.start_us != b.start_us ? a.start_us > b.start_us : a.id > b.id; });
  return out;
}

Result<ReservationRecord> ReservationBook::get(const std::string& org, const std::string& id) const {
  const Live* lr = find(org, id);
  if (!lr) return not_found(fmt::format("no reservation '{}'", id));
  return lr->rec;
}

Result<ReservationRecord> ReservationBook::cancel(const std::string& org, const std::string& id) {
  if (!find(org, id)) return not_found(fmt::format("no reservation '{}'", id));
  Live& lr = reservations_.at(id);
  ReservationRecord& rec = lr.rec;
  if (rec.state != ReservationState::kPending && rec.state != ReservationState::kActive) {
    return failed_precondition(fmt::format("reservation {} is already {}", id, reservation_state_name(rec.state)));
  }
  NC_RETURN_IF_ERROR(scheduler_.cancel_reservation(lr.sched_id));
  rec.state = ReservationState::kCancelled;
  if (store_) (void)store_->save_reservation(rec);
  return rec;
}

Status ReservationBook::check_usable(const std::string& org, const std::string& project, const std::string& id) const {
  const Live* lr = find(org, id);
  if (!lr || (!lr->rec.project.empty() && !project.empty() && lr->rec.project != project))
    return not_found(fmt::format("no reservation '{}'", id));
  const auto st = lr->rec.state;
  if (st != ReservationState::kPending && st != ReservationState::kActive) {
    return failed_precondition(fmt::format("reservation {} is {}", id, reservation_state_name(st)));
  }
  return Status::ok();
}

uint64_t ReservationBook::sched_id(const std::string& id) const {
  auto it = reservations_.find(id);
  return it != reservations_.end() ? it->second.sched_id : UINT64_MAX;
}

void ReservationBook::refresh(int64_t now_us, std::vector<SegmentUsage>& usage) {
  for (auto& [id, lr] : reservations_) {
    ReservationRecord& rec = lr.rec;
    if (rec.released_us != 0) continue;  // done (-1: it ended without ever holding GPUs)
    auto info = scheduler_.reservation_info(lr.sched_id);
    if (info) {
      if (info->state == ReservationInfo::State::kActive && rec.state == ReservationState::kPending) {
        rec.state = ReservationState::kActive;
        if (rec.activated_us == 0) rec.activated_us = now_us;
        rec.nodes.clear();
        for (const auto& part : info->placement.parts) {
          NodeAssignment a;
          a.node = scheduler_.cluster().node(part.node).id;
          for (const auto& g : part.gpus) a.gpus.push_back(g.gpu);
          std::sort(a.gpus.begin(), a.gpus.end());
          rec.nodes.push_back(std::move(a));
        }
        dirty_.push_back(id);
      }
      if (rec.waiting != info->waiting) {
        rec.waiting = info->waiting;
        dirty_.push_back(id);
      }
      continue;
    }
    // The scheduler is done with it: its GPUs are back.
    if (rec.state != ReservationState::kCancelled) rec.state = ReservationState::kEnded;
    if (rec.activated_us > 0) {
      rec.released_us = now_us;
      usage.push_back(reservation_usage(rec));
    } else {
      rec.released_us = -1;
    }
    dirty_.push_back(id);
  }
}

bool ReservationBook::mark_metered(const std::string& id) {
  auto it = reservations_.find(id);
  if (it == reservations_.end()) return false;
  it->second.rec.metered = true;
  dirty_.push_back(id);
  return true;
}

std::vector<ReservationRecord> ReservationBook::take_dirty() {
  std::sort(dirty_.begin(), dirty_.end());
  dirty_.erase(std::unique(dirty_.begin(), dirty_.end()), dirty_.end());
  std::vector<ReservationRecord> out;
  for (const auto& id : dirty_) {
    auto it = reservations_.find(id);
    if (it != reservations_.end()) out.push_back(it->second.rec);
  }
  dirty_.clear();
  return out;
}

}  // namespace nc::capacity
