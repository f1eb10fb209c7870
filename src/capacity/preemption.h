// PreemptionPolicy: which running spot jobs to stop so that a waiting on-demand or reserved job can
// start (spot yields to on-demand and reserved; nothing else is ever preempted). On each node
// the most recently started victims go first (the least work lost); the job's nodes are those needing
// the fewest victim GPUs, fewest nodes first (gang_layouts). A plan is a set of victims; the scheduler
// checks it by releasing them and placing the job, and puts them back if the job still does not fit.
// Threads: not synchronized (the scheduler's thread).
#pragma once

#include <cstdint>
#include <vector>

#include "capacity/gang_placer.h"
#include "capacity/job.h"

namespace nc::capacity {

class PreemptionPolicy {
 public:
  // Victim ids (each once), or empty when stopping every preemptible job would still not make room.
  // spot_milli[node]: GPU milli held by spot jobs there (nodes without enough free + spot are skipped).
  std::vector<uint64_t> plan(const GangPlacer& placer, const JobShape& shape, const std::vector<int>& types,
                             PriorityClass priority, const JobsByNode& by_node, const std::vector<int64_t>& spot_milli);

 private:
  struct NodeCost {
    int64_t cost = 0;  // victim GPU milli (whole jobs)
    size_t node = 0;
    std::vector<const RunningJob*> victims;
  };
  std::vector<NodeCost> costs_;
  std::vector<const RunningJob*> local_;
  std::vector<int32_t> gpu_free_;
};

}  // namespace nc::capacity
