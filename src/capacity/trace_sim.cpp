// The Alibaba GPU trace replay through the scheduler (trace_sim.h).
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

namespace {

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

}  // namespace

Result<ReplayReport> replay_scheduled(const Cluster& initial, const std::vector<PodRecord>& pods,
                                      const ScheduledReplayOptions& options) {
  const ReplayOptions& ro = options.replay;
  if (ro.time_samples < 2) return invalid_argument("time_samples must be at least 2");
  NC_ASSIGN_OR_RETURN(auto sched, Scheduler::create(initial, options.scheduler));
  const Cluster& cluster = sched->cluster();
  ReplayReport r;
  r.queued = true;
  r.policy = options.scheduler.placement;
  r.pods = static_cast<int64_t>(pods.size());
  r.gpus = cluster.total_gpus();
  if (pods.empty()) return r;
  constexpr int64_t kUs = 1000000;  // trace seconds -> scheduler microseconds

  std::vector<size_t> order(pods.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return pods[a].creation_time < pods[b].creation_time; });
  const int64_t start = pods[order.front()].creation_time;
  int64_t end_guess = pods[order.back()].creation_time;
  for (const auto& p : pods) {
    if (ro.departures && p.deletion_time != kNoDeletion) end_guess = std::max(end_guess, p.deletion_time);
  }
  Meter meter(cluster, start, end_guess, ro.time_samples, r.over_time);

  auto job_of = [&](size_t i) {
    const PodRecord& p = pods[i];
    SchedJob j;
    j.id = i + 1;
    j.org = "trace";
    j.priority = options.be_as_spot && p.qos == "BE" ? PriorityClass::kSpot : PriorityClass::kOnDemand;
    j.shape.gpus = p.request.num_gpu;
    j.shape.gpu_milli = p.request.num_gpu == 1 ? p.request.gpu_milli : kMilliPerGpu;
    j.shape.gpu_types = p.request.gpu_types;
    j.shape.cpu_milli = p.request.cpu_milli;
    j.shape.memory_mib = p.request.memory_mib;
    j.shape.nodes = p.request.num_gpu > 0 ? 1 : 0;  // a pod is one node's worth
    if (ro.departures && p.deletion_time != kNoDeletion) j.max_duration_s = std::max<int64_t>(1, p.deletion_time - p.creation_time);
    j.submitted_us = p.creation_time * kUs + static_cast<int64_t>(i);
    return j;
  };
  std::vector<int64_t> first_start(pods.size(), -1), generation(pods.size(), 0);
  std::vector<uint8_t> running(pods.size(), 0);
  struct End {
    int64_t time;
    size_t pod;
    int64_t gen;
    bool operator>(const End& o) const { return time != o.time ? time > o.time : pod > o.pod; }
  };
  std::priority_queue<End, std::vector<End>, std::greater<>> ends;
  std::vector<double> delays, jcts;
  const double cap = static_cast<double>(cluster.gpu_capacity_milli());
  int64_t requested = 0;
  int64_t now = start;

  auto cycle = [&](int64_t t, const std::vector<size_t>& arrived) -> Status {
    for (const Decision& d : sched->schedule(t * kUs)) {
      const size_t i = static_cast<size_t>(d.job - 1);
      if (d.kind == Decision::Kind::kPreempt) {
        // A spot pod is stopped at once here and queued again; it starts over.
        NC_RETURN_IF_ERROR(sched->remove(d.job));
        running[i] = 0;
        ++generation[i];
        ++r.preemptions;
        NC_RETURN_IF_ERROR(sched->submit(job_of(i)));
        continue;
      }
      if (d.kind != Decision::Kind::kStart) continue;
      running[i] = 1;
      if (first_start[i] < 0) {
        first_start[i] = t;
        ++r.started_pods;
        if (pods[i].request.num_gpu > 0) delays.push_back(static_cast<double>(t - pods[i].creation_time));
      }
      if (ro.departures && pods[i].deletion_time != kNoDeletion) {
        ends.push({t + std::max<int64_t>(1, pods[i].deletion_time - pods[i].creation_time), i, generation[i]});
      }
    }
    for (size_t i : arrived) {
      if (!r.unallocated_gpus_at_first_failure && pods[i].request.num_gpu > 0 && !running[i]) {
        r.unallocated_gpus_at_first_failure = static_cast<double>(cluster.gpu_free_milli()) / kMilliPerGpu;
        r.requested_at_first_failure = cap > 0 ? static_cast<double>(requested) / cap : 0;
      }
    }
    return Status::ok();
  };

  size_t next = 0;
  std::vector<size_t> arrived;
  while (next < order.size() || !ends.empty()) {
    // The next event time: an arrival or a pod's end.
    int64_t t = INT64_MAX;
    if (next < order.size()) t = pods[order[next]].creation_time;
    if (!ends.empty()) t = std::min(t, ends.top().time);
    meter.advance(t);
    now = t;
    while (!ends.empty() && ends.top().time == t) {
      const End e = ends.top();
      ends.pop();
      if (e.gen != generation[e.pod] || !running[e.pod]) continue;  // preempted since
      NC_RETURN_IF_ERROR(sched->remove(e.pod + 1));
      running[e.pod] = 0;
      jcts.push_back(static_cast<double>(t - pods[e.pod].creation_time));
    }
    arrived.clear();
    while (next < order.size() && pods[order[next]].creation_time == t) {
      const size_t i = order[next++];
      requested += pods[i].request.total_gpu_milli();
      if (pods[i].request.num_gpu > 0) ++r.gpu_pods;
      if (!sched->submit(job_of(i)).is_ok()) {
        ++r.failed_pods;  // can never fit this cluster
        if (pods[i].request.num_gpu > 0) ++r.failed_gpu_pods;
        continue;
      }
      arrived.push_back(i);
    }
    NC_RETURN_IF_ERROR(cycle(t, arrived));
    if (next == order.size() && r.allocated_ratio_after_arrivals == 0) {
      r.allocated_ratio_after_arrivals = cap > 0 ? static_cast<double>(cluster.gpu_allocated_milli()) / cap : 0;
    }
  }
  meter.advance(std::max(now, end_guess));
  meter.finish();
  r.allocated_gpu_ratio = meter.ratio();
  r.never_started = static_cast<int64_t>(sched->queued()) + r.failed_pods;
  double sum = 0;
  for (double d : delays) sum += d;
  r.queue_delay_mean_s = delays.empty() ? 0 : sum / static_cast<double>(delays.size());
  r.queue_delay_p50_s = percentile(delays, 0.5);
  r.queue_delay_p99_s = percentile(delays, 0.99);
  sum = 0;
  for (double d : jcts) sum += d;
  r.jct_mean_s = jcts.empty() ? 0 : sum / static_cast<double>(jcts.size());
  r.jct_p99_s = percentile(jcts, 0.99);
  return r;
}

}  // namespace nc::capacity
