// TenantStore: organizations, projects and API keys on the storage module (SQLite or PostgreSQL, schema
// migration 1 in src/storage/schema.cpp), with an audit record of every mutation in the same
// transaction as the mutation.
//
// Tenant isolation: every call that names an object also takes the caller's org id (which the HTTP
// layer takes from the authenticated key, never from the request) and matches it in the same SQL
// statement, so an org-A caller asking for an org-B object gets NotFound — indistinguishable from an
// object that does not exist (OWASP API1, BOLA).
//
// Keys (api_key.h): only the SHA-256 digest is stored; the plaintext is returned once by create_key /
// rotate_key / bootstrap. authenticate() checks the format and checksum first (no database work for a
// mistyped key), then looks the digest up and compares it in constant time.
//
// Ownership: borrows the Database (it must outlive the store). Thread-safety: thread-safe (every call
// is one database transaction).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "storage/database.h"
#include "tenancy/api_key.h"

namespace nc::tenancy {

struct Organization {
  std::string id, name;
  int64_t created_at = 0;  // unix microseconds
};

struct Project {
  std::string id, org_id, name;
  int64_t created_at = 0;
};

struct KeyInfo {
  std::string id, org_id;
  std::string project_id;  // empty: an org-wide key (admin keys)
  KeyKind kind = KeyKind::kInference;
  std::string name, redacted, scopes;  // scopes: JSON text ({"models": [...], "endpoints": [...]})
  int64_t created_at = 0;
  std::optional<int64_t> expires_at, revoked_at;
};

// Who is calling: the key's tenant, kind and scopes.
struct Principal {
  std::string key_id, org_id, project_id;
  KeyKind kind = KeyKind::kInference;
  std::string scopes;
  std::optional<int64_t> expires_at;  // unix microseconds
  bool operator_org = false;           // the key's org runs this cloud (bootstrap's org): prices, other orgs
};

// The acting key of a mutation, for the audit log ("bootstrap" or "cli" when there is none).
struct Actor {
  std::string key_id;
};

class TenantStore {
 public:
  explicit TenantStore(storage::Database& db) : db_(db) {}

  Result<Organization> create_org(const std::string& name, const Actor& actor);
  Result<std::vector<Organization>> list_orgs();
  Result<Project> create_project(const std::string& org_id, const std::string& name, const Actor& actor);
  Result<std::vector<Project>> list_projects(const std::string& org_id);

  struct CreatedKey {
    KeyInfo info;
    std::string plaintext;  // shown once
  };
  // An inference key belongs to a project of `org_id`; an admin key to the org (project_id empty).
  // `expires_at`: unix microseconds, or none.
  Result<CreatedKey> create_key(const std::string& org_id, const std::string& project_id, KeyKind kind,
                                const std::string& name, const std::string& scopes_json,
                                std::optional<int64_t> expires_at, const Actor& actor);
  Result<std::vector<KeyInfo>> list_keys(const std::string& org_id);
  // NotFound unless the key is org_id's. Revoking twice is OK (the first time stands).
  Status revoke_key(const std::string& org_id, const std::string& key_id, const Actor& actor);
  // A new key with the old one's project, kind, name and scopes; the old key stays valid for
  // `overlap_us` more (then expires), so clients can switch without an outage.
  Result<CreatedKey> rotate_key(const std::string& org_id, const std::string& key_id, int64_t overlap_us,
                                const Actor& actor);

  // Unauthenticated (malformed, unknown, revoked or expired key) or the caller. `now_us`: the clock.
  Result<Principal> authenticate(std::string_view key, int64_t now_us);

  // First start: when no admin key exists, creates the "default" organization and an admin key and
  // returns it (print it once); otherwise nullopt.
  Result<std::optional<CreatedKey>> bootstrap(const Actor& actor);

  struct AuditEntry {
    std::string actor_key_id, action, target, before_json, after_json;
    int64_t at = 0;
  };
  Result<std::vector<AuditEntry>> audit_log(const std::string& org_id);

 private:
  storage::Database& db_;
};

// Appends one audit record in `tx` (the mutation's own transaction). before/after: JSON text or empty.
Status record_audit(storage::Transaction& tx, const std::string& org_id, const Actor& actor, const std::string& action,
                    const std::string& target, const std::string& before, const std::string& after);

}  // namespace nc::tenancy
