// Gang placement of multi-node jobs (gang_placer.h).
#include "capacity/gang_placer.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <tuple>

namespace nc::capacity {

std::string_view priority_name(PriorityClass p) {
  switch (p) {
    case PriorityClass::kSpot: return "spot";
    case PriorityClass::kOnDemand: return "on-demand";
    case PriorityClass::kReserved: return "reserved";
  }
  return "?";
}

Result<PriorityClass> parse_priority(std::string_view s) {
  if (s == "spot") return PriorityClass::kSpot;
  if (s == "on-demand" || s == "on_demand" || s == "ondemand") return PriorityClass::kOnDemand;
  if (s == "reserved") return PriorityClass::kReserved;
  return invalid_argument(fmt::format("unknown priority class '{}' (on-demand, reserved, spot)", s));
}

Status JobShape::validate() const {
  if (gpus < 0 || gpus > 4096) return invalid_argument(fmt::format("gpus must be 0..4096, not {}", gpus));
  if (nodes < 0 || nodes > 1024) return invalid_argument(fmt::format("nodes must be 0..1024, not {}", nodes));
  if (gpu_milli < 1 || gpu_milli > kMilliPerGpu) {
    return invalid_argument(fmt::format("gpu_fraction must be in (0, 1] (milli 1..1000, not {})", gpu_milli));
  }
  if (gpu_milli < kMilliPerGpu && gpus != 1) return invalid_argument("a fractional GPU share needs gpus = 1");
  if (gpu_milli < kMilliPerGpu && nodes > 1) return invalid_argument("a fractional GPU job runs on one node");
  if (nodes > 0 && gpus > 0 && gpus % nodes != 0) {
    return invalid_argument(fmt::format("gpus ({}) must be a multiple of nodes ({})", gpus, nodes));
  }
  if (nodes > 1 && gpus == 0) return invalid_argument("a multi-node job needs GPUs");
  if (cpu_milli < 0 || memory_mib < 0 || min_gpu_memory_mib < 0) {
    return invalid_argument("cpu, memory and min_gpu_memory must not be negative");
  }
  return Status::ok();
}

int64_t GangPlacement::total_gpu_milli() const {
  int64_t s = 0;
  for (const auto& p : parts) {
    for (const auto& g : p.gpus) s += g.milli;
  }
  return s;
}

std::vector<std::pair<int, int>> gang_layouts(const JobShape& shape, int max_gpus, int num_nodes) {
  std::vector<std::pair<int, int>> out;
  if (shape.gpus == 0 || shape.fractional()) {
    out.push_back({1, shape.gpus});
    return out;
  }
  if (shape.nodes > 0) {
    if (shape.gpus / shape.nodes <= max_gpus && shape.nodes <= num_nodes) out.push_back({shape.nodes, shape.gpus / shape.nodes});
    return out;
  }
  for (int k = 1; k <= shape.gpus && k <= num_nodes; ++k) {
    if (shape.gpus % k == 0 && shape.gpus / k <= max_gpus) out.push_back({k, shape.gpus / k});
  }
  return out;
}

GangPlacer::GangPlacer(Cluster cluster, std::unique_ptr<PlacementPolicy> single)
    : cluster_(std::move(cluster)), single_(std::move(single)) {
  if (!single_) single_ = std::make_unique<BestFitPolicy>();
  const size_t n = cluster_.size();
  node_type_.assign(n, -1);
  pos_full_.assign(n, 0);
  pos_share_.assign(n, 0);
  bucket_full_.assign(n, -1);
  bucket_share_.assign(n, -1);
  down_.assign(n, 0);
  indexed_.assign(n, 0);
  for (size_t i = 0; i < n; ++i) {
    const Node& node = cluster_.node(i);
    if (node.num_gpus() == 0) continue;
    int t = type_id(node.gpu_type);
    if (t < 0) {
      t = static_cast<int>(types_.size());
      types_.push_back(node.gpu_type);
      index_.emplace_back();
    }
    node_type_[i] = t;
    TypeIndex& ix = index_[t];
    ix.nodes.push_back(i);
    ix.max_gpus = std::max(ix.max_gpus, node.num_gpus());
    ix.capacity_milli += static_cast<int64_t>(node.num_gpus()) * kMilliPerGpu;
    ix.gpu_memory_mib = ix.gpu_memory_mib == 0 ? node.gpu_memory_mib : std::min(ix.gpu_memory_mib, node.gpu_memory_mib);
  }
  for (auto& ix : index_) {
    ix.by_full.resize(static_cast<size_t>(ix.max_gpus) + 1);
    ix.by_share.resize(static_cast<size_t>(share_bucket(kMilliPerGpu)) + 1);
  }
  for (size_t i = 0; i < n; ++i) index_insert(i);
}

int GangPlacer::type_id(std::string_view name) const {
  for (size_t t = 0; t < types_.size(); ++t) {
    if (types_[t] == name) return static_cast<int>(t);
  }
  return -1;
}

void GangPlacer::set_down(size_t node, bool down) {
  if (node >= cluster_.size() || is_down(node) == down) return;
  if (down) {
    index_remove(node);
    down_[node] = 1;
  } else {
    down_[node] = 0;
    index_insert(node);
  }
}

void GangPlacer::index_insert(size_t i) {
  if (down_[i]) return;
  indexed_[i] = 1;
  const Node& node = cluster_.node(i);
  cpu_free_.insert(node.cpu_free);
  memory_free_.insert(node.memory_free);
  const int t = node_type_[i];
  if (t < 0) return;
  TypeIndex& ix = index_[t];
  int32_t best = 0;
  for (int32_t f : node.gpu_free) best = std::max(best, f);
  const int full = node.full_gpus_free();
  bucket_full_[i] = full;
  bucket_share_[i] = share_bucket(best);
  auto& bf = ix.by_full[static_cast<size_t>(full)];
  pos_full_[i] = static_cast<uint32_t>(bf.size());
  bf.push_back(static_cast<uint32_t>(i));
  auto& bs = ix.by_share[static_cast<size_t>(bucket_share_[i])];
  pos_share_[i] = static_cast<uint32_t>(bs.size());
  bs.push_back(static_cast<uint32_t>(i));
  ix.free_milli += node.gpu_free_milli();
}

void GangPlacer::index_remove(size_t i) {
  if (!indexed_[i]) return;
  indexed_[i] = 0;
  cpu_free_.erase(cpu_free_.find(cluster_.node(i).cpu_free));
  memory_free_.erase(memory_free_.find(cluster_.node(i).memory_free));
  const int t = node_type_[i];
  if (t < 0) return;
  TypeIndex& ix = index_[t];
  auto erase = [&](std::vector<uint32_t>& bucket, std::vector<uint32_t>& pos) {
    const uint32_t at = pos[i];
    const uint32_t last = bucket.back();
    bucket[at] = last;
    pos[last] = at;
    bucket.pop_back();
  };
  erase(ix.by_full[static_cast<size_t>(bucket_full_[i])], pos_full_);
  erase(ix.by_share[static_cast<size_t>(bucket_share_[i])], pos_share_);
  ix.free_milli -= cluster_.node(i).gpu_free_milli();
}

std::vector<int> GangPlacer::eligible_types(const JobShape& shape) const {
  std::vector<int> out;
  if (shape.gpus == 0) return out;
  for (size_t t = 0; t < types_.size(); ++t) {
    if (!shape.gpu_types.empty() &&
        std::find(shape.gpu_types.begin(), shape.gpu_types.end(), types_[t]) == shape.gpu_types.end()) {
      continue;
    }
    const TypeIndex& ix = index_[t];
    if (shape.min_gpu_memory_mib > 0 && ix.gpu_memory_mib < shape.min_gpu_memory_mib) continue;
    // Could it ever fit: enough GPUs of the type in total, and per node when the node count is fixed.
    const int64_t type_gpus = ix.capacity_milli / kMilliPerGpu;
    if (type_gpus < shape.gpus) continue;
    if (gang_layouts(shape, ix.max_gpus, static_cast<int>(ix.nodes.size())).empty()) continue;
    bool host = false;  // some node of the type has the CPU and memory of one share
    for (size_t i : ix.nodes) {
      const Node& n = cluster_.node(i);
      host = host || (n.cpu_milli >= shape.cpu_milli && n.memory_mib >= shape.memory_mib);
    }
    if (!host) continue;
    out.push_back(static_cast<int>(t));
  }
  return out;
}

bool GangPlacer::may_fit(const JobShape& shape, const std::vector<int>& types) const {
  if (cpu_free_.empty() || *cpu_free_.rbegin() < shape.cpu_milli || *memory_free_.rbegin() < shape.memory_mib) {
    return false;
  }
  if (shape.gpus == 0) return true;
  for (int t : types) {
    const TypeIndex& ix = index_[t];
    if (ix.free_milli < shape.total_gpu_milli()) continue;
    if (shape.fractional()) {
      for (int b = share_bucket(shape.gpu_milli); b < static_cast<int>(ix.by_share.size()); ++b) {
        if (!ix.by_share[b].empty()) return true;
      }
      continue;
    }
    // The smallest per-node share any layout could use (the most nodes).
    int per_node = shape.nodes > 0 ? shape.gpus / shape.nodes : shape.gpus;
    if (shape.nodes == 0) {
      for (int g = 1; g <= ix.max_gpus; ++g) {
        if (shape.gpus % g == 0 && shape.gpus / g <= static_cast<int>(ix.nodes.size())) {
          per_node = g;
          break;
        }
      }
    }
    for (int n = per_node; n <= ix.max_gpus; ++n) {
      if (!ix.by_full[n].empty()) return true;
    }
  }
  return false;
}

bool GangPlacer::fits(const std::vector<int32_t>& gpu_free, int64_t cpu_free, int64_t memory_free,
                      const JobShape& shape, int per_node_gpus) {
  if (cpu_free < shape.cpu_milli || memory_free < shape.memory_mib) return false;
  const int32_t need = shape.fractional() ? shape.gpu_milli : kMilliPerGpu;
  int ok = 0;
  for (int32_t f : gpu_free) ok += f >= need ? 1 : 0;
  return ok >= per_node_gpus;
}

TaskRequest GangPlacer::task_for(const JobShape& shape, int per_node) const {
  TaskRequest t;
  t.cpu_milli = shape.cpu_milli;
  t.memory_mib = shape.memory_mib;
  t.num_gpu = per_node;
  t.gpu_milli = shape.fractional() ? shape.gpu_milli : kMilliPerGpu;
  return t;  // GPU types are enforced by the candidate list
}

void GangPlacer::choose_gpus(size_t node, int count, Placement& p) const {
  const Node& n = cluster_.node(node);
  // Fully free GPUs per island.
  std::map<int, std::vector<int>> islands;
  for (int g = 0; g < n.num_gpus(); ++g) {
    if (n.gpu_free[g] == kMilliPerGpu) islands[g < static_cast<int>(n.gpu_domain.size()) ? n.gpu_domain[g] : 0].push_back(g);
  }
  std::vector<int> picked;
  const std::vector<int>* tight = nullptr;
  for (const auto& [d, gpus] : islands) {
    if (static_cast<int>(gpus.size()) >= count && (!tight || gpus.size() < tight->size())) tight = &gpus;
  }
  if (tight) {
    picked.assign(tight->begin(), tight->begin() + count);
  } else {
    // No island holds the whole job: the fewest islands, largest first.
    std::vector<const std::vector<int>*> order;
    for (const auto& [d, gpus] : islands) order.push_back(&gpus);
    std::stable_sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->size() > b->size(); });
    for (auto* gpus : order) {
      for (int g : *gpus) {
        if (static_cast<int>(picked.size()) < count) picked.push_back(g);
      }
    }
    std::sort(picked.begin(), picked.end());
  }
  p.gpus.clear();
  for (int g : picked) p.gpus.push_back({g, kMilliPerGpu});
}

std::optional<GangPlacement> GangPlacer::place_single(const JobShape& shape, const std::vector<int>& types,
                                                      const std::vector<uint8_t>* excluded) {
  scratch_.clear();
  const std::vector<size_t>* candidates = &scratch_;
  if (shape.gpus == 0) {
    for (size_t i = 0; i < cluster_.size(); ++i) {
      if ((!excluded || !(*excluded)[i]) && !down_[i]) scratch_.push_back(i);
    }
  } else {
    for (int t : types) {
      const TypeIndex& ix = index_[t];
      auto take = [&](const std::vector<uint32_t>& bucket) {
        for (uint32_t i : bucket) {
          if (!excluded || !(*excluded)[i]) scratch_.push_back(i);
        }
      };
      if (shape.fractional()) {
        for (int b = share_bucket(shape.gpu_milli); b < static_cast<int>(ix.by_share.size()); ++b) take(ix.by_share[b]);
      } else {
        for (int n = shape.gpus; n <= ix.max_gpus; ++n) take(ix.by_full[n]);
      }
    }
  }
  if (scratch_.empty()) return std::nullopt;
  // (No sort: best-fit and FGD break ties by node index; random-fit sees a deterministic order.)
  auto p = single_->place_among(cluster_, task_for(shape, shape.gpus), candidates);
  if (!p) return std::nullopt;
  if (!shape.fractional() && shape.gpus > 0) choose_gpus(p->node, shape.gpus, *p);
  GangPlacement gang;
  gang.gpu_type = cluster_.node(p->node).gpu_type;
  gang.parts.push_back(std::move(*p));
  return gang;
}

std::optional<GangPlacement> GangPlacer::place_multi(const JobShape& shape, int k, int per_node, int type,
                                                     const std::vector<uint8_t>* excluded) {
  const TypeIndex& ix = index_[type];
  // Candidate nodes: per_node fully free GPUs and the CPU and memory of one share.
  std::map<std::string, std::vector<size_t>> by_rack;
  size_t total = 0;
  for (int n = per_node; n <= ix.max_gpus; ++n) {
    for (uint32_t i : ix.by_full[n]) {
      if (excluded && (*excluded)[i]) continue;
      const Node& node = cluster_.node(i);
      if (node.cpu_free < shape.cpu_milli || node.memory_free < shape.memory_mib) continue;
      by_rack[node.rack].push_back(i);
      ++total;
    }
  }
  if (total < static_cast<size_t>(k)) return std::nullopt;
  // Best fit inside a rack: the nodes with the fewest free GPUs first.
  auto tightest_first = [&](std::vector<size_t>& nodes) {
    std::sort(nodes.begin(), nodes.end(), [&](size_t a, size_t b) {
      return std::make_pair(cluster_.node(a).full_gpus_free(), a) < std::make_pair(cluster_.node(b).full_gpus_free(), b);
    });
  };
  std::vector<size_t> chosen;
  std::vector<size_t>* one_rack = nullptr;
  for (auto& [rack, nodes] : by_rack) {
    if (nodes.size() >= static_cast<size_t>(k) && (!one_rack || nodes.size() < one_rack->size())) one_rack = &nodes;
  }
  if (one_rack) {
    tightest_first(*one_rack);
    chosen.assign(one_rack->begin(), one_rack->begin() + k);
  } else {
    std::vector<std::vector<size_t>*> racks;
    for (auto& [rack, nodes] : by_rack) racks.push_back(&nodes);
    std::stable_sort(racks.begin(), racks.end(), [](auto* a, auto* b) { return a->size() > b->size(); });
    for (auto* nodes : racks) {
      tightest_first(*nodes);
      for (size_t i : *nodes) {
        if (chosen.size() < static_cast<size_t>(k)) chosen.push_back(i);
      }
    }
  }
  GangPlacement gang;
  gang.gpu_type = types_[type];
  for (size_t i : chosen) {
    Placement p;
    p.node = i;
    p.cpu_milli = shape.cpu_milli;
    p.memory_mib = shape.memory_mib;
    choose_gpus(i, per_node, p);
    gang.parts.push_back(std::move(p));
  }
  return gang;
}

std::optional<GangPlacement> GangPlacer::place(const JobShape& shape, const std::vector<int>& types,
                                               const std::vector<uint8_t>* excluded) {
  if (!may_fit(shape, types)) return std::nullopt;
  if (shape.gpus == 0 || shape.fractional() || shape.nodes == 1) return place_single(shape, types, excluded);
  if (shape.nodes > 1) {
    for (int t : types) {
      if (auto g = place_multi(shape, shape.nodes, shape.gpus / shape.nodes, t, excluded)) return g;
    }
    return std::nullopt;
  }
  // nodes == 0: one node if the job fits on one, else the fewest nodes (even split) of one type.
  if (auto g = place_single(shape, types, excluded)) return g;
  std::optional<GangPlacement> best;
  for (int t : types) {
    const TypeIndex& ix = index_[t];
    for (int k = 2; k <= shape.gpus && k <= static_cast<int>(ix.nodes.size()); ++k) {
      if (shape.gpus % k != 0 || shape.gpus / k > ix.max_gpus) continue;
      if (best && static_cast<int>(best->parts.size()) <= k) break;
      if (auto g = place_multi(shape, k, shape.gpus / k, t, excluded)) {
        best = std::move(g);
        break;
      }
    }
  }
  return best;
}

Status GangPlacer::allocate(const GangPlacement& p) {
  for (size_t r = 0; r < p.parts.size(); ++r) {
    const size_t node = p.parts[r].node;
    if (node >= cluster_.size()) return invalid_argument("placement names a node that does not exist");
    index_remove(node);
    Status s = cluster_.allocate(p.parts[r]);
    index_insert(node);
    if (!s.is_ok()) {
      for (size_t u = 0; u < r; ++u) {
        index_remove(p.parts[u].node);
        (void)cluster_.release(p.parts[u]);
        index_insert(p.parts[u].node);
      }
      return s;
    }
  }
  return Status::ok();
}

Status GangPlacer::release(const GangPlacement& p) {
  for (size_t r = 0; r < p.parts.size(); ++r) {
    const size_t node = p.parts[r].node;
    if (node >= cluster_.size()) return invalid_argument("placement names a node that does not exist");
    index_remove(node);
    Status s = cluster_.release(p.parts[r]);
    index_insert(node);
    if (!s.is_ok()) {
      for (size_t u = 0; u < r; ++u) {
        index_remove(p.parts[u].node);
        (void)cluster_.allocate(p.parts[u]);
        index_insert(p.parts[u].node);
      }
      return s;
    }
  }
  return Status::ok();
}

}  // namespace nc::capacity
