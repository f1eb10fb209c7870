#include "tenancy/tenant_store.h"
#include "core/ids.h"
#include "core/timer.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <openssl/rand.h>

#include <chrono>

namespace nc::tenancy {

using storage::Params;
using storage::Row;
using storage::Transaction;


Status record_audit(storage::Transaction& tx, const std::string& org_id, const Actor& actor, const std::string& action,
             const std::string& target, const std::string& before, const std::string& after) {
  return tx
      .exec("INSERT INTO audit_log (id, org_id, actor_key_id, action, target, before_json, after_json, at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            {random_id("aud_", 24), org_id, actor.key_id.empty() ? storage::SqlValue() : storage::SqlValue(actor.key_id), action,
             target, before.empty() ? storage::SqlValue() : storage::SqlValue(before),
             after.empty() ? storage::SqlValue() : storage::SqlValue(after), unix_us()})
      .status();
}

namespace {

const char* kind_column(KeyKind k) { return k == KeyKind::kAdmin ? "admin" : "inference"; }

std::string json_str(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) {
      out += fmt::format("\\u{:04x}", static_cast<unsigned char>(c));
      continue;
    }
    out += c;
  }
  return out + "\"";
}

Result<KeyInfo> key_from_row(const Row& r) {
  KeyInfo k;
  NC_ASSIGN_OR_RETURN(k.id, r.get_text(0));
  NC_ASSIGN_OR_RETURN(k.org_id, r.get_text(1));
  if (!r.is_null(2)) {
    NC_ASSIGN_OR_RETURN(k.project_id, r.get_text(2));
  }
  NC_ASSIGN_OR_RETURN(std::string kind, r.get_text(3));
  k.kind = kind == "admin" ? KeyKind::kAdmin : KeyKind::kInference;
  NC_ASSIGN_OR_RETURN(k.name, r.get_text(4));
  NC_ASSIGN_OR_RETURN(k.redacted, r.get_text(5));
  NC_ASSIGN_OR_RETURN(k.scopes, r.get_text(6));
  NC_ASSIGN_OR_RETURN(k.created_at, r.get_int(7));
  if (!r.is_null(8)) {
    NC_ASSIGN_OR_RETURN(k.expires_at, r.get_int(8));
  }
  if (!r.is_null(9)) {
    NC_ASSIGN_OR_RETURN(k.revoked_at, r.get_int(9));
  }
  return k;
}

constexpr const char* kKeyColumns =
    "id, org_id, project_id, kind, name, redacted, scopes, created_at, expires_at, revoked_at";

std::string key_json(const KeyInfo& k) {
  return fmt::format(R"({{"id":{},"project_id":{},"kind":"{}","name":{},"redacted":{},"scopes":{}}})", json_str(k.id),
                     k.project_id.empty() ? "null" : json_str(k.project_id), kind_column(k.kind), json_str(k.name),
                     json_str(k.redacted), k.scopes);
}

// Inserts a new key in `tx`; the caller has checked org/project.
Result<TenantStore::CreatedKey> insert_key(Transaction& tx, const std::string& org_id, const std::string& project_id,
                                           KeyKind kind, const std::string& name, const std::string& scopes,
                                           std::optional<int64_t> expires_at, const NewKey& nk) {
  TenantStore::CreatedKey ck;
  KeyInfo& k = ck.info;
  k.id = random_id("key_", 24);
  k.org_id = org_id;
  k.project_id = project_id;
  k.kind = kind;
  k.name = name;
  k.redacted = nk.redacted;
  k.scopes = scopes.empty() ? "{}" : scopes;
  k.created_at = unix_us();
  k.expires_at = expires_at;
  NC_RETURN_IF_ERROR(
      tx.exec("INSERT INTO api_keys (id, org_id, project_id, kind, name, key_hash, redacted, scopes, created_at, expires_at) "
              "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
              {k.id, org_id, project_id.empty() ? storage::SqlValue() : storage::SqlValue(project_id), kind_column(kind),
               name, storage::Blob(nk.digest.begin(), nk.digest.end()), k.redacted, k.scopes, k.created_at,
               expires_at ? storage::SqlValue(*expires_at) : storage::SqlValue()})
          .status());
  ck.plaintext = nk.plaintext;
  return ck;
}

}  // namespace

Result<Organization> TenantStore::create_org(const std::string& name, const Actor& actor) {
  if (name.empty()) return invalid_argument("an organization needs a name");
  Organization o{random_id("org_", 24), name, unix_us()};
  NC_RETURN_IF_ERROR(db_.transact([&](Transaction& tx) -> Status {
    NC_RETURN_IF_ERROR(
        tx.exec("INSERT INTO organizations (id, name, created_at) VALUES ($1, $2, $3)", {o.id, o.name, o.created_at})
            .status());
    return record_audit(tx, o.id, actor, "organization.create", o.id, "", fmt::format(R"({{"name":{}}})", json_str(name)));
  }));
  return o;
}

Result<std::vector<Organization>> TenantStore::list_orgs() {
  return db_.read([&](Transaction& tx) -> Result<std::vector<Organization>> {
    NC_ASSIGN_OR_RETURN(auto rows, tx.query("SELECT id, name, created_at FROM organizations WHERE deleted_at IS NULL "
                                            "ORDER BY created_at, id"));
    std::vector<Organization> out;
    for (const Row& r : rows) {
      Organization o;
      NC_ASSIGN_OR_RETURN(o.id, r.get_text(0));
      NC_ASSIGN_OR_RETURN(o.name, r.get_text(1));
      NC_ASSIGN_OR_RETURN(o.created_at, r.get_int(2));
      out.push_back(std::move(o));
    }
    return out;
  });
}

Result<Project> TenantStore::create_project(const std::string& org_id, const std::string& name, const Actor& actor) {
  if (name.empty()) return invalid_argument("a project needs a name");
  Project p{random_id("proj_", 24), org_id, name, unix_us()};
  NC_RETURN_IF_ERROR(db_.transact([&](Transaction& tx) -> Status {
    NC_ASSIGN_OR_RETURN(auto org, tx.query_optional("SELECT id FROM organizations WHERE id = $1 AND deleted_at IS NULL", {org_id}));
    if (!org) return not_found(fmt::format("organization {} not found", org_id));
    NC_RETURN_IF_ERROR(tx.exec("INSERT INTO projects (id, org_id, name, created_at) VALUES ($1, $2, $3, $4)",
                               {p.id, org_id, name, p.created_at})
                           .status());
    return record_audit(tx, org_id, actor, "project.create", p.id, "", fmt::format(R"({{"name":{}}})", json_str(name)));
  }));
  return p;
}

Result<std::vector<Project>> TenantStore::list_projects(const std::string& org_id) {
  return db_.read([&](Transaction& tx) -> Result<std::vector<Project>> {
    NC_ASSIGN_OR_RETURN(auto rows, tx.query("SELECT id, name, created_at FROM projects WHERE org_id = $1 AND archived_at IS NULL "
                                            "ORDER BY created_at, id",
                                            {org_id}));
    std::vector<Project> out;
    for (const Row& r : rows) {
      Project p;
      p.org_id = org_id;
      NC_ASSIGN_OR_RETURN(p.id, r.get_text(0));
      NC_ASSIGN_OR_RETURN(p.name, r.get_text(1));
      NC_ASSIGN_OR_RETURN(p.created_at, r.get_int(2));
      out.push_back(std::move(p));
    }
    return out;
  });
}

Result<TenantStore::CreatedKey> TenantStore::create_key(const std::string& org_id, const std::string& project_id,
                                                        KeyKind kind, const std::string& name,
                                                        const std::string& scopes_json, std::optional<int64_t> expires_at,
                                                        const Actor& actor) {
  if (!scopes_json.empty()) {
    const auto j = nlohmann::json::parse(scopes_json, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) return invalid_argument("scopes must be a JSON object");
  }
  if (kind == KeyKind::kInference && project_id.empty()) return invalid_argument("an inference key belongs to a project");
  if (kind == KeyKind::kAdmin && !project_id.empty()) return invalid_argument("an admin key belongs to the organization, not a project");
  NC_ASSIGN_OR_RETURN(NewKey nk, generate_key(kind));  // outside the transaction: it may be retried
  return db_.transact([&](Transaction& tx) -> Result<CreatedKey> {
    NC_ASSIGN_OR_RETURN(auto org, tx.query_optional("SELECT id FROM organizations WHERE id = $1 AND deleted_at IS NULL", {org_id}));
    if (!org) return not_found(fmt::format("organization {} not found", org_id));
    if (!project_id.empty()) {
      NC_ASSIGN_OR_RETURN(auto p, tx.query_optional("SELECT id FROM projects WHERE id = $1 AND org_id = $2 AND archived_at IS NULL",
                                                    {project_id, org_id}));
      if (!p) return not_found(fmt::format("project {} not found", project_id));
    }
    NC_ASSIGN_OR_RETURN(CreatedKey ck, insert_key(tx, org_id, project_id, kind, name, scopes_json, expires_at, nk));
    NC_RETURN_IF_ERROR(record_audit(tx, org_id, actor, "api_key.create", ck.info.id, "", key_json(ck.info)));
    return ck;
  });
}

Result<std::vector<KeyInfo>> TenantStore::list_keys(const std::string& org_id) {
  return db_.read([&](Transaction& tx) -> Result<std::vector<KeyInfo>> {
    NC_ASSIGN_OR_RETURN(auto rows, tx.query(fmt::format("SELECT {} FROM api_keys WHERE org_id = $1 ORDER BY created_at, id", kKeyColumns),
                                            {org_id}));
    std::vector<KeyInfo> out;
    for (const Row& r : rows) {
      NC_ASSIGN_OR_RETURN(KeyInfo k, key_from_row(r));
      out.push_back(std::move(k));
    }
    return out;
  });
}

Status TenantStore::revoke_key(const std::string& org_id, const std::string& key_id, const Actor& actor) {
  return db_.transact([&](Transaction& tx) -> Status {
    NC_ASSIGN_OR_RETURN(auto row, tx.query_optional(fmt::format("SELECT {} FROM api_keys WHERE id = $1 AND org_id = $2", kKeyColumns),
                                                    {key_id, org_id}));
    if (!row) return not_found(fmt::format("API key {} not found", key_id));
    NC_ASSIGN_OR_RETURN(KeyInfo k, key_from_row(*row));
    if (k.revoked_at) return Status::ok();
    NC_RETURN_IF_ERROR(tx.exec("UPDATE api_keys SET revoked_at = $3 WHERE id = $1 AND org_id = $2", {key_id, org_id, unix_us()}).status());
    return record_audit(tx, org_id, actor, "api_key.revoke", key_id, key_json(k), "");
  });
}

Result<TenantStore::CreatedKey> TenantStore::rotate_key(const std::string& org_id, const std::string& key_id, int64_t overlap_us,
                                                        const Actor& actor) {
  if (overlap_us < 0) return invalid_argument("the overlap must not be negative");
  NC_ASSIGN_OR_RETURN(KeyInfo old, db_.read([&](Transaction& tx) -> Result<KeyInfo> {
    NC_ASSIGN_OR_RETURN(auto row, tx.query_optional(fmt::format("SELECT {} FROM api_keys WHERE id = $1 AND org_id = $2", kKeyColumns),
                                                    {key_id, org_id}));
    if (!row) return not_found(fmt::format("API key {} not found", key_id));
    return key_from_row(*row);
  }));
  NC_ASSIGN_OR_RETURN(NewKey nk, generate_key(old.kind));
  return db_.transact([&](Transaction& tx) -> Result<CreatedKey> {
    NC_ASSIGN_OR_RETURN(auto row, tx.query_optional(fmt::format("SELECT {} FROM api_keys WHERE id = $1 AND org_id = $2", kKeyColumns),
                                                    {key_id, org_id}));
    if (!row) return not_found(fmt::format("API key {} not found", key_id));
    NC_ASSIGN_OR_RETURN(KeyInfo cur, key_from_row(*row));
    if (cur.revoked_at) return failed_precondition(fmt::format("API key {} is revoked", key_id));
    const int64_t until = unix_us() + overlap_us;
    const int64_t expires = cur.expires_at ? std::min(*cur.expires_at, until) : until;
    NC_RETURN_IF_ERROR(tx.exec("UPDATE api_keys SET expires_at = $3 WHERE id = $1 AND org_id = $2", {key_id, org_id, expires}).status());
    NC_ASSIGN_OR_RETURN(CreatedKey ck, insert_key(tx, org_id, cur.project_id, cur.kind, cur.name, cur.scopes, cur.expires_at, nk));
    NC_RETURN_IF_ERROR(record_audit(tx, org_id, actor, "api_key.rotate", key_id, key_json(cur), key_json(ck.info)));
    return ck;
  });
}

Result<Principal> TenantStore::authenticate(std::string_view key, int64_t now) {
  NC_ASSIGN_OR_RETURN(KeyKind kind, parse_key(key));
  const KeyDigest digest = digest_key(key);
  const storage::Blob digest_blob(digest.begin(), digest.end());
  NC_ASSIGN_OR_RETURN(auto row, db_.read([&](Transaction& tx) {
    return tx.query_optional(
        "SELECT k.id, k.org_id, k.project_id, k.kind, k.scopes, k.expires_at, k.revoked_at, k.key_hash, o.operator "
        "FROM api_keys k JOIN organizations o ON o.id = k.org_id WHERE k.key_hash = $1 AND o.deleted_at IS NULL",
        {digest_blob});
  }));
  const Status unknown(StatusCode::kUnauthenticated, "Incorrect API key provided.");
  if (!row) return unknown;
  NC_ASSIGN_OR_RETURN(storage::Blob stored, row->get_blob(7));
  KeyDigest stored_digest{};
  if (stored.size() != stored_digest.size()) return unknown;
  std::copy(stored.begin(), stored.end(), stored_digest.begin());
  if (!digest_equal(stored_digest, digest)) return unknown;
  Principal p;
  NC_ASSIGN_OR_RETURN(p.key_id, row->get_text(0));
  NC_ASSIGN_OR_RETURN(p.org_id, row->get_text(1));
  if (!row->is_null(2)) {
    NC_ASSIGN_OR_RETURN(p.project_id, row->get_text(2));
  }
  NC_ASSIGN_OR_RETURN(std::string stored_kind, row->get_text(3));
  p.kind = stored_kind == "admin" ? KeyKind::kAdmin : KeyKind::kInference;
  if (p.kind != kind) return unknown;
  NC_ASSIGN_OR_RETURN(p.scopes, row->get_text(4));
  if (!row->is_null(6)) return Status(StatusCode::kUnauthenticated, "This API key has been revoked.");
  if (!row->is_null(5)) {
    NC_ASSIGN_OR_RETURN(int64_t expires, row->get_int(5));
    if (now >= expires) return Status(StatusCode::kUnauthenticated, "This API key has expired.");
    p.expires_at = expires;
  }
  NC_ASSIGN_OR_RETURN(int64_t op, row->get_int(8));
  p.operator_org = op != 0;
  return p;
}

Result<std::optional<TenantStore::CreatedKey>> TenantStore::bootstrap(const Actor& actor) {
  NC_ASSIGN_OR_RETURN(NewKey nk, generate_key(KeyKind::kAdmin));
  const std::string org_id = random_id("org_", 24);
  return db_.transact([&](Transaction& tx) -> Result<std::optional<CreatedKey>> {
    NC_ASSIGN_OR_RETURN(auto any, tx.query_optional("SELECT id FROM api_keys WHERE kind = 'admin' LIMIT 1"));
    if (any) return std::optional<CreatedKey>();
    const int64_t t = unix_us();
    NC_RETURN_IF_ERROR(
        tx.exec("INSERT INTO organizations (id, name, created_at, operator) VALUES ($1, 'default', $2, 1)", {org_id, t}).status());
    NC_ASSIGN_OR_RETURN(CreatedKey ck, insert_key(tx, org_id, "", KeyKind::kAdmin, "bootstrap admin", "{}", std::nullopt, nk));
    NC_RETURN_IF_ERROR(record_audit(tx, org_id, actor, "bootstrap", ck.info.id, "", key_json(ck.info)));
    return std::optional<CreatedKey>(std::move(ck));
  });
}

Result<std::vector<TenantStore::AuditEntry>> TenantStore::audit_log(const std::string& org_id) {
  return db_.read([&](Transaction& tx) -> Result<std::vector<AuditEntry>> {
    NC_ASSIGN_OR_RETURN(auto rows, tx.query("SELECT actor_key_id, action, target, before_json, after_json, at FROM audit_log "
                                            "WHERE org_id = $1 ORDER BY at, id",
                                            {org_id}));
    std::vector<AuditEntry> out;
    for (const Row& r : rows) {
      AuditEntry e;
      if (!r.is_null(0)) {
    NC_ASSIGN_OR_RETURN(e.actor_key_id, r.get_text(0));
  }
      NC_ASSIGN_OR_RETURN(e.action, r.get_text(1));
      NC_ASSIGN_OR_RETURN(e.target, r.get_text(2));
      if (!r.is_null(3)) {
    NC_ASSIGN_OR_RETURN(e.before_json, r.get_text(3));
  }
      if (!r.is_null(4)) {
    NC_ASSIGN_OR_RETURN(e.after_json, r.get_text(4));
  }
      NC_ASSIGN_OR_RETURN(e.at, r.get_int(5));
      out.push_back(std::move(e));
    }
    return out;
  });
}

}  // namespace nc::tenancy
