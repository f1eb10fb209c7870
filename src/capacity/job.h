// The scheduler's view of a GPU job: what it asks for (JobShape), who asks and how urgently (SchedJob),
// and where it was put (GangPlacement: one Placement per node, all granted together).
// Plain values; any thread may use its own copies.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "capacity/cluster.h"
#include "core/status.h"

namespace nc::capacity {

// Higher runs first and may preempt lower: spot yields to on-demand and reserved.
enum class PriorityClass : uint8_t { kSpot = 0, kOnDemand = 1, kReserved = 2 };
inline constexpr int kNumPriorityClasses = 3;
std::string_view priority_name(PriorityClass p);  // "spot" | "on-demand" | "reserved"
Result<PriorityClass> parse_priority(std::string_view s);

struct JobShape {
  int gpus = 0;               // total GPUs of the job; 0 = CPU only
  int32_t gpu_milli = kMilliPerGpu;  // < 1000 (with gpus == 1): a fractional share of one GPU
  int nodes = 0;              // exact node count (gpus split evenly); 0 = the fewest that fit
  std::vector<std::string> gpu_types;  // allowed GPU types; empty = any
  int64_t min_gpu_memory_mib = 0;
  int64_t cpu_milli = 0;      // per node
  int64_t memory_mib = 0;     // per node

  bool fractional() const { return gpus == 1 && gpu_milli < kMilliPerGpu; }
  int64_t total_gpu_milli() const { return fractional() ? gpu_milli : static_cast<int64_t>(gpus) * kMilliPerGpu; }
  // InvalidArgument naming the bad field (negative counts, milli out of 1..1000, gpus not divisible by nodes,
  // a fractional job on several nodes).
  Status validate() const;
};

struct SchedJob {
  uint64_t id = 0;  // unique per scheduler
  std::string org;
  PriorityClass priority = PriorityClass::kOnDemand;
  JobShape shape;
  int64_t max_duration_s = 0;  // 0 = unbounded (backfill then assumes it runs for ever)
  int64_t submitted_us = 0;    // FIFO order within an organization and class
  uint64_t reservation = 0;    // != 0: runs only inside this reservation's GPUs (FIFO among its jobs)
};

// N whole GPUs of one type held for one organization during [start, end): from start on they are taken
// from the pool (spot jobs on them are preempted), and only the organization's jobs that name the
// reservation run on them; at the end those jobs are stopped and the GPUs return.
struct Reservation {
  uint64_t id = 0;
  std::string org;
  std::string gpu_type;
  int gpus = 0;
  int64_t start_us = 0, end_us = 0;
};

// Where a gang runs: all parts are granted at once or none. parts[r] is node rank r.
struct GangPlacement {
  std::string gpu_type;
  std::vector<Placement> parts;

  int64_t total_gpu_milli() const;
  bool empty() const { return parts.empty(); }
};

// A job holding resources, as the scheduler's policies see it.
struct RunningJob {
  uint64_t id = 0;
  int org = 0;  // the scheduler's dense organization id
  PriorityClass priority = PriorityClass::kOnDemand;
  GangPlacement placement;
  int64_t started_us = 0;
  int64_t ends_us = INT64_MAX;  // started + max duration; INT64_MAX when unbounded
  bool stopping = false;        // preempted: its resources were handed to the preemptor already
  uint64_t reservation = 0;     // != 0: runs on the reservation's held GPUs (not in by_node / quotas)
};
// by_node[i]: the running jobs with a part on node i.
using JobsByNode = std::vector<std::vector<const RunningJob*>>;

}  // namespace nc::capacity
