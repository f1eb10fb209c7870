// LocalExecutor: the Executor that runs jobs on this machine with posix_spawn (or clone3 straight into
// the node's cgroup when cgroups are on). Each task is its own session and process group; the "nodes"
// of a multi-node job are simulated here: every node's tasks run locally with that node's GPU indices
// in CUDA_VISIBLE_DEVICES and MASTER_ADDR=127.0.0.1 (so a job's "node-b" is a label, not another
// machine). Used by the single-machine deployment and as the reference the executor suite is checked
// against.
//
// Stopping a job stops its whole process tree: signals go to each task's process group and to every
// process found in the task's session (/proc scan), so children that made their own process group die
// too. With cgroups active (below) every node of a segment also gets a cgroup, whose members are
// signalled as well (this also catches processes that called setsid); without them a process that
// leaves the session (setsid, daemonizing) escapes. When a segment ends, processes it left behind are
// SIGKILLed (a job owns nothing past its end) and the executor keeps killing and reaping them in later
// poll() calls until none is left.
//
// Policy beyond the Executor contract: when a task fails (non-zero exit, or a signal we did not send),
// the other tasks of the segment get SIGTERM (SIGKILL after grace_period_s), like srun's
// --kill-on-bad-exit: a distributed job with a dead rank only hangs. The report is kFailed with the
// first failing task's status (a task ended by a signal: exit_code 0 and that signal, as sacct says
// it). terminate() of a segment whose tasks have all exited but which poll() has not yet reported
// returns OK and changes nothing: the report keeps the real outcome. max_duration_s and grace periods
// are enforced by poll(), so the caller must poll at least once a second; ended_at_us is when poll()
// saw the last task end. Every job id + segment ever launched is remembered (AlreadyExists).
//
// Orphans: with reap_orphans (default) the constructor makes this process a child subreaper
// (PR_SET_CHILD_SUBREAPER), so a job's processes whose parent died are re-parented here instead of to
// init (which on some machines never reaps them), and poll() reaps those that belong to its jobs'
// sessions. The flag is process-wide and stays set after the executor is gone; other components' orphans
// then also come to this process, which never reaps what it cannot tell is its own.
//
// cgroup detection, creation and clone3 into a cgroup are local_cgroups.h's (JobCgroups). Helper
// commands: none (this executor signals and scans /proc itself; subprocess.h is for Slurm's and the
// inventory's commands).
//
// Sandbox (job_sandbox.h, options.sandbox): when active, every task runs under bubblewrap as the uid
// LaunchSpec::run_as_uid gives (this process being root), and working_dir is the job's own directory:
// the executor makes it the job user's (chown, 0700) and binds it at /home/job (HOME and the working
// directory inside). A task the sandbox reports as ended with 128 + N (N a signal number) is reported as
// killed by signal N. kRequired without a working sandbox: every launch is FailedPrecondition.
// LaunchSpec::image (runs_images(): sandbox on and podman's images available, job_images.h): the
// segment's tasks share one container's file system as their root; the container is removed when the
// segment's last process is gone, and the constructor removes those a crashed server left.
//
// Ownership: a LocalExecutor owns the processes (and cgroups) it launched; the destructor SIGKILLs every
// one still running and reaps it. Threads: not synchronized; launch/terminate/poll/running and the
// destructor are called by one thread (the job controller's). posix_spawn is safe in a threaded process.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "capacity/executor.h"
#include "capacity/job_sandbox.h"
#include "capacity/local_cgroups.h"

namespace nc::capacity {

struct LocalExecutorOptions {
  // Node names a job may be assigned to; empty: any name. GPU indices must be < gpus_per_node
  // (0: not checked).
  std::vector<std::string> nodes;
  int gpus_per_node = 0;
  // cgroups: each node of a segment runs in its own cgroup under cgroup_parent (empty: this process's
  // cgroup under /sys/fs/cgroup), with cpu.max / memory.max from NodeAssignment where those controllers
  // are enabled, and pids_max. Off when there is neither a writable cgroup2 directory nor writable v1
  // hierarchies (see cgroup_status()).
  // Where the host has no usable cgroup v2, the cgroup v1 hierarchies (local_cgroups.h) instead.
  bool use_cgroups = true;
  std::string cgroup_parent;
  int64_t pids_max = 4096;  // processes one node of a job may have at once (a fork bomb stops there); 0: no limit
  bool reap_orphans = true;  // become a child subreaper (see above)
  // A job's log is cut at this size, with a line saying so (log_cap.h); 0: no cap.
  int64_t max_log_bytes = 256LL << 20;
  SandboxOptions sandbox;  // off by default; `serve` asks for kAuto or kRequired
  ImageOptions images;     // container images (job_images.h): off by default; used only with the sandbox
  // Tests only: the n-th task spawn (0-based, across the nodes of one launch) fails, to exercise the
  // gang rollback. -1: never.
  int fail_spawn_at = -1;
};

class LocalExecutor final : public Executor {
 public:
  explicit LocalExecutor(LocalExecutorOptions options = {});
  ~LocalExecutor() override;
  LocalExecutor(const LocalExecutor&) = delete;
  LocalExecutor& operator=(const LocalExecutor&) = delete;

  std::string_view name() const override { return "local"; }
  Status launch(const LaunchSpec& spec) override;
  Status terminate(const std::string& job_id, int segment, int grace_s) override;
  std::vector<ExitReport> poll() override;
  size_t running() const override { return segments_.size(); }
  Status kill_leftover(const std::string& job_id, int segment) override;

  // Whether jobs run in cgroups; cgroup_status() says why not (or the parent directory used).
  bool cgroups_active() const { return cgroups_.active(); }
  const std::string& cgroup_status() const { return cgroups_.status(); }
  const JobSandbox& sandbox() const { return sandbox_; }
  bool confined() const override { return sandbox_.active(); }
  bool runs_images() const override { return sandbox_.active() && images_.available(); }
  const JobImages& images() const { return images_; }

  // The MASTER_PORT of a job: executor.h's master_port (20000 + (FNV-1a of the job id) % 10000).
  static int master_port(std::string_view job_id);

 private:
  enum class StopCause { kNone, kFailed, kTerminated, kTimedOut };
  struct Task {
    pid_t pid = 0;  // also its process group and session id
    int node_rank = 0;
    int local_rank = 0;
    bool done = false;
    int status = 0;  // from waitpid
  };
  // The processes of one segment, found by session (each task's pid is its session id), by cgroup, and
  // (once met in a scan) by pid, so that orphans which left the session are still reaped.
  struct ProcessSet {
    std::set<pid_t> sids;
    std::set<pid_t> seen;
    std::vector<std::string> cgroups;  // one per node while cgroups are active
    bool sandboxed = false;  // the tasks are bwrap: only SIGKILL goes to them (job_sandbox.h)
    std::string image;       // the container whose file system the tasks run in (released once all are gone)
  };
  struct Segment {
    std::string job_id;
    int segment = 0;
    std::vector<std::string> node_names;
    std::vector<Task> tasks;
    ProcessSet procs;
    int64_t started_us = 0;            // unix time
    int64_t started_mono_us = 0;
    int64_t max_duration_s = 0;
    int grace_period_s = 10;
    StopCause cause = StopCause::kNone;
    int64_t kill_at_mono_us = 0;  // SIGKILL when reached (0: not scheduled)
    bool killed = false;
    int first_bad = -1;  // index in tasks of the first task that ended badly
    std::string log_path;
    bool log_capped = false;
    bool sandboxed = false;  // exit status 128+N means signal N
  };

  Status spawn_all(const LaunchSpec& spec, Segment& seg);
  void reap_tasks(Segment& seg, int64_t now_mono_us);
  void stop(Segment& seg, StopCause cause, int grace_s, int64_t now_mono_us);
  // Sends sig (0: none) to every process of the set, updating procs.seen; returns how many live
  // (non-zombie) processes it met. Reaps the zombies among them that are our children, except tasks.
  int signal_all(ProcessSet& procs, int sig);
  // SIGKILLs what is left of an ended segment; keeps it in leftovers_ until nothing is left.
  void retire(ProcessSet procs);
  // One round of that for every leftover; true when none is left.
  bool sweep_leftovers();
  ExitReport make_report(const Segment& seg, int64_t now_us) const;
  std::string make_cgroup(const LaunchSpec& spec, int node_rank);  // "" when it could not

  LocalExecutorOptions options_;
  JobCgroups cgroups_;
  JobSandbox sandbox_;
  JobImages images_;
  std::map<std::pair<std::string, int>, std::unique_ptr<Segment>> segments_;
  std::set<std::pair<std::string, int>> launched_;  // every job id + segment ever launched
  std::vector<ProcessSet> leftovers_;  // what reported segments left behind, until it is gone
  int64_t last_scan_mono_us_ = 0;
};

}  // namespace nc::capacity
