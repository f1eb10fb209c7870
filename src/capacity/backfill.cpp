// BackfillPolicy (backfill.h): EASY backfill — which jobs may start now without delaying the first blocked one.
#include "capacity/backfill.h"

#include <algorithm>

namespace nc::capacity {

BackfillPolicy::Shadow BackfillPolicy::reserve(const GangPlacer& placer, uint64_t job, const JobShape& shape,
                                               const std::vector<int>& types, const JobsByNode& by_node,
                                               int64_t now_us) {
  Shadow best;
  const Cluster& cluster = placer.cluster();
  for (int t : types) {
    const auto& nodes = placer.nodes_of_type(t);
    for (const auto& [k, per_node] : gang_layouts(shape, placer.max_gpus_per_node(t), static_cast<int>(nodes.size()))) {
      ready_.clear();
      for (size_t i : nodes) {
        const Node& n = cluster.node(i);
        if (placer.is_down(i)) continue;
        if (n.num_gpus() < per_node || n.cpu_milli < shape.cpu_milli || n.memory_mib < shape.memory_mib) continue;
        gpu_free_ = n.gpu_free;
        int64_t cpu = n.cpu_free, mem = n.memory_free;
        if (GangPlacer::fits(gpu_free_, cpu, mem, shape, per_node)) {
          ready_.push_back({now_us, i});
          continue;
        }
        local_.clear();
        for (const RunningJob* j : by_node[i]) {
          if (j->ends_us != INT64_MAX) local_.push_back(j);
        }
        std::sort(local_.begin(), local_.end(), [](const RunningJob* a, const RunningJob* b) {
          return a->ends_us != b->ends_us ? a->ends_us < b->ends_us : a->id < b->id;
        });
        for (const RunningJob* j : local_) {
          for (const auto& p : j->placement.parts) {
            if (p.node != i) continue;
            for (const auto& g : p.gpus) gpu_free_[static_cast<size_t>(g.gpu)] += g.milli;
            cpu += p.cpu_milli;
            mem += p.memory_mib;
          }
          if (GangPlacer::fits(gpu_free_, cpu, mem, shape, per_node)) {
            ready_.push_back({std::max(j->ends_us, now_us), i});
            break;
          }
        }
      }
      if (ready_.size() < static_cast<size_t>(k)) continue;
      std::nth_element(ready_.begin(), ready_.begin() + (k - 1), ready_.end());
      const int64_t start = ready_[static_cast<size_t>(k - 1)].first;
      if (!best.active || start < best.start_us) {
        best.active = true;
        best.job = job;
        best.start_us = start;
        best.nodes.assign(cluster.size(), 0);
        // The k nodes ready first (ties: any k of them at the k-th time).
        std::sort(ready_.begin(), ready_.end());
        for (int r = 0; r < k; ++r) best.nodes[ready_[static_cast<size_t>(r)].second] = 1;
      }
      break;  // fewest nodes for this type
    }
  }
  return best;
}

}  // namespace nc::capacity
