// JobStore (job_store.h): jobs, reservations and quotas in the database.
#include "capacity/job_store.h"

#include <fmt/format.h>

#include <chrono>

#include "core/timer.h"

namespace nc::capacity {
namespace {

using json = nlohmann::json;

// Typed reads of a document field; a missing or mistyped field is an error naming it.
struct Reader {
  const json& j;
  Status error;
  template <typename T>
  T get(const char* key, T fallback = T()) {
    if (!error.is_ok()) return fallback;
    auto it = j.find(key);
    if (it == j.end()) {
      error = invalid_argument(fmt::format("stored job document: '{}' is missing", key));
      return fallback;
    }
    try {
      return it->get<T>();
    } catch (const std::exception&) {
      error = invalid_argument(fmt::format("stored job document: '{}' has the wrong type", key));
      return fallback;
    }
  }
};

}  // namespace

json job_to_doc(const Job& j) {
  json spec = {{"name", j.spec.name},
               {"command", j.spec.command},
               {"args", j.spec.args},
               {"env", json::array()},
               {"working_dir", j.spec.working_dir},
               {"gpus", j.spec.shape.gpus},
               {"gpu_milli", j.spec.shape.gpu_milli},
               {"nodes", j.spec.shape.nodes},
               {"gpu_types", j.spec.shape.gpu_types},
               {"min_gpu_memory_mib", j.spec.shape.min_gpu_memory_mib},
               {"cpu_milli", j.spec.shape.cpu_milli},
               {"memory_mib", j.spec.shape.memory_mib},
               {"tasks_per_node", j.spec.tasks_per_node},
               {"priority", std::string(priority_name(j.spec.priority))},
               {"max_duration_s", j.spec.max_duration_s},
               {"requeue", j.spec.requeue},
               {"reservation", j.spec.reservation},
               {"image", j.spec.image}};
  for (const auto& [k, v] : j.spec.env) spec["env"].push_back({k, v});
  if (!j.spec.inputs.empty()) {
    spec["inputs"] = json::array();
    for (const auto& [name, path] : j.spec.inputs) spec["inputs"].push_back({name, path});
  }
  json events = json::array();
  for (const auto& e : j.events) events.push_back({{"t", e.time_us}, {"type", e.type}, {"detail", e.detail}});
  json segs = json::array();
  for (const auto& s : j.segments) {
    json nodes = json::array();
    for (const auto& n : s.nodes) {
      nodes.push_back({{"node", n.node}, {"gpus", n.gpus}, {"gpu_milli", n.gpu_milli}, {"cpu_milli", n.cpu_milli},
                       {"memory_mib", n.memory_mib}});
    }
    segs.push_back({{"index", s.index}, {"gpu_type", s.gpu_type}, {"gpu_milli", s.gpu_milli}, {"nodes", nodes},
                    {"started_us", s.started_us}, {"ended_us", s.ended_us}, {"end", s.end}, {"metered", s.metered}});
  }
  return {{"id", j.id},
          {"org", j.org},
          {"project", j.project},
          {"api_key_id", j.api_key_id},
          {"spec", spec},
          {"state", std::string(job_state_name(j.state))},
          {"exit_code", j.exit_code},
          {"created_us", j.created_us},
          {"finished_us", j.finished_us},
          {"alive_us", j.alive_us},
          {"held", j.held},
          {"events", events},
          {"segments", segs},
          {"log_path", j.log_path}};
}

Result<Job> job_from_doc(const json& doc) {
  if (!doc.is_object() || !doc.contains("spec") || !doc["spec"].is_object()) {
    return invalid_argument("stored job document is not an object with a spec");
  }
  Job j;
  Reader r{doc, Status::ok()};
  j.id = r.get<std::string>("id");
  j.org = r.get<std::string>("org");
  j.project = r.get<std::string>("project");
  j.api_key_id = doc.value("api_key_id", std::string());  // optional: jobs stored before it
  j.exit_code = r.get<int>("exit_code");
  j.created_us = r.get<int64_t>("created_us");
  j.finished_us = r.get<int64_t>("finished_us");
  j.alive_us = r.get<int64_t>("alive_us");
  j.held = doc.value("held", false);  // optional: absent in documents written before holds
  j.log_path = r.get<std::string>("log_path");
  const std::string state = r.get<std::string>("state");
  NC_RETURN_IF_ERROR(r.error);
  bool known = false;
  for (JobState s : {JobState::kQueued, JobState::kRunning, JobState::kSucceeded, JobState::kFailed, JobState::kCancelled,
                     JobState::kPreempted, JobState::kTimedOut, JobState::kNodeFailed}) {
    if (job_state_name(s) == state) {
      j.state = s;
      known = true;
    }
  }
  if (!known) return invalid_argument(fmt::format("stored job {}: unknown state '{}'", j.id, state));
  Reader sp{doc["spec"], Status::ok()};
  j.spec.name = sp.get<std::string>("name");
  j.spec.command = sp.get<std::string>("command");
  j.spec.args = sp.get<std::vector<std::string>>("args");
  j.spec.working_dir = sp.get<std::string>("working_dir");
  j.spec.shape.gpus = sp.get<int>("gpus");
  j.spec.shape.gpu_milli = sp.get<int32_t>("gpu_milli");
  j.spec.shape.nodes = sp.get<int>("nodes");
  j.spec.shape.gpu_types = sp.get<std::vector<std::string>>("gpu_types");
  j.spec.shape.min_gpu_memory_mib = sp.get<int64_t>("min_gpu_memory_mib");
  j.spec.shape.cpu_milli = sp.get<int64_t>("cpu_milli");
  j.spec.shape.memory_mib = sp.get<int64_t>("memory_mib");
  j.spec.tasks_per_node = sp.get<int>("tasks_per_node");
  j.spec.max_duration_s = sp.get<int64_t>("max_duration_s");
  j.spec.requeue = sp.get<bool>("requeue");
  j.spec.reservation = doc["spec"].value("reservation", std::string());  // optional
  j.spec.image = doc["spec"].value("image", std::string());              // optional
  if (auto in = doc["spec"].find("inputs"); in != doc["spec"].end() && in->is_array()) {
    for (const auto& p : *in)
      if (p.is_array() && p.size() == 2 && p[0].is_string() && p[1].is_string())
        j.spec.inputs.emplace_back(p[0].get<std::string>(), p[1].get<std::string>());
  }
  const std::string prio = sp.get<std::string>("priority");
  auto env = sp.get<std::vector<std::pair<std::string, std::string>>>("env");
  NC_RETURN_IF_ERROR(sp.error);
  j.spec.env = std::move(env);
  NC_ASSIGN_OR_RETURN(j.spec.priority, parse_priority(prio));
  for (const auto& e : doc.value("events", json::array())) {
    Reader er{e, Status::ok()};
    JobEvent ev{er.get<int64_t>("t"), er.get<std::string>("type"), er.get<std::string>("detail")};
    NC_RETURN_IF_ERROR(er.error);
    j.events.push_back(std::move(ev));
  }
  for (const auto& s : doc.value("segments", json::array())) {
    Reader sr{s, Status::ok()};
    JobSegment seg;
    seg.index = sr.get<int>("index");
    seg.gpu_type = sr.get<std::string>("gpu_type");
    seg.gpu_milli = sr.get<int64_t>("gpu_milli");
    seg.started_us = sr.get<int64_t>("started_us");
    seg.ended_us = sr.get<int64_t>("ended_us");
    seg.end = sr.get<std::string>("end");
    seg.metered = sr.get<bool>("metered");
    NC_RETURN_IF_ERROR(sr.error);
    for (const auto& n : s.value("nodes", json::array())) {
      Reader nr{n, Status::ok()};
      NodeAssignment a;
      a.node = nr.get<std::string>("node");
      a.gpus = nr.get<std::vector<int>>("gpus");
      a.gpu_milli = nr.get<int32_t>("gpu_milli");
      a.cpu_milli = nr.get<int64_t>("cpu_milli");
      a.memory_mib = nr.get<int64_t>("memory_mib");
      NC_RETURN_IF_ERROR(nr.error);
      seg.nodes.push_back(std::move(a));
    }
    j.segments.push_back(std::move(seg));
  }
  return j;
}

namespace {
Status upsert(storage::Transaction& tx, const Job& j) {
  return tx
      .exec("INSERT INTO jobs (id, org_id, project_id, state, created_at, updated_at, doc) VALUES ($1, $2, $3, $4, $5, $6, $7) "
            "ON CONFLICT (id) DO UPDATE SET state = $4, updated_at = $6, doc = $7",
            {j.id, j.org, j.project, std::string(job_state_name(j.state)), j.created_us, unix_us(), job_to_doc(j).dump()})
      .status();
}
}  // namespace

Status JobStore::save(const Job& j) {
  return db_.transact([&](storage::Transaction& tx) -> Status { return upsert(tx, j); });
}

Status JobStore::save_all(const std::vector<Job>& jobs) {
  if (jobs.empty()) return Status::ok();
  return db_.transact([&](storage::Transaction& tx) -> Status {
    for (const auto& j : jobs) NC_RETURN_IF_ERROR(upsert(tx, j));
    return Status::ok();
  });
}

Result<std::vector<Job>> JobStore::load_all() {
  NC_ASSIGN_OR_RETURN(storage::Rows rows, db_.read([](storage::Transaction& tx) {
    return tx.query("SELECT id, doc FROM jobs ORDER BY created_at, id");
  }));
  std::vector<Job> out;
  for (const auto& row : rows) {
    NC_ASSIGN_OR_RETURN(std::string id, row.get_text(0));
    NC_ASSIGN_OR_RETURN(std::string text, row.get_text(1));
    json doc = json::parse(text, nullptr, false);
    auto j = job_from_doc(doc);
    if (!j.is_ok()) return data_loss(fmt::format("job {}: {}", id, j.status().message()));
    out.push_back(std::move(*j));
  }
  return out;
}

Status JobStore::save_quota(const std::string& org, const std::string& gpu_type, std::optional<int64_t> gpus_milli) {
  return db_.transact([&](storage::Transaction& tx) -> Status {
    if (!gpus_milli) return tx.exec("DELETE FROM gpu_quotas WHERE org_id = $1 AND gpu_type = $2", {org, gpu_type}).status();
    return tx
        .exec("INSERT INTO gpu_quotas (org_id, gpu_type, gpus_milli, updated_at) VALUES ($1, $2, $3, $4) "
              "ON CONFLICT (org_id, gpu_type) DO UPDATE SET gpus_milli = $3, updated_at = $4",
              {org, gpu_type, *gpus_milli, unix_us()})
        .status();
  });
}

Result<std::vector<QuotaRow>> JobStore::load_quotas() {
  NC_ASSIGN_OR_RETURN(storage::Rows rows, db_.read([](storage::Transaction& tx) {
    return tx.query("SELECT org_id, gpu_type, gpus_milli FROM gpu_quotas ORDER BY org_id, gpu_type");
  }));
  std::vector<QuotaRow> out;
  for (const auto& row : rows) {
    QuotaRow q;
    NC_ASSIGN_OR_RETURN(q.org, row.get_text(0));
    NC_ASSIGN_OR_RETURN(q.gpu_type, row.get_text(1));
    NC_ASSIGN_OR_RETURN(q.gpus_milli, row.get_int(2));
    out.push_back(std::move(q));
  }
  return out;
}

namespace {

json nodes_json(const std::vector<NodeAssignment>& nodes) {
  json out = json::array();
  for (const auto& n : nodes) out.push_back({{"node", n.node}, {"gpus", n.gpus}});
  return out;
}

}  // namespace

Status JobStore::save_reservation(const ReservationRecord& r) {
  const json doc = {{"id", r.id},           {"org", r.org},           {"project", r.project},
                    {"name", r.name},       {"gpu_type", r.gpu_type},
                    {"gpus", r.gpus},       {"start_us", r.start_us},
                    {"end_us", r.end_us},   {"created_us", r.created_us},
                    {"state", std::string(reservation_state_name(r.state))},
                    {"nodes", nodes_json(r.nodes)},
                    {"activated_us", r.activated_us},
                    {"released_us", r.released_us},
                    {"metered", r.metered}};
  return db_.transact([&](storage::Transaction& tx) -> Status {
    return tx
        .exec("INSERT INTO reservations (id, org_id, state, start_at, end_at, updated_at, doc) VALUES ($1, $2, $3, $4, $5, $6, $7) "
              "ON CONFLICT (id) DO UPDATE SET state = $3, updated_at = $6, doc = $7",
              {r.id, r.org, std::string(reservation_state_name(r.state)), r.start_us, r.end_us, unix_us(), doc.dump()})
        .status();
  });
}

Result<std::vector<ReservationRecord>> JobStore::load_reservations() {
  NC_ASSIGN_OR_RETURN(storage::Rows rows, db_.read([](storage::Transaction& tx) {
    return tx.query("SELECT id, doc FROM reservations ORDER BY start_at, id");
  }));
  std::vector<ReservationRecord> out;
  for (const auto& row : rows) {
    NC_ASSIGN_OR_RETURN(std::string id, row.get_text(0));
    NC_ASSIGN_OR_RETURN(std::string text, row.get_text(1));
    const json doc = json::parse(text, nullptr, false);
    if (!doc.is_object()) return data_loss(fmt::format("reservation {}: the stored document is not an object", id));
    Reader r{doc, Status::ok()};
    ReservationRecord rec;
    rec.id = r.get<std::string>("id");
    rec.org = r.get<std::string>("org");
    rec.project = doc.value("project", std::string());  // optional: reservations stored before projects
    rec.name = r.get<std::string>("name");
    rec.gpu_type = r.get<std::string>("gpu_type");
    rec.gpus = r.get<int>("gpus");
    rec.start_us = r.get<int64_t>("start_us");
    rec.end_us = r.get<int64_t>("end_us");
    rec.created_us = r.get<int64_t>("created_us");
    rec.activated_us = r.get<int64_t>("activated_us");
    rec.released_us = r.get<int64_t>("released_us");
    rec.metered = r.get<bool>("metered");
    const std::string state = r.get<std::string>("state");
    if (!r.error.is_ok()) return data_loss(fmt::format("reservation {}: {}", id, r.error.message()));
    bool known = false;
    for (auto s : {ReservationState::kPending, ReservationState::kActive, ReservationState::kEnded, ReservationState::kCancelled}) {
      if (reservation_state_name(s) == state) {
        rec.state = s;
        known = true;
      }
    }
    if (!known) return data_loss(fmt::format("reservation {}: unknown state '{}'", id, state));
    for (const auto& n : doc.value("nodes", json::array())) {
      Reader nr{n, Status::ok()};
      NodeAssignment a;
      a.node = nr.get<std::string>("node");
      a.gpus = nr.get<std::vector<int>>("gpus");
      if (!nr.error.is_ok()) return data_loss(fmt::format("reservation {}: {}", id, nr.error.message()));
      rec.nodes.push_back(std::move(a));
    }
    out.push_back(std::move(rec));
  }
  return out;
}

}  // namespace nc::capacity

namespace nc::capacity {

Status JobStore::save_job_user(const std::string& org, int64_t uid) {
  return db_.transact([&](storage::Transaction& tx) -> Status {
    return tx.exec("INSERT INTO job_users (org_id, uid, created_at) VALUES ($1, $2, $3)", {org, uid, unix_us()}).status();
  });
}

Result<std::vector<std::pair<std::string, int64_t>>> JobStore::load_job_users() {
  NC_ASSIGN_OR_RETURN(storage::Rows rows, db_.read([](storage::Transaction& tx) {
    return tx.query("SELECT org_id, uid FROM job_users ORDER BY uid");
  }));
  std::vector<std::pair<std::string, int64_t>> out;
  for (const auto& row : rows) {
    NC_ASSIGN_OR_RETURN(std::string org, row.get_text(0));
    NC_ASSIGN_OR_RETURN(int64_t uid, row.get_int(1));
    out.emplace_back(std::move(org), uid);
  }
  return out;
}

}  // namespace nc::capacity
