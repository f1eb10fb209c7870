// Job records: what the job controller keeps about a tenant's GPU job and reservation — the spec it was
// submitted with, its state, its event history and its run segments — and the usage one ended segment
// (or one reservation's hold) amounts to (SegmentUsage: what the meter gets). The JobController owns the
// live records; the JobStore persists them (job_store.h); the jobs API serializes them (jobs_api.h).
//
// States: queued -> running -> succeeded | failed | cancelled | preempted | timed_out | node_failed.
// Reservations: pending -> active -> ended | cancelled.
//
// Plain values with no behaviour of their own; any thread may use its own copies.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "capacity/executor.h"
#include "capacity/job.h"

namespace nc::capacity {

enum class JobState { kQueued, kRunning, kSucceeded, kFailed, kCancelled, kPreempted, kTimedOut, kNodeFailed };
std::string_view job_state_name(JobState s);
bool is_terminal(JobState s);
// The state a job ends in when its run ended so (kTerminated: cancelled).
JobState job_state_of(ExitKind k);

struct JobSpec {
  std::string name;
  std::string command;
  std::vector<std::string> args;
  std::vector<std::pair<std::string, std::string>> env;
  std::string working_dir;  // empty: the job's own directory under the log directory
  JobShape shape;
  int tasks_per_node = 1;
  PriorityClass priority = PriorityClass::kOnDemand;
  int64_t max_duration_s = 0;  // 0: the controller's default
  bool requeue = true;         // a preempted spot job goes back to the queue
  std::string reservation;     // "res_...": run inside this reservation of the same organization
  std::string image;           // a container image (job_images.h) as the job's file system; "": the host's
  // Files the platform gives the job (a fine-tune's model, data and trainer; never set from the jobs
  // API): (name, path on this host), placed read-only in the job's working directory before each run —
  // hard-linked when the job's user may read the source and it is on the same file system, else copied.
  std::vector<std::pair<std::string, std::string>> inputs;
};

enum class ReservationState { kPending, kActive, kEnded, kCancelled };
std::string_view reservation_state_name(ReservationState s);

// N GPUs of a type held for an organization during [start, end) (scheduler.h's Reservation). Billed
// from the moment it holds its GPUs to the moment it gives them back (item gpu-seconds/<type>/reservation);
// the jobs inside it are metered as gpu-seconds/<type>/in-reservation.
struct ReservationRecord {
  std::string id;  // "res_<16 hex>"
  std::string org, name, gpu_type;
  std::string project;  // the reserving key's project ("": organization-wide); its jobs only may use it
  int gpus = 0;
  int64_t start_us = 0, end_us = 0, created_us = 0;
  ReservationState state = ReservationState::kPending;
  std::vector<NodeAssignment> nodes;  // the GPUs it holds (active)
  int64_t activated_us = 0, released_us = 0;
  bool metered = false;
  std::string waiting;  // pending past its start: why
};

struct JobEvent {
  int64_t time_us = 0;
  std::string type;    // submitted, started, preempting, preempted, requeued, succeeded, failed, ...
  std::string detail;
};

// One run of a job: what it held and for how long.
struct JobSegment {
  int index = 0;
  std::string gpu_type;
  int64_t gpu_milli = 0;  // total over its GPUs (1000 per whole GPU)
  std::vector<NodeAssignment> nodes;
  int64_t started_us = 0, ended_us = 0;  // ended 0: still running
  std::string end;                       // exit kind of the segment
  bool metered = false;                  // its usage reached the meter (the ledger)
};

struct Job {
  std::string id;  // "job_<16 hex>"
  std::string org, project;
  std::string api_key_id;  // the submitting key ("": none, e.g. no gateway); its usage is billed to it
  JobSpec spec;
  JobState state = JobState::kQueued;
  std::string pending_reason;  // queued: quota | resources | priority | held
  bool held = false;           // queued but not scheduled until released (the server died while it ran)
  int exit_code = 0;
  int64_t created_us = 0, finished_us = 0;
  int64_t alive_us = 0;  // running: the last time the controller saw it running (persisted periodically)
  std::vector<JobEvent> events;
  std::vector<JobSegment> segments;
  std::string log_path;
};

// What the meter gets when a segment ends (GPU-seconds = gpu_milli * seconds / 1000).
struct SegmentUsage {
  std::string job_id, org, project, gpu_type;
  std::string api_key_id;  // the job's submitting key ("": none)
  std::string item_class;  // the price item's last part: the priority class, "in-reservation" or "reservation"

  PriorityClass priority = PriorityClass::kOnDemand;
  int segment = 0;
  int64_t gpu_milli = 0;
  int64_t started_us = 0, ended_us = 0;
  std::string end;
};

// The usage of one (ended) segment of a job.
SegmentUsage segment_usage(const Job& j, const JobSegment& seg);

// What a submitted spec may hold, checked before anything is stored: a command (at most 4 KiB), at
// most 1,024 args and 256 env variables of 128 KiB each in all, a name of at most 256 bytes, 1..64 tasks
// per node, a non-negative max duration, env entries that pass check_job_env (executor.h) and an image
// reference that passes JobImages::check_reference.
// InvalidArgument naming the field.
Status check_job_spec(const JobSpec& spec);
// A reservation's hold, from activation to release, as one metered segment (job_id = the reservation id).
SegmentUsage reservation_usage(const ReservationRecord& rec);

}  // namespace nc::capacity
