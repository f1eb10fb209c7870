// Trace replay: runs a pod list through a PlacementPolicy (replay) or the whole Scheduler
// (replay_scheduled) on a copy of a Cluster and measures how well
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
#include "capacity/scheduler.h"
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

  // replay_scheduled only (pods wait in the scheduler's queue instead of failing):
  bool queued = false;
  int64_t started_pods = 0;     // pods that ran (a preempted and requeued pod counts once)
  int64_t never_started = 0;    // still waiting at the end (or refused: can never fit)
  int64_t preemptions = 0;
  double queue_delay_mean_s = 0, queue_delay_p50_s = 0, queue_delay_p99_s = 0;  // GPU pods: first start - arrival
  double jct_mean_s = 0, jct_p99_s = 0;  // GPU pods with departures: end - arrival
};

struct ScheduledReplayOptions {
  ReplayOptions replay;
  SchedulerOptions scheduler;  // placement policy, backfill, preemption
  bool be_as_spot = true;      // pods of QoS "BE" are spot jobs (preempted by the others, requeued)
};

// Replays `pods` in creation_time order (file order among equal times); departures at time <= t are
// applied before an arrival at t. InvalidArgument for bad options; Internal if the policy returns a
// placement the cluster rejects.
Result<ReplayReport> replay(const Cluster& cluster, const std::vector<PodRecord>& pods, PlacementPolicy& policy,
                            const ReplayOptions& options = {});

// The same pods through the real Scheduler (scheduler.h): a pod that does not fit on arrival waits in the
// queue (DRF/FIFO, backfill, spot preemption) instead of failing, and runs for deletion - creation seconds
// once started (a preempted pod starts over). "First failure" is the first GPU pod that could not start
// on arrival — with an empty queue before it that is the paper's moment, reached by the scheduler's code.
// A pod that can never fit the cluster counts as never started.
Result<ReplayReport> replay_scheduled(const Cluster& cluster, const std::vector<PodRecord>& pods,
                                      const ScheduledReplayOptions& options);

}  // namespace nc::capacity
