#include "storage/sqlite_database.h"

#include <fmt/format.h>
#include <sqlite3.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string_view>
#include <thread>
#include <unordered_map>

#include "core/log.h"
#include "storage/connection_pool.h"

namespace nc::storage {

namespace {

// Cached statements per connection; past this, the cache is emptied (finalized) and refilled.
constexpr size_t kMaxCachedStatements = 256;
constexpr size_t kMaxSqlInMessage = 200;

std::string sql_excerpt(std::string_view sql) {
  if (sql.size() <= kMaxSqlInMessage) return std::string(sql);
  return std::string(sql.substr(0, kMaxSqlInMessage)) + "...";
}

bool is_blank(std::string_view s) { return s.find_first_not_of(" \t\r\n;") == std::string_view::npos; }

Status constraint_status(int rc, std::string msg) {
  switch (rc) {
    case SQLITE_CONSTRAINT_PRIMARYKEY:
    case SQLITE_CONSTRAINT_UNIQUE: return Status(StatusCode::kAlreadyExists, std::move(msg));
    case SQLITE_CONSTRAINT_NOTNULL:
    case SQLITE_CONSTRAINT_CHECK:
    case SQLITE_CONSTRAINT_DATATYPE: return invalid_argument(std::move(msg));
    default: return failed_precondition(std::move(msg));  // FOREIGNKEY, TRIGGER, ...
  }
}

// Maps an SQLite result code (extended codes are on) to a Status. *retryable: BUSY / LOCKED.
Status sqlite_status(int rc, const char* message, bool* retryable) {
  *retryable = false;
  std::string msg = fmt::format("sqlite: {}", message ? message : sqlite3_errstr(rc));
  switch (rc & 0xff) {
    case SQLITE_CONSTRAINT: return constraint_status(rc, std::move(msg));
    case SQLITE_BUSY:
    case SQLITE_LOCKED: *retryable = true; return unavailable(msg);
    case SQLITE_CANTOPEN: return unavailable(msg);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: return data_loss(msg);
    case SQLITE_FULL:
    case SQLITE_NOMEM: return resource_exhausted(msg);
    case SQLITE_READONLY: return failed_precondition(msg);
    case SQLITE_MISMATCH:
    case SQLITE_RANGE:
    case SQLITE_TOOBIG: return invalid_argument(msg);
    case SQLITE_INTERRUPT: return Status(StatusCode::kCancelled, msg);
    default: return internal_error(msg);
  }
}

struct TransparentHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
};

// One sqlite3 handle and its prepared statements. Used by one thread at a time (the pool or the
// writer mutex guarantees it), hence SQLITE_OPEN_NOMUTEX.
class SqliteConn {
 public:
  explicit SqliteConn(sqlite3* db) : db_(db) {}
  ~SqliteConn() {
    clear_cache();
    sqlite3_close_v2(db_);
  }
  SqliteConn(const SqliteConn&) = delete;
  SqliteConn& operator=(const SqliteConn&) = delete;

  sqlite3* db() const { return db_; }

  Status error(int rc, bool* retryable) const { return sqlite_status(rc, sqlite3_errmsg(db_), retryable); }

  // A cached statement for one SQL text (reset, bindings cleared). Owned by this connection.
  Result<sqlite3_stmt*> prepare(std::string_view sql, bool* retryable) {
    *retryable = false;
    auto it = cache_.find(sql);
    if (it != cache_.end()) return it->second;
    if (cache_.size() >= kMaxCachedStatements) clear_cache();
    sqlite3_stmt* stmt = nullptr;
    const char* tail = nullptr;
    int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT, &stmt,
                                &tail);
    if (rc != SQLITE_OK) {
      Status s = error(rc, retryable);
      return Status(s.code(), fmt::format("{} (in: {})", s.message(), sql_excerpt(sql)));
    }
    if (stmt == nullptr) return internal_error(fmt::format("empty SQL statement: '{}'", sql_excerpt(sql)));
    if (tail && !is_blank(std::string_view(tail, sql.data() + sql.size() - tail))) {
      sqlite3_finalize(stmt);
      return internal_error(
          fmt::format("exec/query take one statement; use exec_script for several (in: {})", sql_excerpt(sql)));
    }
    cache_.emplace(std::string(sql), stmt);
    return stmt;
  }

  // Runs a statement without parameters or results (BEGIN, COMMIT, ...).
  Status simple(std::string_view sql, bool* retryable) {
    NC_ASSIGN_OR_RETURN(sqlite3_stmt * stmt, prepare(sql, retryable));
    int rc = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    if (rc == SQLITE_DONE || rc == SQLITE_ROW) return Status::ok();
    return error(rc, retryable);
  }

  bool in_transaction() const { return sqlite3_get_autocommit(db_) == 0; }

 private:
  void clear_cache() {
    for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
    cache_.clear();
  }

  sqlite3* db_;
  std::unordered_map<std::string, sqlite3_stmt*, TransparentHash, std::equal_to<>> cache_;
};

Result<std::string> query_text(sqlite3* db, const char* sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr);
  std::string out;
  if (rc == SQLITE_OK) {
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
      const unsigned char* t = sqlite3_column_text(stmt, 0);
      if (t) out = reinterpret_cast<const char*>(t);
      rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
      rc = SQLITE_OK;
    }
  }
  sqlite3_finalize(stmt);
  if (rc != SQLITE_OK) {
    bool retryable;
    return sqlite_status(rc, sqlite3_errmsg(db), &retryable).with_context(sql);
  }
  return out;
}

// Opens and configures one connection. writer: also switches the file to WAL (a persistent setting).
Result<std::unique_ptr<SqliteConn>> open_conn(const std::string& path, const DatabaseOptions& options,
                                              bool writer) {
  sqlite3* raw = nullptr;
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc);
    sqlite3_close_v2(raw);
    return unavailable(fmt::format("cannot open SQLite database '{}': {}", path, msg));
  }
  auto conn = std::make_unique<SqliteConn>(raw);
  sqlite3_extended_result_codes(raw, 1);
  sqlite3_busy_timeout(raw, options.busy_timeout_ms);
  auto context = [&](const Status& s) { return s.with_context(fmt::format("opening SQLite database '{}'", path)); };
  if (writer) {
    // Reading the mode first: setting it needs an exclusive lock even when it is already WAL.
    Result<std::string> mode = query_text(raw, "PRAGMA journal_mode");
    if (!mode.is_ok()) return context(mode.status());
    if (*mode != "wal") {
      mode = query_text(raw, "PRAGMA journal_mode=WAL");
      if (!mode.is_ok()) return context(mode.status());
      if (*mode != "wal") return context(failed_precondition(fmt::format("cannot enable WAL (journal_mode={})", *mode)));
    }
  }
  const char* pragmas[] = {
      options.sqlite_synchronous_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL",
      "PRAGMA foreign_keys=ON",
      writer ? "PRAGMA query_only=0" : "PRAGMA query_only=1",
      // Checkpoints run on the background checkpointer, not inside a writer's COMMIT.
      writer && options.sqlite_background_checkpoint ? "PRAGMA wal_autocheckpoint=0" : "PRAGMA user_version",
  };
  for (const char* p : pragmas) {
    Result<std::string> r = query_text(raw, p);
    if (!r.is_ok()) return context(r.status());
  }
  return conn;
}

class SqliteTransaction final : public Transaction {
 public:
  SqliteTransaction(SqliteConn& conn, bool read_only) : Transaction(Dialect::kSqlite, read_only), conn_(conn) {}

 protected:
  Result<int64_t> do_exec(std::string_view sql, const Params& params) override {
    int64_t before = sqlite3_total_changes64(conn_.db());
    NC_RETURN_IF_ERROR(run(sql, params, nullptr));
    // changes() keeps the count of the last INSERT/UPDATE/DELETE, so only trust it when this one changed rows.
    if (sqlite3_total_changes64(conn_.db()) == before) return int64_t{0};
    return static_cast<int64_t>(sqlite3_changes64(conn_.db()));
  }

  Result<Rows> do_query(std::string_view sql, const Params& params) override {
    Rows rows;
    NC_RETURN_IF_ERROR(run(sql, params, &rows));
    return rows;
  }

  Status do_exec_script(std::string_view sql) override {
    if (read_only()) return fail(failed_precondition("exec_script in a read-only transaction"), false);
    char* err = nullptr;
    std::string text(sql);
    int rc = sqlite3_exec(conn_.db(), text.c_str(), nullptr, nullptr, &err);
    if (rc == SQLITE_OK) return Status::ok();
    bool retryable;
    Status s = sqlite_status(rc, err ? err : sqlite3_errmsg(conn_.db()), &retryable);
    sqlite3_free(err);
    return fail(s, retryable);
  }

 private:
  Status bind(sqlite3_stmt* stmt, const Params& params) {
    int n = sqlite3_bind_parameter_count(stmt);
    for (int i = 1; i <= n; ++i) {
      const char* name = sqlite3_bind_parameter_name(stmt, i);
      std::string_view sv = name ? std::string_view(name) : std::string_view("?");
      size_t k = 0;
      auto [end, ec] = std::from_chars(sv.data() + std::min<size_t>(1, sv.size()), sv.data() + sv.size(), k);
      if (sv.size() < 2 || sv[0] != '$' || ec != std::errc() || end != sv.data() + sv.size() || k == 0) {
        return invalid_argument(fmt::format("placeholder '{}' not supported: use $1, $2, ...", sv));
      }
      if (k > params.size()) {
        return invalid_argument(fmt::format("placeholder {} but only {} parameters given", sv, params.size()));
      }
      const SqlValue& v = params[k - 1];
      int rc = SQLITE_OK;
      switch (v.index()) {
        case 0: rc = sqlite3_bind_null(stmt, i); break;
        case 1: rc = sqlite3_bind_int64(stmt, i, std::get<int64_t>(v)); break;
        case 2: rc = sqlite3_bind_double(stmt, i, std::get<double>(v)); break;
        case 3: {
          const std::string& s = std::get<std::string>(v);
          rc = sqlite3_bind_text64(stmt, i, s.data(), s.size(), SQLITE_STATIC, SQLITE_UTF8);
          break;
        }
        case 4: {
          const Blob& b = std::get<Blob>(v);
          // A null pointer would bind NULL, so an empty blob is a zero-length zeroblob.
          rc = b.empty() ? sqlite3_bind_zeroblob(stmt, i, 0)
                         : sqlite3_bind_blob64(stmt, i, b.data(), b.size(), SQLITE_STATIC);
          break;
        }
      }
      if (rc != SQLITE_OK) {
        bool retryable;
        return conn_.error(rc, &retryable).with_context(fmt::format("binding {}", sv));
      }
    }
    return Status::ok();
  }

  static SqlValue column_value(sqlite3_stmt* stmt, int c) {
    switch (sqlite3_column_type(stmt, c)) {
      case SQLITE_INTEGER: return static_cast<int64_t>(sqlite3_column_int64(stmt, c));
      case SQLITE_FLOAT: return sqlite3_column_double(stmt, c);
      case SQLITE_TEXT: {
        const char* t = reinterpret_cast<const char*>(sqlite3_column_text(stmt, c));
        return std::string(t ? t : "", static_cast<size_t>(sqlite3_column_bytes(stmt, c)));
      }
      case SQLITE_BLOB: {
        const uint8_t* p = static_cast<const uint8_t*>(sqlite3_column_blob(stmt, c));
        int n = sqlite3_column_bytes(stmt, c);
        return p ? Blob(p, p + n) : Blob();
      }
      default: return SqlValue();
    }
  }

  // Prepares (cached), binds, steps to the end; collects rows when `rows` is set.
  Status run(std::string_view sql, const Params& params, Rows* rows) {
    bool retryable = false;
    Result<sqlite3_stmt*> prepared = conn_.prepare(sql, &retryable);
    if (!prepared.is_ok()) return fail(prepared.status(), retryable);
    sqlite3_stmt* stmt = *prepared;
    if (read_only() && !sqlite3_stmt_readonly(stmt)) {
      return fail(failed_precondition(fmt::format("cannot write in a read-only transaction (in: {})", sql_excerpt(sql))),
                  false);
    }
    struct Reset {
      sqlite3_stmt* stmt;
      ~Reset() {
        sqlite3_reset(stmt);
        sqlite3_clear_bindings(stmt);
      }
    } reset{stmt};
    Status s = bind(stmt, params);
    if (!s.is_ok()) return fail(s, false);
    std::shared_ptr<std::vector<std::string>> columns;
    int n_cols = sqlite3_column_count(stmt);
    if (rows) {
      columns = std::make_shared<std::vector<std::string>>();
      for (int c = 0; c < n_cols; ++c) {
        const char* name = sqlite3_column_name(stmt, c);
        columns->emplace_back(name ? name : "");
      }
    }
    while (true) {
      int rc = sqlite3_step(stmt);
      if (rc == SQLITE_DONE) return Status::ok();
      if (rc != SQLITE_ROW) {
        Status e = conn_.error(rc, &retryable);
        return fail(Status(e.code(), fmt::format("{} (in: {})", e.message(), sql_excerpt(sql))), retryable);
      }
      if (!rows) continue;
      std::vector<SqlValue> values;
      values.reserve(n_cols);
      for (int c = 0; c < n_cols; ++c) values.push_back(column_value(stmt, c));
      rows->emplace_back(columns, std::move(values));
    }
  }

  SqliteConn& conn_;
};

class SqliteDatabase final : public Database {
 public:
  SqliteDatabase(std::string path, std::string display_url, DatabaseOptions options,
                 std::unique_ptr<SqliteConn> writer)
      : Database(std::move(display_url)),
        path_(std::move(path)),
        options_(options),
        writer_(std::move(writer)),
        readers_(options.max_connections - 1, options.pool_wait_ms,
                 [this]() { return open_conn(path_, options_, /*writer=*/false); }) {
    if (options_.sqlite_background_checkpoint) checkpointer_ = std::thread([this] { checkpoint_loop(); });
  }

  ~SqliteDatabase() override {
    {
      std::lock_guard<std::mutex> lock(checkpoint_mu_);
      stopping_ = true;
    }
    checkpoint_cv_.notify_all();
    if (checkpointer_.joinable()) checkpointer_.join();
  }

  Dialect dialect() const override { return Dialect::kSqlite; }

 protected:
  Status run_once(const TransactOptions& options, const std::function<Status(Transaction&)>& fn,
                  bool* retryable) override {
    *retryable = false;
    if (options.read_only) {
      NC_ASSIGN_OR_RETURN(auto lease, readers_.acquire());
      return run_on(*lease, "BEGIN", true, fn, retryable, [&] { lease.discard(); });
    }
    std::lock_guard<std::mutex> lock(write_mu_);
    if (!writer_) {
      NC_ASSIGN_OR_RETURN(writer_, open_conn(path_, options_, /*writer=*/true));
    }
    return run_on(*writer_, "BEGIN IMMEDIATE", false, fn, retryable, [&] { writer_.reset(); });
  }

 private:
  // Copies the WAL into the database every 100 ms (PASSIVE: never waits for readers or writers) on
  // its own connection, so no writer's COMMIT pays for a checkpoint's reads, writes and fsync. Past
  // sqlite_wal_restart_pages, one more pass runs while this process's writers wait (write_mu_): it
  // finishes the copy, so the next write transaction restarts the WAL from its start (unless a reader
  // still uses it: then a later tick tries again).
  void checkpoint_loop() {
    sqlite3* db = nullptr;
    if (sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK) {
      NC_LOG_WARN("storage: cannot open '{}' for checkpoints: {}", path_, db ? sqlite3_errmsg(db) : "?");
      sqlite3_close_v2(db);
      return;
    }
    sqlite3_busy_timeout(db, 0);
    // A connection learns that the database is in WAL mode (and opens the WAL) at its first read;
    // until then sqlite3_wal_checkpoint_v2 does nothing and returns OK.
    if (sqlite3_exec(db, "SELECT count(*) FROM sqlite_master", nullptr, nullptr, nullptr) != SQLITE_OK) {
      NC_LOG_WARN("storage: cannot read '{}' for checkpoints: {}", path_, sqlite3_errmsg(db));
    }
    std::unique_lock<std::mutex> lock(checkpoint_mu_);
    while (!checkpoint_cv_.wait_for(lock, std::chrono::milliseconds(100), [this] { return stopping_; })) {
      lock.unlock();
      int log_pages = 0, done_pages = 0;
      int rc = sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_PASSIVE, &log_pages, &done_pages);
      if (rc == SQLITE_OK && log_pages >= options_.sqlite_wal_restart_pages) {
        std::lock_guard<std::mutex> writers(write_mu_);
        rc = sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_PASSIVE, &log_pages, &done_pages);
      }
      if (rc != SQLITE_OK && rc != SQLITE_BUSY && rc != SQLITE_LOCKED) {
        NC_LOG_WARN("storage: checkpoint of '{}': {}", path_, sqlite3_errmsg(db));
      }
      lock.lock();
    }
    lock.unlock();
    sqlite3_close_v2(db);
  }

  template <typename Discard>
  Status run_on(SqliteConn& conn, std::string_view begin, bool read_only,
                const std::function<Status(Transaction&)>& fn, bool* retryable, Discard discard) {
    Status s = conn.simple(begin, retryable);
    if (!s.is_ok()) {
      if (conn.in_transaction()) rollback(conn, discard);
      return s;
    }
    SqliteTransaction tx(conn, read_only);
    Status fn_status;
    try {
      fn_status = fn(tx);
    } catch (...) {  // the caller's exception: leave the connection clean, then let it go on
      rollback(conn, discard);
      throw;
    }
    if (!tx.error().is_ok()) {
      rollback(conn, discard);
      *retryable = tx.retryable();
      return tx.error();
    }
    if (!fn_status.is_ok()) {
      rollback(conn, discard);
      return fn_status;
    }
    s = conn.simple("COMMIT", retryable);
    if (!s.is_ok()) {
      if (conn.in_transaction()) rollback(conn, discard);
      return s.with_context("commit");
    }
    return Status::ok();
  }

  template <typename Discard>
  void rollback(SqliteConn& conn, Discard discard) {
    bool retryable;
    Status s = conn.simple("ROLLBACK", &retryable);
    if (!s.is_ok() && conn.in_transaction()) {
      NC_LOG_WARN("storage: SQLite rollback failed, closing the connection: {}", s.to_string());
      discard();
    }
  }

  const std::string path_;
  const DatabaseOptions options_;
  std::thread checkpointer_;
  std::mutex checkpoint_mu_;
  std::condition_variable checkpoint_cv_;
  bool stopping_ = false;
  std::mutex write_mu_;                 // one write transaction at a time in this process
  std::unique_ptr<SqliteConn> writer_;  // guarded by write_mu_; reopened lazily after a failure
  ConnectionPool<SqliteConn> readers_;
};

}  // namespace

Result<std::unique_ptr<Database>> open_sqlite(const std::string& path, const std::string& display_url,
                                              const DatabaseOptions& options) {
  NC_ASSIGN_OR_RETURN(std::unique_ptr<SqliteConn> writer, open_conn(path, options, /*writer=*/true));
  return std::unique_ptr<Database>(new SqliteDatabase(path, display_url, options, std::move(writer)));
}

}  // namespace nc::storage
