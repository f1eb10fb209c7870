// BackfillPolicy: EASY backfill (Lifka '95; Slurm's sched/backfill does a deeper variant). The first job
// in priority order that cannot start gets a reservation: the earliest time its gang could start if every
// running job ends at its max duration, and the nodes it would take then ("the shadow"). A job behind it
// may start now only if it ends before that time, or if it keeps off those nodes — so backfilling never
// delays the reserved job, while small short jobs fill the holes. Jobs without a max duration are taken
// to run for ever (they may only use nodes off the shadow).
// Threads: not synchronized (the scheduler's thread).
#pragma once

#include <cstdint>
#include <vector>

#include "capacity/gang_placer.h"
#include "capacity/job.h"

namespace nc::capacity {

class BackfillPolicy {
 public:
  struct Shadow {
    bool active = false;
    uint64_t job = 0;        // the reserved job
    int64_t start_us = 0;    // when it can start at the latest (running jobs ending at their max duration)
    std::vector<uint8_t> nodes;  // [node] != 0: reserved for it
  };

  // The reservation for a job that cannot start now; inactive when no known end time frees enough room.
  Shadow reserve(const GangPlacer& placer, uint64_t job, const JobShape& shape, const std::vector<int>& types,
                 const JobsByNode& by_node, int64_t now_us);

  // Whether a job that would run until end_us must keep off the shadow's nodes.
  static bool must_avoid(const Shadow& s, int64_t end_us) { return s.active && end_us > s.start_us; }

 private:
  std::vector<std::pair<int64_t, size_t>> ready_;  // (time the node can host a share, node)
  std::vector<const RunningJob*> local_;
  std::vector<int32_t> gpu_free_;
};

}  // namespace nc::capacity
