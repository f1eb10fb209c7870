// JobController: the life of tenants' GPU jobs — submit, queue, place (Scheduler), launch and stop
// (Executor), preempt and requeue, time out, cancel — with an event history per job and one metered
// segment per run. It is what the /v1/jobs API and `neocloud jobs` drive. The records it keeps are
// job_record.h's; reservations are kept by its ReservationBook (reservation_book.h) and node liveness by
// its NodeHealth (node_health.h); persistence and crash recovery through the JobStore are in
// job_recovery.cpp.
//
// States: queued -> running -> succeeded | failed | cancelled | preempted | timed_out | node_failed.
// A spot job preempted by an on-demand/reserved one gets SIGTERM, grace_period_s, SIGKILL, and goes back
// to queued (its original submit time keeps its place) unless requeue is off (then: preempted). Each run
// is a segment (0, 1, ...); when a segment ends the meter callback gets its GPU time once (the ledger
// dedupes on job id + segment, so a repeated call cannot double-bill).
//
// Tenancy: every call names the organization of the caller's key; a job of another organization is
// NotFound, exactly like a job that does not exist.
//
// Ownership: owns the Scheduler, the Executor, the ReservationBook and the NodeHealth; borrows the
// JobStore. Threads: all public methods are thread-safe (one mutex, which also guards the book and the
// health); start() runs a loop thread that polls the executor and runs scheduling cycles every tick_ms
// (and at once after a submit or cancel). Only tick() calls the executor, and never under that mutex:
// launches and stops are decided under it and carried out after it is released, so a slow executor
// (Slurm's commands wait on its controller) never holds up the API. A cancel's SIGTERM is sent by the
// next tick.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "capacity/executor.h"
#include "capacity/job.h"
#include "capacity/job_budget.h"
#include "capacity/job_record.h"
#include "capacity/job_users.h"
#include "capacity/node_health.h"
#include "capacity/reservation_book.h"
#include "capacity/scheduler.h"
#include "core/status.h"

namespace nc::capacity {

struct JobControllerOptions {
  std::string log_dir;                  // <log_dir>/<job id>/output.log
  int tick_ms = 200;
  int grace_period_s = 10;              // preemption and cancel: SIGTERM -> SIGKILL
  int64_t default_max_duration_s = 7 * 86400;
  int64_t max_duration_limit_s = 30 * 86400;
  // Called (under no lock) once per ended segment; its error is logged and the call retried next tick.
  std::function<Status(const SegmentUsage&)> meter;
  // Where jobs and quotas persist (null: memory only). Borrowed; outlives the controller.
  class JobStore* store = nullptr;
  int heartbeat_s = 10;  // how often running jobs' alive time is saved (bounds what a crash can lose)
  // Node health: a node without a heartbeat (heartbeat()) for node_timeout_s is down: nothing new is
  // placed on it, and its jobs are stopped and requeued (node_failed when requeue is off), billed until
  // its last heartbeat. 0: no checks. self_nodes are this machine's: the controller heartbeats them.
  int node_timeout_s = 0;
  std::vector<std::string> self_nodes;
  // CPU-only jobs (gpus 0) an organization may have queued or running at once; beyond, a submit is
  // ResourceExhausted (429). They need no GPU, so nothing else bounds them. 0: none allowed.
  int max_cpu_only_jobs_per_org = 4;
  // Where the executor confines jobs (Executor::confined()): the uids organizations' jobs run as
  // (job_users.h); a job then runs in <log_dir>/<job id>/work, and a spec's working_dir is refused.
  JobUserRange job_uids;
  // Budgets (job_budget.h): held at submit, checked while running, given back at the end.
  JobBudgetHooks budget;
};

class JobController {
 public:
  JobController(std::unique_ptr<Scheduler> scheduler, std::unique_ptr<Executor> executor, JobControllerOptions options);
  ~JobController();

  // With a store: loads quotas and jobs. Jobs that were running when the last process stopped (or
  // crashed) get their segment closed at the last saved alive time (end "interrupted", metered) and are
  // held (queued, pending_reason "held", event "held") until release() — or end as node_failed when
  // requeue is off; queued ones queue again. Call before start().
  Status recover();
  void start();  // the loop thread
  void stop();   // stops the loop; running jobs are SIGKILLed by the executor's destructor

  // InvalidArgument (bad spec), FailedPrecondition (can never fit this cluster).
  // `api_key_id`: the submitting key, billed (with its project and org) for the job's usage.
  Result<Job> submit(const std::string& org, const std::string& project, JobSpec spec, const std::string& api_key_id = "");
  Result<Job> get(const std::string& org, const std::string& id) const;
  std::vector<Job> list(const std::string& org, std::optional<JobState> state = std::nullopt) const;
  // A queued job is cancelled at once; a running one gets SIGTERM (grace, SIGKILL) and is cancelled
  // when it has stopped. FailedPrecondition if it already ended.
  Result<Job> cancel(const std::string& org, const std::string& id);
  // A job held because the server stopped while it ran (recover()) queues again. FailedPrecondition
  // when it is not held; the budget refusal (429) when its budget cannot cover it now.
  Result<Job> release(const std::string& org, const std::string& id);
  // The job's output from byte `offset` (at most max_bytes), and the offset after it.
  Result<std::pair<std::string, int64_t>> logs(const std::string& org, const std::string& id, int64_t offset,
                                               int64_t max_bytes = 1 << 20) const;

  // Persisted (with a store) before it applies. InvalidArgument: unknown type or negative.
  // Reservations. reserve: InvalidArgument (bad fields), FailedPrecondition (no room in the window, quota).
  Result<ReservationRecord> reserve(const std::string& org, ReservationRecord spec);
  std::vector<ReservationRecord> reservations(const std::string& org) const;
  Result<ReservationRecord> reservation(const std::string& org, const std::string& id) const;
  // Its queued jobs are cancelled and its running jobs stopped (ended as timed_out: their time is over).
  Result<ReservationRecord> cancel_reservation(const std::string& org, const std::string& id);

  Status set_quota(const std::string& org, const std::string& gpu_type, std::optional<int64_t> milli);
  struct QuotaView {
    std::string gpu_type;  // "" = over all types
    std::optional<int64_t> limit_milli;
    int64_t used_milli = 0;
  };
  // The org's quota and use: over all types first, then per GPU type of the cluster.
  std::vector<QuotaView> quotas(const std::string& org) const;
  // A node says it is alive (NotFound for an unknown node); a down node comes back.
  Status heartbeat(const std::string& node);
  std::vector<NodeStatus> nodes() const;

  // Runs one tick now (tests and the loop): poll, handle ends, schedule, launch.
  void tick();
  Scheduler& scheduler() { return *scheduler_; }

 private:
  struct Live {
    Job job;
    uint64_t sched_id = 0;
    int64_t submitted_us = 0;
    int segment = -1;               // current / last segment index
    bool launched = false;          // current segment handed to the executor
    bool cancel_requested = false;
    bool preempt_requested = false;
    bool stop_requested = false;        // its reservation ended
    bool budget_stop = false;           // its budget ran out (cancel_requested is set too)
    int64_t budget_hold = 0;            // JobBudgets' hold (0: none)
    int64_t node_lost_us = 0;           // != 0: a node of it lost its heartbeat then (stop, requeue)
    std::vector<uint64_t> waiting_for;  // victims that must stop before launch
    GangPlacement placement;
  };

  Live* find(const std::string& org, const std::string& id);
  const Live* find(const std::string& org, const std::string& id) const;
  void event(Live& l, std::string type, std::string detail = "");
  void handle_end(Live& l, const ExitReport& r, std::vector<SegmentUsage>& usage);
  void launch(Live& l, int64_t now_us);  // decides: the segment is running; run_actions() launches it
  void terminate_later(Live& l, int grace_s, std::string what);
  void run_actions();  // the executor calls decided so far, outside mu_ (tick() only)
  void wake();
  void finish(Live& l, JobState s, int64_t now_us, std::string detail);
  SchedJob sched_job(const Live& l) const;
  void loop();
  void dirty(Live& l) { dirty_.push_back(l.job.id); }
  Status save_dirty();  // writes the jobs changed since the last save (outside mu_)

  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<Executor> executor_;
  JobControllerOptions options_;

  mutable std::mutex mu_;
  std::unordered_map<std::string, std::unique_ptr<Live>> jobs_;
  std::unordered_map<uint64_t, Live*> by_sched_;
  ReservationBook reservations_;
  JobUsers users_;  // the loop thread's (and recover()'s, before it starts)
  JobBudgets budgets_;
  NodeHealth health_;
  void check_nodes(int64_t now_us);  // takes lost nodes out and stops or re-places their jobs
  uint64_t next_sched_id_ = 1;
  // Executor calls decided under mu_, made by run_actions() in order (a launch before a stop of it).
  struct ExecAction {
    bool launch = false;  // else terminate
    std::string job_id;
    std::string org;
    int segment = 0;
    int grace_s = 0;
    LaunchSpec spec;   // launch (run_as_uid set by run_actions)
    std::string what;  // terminate: why, for the log
  };
  std::vector<ExecAction> actions_;
  std::vector<SegmentUsage> unmetered_;  // meter failed: retried
  std::vector<std::string> dirty_;       // job ids changed since the last save
  int64_t last_heartbeat_us_ = 0;

  std::mutex tick_mu_;  // one tick at a time
  std::mutex wake_mu_;
  std::condition_variable wake_;
  bool wake_flag_ = false, stopping_ = false;
  std::thread thread_;
};

}  // namespace nc::capacity
