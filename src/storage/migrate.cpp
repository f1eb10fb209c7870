#include "storage/migrate.h"
#include "core/timer.h"

#include <algorithm>

#include <fmt/format.h>

#include <chrono>

#include "core/log.h"

namespace nc::storage {

namespace {

// pg_advisory_xact_lock key for migrations: "ncmigrat" in ASCII.
constexpr int64_t kMigrationLockKey = 0x6e636d6967726174;

constexpr const char* kCreateTable =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    "version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)";

Status validate(const std::vector<Migration>& migrations) {
  int64_t prev = 0;
  for (const Migration& m : migrations) {
    if (m.version <= prev) {
      return invalid_argument(fmt::format("migration versions must be > 0 and strictly increasing: {} after {}",
                                          m.version, prev));
    }
    if (m.name.empty()) return invalid_argument(fmt::format("migration {} has no name", m.version));
    if (m.script(Dialect::kSqlite).empty() || m.script(Dialect::kPostgres).empty()) {
      return invalid_argument(fmt::format("migration {} ({}) has no SQL for one of the dialects", m.version, m.name));
    }
    prev = m.version;
  }
  return Status::ok();
}

// Takes the migration lock and makes sure schema_migrations exists (first statements of a migration
// transaction).
Status lock_and_prepare(Transaction& tx) {
  if (tx.dialect() == Dialect::kPostgres) {
    NC_RETURN_IF_ERROR(tx.query("SELECT pg_advisory_xact_lock($1)", {kMigrationLockKey}).status());
  }
  return tx.exec(kCreateTable).status();
}

}  // namespace

const std::string& Migration::script(Dialect d) const {
  switch (d) {
    case Dialect::kSqlite: return sqlite_sql.empty() ? sql : sqlite_sql;
    case Dialect::kPostgres: return postgres_sql.empty() ? sql : postgres_sql;
  }
  return sql;
}

Result<std::vector<Migration>> compose_migrations(const std::vector<std::vector<Migration>>& parts) {
  std::vector<Migration> all;
  for (const auto& p : parts) all.insert(all.end(), p.begin(), p.end());
  std::sort(all.begin(), all.end(), [](const Migration& a, const Migration& b) { return a.version < b.version; });
  for (size_t i = 1; i < all.size(); ++i) {
    if (all[i].version == all[i - 1].version)
      return invalid_argument(fmt::format("migration version {} is claimed by both '{}' and '{}'", all[i].version,
                                          all[i - 1].name, all[i].name));
  }
  return all;
}

Status migrate(Database& db, const std::vector<Migration>& migrations) {
  NC_RETURN_IF_ERROR(validate(migrations));
  TransactOptions options;
  options.isolation = Isolation::kReadCommitted;  // see the header: the lock must order the re-check
  for (const Migration& m : migrations) {
    bool applied_now = false;
    Status s = db.transact(
        [&](Transaction& tx) -> Status {
          applied_now = false;
          NC_RETURN_IF_ERROR(lock_and_prepare(tx));
          NC_ASSIGN_OR_RETURN(std::optional<Row> row,
                              tx.query_optional("SELECT name FROM schema_migrations WHERE version = $1", {m.version}));
          if (row) {
            NC_ASSIGN_OR_RETURN(std::string name, row->get_text(0));
            if (name != m.name) {
              return failed_precondition(fmt::format(
                  "schema_migrations has version {} as '{}' but this binary calls it '{}'", m.version, name, m.name));
            }
            return Status::ok();
          }
          NC_RETURN_IF_ERROR(tx.exec_script(m.script(tx.dialect())));
          NC_RETURN_IF_ERROR(tx.exec("INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                                     {m.version, m.name, unix_us()})
                                 .status());
          applied_now = true;
          return Status::ok();
        },
        options);
    if (!s.is_ok()) return s.with_context(fmt::format("migration {} ({})", m.version, m.name));
    if (applied_now) NC_LOG_INFO("storage: applied migration {} ({}) on {}", m.version, m.name, db.display_url());
  }
  NC_ASSIGN_OR_RETURN(int64_t version, schema_version(db));
  if (!migrations.empty() && version > migrations.back().version) {
    NC_LOG_WARN("storage: database schema version {} is newer than this binary's {}", version,
                migrations.back().version);
  }
  return Status::ok();
}

Result<int64_t> schema_version(Database& db) {
  return db.read([](Transaction& tx) -> Result<int64_t> {
    // The table may not exist yet: look it up in the catalog first (portable across both backends).
    const char* exists_sql = tx.dialect() == Dialect::kSqlite
                                 ? "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
                                 : "SELECT COUNT(*) FROM information_schema.tables WHERE table_name = 'schema_migrations' "
                                   "AND table_schema = current_schema()";
    NC_ASSIGN_OR_RETURN(Row exists, tx.query_one(exists_sql));
    NC_ASSIGN_OR_RETURN(int64_t n, exists.get_int(0));
    if (n == 0) return int64_t{0};
    NC_ASSIGN_OR_RETURN(Row row, tx.query_one("SELECT COALESCE(MAX(version), 0) FROM schema_migrations"));
    return row.get_int(0);
  });
}

}  // namespace nc::storage
