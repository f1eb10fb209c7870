#include "capacity/trace_sim.h"

#include <fmt/format.h>

#include <algorithm>
#include <numeric>
#include <queue>

namespace nc::capacity {
namespace {

struct Departure {
  int64_t time;
  size_t pod;
  bool operator>(const Departure& o) const { return time != o.time ? time > o.time : pod > o.pod; }
};

// Integrates the allocated GPU milli over time and emits the evenly spaced time samples.
class Meter {
 public:
  Meter(const Cluster& c, int64_t start, int64_t end, int samples, std::vector<RatioSample>& out)
      : cluster_(c), start_(start), last_(start), end_(end), samples_(samples), out_(out) {}

  // Call before the state changes at time t: accounts for [last, t) at the current allocation.
  void advance(int64_t t) {
    while (next_ < samples_ && sample_time(next_) < static_cast<double>(t)) emit(next_++);
    if (t > last_) {
      area_ += static_cast<double>(cluster_.gpu_allocated_milli()) * static_cast<double>(t - last_);
      last_ = t;
    }
  }
  void finish() {
    while (next_ < samples_) emit(next_++);
  }
  double ratio() const {
    const double span = static_cast<double>(last_ - start_);
    const double cap = static_cast<double>(cluster_.gpu_capacity_milli());
    if (cap <= 0) return 0;
    if (span <= 0) return static_cast<double>(cluster_.gpu_allocated_milli()) / cap;
    return area_ / (cap * span);
  }

 private:
  double sample_time(int i) const {
    return static_cast<double>(start_) + static_cast<double>(end_ - start_) * i / std::max(1, samples_ - 1);
  }
  void emit(int i) {
    const double cap = static_cast<double>(cluster_.gpu_capacity_milli());
    out_.push_back({sample_time(i), cap > 0 ? static_cast<double>(cluster_.gpu_allocated_milli()) / cap : 0});
  }

  const Cluster& cluster_;
  int64_t start_, last_, end_;
  int samples_, next_ = 0;
  double area_ = 0;
  std::vector<RatioSample>& out_;
};

}  // namespace

Result<ReplayReport> replay(const Cluster& initial, const std::vector<PodRecord>& pods, PlacementPolicy& policy,
                            const ReplayOptions& options) {
  if (options.time_samples < 2) return invalid_argument("time_samples must be at least 2");
  if (!(options.requested_step > 0)) return invalid_argument("requested_step must be positive");
  Cluster cluster = initial;
  ReplayReport r;
  r.policy = std::string(policy.name());
  r.pods = static_cast<int64_t>(pods.size());
  r.gpus = cluster.total_gpus();
  if (pods.empty()) return r;

  std::vector<size_t> order(pods.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return pods[a].creation_time < pods[b].creation_time; });
  const int64_t start = pods[order.front()].creation_time;
  int64_t end = pods[order.back()].creation_time;
  if (options.departures) {
    for (const auto& p : pods) {
      if (p.deletion_time != kNoDeletion) end = std::max(end, p.deletion_time);
    }
  }

  Meter meter(cluster, start, end, options.time_samples, r.over_time);
  std::priority_queue<Departure, std::vector<Departure>, std::greater<>> departures;
  std::vector<std::optional<Placement>> placed(pods.size());
  auto depart = [&](const Departure& d) -> Status {
    meter.advance(d.time);
    Status s = cluster.release(*placed[d.pod]);
    if (!s.is_ok()) return internal_error(fmt::format("releasing pod {}: {}", pods[d.pod].request.name, s.message()));
    placed[d.pod].reset();
    return Status::ok();
  };

  const double cap = static_cast<double>(cluster.gpu_capacity_milli());
  int64_t requested = 0;
  double next_requested_point = options.requested_step;
  for (size_t idx : order) {
    const PodRecord& pod = pods[idx];
    while (!departures.empty() && departures.top().time <= pod.creation_time) {
      NC_RETURN_IF_ERROR(depart(departures.top()));
      departures.pop();
    }
    meter.advance(pod.creation_time);
    const TaskRequest& task = pod.request;
    const bool gpu_pod = task.num_gpu > 0;
    r.gpu_pods += gpu_pod;
    requested += task.total_gpu_milli();
    std::optional<Placement> p = policy.place(cluster, task);
    if (p) {
      Status s = cluster.allocate(*p);
      if (!s.is_ok()) {
        return internal_error(fmt::format("policy {} gave pod {} a placement that does not fit: {}", policy.name(),
                                          task.name, s.message()));
      }
      if (options.departures && pod.deletion_time != kNoDeletion) {
        placed[idx] = std::move(*p);
        departures.push({pod.deletion_time, idx});
      }
    } else {
      ++r.failed_pods;
      if (gpu_pod) {
        if (r.failed_gpu_pods == 0) {
          r.unallocated_gpus_at_first_failure = static_cast<double>(cluster.gpu_free_milli()) / kMilliPerGpu;
          r.requested_at_first_failure = cap > 0 ? static_cast<double>(requested) / cap : 0;
        }
        ++r.failed_gpu_pods;
      }
    }
    if (cap > 0 && gpu_pod) {
      const double x = static_cast<double>(requested) / cap;
      if (x >= next_requested_point) {
        r.vs_requested.push_back({x, static_cast<double>(cluster.gpu_allocated_milli()) / cap});
        while (next_requested_point <= x) next_requested_point += options.requested_step;
      }
    }
  }
  r.allocated_ratio_after_arrivals = cap > 0 ? static_cast<double>(cluster.gpu_allocated_milli()) / cap : 0;
  if (cap > 0 && (r.vs_requested.empty() || r.vs_requested.back().x < static_cast<double>(requested) / cap)) {
    r.vs_requested.push_back({static_cast<double>(requested) / cap, r.allocated_ratio_after_arrivals});  // the end
  }
  while (!departures.empty()) {
    NC_RETURN_IF_ERROR(depart(departures.top()));
    departures.pop();
  }
  meter.advance(end);
  meter.finish();
  r.allocated_gpu_ratio = meter.ratio();
  return r;
}

}  // namespace nc::capacity
