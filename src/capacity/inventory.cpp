// GPU inventory discovery from a CSV, sinfo, nvidia-smi or simulated GPUs (inventory.h).
#include "capacity/inventory.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdlib>
#include <set>
#include <sstream>
#include <thread>

#include "capacity/subprocess.h"

namespace nc::capacity {

std::vector<Node> parse_sinfo_nodes(std::string_view text) {
  std::vector<Node> nodes;
  std::set<std::string> seen;
  std::istringstream in{std::string(text)};
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string name, gres;
    long cpus = 0, mem = 0;
    if (!(fields >> name >> cpus >> mem >> gres) || !seen.insert(name).second) continue;
    // The count is the last number of the gpu entry, before '(' or ','.
    const size_t at = gres.find("gpu:");
    if (at == std::string::npos) continue;
    std::string entry = gres.substr(at + 4, gres.find_first_of(",(", at) - at - 4);
    std::string type = "gpu";
    if (const size_t colon = entry.rfind(':'); colon != std::string::npos) {
      type = entry.substr(0, colon);
      entry = entry.substr(colon + 1);
    }
    const int count = std::atoi(entry.c_str());
    if (count <= 0) continue;
    nodes.push_back(make_node(name, cpus * 1000, mem, count, type));
  }
  return nodes;
}

Result<Node> parse_nvidia_smi_gpus(std::string_view text, const std::string& host, int64_t cpu_milli, int64_t memory_mib) {
  int count = 0;
  std::string type;
  int64_t gpu_mem = 0;
  std::istringstream in{std::string(text)};
  for (std::string l; std::getline(in, l);) {
    const size_t c1 = l.find(','), c2 = l.rfind(',');
    if (c1 == std::string::npos || c2 == c1) continue;
    std::string name = l.substr(c1 + 1, c2 - c1 - 1);
    while (!name.empty() && name.front() == ' ') name.erase(0, 1);
    for (char& ch : name) ch = ch == ' ' ? '-' : ch;
    type = name;
    gpu_mem = std::atoll(l.c_str() + c2 + 1);
    ++count;
  }
  if (count == 0) return not_found("nvidia-smi found no GPU");
  Node n = make_node(host, cpu_milli, memory_mib, count, type);
  n.gpu_memory_mib = gpu_mem;
  return n;
}

namespace {

Result<std::vector<Node>> slurm_nodes(const std::string& slurm_conf) {
  Command c;
  c.path = "sinfo";
  c.argv = {"sinfo", "-N", "-h", "-o", "%N %c %m %G"};
  if (!slurm_conf.empty()) c.env = environment_with({{"SLURM_CONF", slurm_conf}});
  const SubprocessResult r = run_subprocess(c);
  if (!r.ok()) return unavailable(r.describe("sinfo"));
  std::vector<Node> nodes = parse_sinfo_nodes(r.out);
  if (nodes.empty()) return unavailable("Slurm reports no node with GPUs (gres gpu): " + r.out);
  return nodes;
}

Result<std::vector<Node>> local_nvidia_gpus(const std::string& host, int64_t cpu, int64_t mem) {
  Command q;
  q.path = "nvidia-smi";
  q.argv = {"nvidia-smi", "--query-gpu=index,name,memory.total", "--format=csv,noheader,nounits"};
  const SubprocessResult r = run_subprocess(q);
  if (!r.ok()) return unavailable("--gpus auto: " + r.describe("nvidia-smi"));
  auto node = parse_nvidia_smi_gpus(r.out, host, cpu, mem);
  if (!node.is_ok()) return unavailable("--gpus auto: nvidia-smi found no GPU (use --gpus N for simulated GPUs)");
  // NVLink islands from the topology matrix (a failure leaves one island: placement still works).
  Command t;
  t.path = "nvidia-smi";
  t.argv = {"nvidia-smi", "topo", "-m"};
  if (const SubprocessResult topo = run_subprocess(t); topo.ok()) {
    if (auto islands = parse_nvidia_topo(topo.out, node->num_gpus()); islands.is_ok()) node->gpu_domain = *islands;
  }
  return std::vector<Node>{std::move(*node)};
}

}  // namespace

Result<std::vector<Node>> discover_inventory(const InventorySource& s) {
  if (!s.nodes_csv.empty()) {
    NC_ASSIGN_OR_RETURN(auto cluster, load_cluster_csv(s.nodes_csv));
    return cluster.nodes();
  }
  if (s.slurm) return slurm_nodes(s.slurm_conf);
  char host[256] = "local";
  ::gethostname(host, sizeof(host) - 1);
  const int64_t cpu = static_cast<int64_t>(std::thread::hardware_concurrency()) * 1000;
  const int64_t mem = static_cast<int64_t>(::sysconf(_SC_PHYS_PAGES)) * ::sysconf(_SC_PAGE_SIZE) / (1024 * 1024);
  if (s.gpus == "auto") return local_nvidia_gpus(host, cpu, mem);
  char* end = nullptr;
  const long n = std::strtol(s.gpus.c_str(), &end, 10);
  if (s.gpus.empty() || *end != '\0' || n < 1 || n > 64) return invalid_argument("--gpus must be 1..64 or auto");
  return std::vector<Node>{make_node(host, cpu, mem, static_cast<int>(n), s.gpu_type)};
}

}  // namespace nc::capacity
