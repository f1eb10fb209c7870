// PlacementPolicy: chooses where on a Cluster a task goes (which node, which GPUs), without changing the
// cluster; the caller then applies the answer with Cluster::allocate. Implementations:
//   RandomFit  uniform over feasible nodes, then over fitting GPUs (seeded, reproducible).
//   BestFit    the feasible (node, GPU) leaving the least free resource; score, smaller is better,
//              compared lexicographically: (GPU milli free on the node after placement,
//              CPU milli free on the node after placement, node index). A fractional task goes to the
//              fitting GPU with the least free milli (ties: lowest GPU index).
//   FGD        Fragmentation Gradient Descent (Weng et al., ATC'23): the placement that minimizes the
//              increase of the node's (hence the cluster's) fragmentation measured against a
//              TargetWorkload; ties broken by BestFit's score. See FgdPolicy below for the formula.
// Ownership: a policy owns its state (RNG, caches) and keeps no reference to the cluster between calls.
// Threads: a policy instance is used by one thread at a time (place() mutates caches / the RNG);
// use one instance per scheduler thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string_view>
#include <vector>

#include "capacity/cluster.h"
#include "core/status.h"

namespace nc::capacity {

class PlacementPolicy {
 public:
  virtual ~PlacementPolicy() = default;
  virtual std::string_view name() const = 0;
  // Where `task` fits best by this policy's measure; nullopt if no node can host it. The returned
  // placement is valid for Cluster::allocate on this very cluster state.
  std::optional<Placement> place(const Cluster& cluster, const TaskRequest& task) {
    return place_among(cluster, task, nullptr);
  }
  // The same, considering only the nodes in `candidates` (indices; nullptr = every node). A scheduler
  // with an index of free capacity narrows the search this way; the answer is the policy's best among them.
  virtual std::optional<Placement> place_among(const Cluster& cluster, const TaskRequest& task,
                                               const std::vector<size_t>* candidates) = 0;
};

// The workload the cluster is expected to see, as a distribution of task types (CPU, GPU count,
// per-GPU milli) weighted by frequency (weights sum to 1). GPU type constraints and memory are not part
// of a type.
struct TargetWorkload {
  struct TaskType {
    int num_gpu = 0;
    int32_t per_gpu_milli = 0;  // 1..1000 for GPU tasks, 0 for CPU-only
    double weight = 0;
    int64_t cpu_milli = 0;
  };
  std::vector<TaskType> types;

  // The frequency of each (cpu_milli, num_gpu, per_gpu_milli) among the pods (CPU-only pods included).
  static TargetWorkload from_pods(const std::vector<PodRecord>& pods);
};

class RandomFitPolicy final : public PlacementPolicy {
 public:
  explicit RandomFitPolicy(uint64_t seed) : rng_(seed) {}
  std::string_view name() const override { return "random-fit"; }
  std::optional<Placement> place_among(const Cluster& cluster, const TaskRequest& task,
                                       const std::vector<size_t>* candidates) override;

 private:
  std::mt19937_64 rng_;
  std::vector<size_t> feasible_;
};

class BestFitPolicy final : public PlacementPolicy {
 public:
  std::string_view name() const override { return "best-fit"; }
  std::optional<Placement> place_among(const Cluster& cluster, const TaskRequest& task,
                                       const std::vector<size_t>* candidates) override;
};

// Fragmentation of a node for a task type m (the paper's F_n(m)), with free milli f_g per GPU, free
// CPU C, task per-GPU demand u_m, GPU count k_m and CPU demand c_m:
//   if C < c_m, or fewer than k_m GPUs have f_g >= u_m (m cannot run here): F = sum_g f_g (all stranded)
//   else:                                                                   F = sum_{g: f_g < u_m} f_g
// CPU-only types (k_m = 0) give F = 0 (they use no GPU). The node's fragmentation is
// F_n = sum_m weight_m * F_n(m), in milli-GPU; the cluster's is the sum over nodes. FGD places a task
// where F_n(after) - F_n(before) is smallest (after = with the task's GPUs and CPU taken). Target
// types carry no GPU type or memory; nodes without GPUs have F_n = 0.
// Evaluation is O(GPUs per node + log #CPU levels): for each distinct c_m (sorted), the types that fit
// the CPU reduce to a table over f (0..1000) for single-GPU types and a table over the number of
// fully free GPUs for multi-GPU types. F_n is cached per node (keyed by Cluster::node_stamp) so only
// nodes changed since the last call are recomputed.
class FgdPolicy final : public PlacementPolicy {
 public:
  explicit FgdPolicy(const TargetWorkload& target);
  std::string_view name() const override { return "fgd"; }
  std::optional<Placement> place_among(const Cluster& cluster, const TaskRequest& task,
                                       const std::vector<size_t>* candidates) override;

  // F_n for a node with these free GPU amounts (milli-GPU) and free CPU.
  double node_fragmentation(const std::vector<int32_t>& gpu_free, int64_t cpu_free) const;
  // sum_n F_n over the cluster (uses the cache).
  double cluster_fragmentation(const Cluster& cluster);

 private:
  // The GPU types whose CPU demand is at most some level.
  struct Level {
    double blocked_weight = 0;                // weight of GPU types needing more CPU than this level
    std::vector<double> single_weight_above;  // [f]: weight of fitting 1-GPU types with per_gpu_milli > f
    std::vector<double> multi_weight_above;   // [n]: weight of fitting multi-GPU types needing > n GPUs
    double multi_weight = 0;                  // weight of fitting multi-GPU types
  };
  double cached_fragmentation(const Cluster& cluster, size_t i);

  std::vector<int64_t> cpu_levels_;  // sorted distinct CPU demands of GPU types
  std::vector<Level> levels_;        // levels_[l]: types with cpu_milli <= cpu_levels_[l - 1] fit
  std::vector<uint64_t> stamps_;
  std::vector<double> frag_;
  std::vector<int32_t> scratch_;
};

// "random-fit", "best-fit" or "fgd"; InvalidArgument otherwise. `target` is used by fgd.
Result<std::unique_ptr<PlacementPolicy>> make_policy(std::string_view name, const TargetWorkload& target, uint64_t seed);
// The names make_policy accepts, in a stable order.
const std::vector<std::string_view>& policy_names();

}  // namespace nc::capacity
