// Database: neocloud's one SQL interface, with two backends behind it — SQLite (the embedded default)
// and PostgreSQL via libpq (scale-out). Callers write ONE SQL text for both, with PostgreSQL-style
// `$1, $2, ...` placeholders (in any order, repeatable); values are SqlValue (sql_value.h).
//
//   NC_ASSIGN_OR_RETURN(auto db, storage::Database::open("sqlite:/var/lib/neocloud/nc.db"));
//   NC_ASSIGN_OR_RETURN(int64_t balance, db->transact([&](storage::Transaction& tx) -> Result<int64_t> {
//     NC_ASSIGN_OR_RETURN(storage::Row row, tx.query_one("SELECT balance FROM wallets WHERE id = $1", {id}));
//     NC_ASSIGN_OR_RETURN(int64_t b, row.get_int(0));
//     NC_RETURN_IF_ERROR(tx.exec("UPDATE wallets SET balance = $2 WHERE id = $1", {id, b - cost}).status());
//     return b - cost;
//   }));
//
// Transactions. Every statement runs inside `transact` (read-write) or `read` (read-only). Both backends
// give SERIALIZABLE semantics by default, so read-modify-write code is correct as written:
//   - SQLite: write transactions are serialized (BEGIN IMMEDIATE on the one writer connection, behind a
//     mutex so threads of one process queue in-process instead of in SQLite's sleeping busy handler);
//     read transactions run concurrently on a pool of reader connections (WAL snapshots).
//   - PostgreSQL: BEGIN ISOLATION LEVEL SERIALIZABLE on a bounded pool of connections.
// `fn` is retried (a fresh transaction, after a randomized exponential backoff) when the database asks
// for it: SQLITE_BUSY / SQLITE_LOCKED, PostgreSQL serialization_failure (40001) / deadlock_detected
// (40P01), and a connection lost before COMMIT was sent. So `fn` may run more than once: it must have
// no effects outside the transaction (or only idempotent ones). After max_attempts the last error is
// returned as Unavailable. A connection lost during COMMIT is not retried (the outcome is unknown):
// Unavailable "commit outcome unknown" — callers that must not double-apply use idempotency keys.
//
// Errors are Status codes: unique violation -> AlreadyExists; foreign key violation -> FailedPrecondition;
// NOT NULL / CHECK violation, bad parameter or value -> InvalidArgument; cannot connect / open, busy
// after all retries -> Unavailable; corrupt file -> DataLoss; disk full / too many connections ->
// ResourceExhausted; statement timeout -> DeadlineExceeded; bad SQL and everything else -> Internal
// with the database's own message. The first failing statement aborts the transaction on BOTH backends
// (PostgreSQL's rule, enforced on SQLite too so code behaves the same): later statements fail with
// FailedPrecondition and the transaction rolls back whatever `fn` returns. Write upserts as
// INSERT ... ON CONFLICT (...) DO NOTHING / DO UPDATE, which both backends support.
//
// Durability: a transaction is durable when transact returns OK — SQLite runs WAL with
// synchronous=FULL (fsync of the WAL on every commit) unless options say otherwise; PostgreSQL with
// its server's synchronous_commit (on by default).
//
// Group commit (not done yet; the design keeps it possible): SQLite writers already queue on one
// mutex in front of one connection. A later `transact_batched` can let the thread that gets the mutex
// drain the queue of waiting write functions and run each inside SAVEPOINT/RELEASE (ROLLBACK TO on its
// error) within ONE BEGIN IMMEDIATE ... COMMIT, then wake them all with their own results — one fsync
// for the group, per-request atomicity kept. On PostgreSQL, commit_delay/commit_siblings on the
// server or the same batching over one connection do the same.
//
// If fn throws, the transaction is rolled back and the exception propagates (it is the caller's).
//
// Ownership and threads: Database is thread-safe; share one per process per database (a
// std::unique_ptr owned by the application, outliving every transaction). A Transaction is owned by
// the thread running `fn` and valid only during that call; never keep it. Do not call transact/read
// from inside `fn` (it would need a second connection and could deadlock the pool): that returns
// FailedPrecondition.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

#include "core/status.h"
#include "storage/sql_value.h"

namespace nc::storage {

enum class Dialect { kSqlite, kPostgres };
std::string_view dialect_name(Dialect d);  // "sqlite" / "postgres"

struct DatabaseOptions {
  // Most connections open at once: SQLite: 1 writer + up to (max_connections - 1) readers;
  // PostgreSQL: the pool size. A transaction waits up to pool_wait_ms for a free one, then Unavailable.
  int max_connections = 8;
  int pool_wait_ms = 30000;
  // SQLite: how long a statement waits for another process's lock before SQLITE_BUSY (then retried).
  int busy_timeout_ms = 5000;
  // SQLite: synchronous=FULL (durable commit) when true, NORMAL (durable at checkpoint only) when false.
  bool sqlite_synchronous_full = true;
  // SQLite: WAL checkpoints on a background thread (PASSIVE, every 100 ms) instead of inside the COMMIT
  // that crosses SQLite's 1000-page threshold, which stalled every write queued behind it.
  bool sqlite_background_checkpoint = true;
  // SQLite, with the background checkpoint: once the WAL holds this many pages, a checkpoint runs
  // between two write transactions (new ones wait for it: it copies only what the last background
  // pass left, ~100 ms of writes) so that the next writer starts the WAL over from its beginning.
  // A passive checkpoint alone never catches up with a writer that commits without pause, and the
  // WAL (and the WAL index every read searches) would grow without bound.
  int sqlite_wal_restart_pages = 4096;
  // PostgreSQL: seconds to wait for the server when connecting, unless the URL sets connect_timeout.
  int connect_timeout_s = 10;
  // PostgreSQL: prepare each statement once per connection (PQprepare, cached by SQL text and
  // parameter types). false sends every statement with PQexecParams (parse + plan each time): for
  // PgBouncer in transaction mode before 1.21, which cannot keep prepared statements.
  bool postgres_prepare = true;
};

enum class Isolation {
  kSerializable,   // default on both backends
  kReadCommitted,  // PostgreSQL only (SQLite is always serializable): each statement sees the latest
                   // commits — for code that takes its own locks (pg_advisory_xact_lock, migrations)
};

struct TransactOptions {
  bool read_only = false;  // set by Database::read
  Isolation isolation = Isolation::kSerializable;
  int max_attempts = 64;   // retries of retryable failures; 1 = no retry
};

// One open transaction on one connection. Owned by the thread running the transact callback.
class Transaction {
 public:
  virtual ~Transaction() = default;
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  // One statement (no trailing statements); returns the number of rows it inserted/updated/deleted.
  Result<int64_t> exec(std::string_view sql, const Params& params = {});
  // One statement; returns every result row.
  Result<Rows> query(std::string_view sql, const Params& params = {});
  // Exactly one row: NotFound when there is none, FailedPrecondition when there are several.
  Result<Row> query_one(std::string_view sql, const Params& params = {});
  // Zero or one row.
  Result<std::optional<Row>> query_optional(std::string_view sql, const Params& params = {});
  // Several `;`-separated statements without parameters (DDL in migrations).
  Status exec_script(std::string_view sql);
  // Runs fn inside a SAVEPOINT: when fn fails with a non-retryable error (a failed statement or its
  // own Status), its writes are rolled back to the savepoint, the transaction is usable again and fn's
  // Status is returned; when fn succeeds its writes stay part of the transaction. A retryable failure
  // (serialization, busy) still aborts the whole transaction. Lets one transaction carry several
  // independent units of work (group commit) with per-unit atomicity.
  Status savepoint(const std::function<Status(Transaction&)>& fn);

  Dialect dialect() const { return dialect_; }
  bool read_only() const { return read_only_; }
  // The first error of this transaction (OK while none): once set, every call fails.
  const Status& error() const { return error_; }
  // Whether that error asks for the whole transaction to be retried.
  bool retryable() const { return retryable_; }

 protected:
  Transaction(Dialect dialect, bool read_only) : dialect_(dialect), read_only_(read_only) {}

  virtual Result<int64_t> do_exec(std::string_view sql, const Params& params) = 0;
  virtual Result<Rows> do_query(std::string_view sql, const Params& params) = 0;
  virtual Status do_exec_script(std::string_view sql) = 0;

  // Backends report every statement failure here; returns `s` for convenience.
  Status fail(Status s, bool retryable);

 private:
  Status aborted_error() const;

  Dialect dialect_;
  bool read_only_;
  Status error_;
  bool retryable_ = false;
  int savepoint_depth_ = 0;
};

class Database {
 public:
  // "sqlite:PATH", "sqlite://PATH" or a plain PATH (SQLite file, created if missing; its directory
  // must exist); "postgres://..." or "postgresql://..." (a libpq connection URI). Opens one connection
  // to check the database is reachable: InvalidArgument for a malformed URL, Unavailable when the
  // database cannot be opened or reached.
  static Result<std::unique_ptr<Database>> open(const std::string& url, const DatabaseOptions& options = {});

  virtual ~Database() = default;
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  virtual Dialect dialect() const = 0;
  // The URL without any password, for logs.
  const std::string& display_url() const { return display_url_; }

  // Runs fn in a read-write transaction and commits it when fn returns OK; rolls back otherwise.
  // fn returns Status or Result<T>; transact returns the same type.
  template <typename Fn>
  auto transact(Fn&& fn, TransactOptions options = {}) -> std::invoke_result_t<Fn&, Transaction&>;
  // The same in a read-only transaction (writes fail with FailedPrecondition).
  template <typename Fn>
  auto read(Fn&& fn, TransactOptions options = {}) -> std::invoke_result_t<Fn&, Transaction&> {
    options.read_only = true;
    return transact(std::forward<Fn>(fn), options);
  }

  // The untyped core of transact: retries, nesting check.
  Status run(const TransactOptions& options, const std::function<Status(Transaction&)>& fn);

 protected:
  explicit Database(std::string display_url) : display_url_(std::move(display_url)) {}

  // One attempt: begin, fn, commit or roll back. Sets *retryable when the failure may be retried.
  virtual Status run_once(const TransactOptions& options, const std::function<Status(Transaction&)>& fn,
                          bool* retryable) = 0;

 private:
  std::string display_url_;
};

template <typename Fn>
auto Database::transact(Fn&& fn, TransactOptions options) -> std::invoke_result_t<Fn&, Transaction&> {
  using R = std::invoke_result_t<Fn&, Transaction&>;
  if constexpr (std::is_same_v<R, Status>) {
    return run(options, [&fn](Transaction& tx) { return fn(tx); });
  } else {
    std::optional<R> out;
    Status s = run(options, [&fn, &out](Transaction& tx) {
      out.reset();
      out.emplace(fn(tx));
      return out->status();
    });
    if (!s.is_ok()) return s;
    return std::move(*out);
  }
}

}  // namespace nc::storage
