// Cluster: the GPU fleet the capacity scheduler places work on (nodes with CPU, memory and GPUs, each
// GPU with 0..1000 free milli-GPU), plus the task requests and placements that change it, and the
// loaders for the Alibaba cluster-trace-gpu-v2023 node and pod lists (openb_*.csv).
// Ownership: a Cluster owns its Nodes by value; copying a Cluster copies the whole state (a replay
// works on its own copy). A Placement names a node by index and is a plain value.
// Threads: a Cluster is not synchronized. Any number of threads may read a Cluster nobody mutates;
// allocate/release need the caller's exclusive access (the scheduler holds it on one thread).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace nc::capacity {

inline constexpr int32_t kMilliPerGpu = 1000;

// One machine. Capacities are fixed; the *_free fields change only through Cluster::allocate/release.
struct Node {
  std::string id;        // e.g. "openb-node-0227"
  std::string gpu_type;  // e.g. "V100M32"; empty for a node without GPUs
  int64_t cpu_milli = 0;
  int64_t memory_mib = 0;
  int64_t cpu_free = 0;
  int64_t memory_free = 0;
  std::vector<int32_t> gpu_free;  // one entry per GPU: free milli-GPU, 0..kMilliPerGpu
  // Topology (used by the job scheduler; the trace replay leaves the defaults):
  std::vector<int> gpu_domain;  // NVLink/NVSwitch island of each GPU on this node (all 0: one island)
  std::string rack;             // network block / leaf switch; a multi-node gang prefers one rack
  int64_t gpu_memory_mib = 0;   // memory of each GPU (0: unknown)

  int num_gpus() const { return static_cast<int>(gpu_free.size()); }
  int64_t gpu_free_milli() const;  // sum of gpu_free
  int full_gpus_free() const;      // GPUs with all kMilliPerGpu free
};

// Makes a node with everything free.
Node make_node(std::string id, int64_t cpu_milli, int64_t memory_mib, int num_gpus, std::string gpu_type);

// What a pod/task asks for. A whole-GPU task takes num_gpu fully free GPUs on one node (gang on one
// node); a fractional task (num_gpu == 1 and gpu_milli < 1000) takes gpu_milli of one GPU.
struct TaskRequest {
  std::string name;
  int64_t cpu_milli = 0;
  int64_t memory_mib = 0;
  int num_gpu = 0;
  int32_t gpu_milli = 0;               // per GPU; only meaningful for num_gpu == 1 (else 1000)
  std::vector<std::string> gpu_types;  // allowed GPU types ("A|B" in the trace); empty = any

  bool is_fractional() const { return num_gpu == 1 && gpu_milli < kMilliPerGpu; }
  // Milli-GPU taken on each GPU used: gpu_milli for a fractional task, 1000 otherwise.
  int32_t per_gpu_milli() const { return is_fractional() ? gpu_milli : kMilliPerGpu; }
  int64_t total_gpu_milli() const { return static_cast<int64_t>(num_gpu) * per_gpu_milli(); }
  bool allows_gpu_type(std::string_view type) const;
};

// One GPU's share of a placement.
struct GpuShare {
  int gpu = 0;        // index into Node::gpu_free
  int32_t milli = 0;  // 1..1000
};

// An allocation: which node, how much of which GPUs, and the CPU and memory taken there.
// Cluster::release(p) exactly undoes Cluster::allocate(p).
struct Placement {
  size_t node = 0;
  std::vector<GpuShare> gpus;
  int64_t cpu_milli = 0;
  int64_t memory_mib = 0;
};

// True when the node can host the task at all: CPU, memory, GPU type and enough GPUs with
// per_gpu_milli() free (num_gpu of them).
bool node_admits(const Node& node, const TaskRequest& task);

// The placement of `task` on node `node_index` using GPU `gpu` for a fractional task, or the first
// num_gpu fully free GPUs for a whole-GPU task (`gpu` ignored). The caller has checked node_admits.
Placement make_placement(size_t node_index, const Node& node, const TaskRequest& task, int gpu = -1);

class Cluster {
 public:
  Cluster() = default;
  explicit Cluster(std::vector<Node> nodes);

  const std::vector<Node>& nodes() const { return nodes_; }
  const Node& node(size_t i) const { return nodes_[i]; }
  size_t size() const { return nodes_.size(); }

  int total_gpus() const { return total_gpus_; }
  int64_t gpu_capacity_milli() const { return static_cast<int64_t>(total_gpus_) * kMilliPerGpu; }
  int64_t gpu_free_milli() const { return gpu_free_milli_; }
  int64_t gpu_allocated_milli() const { return gpu_capacity_milli() - gpu_free_milli_; }

  // A stamp that is unique to the current state of node i across all Clusters in the process: it
  // changes on every allocate/release touching the node, so caches keyed by it never go stale
  // (copies share stamps only while their nodes are identical).
  uint64_t node_stamp(size_t i) const { return stamps_[i]; }

  // InvalidArgument (and no change) if the placement is malformed or does not fit.
  Status allocate(const Placement& p);
  // InvalidArgument (and no change) if it would free more than the node's capacity.
  Status release(const Placement& p);

 private:
  Status validate(const Placement& p) const;

  std::vector<Node> nodes_;
  std::vector<uint64_t> stamps_;
  int total_gpus_ = 0;
  int64_t gpu_free_milli_ = 0;
};

// One row of a pod list: the request plus its life time in trace seconds.
struct PodRecord {
  TaskRequest request;
  int64_t creation_time = 0;
  int64_t deletion_time = 0;  // kNoDeletion when the list has no times (the pod never leaves)
  std::string qos;            // the trace's QoS class (LS, BE, Burstable, Guaranteed) when the list has one
};
inline constexpr int64_t kNoDeletion = INT64_MAX;

// Parse openb_node_list_*.csv text (header sn,cpu_milli,memory_mib,gpu,model; column order free), with
// optional topology columns rack, gpu_memory_mib and nvlink (the NVLink island of each GPU, '|'-separated).
// Errors are InvalidArgument "<source>:<line>: <reason>". Never aborts on bad input.
Result<std::vector<Node>> parse_node_csv(std::string_view text, std::string_view source = "nodes");
// Parse openb_pod_list_*.csv text (name,cpu_milli,memory_mib,num_gpu,gpu_milli required; gpu_spec,
// creation_time, deletion_time, qos optional: without times pods arrive in file order and never leave).
Result<std::vector<PodRecord>> parse_pod_csv(std::string_view text, std::string_view source = "pods");

// The NVLink island of each of `gpus` GPUs from `nvidia-smi topo -m` output: GPUs joined by an NV# link
// (directly or through others) share an island; numbered 0.. in GPU order. InvalidArgument when the
// matrix does not have a row and column per GPU.
Result<std::vector<int>> parse_nvidia_topo(std::string_view text, int gpus);

// The same, reading a file (NotFound if it cannot be read).
Result<Cluster> load_cluster_csv(const std::string& path);
Result<std::vector<PodRecord>> load_pods_csv(const std::string& path);

}  // namespace nc::capacity
