// GangPlacer: where a job's gang goes — all of its nodes at once, or nowhere — topology first:
//   - one node when the job fits on one (the PlacementPolicy picks the node: best-fit, FGD, ...), and
//     on that node GPUs of one NVLink island when an island has enough (the tightest such island);
//   - otherwise the fewest nodes of one GPU type with gpus/nodes whole GPUs each, one rack preferred
//     (the rack with the fewest nodes that still fit: tight packing), the emptiest-last nodes in it.
// It owns the cluster's free-capacity state and an index of it per GPU type (nodes bucketed by their
// number of fully free GPUs, and by the largest free share of any GPU for fractional jobs), so that an
// impossible request is refused in O(1) and a possible one scans only the nodes that could host it.
// Every allocate/release goes through here so the index stays exact.
//
// Ownership: owns its Cluster and policy. Threads: not synchronized (the scheduler's thread).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "capacity/cluster.h"
#include "capacity/job.h"
#include "capacity/placement.h"
#include "core/status.h"

namespace nc::capacity {

// The ways to split `shape` over nodes of a type with `max_gpus` GPUs per node and `num_nodes` nodes, in
// order of preference (fewest nodes first): {nodes, GPUs per node}. Empty when none can work.
std::vector<std::pair<int, int>> gang_layouts(const JobShape& shape, int max_gpus, int num_nodes);

class GangPlacer {
 public:
  // `single` chooses the node for single-node jobs (nullptr: best-fit).
  GangPlacer(Cluster cluster, std::unique_ptr<PlacementPolicy> single);

  const Cluster& cluster() const { return cluster_; }
  // GPU types present, by dense id; type_id("") or an unknown name is -1.
  const std::vector<std::string>& types() const { return types_; }
  int type_id(std::string_view name) const;
  int node_type(size_t node) const { return node_type_[node]; }
  int64_t type_capacity_milli(int t) const { return index_[t].capacity_milli; }
  int64_t type_free_milli(int t) const { return index_[t].free_milli; }
  int max_gpus_per_node(int t) const { return index_[t].max_gpus; }
  int64_t type_gpu_memory_mib(int t) const { return index_[t].gpu_memory_mib; }
  const std::vector<size_t>& nodes_of_type(int t) const { return index_[t].nodes; }

  // The GPU types (ids) that could host `shape` on an empty cluster, after its type list and memory
  // minimum; empty for a GPU job that can never run here.
  std::vector<int> eligible_types(const JobShape& shape) const;

  // The placement of `shape` on GPU types `types` (ids), skipping nodes with excluded[node] != 0
  // (excluded may be null). nullopt when it does not fit now.
  std::optional<GangPlacement> place(const JobShape& shape, const std::vector<int>& types,
                                     const std::vector<uint8_t>* excluded = nullptr);
  // O(1) necessary condition for place() (false: certainly does not fit).
  bool may_fit(const JobShape& shape, const std::vector<int>& types) const;

  // A node that is down (lost its heartbeat, drained) is never chosen; its resources stay as they are.
  void set_down(size_t node, bool down);
  bool is_down(size_t node) const { return down_[node] != 0; }

  // Applies / undoes a placement (InvalidArgument and no change when it does not fit / is not there).
  Status allocate(const GangPlacement& p);
  Status release(const GangPlacement& p);

  // Whether a node with this free state could host one node's share of `shape` (per_node GPUs).
  static bool fits(const std::vector<int32_t>& gpu_free, int64_t cpu_free, int64_t memory_free, const JobShape& shape,
                   int per_node_gpus);

 private:
  struct TypeIndex {
    std::vector<size_t> nodes;                    // every node of this type
    std::vector<std::vector<uint32_t>> by_full;   // [n]: nodes with exactly n fully free GPUs
    std::vector<std::vector<uint32_t>> by_share;  // [b]: nodes whose largest free GPU share is in bucket b
    int max_gpus = 0;
    int64_t capacity_milli = 0, free_milli = 0, gpu_memory_mib = 0;
  };
  static int share_bucket(int32_t milli) { return milli / 100; }  // 0..10

  void index_remove(size_t node);
  void index_insert(size_t node);
  std::optional<GangPlacement> place_single(const JobShape& shape, const std::vector<int>& types,
                                            const std::vector<uint8_t>* excluded);
  std::optional<GangPlacement> place_multi(const JobShape& shape, int k, int per_node, int type,
                                           const std::vector<uint8_t>* excluded);
  void choose_gpus(size_t node, int count, Placement& p) const;  // island-aware whole-GPU pick
  TaskRequest task_for(const JobShape& shape, int per_node) const;

  Cluster cluster_;
  std::unique_ptr<PlacementPolicy> single_;
  std::vector<std::string> types_;
  std::vector<int> node_type_;  // -1 for nodes without GPUs
  std::vector<TypeIndex> index_;
  std::vector<uint32_t> pos_full_, pos_share_;  // node's position in its bucket
  std::vector<int> bucket_full_, bucket_share_;
  std::vector<uint8_t> down_;
  std::vector<uint8_t> indexed_;  // the node is in the buckets (not down)
  std::vector<size_t> scratch_;
  std::multiset<int64_t> cpu_free_, memory_free_;  // over all nodes: the most any node has free
};

}  // namespace nc::capacity
