// FineTuneStore (fine_tune_store.h).
#include "training/fine_tune_store.h"

#include <fmt/format.h>

#include "core/json_parse.h"

namespace nc::training {

using json = nlohmann::json;

Status FineTuneStore::save(const FineTuneJob& j, const std::vector<FineTuneEvent>& new_events) {
  const std::string doc = to_doc(j).dump();
  return db_.transact([&](storage::Transaction& tx) -> Status {
    NC_RETURN_IF_ERROR(tx.exec("INSERT INTO fine_tuning_jobs (id, org_id, state, created_at, doc) VALUES ($1, $2, $3, $4, $5) "
                               "ON CONFLICT (id) DO UPDATE SET state = $3, doc = $5",
                               {j.id, j.org, std::string(state_name(j.state)), j.created_at, doc})
                           .status());
    for (const auto& e : new_events) {
      const json d = {{"level", e.level}, {"message", e.message}, {"type", e.type}, {"data", e.data}};
      NC_RETURN_IF_ERROR(tx.exec("INSERT INTO fine_tuning_events (id, job_id, seq, created_at, doc) VALUES ($1, $2, $3, $4, $5) "
                                 "ON CONFLICT (job_id, seq) DO NOTHING",
                                 {e.id, j.id, e.seq, e.created_at, d.dump()})
                             .status());
    }
    return Status::ok();
  });
}

Result<std::vector<FineTuneJob>> FineTuneStore::load_all() {
  NC_ASSIGN_OR_RETURN(storage::Rows rows, db_.read([&](storage::Transaction& tx) {
    return tx.query("SELECT doc FROM fine_tuning_jobs ORDER BY created_at, id");
  }));
  std::vector<FineTuneJob> out;
  for (const auto& r : rows) {
    NC_ASSIGN_OR_RETURN(std::string text, r.get_text(0));
    json d = parse_json_or_discarded(text);
    if (d.is_discarded()) return data_loss("a stored fine-tuning job is not JSON");
    NC_ASSIGN_OR_RETURN(FineTuneJob j, from_doc(d));
    out.push_back(std::move(j));
  }
  return out;
}

Result<std::vector<FineTuneEvent>> FineTuneStore::events(const std::string& job_id, int64_t before_seq, int64_t limit) {
  NC_ASSIGN_OR_RETURN(storage::Rows rows, db_.read([&](storage::Transaction& tx) {
    return tx.query("SELECT id, seq, created_at, doc FROM fine_tuning_events WHERE job_id = $1 AND seq < $2 "
                    "ORDER BY seq DESC LIMIT $3",
                    {job_id, before_seq > 0 ? before_seq : INT64_MAX, limit});
  }));
  std::vector<FineTuneEvent> out;
  for (const auto& r : rows) {
    FineTuneEvent e;
    NC_ASSIGN_OR_RETURN(e.id, r.get_text(0));
    NC_ASSIGN_OR_RETURN(e.seq, r.get_int(1));
    NC_ASSIGN_OR_RETURN(e.created_at, r.get_int(2));
    NC_ASSIGN_OR_RETURN(std::string text, r.get_text(3));
    json d = parse_json_or_discarded(text);
    if (!d.is_object()) return data_loss("a stored fine-tuning event is not JSON");
    e.level = d.value("level", "info");
    e.message = d.value("message", "");
    e.type = d.value("type", "message");
    e.data = d.value("data", json());
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace nc::training
