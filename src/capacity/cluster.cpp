// Cluster and Node (cluster.h): the GPU inventory's books, CSV loading, NVLink topology parsing.
#include "capacity/cluster.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <sstream>

namespace nc::capacity {
namespace {

std::atomic<uint64_t> g_next_stamp{1};
uint64_t next_stamp() { return g_next_stamp.fetch_add(1, std::memory_order_relaxed); }

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t pos = s.find(sep, start);
    out.push_back(s.substr(start, pos == std::string_view::npos ? std::string_view::npos : pos - start));
    if (pos == std::string_view::npos) return out;
    start = pos + 1;
  }
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// A CSV file with a header, read line by line; fields are looked up by column name.
class CsvReader {
 public:
  CsvReader(std::string_view text, std::string_view source) : text_(text), source_(source) {}

  // Reads the header and checks that every required column is there.
  Status read_header(const std::vector<std::string_view>& required) {
    std::string_view line;
    if (!next_line(line)) return error("empty file: expected a header line");
    auto cols = split(line, ',');
    for (size_t i = 0; i < cols.size(); ++i) header_.emplace_back(trim(cols[i]));
    for (auto r : required) {
      if (column(r) < 0) return error(fmt::format("header has no '{}' column", r));
    }
    return Status::ok();
  }

  // The next non-empty data row; false at the end. Rows must have as many fields as the header.
  Result<bool> next_row() {
    std::string_view line;
    if (!next_line(line)) return false;
    fields_ = split(line, ',');
    if (fields_.size() != header_.size()) {
      return error(fmt::format("expected {} fields, found {}", header_.size(), fields_.size()));
    }
    for (auto& f : fields_) f = trim(f);
    return true;
  }

  int column(std::string_view name) const {
    for (size_t i = 0; i < header_.size(); ++i) {
      if (header_[i] == name) return static_cast<int>(i);
    }
    return -1;
  }
  std::string_view field(int col) const { return fields_[col]; }

  Result<int64_t> integer(std::string_view name, int64_t lo, int64_t hi) const {
    std::string_view f = fields_[column(name)];
    int64_t v = 0;
    auto [end, ec] = std::from_chars(f.data(), f.data() + f.size(), v);
    if (f.empty() || ec != std::errc() || end != f.data() + f.size()) {
      return error(fmt::format("{} '{}' is not an integer", name, f));
    }
    if (v < lo || v > hi) return error(fmt::format("{} {} is out of range [{}, {}]", name, v, lo, hi));
    return v;
  }

  Status error(std::string reason) const {
    return invalid_argument(fmt::format("{}:{}: {}", source_, line_no_, reason));
  }

 private:
  bool next_line(std::string_view& line) {
    while (pos_ < text_.size()) {
      size_t end = text_.find('\n', pos_);
      if (end == std::string_view::npos) end = text_.size();
      line = trim(text_.substr(pos_, end - pos_));
      pos_ = end + 1;
      ++line_no_;
      if (!line.empty()) return true;
    }
    return false;
  }

  std::string_view text_, source_;
  size_t pos_ = 0;
  int64_t line_no_ = 0;
  std::vector<std::string> header_;
  std::vector<std::string_view> fields_;
};

bool is_null(std::string_view s) { return s.empty() || s == "nan" || s == "NaN" || s == "None"; }

Result<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return not_found(fmt::format("cannot read '{}'", path));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

constexpr int64_t kMaxCount = int64_t{1} << 40;  // generous bound: rejects garbage, never overflows sums

}  // namespace

int64_t Node::gpu_free_milli() const {
  int64_t s = 0;
  for (int32_t f : gpu_free) s += f;
  return s;
}

int Node::full_gpus_free() const {
  return static_cast<int>(std::count(gpu_free.begin(), gpu_free.end(), kMilliPerGpu));
}

Node make_node(std::string id, int64_t cpu_milli, int64_t memory_mib, int num_gpus, std::string gpu_type) {
  Node n;
  n.id = std::move(id);
  n.gpu_type = std::move(gpu_type);
  n.cpu_milli = n.cpu_free = cpu_milli;
  n.memory_mib = n.memory_free = memory_mib;
  n.gpu_free.assign(static_cast<size_t>(std::max(0, num_gpus)), kMilliPerGpu);
  n.gpu_domain.assign(n.gpu_free.size(), 0);
  return n;
}

bool TaskRequest::allows_gpu_type(std::string_view type) const {
  if (gpu_types.empty()) return true;
  return std::find(gpu_types.begin(), gpu_types.end(), type) != gpu_types.end();
}

bool node_admits(const Node& node, const TaskRequest& task) {
  if (node.cpu_free < task.cpu_milli || node.memory_free < task.memory_mib) return false;
  if (task.num_gpu <= 0) return true;
  if (!task.allows_gpu_type(node.gpu_type)) return false;
  const int32_t need = task.per_gpu_milli();
  int fitting = 0;
  for (int32_t f : node.gpu_free) fitting += f >= need;
  return fitting >= task.num_gpu;
}

Placement make_placement(size_t node_index, const Node& node, const TaskRequest& task, int gpu) {
  Placement p;
  p.node = node_index;
  p.cpu_milli = task.cpu_milli;
  p.memory_mib = task.memory_mib;
  if (task.num_gpu <= 0) return p;
  if (task.is_fractional()) {
    p.gpus.push_back({gpu, task.gpu_milli});
    return p;
  }
  for (int g = 0; g < node.num_gpus() && static_cast<int>(p.gpus.size()) < task.num_gpu; ++g) {
    if (node.gpu_free[g] == kMilliPerGpu) p.gpus.push_back({g, kMilliPerGpu});
  }
  return p;
}

Cluster::Cluster(std::vector<Node> nodes) : nodes_(std::move(nodes)) {
  stamps_.resize(nodes_.size());
  for (size_t i = 0; i < nodes_.size(); ++i) {
    stamps_[i] = next_stamp();
    total_gpus_ += nodes_[i].num_gpus();
    gpu_free_milli_ += nodes_[i].gpu_free_milli();
  }
}

Status Cluster::validate(const Placement& p) const {
  if (p.node >= nodes_.size()) return invalid_argument(fmt::format("placement names node {} of {}", p.node, nodes_.size()));
  const Node& n = nodes_[p.node];
  if (p.cpu_milli < 0 || p.memory_mib < 0) return invalid_argument("placement has negative cpu or memory");
  for (size_t i = 0; i < p.gpus.size(); ++i) {
    const GpuShare& s = p.gpus[i];
    if (s.gpu < 0 || s.gpu >= n.num_gpus()) {
      return invalid_argument(fmt::format("placement names GPU {} of node {} which has {}", s.gpu, n.id, n.num_gpus()));
    }
    if (s.milli <= 0 || s.milli > kMilliPerGpu) return invalid_argument(fmt::format("GPU share {} milli is out of (0, 1000]", s.milli));
    for (size_t j = 0; j < i; ++j) {
      if (p.gpus[j].gpu == s.gpu) return invalid_argument(fmt::format("placement names GPU {} twice", s.gpu));
    }
  }
  return Status::ok();
}

Status Cluster::allocate(const Placement& p) {
  NC_RETURN_IF_ERROR(validate(p));
  Node& n = nodes_[p.node];
  if (n.cpu_free < p.cpu_milli || n.memory_free < p.memory_mib) {
    return invalid_argument(fmt::format("node {} has {} cpu milli and {} MiB free", n.id, n.cpu_free, n.memory_free));
  }
  for (const GpuShare& s : p.gpus) {
    if (n.gpu_free[s.gpu] < s.milli) {
      return invalid_argument(fmt::format("GPU {} of node {} has {} milli free, not {}", s.gpu, n.id, n.gpu_free[s.gpu], s.milli));
    }
  }
  n.cpu_free -= p.cpu_milli;
  n.memory_free -= p.memory_mib;
  for (const GpuShare& s : p.gpus) {
    n.gpu_free[s.gpu] -= s.milli;
    gpu_free_milli_ -= s.milli;
  }
  stamps_[p.node] = next_stamp();
  return Status::ok();
}

Status Cluster::release(const Placement& p) {
  NC_RETURN_IF_ERROR(validate(p));
  Node& n = nodes_[p.node];
  if (n.cpu_free + p.cpu_milli > n.cpu_milli || n.memory_free + p.memory_mib > n.memory_mib) {
    return invalid_argument(fmt::format("release would free more cpu or memory than node {} has", n.id));
  }
  for (const GpuShare& s : p.gpus) {
    if (n.gpu_free[s.gpu] + s.milli > kMilliPerGpu) {
      return invalid_argument(fmt::format("release would free more than GPU {} of node {} has", s.gpu, n.id));
    }
  }
  n.cpu_free += p.cpu_milli;
  n.memory_free += p.memory_mib;
  for (const GpuShare& s : p.gpus) {
    n.gpu_free[s.gpu] += s.milli;
    gpu_free_milli_ += s.milli;
  }
  stamps_[p.node] = next_stamp();
  return Status::ok();
}

Result<std::vector<Node>> parse_node_csv(std::string_view text, std::string_view source) {
  CsvReader csv(text, source);
  NC_RETURN_IF_ERROR(csv.read_header({"sn", "cpu_milli", "memory_mib", "gpu", "model"}));
  std::vector<Node> nodes;
  while (true) {
    NC_ASSIGN_OR_RETURN(bool more, csv.next_row());
    if (!more) break;
    std::string_view sn = csv.field(csv.column("sn"));
    if (sn.empty()) return csv.error("empty node name (sn)");
    NC_ASSIGN_OR_RETURN(int64_t cpu, csv.integer("cpu_milli", 0, kMaxCount));
    NC_ASSIGN_OR_RETURN(int64_t mem, csv.integer("memory_mib", 0, kMaxCount));
    NC_ASSIGN_OR_RETURN(int64_t gpus, csv.integer("gpu", 0, 1024));
    std::string_view model = csv.field(csv.column("model"));
    if (is_null(model)) model = {};
    if (gpus > 0 && model.empty()) return csv.error(fmt::format("node {} has {} GPUs but no GPU model", sn, gpus));
    Node node = make_node(std::string(sn), cpu, mem, static_cast<int>(gpus), std::string(model));
    // Optional topology columns: rack, gpu_memory_mib, nvlink ("0|0|0|0|1|1|1|1": the island of each GPU).
    if (const int c = csv.column("rack"); c >= 0 && !is_null(csv.field(c))) node.rack = std::string(csv.field(c));
    if (const int c = csv.column("gpu_memory_mib"); c >= 0 && !is_null(csv.field(c))) {
      NC_ASSIGN_OR_RETURN(node.gpu_memory_mib, csv.integer("gpu_memory_mib", 0, kMaxCount));
    }
    if (const int c = csv.column("nvlink"); c >= 0 && !is_null(csv.field(c))) {
      const auto parts = split(csv.field(c), '|');
      if (static_cast<int64_t>(parts.size()) != gpus) {
        return csv.error(fmt::format("nvlink '{}' names {} GPUs; node {} has {}", csv.field(c), parts.size(), sn, gpus));
      }
      for (size_t g = 0; g < parts.size(); ++g) {
        int v = -1;
        const auto t = trim(parts[g]);
        auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
        if (t.empty() || ec != std::errc() || end != t.data() + t.size() || v < 0 || v > 1024) {
          return csv.error(fmt::format("nvlink island '{}' of GPU {} is not an integer 0..1024", t, g));
        }
        node.gpu_domain[g] = v;
      }
    }
    nodes.push_back(std::move(node));
  }
  return nodes;
}

Result<std::vector<int>> parse_nvidia_topo(std::string_view text, int gpus) {
  std::vector<int> parent(static_cast<size_t>(std::max(0, gpus)));
  for (int i = 0; i < gpus; ++i) parent[i] = i;
  std::function<int(int)> root = [&](int x) { return parent[x] == x ? x : parent[x] = root(parent[x]); };
  int rows = 0;
  for (std::string_view line : split(text, '\n')) {
    // Rows look like "GPU3\tNV12\tNV12\tX\t...\tSYS\t0-63\t0\t\tN/A" (tabs or spaces).
    std::vector<std::string_view> tok;
    size_t i = 0;
    while (i < line.size()) {
      while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
      size_t j = i;
      while (j < line.size() && line[j] != ' ' && line[j] != '\t' && line[j] != '\r') ++j;
      if (j > i) tok.push_back(line.substr(i, j - i));
      i = j;
    }
    // A row starts with its GPU's name at column 0 (the header line starts with whitespace).
    if (tok.empty() || line.rfind("GPU", 0) != 0 || tok[0].size() < 4) continue;
    int row = -1;
    auto [end, ec] = std::from_chars(tok[0].data() + 3, tok[0].data() + tok[0].size(), row);
    if (ec != std::errc() || row < 0 || row >= gpus) continue;
    if (static_cast<int>(tok.size()) < gpus + 1) return invalid_argument(fmt::format("nvidia-smi topo: row GPU{} is short", row));
    ++rows;
    for (int col = 0; col < gpus; ++col) {
      if (tok[static_cast<size_t>(col) + 1].rfind("NV", 0) == 0) parent[root(row)] = root(col);
    }
  }
  if (rows != gpus) return invalid_argument(fmt::format("nvidia-smi topo: {} GPU rows for {} GPUs", rows, gpus));
  std::vector<int> island(static_cast<size_t>(gpus));
  std::map<int, int> number;
  for (int g = 0; g < gpus; ++g) island[g] = number.emplace(root(g), static_cast<int>(number.size())).first->second;
  return island;
}

Result<std::vector<PodRecord>> parse_pod_csv(std::string_view text, std::string_view source) {
  CsvReader csv(text, source);
  NC_RETURN_IF_ERROR(csv.read_header({"name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli"}));
  const int spec_col = csv.column("gpu_spec");
  const int qos_col = csv.column("qos");
  const bool has_times = csv.column("creation_time") >= 0 && csv.column("deletion_time") >= 0;
  std::vector<PodRecord> pods;
  while (true) {
    NC_ASSIGN_OR_RETURN(bool more, csv.next_row());
    if (!more) break;
    PodRecord rec;
    TaskRequest& t = rec.request;
    t.name = std::string(csv.field(csv.column("name")));
    if (t.name.empty()) return csv.error("empty pod name");
    NC_ASSIGN_OR_RETURN(t.cpu_milli, csv.integer("cpu_milli", 0, kMaxCount));
    NC_ASSIGN_OR_RETURN(t.memory_mib, csv.integer("memory_mib", 0, kMaxCount));
    NC_ASSIGN_OR_RETURN(int64_t num_gpu, csv.integer("num_gpu", 0, 1024));
    NC_ASSIGN_OR_RETURN(int64_t gpu_milli, csv.integer("gpu_milli", 0, kMilliPerGpu));
    t.num_gpu = static_cast<int>(num_gpu);
    if (num_gpu == 0 && gpu_milli != 0) return csv.error(fmt::format("num_gpu is 0 but gpu_milli is {}", gpu_milli));
    if (num_gpu >= 1 && gpu_milli == 0) return csv.error("num_gpu >= 1 but gpu_milli is 0");
    if (num_gpu > 1 && gpu_milli != kMilliPerGpu) {
      return csv.error(fmt::format("a {}-GPU task must take whole GPUs (gpu_milli 1000), not {}", num_gpu, gpu_milli));
    }
    t.gpu_milli = static_cast<int32_t>(gpu_milli);
    if (spec_col >= 0 && !is_null(csv.field(spec_col))) {
      for (auto type : split(csv.field(spec_col), '|')) {
        if (trim(type).empty()) return csv.error(fmt::format("gpu_spec '{}' has an empty GPU type", csv.field(spec_col)));
        t.gpu_types.emplace_back(trim(type));
      }
    }
    if (qos_col >= 0) rec.qos = std::string(csv.field(qos_col));
    if (has_times) {
      NC_ASSIGN_OR_RETURN(rec.creation_time, csv.integer("creation_time", 0, kMaxCount));
      NC_ASSIGN_OR_RETURN(rec.deletion_time, csv.integer("deletion_time", 0, kMaxCount));
      if (rec.deletion_time < rec.creation_time) {
        return csv.error(fmt::format("deletion_time {} is before creation_time {}", rec.deletion_time, rec.creation_time));
      }
    } else {
      rec.creation_time = static_cast<int64_t>(pods.size());
      rec.deletion_time = kNoDeletion;
    }
    pods.push_back(std::move(rec));
  }
  return pods;
}

Result<Cluster> load_cluster_csv(const std::string& path) {
  NC_ASSIGN_OR_RETURN(std::string text, read_file(path));
  NC_ASSIGN_OR_RETURN(auto nodes, parse_node_csv(text, path));
  return Cluster(std::move(nodes));
}

Result<std::vector<PodRecord>> load_pods_csv(const std::string& path) {
  NC_ASSIGN_OR_RETURN(std::string text, read_file(path));
  return parse_pod_csv(text, path);
}

}  // namespace nc::capacity
