// SlurmExecutor: the Executor that runs each job segment as one Slurm batch job (sbatch), watches it with
// squeue / scontrol and stops it with scancel. Tested against a real single-node Slurm 22.05
// (tools/slurm.sh, ctest fixture `slurm`); no slurmdbd is needed (no sacct).
//
// A segment is one batch job: sbatch --parsable --job-name=nc-<job_id>-<segment> --nodes=N
// --nodelist=<the assignment's nodes> --ntasks-per-node=T [--gres=gpu:G] [--time=<backstop>]
// --output=<log_path> --open-mode=append --chdir=<working_dir> --no-requeue, with a generated bash batch
// script (passed on sbatch's stdin; every value in it single-quoted) that runs the N*T tasks with
// `srun --kill-on-bad-exit=1` (a failing rank stops the others, like LocalExecutor) and a small per-task
// wrapper that sets the contract's environment (executor.h) and execs `command args...`:
//   - NODE_RANK is the index of the task's node (SLURMD_NODENAME) in spec.nodes, so rank 0 runs on
//     spec.nodes[0] whatever order Slurm sorts its nodelist in; RANK = NODE_RANK * T + SLURM_LOCALID.
//   - MASTER_ADDR is spec.nodes[0]'s NodeAddr (scontrol show node), MASTER_PORT the same value as
//     LocalExecutor (master_port() in executor.h: 20000 + FNV-1a(job id) % 10000).
//   - Every node of a job must get the same number of GPUs (one --gres=gpu:G for the job): a spec with
//     different counts is InvalidArgument, as are repeated node names.
//
// GPU indices (SlurmExecutorOptions::gpu_indices):
//   - kSlurm (default): Slurm owns the allocation. The job asks --gres=gpu:<count> (a fractional job asks
//     for one whole GPU: no gres/shard) and each task's CUDA_VISIBLE_DEVICES / NVIDIA_VISIBLE_DEVICES are
//     the indices Slurm allocated on its node, read by the batch script from `scontrol show job -d`
//     ("GRES=gpu:fake:2(IDX:0-1)"): with gres File= entries that are not real NVIDIA devices, Slurm itself
//     sets no CUDA_VISIBLE_DEVICES. Where Slurm does manage real devices (it sets SLURM_JOB_GPUS or
//     SLURM_STEP_GPUS in the task), its own CUDA_VISIBLE_DEVICES is kept (untested here: no real GPUs;
//     with ConstrainDevices those are renumbered from 0 inside the job). The assignment's indices are then
//     only the scheduler's bookkeeping: two concurrent jobs always see disjoint GPUs because Slurm says so.
//   - kAssignment: the neocloud scheduler owns placement (exact indices, fractional packing) and Slurm is
//     only the launcher: tasks see the assignment's indices; whole-GPU jobs still ask --gres=gpu:<count>
//     (so Slurm's counts agree with the scheduler's) and fractional jobs ask for no GPU gres (several of
//     them may share one GPU). Correct only if nothing else allocates GPUs in the partition, and not on a
//     cluster that confines devices (ConstrainDevices), where visible indices are renumbered.
//
// Polling: poll() runs `squeue --states=all -j <our ids>` at most every poll_interval_ms; a job that left
// RUNNING / COMPLETING is read once with `scontrol show job -o` (JobState, ExitCode, StartTime, EndTime)
// and reported. The cluster must keep finished jobs visible for a while (MinJobAge, 300 in tools/slurm.sh);
// a job Slurm no longer knows is reported as kNodeFailed. State mapping: COMPLETED -> kSucceeded;
// FAILED, OUT_OF_MEMORY, a CANCELLED we did not ask for, PREEMPTED -> kFailed; TIMEOUT, DEADLINE -> kTimedOut;
// NODE_FAIL, BOOT_FAIL, pending too long for a node Slurm reports down or drained (node_unavailable_s)
// -> kNodeFailed; any end after terminate() -> kTerminated and after the executor's own
// max_duration_s stop -> kTimedOut. exit_code / signal are the first failing task's (the batch script reads
// srun's "task N: Exited with exit code C" / "task N: Killed" lines and exits with C, or kills itself with
// the signal, so Slurm's ExitCode=C:S carries it).
// Times: Slurm's StartTime / EndTime have 1 s resolution; started_at / ended_at are narrowed with when this
// executor first saw the job running / ended (never before launch()), so they are within a poll interval.
//
// Stopping: terminate() and max_duration_s (enforced by poll() from the executor's own clock, within a poll
// interval of the deadline; --time is only a backstop of ceil((max_duration_s + grace) / 60) + 1 minutes)
// send SIGTERM to every process of the job's steps (`scancel --signal=TERM`, not the batch shell: srun would
// turn a TERM into an immediate kill), or cancel the job outright while it has no running step yet (pending,
// or the batch script has not started srun: no task process exists); after the grace period SIGKILL to
// each running step (`scancel --signal=KILL <job>.<step>`: a job-level KILL would be a cancel, which
// sends SIGTERM and waits the cluster's KillWait first) and `scancel <job>`, repeated every 15 s until
// Slurm reports the job ended (a lost request must not leave it holding its GPUs). A step that is still
// launching its tasks loses a SIGTERM (Slurm 22.05 lists the step, accepts the signal and delivers
// nothing), so when the newest step started at most 2 s before the SIGTERM, it is sent again 1 s and 3 s
// later (while the job is still RUNNING): a program that has just started may see several. Slurm's process
// tracking (proctrack/linuxproc or cgroup) finds the tasks' children, so whole process trees die. The
// caller must poll at least once a second.
//
// Every Slurm command runs through run_subprocess (subprocess.h: posix_spawn, argv, no shell) under
// command_timeout_ms; one that fails to run, times out or takes 5 s or more is logged (warning). What
// the commands print is parsed by slurm_output.h; sbatch's arguments and the batch script are
// slurm_script.h's. Slurm's own CPU / memory limits are not used (NodeAssignment::cpu_milli /
// memory_mib are ignored).
// Sandbox (options.sandbox, job_sandbox.h): each task execs bubblewrap through setpriv as the job's
// run_as_uid (never root) with the job's own directory (made the job user's) at /home/job; the nodes
// need bubblewrap, and the jobs directory on a path they share with this server.
// Ownership: the executor owns the Slurm jobs it submitted until poll() reported them; the destructor
// SIGKILLs the steps of every one not yet reported and cancels it. Threads: not synchronized (one caller thread).
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "capacity/executor.h"
#include "capacity/job_sandbox.h"
#include "capacity/slurm_script.h"

namespace nc::capacity {

struct SlurmExecutorOptions {
  std::string slurm_conf;  // SLURM_CONF for every Slurm command (and so the jobs); empty: inherited
  std::string partition;   // empty: the cluster's default partition
  std::string bin_dir;     // where sbatch, squeue, scontrol, scancel are; empty: looked up in PATH
  int poll_interval_ms = 250;        // squeue at most this often
  int command_timeout_ms = 20000;    // any one Slurm command
  // A job that pends this long because Slurm says its node is unavailable (down, drained: reason
  // ReqNodeNotAvail / NodeDown) is cancelled and reported as kNodeFailed; 0: it waits.
  int node_unavailable_s = 60;
  SlurmGpuIndices gpu_indices = SlurmGpuIndices::kSlurm;
  SandboxOptions sandbox;  // off by default; `serve` asks for kAuto or kRequired
  // A job's log (on a file system this server shares with the nodes) is cut at this size, with a line
  // saying so (log_cap.h), checked at every poll; 0: no cap.
  int64_t max_log_bytes = 256LL << 20;
};

// The SLURM_CONF that a file of `export SLURM_CONF=...` lines sets (tools/slurm.sh writes DIR/env).
Result<std::string> read_slurm_env_file(const std::string& path);

class SlurmExecutor final : public Executor {
 public:
  explicit SlurmExecutor(SlurmExecutorOptions options = {});
  ~SlurmExecutor() override;
  SlurmExecutor(const SlurmExecutor&) = delete;
  SlurmExecutor& operator=(const SlurmExecutor&) = delete;

  std::string_view name() const override { return "slurm"; }
  Status launch(const LaunchSpec& spec) override;
  Status terminate(const std::string& job_id, int segment, int grace_s) override;
  std::vector<ExitReport> poll() override;
  size_t running() const override { return jobs_.size(); }
  Status kill_leftover(const std::string& job_id, int segment) override;
  bool confined() const override { return sandbox_.active(); }
  const JobSandbox& sandbox() const { return sandbox_; }

  // The Slurm job id of a running segment ("" if none); for tests and logs.
  std::string slurm_job_id(const std::string& job_id, int segment) const;

 private:
  enum class Cause { kNone, kTerminated, kTimedOut };
  struct Job {
    std::string job_id;
    int segment = 0;
    std::string slurm_id;
    int64_t launched_us = 0;
    int64_t max_duration_s = 0;
    int grace_period_s = 10;
    std::string state;            // last squeue state ("" before the first)
    bool seen_running = false;    // squeue said RUNNING at least once
    int64_t running_seen_us = 0;  // when we first saw it RUNNING (or later)
    int64_t slurm_start_s = 0;    // StartTime, unix seconds (0: unknown)
    int64_t end_seen_us = 0;      // when we first saw it COMPLETING or ended
    int missing = 0;              // consecutive squeue answers without it
    int64_t node_unavailable_since_us = 0;  // pending for an unavailable node since
    int read_failures = 0;        // failed `scontrol show job` reads of the ended job
    Cause cause = Cause::kNone;
    int64_t kill_at_mono_us = 0;  // SIGKILL when reached (0: none scheduled)
    int64_t term_again_at_mono_us = 0;  // SIGTERM again (a step that was launching lost the first)
    int terms_left = 0;                 // how many more times
    bool killed = false;
    int64_t killed_at_mono_us = 0;  // the last SIGKILL + cancel (repeated every kKillRetryUs until it ends)
    bool done = false;            // ended: report is ready
    ExitReport report;
    std::string log_path;
    bool log_capped = false;
  };
  using Key = std::pair<std::string, int>;
  static constexpr int64_t kKillRetryUs = 15'000'000;
  static constexpr int64_t kYoungStepS = 2;           // a step this young may still be launching its tasks
  static constexpr int64_t kTermAgainUs = 1'000'000;  // its SIGTERM is repeated after this, then 2x this

  Status validate(const LaunchSpec& spec) const;
  void refresh(int64_t now_us);                  // squeue (+ scontrol for ended jobs)
  void finish(Job& job, int64_t now_us);         // reads the ended job, fills job.report
  void stop(Job& job, Cause cause, int grace_s, int64_t now_mono_us);
  void kill(Job& job, int64_t now_mono_us);
  void term(Job& job);  // scancel --signal=TERM (the steps' processes)
  int64_t start_estimate_us(const Job& job) const;

  SlurmExecutorOptions options_;
  JobSandbox sandbox_;
  // Logs of ended jobs, still cut for a while: Slurm's I/O may land after it reports the end.
  struct ClosingLog {
    std::string path;
    bool capped = false;
    int64_t until_mono_us = 0;
  };
  std::vector<ClosingLog> closing_logs_;
  std::map<Key, Job> jobs_;
  std::set<Key> launched_;
  int64_t last_refresh_mono_us_ = 0;
};

}  // namespace nc::capacity
