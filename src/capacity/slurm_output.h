// Reading what Slurm's commands print, for SlurmExecutor (slurm_executor.h): squeue's job and step
// listings in the formats the executor asks for, `scontrol -o show job` fields, sbatch --parsable's job
// id, Slurm's local-time timestamps and which job states are started or ended. Text in, values out: no
// command is run here.
//
// Stateless functions; any thread.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace nc::capacity {

// "2026-11-28T07:52:53" (local time, as scontrol / squeue print it) -> unix seconds; 0 if not a time
// ("N/A", "Unknown", "").
int64_t parse_slurm_time(const std::string& s);

// The value of "Key=" in one line of `scontrol -o show job` (at the start of the line or after a space;
// the values read this way have no spaces); "" when absent.
std::string scontrol_field(const std::string& line, const std::string& key);

// Slurm job states: ended (COMPLETED, FAILED, CANCELLED, TIMEOUT, NODE_FAIL, ...), and started (running
// or past it: RUNNING, COMPLETING, SUSPENDED, ..., or ended).
bool slurm_state_ended(const std::string& state);
bool slurm_state_started(const std::string& state);

// One line of `squeue -h --states=all -j IDS -o '%i|%T|%S|%r'`.
struct SqueueJob {
  std::string state;   // %T: RUNNING, PENDING, COMPLETED, ...
  std::string start;   // %S: StartTime (parse_slurm_time)
  std::string reason;  // %r: why it pends (may contain '|': the rest of the line)
};
// By Slurm job id; malformed lines are skipped.
std::map<std::string, SqueueJob> parse_squeue_jobs(const std::string& out);

// `squeue -h -s -j IDS -o '%i|%S'`: the numbered steps ("123.0": srun's tasks; not "123.batch" or
// "123.extern") and the latest StartTime among them (unix seconds; 0 if none or unknown).
struct SqueueSteps {
  std::vector<std::string> steps;
  int64_t newest_start_s = 0;
};
SqueueSteps parse_squeue_steps(const std::string& out);

// The job id that `sbatch --parsable` printed ("123" or "123;cluster"): its leading digits ("" if none).
std::string parse_sbatch_job_id(const std::string& out);

}  // namespace nc::capacity
