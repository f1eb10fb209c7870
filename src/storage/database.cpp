#include "storage/database.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <thread>
#include <vector>

#include "core/log.h"
#include "storage/postgres_database.h"
#include "storage/sqlite_database.h"

namespace nc::storage {

std::string_view dialect_name(Dialect d) {
  switch (d) {
    case Dialect::kSqlite: return "sqlite";
    case Dialect::kPostgres: return "postgres";
  }
  return "?";
}

// ---- Transaction ----

Status Transaction::fail(Status s, bool retryable) {
  if (error_.is_ok()) {
    error_ = s;
    retryable_ = retryable;
  }
  return s;
}

Status Transaction::aborted_error() const {
  return failed_precondition("transaction aborted by an earlier error: " + error_.to_string());
}

Result<int64_t> Transaction::exec(std::string_view sql, const Params& params) {
  if (!error_.is_ok()) return aborted_error();
  return do_exec(sql, params);
}

Result<Rows> Transaction::query(std::string_view sql, const Params& params) {
  if (!error_.is_ok()) return aborted_error();
  return do_query(sql, params);
}

Result<Row> Transaction::query_one(std::string_view sql, const Params& params) {
  NC_ASSIGN_OR_RETURN(Rows rows, query(sql, params));
  if (rows.empty()) return not_found("query returned no row");
  if (rows.size() > 1) {
    return failed_precondition(fmt::format("query returned {} rows where one was expected", rows.size()));
  }
  return std::move(rows[0]);
}

Result<std::optional<Row>> Transaction::query_optional(std::string_view sql, const Params& params) {
  NC_ASSIGN_OR_RETURN(Rows rows, query(sql, params));
  if (rows.empty()) return std::optional<Row>();
  if (rows.size() > 1) {
    return failed_precondition(fmt::format("query returned {} rows where at most one was expected", rows.size()));
  }
  return std::optional<Row>(std::move(rows[0]));
}

Status Transaction::exec_script(std::string_view sql) {
  if (!error_.is_ok()) return aborted_error();
  return do_exec_script(sql);
}

Status Transaction::savepoint(const std::function<Status(Transaction&)>& fn) {
  if (!error_.is_ok()) return aborted_error();
  const std::string name = fmt::format("nc_sp{}", ++savepoint_depth_);
  struct Depth {
    int& d;
    ~Depth() { --d; }
  } depth{savepoint_depth_};
  // SQLite: prepared once per connection (a group commit runs thousands); PostgreSQL: simple queries.
  auto run = [&](const std::string& sql) -> Status {
    if (dialect_ == Dialect::kSqlite) return do_exec(sql, {}).status();
    return do_exec_script(sql);
  };
  if (Status s = run("SAVEPOINT " + name); !s.is_ok()) return s;
  Status s = fn(*this);
  if (s.is_ok() && error_.is_ok()) return run("RELEASE SAVEPOINT " + name);
  if (s.is_ok()) s = error_;
  if (retryable_) return s;
  error_ = Status::ok();
  // A failure here is recorded by the backend (the transaction is then aborted, as it should be).
  if (run("ROLLBACK TO SAVEPOINT " + name).is_ok()) (void)run("RELEASE SAVEPOINT " + name);
  return s;
}

// ---- Database ----

namespace {

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

// postgres://user:secret@host/db?password=x -> postgres://user:***@host/db?password=***
std::string redact_url(const std::string& url) {
  std::string out = url;
  size_t scheme = out.find("://");
  if (scheme != std::string::npos) {
    size_t start = scheme + 3;
    size_t end = out.find_first_of("/?", start);
    if (end == std::string::npos) end = out.size();
    size_t at = out.rfind('@', end);
    if (at != std::string::npos && at > start) {
      size_t colon = out.find(':', start);
      if (colon != std::string::npos && colon < at) out.replace(colon + 1, at - colon - 1, "***");
    }
  }
  size_t pos = 0;
  while ((pos = out.find("password=", pos)) != std::string::npos) {
    size_t start = pos + 9;
    size_t end = out.find_first_of("& ", start);
    if (end == std::string::npos) end = out.size();
    out.replace(start, end - start, "***");
    pos = start + 3;
  }
  return out;
}

// Transactions open on this thread, to refuse nesting (it would wait for a second connection).
thread_local std::vector<const Database*> tls_open_transactions;

// Full-jitter exponential backoff: uniform in [0, min(100 ms, 0.5 ms * 2^failures)].
void backoff(int failures) {
  thread_local std::minstd_rand rng(std::random_device{}());
  double cap_us = std::min(100000.0, 500.0 * static_cast<double>(1u << std::min(failures, 20)));
  std::uniform_real_distribution<double> dist(0.0, cap_us);
  std::this_thread::sleep_for(std::chrono::microseconds(static_cast<int64_t>(dist(rng))));
}

}  // namespace

Result<std::unique_ptr<Database>> Database::open(const std::string& url, const DatabaseOptions& options) {
  if (url.empty()) return invalid_argument("empty database URL");
  if (options.max_connections < 2) return invalid_argument("DatabaseOptions.max_connections must be >= 2");
  if (starts_with(url, "postgres://") || starts_with(url, "postgresql://")) {
    return open_postgres(url, redact_url(url), options);
  }
  std::string path;
  if (starts_with(url, "sqlite://")) {
    path = url.substr(9);
  } else if (starts_with(url, "sqlite:")) {
    path = url.substr(7);
  } else if (url.find("://") != std::string::npos) {
    return invalid_argument(fmt::format("unsupported database URL '{}': use sqlite:PATH, a file path, "
                                        "postgres://... or postgresql://...", redact_url(url)));
  } else {
    path = url;
  }
  if (path.empty()) return invalid_argument(fmt::format("database URL '{}' has no file path", url));
  return open_sqlite(path, url, options);
}

Status Database::run(const TransactOptions& options, const std::function<Status(Transaction&)>& fn) {
  if (std::find(tls_open_transactions.begin(), tls_open_transactions.end(), this) !=
      tls_open_transactions.end()) {
    return failed_precondition("nested transaction on the same database (call transact outside fn)");
  }
  tls_open_transactions.push_back(this);
  struct Pop {
    ~Pop() { tls_open_transactions.pop_back(); }
  } pop;

  int max_attempts = std::max(1, options.max_attempts);
  Status last;
  for (int attempt = 1; attempt <= max_attempts; ++attempt) {
    bool retryable = false;
    last = run_once(options, fn, &retryable);
    if (last.is_ok() || !retryable) return last;
    if (attempt < max_attempts) {
      NC_LOG_DEBUG("storage: retrying transaction (attempt {}): {}", attempt, last.to_string());
      backoff(attempt);
    }
  }
  return Status(StatusCode::kUnavailable,
                fmt::format("transaction failed after {} attempts: {}", max_attempts, last.message()));
}

}  // namespace nc::storage
