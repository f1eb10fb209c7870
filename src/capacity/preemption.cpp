// Choosing spot jobs to preempt for a higher-priority job (preemption.h).
#include "capacity/preemption.h"

#include <algorithm>
#include <unordered_set>

namespace nc::capacity {
namespace {

// Frees `job`'s part on `node` in the scratch state.
void release_part(const RunningJob& job, size_t node, std::vector<int32_t>& gpu_free, int64_t& cpu, int64_t& mem) {
  for (const auto& p : job.placement.parts) {
    if (p.node != node) continue;
    for (const auto& g : p.gpus) gpu_free[static_cast<size_t>(g.gpu)] += g.milli;
    cpu += p.cpu_milli;
    mem += p.memory_mib;
  }
}

}  // namespace

std::vector<uint64_t> PreemptionPolicy::plan(const GangPlacer& placer, const JobShape& shape,
                                             const std::vector<int>& types, PriorityClass priority,
                                             const JobsByNode& by_node, const std::vector<int64_t>& spot_milli) {
  std::vector<uint64_t> best;
  int64_t best_cost = INT64_MAX;
  const Cluster& cluster = placer.cluster();
  for (int t : types) {
    const auto& nodes = placer.nodes_of_type(t);
    for (const auto& [k, per_node] : gang_layouts(shape, placer.max_gpus_per_node(t), static_cast<int>(nodes.size()))) {
      costs_.clear();
      for (size_t i : nodes) {
        const Node& n = cluster.node(i);
        if (n.num_gpus() < per_node || placer.is_down(i)) continue;
        const int64_t need = shape.fractional() ? shape.gpu_milli : static_cast<int64_t>(per_node) * kMilliPerGpu;
        if (n.gpu_free_milli() + spot_milli[i] < need) continue;  // even every spot job here is not enough
        local_.clear();
        for (const RunningJob* j : by_node[i]) {
          if (!j->stopping && j->priority == PriorityClass::kSpot && priority != PriorityClass::kSpot) local_.push_back(j);
        }
        gpu_free_ = n.gpu_free;
        int64_t cpu = n.cpu_free, mem = n.memory_free;
        NodeCost nc;
        nc.node = i;
        if (!GangPlacer::fits(gpu_free_, cpu, mem, shape, per_node)) {
          if (local_.empty()) continue;
          std::sort(local_.begin(), local_.end(), [](const RunningJob* a, const RunningJob* b) {
            return a->started_us != b->started_us ? a->started_us > b->started_us : a->id > b->id;
          });
          bool ok = false;
          for (const RunningJob* j : local_) {
            release_part(*j, i, gpu_free_, cpu, mem);
            nc.victims.push_back(j);
            nc.cost += j->placement.total_gpu_milli();
            if (GangPlacer::fits(gpu_free_, cpu, mem, shape, per_node)) {
              ok = true;
              break;
            }
          }
          if (!ok) continue;
        }
        costs_.push_back(std::move(nc));
      }
      if (costs_.size() < static_cast<size_t>(k)) continue;
      std::partial_sort(costs_.begin(), costs_.begin() + k, costs_.end(), [](const NodeCost& a, const NodeCost& b) {
        return a.cost != b.cost ? a.cost < b.cost : a.node < b.node;
      });
      std::unordered_set<uint64_t> seen;
      std::vector<uint64_t> victims;
      int64_t cost = 0;
      for (int r = 0; r < k; ++r) {
        for (const RunningJob* j : costs_[static_cast<size_t>(r)].victims) {
          if (seen.insert(j->id).second) {
            victims.push_back(j->id);
            cost += j->placement.total_gpu_milli();
          }
        }
      }
      if (!victims.empty() && cost < best_cost) {
        best_cost = cost;
        best = std::move(victims);
      }
      break;  // the fewest nodes that can work for this type
    }
  }
  return best;
}

}  // namespace nc::capacity
