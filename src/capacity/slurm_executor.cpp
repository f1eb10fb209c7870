// SlurmExecutor (slurm_executor.h): the executor's state machine over Slurm jobs. The commands run through
// run_subprocess (subprocess.h); what they print is read by slurm_output.h; what is submitted (sbatch's
// arguments and the batch script) comes from slurm_script.h.
#include "capacity/slurm_executor.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>

#include "capacity/log_cap.h"
#include "capacity/slurm_output.h"
#include "capacity/subprocess.h"
#include "core/log.h"
#include "core/timer.h"

namespace nc::capacity {
namespace {

namespace fs = std::filesystem;

int64_t mono_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

bool valid_env_name(const std::string& s) {
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
}

bool has_nul(const std::string& s) { return s.find('\0') != std::string::npos; }

}  // namespace

// ---- public helpers ----

Result<std::string> read_slurm_env_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return not_found("cannot read " + path);
  std::string line, conf;
  while (std::getline(in, line)) {
    const std::string key = "SLURM_CONF=";
    size_t p = line.find(key);
    if (p == std::string::npos) continue;
    std::string v = line.substr(p + key.size());
    while (!v.empty() && (v.back() == '\r' || v.back() == ' ')) v.pop_back();
    if (v.size() >= 2 && ((v.front() == '\'' && v.back() == '\'') || (v.front() == '"' && v.back() == '"'))) {
      v = v.substr(1, v.size() - 2);
    }
    conf = v;
  }
  if (conf.empty()) return not_found(path + " sets no SLURM_CONF");
  return conf;
}

// ---- the executor ----

SlurmExecutor::SlurmExecutor(SlurmExecutorOptions options)
    : options_(std::move(options)), sandbox_(options_.sandbox) {
  if (options_.poll_interval_ms < 10) options_.poll_interval_ms = 10;
  if (options_.command_timeout_ms < 1000) options_.command_timeout_ms = 1000;
}

namespace {

struct Runner {
  const SlurmExecutorOptions& o;

  SubprocessResult operator()(const std::string& tool, std::vector<std::string> args, const std::string& input = "") const {
    Command cmd;
    cmd.path = o.bin_dir.empty() ? tool : o.bin_dir + "/" + tool;
    args.insert(args.begin(), tool);
    cmd.argv = args;
    cmd.env = o.slurm_conf.empty() ? environment_with({}) : environment_with({{"SLURM_CONF", o.slurm_conf}});
    cmd.input = input;
    cmd.timeout_ms = o.command_timeout_ms;
    const int64_t t0 = mono_us();
    SubprocessResult r = run_subprocess(cmd);
    // A slow or failing controller shows in the log: jobs that do not start or stop are then explained.
    const double secs = static_cast<double>(mono_us() - t0) / 1e6;
    if (r.timed_out || !r.started || secs >= kSlowCommandS) {
      std::string cmd;
      for (const std::string& a : args) cmd += (cmd.empty() ? "" : " ") + a;
      NC_LOG_WARN("slurm: `{}` {} after {:.1f} s", cmd, r.ok() ? "succeeded" : r.describe("failed"), secs);
    }
    return r;
  }
  static constexpr double kSlowCommandS = 5.0;
};

// The running steps ("123.0") of the given jobs: srun's tasks, not the batch script or extern steps.
// A failed scancel worth a warning: not one whose job or step had ended meanwhile (a race, not trouble).
bool scancel_trouble(const SubprocessResult& r) {
  if (r.ok()) return false;
  if (!r.started || r.timed_out) return true;
  const std::string e = r.err + r.out;
  return e.find("already completing or completed") == std::string::npos && e.find("Invalid job id") == std::string::npos;
}

// (newest_start_s: the latest StartTime among them, unix seconds; 0 if none or unknown.)
std::vector<std::string> running_steps(const Runner& run, const std::vector<std::string>& job_ids,
                                       int64_t* newest_start_s = nullptr) {
  std::vector<std::string> steps;
  if (newest_start_s) *newest_start_s = 0;
  if (job_ids.empty()) return steps;
  std::string ids;
  for (const std::string& id : job_ids) ids += (ids.empty() ? "" : ",") + id;
  SubprocessResult r = run("squeue", {"-h", "-s", "-j", ids, "-o", "%i|%S"});
  SqueueSteps parsed = parse_squeue_steps(r.out);
  if (newest_start_s) *newest_start_s = parsed.newest_start_s;
  return parsed.steps;
}

}  // namespace

SlurmExecutor::~SlurmExecutor() {
  if (jobs_.empty()) return;
  Runner run{options_};
  std::vector<std::string> ids;
  for (auto& [key, job] : jobs_) {
    if (!job.done) ids.push_back(job.slurm_id);
  }
  if (ids.empty()) return;
  std::vector<std::string> steps = running_steps(run, ids);
  if (!steps.empty()) {
    steps.insert(steps.begin(), "--signal=KILL");
    (void)run("scancel", steps);
  }
  (void)run("scancel", ids);
}

std::string SlurmExecutor::slurm_job_id(const std::string& job_id, int segment) const {
  auto it = jobs_.find({job_id, segment});
  return it == jobs_.end() ? "" : it->second.slurm_id;
}

Status SlurmExecutor::validate(const LaunchSpec& spec) const {
  if (spec.job_id.empty()) return invalid_argument("launch: empty job_id");
  if (spec.segment < 0) return invalid_argument("launch: negative segment");
  if (spec.command.empty()) return invalid_argument("launch: empty command");
  if (spec.nodes.empty()) return invalid_argument("launch: no nodes");
  if (spec.tasks_per_node < 1) return invalid_argument("launch: tasks_per_node must be >= 1");
  if (spec.log_path.empty()) return invalid_argument("launch: empty log_path");
  if (spec.log_path.find('\\') != std::string::npos) {
    return invalid_argument("launch: a log_path with a backslash is not supported by Slurm's --output");
  }
  if (spec.max_duration_s < 0 || spec.grace_period_s < 0) return invalid_argument("launch: negative duration");
  if (has_nul(spec.job_id) || has_nul(spec.command) || has_nul(spec.working_dir) || has_nul(spec.log_path)) {
    return invalid_argument("launch: NUL byte in the spec");
  }
  for (const std::string& a : spec.args) {
    if (has_nul(a)) return invalid_argument("launch: NUL byte in an argument");
  }
  for (const auto& [k, v] : spec.env) {
    if (!valid_env_name(k)) return invalid_argument("launch: bad environment variable name '" + k + "'");
    if (has_nul(v)) return invalid_argument("launch: NUL byte in environment variable " + k);
  }
  std::set<std::string> names;
  for (const NodeAssignment& n : spec.nodes) {
    if (n.node.empty() || n.node.find_first_of(",[] \t\n'\"\\") != std::string::npos) {
      return invalid_argument("launch: bad node name '" + n.node + "'");
    }
    if (!names.insert(n.node).second) return invalid_argument("launch: node " + n.node + " appears twice");
    if (n.gpus.size() != spec.nodes[0].gpus.size()) {
      return invalid_argument("launch: Slurm needs the same GPU count on every node of a job");
    }
    for (int g : n.gpus) {
      if (g < 0) return invalid_argument("launch: negative GPU index");
    }
    if (n.gpu_milli <= 0 || n.gpu_milli > 1000) return invalid_argument("launch: gpu_milli out of 1..1000");
  }
  return Status::ok();
}

Status SlurmExecutor::launch(const LaunchSpec& spec_in) {
  Key key{spec_in.job_id, spec_in.segment};
  if (launched_.count(key)) {
    return {StatusCode::kAlreadyExists,
            "launch: job " + spec_in.job_id + " segment " + std::to_string(spec_in.segment) + " was launched already"};
  }
  NC_RETURN_IF_ERROR(validate(spec_in));
  LaunchSpec spec = spec_in;
  std::error_code ec;
  spec.log_path = fs::absolute(spec.log_path, ec).lexically_normal().string();
  fs::path log_dir = fs::path(spec.log_path).parent_path();
  fs::create_directories(log_dir, ec);
  if (ec) return internal_error("launch: cannot create " + log_dir.string() + ": " + ec.message());
  {
    std::ofstream touch(spec.log_path, std::ios::app);
    if (!touch) return internal_error("launch: cannot open the log " + spec.log_path);
  }
  std::string wd = spec.working_dir.empty() ? log_dir.string() : fs::absolute(spec.working_dir, ec).string();
  if (!fs::is_directory(wd, ec)) return invalid_argument("launch: working_dir " + wd + " is not a directory");

  std::optional<SlurmSandbox> sandbox;
  if (!sandbox_.required_error().empty()) return failed_precondition(sandbox_.required_error());
  if (sandbox_.active()) {
    if (sandbox_.per_user() && (spec.run_as_uid <= 0 || spec.run_as_uid >= 0xFFFFFFFFLL)) {
      return invalid_argument("launch " + spec.job_id + ": a sandboxed job needs the uid to run as (run_as_uid)");
    }
    const auto uid = static_cast<uid_t>(spec.run_as_uid);
    if (!sandbox_.give(wd, uid)) {
      return failed_precondition("launch: working_dir " + wd + " cannot be given to uid " + std::to_string(uid) +
                                 " (not a directory under the jobs directory)");
    }
    sandbox = SlurmSandbox{sandbox_.launcher(uid), sandbox_.dev_dir(), wd};
  }
  const std::string name = slurm_job_name(spec.job_id, spec.segment);
  std::vector<std::string> args = sbatch_args(spec, wd, options_.gpu_indices, options_.partition);
  const int64_t launched_us = unix_us();
  Runner run{options_};
  SubprocessResult r =
      run("sbatch", args, slurm_batch_script(spec, options_.gpu_indices, sandbox ? &*sandbox : nullptr));
  if (!r.ok()) {
    if (r.timed_out) {
      // It may have been submitted all the same: cancel whatever carries the name.
      (void)run("scancel", {"--jobname=" + name});
      return unavailable(r.describe("sbatch"));
    }
    return failed_precondition(r.describe("sbatch rejected job " + spec.job_id));
  }
  const std::string id = parse_sbatch_job_id(r.out);
  if (id.empty()) {
    (void)run("scancel", {"--jobname=" + name});
    return internal_error("sbatch printed no job id: '" + r.out + "'");
  }
  Job job;
  job.job_id = spec.job_id;
  job.segment = spec.segment;
  job.slurm_id = id;
  job.launched_us = launched_us;
  job.max_duration_s = spec.max_duration_s;
  job.grace_period_s = spec.grace_period_s;
  job.log_path = spec.log_path;
  launched_.insert(key);
  jobs_.emplace(key, std::move(job));
  return Status::ok();
}

int64_t SlurmExecutor::start_estimate_us(const Job& job) const {
  int64_t est = job.slurm_start_s * 1'000'000;
  // StartTime is truncated to the second: the job started in [S, S+1) and before we saw it running.
  if (job.seen_running && job.running_seen_us > 0) est = std::min(est + 999'999, job.running_seen_us);
  if (job.slurm_start_s == 0) est = job.running_seen_us;
  return std::max(est, job.launched_us);
}

void SlurmExecutor::refresh(int64_t now_us) {
  std::vector<Job*> live;
  std::string ids;
  for (auto& [key, job] : jobs_) {
    if (job.done) continue;
    live.push_back(&job);
    ids += (ids.empty() ? "" : ",") + job.slurm_id;
  }
  if (live.empty()) return;
  Runner run{options_};
  SubprocessResult r = run("squeue", {"-h", "--states=all", "-j", ids, "-o", "%i|%T|%S|%r"});
  if (!r.ok() && r.err.find("Invalid job id") == std::string::npos) return;  // try again next time
  const std::map<std::string, SqueueJob> seen = parse_squeue_jobs(r.out);  // by Slurm job id
  for (Job* job : live) {
    auto it = seen.find(job->slurm_id);
    if (it == seen.end()) {
      // Not listed: ended and forgotten (MinJobAge), or lost. Ask scontrol before giving up on it.
      if (++job->missing >= 2) finish(*job, now_us);
      continue;
    }
    job->missing = 0;
    const std::string& state = it->second.state;
    job->state = state;
    // Waiting for a node Slurm considers down or drained: the placement is stale, give it back.
    const std::string& reason = it->second.reason;
    bool node_gone = state == "PENDING" && (reason.find("ReqNodeNotAvail") != std::string::npos ||
                                            reason.find("NodeDown") != std::string::npos);
    if (!node_gone) {
      job->node_unavailable_since_us = 0;
    } else if (job->node_unavailable_since_us == 0) {
      job->node_unavailable_since_us = now_us;
    } else if (options_.node_unavailable_s > 0 && job->cause == Cause::kNone &&
               now_us - job->node_unavailable_since_us >= options_.node_unavailable_s * 1'000'000) {
      (void)run("scancel", {job->slurm_id});
      job->report.job_id = job->job_id;
      job->report.segment = job->segment;
      job->report.kind = ExitKind::kNodeFailed;
      job->report.started_at_us = job->report.ended_at_us = now_us;
      job->report.detail = "Slurm job " + job->slurm_id + " waited " + std::to_string(options_.node_unavailable_s) +
                           " s for an unavailable node (" + reason + "); cancelled";
      job->done = true;
      continue;
    }
    if (slurm_state_started(state) && job->slurm_start_s == 0) job->slurm_start_s = parse_slurm_time(it->second.start);
    if (state == "RUNNING" && !job->seen_running) {
      job->seen_running = true;
      job->running_seen_us = now_us;
    }
    if ((state == "COMPLETING" || slurm_state_ended(state)) && job->end_seen_us == 0) job->end_seen_us = now_us;
    if (slurm_state_ended(state)) finish(*job, now_us);
  }
}

void SlurmExecutor::finish(Job& job, int64_t now_us) {
  Runner run{options_};
  SubprocessResult r = run("scontrol", {"-o", "show", "job", job.slurm_id});
  ExitReport& rep = job.report;
  rep.job_id = job.job_id;
  rep.segment = job.segment;
  std::string line = r.out.substr(0, r.out.find('\n'));
  std::string state = r.ok() ? scontrol_field(line, "JobState") : "";
  if (!r.ok() && r.err.find("Invalid job id") == std::string::npos && ++job.read_failures < 20) {
    return;  // scontrol trouble (timeout, controller busy): retry on later polls
  }
  if (job.end_seen_us == 0) job.end_seen_us = now_us;
  if (state.empty()) {
    // Slurm does not know the job (any more): its end is unknown, treat it as lost.
    rep.kind = job.cause == Cause::kTerminated ? ExitKind::kTerminated
               : job.cause == Cause::kTimedOut ? ExitKind::kTimedOut
                                               : ExitKind::kNodeFailed;
    rep.started_at_us = job.slurm_start_s || job.seen_running ? start_estimate_us(job) : job.launched_us;
    rep.ended_at_us = std::max(rep.started_at_us, job.end_seen_us);
    rep.detail = "Slurm job " + job.slurm_id + " vanished (" + r.describe("scontrol show job") + ")";
    job.done = true;
    return;
  }
  if (!slurm_state_ended(state)) return;  // squeue was ahead of scontrol: next time
  int64_t start_s = parse_slurm_time(scontrol_field(line, "StartTime"));
  int64_t end_s = parse_slurm_time(scontrol_field(line, "EndTime"));
  if (start_s > 0) job.slurm_start_s = start_s;
  rep.started_at_us = start_estimate_us(job);
  int64_t end_us = job.end_seen_us;
  if (end_s > 0) end_us = std::min(end_s * 1'000'000 + 999'999, end_us);
  rep.ended_at_us = std::max(rep.started_at_us, end_us);
  std::string ec = scontrol_field(line, "ExitCode");  // "code:signal"
  int code = 0, sig = 0;
  std::sscanf(ec.c_str(), "%d:%d", &code, &sig);
  rep.exit_code = sig != 0 ? 0 : code;
  rep.signal = sig;
  std::string what = sig != 0 ? "a task was killed by signal " + std::to_string(sig)
                     : code != 0 ? "a task exited " + std::to_string(code)
                                 : "all tasks exited 0";
  std::string slurm = "Slurm job " + job.slurm_id + " " + state;
  std::string reason = scontrol_field(line, "Reason");
  if (!reason.empty() && reason != "None") slurm += " (" + reason + ")";
  if (job.cause == Cause::kTerminated) {
    rep.kind = ExitKind::kTerminated;
    rep.detail = "terminated; " + slurm;
  } else if (job.cause == Cause::kTimedOut) {
    rep.kind = ExitKind::kTimedOut;
    rep.detail = "ran past max_duration_s=" + std::to_string(job.max_duration_s) + "; " + slurm;
  } else if (state == "COMPLETED" && code == 0 && sig == 0) {
    rep.kind = ExitKind::kSucceeded;
    rep.detail = what;
  } else if (state == "TIMEOUT" || state == "DEADLINE") {
    rep.kind = ExitKind::kTimedOut;
    rep.detail = slurm + " (Slurm's time limit)";
  } else if (state == "NODE_FAIL" || state == "BOOT_FAIL") {
    rep.kind = ExitKind::kNodeFailed;
    rep.detail = slurm;
  } else {
    rep.kind = ExitKind::kFailed;
    if (code == 0 && sig == 0 && state != "COMPLETED") rep.exit_code = 1;
    rep.detail = what + "; " + slurm + (state == "CANCELLED" ? ", cancelled outside the executor" : "");
  }
  if (job.killed) rep.detail += " (SIGKILLed after the grace period)";
  job.done = true;
}

void SlurmExecutor::stop(Job& job, Cause cause, int grace_s, int64_t now_mono_us) {
  job.cause = cause;
  Runner run{options_};
  // Does the job have a running step (srun's tasks)? Without one no task process exists yet (pending,
  // or the batch script is still before srun): cancel outright. Signalling a pending job makes scancel
  // retry for minutes, so never do that.
  int64_t newest_step_s = 0;
  if (running_steps(run, {job.slurm_id}, &newest_step_s).empty()) {
    SubprocessResult r = run("scancel", {job.slurm_id});
    if (scancel_trouble(r)) NC_LOG_WARN("slurm job {} ({} segment {}): {}", job.slurm_id, job.job_id, job.segment, r.describe("scancel"));
    job.kill_at_mono_us = now_mono_us + static_cast<int64_t>(std::max(grace_s, 0)) * 1'000'000;
    return;
  }
  if (grace_s <= 0) {
    kill(job, now_mono_us);
    return;
  }
  // SIGTERM to every process of the job's steps (srun tasks and their children), not the batch shell.
  term(job);
  job.kill_at_mono_us = now_mono_us + static_cast<int64_t>(grace_s) * 1'000'000;
  // A step still launching its tasks (Slurm lists it before it has forked them) loses the signal: Slurm
  // accepts it and delivers nothing. A step that young gets the SIGTERM again 1 s and 3 s later (a
  // loaded node may take that long to fork its tasks).
  if (newest_step_s == 0 || unix_us() / 1'000'000 - newest_step_s <= kYoungStepS) {
    job.term_again_at_mono_us = now_mono_us + kTermAgainUs;
    job.terms_left = 2;
  }
}

void SlurmExecutor::term(Job& job) {
  Runner run{options_};
  SubprocessResult r = run("scancel", {"--signal=TERM", job.slurm_id});
  if (scancel_trouble(r)) {
    NC_LOG_WARN("slurm job {} ({} segment {}): {}", job.slurm_id, job.job_id, job.segment, r.describe("scancel --signal=TERM"));
  }
}

void SlurmExecutor::kill(Job& job, int64_t now_mono_us) {
  Runner run{options_};
  if (job.killed) {
    NC_LOG_WARN("slurm job {} ({} segment {}) is still {} {:.0f} s after it was killed: killing it again", job.slurm_id,
                job.job_id, job.segment, job.state.empty() ? "listed" : job.state,
                static_cast<double>(now_mono_us - job.killed_at_mono_us) / 1e6);
  }
  job.killed = true;
  job.killed_at_mono_us = now_mono_us;
  job.kill_at_mono_us = 0;
  job.term_again_at_mono_us = 0;
  // SIGKILL to each step: immediate. (A job-level `scancel --signal=KILL` is a cancel, which sends
  // SIGTERM and waits the cluster's KillWait before the SIGKILL.) Then cancel the job itself.
  std::vector<std::string> steps = running_steps(run, {job.slurm_id});
  if (!steps.empty()) {
    steps.insert(steps.begin(), "--signal=KILL");
    SubprocessResult r = run("scancel", steps);
    if (scancel_trouble(r)) NC_LOG_WARN("slurm job {}: {}", job.slurm_id, r.describe("scancel --signal=KILL (steps)"));
  }
  SubprocessResult r = run("scancel", {job.slurm_id});
  if (scancel_trouble(r)) NC_LOG_WARN("slurm job {}: {}", job.slurm_id, r.describe("scancel"));
}

Status SlurmExecutor::kill_leftover(const std::string& job_id, int segment) {
  const std::string name = slurm_job_name(job_id, segment);
  Runner run{options_};
  SubprocessResult r = run("scancel", {"--full", "--signal=KILL", "--jobname=" + name});
  (void)run("scancel", {"--jobname=" + name});
  if (!r.started || r.timed_out) return unavailable("scancel failed: " + r.spawn_error + r.err);
  return Status::ok();
}

Status SlurmExecutor::terminate(const std::string& job_id, int segment, int grace_s) {
  auto it = jobs_.find({job_id, segment});
  if (it == jobs_.end() || it->second.done) {
    // Ended but not yet reported still counts as running: it will be reported as it ended.
    if (it == jobs_.end()) {
      return not_found("terminate: job " + job_id + " segment " + std::to_string(segment) + " is not running");
    }
    return Status::ok();
  }
  Job& job = it->second;
  if (job.cause != Cause::kNone) {
    // Already stopping: a shorter grace brings the SIGKILL forward.
    int64_t at = mono_us() + static_cast<int64_t>(std::max(grace_s, 0)) * 1'000'000;
    if (!job.killed && (job.kill_at_mono_us == 0 || at < job.kill_at_mono_us)) job.kill_at_mono_us = at;
    return Status::ok();
  }
  stop(job, Cause::kTerminated, grace_s, mono_us());
  return Status::ok();
}

std::vector<ExitReport> SlurmExecutor::poll() {
  std::vector<ExitReport> out;
  int64_t now_mono = mono_us();
  for (auto it = closing_logs_.begin(); it != closing_logs_.end();) {
    enforce_log_cap(it->path, options_.max_log_bytes, &it->capped);
    it = now_mono >= it->until_mono_us ? closing_logs_.erase(it) : it + 1;
  }
  if (jobs_.empty()) return out;
  int64_t now = unix_us();
  if (now_mono - last_refresh_mono_us_ >= static_cast<int64_t>(options_.poll_interval_ms) * 1000) {
    last_refresh_mono_us_ = now_mono;
    refresh(now);
    now_mono = mono_us();
    now = unix_us();
  }
  for (auto it = jobs_.begin(); it != jobs_.end();) {
    Job& job = it->second;
    if (!job.done) {
      enforce_log_cap(job.log_path, options_.max_log_bytes, &job.log_capped);
      if (job.cause == Cause::kNone && job.max_duration_s > 0 && job.seen_running &&
          now >= start_estimate_us(job) + job.max_duration_s * 1'000'000) {
        stop(job, Cause::kTimedOut, job.grace_period_s, now_mono);
      }
      if (job.term_again_at_mono_us > 0 && !job.killed && now_mono >= job.term_again_at_mono_us) {
        job.term_again_at_mono_us = --job.terms_left > 0 ? now_mono + 2 * kTermAgainUs : 0;
        if (job.state == "RUNNING") term(job);
      }
      if (job.kill_at_mono_us > 0 && !job.killed && now_mono >= job.kill_at_mono_us) kill(job, now_mono);
      // Killed but not ended: the controller may have lost the request (busy, restarting), or a step was
      // still launching. Cancelling again is harmless; giving up would leave the job holding its GPUs.
      if (job.killed && !job.done && now_mono - job.killed_at_mono_us >= kKillRetryUs) kill(job, now_mono);
    }
    if (job.done) {
      enforce_log_cap(job.log_path, options_.max_log_bytes, &job.log_capped);  // what came in since the last poll
      if (job.log_capped) closing_logs_.push_back({job.log_path, true, now_mono + 10'000'000});
      out.push_back(std::move(job.report));
      it = jobs_.erase(it);
    } else {
      ++it;
    }
  }
  return out;
}

}  // namespace nc::capacity
