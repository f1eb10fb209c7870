// Executor: runs a placed job's processes somewhere (this machine, or a Slurm cluster), signals them and
// reports how they ended. The scheduler decides what runs where and when; an executor only launches,
// stops and watches. Implementations: LocalExecutor (local_executor.h: fork/exec on this machine,
// "nodes" simulated by process groups) and SlurmExecutor (slurm_executor.h: sbatch/squeue/sacct/scancel).
//
// The contract both implement (tests/capacity/executor_suite.cpp runs the same suite on both):
//   - launch() starts every task of every node of the spec, or nothing (gang): on an error it has
//     stopped whatever it had started and returns the error; a job id + segment is launched at most once.
//   - Each task runs `command args...` in `working_dir` with stdout and stderr appended to `log_path`, and
//     with this environment, set after spec.env (a reserved name in spec.env is ignored; the job
//     controller refuses it at submit — is_reserved_env):
//       CUDA_VISIBLE_DEVICES, NVIDIA_VISIBLE_DEVICES  the node's GPU indices, comma-separated ("" if none)
//       NEOCLOUD_GPU_MILLI     the share of the GPU for a fractional job (1..999); absent otherwise
//       WORLD_SIZE             nodes * tasks_per_node
//       RANK                   node_rank * tasks_per_node + LOCAL_RANK
//       LOCAL_RANK, LOCAL_WORLD_SIZE, NODE_RANK, NNODES
//       MASTER_ADDR, MASTER_PORT   the first node's address and a port derived from the job id
//       NEOCLOUD_JOB_ID, NEOCLOUD_SEGMENT
//   - The executor enforces max_duration_s (within 1 s): SIGTERM to every process of the job, SIGKILL
//     after grace_period_s, reported as kTimedOut.
//   - terminate() returns at once; the processes get SIGTERM now and SIGKILL after grace_s; the end is
//     reported by poll() as kTerminated (the caller knows whether it cancelled or preempted). A whole
//     process tree is stopped (children the job forked included), not just the task's first process.
//   - poll() returns each ended job segment exactly once, with the times it really started and ended.
//
// Ownership: an executor owns the processes / Slurm jobs it launched until it has reported them.
// Threads: not synchronized; launch/terminate/poll are called by one thread (the job controller's).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace nc::capacity {

// One node's share of a placed job.
struct NodeAssignment {
  std::string node;        // inventory node name (Slurm: the slurmd NodeName)
  std::vector<int> gpus;   // GPU indices on that node, ascending; empty for a CPU-only job
  int32_t gpu_milli = 1000;  // < 1000: a fractional share of the single GPU in `gpus`
  int64_t cpu_milli = 0;     // limits the executor enforces where it can (cgroup v2); 0 = none
  int64_t memory_mib = 0;
};

struct LaunchSpec {
  std::string job_id;  // unique and stable across segments
  int segment = 0;     // 0 for the first run; +1 per requeue (preemption, node failure)
  std::string command;  // argv[0]; looked up in PATH when it has no '/'
  std::vector<std::string> args;
  std::vector<std::pair<std::string, std::string>> env;
  std::string working_dir;             // must exist; empty: the directory of log_path
  std::vector<NodeAssignment> nodes;   // at least one; node_rank = index here
  int tasks_per_node = 1;              // processes per node
  int64_t max_duration_s = 0;          // > 0: enforced (kTimedOut)
  int grace_period_s = 10;             // SIGTERM -> SIGKILL, for timeouts
  std::string log_path;                // created (with parent directories) if missing; appended
  // The Unix user the tasks run as where the executor confines jobs (confined()): the organization's
  // own uid (job_users.h). -1: none given (a confining executor running as root refuses the launch).
  int64_t run_as_uid = -1;
  // Non-empty: the container image (job_images.h) whose file system the tasks run in; only an executor
  // whose runs_images() is true accepts it.
  std::string image;
  // JobSpec::inputs: staged into working_dir by the controller (job_inputs.h) before launch; executors
  // ignore it.
  std::vector<std::pair<std::string, std::string>> inputs;
};

enum class ExitKind {
  kSucceeded,   // every task exited 0
  kFailed,      // a task exited non-zero or was killed by a signal it did not get from us
  kTerminated,  // stopped by terminate()
  kTimedOut,    // ran past max_duration_s
  kNodeFailed,  // the node (or the Slurm job's node) was lost
};
std::string_view exit_kind_name(ExitKind k);

// The MASTER_PORT of a job (every executor's): 20000 + (FNV-1a of the job id) % 10000.
int master_port(std::string_view job_id);

// Whether `name` is an environment variable the executor sets for every task: GPU visibility
// (CUDA_/NVIDIA_/ROCR_/HIP_VISIBLE_DEVICES, GPU_DEVICE_ORDINAL), ranks and rendezvous (RANK,
// WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, NODE_RANK, NNODES, MASTER_ADDR, MASTER_PORT) and the
// NEOCLOUD_* and SLURM_* families. A job's own env may not set them.
bool is_reserved_env(std::string_view name);

// One entry of a job's env: a portable name ([A-Za-z_][A-Za-z0-9_]*, at most 256 bytes), not reserved,
// a value without NUL. InvalidArgument naming the variable (field "env").
Status check_job_env(std::string_view name, std::string_view value);

struct ExitReport {
  std::string job_id;
  int segment = 0;
  ExitKind kind = ExitKind::kFailed;
  int exit_code = 0;         // the first failing task's exit status (0 when all succeeded)
  int signal = 0;            // the signal that ended the first failing task, if any
  int64_t started_at_us = 0;  // unix microseconds: when the tasks started running
  int64_t ended_at_us = 0;    // when the last task ended
  std::string detail;         // human-readable, e.g. "task 1 on node-b exited 3"
};

class Executor {
 public:
  virtual ~Executor() = default;
  virtual std::string_view name() const = 0;
  virtual Status launch(const LaunchSpec& spec) = 0;
  // NotFound if the segment is not running (already ended and reported counts as not running).
  virtual Status terminate(const std::string& job_id, int segment, int grace_s) = 0;
  virtual std::vector<ExitReport> poll() = 0;
  // Segments launched and not yet reported by poll().
  virtual size_t running() const = 0;
  // After a crash of the process that launched it: stops for good whatever still runs of that segment
  // (the new process does not own it and must not let it use GPUs it gives to others). OK when nothing
  // is left. Local: processes whose environment has NEOCLOUD_JOB_ID/NEOCLOUD_SEGMENT of the segment;
  // Slurm: the job named for it.
  virtual Status kill_leftover(const std::string& job_id, int segment) = 0;
  // Whether tasks run confined (own namespaces, as run_as_uid, only working_dir writable): then
  // working_dir must be the job's own directory, which the executor hands to the job's user.
  virtual bool confined() const { return false; }
  // Whether LaunchSpec::image is honoured (tasks confined, podman's images available).
  virtual bool runs_images() const { return false; }
};

}  // namespace nc::capacity
