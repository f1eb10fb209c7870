// JobController (job_controller.h): the job API and the tick (poll the executor, apply the Scheduler's
// decisions, launch and stop outside the mutex, meter). Persistence, recovery and held jobs:
// job_recovery.cpp; the reservation calls: job_reservations.cpp.
#include "capacity/job_controller.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>

#include "capacity/job_inputs.h"
#include "capacity/job_store.h"
#include "core/ids.h"
#include "core/log.h"
#include "core/timer.h"

namespace nc::capacity {
namespace {

std::vector<std::string> node_names(const Cluster& cluster) {
  std::vector<std::string> names;
  for (const auto& n : cluster.nodes()) names.push_back(n.id);
  return names;
}

}  // namespace

JobController::JobController(std::unique_ptr<Scheduler> scheduler, std::unique_ptr<Executor> executor,
                             JobControllerOptions options)
    : scheduler_(std::move(scheduler)),
      executor_(std::move(executor)),
      options_(std::move(options)),
      reservations_(*scheduler_, options_.store),
      users_(options_.store, options_.job_uids),
      budgets_(options_.budget),
      health_(node_names(scheduler_->cluster()), unix_us(), options_.node_timeout_s, options_.self_nodes) {}

Status JobController::heartbeat(const std::string& node) {
  std::lock_guard<std::mutex> lock(mu_);
  NC_ASSIGN_OR_RETURN(bool back, health_.heartbeat(node, unix_us()));
  if (back) {
    (void)scheduler_->set_node_down(node, false);
    NC_LOG_INFO("node {} is back", node);
  }
  return Status::ok();
}

std::vector<NodeStatus> JobController::nodes() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<NodeStatus> out;
  for (const auto& n : scheduler_->cluster().nodes()) {
    out.push_back({n.id, n.gpu_type, n.num_gpus(), n.gpu_free_milli(), health_.down(n.id), health_.last_heartbeat_us(n.id)});
  }
  return out;
}

void JobController::check_nodes(int64_t now_us) {
  for (const NodeHealth::Lost& lost : health_.check(now_us)) {
    const std::string& node = lost.node;
    auto on_it = scheduler_->set_node_down(node, true);
    NC_LOG_WARN("node {} lost its heartbeat ({} s): {} job(s) on it", node, (now_us - lost.last_us) / 1000000,
                on_it.is_ok() ? on_it->size() : 0);
    if (!on_it.is_ok()) continue;
    for (uint64_t id : *on_it) {
      auto it = by_sched_.find(id);
      if (it == by_sched_.end()) continue;
      Live& l = *it->second;
      if (is_terminal(l.job.state)) continue;
      l.node_lost_us = lost.last_us;
      event(l, "node_lost", fmt::format("node {} lost its heartbeat", node));
      if (l.launched) {
        terminate_later(l, 0, fmt::format("stop on lost node {}", node));
      } else {
        // Placed, waiting for preempted jobs: place it again elsewhere.
        (void)scheduler_->remove(l.sched_id);
        if (!l.job.segments.empty() && l.job.segments.back().ended_us == 0) l.job.segments.pop_back();
        l.segment = static_cast<int>(l.job.segments.size()) - 1;
        l.node_lost_us = 0;
        (void)scheduler_->submit(sched_job(l));
      }
    }
  }
}

JobController::~JobController() { stop(); }

void JobController::start() {
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { loop(); });
}

void JobController::stop() {
  {
    std::lock_guard<std::mutex> lock(wake_mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void JobController::loop() {
  for (;;) {
    tick();
    std::unique_lock<std::mutex> lock(wake_mu_);
    wake_.wait_for(lock, std::chrono::milliseconds(options_.tick_ms), [&] { return wake_flag_ || stopping_; });
    if (stopping_) return;
    wake_flag_ = false;
  }
}

void JobController::event(Live& l, std::string type, std::string detail) {
  l.job.events.push_back({unix_us(), std::move(type), std::move(detail)});
  dirty(l);
}

SchedJob JobController::sched_job(const Live& l) const {
  SchedJob j;
  j.id = l.sched_id;
  j.org = l.job.org;
  j.priority = l.job.spec.priority;
  j.shape = l.job.spec.shape;
  j.max_duration_s = l.job.spec.max_duration_s;
  j.submitted_us = l.submitted_us;
  if (!l.job.spec.reservation.empty()) {
    j.reservation = reservations_.sched_id(l.job.spec.reservation);  // unknown: the scheduler refuses it
  }
  return j;
}

Result<Job> JobController::submit(const std::string& org, const std::string& project, JobSpec spec,
                                  const std::string& api_key_id) {
  NC_RETURN_IF_ERROR(check_job_spec(spec));
  if (executor_->confined() && !spec.working_dir.empty()) {
    return invalid_argument("working_dir: jobs run in their own directory (/home/job, also $HOME); cd in the command instead")
        .with_field("working_dir");
  }
  if (!spec.image.empty() && !executor_->runs_images())
    return invalid_argument("image: this cloud runs no container images (`serve` says why at start)").with_field("image");
  if (spec.max_duration_s == 0) spec.max_duration_s = options_.default_max_duration_s;
  if (spec.max_duration_s > options_.max_duration_limit_s) {
    return invalid_argument(fmt::format("max_duration_seconds must be at most {}", options_.max_duration_limit_s));
  }
  auto l = std::make_unique<Live>();
  l->job.id = random_id("job_", 16);
  l->job.org = org;
  l->job.project = project;
  l->job.api_key_id = api_key_id;
  l->job.spec = std::move(spec);
  l->job.created_us = unix_us();
  l->job.log_path = (std::filesystem::path(options_.log_dir) / l->job.id / "output.log").string();
  l->submitted_us = l->job.created_us;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const auto cpu_only = l->job.spec.shape.gpus != 0 ? 0 : std::count_if(jobs_.begin(), jobs_.end(), [&](const auto& e) {
      return e.second->job.org == org && e.second->job.spec.shape.gpus == 0 && !is_terminal(e.second->job.state);
    });
    if (l->job.spec.shape.gpus == 0 && cpu_only >= options_.max_cpu_only_jobs_per_org) {
      return resource_exhausted(fmt::format("{} CPU-only jobs queued or running; at most {} at once per organization",
                                            cpu_only, options_.max_cpu_only_jobs_per_org))
          .with_field("gpus");
    }
    if (!l->job.spec.reservation.empty()) NC_RETURN_IF_ERROR(reservations_.check_usable(org, project, l->job.spec.reservation));
    NC_ASSIGN_OR_RETURN(l->budget_hold, budgets_.hold(org, project, api_key_id, l->job.spec, scheduler_->placer().types()));
    l->sched_id = next_sched_id_++;
    if (Status s = scheduler_->submit(sched_job(*l)); !s.is_ok()) {
      budgets_.release_now(l->budget_hold);
      return s;
    }
    event(*l, "submitted", std::string(priority_name(l->job.spec.priority)));
    if (options_.store) {
      // The job is stored before the caller hears of it.
      Status saved = options_.store->save(l->job);
      if (!saved.is_ok()) {
        (void)scheduler_->remove(l->sched_id);
        return unavailable("the job could not be stored; nothing was queued: " + saved.message());
      }
    }
    by_sched_[l->sched_id] = l.get();
    Job copy = l->job;
    jobs_[copy.id] = std::move(l);
    wake();
    return copy;
  }
}

JobController::Live* JobController::find(const std::string& org, const std::string& id) {
  auto it = jobs_.find(id);
  if (it == jobs_.end() || it->second->job.org != org) return nullptr;
  return it->second.get();
}

const JobController::Live* JobController::find(const std::string& org, const std::string& id) const {
  auto it = jobs_.find(id);
  if (it == jobs_.end() || it->second->job.org != org) return nullptr;
  return it->second.get();
}

Result<Job> JobController::get(const std::string& org, const std::string& id) const {
  std::lock_guard<std::mutex> lock(mu_);
  const Live* l = find(org, id);
  if (!l) return not_found(fmt::format("no job '{}'", id));
  Job j = l->job;
  if (j.held) {
    j.pending_reason = "held";
  } else if (j.state == JobState::kQueued) {
    if (auto info = scheduler_->info(l->sched_id)) j.pending_reason = std::string(pending_reason_name(info->reason));
  }
  return j;
}

std::vector<Job> JobController::list(const std::string& org, std::optional<JobState> state) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Job> out;
  for (const auto& [id, l] : jobs_) {
    if (l->job.org != org || (state && l->job.state != *state)) continue;
    out.push_back(l->job);
  }
  std::sort(out.begin(), out.end(), [](const Job& a, const Job& b) {
    return a.created_us != b.created_us ? a.created_us > b.created_us : a.id > b.id;
  });
  return out;
}

Result<Job> JobController::cancel(const std::string& org, const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  Live* l = find(org, id);
  if (!l) return not_found(fmt::format("no job '{}'", id));
  if (is_terminal(l->job.state)) {
    return failed_precondition(fmt::format("job {} already ended ({})", id, job_state_name(l->job.state)));
  }
  if (l->cancel_requested) return l->job;
  l->cancel_requested = true;
  event(*l, "cancel_requested");
  if (l->job.state == JobState::kQueued || !l->launched) {
    // Queued, or placed and waiting for preempted jobs to stop: nothing runs yet.
    (void)scheduler_->remove(l->sched_id);
    finish(*l, JobState::kCancelled, unix_us(), "cancelled before it ran");
  } else {
    terminate_later(*l, options_.grace_period_s, "cancel");
    wake();  // the loop sends the SIGTERM now
  }
  if (options_.store) (void)options_.store->save(l->job);  // (a failure is retried with the dirty set)
  return l->job;
}

Result<std::pair<std::string, int64_t>> JobController::logs(const std::string& org, const std::string& id,
                                                            int64_t offset, int64_t max_bytes) const {
  std::string path;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const Live* l = find(org, id);
    if (!l) return not_found(fmt::format("no job '{}'", id));
    path = l->job.log_path;
  }
  if (offset < 0) return invalid_argument("offset must not be negative");
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::make_pair(std::string(), offset);  // no output yet
  in.seekg(0, std::ios::end);
  const int64_t size = static_cast<int64_t>(in.tellg());
  if (offset >= size) return std::make_pair(std::string(), size);
  const int64_t n = std::min(max_bytes, size - offset);
  std::string buf(static_cast<size_t>(n), '\0');
  in.seekg(offset);
  in.read(buf.data(), n);
  return std::make_pair(std::move(buf), offset + n);
}

Status JobController::set_quota(const std::string& org, const std::string& gpu_type, std::optional<int64_t> milli) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!gpu_type.empty() && scheduler_->placer().type_id(gpu_type) < 0) {
    return invalid_argument(fmt::format("unknown GPU type '{}'", gpu_type));
  }
  if (milli && *milli < 0) return invalid_argument("a quota must not be negative");
  if (options_.store) NC_RETURN_IF_ERROR(options_.store->save_quota(org, gpu_type, milli));
  return scheduler_->set_quota(org, gpu_type, milli);
}

std::vector<JobController::QuotaView> JobController::quotas(const std::string& org) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<QuotaView> out;
  std::vector<std::string> types = {""};
  for (const auto& t : scheduler_->placer().types()) types.push_back(t);
  for (const auto& t : types) {
    auto [limit, used] = scheduler_->quota_of(org, t);
    out.push_back({t, limit, used});
  }
  return out;
}

void JobController::finish(Live& l, JobState s, int64_t now_us, std::string detail) {
  budgets_.release_later(l.budget_hold);  // after this pass meters its last segment
  l.budget_hold = 0;
  l.job.state = s;
  l.job.finished_us = now_us;
  event(l, std::string(job_state_name(s)), std::move(detail));
}

void JobController::launch(Live& l, int64_t now_us) {
  LaunchSpec spec;
  spec.job_id = l.job.id;
  spec.segment = l.segment;
  spec.command = l.job.spec.command;
  spec.args = l.job.spec.args;
  spec.env = l.job.spec.env;
  spec.image = l.job.spec.image;
  spec.inputs = l.job.spec.inputs;
  spec.log_path = l.job.log_path;
  std::error_code ec;
  const auto job_dir = std::filesystem::path(l.job.log_path).parent_path();
  // Confined: the job's own directory, apart from its log (which the job must not be able to replace).
  spec.working_dir = executor_->confined()              ? (job_dir / "work").string()
                     : l.job.spec.working_dir.empty() ? job_dir.string()
                                                      : l.job.spec.working_dir;
  std::filesystem::create_directories(executor_->confined() ? spec.working_dir : job_dir.string(), ec);
  spec.tasks_per_node = l.job.spec.tasks_per_node;
  spec.max_duration_s = l.job.spec.max_duration_s;
  spec.grace_period_s = options_.grace_period_s;
  spec.nodes = l.job.segments.back().nodes;
  // Running from here: a cancel now stops it once launched. run_actions() launches it (outside mu_),
  // then records "started" or, if the executor refuses it, ends it as failed.
  l.launched = true;
  l.job.state = JobState::kRunning;
  // When it began (the executor's report gives the exact time at the end); what a crash recovery meters from.
  l.job.segments.back().started_us = now_us;
  l.job.alive_us = now_us;
  dirty(l);
  ExecAction a;
  a.launch = true;
  a.job_id = l.job.id;
  a.org = l.job.org;
  a.segment = l.segment;
  a.spec = std::move(spec);
  actions_.push_back(std::move(a));
}

void JobController::terminate_later(Live& l, int grace_s, std::string what) {
  ExecAction a;
  a.job_id = l.job.id;
  a.segment = l.segment;
  a.grace_s = grace_s;
  a.what = std::move(what);
  actions_.push_back(std::move(a));
}

void JobController::wake() {
  {
    std::lock_guard<std::mutex> w(wake_mu_);
    wake_flag_ = true;
  }
  wake_.notify_all();
}

void JobController::run_actions() {
  std::vector<ExecAction> todo;
  {
    std::lock_guard<std::mutex> lock(mu_);
    todo.swap(actions_);
  }
  if (todo.empty()) return;
  struct Outcome {
    size_t action;
    Status status;
  };
  std::vector<Outcome> outcomes;
  std::set<std::pair<std::string, int>> failed_launches;
  for (size_t i = 0; i < todo.size(); ++i) {
    const ExecAction& a = todo[i];
    if (a.launch) {
      Status s;
      if (executor_->confined()) {  // the organization's own uid
        auto uid = users_.uid_for(a.org);
        if (uid.is_ok()) todo[i].spec.run_as_uid = *uid;
        s = uid.status();
      }
      if (s.is_ok() && !a.spec.inputs.empty()) s = stage_job_inputs(a.spec.inputs, a.spec.working_dir);
      if (s.is_ok()) s = executor_->launch(a.spec);
      if (!s.is_ok()) failed_launches.insert({a.job_id, a.segment});
      outcomes.push_back({i, std::move(s)});
    } else if (!failed_launches.count({a.job_id, a.segment})) {
      // NotFound: it ended (and was reported) after the stop was decided; nothing to stop.
      Status s = executor_->terminate(a.job_id, a.segment, a.grace_s);
      if (!s.is_ok() && s.code() != StatusCode::kNotFound) NC_LOG_WARN("{} {}: {}", a.what, a.job_id, s.to_string());
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t now = unix_us();
  for (const Outcome& o : outcomes) {
    const ExecAction& a = todo[o.action];
    auto it = jobs_.find(a.job_id);
    if (it == jobs_.end() || it->second->segment != a.segment) continue;
    Live& l = *it->second;
    if (o.status.is_ok()) {
      std::string where;
      for (const auto& n : a.spec.nodes) {
        where += fmt::format("{}{}:[{}]", where.empty() ? "" : " ", n.node, fmt::join(n.gpus, ","));
      }
      event(l, "started", fmt::format("segment {} on {}", l.segment, where));
      continue;
    }
    l.launched = false;
    (void)scheduler_->remove(l.sched_id);
    JobSegment& seg = l.job.segments.back();
    seg.started_us = seg.ended_us = std::max(seg.started_us, now);
    seg.end = "launch_failed";
    if (l.cancel_requested) {
      finish(l, JobState::kCancelled, now, "cancelled; its launch had failed: " + o.status.message());
    } else {
      finish(l, JobState::kFailed, now, "launch failed: " + o.status.message());
    }
  }
}

void JobController::handle_end(Live& l, const ExitReport& r, std::vector<SegmentUsage>& usage) {
  JobSegment& seg = l.job.segments.back();
  seg.started_us = r.started_at_us;
  seg.ended_us = r.ended_at_us;
  const bool node_lost = l.node_lost_us != 0 || r.kind == ExitKind::kNodeFailed;
  if (l.node_lost_us != 0) {
    seg.ended_us = std::max(seg.started_us, std::min(seg.ended_us, l.node_lost_us));  // billed until it was last seen
    l.node_lost_us = 0;
  }
  seg.end = std::string(exit_kind_name(r.kind));
  usage.push_back(segment_usage(l.job, seg));
  l.launched = false;
  (void)scheduler_->remove(l.sched_id);
  const int64_t now = unix_us();
  if (l.cancel_requested) {
    finish(l, JobState::kCancelled, now, l.budget_stop ? "stopped: its budget ran out" : r.detail);
  } else if (l.stop_requested) {
    finish(l, JobState::kTimedOut, now, "its reservation ended");
  } else if (node_lost) {
    if (l.job.spec.requeue) {
      l.job.state = JobState::kQueued;
      if (Status s = scheduler_->submit(sched_job(l)); !s.is_ok()) {
        finish(l, JobState::kNodeFailed, now, "requeue failed: " + s.message());
      } else {
        event(l, "requeued", "after its node failed");
      }
    } else {
      finish(l, JobState::kNodeFailed, now, r.detail);
    }
  } else if (l.preempt_requested && r.kind == ExitKind::kTerminated) {
    l.preempt_requested = false;
    event(l, "preempted", fmt::format("segment {}", seg.index));
    if (l.job.spec.requeue) {
      l.job.state = JobState::kQueued;
      if (Status s = scheduler_->submit(sched_job(l)); !s.is_ok()) {
        finish(l, JobState::kPreempted, now, "requeue failed: " + s.message());
      } else {
        event(l, "requeued");
      }
    } else {
      finish(l, JobState::kPreempted, now, "");
    }
  } else {
    l.job.exit_code = r.exit_code;
    // Killed at its time limit: never 0 (a task that exited 0 on our SIGTERM still did not finish).
    // 128 + the signal as a shell reports it, else 124 as timeout(1) does.
    if (r.kind == ExitKind::kTimedOut && r.exit_code == 0) l.job.exit_code = r.signal != 0 ? 128 + r.signal : 124;
    finish(l, job_state_of(r.kind), now, r.detail);
  }
}

void JobController::tick() {
  std::lock_guard<std::mutex> tick_lock(tick_mu_);
  const int64_t t_begin = now_ns() / 1000;
  run_actions();  // stops asked for since the last pass (cancel)
  std::vector<ExitReport> reports = executor_->poll();
  std::vector<SegmentUsage> usage;
  {
    std::lock_guard<std::mutex> lock(mu_);
    usage.swap(unmetered_);
    for (const ExitReport& r : reports) {
      auto it = jobs_.find(r.job_id);
      if (it == jobs_.end() || it->second->segment != r.segment) continue;
      Live& l = *it->second;
      const uint64_t victim = l.sched_id;
      handle_end(l, r, usage);
      // Jobs waiting for this victim may now launch.
      for (auto& [id, other] : jobs_) {
        auto& w = other->waiting_for;
        if (w.empty()) continue;
        w.erase(std::remove(w.begin(), w.end(), victim), w.end());
        if (w.empty() && other->job.state == JobState::kQueued && !other->cancel_requested &&
            !other->job.segments.empty() && other->job.segments.back().ended_us == 0 && !other->launched) {
          launch(*other, unix_us());
        }
      }
    }
    const int64_t now = unix_us();
    check_nodes(now);
    if (now - last_heartbeat_us_ >= static_cast<int64_t>(options_.heartbeat_s) * 1000000) {
      last_heartbeat_us_ = now;
      for (auto& [id, l] : jobs_) {
        if (l->launched) {
          l->job.alive_us = now;
          dirty(*l);
          if (!l->cancel_requested && !budgets_.within(l->budget_hold)) {
            l->cancel_requested = l->budget_stop = true;
            event(*l, "stopping", "its budget ran out");
            terminate_later(*l, budgets_.grace_s(), "budget");
          }
        }
      }
    }
    for (const Decision& d : scheduler_->schedule(now)) {
      auto it = by_sched_.find(d.job);
      if (it == by_sched_.end()) continue;
      Live& l = *it->second;
      if (d.kind == Decision::Kind::kStop) {
        if (l.launched) {
          l.stop_requested = true;
          event(l, "stopping", "its reservation ended");
          terminate_later(l, options_.grace_period_s, "stop");
        } else if (!is_terminal(l.job.state)) {
          (void)scheduler_->remove(l.sched_id);  // placed but not launched (a no-op when it was queued)
          finish(l, JobState::kCancelled, now, "its reservation ended before it ran");
        }
        continue;
      }
      if (d.kind == Decision::Kind::kPreempt) {
        l.preempt_requested = true;
        event(l, "preempting", "a higher-priority job needs its GPUs");
        terminate_later(l, options_.grace_period_s, "preempt");
        continue;
      }
      // Start: a new segment on the placement.
      l.segment += 1;
      JobSegment seg;
      seg.index = l.segment;
      seg.gpu_type = d.placement.gpu_type;
      seg.gpu_milli = d.placement.total_gpu_milli();
      for (const auto& part : d.placement.parts) {
        NodeAssignment a;
        a.node = scheduler_->cluster().node(part.node).id;
        for (const auto& g : part.gpus) {
          a.gpus.push_back(g.gpu);
          a.gpu_milli = g.milli;
        }
        std::sort(a.gpus.begin(), a.gpus.end());
        a.cpu_milli = part.cpu_milli;
        a.memory_mib = part.memory_mib;
        seg.nodes.push_back(std::move(a));
      }
      l.job.segments.push_back(std::move(seg));
      l.placement = d.placement;
      l.waiting_for.clear();
      for (uint64_t v : d.after) {
        auto vit = by_sched_.find(v);
        if (vit != by_sched_.end() && vit->second->launched) l.waiting_for.push_back(v);
      }
      if (l.waiting_for.empty()) {
        launch(l, now);
      } else {
        event(l, "placed", fmt::format("waiting for {} preempted job(s) to stop", l.waiting_for.size()));
      }
    }
  }
  run_actions();  // this pass's launches and stops
  {
    std::lock_guard<std::mutex> lock(mu_);
    reservations_.refresh(unix_us(), usage);
  }
  // Meter outside the lock (it may write to a database), then record that it was metered.
  const int64_t t_meter = now_ns() / 1000;
  std::vector<SegmentUsage> failed, done;
  for (const auto& u : usage) {
    Status s = options_.meter ? options_.meter(u) : Status::ok();
    if (!s.is_ok()) {
      NC_LOG_WARN("metering {} segment {}: {} (retrying)", u.job_id, u.segment, s.to_string());
      failed.push_back(u);
    } else {
      done.push_back(u);
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    unmetered_.insert(unmetered_.end(), failed.begin(), failed.end());
    for (const auto& u : done) {
      if (reservations_.mark_metered(u.job_id)) continue;
      auto it = jobs_.find(u.job_id);
      if (it == jobs_.end()) continue;
      for (auto& seg : it->second->job.segments) {
        if (seg.index == u.segment) seg.metered = true;
      }
      dirty(*it->second);
    }
    budgets_.release_due();  // ended jobs' holds: their cost is in the budgets' spend now
  }
  const int64_t t_save = now_ns() / 1000;
  (void)save_dirty();
  // Stops, ends and launches wait for this pass: a slow one is worth a line in the log.
  const int64_t t_end = now_ns() / 1000;
  if (t_end - t_begin >= 5'000'000) {
    NC_LOG_WARN("jobs: one scheduling pass took {:.1f} s (executor and scheduler {:.1f} s, metering {} segment(s) {:.1f} s, "
                "saving {:.1f} s)",
                (t_end - t_begin) / 1e6, (t_meter - t_begin) / 1e6, usage.size(), (t_save - t_meter) / 1e6,
                (t_end - t_save) / 1e6);
  }
}

}  // namespace nc::capacity
