// `neocloud capacity simulate --nodes NODES.csv --pods PODS.csv --policy random-fit|best-fit|fgd|all
// [--mode queue|fail] [--seed N] [--no-departures] [--no-spot] [--json [--curves]]`: replays a pod list
// (Alibaba cluster-trace-gpu-v2023 format) on a cluster and reports how many GPUs each placement policy
// leaves unallocated. --mode queue (default) runs the pods through the real Scheduler (src/capacity/
// scheduler.h: a pod that does not fit waits; BE pods are spot unless --no-spot; queueing delay and job
// completion times are reported); --mode fail places each pod on arrival or fails it (the FGD paper's
// simulator). --json prints one JSON object per policy per line.
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "apps/neocloud/commands.h"
#include "capacity/cluster.h"
#include "capacity/placement.h"
#include "capacity/trace_sim.h"

namespace nc::app {
namespace {

struct CapacityOptions {
  std::string nodes, pods, policy = "all";
  uint64_t seed = 42;
  bool json = false, curves = false, no_departures = false, no_spot = false;
  double speedup = 1.0;
  std::string mode = "queue";
};

std::string json_number(double v) { return std::isfinite(v) ? fmt::format("{:.6g}", v) : "null"; }
std::string json_optional(const std::optional<double>& v) { return v ? json_number(*v) : "null"; }

std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += fmt::format("\\u{:04x}", static_cast<unsigned char>(c));
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string json_samples(const std::vector<capacity::RatioSample>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) {
    out += fmt::format("{}[{},{}]", i ? "," : "", json_number(v[i].x), json_number(v[i].allocated_ratio));
  }
  return out + "]";
}

std::string to_json(const capacity::ReplayReport& r, double seconds, bool curves) {
  std::string s = fmt::format(
      "{{\"policy\":{},\"allocated_gpu_ratio\":{},\"unallocated_gpus_at_first_failure\":{},"
      "\"requested_at_first_failure\":{},\"allocated_ratio_after_arrivals\":{},\"failed_pods\":{},"
      "\"failed_gpu_pods\":{},\"pods\":{},\"gpu_pods\":{},\"gpus\":{},\"seconds\":{}",
      json_string(r.policy), json_number(r.allocated_gpu_ratio), json_optional(r.unallocated_gpus_at_first_failure),
      json_optional(r.requested_at_first_failure), json_number(r.allocated_ratio_after_arrivals), r.failed_pods,
      r.failed_gpu_pods, r.pods, r.gpu_pods, r.gpus, json_number(seconds));
  if (r.queued) {
    s += fmt::format(",\"mode\":\"queue\",\"started_pods\":{},\"never_started\":{},\"preemptions\":{},"
                     "\"queue_delay_mean_s\":{},\"queue_delay_p50_s\":{},\"queue_delay_p99_s\":{},\"jct_mean_s\":{},"
                     "\"jct_p99_s\":{}",
                     r.started_pods, r.never_started, r.preemptions, json_number(r.queue_delay_mean_s),
                     json_number(r.queue_delay_p50_s), json_number(r.queue_delay_p99_s), json_number(r.jct_mean_s),
                     json_number(r.jct_p99_s));
  } else {
    s += ",\"mode\":\"fail\"";
  }
  if (curves) {
    s += fmt::format(",\"over_time\":{},\"vs_requested\":{}", json_samples(r.over_time), json_samples(r.vs_requested));
  }
  return s + "}";
}

std::string fmt_optional(const std::optional<double>& v, std::string_view spec) {
  return v ? fmt::format(fmt::runtime(spec), *v) : std::string("-");
}

Status run_simulate(const CapacityOptions& o) {
  NC_ASSIGN_OR_RETURN(capacity::Cluster cluster, capacity::load_cluster_csv(o.nodes));
  NC_ASSIGN_OR_RETURN(auto pods, capacity::load_pods_csv(o.pods));
  std::vector<std::string_view> names;
  if (o.policy == "all") {
    names = capacity::policy_names();
  } else {
    names.push_back(o.policy);
  }
  if (o.speedup != 1.0) {
    // Arrivals come `speedup` times faster; each pod still runs as long as in the trace.
    int64_t first = INT64_MAX;
    for (const auto& p : pods) first = std::min(first, p.creation_time);
    for (auto& p : pods) {
      const int64_t duration = p.deletion_time == capacity::kNoDeletion ? -1 : p.deletion_time - p.creation_time;
      p.creation_time = first + static_cast<int64_t>(static_cast<double>(p.creation_time - first) / o.speedup);
      if (duration >= 0) p.deletion_time = p.creation_time + duration;
    }
  }
  const capacity::TargetWorkload target = capacity::TargetWorkload::from_pods(pods);
  capacity::ReplayOptions ro;
  ro.departures = !o.no_departures;
  const bool queue = o.mode == "queue";
  if (!o.json) {
    fmt::print("{} nodes, {} GPUs, {} pods ({}; {})\n", cluster.size(), cluster.total_gpus(), pods.size(),
               ro.departures ? "pods leave at deletion_time" : "pods never leave",
               queue ? "through the scheduler: pods wait" : "a pod that does not fit on arrival fails");
    if (queue) {
      fmt::print("{:<11} {:>10} {:>16} {:>8} {:>10} {:>12} {:>12} {:>10} {:>8}\n", "policy", "alloc_ratio",
                 "unalloc_GPUs@1st", "req@1st", "alloc@end", "wait_mean_s", "wait_p99_s", "preempted", "seconds");
    } else {
      fmt::print("{:<11} {:>10} {:>14} {:>11} {:>12} {:>12} {:>8}\n", "policy", "alloc_ratio", "unalloc_GPUs@1st",
                 "req@1st", "alloc@end", "failed(gpu)", "seconds");
    }
  }
  for (std::string_view name : names) {
    const auto t0 = std::chrono::steady_clock::now();
    capacity::ReplayReport r;
    if (queue) {
      capacity::ScheduledReplayOptions so;
      so.replay = ro;
      so.scheduler.placement = std::string(name);
      so.scheduler.target = target;
      so.scheduler.seed = o.seed;
      so.be_as_spot = !o.no_spot;
      NC_ASSIGN_OR_RETURN(r, capacity::replay_scheduled(cluster, pods, so));
    } else {
      NC_ASSIGN_OR_RETURN(auto policy, capacity::make_policy(name, target, o.seed));
      NC_ASSIGN_OR_RETURN(r, capacity::replay(cluster, pods, *policy, ro));
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (o.json) {
      fmt::print("{}\n", to_json(r, secs, o.curves));
    } else if (queue) {
      fmt::print("{:<11} {:>10.4f} {:>16} {:>8} {:>10.4f} {:>12.1f} {:>12.1f} {:>10} {:>8.2f}\n", r.policy,
                 r.allocated_gpu_ratio, fmt_optional(r.unallocated_gpus_at_first_failure, "{:.1f}"),
                 fmt_optional(r.requested_at_first_failure, "{:.3f}"), r.allocated_ratio_after_arrivals,
                 r.queue_delay_mean_s, r.queue_delay_p99_s, r.preemptions, secs);
    } else {
      fmt::print("{:<11} {:>10.4f} {:>16} {:>11} {:>12.4f} {:>12} {:>8.2f}\n", r.policy, r.allocated_gpu_ratio,
                 fmt_optional(r.unallocated_gpus_at_first_failure, "{:.1f}"),
                 fmt_optional(r.requested_at_first_failure, "{:.3f}"), r.allocated_ratio_after_arrivals,
                 fmt::format("{}({})", r.failed_pods, r.failed_gpu_pods), secs);
    }
    std::fflush(stdout);
  }
  return Status::ok();
}

}  // namespace

void add_capacity_command(CLI::App& app) {
  auto* cap = app.add_subcommand("capacity", "GPU capacity: placement policies and trace replay");
  cap->require_subcommand(1);
  auto o = std::make_shared<CapacityOptions>();
  auto* cmd = cap->add_subcommand("simulate", "Replay a pod list on a cluster through placement policies");
  cmd->add_option("--nodes", o->nodes, "node list CSV (sn,cpu_milli,memory_mib,gpu,model)")->required();
  cmd->add_option("--pods", o->pods, "pod list CSV (name,cpu_milli,memory_mib,num_gpu,gpu_milli[,gpu_spec,...])")
      ->required();
  cmd->add_option("--policy", o->policy, "random-fit|best-fit|fgd|all")
      ->check(CLI::IsMember({"random-fit", "best-fit", "fgd", "all"}))
      ->capture_default_str();
  cmd->add_option("--seed", o->seed, "random-fit's seed")->capture_default_str();
  cmd->add_option("--mode", o->mode, "queue: through the scheduler (pods wait); fail: a pod that does not fit fails")
      ->check(CLI::IsMember({"queue", "fail"}))
      ->capture_default_str();
  cmd->add_option("--arrival-speedup", o->speedup,
                  "arrivals this many times faster, durations unchanged (load the cluster with departures on)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_flag("--no-spot", o->no_spot, "--mode queue: BE pods are on-demand too (no preemption)");
  cmd->add_flag("--no-departures", o->no_departures,
                "pods never leave (the FGD paper's view: arrivals accumulate until the cluster is full)");
  cmd->add_flag("--json", o->json, "one JSON object per policy per line");
  cmd->add_flag("--curves", o->curves, "with --json: add over_time and vs_requested samples [x, allocated_ratio]");
  cmd->callback([o] { report(run_simulate(*o)); });
}

}  // namespace nc::app
