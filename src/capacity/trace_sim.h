// Trace replay: runs a pod list through a PlacementPolicy on a copy of a Cluster and measures how well
// the GPUs were used, as in the FGD paper's evaluation (ATC'23 "Beware of Fragmentation"): pods arrive
// at creation_time and leave at deletion_time; a pod that cannot be placed on arrival fails (no queue).
// Ownership: replay() copies the cluster and borrows the pods and the policy for the call only; the
// report is a plain value. Threads: replay() runs on the calling thread; separate calls with separate
// policy instances may run on separate threads.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "capacity/cluster.h"
#include "capacity/placement.h"
#include "core/status.h"

namespace nc::capacity {

struct ReplayOptions {
  // true: pods leave at deletion_time. false: pods never leave (the paper's "workload inflation" view:
  // arrivals accumulate until the cluster is full).
  bool departures = true;
  int time_samples = 100;       // points of the allocation ratio over time (evenly spaced), >= 2
  double requested_step = 0.01; // one point each time cumulative requested GPU grows by this share of capacity
};

struct RatioSample {
  double x = 0;                 // trace seconds, or cumulative requested GPU / GPU capacity
  double allocated_ratio = 0;   // allocated GPU milli / GPU capacity milli at that point
};

struct ReplayReport {
  std::string policy;
  int64_t pods = 0, gpu_pods = 0;
  int64_t failed_pods = 0, failed_gpu_pods = 0;
  int gpus = 0;                          // GPUs in the cluster
  // GPU-time allocated / GPU-time available over [first arrival, last event], in milli-GPU·seconds.
  double allocated_gpu_ratio = 0;
  // Free GPU milli / 1000 across the cluster when the first GPU pod failed; nullopt if none failed.
  std::optional<double> unallocated_gpus_at_first_failure;
  // Cumulative requested GPU / capacity (arrivals so far, failed ones included) at that moment.
  std::optional<double> requested_at_first_failure;
  double allocated_ratio_after_arrivals = 0;  // allocated / capacity right after the last arrival
  std::vector<RatioSample> over_time;         // x = trace seconds
  std::vector<RatioSample> vs_requested;      // x = cumulative requested GPU / capacity (Fig. 7/9 style)
};

// Replays `pods` in creation_time order (file order among equal times); departures at time <= t are
// applied before an arrival at t. InvalidArgument for bad options; Internal if the policy returns a
// placement the cluster rejects.
Result<ReplayReport> replay(const Cluster& cluster, const std::vector<PodRecord>& pods, PlacementPolicy& policy,
                            const ReplayOptions& options = {});

}  // namespace nc::capacity
