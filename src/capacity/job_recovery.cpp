// JobController's persistence (the class is job_controller.h's): save_dirty() writes the jobs and
// reservations changed since the last save through the JobStore (outside the controller's mutex; a
// failed save is retried by the next tick), and recover() rebuilds the controller from the store after a
// restart or a crash — quotas, reservations (ReservationBook::restore) and jobs: a segment that was
// running when the last process went away is closed at the last saved alive time, metered (the ledger
// dedupes), what that process launched is killed (Executor::kill_leftover), and the job is requeued
// (node_failed when requeue is off) — unless the server has now died twice while the job ran: then it is
// held (failed, with a "held" event) instead of relaunched, so a job that kills the server cannot make
// it crash in a loop (the sandbox should make that impossible; this is the second wall).
//
// Ownership and threads: as the JobController's. recover() is called once, before start(); save_dirty()
// only by tick().
#include <fmt/format.h>

#include <algorithm>
#include <memory>
#include <mutex>

#include "capacity/job_controller.h"
#include "capacity/job_store.h"
#include "core/log.h"
#include "core/timer.h"

namespace nc::capacity {

Status JobController::save_dirty() {
  if (!options_.store) {
    std::lock_guard<std::mutex> lock(mu_);
    dirty_.clear();
    (void)reservations_.take_dirty();
    return Status::ok();
  }
  std::vector<Job> copies;
  std::vector<ReservationRecord> res_copies;
  {
    std::lock_guard<std::mutex> lock(mu_);
    res_copies = reservations_.take_dirty();
    std::sort(dirty_.begin(), dirty_.end());
    dirty_.erase(std::unique(dirty_.begin(), dirty_.end()), dirty_.end());
    for (const auto& id : dirty_) {
      auto it = jobs_.find(id);
      if (it != jobs_.end()) copies.push_back(it->second->job);
    }
    dirty_.clear();
  }
  for (const auto& r : res_copies) {
    Status rs = options_.store->save_reservation(r);
    if (!rs.is_ok()) {
      NC_LOG_WARN("saving reservation {}: {} (retrying)", r.id, rs.to_string());
      std::lock_guard<std::mutex> lock(mu_);
      reservations_.mark_dirty(r.id);
    }
  }
  Status s = options_.store->save_all(copies);
  if (!s.is_ok()) {
    NC_LOG_WARN("saving {} job(s): {} (retrying)", copies.size(), s.to_string());
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& j : copies) dirty_.push_back(j.id);
  }
  return s;
}

Status JobController::recover() {
  if (!options_.store) return Status::ok();
  NC_ASSIGN_OR_RETURN(auto quotas, options_.store->load_quotas());
  NC_ASSIGN_OR_RETURN(auto jobs, options_.store->load_all());
  NC_ASSIGN_OR_RETURN(auto reservations, options_.store->load_reservations());
  NC_RETURN_IF_ERROR(users_.load());
  std::lock_guard<std::mutex> lock(mu_);
  reservations_.restore(std::move(reservations), [this] { return next_sched_id_++; }, unmetered_);
  for (const auto& q : quotas) {
    Status s = scheduler_->set_quota(q.org, q.gpu_type, q.gpus_milli);
    if (!s.is_ok()) NC_LOG_WARN("quota of {} on '{}': {}", q.org, q.gpu_type, s.to_string());
  }
  const int64_t now = unix_us();
  int requeued = 0, queued = 0;
  for (auto& job : jobs) {
    auto l = std::make_unique<Live>();
    l->job = std::move(job);
    l->sched_id = next_sched_id_++;
    l->submitted_us = l->job.created_us;
    l->segment = static_cast<int>(l->job.segments.size()) - 1;
    Live& r = *l;
    if (!is_terminal(r.job.state)) {
      // A segment without an end was running (or placed) when the last process went away.
      if (!r.job.segments.empty() && r.job.segments.back().ended_us == 0 && r.job.segments.back().started_us == 0) {
        r.job.segments.pop_back();  // placed but never launched: nothing ran
        r.segment -= 1;
      }
      bool interrupted_now = false;
      if (!r.job.segments.empty() && r.job.segments.back().ended_us == 0) {
        interrupted_now = true;
        JobSegment& seg = r.job.segments.back();
        seg.ended_us = std::max(seg.started_us, std::min(now, r.job.alive_us));
        seg.end = "interrupted";
        if (seg.started_us > 0 && !seg.metered) {
          unmetered_.push_back(segment_usage(r.job, seg));
        }
        event(r, "interrupted", fmt::format("segment {}: the server stopped while it ran", seg.index));
        // What the dead process launched may still run: it must not hold GPUs the scheduler now hands out.
        if (Status k = executor_->kill_leftover(r.job.id, seg.index); !k.is_ok()) {
          NC_LOG_WARN("job {} segment {}: stopping what was left: {}", r.job.id, seg.index, k.to_string());
        }
        ++requeued;
      }
      if (r.job.state == JobState::kRunning && !r.job.spec.requeue) {
        finish(r, JobState::kNodeFailed, now, "the server stopped while it ran");
      } else if (interrupted_now || r.job.held) {
        // The server died while it ran: not relaunched blindly (a job that kills the server would crash
        // it in a loop). It waits, held, until its owner or the operator releases it.
        r.job.state = JobState::kQueued;
        if (!r.job.held) {
          r.job.held = true;
          event(r, "held", "the server stopped while it ran; POST /v1/jobs/" + r.job.id + "/release to run it again");
          NC_LOG_WARN("job {} of {}: held after the server stopped while it ran", r.job.id, r.job.org);
        }
        dirty(r);
      } else {
        r.job.state = JobState::kQueued;
        // Held against its budgets again (holds live in memory); one that no longer fits does not run.
        auto hold = budgets_.hold(r.job.org, r.job.project, r.job.api_key_id, r.job.spec, scheduler_->placer().types());
        Status s = hold.is_ok() ? scheduler_->submit(sched_job(r)) : hold.status();
        if (hold.is_ok()) r.budget_hold = *hold;
        if (!s.is_ok()) {
          finish(r, JobState::kFailed, now, "cannot queue again: " + s.message());
        } else {
          ++queued;
        }
      }
    } else {
      // Ended segments whose usage may not have reached the ledger: meter again (it dedupes).
      for (const auto& seg : r.job.segments) {
        if (seg.ended_us > 0 && seg.started_us > 0 && !seg.metered) {
          unmetered_.push_back(segment_usage(r.job, seg));
        }
      }
    }
    by_sched_[r.sched_id] = l.get();
    jobs_[r.job.id] = std::move(l);
  }
  if (!jobs.empty()) NC_LOG_INFO("jobs: recovered {} job(s): {} queued again ({} interrupted)", jobs.size(), queued, requeued);
  return Status::ok();
}

}  // namespace nc::capacity

namespace nc::capacity {

Result<Job> JobController::release(const std::string& org, const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  Live* l = find(org, id);
  if (!l) return not_found(fmt::format("no job '{}'", id));
  if (!l->job.held || is_terminal(l->job.state)) {
    return failed_precondition(fmt::format("job {} is not held ({})", id, job_state_name(l->job.state)));
  }
  NC_ASSIGN_OR_RETURN(l->budget_hold,
                      budgets_.hold(l->job.org, l->job.project, l->job.api_key_id, l->job.spec, scheduler_->placer().types()));
  if (Status s = scheduler_->submit(sched_job(*l)); !s.is_ok()) {
    budgets_.release_now(l->budget_hold);
    l->budget_hold = 0;
    return s;
  }
  l->job.held = false;
  event(*l, "released");
  dirty(*l);
  wake();
  return l->job;
}

}  // namespace nc::capacity
