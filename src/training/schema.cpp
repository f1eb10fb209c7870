// The training module's tables (schema.h).
#include "training/schema.h"

namespace nc::training {

namespace {

// Version 7: fine-tuning jobs. A job is one row holding its whole JSON document (fine_tune_job.h) next
// to the columns queries filter on; its events (progress, metrics) one row each, in order.
constexpr const char* kTrainingV7 = R"sql(
CREATE TABLE fine_tuning_jobs (
  id          TEXT PRIMARY KEY,
  org_id      TEXT NOT NULL,
  state       TEXT NOT NULL,
  created_at  BIGINT NOT NULL,
  doc         TEXT NOT NULL
);
CREATE INDEX fine_tuning_jobs_org ON fine_tuning_jobs (org_id, created_at);

CREATE TABLE fine_tuning_events (
  id          TEXT PRIMARY KEY,
  job_id      TEXT NOT NULL,
  seq         BIGINT NOT NULL,
  created_at  BIGINT NOT NULL,
  doc         TEXT NOT NULL,
  UNIQUE (job_id, seq)
);
)sql";

// Version 8: models loaded at run time (deployments.h): the operator's public ones, tenants' own.
constexpr const char* kDeploymentsV8 = R"sql(
CREATE TABLE model_deployments (
  id          TEXT PRIMARY KEY,
  org_id      TEXT NOT NULL,
  path        TEXT NOT NULL,
  file_id     TEXT NOT NULL,
  created_at  BIGINT NOT NULL
);
)sql";

}  // namespace

const std::vector<storage::Migration>& migrations() {
  static const std::vector<storage::Migration> list = [] {
    storage::Migration m;
    m.version = 7;
    m.name = "fine_tuning";
    m.sql = kTrainingV7;
    storage::Migration d;
    d.version = 8;
    d.name = "model_deployments";
    d.sql = kDeploymentsV8;
    return std::vector<storage::Migration>{m, d};
  }();
  return list;
}

}  // namespace nc::training
