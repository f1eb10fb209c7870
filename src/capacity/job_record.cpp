// Job records (job_record.h): state names and the usage of a segment or a reservation's hold.
#include "capacity/job_record.h"
#include "capacity/job_images.h"

#include <fmt/format.h>

#include "capacity/executor.h"

namespace nc::capacity {

std::string_view reservation_state_name(ReservationState s) {
  switch (s) {
    case ReservationState::kPending: return "pending";
    case ReservationState::kActive: return "active";
    case ReservationState::kEnded: return "ended";
    case ReservationState::kCancelled: return "cancelled";
  }
  return "?";
}

std::string_view job_state_name(JobState s) {
  switch (s) {
    case JobState::kQueued: return "queued";
    case JobState::kRunning: return "running";
    case JobState::kSucceeded: return "succeeded";
    case JobState::kFailed: return "failed";
    case JobState::kCancelled: return "cancelled";
    case JobState::kPreempted: return "preempted";
    case JobState::kTimedOut: return "timed_out";
    case JobState::kNodeFailed: return "node_failed";
  }
  return "?";
}

bool is_terminal(JobState s) { return s != JobState::kQueued && s != JobState::kRunning; }

JobState job_state_of(ExitKind k) {
  switch (k) {
    case ExitKind::kSucceeded: return JobState::kSucceeded;
    case ExitKind::kFailed: return JobState::kFailed;
    case ExitKind::kTerminated: return JobState::kCancelled;
    case ExitKind::kTimedOut: return JobState::kTimedOut;
    case ExitKind::kNodeFailed: return JobState::kNodeFailed;
  }
  return JobState::kFailed;
}

Status check_job_spec(const JobSpec& spec) {
  if (spec.command.empty()) return invalid_argument("command is required").with_field("command");
  // What a job may carry (it is stored, listed and sent to executors): bounded like a shell's argv.
  constexpr size_t kMaxCommand = 4096, kMaxArgs = 1024, kMaxEnv = 256, kMaxText = 128 * 1024;
  if (spec.command.size() > kMaxCommand)
    return invalid_argument(fmt::format("command is {} bytes; at most {}", spec.command.size(), kMaxCommand)).with_field("command");
  size_t args_bytes = 0, env_bytes = 0;
  for (const auto& a : spec.args) args_bytes += a.size() + 1;
  for (const auto& [k, v] : spec.env) env_bytes += k.size() + v.size() + 2;
  if (spec.args.size() > kMaxArgs || args_bytes > kMaxText)
    return invalid_argument(fmt::format("args: at most {} arguments and {} bytes in all", kMaxArgs, kMaxText)).with_field("args");
  if (spec.env.size() > kMaxEnv || env_bytes > kMaxText)
    return invalid_argument(fmt::format("env: at most {} variables and {} bytes in all", kMaxEnv, kMaxText)).with_field("env");
  if (spec.name.size() > 256) return invalid_argument("name: at most 256 bytes").with_field("name");
  if (spec.tasks_per_node < 1 || spec.tasks_per_node > 64) return invalid_argument("tasks_per_node must be 1..64");
  if (spec.max_duration_s < 0) return invalid_argument("max_duration_seconds must not be negative");
  for (const auto& [k, v] : spec.env) NC_RETURN_IF_ERROR(check_job_env(k, v));
  if (!spec.image.empty()) NC_RETURN_IF_ERROR(JobImages::check_reference(spec.image));
  return Status::ok();
}

SegmentUsage segment_usage(const Job& j, const JobSegment& seg) {
  SegmentUsage u;
  u.job_id = j.id;
  u.org = j.org;
  u.project = j.project;
  u.api_key_id = j.api_key_id;
  u.gpu_type = seg.gpu_type;
  u.item_class = j.spec.reservation.empty() ? std::string(priority_name(j.spec.priority)) : "in-reservation";
  u.priority = j.spec.priority;
  u.segment = seg.index;
  u.gpu_milli = seg.gpu_milli;
  u.started_us = seg.started_us;
  u.ended_us = seg.ended_us;
  u.end = seg.end;
  return u;
}

SegmentUsage reservation_usage(const ReservationRecord& rec) {
  SegmentUsage u;
  u.job_id = rec.id;
  u.org = rec.org;
  u.project = rec.project;
  u.gpu_type = rec.gpu_type;
  u.item_class = "reservation";
  u.priority = PriorityClass::kReserved;
  u.gpu_milli = static_cast<int64_t>(rec.gpus) * kMilliPerGpu;
  u.started_us = rec.activated_us;
  u.ended_us = rec.released_us;
  u.end = std::string(reservation_state_name(rec.state));
  return u;
}

}  // namespace nc::capacity
