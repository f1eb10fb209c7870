// Scheduler decision latency: the Alibaba v2023 GPU cluster (1,213 nodes, 6,212 GPUs), filled with running
// jobs and 10,000 more queued behind them; then, event after event, a running job ends and a new one is
// submitted, and one scheduling cycle decides what starts (and what is preempted). Prints p50/p99/max of
// the cycle and of submit, and the ratio to the goal (p99 < 1 ms).
//
//   build/release/bin/scheduler_bench --nodes ../shared/traces/alibaba-gpu-v2023/openb_node_list_gpu_node.csv
//       --pods ../shared/traces/alibaba-gpu-v2023/openb_pod_list_default.csv [--queued 10000] [--events 3000]
//
// Job shapes come from the pod list (CPU, memory, GPU count, fractional share, GPU type constraints),
// with a share of multi-node gangs (16 and 32 GPUs), 8 organizations (two with quotas), 30% spot, and max
// durations from the trace's pod lifetimes.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <vector>

#include "capacity/cluster.h"
#include "capacity/scheduler.h"

using namespace nc::capacity;

namespace {

double pct(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"capacity scheduler decision latency"};
  std::string nodes_csv = "../shared/traces/alibaba-gpu-v2023/openb_node_list_gpu_node.csv";
  std::string pods_csv = "../shared/traces/alibaba-gpu-v2023/openb_pod_list_default.csv";
  size_t queued_target = 10000;
  int events = 3000;
  std::string policy = "best-fit";
  uint64_t seed = 7;
  app.add_option("--nodes", nodes_csv);
  app.add_option("--pods", pods_csv);
  app.add_option("--queued", queued_target);
  app.add_option("--events", events);
  app.add_option("--policy", policy);
  app.add_option("--seed", seed);
  CLI11_PARSE(app, argc, argv);

  auto cluster = load_cluster_csv(nodes_csv);
  if (!cluster) {
    fmt::print(stderr, "{}\n", cluster.status().to_string());
    return 1;
  }
  auto pods = load_pods_csv(pods_csv);
  if (!pods) {
    fmt::print(stderr, "{}\n", pods.status().to_string());
    return 1;
  }
  // Give nodes racks (32 per rack) and two NVLink islands per 8-GPU node, as a real fleet would have.
  std::vector<Node> nodes = cluster->nodes();
  for (size_t i = 0; i < nodes.size(); ++i) {
    nodes[i].rack = fmt::format("rack{}", i / 32);
    for (int g = 0; g < nodes[i].num_gpus(); ++g) nodes[i].gpu_domain[g] = nodes[i].num_gpus() == 8 ? g / 4 : 0;
  }
  const int total_gpus = Cluster(nodes).total_gpus();
  SchedulerOptions opts;
  opts.placement = policy;
  opts.target = TargetWorkload::from_pods(*pods);
  auto sched_or = Scheduler::create(Cluster(std::move(nodes)), opts);
  if (!sched_or) {
    fmt::print(stderr, "{}\n", sched_or.status().to_string());
    return 1;
  }
  Scheduler& s = **sched_or;
  (void)s.set_quota("org0", "", 800000);
  (void)s.set_quota("org1", "G2", 200000);

  std::mt19937_64 rng(seed);
  uint64_t next_id = 1;
  int64_t now = 1'700'000'000LL * 1000000;
  std::vector<uint64_t> running;
  auto make_job = [&]() {
    const PodRecord& pod = (*pods)[rng() % pods->size()];
    SchedJob j;
    j.id = next_id++;
    j.org = fmt::format("org{}", rng() % 8);
    j.priority = rng() % 10 < 3 ? PriorityClass::kSpot : PriorityClass::kOnDemand;
    j.shape.gpus = pod.request.num_gpu;
    j.shape.gpu_milli = pod.request.num_gpu == 1 ? pod.request.gpu_milli : kMilliPerGpu;
    j.shape.gpu_types = pod.request.gpu_types;
    j.shape.cpu_milli = pod.request.cpu_milli;
    j.shape.memory_mib = pod.request.memory_mib;
    if (rng() % 50 == 0) {  // a distributed training gang
      j.shape.gpus = rng() % 2 ? 16 : 32;
      j.shape.gpu_milli = kMilliPerGpu;
      j.shape.gpu_types.clear();
    }
    const int64_t life = pod.deletion_time != kNoDeletion ? pod.deletion_time - pod.creation_time : 3600;
    j.max_duration_s = std::clamp<int64_t>(life, 60, 30 * 86400);
    j.submitted_us = now + static_cast<int64_t>(j.id);
    return j;
  };
  auto submit_one = [&]() {
    for (;;) {
      SchedJob j = make_job();
      if (s.submit(j).is_ok()) return;
    }
  };
  auto apply = [&](const std::vector<Decision>& ds) {
    for (const auto& d : ds) {
      if (d.kind == Decision::Kind::kStart) {
        running.push_back(d.job);
      } else {  // the executor stops the victim; here at once
        (void)s.remove(d.job);
        running.erase(std::find(running.begin(), running.end(), d.job));
      }
    }
  };

  // Fill: submit until the cluster is nearly full and queued_target jobs wait.
  auto t0 = std::chrono::steady_clock::now();
  while (s.queued() < queued_target) {
    for (int i = 0; i < 500; ++i) submit_one();
    apply(s.schedule(now));
  }
  const double fill_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  fmt::print("cluster: {} nodes, {} GPUs; running {} jobs, {} queued; allocated {:.1f}% of GPU capacity (fill {:.1f} s)\n",
             s.cluster().size(), total_gpus, s.running(), s.queued(),
             100.0 * static_cast<double>(s.cluster().gpu_allocated_milli()) /
                 static_cast<double>(s.cluster().gpu_capacity_milli()),
             fill_s);

  std::vector<double> cycle_us, submit_us, end_us;
  int64_t started = 0, preempted = 0, examined = 0, placements = 0, shadows = 0;
  for (int e = 0; e < events; ++e) {
    now += 1000000;
    // A running job ends.
    if (!running.empty()) {
      const size_t k = rng() % running.size();
      const uint64_t id = running[k];
      running[k] = running.back();
      running.pop_back();
      auto a = std::chrono::steady_clock::now();
      (void)s.remove(id);
      end_us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - a).count());
    }
    // A new job arrives.
    do {  // (and the queue is kept at its size)
      auto b = std::chrono::steady_clock::now();
      submit_one();
      submit_us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - b).count());
    } while (s.queued() < queued_target);
    // One scheduling cycle.
    auto c = std::chrono::steady_clock::now();
    auto ds = s.schedule(now);
    cycle_us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - c).count());
    const auto& st = s.last_cycle();
    started += st.started;
    preempted += st.preempted;
    examined += st.examined;
    placements += st.placements;
    shadows += st.shadow ? 1 : 0;
    apply(ds);
  }
  const double p50 = pct(cycle_us, 0.50), p99 = pct(cycle_us, 0.99), mx = pct(cycle_us, 1.0);
  fmt::print("policy {}: {} events, queue {} jobs at the end, {} running\n", policy, events, s.queued(), s.running());
  fmt::print("  schedule cycle   p50 {:8.1f} us  p99 {:8.1f} us  max {:8.1f} us\n", p50, p99, mx);
  fmt::print("  submit           p50 {:8.1f} us  p99 {:8.1f} us\n", pct(submit_us, 0.5), pct(submit_us, 0.99));
  fmt::print("  job end (remove) p50 {:8.1f} us  p99 {:8.1f} us\n", pct(end_us, 0.5), pct(end_us, 0.99));
  fmt::print("  per cycle: {:.0f} queued jobs examined, {:.1f} placement searches, {:.2f} starts, {:.3f} preemptions; "
             "backfill reservation in {:.0f}% of cycles\n",
             static_cast<double>(examined) / events, static_cast<double>(placements) / events,
             static_cast<double>(started) / events, static_cast<double>(preempted) / events, 100.0 * shadows / events);
  fmt::print("  goal p99 < 1000 us: p99 is {:.3f}x the goal ({})\n", p99 / 1000.0, p99 < 1000.0 ? "met" : "NOT met");
  return p99 < 1000.0 ? 0 : 2;
}
