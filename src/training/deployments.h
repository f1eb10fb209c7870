// DeploymentStore: the models loaded at run time — the operator's public models (admin API) and the
// GGUF files organizations deployed as their own private models — so that a restarted server serves
// them again (schema.h, version 8: table model_deployments). Fine-tuned models are not here: the
// fine-tuning jobs that made them are (fine_tune_store.h).
// Ownership: borrows the Database. Threads: thread-safe; calls block on database I/O.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "storage/database.h"

namespace nc::training {

struct Deployment {
  std::string id;       // the model id clients send
  std::string org;      // "": public (the operator's); else the organization whose own model it is
  std::string path;     // the GGUF on this host
  std::string file_id;  // a tenant's: the uploaded file it came from
  int64_t created_at = 0;
};

class DeploymentStore {
 public:
  explicit DeploymentStore(storage::Database& db) : db_(db) {}
  Status save(const Deployment& d);  // AlreadyExists for a taken id
  Status remove(const std::string& id);
  Result<std::vector<Deployment>> load_all();

 private:
  storage::Database& db_;
};

}  // namespace nc::training
