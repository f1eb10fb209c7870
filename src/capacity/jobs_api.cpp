// The jobs, reservations and capacity-admin APIs without HTTP (jobs_api.h).
#include "capacity/jobs_api.h"

#include <algorithm>

#include "core/json_parse.h"
#include "core/query_string.h"

#include <fmt/format.h>

#include <charconv>
#include <chrono>
#include <cmath>

namespace nc::capacity {
namespace {

using ojson = nlohmann::ordered_json;
using json = nlohmann::json;

JobsResponse error(int status, const std::string& message, const std::string& param = "") {
  return error_response(api_error(status, message, param, status == 404 ? "not_found" : ""));
}

// The one Status -> HTTP table (core/api_error.h).
JobsResponse from_status(const Status& s) { return error_response(s); }

double seconds(int64_t a_us, int64_t b_us) { return static_cast<double>(b_us - a_us) / 1e6; }

std::string query_param(std::string_view query, std::string_view name) { return QueryString(query).get_or(name, ""); }

// Reads the submit body; every field is type-checked (a wrong type is a 400 naming the field).
Result<JobSpec> parse_spec(const std::string& body) {
  json j = parse_json_or_discarded(body);
  if (j.is_discarded() || !j.is_object()) return invalid_argument("the body must be a JSON object");
  JobSpec s;
  auto str = [&](const char* k, std::string* out) -> Status {
    if (!j.contains(k) || j[k].is_null()) return Status::ok();
    if (!j[k].is_string()) return invalid_argument(fmt::format("'{}' must be a string", k));
    *out = j[k].get<std::string>();
    return Status::ok();
  };
  auto integer = [&](const char* k, int64_t lo, int64_t hi, int64_t* out) -> Status {
    if (!j.contains(k) || j[k].is_null()) return Status::ok();
    if (!j[k].is_number_integer()) return invalid_argument(fmt::format("'{}' must be an integer", k));
    const int64_t v = j[k].get<int64_t>();
    if (v < lo || v > hi) return invalid_argument(fmt::format("'{}' must be in [{}, {}]", k, lo, hi));
    *out = v;
    return Status::ok();
  };
  NC_RETURN_IF_ERROR(str("name", &s.name));
  NC_RETURN_IF_ERROR(str("command", &s.command));
  if (s.command.empty()) return invalid_argument("'command' is required");
  NC_RETURN_IF_ERROR(str("working_dir", &s.working_dir));
  if (j.contains("args") && !j["args"].is_null()) {
    if (!j["args"].is_array()) return invalid_argument("'args' must be an array of strings");
    for (const auto& a : j["args"]) {
      if (!a.is_string()) return invalid_argument("'args' must be an array of strings");
      s.args.push_back(a.get<std::string>());
    }
  }
  if (j.contains("env") && !j["env"].is_null()) {
    if (!j["env"].is_object()) return invalid_argument("'env' must be an object of strings");
    for (const auto& [k, v] : j["env"].items()) {
      if (!v.is_string()) return invalid_argument(fmt::format("'env.{}' must be a string", k));
      s.env.emplace_back(k, v.get<std::string>());
    }
  }
  int64_t v = 0;
  NC_RETURN_IF_ERROR(integer("gpus", 0, 4096, &v));
  s.shape.gpus = static_cast<int>(v);
  v = 0;
  NC_RETURN_IF_ERROR(integer("nodes", 0, 1024, &v));
  s.shape.nodes = static_cast<int>(v);
  if (j.contains("gpu_fraction") && !j["gpu_fraction"].is_null()) {
    if (!j["gpu_fraction"].is_number()) return invalid_argument("'gpu_fraction' must be a number in (0, 1]");
    const double f = j["gpu_fraction"].get<double>();
    if (!(f > 0 && f <= 1)) return invalid_argument("'gpu_fraction' must be in (0, 1]");
    s.shape.gpu_milli = static_cast<int32_t>(std::lround(f * kMilliPerGpu));
    if (s.shape.gpu_milli < 1) s.shape.gpu_milli = 1;
    if (s.shape.gpus == 0) s.shape.gpus = 1;
  }
  if (j.contains("gpu_type") && !j["gpu_type"].is_null()) {
    if (j["gpu_type"].is_string()) {
      s.shape.gpu_types.push_back(j["gpu_type"].get<std::string>());
    } else if (j["gpu_type"].is_array()) {
      for (const auto& t : j["gpu_type"]) {
        if (!t.is_string()) return invalid_argument("'gpu_type' must be a string or an array of strings");
        s.shape.gpu_types.push_back(t.get<std::string>());
      }
    } else {
      return invalid_argument("'gpu_type' must be a string or an array of strings");
    }
  }
  NC_RETURN_IF_ERROR(integer("min_gpu_memory_mib", 0, int64_t{1} << 40, &s.shape.min_gpu_memory_mib));
  if (j.contains("cpu") && !j["cpu"].is_null()) {
    if (!j["cpu"].is_number() || j["cpu"].get<double>() < 0 || j["cpu"].get<double>() > 1e6) {
      return invalid_argument("'cpu' must be a number of cores >= 0");
    }
    s.shape.cpu_milli = static_cast<int64_t>(std::llround(j["cpu"].get<double>() * 1000));
  }
  NC_RETURN_IF_ERROR(integer("memory_mib", 0, int64_t{1} << 40, &s.shape.memory_mib));
  v = 1;
  NC_RETURN_IF_ERROR(integer("tasks_per_node", 1, 64, &v));
  s.tasks_per_node = static_cast<int>(v);
  NC_RETURN_IF_ERROR(integer("max_duration_seconds", 0, int64_t{1} << 40, &s.max_duration_s));
  std::string prio;
  NC_RETURN_IF_ERROR(str("priority", &prio));
  if (!prio.empty()) {
    NC_ASSIGN_OR_RETURN(s.priority, parse_priority(prio));
  }
  NC_RETURN_IF_ERROR(str("reservation", &s.reservation));
  NC_RETURN_IF_ERROR(str("image", &s.image));
  if (j.contains("requeue") && !j["requeue"].is_null()) {
    if (!j["requeue"].is_boolean()) return invalid_argument("'requeue' must be a boolean");
    s.requeue = j["requeue"].get<bool>();
  }
  return s;
}

}  // namespace

bool is_jobs_path(std::string_view path) {
  return path == "/v1/jobs" || path.rfind("/v1/jobs/", 0) == 0 || path == "/v1/reservations" ||
         path.rfind("/v1/reservations/", 0) == 0;
}

namespace {
bool is_gpu_quota_path(std::string_view path) {
  constexpr std::string_view prefix = "/v1/admin/organizations/", suffix = "/gpu_quota";
  return path.size() > prefix.size() + suffix.size() && path.rfind(prefix, 0) == 0 &&
         path.substr(path.size() - suffix.size()) == suffix &&
         path.substr(prefix.size(), path.size() - prefix.size() - suffix.size()).find('/') == std::string_view::npos;
}

ojson quotas_json(JobController& jobs, const std::string& org) {
  ojson data = ojson::array();
  for (const auto& q : jobs.quotas(org)) {
    data.push_back({{"gpu_type", q.gpu_type},
                    {"gpus", q.limit_milli ? ojson(static_cast<double>(*q.limit_milli) / 1000.0) : ojson()},
                    {"gpus_in_use", static_cast<double>(q.used_milli) / 1000.0}});
  }
  return {{"object", "list"}, {"data", data}};
}

JobsResponse handle_gpu_quota(JobController& jobs, std::string_view method, std::string_view path, const std::string& body) {
  constexpr size_t prefix = std::string_view("/v1/admin/organizations/").size();
  const std::string org(path.substr(prefix, path.size() - prefix - std::string_view("/gpu_quota").size()));
  if (method == "GET") return {200, quotas_json(jobs, org)};
  if (method != "PUT") return error(405, fmt::format("{} is not allowed here", method));
  json j = parse_json_or_discarded(body);
  if (j.is_discarded() || !j.is_object()) return error(400, "the body must be a JSON object");
  std::string type;
  if (j.contains("gpu_type") && !j["gpu_type"].is_null()) {
    if (!j["gpu_type"].is_string()) return error(400, "'gpu_type' must be a string", "gpu_type");
    type = j["gpu_type"].get<std::string>();
  }
  if (!j.contains("gpus")) return error(400, "'gpus' is required (a number, or null for no limit)", "gpus");
  std::optional<int64_t> milli;
  if (!j["gpus"].is_null()) {
    if (!j["gpus"].is_number() || j["gpus"].get<double>() < 0 || j["gpus"].get<double>() > 1e7) {
      return error(400, "'gpus' must be a number >= 0 or null", "gpus");
    }
    milli = static_cast<int64_t>(std::llround(j["gpus"].get<double>() * 1000));
  }
  Status s = jobs.set_quota(org, type, milli);
  if (s.code() == StatusCode::kFailedPrecondition) return error(404, fmt::format("no organization '{}'", org));
  if (!s.is_ok()) return from_status(s);
  return {200, quotas_json(jobs, org)};
}

JobsResponse handle_nodes(JobController& jobs, std::string_view method, std::string_view path) {
  if (path == "/v1/admin/nodes" && method == "GET") {
    ojson data = ojson::array();
    for (const auto& n : jobs.nodes()) {
      data.push_back({{"id", n.id},
                      {"gpu_type", n.gpu_type},
                      {"gpus", n.gpus},
                      {"gpus_free", static_cast<double>(n.gpu_free_milli) / 1000.0},
                      {"status", n.down ? "down" : "up"},
                      {"last_heartbeat_us", n.last_heartbeat_us}});
    }
    return {200, {{"object", "list"}, {"data", data}}};
  }
  constexpr std::string_view prefix = "/v1/admin/nodes/", suffix = "/heartbeat";
  if (method == "POST" && path.size() > prefix.size() + suffix.size() && path.substr(path.size() - suffix.size()) == suffix) {
    const std::string node(path.substr(prefix.size(), path.size() - prefix.size() - suffix.size()));
    Status s = jobs.heartbeat(node);
    if (!s.is_ok()) return from_status(s);
    return {200, {{"id", node}, {"status", "up"}}};
  }
  return error(404, fmt::format("no route {} {}", method, path));
}

}  // namespace

bool is_capacity_admin_path(std::string_view path) {
  return is_gpu_quota_path(path) || path == "/v1/admin/nodes" || path.rfind("/v1/admin/nodes/", 0) == 0;
}

JobsResponse handle_capacity_admin(JobController& jobs, std::string_view method, std::string_view path,
                                   const std::string& body) {
  if (is_gpu_quota_path(path)) return handle_gpu_quota(jobs, method, path, body);
  return handle_nodes(jobs, method, path);
}

ojson job_json(const Job& j) {
  ojson o;
  o["id"] = j.id;
  o["object"] = "job";
  o["name"] = j.spec.name;
  o["project_id"] = j.project;
  o["status"] = std::string(job_state_name(j.state));
  o["pending_reason"] = j.pending_reason.empty() ? ojson() : ojson(j.pending_reason);
  o["priority"] = std::string(priority_name(j.spec.priority));
  o["command"] = j.spec.command;
  o["args"] = j.spec.args;
  o["gpus"] = j.spec.shape.gpus;
  o["gpu_fraction"] = j.spec.shape.fractional() ? ojson(j.spec.shape.gpu_milli / 1000.0) : ojson();
  o["nodes"] = j.spec.shape.nodes;
  o["gpu_type"] = j.spec.shape.gpu_types;
  o["tasks_per_node"] = j.spec.tasks_per_node;
  o["max_duration_seconds"] = j.spec.max_duration_s;
  o["requeue"] = j.spec.requeue;
  o["reservation"] = j.spec.reservation.empty() ? ojson() : ojson(j.spec.reservation);
  o["image"] = j.spec.image.empty() ? ojson() : ojson(j.spec.image);
  o["exit_code"] = is_terminal(j.state) ? ojson(j.exit_code) : ojson();
  o["created_at"] = j.created_us / 1000000;
  o["finished_at"] = j.finished_us ? ojson(j.finished_us / 1000000) : ojson();
  ojson segs = ojson::array();
  double gpu_seconds = 0;
  for (const auto& s : j.segments) {
    ojson nodes = ojson::array();
    for (const auto& n : s.nodes) nodes.push_back({{"node", n.node}, {"gpus", n.gpus}});
    const bool ended = s.ended_us != 0;
    const double secs = ended ? seconds(s.started_us, s.ended_us) : 0.0;
    if (ended) gpu_seconds += secs * static_cast<double>(s.gpu_milli) / 1000.0;
    segs.push_back({{"index", s.index},
                    {"gpu_type", s.gpu_type},
                    {"gpus", static_cast<double>(s.gpu_milli) / 1000.0},
                    {"nodes", nodes},
                    {"started_at_us", s.started_us ? ojson(s.started_us) : ojson()},
                    {"ended_at_us", ended ? ojson(s.ended_us) : ojson()},
                    {"seconds", ended ? ojson(secs) : ojson()},
                    {"end", s.end.empty() ? ojson() : ojson(s.end)}});
  }
  o["segments"] = segs;
  o["gpu_seconds"] = gpu_seconds;
  ojson events = ojson::array();
  for (const auto& e : j.events) {
    events.push_back({{"time_us", e.time_us}, {"type", e.type}, {"detail", e.detail.empty() ? ojson() : ojson(e.detail)}});
  }
  o["events"] = events;
  return o;
}

ojson reservation_json(const ReservationRecord& r) {
  ojson nodes = ojson::array();
  for (const auto& n : r.nodes) nodes.push_back({{"node", n.node}, {"gpus", n.gpus}});
  ojson o;
  o["id"] = r.id;
  o["object"] = "reservation";
  o["name"] = r.name;
  o["project_id"] = r.project.empty() ? ojson() : ojson(r.project);
  o["status"] = std::string(reservation_state_name(r.state));
  o["gpu_type"] = r.gpu_type;
  o["gpus"] = r.gpus;
  o["start_time"] = r.start_us / 1000000;
  o["end_time"] = r.end_us / 1000000;
  o["created_at"] = r.created_us / 1000000;
  o["nodes"] = nodes;
  o["activated_at_us"] = r.activated_us > 0 ? ojson(r.activated_us) : ojson();
  o["released_at_us"] = r.released_us > 0 ? ojson(r.released_us) : ojson();
  o["waiting"] = r.waiting.empty() ? ojson() : ojson(r.waiting);
  return o;
}

namespace {

JobsResponse handle_reservations(JobController& jobs, const std::string& org, const std::string& project,
                                 std::string_view method, std::string_view path, const std::string& body) {
  // As for jobs: a project's key sees and cancels its project's reservations only.
  auto mine = [&](const ReservationRecord& r) { return project.empty() || r.project.empty() || r.project == project; };
  if (path == "/v1/reservations") {
    if (method == "GET") {
      ojson data = ojson::array();
      for (const auto& r : jobs.reservations(org)) {
        if (mine(r)) data.push_back(reservation_json(r));
      }
      return {200, {{"object", "list"}, {"data", data}}};
    }
    if (method != "POST") return error(405, fmt::format("{} is not allowed on /v1/reservations", method));
    json j = parse_json_or_discarded(body);
    if (j.is_discarded() || !j.is_object()) return error(400, "the body must be a JSON object");
    ReservationRecord spec;
    auto int_field = [&](const char* k, int64_t lo, int64_t hi, int64_t* out) -> std::optional<JobsResponse> {
      if (!j.contains(k) || j[k].is_null()) return std::nullopt;
      if (!j[k].is_number_integer() || j[k].get<int64_t>() < lo || j[k].get<int64_t>() > hi) {
        return error(400, fmt::format("'{}' must be an integer in [{}, {}]", k, lo, hi), k);
      }
      *out = j[k].get<int64_t>();
      return std::nullopt;
    };
    if (!j.contains("gpu_type") || !j["gpu_type"].is_string()) return error(400, "'gpu_type' (a string) is required", "gpu_type");
    spec.gpu_type = j["gpu_type"].get<std::string>();
    spec.project = project;
    if (j.contains("name") && !j["name"].is_null()) {
      if (!j["name"].is_string()) return error(400, "'name' must be a string", "name");
      spec.name = j["name"].get<std::string>();
    }
    int64_t gpus = 0, start = 0, end = 0, duration = 0;
    if (auto e = int_field("gpus", 1, 100000, &gpus)) return *e;
    if (auto e = int_field("start_time", 0, int64_t{1} << 40, &start)) return *e;
    if (auto e = int_field("end_time", 0, int64_t{1} << 40, &end)) return *e;
    if (auto e = int_field("duration_seconds", 1, int64_t{1} << 32, &duration)) return *e;
    if (gpus == 0) return error(400, "'gpus' is required", "gpus");
    if ((end == 0) == (duration == 0)) return error(400, "give exactly one of 'end_time' and 'duration_seconds'", "end_time");
    spec.gpus = static_cast<int>(gpus);
    spec.start_us = start * 1000000;
    if (end > 0) {
      spec.end_us = end * 1000000;
    } else {
      const int64_t from = start > 0 ? start * 1000000 : std::chrono::duration_cast<std::chrono::microseconds>(
                                                             std::chrono::system_clock::now().time_since_epoch()).count();
      spec.start_us = from;
      spec.end_us = from + duration * 1000000;
    }
    auto r = jobs.reserve(org, spec);
    if (!r.is_ok()) return from_status(r.status());
    return {200, reservation_json(*r)};
  }
  std::string_view rest = path.substr(std::string_view("/v1/reservations/").size());
  const size_t slash = rest.find('/');
  const std::string id(rest.substr(0, slash));
  const std::string_view action = slash == std::string_view::npos ? "" : rest.substr(slash + 1);
  auto visible = [&]() -> Result<ReservationRecord> {
    auto r = jobs.reservation(org, id);
    if (r.is_ok() && !mine(*r)) return not_found(fmt::format("no reservation '{}'", id));
    return r;
  };
  if (action.empty() && method == "GET") {
    auto r = visible();
    if (!r.is_ok()) return from_status(r.status());
    return {200, reservation_json(*r)};
  }
  if ((action == "cancel" && method == "POST") || (action.empty() && method == "DELETE")) {
    if (auto v = visible(); !v.is_ok()) return from_status(v.status());
    auto r = jobs.cancel_reservation(org, id);
    if (!r.is_ok()) return from_status(r.status());
    return {200, reservation_json(*r)};
  }
  return error(404, fmt::format("no route {} {}", method, path));
}

}  // namespace

JobsResponse handle_jobs(JobController& jobs, const std::string& org, const std::string& project,
                         std::string_view method, std::string_view path, std::string_view query,
                         const std::string& body, const std::string& api_key_id) {
  if (path == "/v1/reservations" || path.rfind("/v1/reservations/", 0) == 0) {
    return handle_reservations(jobs, org, project, method, path, body);
  }
  if (path == "/v1/jobs") {
    if (method == "POST") {
      auto spec = parse_spec(body);
      if (!spec.is_ok()) return error(400, spec.status().message());
      auto job = jobs.submit(org, project, std::move(*spec), api_key_id);
      if (!job.is_ok()) return from_status(job.status());
      return {200, job_json(*job)};
    }
    if (method == "GET") {
      std::optional<JobState> state;
      const std::string s = query_param(query, "state");
      if (!s.empty()) {
        for (JobState st : {JobState::kQueued, JobState::kRunning, JobState::kSucceeded, JobState::kFailed,
                            JobState::kCancelled, JobState::kPreempted, JobState::kTimedOut, JobState::kNodeFailed}) {
          if (job_state_name(st) == s) state = st;
        }
        if (!state) return error(400, fmt::format("unknown state '{}'", s), "state");
      }
      // Newest first, a page at a time (OpenAI's list shape): `limit` 1..100 (default 20), `after` the
      // last id of the previous page.
      int64_t limit = 20;
      if (const std::string l = query_param(query, "limit"); !l.empty()) {
        auto [p, ec] = std::from_chars(l.data(), l.data() + l.size(), limit);
        if (ec != std::errc() || p != l.data() + l.size() || limit < 1 || limit > 100)
          return error(400, "'limit' must be an integer from 1 to 100", "limit");
      }
      const std::string after = query_param(query, "after");
      std::vector<Job> all;
      for (Job& j : jobs.list(org, state)) {
        if (project.empty() || j.project == project) all.push_back(std::move(j));
      }
      size_t from = 0;
      if (!after.empty()) {
        auto it = std::find_if(all.begin(), all.end(), [&](const Job& j) { return j.id == after; });
        if (it == all.end()) return error(400, fmt::format("'after': no job '{}' in this list", after), "after");
        from = static_cast<size_t>(it - all.begin()) + 1;
      }
      ojson data = ojson::array();
      for (size_t i = from; i < all.size() && data.size() < static_cast<size_t>(limit); ++i) data.push_back(job_json(all[i]));
      const bool more = from + data.size() < all.size();
      ojson out = {{"object", "list"}, {"data", data}, {"has_more", more}};
      out["first_id"] = data.empty() ? ojson() : data.front()["id"];
      out["last_id"] = data.empty() ? ojson() : data.back()["id"];
      return {200, std::move(out)};
    }
    return error(405, fmt::format("{} is not allowed on /v1/jobs", method));
  }
  if (path == "/v1/jobs/quotas" && method == "GET") return {200, quotas_json(jobs, org)};
  std::string_view rest = path.substr(std::string_view("/v1/jobs/").size());
  const size_t slash = rest.find('/');
  const std::string id(rest.substr(0, slash));
  const std::string_view action = slash == std::string_view::npos ? "" : rest.substr(slash + 1);
  if (id.empty()) return error(404, "no job id in the path");
  // A project's key sees its project's jobs only; another project's job is "not found", exactly like
  // another organization's.
  auto visible = [&]() -> Result<Job> {
    auto j = jobs.get(org, id);
    if (j.is_ok() && !project.empty() && j->project != project) return not_found(fmt::format("no job '{}'", id));
    return j;
  };
  if (action.empty() && method == "GET") {
    auto j = visible();
    if (!j.is_ok()) return from_status(j.status());
    return {200, job_json(*j)};
  }
  if (action == "cancel" && method == "POST") {
    if (auto v = visible(); !v.is_ok()) return from_status(v.status());
    auto j = jobs.cancel(org, id);
    if (!j.is_ok()) return from_status(j.status());
    return {200, job_json(*j)};
  }
  if (action == "release" && method == "POST") {
    if (auto v = visible(); !v.is_ok()) return from_status(v.status());
    auto j = jobs.release(org, id);
    if (!j.is_ok()) return from_status(j.status());
    return {200, job_json(*j)};
  }
  if (action == "logs" && method == "GET") {
    int64_t offset = 0;
    const std::string o = query_param(query, "offset");
    if (!o.empty()) {
      auto [p, ec] = std::from_chars(o.data(), o.data() + o.size(), offset);
      if (ec != std::errc() || p != o.data() + o.size() || offset < 0) return error(400, "'offset' must be an integer >= 0", "offset");
    }
    auto j = visible();
    if (!j.is_ok()) return from_status(j.status());
    auto l = jobs.logs(org, id, offset);
    if (!l.is_ok()) return from_status(l.status());
    ojson r;
    r["object"] = "job.logs";
    r["data"] = l->first;
    r["next_offset"] = l->second;
    r["done"] = is_terminal(j->state);
    JobsResponse out{200, std::move(r)};
    return out;
  }
  return error(404, fmt::format("no route {} {}", method, path));
}

}  // namespace nc::capacity
