// Single-node placement policies: random-fit, best-fit, FGD (placement.h).
#include "capacity/placement.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <tuple>

namespace nc::capacity {
namespace {

// BestFit's score for putting `task` on GPU `gpu` (fractional) of node i; smaller is better.
using FitKey = std::tuple<int64_t, int64_t, size_t, int32_t, int>;

FitKey fit_key(const Node& n, size_t i, const TaskRequest& task, int gpu) {
  const int64_t gpu_left = n.gpu_free_milli() - task.total_gpu_milli();
  const int64_t cpu_left = n.cpu_free - task.cpu_milli;
  const int32_t gpu_free = gpu >= 0 ? n.gpu_free[gpu] : 0;
  return {gpu_left, cpu_left, i, gpu_free, gpu};
}

// The GPUs a fractional task may take on node n.
template <typename F>
void for_each_fitting_gpu(const Node& n, const TaskRequest& task, F&& f) {
  for (int g = 0; g < n.num_gpus(); ++g) {
    if (n.gpu_free[g] >= task.gpu_milli) f(g);
  }
}

// Calls f(i) for each candidate node (every node when candidates is null).
template <typename F>
void for_nodes(const Cluster& cluster, const std::vector<size_t>* candidates, F&& f) {
  if (candidates != nullptr) {
    for (size_t i : *candidates) f(i);
  } else {
    for (size_t i = 0; i < cluster.size(); ++i) f(i);
  }
}

}  // namespace

TargetWorkload TargetWorkload::from_pods(const std::vector<PodRecord>& pods) {
  std::map<std::tuple<int, int32_t, int64_t>, int64_t> counts;
  for (const auto& p : pods) {
    const TaskRequest& t = p.request;
    ++counts[{std::max(0, t.num_gpu), t.num_gpu > 0 ? t.per_gpu_milli() : 0, t.cpu_milli}];
  }
  TargetWorkload w;
  for (const auto& [key, n] : counts) {
    w.types.push_back({std::get<0>(key), std::get<1>(key), static_cast<double>(n) / static_cast<double>(pods.size()),
                       std::get<2>(key)});
  }
  return w;
}

std::optional<Placement> RandomFitPolicy::place_among(const Cluster& cluster, const TaskRequest& task,
                                                             const std::vector<size_t>* candidates) {
  feasible_.clear();
  for_nodes(cluster, candidates, [&](size_t i) {
    if (node_admits(cluster.node(i), task)) feasible_.push_back(i);
  });
  if (feasible_.empty()) return std::nullopt;
  const size_t i = feasible_[rng_() % feasible_.size()];
  const Node& n = cluster.node(i);
  int gpu = -1;
  if (task.is_fractional()) {
    int count = 0;
    for_each_fitting_gpu(n, task, [&](int) { ++count; });
    int pick = static_cast<int>(rng_() % static_cast<uint64_t>(count));
    for_each_fitting_gpu(n, task, [&](int g) {
      if (pick-- == 0) gpu = g;
    });
  }
  return make_placement(i, n, task, gpu);
}

std::optional<Placement> BestFitPolicy::place_among(const Cluster& cluster, const TaskRequest& task,
                                                           const std::vector<size_t>* candidates) {
  std::optional<FitKey> best;
  for_nodes(cluster, candidates, [&](size_t i) {
    const Node& n = cluster.node(i);
    if (!node_admits(n, task)) return;
    auto consider = [&](int gpu) {
      FitKey k = fit_key(n, i, task, gpu);
      if (!best || k < *best) best = k;
    };
    if (task.is_fractional()) {
      for_each_fitting_gpu(n, task, consider);
    } else {
      consider(-1);
    }
  });
  if (!best) return std::nullopt;
  const size_t i = std::get<2>(*best);
  return make_placement(i, cluster.node(i), task, std::get<4>(*best));
}

FgdPolicy::FgdPolicy(const TargetWorkload& target) {
  int max_k = 1;
  double gpu_weight = 0;
  for (const auto& t : target.types) {
    if (t.num_gpu <= 0) continue;
    max_k = std::max(max_k, t.num_gpu);
    gpu_weight += t.weight;
    cpu_levels_.push_back(t.cpu_milli);
  }
  std::sort(cpu_levels_.begin(), cpu_levels_.end());
  cpu_levels_.erase(std::unique(cpu_levels_.begin(), cpu_levels_.end()), cpu_levels_.end());
  levels_.resize(cpu_levels_.size() + 1);
  for (size_t l = 0; l < levels_.size(); ++l) {
    Level& lv = levels_[l];
    lv.blocked_weight = gpu_weight;
    lv.single_weight_above.assign(kMilliPerGpu + 1, 0.0);
    lv.multi_weight_above.assign(static_cast<size_t>(max_k) + 1, 0.0);
    for (const auto& t : target.types) {
      if (t.num_gpu <= 0 || l == 0 || t.cpu_milli > cpu_levels_[l - 1]) continue;
      lv.blocked_weight -= t.weight;
      if (t.num_gpu == 1) {
        for (int32_t f = 0; f < t.per_gpu_milli && f <= kMilliPerGpu; ++f) lv.single_weight_above[f] += t.weight;
      } else {
        lv.multi_weight += t.weight;
        for (int n = 0; n < t.num_gpu; ++n) lv.multi_weight_above[n] += t.weight;
      }
    }
  }
}

double FgdPolicy::node_fragmentation(const std::vector<int32_t>& gpu_free, int64_t cpu_free) const {
  const size_t l = static_cast<size_t>(std::upper_bound(cpu_levels_.begin(), cpu_levels_.end(), cpu_free) -
                                       cpu_levels_.begin());
  const Level& lv = levels_[l];
  double single = 0;
  int64_t nonfull_sum = 0;
  int full = 0;
  for (int32_t f : gpu_free) {
    single += static_cast<double>(f) * lv.single_weight_above[f];
    if (f == kMilliPerGpu) {
      ++full;
    } else {
      nonfull_sum += f;
    }
  }
  const size_t n = std::min(static_cast<size_t>(full), lv.multi_weight_above.size() - 1);
  const double total = static_cast<double>(nonfull_sum) + static_cast<double>(kMilliPerGpu) * full;
  return lv.blocked_weight * total + single + lv.multi_weight * static_cast<double>(nonfull_sum) +
         static_cast<double>(kMilliPerGpu) * full * lv.multi_weight_above[n];
}

double FgdPolicy::cached_fragmentation(const Cluster& cluster, size_t i) {
  if (stamps_.size() != cluster.size()) {
    stamps_.assign(cluster.size(), 0);
    frag_.assign(cluster.size(), 0.0);
  }
  if (stamps_[i] != cluster.node_stamp(i)) {
    frag_[i] = node_fragmentation(cluster.node(i).gpu_free, cluster.node(i).cpu_free);
    stamps_[i] = cluster.node_stamp(i);
  }
  return frag_[i];
}

double FgdPolicy::cluster_fragmentation(const Cluster& cluster) {
  double s = 0;
  for (size_t i = 0; i < cluster.size(); ++i) s += cached_fragmentation(cluster, i);
  return s;
}

std::optional<Placement> FgdPolicy::place_among(const Cluster& cluster, const TaskRequest& task,
                                                       const std::vector<size_t>* candidates) {
  constexpr double kEps = 1e-9;
  bool found = false;
  double best_delta = 0;
  FitKey best_key{};
  auto consider = [&](double delta, const FitKey& key) {
    if (!found || delta < best_delta - kEps || (delta <= best_delta + kEps && key < best_key)) {
      found = true;
      best_delta = delta;
      best_key = key;
    }
  };
  for_nodes(cluster, candidates, [&](size_t i) {
    const Node& n = cluster.node(i);
    if (!node_admits(n, task)) return;
    const double before = cached_fragmentation(cluster, i);
    const int64_t cpu_after = n.cpu_free - task.cpu_milli;
    scratch_ = n.gpu_free;
    if (task.is_fractional()) {
      for_each_fitting_gpu(n, task, [&](int g) {
        scratch_[g] -= task.gpu_milli;
        consider(node_fragmentation(scratch_, cpu_after) - before, fit_key(n, i, task, g));
        scratch_[g] += task.gpu_milli;
      });
    } else {
      int taken = 0;
      for (auto& f : scratch_) {
        if (taken < task.num_gpu && f == kMilliPerGpu) {
          f = 0;
          ++taken;
        }
      }
      consider(node_fragmentation(scratch_, cpu_after) - before, fit_key(n, i, task, -1));
    }
  });
  if (!found) return std::nullopt;
  const size_t i = std::get<2>(best_key);
  return make_placement(i, cluster.node(i), task, std::get<4>(best_key));
}

Result<std::unique_ptr<PlacementPolicy>> make_policy(std::string_view name, const TargetWorkload& target, uint64_t seed) {
  if (name == "random-fit") return std::unique_ptr<PlacementPolicy>(std::make_unique<RandomFitPolicy>(seed));
  if (name == "best-fit") return std::unique_ptr<PlacementPolicy>(std::make_unique<BestFitPolicy>());
  if (name == "fgd") return std::unique_ptr<PlacementPolicy>(std::make_unique<FgdPolicy>(target));
  return invalid_argument(fmt::format("unknown placement policy '{}' (random-fit, best-fit, fgd)", name));
}

const std::vector<std::string_view>& policy_names() {
  static const std::vector<std::string_view> names = {"random-fit", "best-fit", "fgd"};
  return names;
}

}  // namespace nc::capacity
