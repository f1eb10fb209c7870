#include "gateway/schema.h"

namespace nc::gateway {

namespace {

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

// Version 4: the index that finds a crashed instance's open ledger records holds open records only
// (a settled record's insert no longer writes to it: one page less per ledger commit).
constexpr const char* kLedgerOpenIndexV4 = R"sql(
DROP INDEX usage_records_open;
CREATE INDEX usage_records_open ON usage_records (instance) WHERE state = 'open';
)sql";

}  // namespace

const std::vector<storage::Migration>& migrations() {
  static const std::vector<storage::Migration> list = [] {
    std::vector<storage::Migration> l(2);
    l[0].version = 2;
    l[0].name = "gateway";
    l[0].sql = kGatewayV2;
    l[1].version = 4;
    l[1].name = "ledger_open_index";
    l[1].sql = kLedgerOpenIndexV4;
    return l;
  }();
  return list;
}

}  // namespace nc::gateway
