// The tenancy module's tables, as storage migrations (storage/migrate.h); the app composes every
// module's list (compose_migrations) and runs them in version order.
//
// Version 1, "tenancy" — who may call, and the record of what they changed:
//   organizations(id, name, created_at, deleted_at)
//       the tenant. Ids are TEXT made by the application with a type prefix ("org_...",
//       "proj_...", "key_...", "svc_...", "audit_..."), as OpenAI's admin API shows them.
//   projects(id, org_id -> organizations, name, created_at, archived_at)
//       UNIQUE (org_id, name); UNIQUE (org_id, id) is the target of the composite foreign keys
//       below, which make it impossible to attach a key or service account to another org's project.
//   service_accounts(id, org_id, project_id NULL = org-wide, name, created_at, deleted_at)
//       non-human owners of keys; (org_id, project_id) -> projects(org_id, id).
//   api_keys(id, org_id, project_id NULL = org-wide, service_account_id NULL = none, kind, name,
//            key_hash UNIQUE, redacted, scopes, created_at, expires_at, revoked_at, last_used_at)
//       kind: 'inference' (the /v1 API) or 'admin' (the admin API). key_hash: SHA-256 of the whole
//       key string (32 bytes, BLOB/BYTEA); the key itself is never stored. redacted: what lists show
//       ("nc-inference-...AbCd"). scopes: JSON text, e.g. {"models":["*"],"endpoints":["/v1/chat/completions"]}.
//       Times are unix microseconds; NULL expires_at = never; NULL revoked_at = active. Rotation
//       creates a new key and sets the old one's expires_at (overlap). Keys are never deleted.
//   audit_log(id, org_id NULL = system-wide, actor_key_id NULL = the system/CLI, action, target,
//             before_json, after_json, at)
//       one row per mutation, written in the same transaction as the change. action: "<type>.<verb>"
//       ("api_key.create", "project.update"); target: "<type>:<id>"; before/after: JSON of the
//       changed object (NULL for create/delete), secrets excluded. No foreign keys, so the log
//       outlives what it describes. Index (org_id, at) serves "this org's log, newest first".
// Money (later migrations): BIGINT micro-units of the currency, never floating point.
// Thread-safe: a constant list built on first use.
#pragma once

#include <vector>

#include "storage/migrate.h"

namespace nc::tenancy {

// Version 1.
const std::vector<storage::Migration>& migrations();

}  // namespace nc::tenancy
