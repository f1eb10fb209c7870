// GPU inventory discovery: the nodes and GPUs that jobs may use, from where the operator says they are —
// a node CSV (openb format, cluster.h), Slurm (`sinfo -N`: each node's CPUs, memory and gres gpu),
// this machine's NVIDIA GPUs (`nvidia-smi`, with NVLink islands from `nvidia-smi topo -m`), or N
// simulated GPUs on this machine. Commands run through run_subprocess (no shell, bounded time).
// Stateless functions; any thread (they block while the commands run).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "capacity/cluster.h"
#include "core/status.h"

namespace nc::capacity {

struct InventorySource {
  std::string nodes_csv;     // non-empty: the CSV's nodes
  bool slurm = false;        // else, with slurm: sinfo's nodes (slurm_conf: SLURM_CONF, empty: Slurm's own)
  std::string slurm_conf;
  std::string gpus;          // else "auto" (nvidia-smi) or N (1..64 simulated GPUs of gpu_type)
  std::string gpu_type = "sim";
};

Result<std::vector<Node>> discover_inventory(const InventorySource& source);

// Parsers of the commands' output (exposed for tests).
// `sinfo -N -h -o '%N %c %m %G'`: one node per line (repeated partitions' lines once), gres like
// "gpu:4", "gpu:a100:4(S:0)" or "gpu:a100:4,shard:8"; nodes without GPUs are left out.
std::vector<Node> parse_sinfo_nodes(std::string_view text);
// `nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader,nounits` as one node named `host`
// (names with spaces made '-'); NotFound when it lists no GPU.
Result<Node> parse_nvidia_smi_gpus(std::string_view text, const std::string& host, int64_t cpu_milli, int64_t memory_mib);

}  // namespace nc::capacity
