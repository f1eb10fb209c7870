// The Slurm batch job of one job segment, as SlurmExecutor (slurm_executor.h) submits it: sbatch's
// arguments (sbatch_args) and the generated bash batch script (slurm_batch_script), which runs the
// N*T tasks with `srun --kill-on-bad-exit=1` and a per-task wrapper that sets the executor contract's
// environment (executor.h) and execs `command args...`; the script exits with the first failing task's
// exit code, or kills itself with its signal, so that Slurm's ExitCode=C:S carries it. Every value
// from the spec is single-quoted (shell_quote) and no user text comes before the script's first command
// line, so nothing a tenant writes can become an #SBATCH directive. slurm_executor.h describes what
// the script does with GPU indices (SlurmGpuIndices), NODE_RANK, RANK and MASTER_ADDR.
//
// Text generation only (no command is run): stateless functions; any thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "capacity/executor.h"

namespace nc::capacity {

// Who picks the GPU indices a Slurm job's tasks see (slurm_executor.h): Slurm's allocation, or the
// neocloud scheduler's assignment.
enum class SlurmGpuIndices { kSlurm, kAssignment };

// s as one bash word: '...' with each ' written as '\''.
std::string shell_quote(std::string_view s);

// Slurm's job name of a segment: nc-<job_id>-<segment>, with anything unusual in the id made '_' (keeps
// squeue and scontrol's space-separated output unambiguous).
std::string slurm_job_name(const std::string& job_id, int segment);

// A path for --output / --error: '%' starts Slurm's filename patterns ("%%" is a '%').
std::string slurm_file_pattern(const std::string& path);

// sbatch's arguments (after "sbatch") for a validated spec whose log_path is absolute, run in
// working_dir: --parsable --job-name --nodes --nodelist --ntasks-per-node --output --error
// --open-mode=append --chdir --no-requeue, --gres=gpu:G (G the GPUs per node; none for a fractional job
// under kAssignment), --time=<ceil((max_duration_s + grace) / 60) + 1> when bounded, --partition when
// given.
std::vector<std::string> sbatch_args(const LaunchSpec& spec, const std::string& working_dir,
                                     SlurmGpuIndices gpu_indices, const std::string& partition);

// Where each task runs sandboxed (job_sandbox.h): the launcher (setpriv + bwrap's common arguments),
// the directory of GPU device nodes, and the job's own directory bound at /home/job.
struct SlurmSandbox {
  std::vector<std::string> launcher;
  std::string dev_dir = "/dev";
  std::string home;
};

// The batch script (sbatch's stdin) for a validated spec; with a sandbox, each task runs in it (a task
// the sandbox reports as 128 + N is reported as killed by signal N).
std::string slurm_batch_script(const LaunchSpec& spec, SlurmGpuIndices gpu_indices, const SlurmSandbox* sandbox = nullptr);

}  // namespace nc::capacity
