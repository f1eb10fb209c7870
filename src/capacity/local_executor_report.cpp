// LocalExecutor (local_executor.h): how a segment's end is reported, and what a crashed server's
// segment left behind is killed.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "capacity/local_executor.h"

namespace nc::capacity {
namespace {

std::string signal_text(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return abbrev ? "SIG" + std::string(abbrev) : "signal " + std::to_string(sig);
}

}  // namespace

ExitReport LocalExecutor::make_report(const Segment& seg, int64_t now_us) const {
  ExitReport r;
  r.job_id = seg.job_id;
  r.segment = seg.segment;
  r.started_at_us = seg.started_us;
  r.ended_at_us = now_us;
  std::string bad;
  if (seg.first_bad >= 0) {
    const Task& t = seg.tasks[seg.first_bad];
    bad = "task " + std::to_string(t.node_rank * (seg.tasks.size() / seg.node_names.size()) + t.local_rank) +
          " on " + seg.node_names[t.node_rank];
    if (WIFEXITED(t.status) && seg.sandboxed && WEXITSTATUS(t.status) > 128 && WEXITSTATUS(t.status) < 128 + 65) {
      r.signal = WEXITSTATUS(t.status) - 128;  // bwrap's report of a task killed by a signal
      bad += " was killed by " + signal_text(r.signal);
    } else if (WIFEXITED(t.status)) {
      r.exit_code = WEXITSTATUS(t.status);
      bad += " exited " + std::to_string(r.exit_code);
    } else if (WIFSIGNALED(t.status)) {
      r.signal = WTERMSIG(t.status);
      bad += " was killed by " + signal_text(r.signal);
    }
  }
  switch (seg.cause) {
    case StopCause::kNone:
      r.kind = ExitKind::kSucceeded;
      r.detail = "all " + std::to_string(seg.tasks.size()) + " tasks exited 0";
      break;
    case StopCause::kFailed:
      r.kind = ExitKind::kFailed;
      r.detail = bad;
      break;
    case StopCause::kTerminated:
      r.kind = ExitKind::kTerminated;
      r.detail = "terminated" + (bad.empty() ? "" : "; " + bad);
      break;
    case StopCause::kTimedOut:
      r.kind = ExitKind::kTimedOut;
      r.detail = "ran past max_duration_s=" + std::to_string(seg.max_duration_s) + (bad.empty() ? "" : "; " + bad);
      break;
  }
  if (seg.killed && seg.cause != StopCause::kNone) r.detail += " (SIGKILLed after the grace period)";
  return r;
}

Status LocalExecutor::kill_leftover(const std::string& job_id, int segment) {
  // Every process of the segment carries both variables (the executor set them; children inherit them).
  const std::string want_job = "NEOCLOUD_JOB_ID=" + job_id, want_seg = "NEOCLOUD_SEGMENT=" + std::to_string(segment);
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = static_cast<pid_t>(std::stol(name));
    if (pid == ::getpid()) continue;
    std::ifstream in(entry.path() / "environ", std::ios::binary);
    if (!in) continue;
    std::string env((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    bool job = false, seg = false;
    for (size_t pos = 0; pos < env.size();) {
      const size_t end = env.find('\0', pos);
      const std::string_view var(env.data() + pos, (end == std::string::npos ? env.size() : end) - pos);
      job = job || var == want_job;
      seg = seg || var == want_seg;
      if (end == std::string::npos) break;
      pos = end + 1;
    }
    if (job && seg) ::kill(pid, SIGKILL);
  }
  return Status::ok();
}

}  // namespace nc::capacity
