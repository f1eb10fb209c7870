#include "storage/schema.h"

#include <string>

namespace nc::storage {

namespace {

// Version 1. "@BLOB@" is BLOB on SQLite and BYTEA on PostgreSQL; everything else is common.
constexpr const char* kTenancyV1 = R"sql(
CREATE TABLE organizations (
  id          TEXT PRIMARY KEY,
  name        TEXT NOT NULL,
  created_at  BIGINT NOT NULL,
  deleted_at  BIGINT
);

CREATE TABLE projects (
  id          TEXT PRIMARY KEY,
  org_id      TEXT NOT NULL REFERENCES organizations (id),
  name        TEXT NOT NULL,
  created_at  BIGINT NOT NULL,
  archived_at BIGINT,
  UNIQUE (org_id, name),
  UNIQUE (org_id, id)
);

CREATE TABLE service_accounts (
  id          TEXT PRIMARY KEY,
  org_id      TEXT NOT NULL REFERENCES organizations (id),
  project_id  TEXT,
  name        TEXT NOT NULL,
  created_at  BIGINT NOT NULL,
  deleted_at  BIGINT,
  UNIQUE (org_id, id),
  FOREIGN KEY (org_id, project_id) REFERENCES projects (org_id, id)
);
CREATE INDEX service_accounts_project ON service_accounts (project_id);

CREATE TABLE api_keys (
  id                  TEXT PRIMARY KEY,
  org_id              TEXT NOT NULL REFERENCES organizations (id),
  project_id          TEXT,
  service_account_id  TEXT,
  kind                TEXT NOT NULL CHECK (kind IN ('inference', 'admin')),
  name                TEXT NOT NULL,
  key_hash            @BLOB@ NOT NULL UNIQUE CHECK (length(key_hash) = 32),
  redacted            TEXT NOT NULL,
  scopes              TEXT NOT NULL DEFAULT '{}',
  created_at          BIGINT NOT NULL,
  expires_at          BIGINT,
  revoked_at          BIGINT,
  last_used_at        BIGINT,
  FOREIGN KEY (org_id, project_id) REFERENCES projects (org_id, id),
  FOREIGN KEY (org_id, service_account_id) REFERENCES service_accounts (org_id, id)
);
CREATE INDEX api_keys_org ON api_keys (org_id);
CREATE INDEX api_keys_project ON api_keys (project_id);
CREATE INDEX api_keys_service_account ON api_keys (service_account_id);

CREATE TABLE audit_log (
  id            TEXT PRIMARY KEY,
  org_id        TEXT,
  actor_key_id  TEXT,
  action        TEXT NOT NULL,
  target        TEXT NOT NULL,
  before_json   TEXT,
  after_json    TEXT,
  at            BIGINT NOT NULL
);
CREATE INDEX audit_log_org_at ON audit_log (org_id, at);
)sql";

// Version 2: the gateway. Money is integer micro-units of the currency (1 USD = 1,000,000); prices are
// micro-units per 1M tokens (or per unit of a metered quantity); times are unix microseconds.
constexpr const char* kGatewayV2 = R"sql(
ALTER TABLE organizations ADD COLUMN operator BIGINT NOT NULL DEFAULT 0;

CREATE TABLE rate_limits (
  scope           TEXT NOT NULL CHECK (scope IN ('org', 'project', 'key')),
  scope_id        TEXT NOT NULL,
  org_id          TEXT NOT NULL REFERENCES organizations (id),
  rpm             BIGINT,
  tpm             BIGINT,
  max_concurrent  BIGINT,
  max_tokens      BIGINT,
  updated_at      BIGINT NOT NULL,
  PRIMARY KEY (scope, scope_id)
);

CREATE TABLE prices (
  item             TEXT NOT NULL,
  effective_from   BIGINT NOT NULL,
  input_per_mtok   BIGINT NOT NULL DEFAULT 0,
  output_per_mtok  BIGINT NOT NULL DEFAULT 0,
  cached_per_mtok  BIGINT NOT NULL DEFAULT 0,
  per_unit         BIGINT NOT NULL DEFAULT 0,
  created_at       BIGINT NOT NULL,
  PRIMARY KEY (item, effective_from),
  CHECK (input_per_mtok >= 0 AND output_per_mtok >= 0 AND cached_per_mtok >= 0 AND per_unit >= 0)
);

CREATE TABLE budgets (
  scope                 TEXT NOT NULL CHECK (scope IN ('org', 'project', 'key')),
  scope_id              TEXT NOT NULL,
  org_id                TEXT NOT NULL REFERENCES organizations (id),
  monthly_limit_micros  BIGINT NOT NULL CHECK (monthly_limit_micros >= 0),
  updated_at            BIGINT NOT NULL,
  PRIMARY KEY (scope, scope_id)
);

CREATE TABLE spend (
  scope         TEXT NOT NULL,
  scope_id      TEXT NOT NULL,
  period        TEXT NOT NULL,
  spent_micros  BIGINT NOT NULL DEFAULT 0,
  held_micros   BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (scope, scope_id, period)
);

CREATE TABLE usage_records (
  id                 TEXT PRIMARY KEY,
  org_id             TEXT NOT NULL,
  project_id         TEXT,
  api_key_id         TEXT,
  model              TEXT NOT NULL,
  endpoint           TEXT NOT NULL,
  state              TEXT NOT NULL CHECK (state IN ('open', 'settled')),
  status             TEXT,
  prompt_tokens      BIGINT NOT NULL DEFAULT 0,
  completion_tokens  BIGINT NOT NULL DEFAULT 0,
  cached_tokens      BIGINT NOT NULL DEFAULT 0,
  held_micros        BIGINT NOT NULL DEFAULT 0,
  cost_micros        BIGINT NOT NULL DEFAULT 0,
  period             TEXT NOT NULL,
  instance           TEXT NOT NULL,
  started_at         BIGINT NOT NULL,
  finished_at        BIGINT
);
CREATE INDEX usage_records_org_started ON usage_records (org_id, started_at);
CREATE INDEX usage_records_open ON usage_records (state, instance);

CREATE TABLE usage_events (
  org_id             TEXT NOT NULL,
  source             TEXT NOT NULL,
  id                 TEXT NOT NULL,
  type               TEXT NOT NULL,
  project_id         TEXT,
  api_key_id         TEXT,
  time               BIGINT NOT NULL,
  item               TEXT NOT NULL,
  quantity           BIGINT NOT NULL DEFAULT 0,
  input_tokens       BIGINT NOT NULL DEFAULT 0,
  output_tokens      BIGINT NOT NULL DEFAULT 0,
  cached_tokens      BIGINT NOT NULL DEFAULT 0,
  cost_micros        BIGINT NOT NULL DEFAULT 0,
  data               TEXT,
  received_at        BIGINT NOT NULL,
  PRIMARY KEY (org_id, source, id)
);
CREATE INDEX usage_events_org_time ON usage_events (org_id, time);
)sql";

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

// Version 4: the index that finds a crashed instance's open ledger records holds open records only
// (a settled record's insert no longer writes to it: one page less per ledger commit).
constexpr const char* kLedgerOpenIndexV4 = R"sql(
DROP INDEX usage_records_open;
CREATE INDEX usage_records_open ON usage_records (instance) WHERE state = 'open';
)sql";

std::string with_blob_type(const char* sql, const char* blob_type) {
  std::string s(sql);
  const std::string token = "@BLOB@";
  for (size_t pos = s.find(token); pos != std::string::npos; pos = s.find(token, pos)) {
    s.replace(pos, token.size(), blob_type);
  }
  return s;
}

std::vector<Migration> build() {
  std::vector<Migration> list;
  auto add = [&](int version, const char* name, std::string sqlite_sql, std::string postgres_sql) {
    Migration m;
    m.version = version;
    m.name = name;
    m.sqlite_sql = std::move(sqlite_sql);
    m.postgres_sql = std::move(postgres_sql);
    list.push_back(std::move(m));
  };
  add(1, "tenancy", with_blob_type(kTenancyV1, "BLOB"), with_blob_type(kTenancyV1, "BYTEA"));
  add(2, "gateway", kGatewayV2, kGatewayV2);
  add(3, "capacity", kCapacityV3, kCapacityV3);
  add(4, "ledger_open_index", kLedgerOpenIndexV4, kLedgerOpenIndexV4);
  return list;
}

}  // namespace

const std::vector<Migration>& neocloud_migrations() {
  static const std::vector<Migration> list = build();
  return list;
}

}  // namespace nc::storage
