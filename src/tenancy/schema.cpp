#include "tenancy/schema.h"

#include <string>

namespace nc::tenancy {

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

std::string with_blob_type(const char* sql, const char* blob_type) {
  std::string s(sql);
  const std::string token = "@BLOB@";
  for (size_t pos = s.find(token); pos != std::string::npos; pos = s.find(token, pos)) {
    s.replace(pos, token.size(), blob_type);
  }
  return s;
}

}  // namespace

const std::vector<storage::Migration>& migrations() {
  static const std::vector<storage::Migration> list = [] {
    storage::Migration m;
    m.version = 1;
    m.name = "tenancy";
    m.sqlite_sql = with_blob_type(kTenancyV1, "BLOB");
    m.postgres_sql = with_blob_type(kTenancyV1, "BYTEA");
    return std::vector<storage::Migration>{m};
  }();
  return list;
}

}  // namespace nc::tenancy
