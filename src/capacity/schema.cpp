// The capacity module's tables (schema.h).
#include "capacity/schema.h"

namespace nc::capacity {

namespace {

// Version 3: GPU capacity rental. A job is stored as its whole JSON document (spec, state, events,
// segments) next to the columns queries filter on; quotas per organization and GPU type ('' = all types)
// in milli-GPUs.
constexpr const char* kCapacityV3 = R"sql(
CREATE TABLE gpu_quotas (
  org_id      TEXT NOT NULL REFERENCES organizations (id),
  gpu_type    TEXT NOT NULL,
  gpus_milli  BIGINT NOT NULL CHECK (gpus_milli >= 0),
  updated_at  BIGINT NOT NULL,
  PRIMARY KEY (org_id, gpu_type)
);

CREATE TABLE jobs (
  id           TEXT PRIMARY KEY,
  org_id       TEXT NOT NULL,
  project_id   TEXT,
  state        TEXT NOT NULL,
  created_at   BIGINT NOT NULL,
  updated_at   BIGINT NOT NULL,
  doc          TEXT NOT NULL
);
CREATE INDEX jobs_org_created ON jobs (org_id, created_at);
CREATE INDEX jobs_state ON jobs (state);

CREATE TABLE reservations (
  id          TEXT PRIMARY KEY,
  org_id      TEXT NOT NULL,
  state       TEXT NOT NULL,
  start_at    BIGINT NOT NULL,
  end_at      BIGINT NOT NULL,
  updated_at  BIGINT NOT NULL,
  doc         TEXT NOT NULL
);
CREATE INDEX reservations_org ON reservations (org_id, start_at);
)sql";

// Version 5: the Unix uid each organization's confined jobs run as (job_users.h); never reused.
constexpr const char* kCapacityV5 = R"sql(
CREATE TABLE job_users (
  org_id      TEXT PRIMARY KEY,
  uid         BIGINT NOT NULL UNIQUE,
  created_at  BIGINT NOT NULL
);
)sql";

}  // namespace

const std::vector<storage::Migration>& migrations() {
  static const std::vector<storage::Migration> list = [] {
    storage::Migration m;
    m.version = 3;
    m.name = "capacity";
    m.sql = kCapacityV3;
    storage::Migration users;
    users.version = 5;
    users.name = "job_users";
    users.sql = kCapacityV5;
    return std::vector<storage::Migration>{m, users};
  }();
  return list;
}

}  // namespace nc::capacity
