// `neocloud jobs ...`: GPU jobs (src/capacity/jobs_api.h) from the command line, over HTTP.
//   --url (or $NEOCLOUD_URL, default http://127.0.0.1:8080) and --key (or $NEOCLOUD_API_KEY; none when the
//   server runs without --db).
//   neocloud jobs submit --gpus 2 [--gpu-type H100] [--nodes N] [--priority spot] [--max-duration 3600]
//                        [--env K=V]... [--workdir D] [--name N] [--gpu-fraction 0.25] -- CMD ARGS...
//   neocloud jobs list [--state running] | get ID | logs ID [-f] | cancel ID | wait ID
// submit prints the job id; list prints a table; get prints the job's JSON; logs -f follows the output
// until the job ends; wait blocks until it ends and exits 0 only if it succeeded.
#include <fmt/format.h>

#include <boost/beast/http/verb.hpp>
#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "apps/neocloud/commands.h"
#include "apps/neocloud/http_client.h"

namespace nc::app {
namespace {

namespace http = boost::beast::http;
using nlohmann::ordered_json;

struct JobsCli {
  std::string url, key;
};

// The JSON answer of a call, or nullopt after printing the error (exit code 1).
std::optional<ordered_json> call_json(const JobsCli& o, http::verb method, const std::string& target,
                                      const std::string& body = "") {
  auto r = http_call(o.url, o.key, method, target, body);
  if (!r.is_ok()) {
    report(r.status());
    return std::nullopt;
  }
  auto j = ordered_json::parse(r->second, nullptr, false);
  if (r->first >= 400 || j.is_discarded()) {
    const std::string msg = !j.is_discarded() && j.contains("error") ? j["error"].value("message", r->second) : r->second;
    fmt::print(stderr, "error: HTTP {}: {}\n", r->first, msg);
    exit_code() = 1;
    return std::nullopt;
  }
  return j;
}

struct SubmitFlags {
  int gpus = 0, nodes = 0, tasks_per_node = 1;
  double gpu_fraction = 0, cpu = 0;
  int64_t memory_mib = 0, max_duration = 0, min_gpu_memory = 0;
  std::vector<std::string> gpu_types, env, command;
  std::string priority = "on-demand", workdir, name, reservation, image;
  bool no_requeue = false;
};

void submit(const JobsCli& o, const SubmitFlags& f) {
  ordered_json b;
  if (!f.name.empty()) b["name"] = f.name;
  b["command"] = f.command[0];
  b["args"] = std::vector<std::string>(f.command.begin() + 1, f.command.end());
  ordered_json env = ordered_json::object();
  for (const auto& kv : f.env) {
    const size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) return report(invalid_argument(fmt::format("--env '{}' is not K=V", kv)));
    env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  b["env"] = env;
  if (!f.workdir.empty()) b["working_dir"] = f.workdir;
  b["gpus"] = f.gpus;
  if (f.gpu_fraction > 0) b["gpu_fraction"] = f.gpu_fraction;
  b["nodes"] = f.nodes;
  if (!f.gpu_types.empty()) b["gpu_type"] = f.gpu_types;
  if (f.min_gpu_memory > 0) b["min_gpu_memory_mib"] = f.min_gpu_memory;
  if (f.cpu > 0) b["cpu"] = f.cpu;
  if (f.memory_mib > 0) b["memory_mib"] = f.memory_mib;
  b["tasks_per_node"] = f.tasks_per_node;
  b["priority"] = f.priority;
  if (f.max_duration > 0) b["max_duration_seconds"] = f.max_duration;
  if (f.no_requeue) b["requeue"] = false;
  if (!f.reservation.empty()) b["reservation"] = f.reservation;
  if (!f.image.empty()) b["image"] = f.image;
  auto j = call_json(o, http::verb::post, "/v1/jobs", b.dump());
  if (j) fmt::print("{}\n", (*j)["id"].get<std::string>());
}

void list(const JobsCli& o, const std::string& state) {
  // Every page (100 jobs each), newest first.
  nlohmann::ordered_json all = nlohmann::ordered_json::array();
  std::string after;
  for (;;) {
    std::string path = "/v1/jobs?limit=100" + (state.empty() ? "" : "&state=" + state) + (after.empty() ? "" : "&after=" + after);
    auto j = call_json(o, http::verb::get, path);
    if (!j) return;
    for (auto& x : (*j)["data"]) all.push_back(x);
    if (!(*j).value("has_more", false) || (*j)["data"].empty()) break;
    after = (*j)["last_id"].get<std::string>();
  }
  fmt::print("{:<22} {:<11} {:<9} {:>5} {:<8} {:>10}  {}\n", "ID", "STATUS", "PRIORITY", "GPUS", "TYPE", "GPU-SEC", "NAME/COMMAND");
  for (const auto& x : all) {
    std::string type;
    if (!x["segments"].empty()) type = x["segments"].back()["gpu_type"].get<std::string>();
    std::string status = x["status"].get<std::string>();
    if (!x["pending_reason"].is_null()) status += "(" + x["pending_reason"].get<std::string>() + ")";
    const std::string gpus = x["gpu_fraction"].is_null() ? std::to_string(x["gpus"].get<int>())
                                                         : fmt::format("{:.2f}", x["gpu_fraction"].get<double>());
    const std::string what = x["name"].get<std::string>().empty() ? x["command"].get<std::string>() : x["name"].get<std::string>();
    fmt::print("{:<22} {:<11} {:<9} {:>5} {:<8} {:>10.1f}  {}\n", x["id"].get<std::string>(), status,
               x["priority"].get<std::string>(), gpus, type, x["gpu_seconds"].get<double>(), what);
  }
}

// Prints the log from offset 0; with follow, polls until the job has ended and the log is drained.
void logs(const JobsCli& o, const std::string& id, bool follow) {
  int64_t offset = 0;
  for (;;) {
    auto j = call_json(o, http::verb::get, fmt::format("/v1/jobs/{}/logs?offset={}", id, offset));
    if (!j) return;
    const std::string data = (*j)["data"].get<std::string>();
    fmt::print("{}", data);
    std::fflush(stdout);
    offset = (*j)["next_offset"].get<int64_t>();
    if (!follow || ((*j)["done"].get<bool>() && data.empty())) return;
    if (data.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
}

void wait(const JobsCli& o, const std::string& id) {
  for (;;) {
    auto j = call_json(o, http::verb::get, "/v1/jobs/" + id);
    if (!j) return;
    const std::string s = (*j)["status"].get<std::string>();
    if (s != "queued" && s != "running") {
      fmt::print("{}\n", s);
      if (s != "succeeded") exit_code() = 1;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
}

// --url / --key (or $NEOCLOUD_URL / $NEOCLOUD_API_KEY) on a command that needs one subcommand.
std::shared_ptr<JobsCli> api_options(CLI::App* cmd) {
  auto o = std::make_shared<JobsCli>();
  cmd->require_subcommand(1);
  o->url = env_or("NEOCLOUD_URL", "http://127.0.0.1:8080");
  o->key = env_or("NEOCLOUD_API_KEY", "");
  cmd->add_option("--url", o->url, "server base URL (or $NEOCLOUD_URL)")->capture_default_str();
  cmd->add_option("--key", o->key, "API key (or $NEOCLOUD_API_KEY)");
  return o;
}

struct ReserveFlags {
  std::string gpu_type, name;
  int gpus = 0;
  int64_t start = 0, end = 0, duration = 0;
};

void reservations_list(const JobsCli& o) {
  auto j = call_json(o, http::verb::get, "/v1/reservations");
  if (!j) return;
  fmt::print("{:<22} {:<10} {:<8} {:>5} {:>12} {:>12}  {}\n", "ID", "STATUS", "TYPE", "GPUS", "START", "END", "NAME");
  for (const auto& x : (*j)["data"]) {
    fmt::print("{:<22} {:<10} {:<8} {:>5} {:>12} {:>12}  {}\n", x["id"].get<std::string>(), x["status"].get<std::string>(),
               x["gpu_type"].get<std::string>(), x["gpus"].get<int>(), x["start_time"].get<int64_t>(),
               x["end_time"].get<int64_t>(), x["name"].get<std::string>());
  }
}

}  // namespace

// `neocloud reservations create|list|get|cancel` (the same --url/--key as jobs).
void add_reservations_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("reservations", "GPU reservations: create, list, get, cancel");
  auto o = api_options(cmd);
  auto f = std::make_shared<ReserveFlags>();
  auto* cr = cmd->add_subcommand("create", "hold GPUs for [start, end): neocloud reservations create --gpu-type H100 --gpus 8 --duration 3600");
  cr->add_option("--gpu-type", f->gpu_type, "GPU type")->required();
  cr->add_option("--gpus", f->gpus, "GPUs")->required();
  cr->add_option("--start", f->start, "start, unix seconds (default: now)");
  cr->add_option("--end", f->end, "end, unix seconds");
  cr->add_option("--duration", f->duration, "seconds (instead of --end)");
  cr->add_option("--name", f->name, "a name");
  cr->callback([o, f] {
    ordered_json b = {{"gpu_type", f->gpu_type}, {"gpus", f->gpus}};
    if (f->start > 0) b["start_time"] = f->start;
    if (f->end > 0) b["end_time"] = f->end;
    if (f->duration > 0) b["duration_seconds"] = f->duration;
    if (!f->name.empty()) b["name"] = f->name;
    if (auto j = call_json(*o, http::verb::post, "/v1/reservations", b.dump())) fmt::print("{}\n", (*j)["id"].get<std::string>());
  });
  cmd->add_subcommand("list", "this organization's reservations")->callback([o] { reservations_list(*o); });
  auto id = std::make_shared<std::string>();
  auto* get = cmd->add_subcommand("get", "a reservation (JSON)");
  get->add_option("id", *id)->required();
  get->callback([o, id] {
    if (auto j = call_json(*o, http::verb::get, "/v1/reservations/" + *id)) fmt::print("{}\n", j->dump(2));
  });
  auto* cancel = cmd->add_subcommand("cancel", "cancel a reservation (its jobs are stopped)");
  cancel->add_option("id", *id)->required();
  cancel->callback([o, id] {
    if (auto j = call_json(*o, http::verb::post, "/v1/reservations/" + *id + "/cancel", "{}")) {
      fmt::print("{} {}\n", (*j)["id"].get<std::string>(), (*j)["status"].get<std::string>());
    }
  });
}

void add_jobs_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("jobs", "GPU jobs: submit, list, get, logs, cancel, wait");
  auto o = api_options(cmd);

  auto f = std::make_shared<SubmitFlags>();
  auto* sub = cmd->add_subcommand("submit", "submit a job: neocloud jobs submit --gpus 2 -- python train.py");
  sub->add_option("--gpus", f->gpus, "GPUs (whole)");
  sub->add_option("--gpu-fraction", f->gpu_fraction, "a share of one GPU (0..1]");
  sub->add_option("--nodes", f->nodes, "exact node count (0: the fewest that fit)");
  sub->add_option("--gpu-type", f->gpu_types, "allowed GPU type (repeat for several)");
  sub->add_option("--min-gpu-memory-mib", f->min_gpu_memory, "minimum memory per GPU");
  sub->add_option("--cpu", f->cpu, "CPU cores per node");
  sub->add_option("--memory-mib", f->memory_mib, "memory per node");
  sub->add_option("--tasks-per-node", f->tasks_per_node, "processes per node (RANK/LOCAL_RANK/WORLD_SIZE set)");
  sub->add_option("--priority", f->priority, "on-demand | reserved | spot")->capture_default_str();
  sub->add_option("--max-duration", f->max_duration, "seconds; the job is stopped after it");
  sub->add_option("--env", f->env, "K=V (repeat)");
  sub->add_option("--workdir", f->workdir, "working directory (default: the job's own directory)");
  sub->add_option("--name", f->name, "a name for the job");
  sub->add_option("--reservation", f->reservation, "run inside this reservation (res_...)");
  sub->add_option("--image", f->image, "a container image (one the cloud has) as the job's file system");
  sub->add_flag("--no-requeue", f->no_requeue, "a preempted spot job ends as preempted instead of requeueing");
  sub->add_option("command", f->command, "the command and its arguments (after --)")->required();
  sub->callback([o, f] { submit(*o, *f); });

  auto state = std::make_shared<std::string>();
  auto* ls = cmd->add_subcommand("list", "list this organization's jobs (newest first)");
  ls->add_option("--state", *state, "queued | running | succeeded | failed | cancelled | preempted | timed_out");
  ls->callback([o, state] { list(*o, *state); });

  auto id = std::make_shared<std::string>();
  auto* get = cmd->add_subcommand("get", "a job with its events and segments (JSON)");
  get->add_option("id", *id)->required();
  get->callback([o, id] {
    if (auto j = call_json(*o, http::verb::get, "/v1/jobs/" + *id)) fmt::print("{}\n", j->dump(2));
  });
  auto follow = std::make_shared<bool>(false);
  auto* lg = cmd->add_subcommand("logs", "the job's output");
  lg->add_option("id", *id)->required();
  lg->add_flag("-f,--follow", *follow, "keep printing until the job ends");
  lg->callback([o, id, follow] { logs(*o, *id, *follow); });
  auto* cancel = cmd->add_subcommand("cancel", "cancel a job (running: SIGTERM, grace period, SIGKILL)");
  cancel->add_option("id", *id)->required();
  cancel->callback([o, id] {
    if (auto j = call_json(*o, http::verb::post, "/v1/jobs/" + *id + "/cancel", "{}")) {
      fmt::print("{} {}\n", (*j)["id"].get<std::string>(), (*j)["status"].get<std::string>());
    }
  });
  auto* rel = cmd->add_subcommand("release", "queue again a job held because the server stopped while it ran");
  rel->add_option("id", *id)->required();
  rel->callback([o, id] {
    if (auto j = call_json(*o, http::verb::post, "/v1/jobs/" + *id + "/release", "{}")) {
      fmt::print("{} {}\n", (*j)["id"].get<std::string>(), (*j)["status"].get<std::string>());
    }
  });
  auto* wt = cmd->add_subcommand("wait", "wait until the job ends; exit 0 only if it succeeded");
  wt->add_option("id", *id)->required();
  wt->callback([o, id] { wait(*o, *id); });
}

}  // namespace nc::app
