// DeploymentStore (deployments.h).
#include "training/deployments.h"

namespace nc::training {

Status DeploymentStore::save(const Deployment& d) {
  return db_.transact([&](storage::Transaction& tx) -> Status {
    return tx
        .exec("INSERT INTO model_deployments (id, org_id, path, file_id, created_at) VALUES ($1, $2, $3, $4, $5)",
              {d.id, d.org, d.path, d.file_id, d.created_at})
        .status();
  });
}

Status DeploymentStore::remove(const std::string& id) {
  return db_.transact([&](storage::Transaction& tx) -> Status {
    return tx.exec("DELETE FROM model_deployments WHERE id = $1", {id}).status();
  });
}

Result<std::vector<Deployment>> DeploymentStore::load_all() {
  NC_ASSIGN_OR_RETURN(storage::Rows rows, db_.read([&](storage::Transaction& tx) {
    return tx.query("SELECT id, org_id, path, file_id, created_at FROM model_deployments ORDER BY created_at, id");
  }));
  std::vector<Deployment> out;
  for (const auto& r : rows) {
    Deployment d;
    NC_ASSIGN_OR_RETURN(d.id, r.get_text(0));
    NC_ASSIGN_OR_RETURN(d.org, r.get_text(1));
    NC_ASSIGN_OR_RETURN(d.path, r.get_text(2));
    NC_ASSIGN_OR_RETURN(d.file_id, r.get_text(3));
    NC_ASSIGN_OR_RETURN(d.created_at, r.get_int(4));
    out.push_back(std::move(d));
  }
  return out;
}

}  // namespace nc::training
