// Versioned schema migrations, the same list for SQLite and PostgreSQL.
// Applied versions are recorded in schema_migrations(version BIGINT PRIMARY KEY, name TEXT,
// applied_at BIGINT unix microseconds). migrate() applies the pending ones in version order, each in
// its own transaction together with its schema_migrations row (DDL is transactional on both
// backends), so a crash leaves every migration either applied and recorded or not at all.
// Idempotent; safe when several processes start at once: each migration transaction first takes the
// database's migration lock (PostgreSQL: pg_advisory_xact_lock at READ COMMITTED, so the check that
// follows sees a concurrent winner's commit; SQLite: BEGIN IMMEDIATE, the write lock) and then
// re-checks whether the version is already applied.
// A recorded version whose name differs from the list's is an error (FailedPrecondition: the list was
// edited after release — add a new migration instead). Versions recorded but unknown to this binary
// (a newer binary migrated the database) are logged and left alone.
//
// Keep schemas portable: BIGINT (ids, unix-microsecond times, money in micro-units), DOUBLE PRECISION,
// TEXT, BLOB (SQLite) / BYTEA (PostgreSQL); no AUTOINCREMENT/SERIAL (ids come from the application);
// constraints and indexes both backends understand. Where the dialects differ, give per-dialect SQL.
// Thread-safe (it only uses Database's transactions).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "storage/database.h"

namespace nc::storage {

struct Migration {
  int64_t version = 0;       // > 0, strictly increasing in a list, never reused
  std::string name;          // short snake_case description, recorded with the version
  std::string sql;           // the script (several `;`-separated statements) for both dialects...
  std::string sqlite_sql;    // ...unless this is non-empty (SQLite)
  std::string postgres_sql;  // ...or this (PostgreSQL)

  const std::string& script(Dialect d) const;
};

Status migrate(Database& db, const std::vector<Migration>& migrations);

// One list from the modules' own lists (tenancy, gateway, capacity, ...), in version order;
// InvalidArgument when two modules claim one version.
Result<std::vector<Migration>> compose_migrations(const std::vector<std::vector<Migration>>& parts);

// The highest applied version, 0 when none (or no schema_migrations table yet).
Result<int64_t> schema_version(Database& db);

}  // namespace nc::storage
