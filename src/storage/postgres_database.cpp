#include "storage/postgres_database.h"

#include <fmt/format.h>
#include <libpq-fe.h>

#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <string_view>
#include <unordered_map>

#include "core/log.h"
#include "storage/connection_pool.h"

namespace nc::storage {

namespace {

// Type OIDs (pg_type.h is a server header; these values are fixed since PostgreSQL 7).
constexpr Oid kBoolOid = 16;
constexpr Oid kByteaOid = 17;
constexpr Oid kInt8Oid = 20;
constexpr Oid kInt2Oid = 21;
constexpr Oid kInt4Oid = 23;
constexpr Oid kTextOid = 25;
constexpr Oid kOidOid = 26;
constexpr Oid kFloat4Oid = 700;
constexpr Oid kFloat8Oid = 701;
constexpr Oid kNumericOid = 1700;

// Prepared statements per connection; past this, statements run unprepared (PQexecParams).
constexpr size_t kMaxCachedStatements = 256;
constexpr size_t kMaxSqlInMessage = 200;

std::string sql_excerpt(std::string_view sql) {
  if (sql.size() <= kMaxSqlInMessage) return std::string(sql);
  return std::string(sql.substr(0, kMaxSqlInMessage)) + "...";
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

struct PgResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using PgResult = std::unique_ptr<PGresult, PgResultDeleter>;

// How a failure affects the transaction and the connection.
struct PgFailure {
  Status status;
  bool retryable = false;   // the whole transaction may be run again
  bool connection_lost = false;
};

// Maps a failed result (or a null one: the connection broke) to a Status by SQLSTATE.
PgFailure pg_failure(PGconn* conn, const PGresult* res) {
  const char* state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
  if (!state || PQstatus(conn) == CONNECTION_BAD) {
    std::string msg = res ? PQresultErrorMessage(res) : "";
    if (msg.empty()) msg = PQerrorMessage(conn);
    if (PQstatus(conn) == CONNECTION_BAD) return {unavailable("postgres: connection lost: " + trim(msg)), true, true};
    return {internal_error("postgres: " + trim(msg))};  // a client-side error (libpq refused the call)
  }
  std::string_view code(state);
  const char* primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
  const char* detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
  std::string msg = fmt::format("postgres {}: {}{}{}", code, primary ? primary : "?", detail ? " — " : "",
                                detail ? detail : "");
  std::string_view cls = code.substr(0, 2);
  if (code == "23505") return {Status(StatusCode::kAlreadyExists, msg)};
  if (code == "23502" || code == "23514") return {invalid_argument(msg)};
  if (cls == "23") return {failed_precondition(msg)};  // foreign key (23503), exclusion, ...
  if (code == "40001" || code == "40P01") return {unavailable(msg), true};
  if (cls == "08" || code == "57P01" || code == "57P02" || code == "57P03") {
    if (PQstatus(conn) == CONNECTION_BAD) return {unavailable(msg), true, true};
    return {internal_error(msg)};  // e.g. 08P01 protocol_violation on a live connection: a bug, not an outage
  }
  if (cls == "22") return {invalid_argument(msg)};
  if (code == "25006") return {failed_precondition(msg)};
  if (code == "57014") return {Status(StatusCode::kDeadlineExceeded, msg)};
  if (cls == "53") return {resource_exhausted(msg)};
  if (code == "42501") return {Status(StatusCode::kPermissionDenied, msg)};
  if (code == "XX001" || code == "XX002") return {data_loss(msg)};
  return {internal_error(msg)};
}

void notice_processor(void*, const char* message) { NC_LOG_DEBUG("postgres notice: {}", trim(message)); }

struct TransparentHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
};

// One libpq connection and the statements prepared on it. Used by one thread at a time (the pool).
class PgConn {
 public:
  PgConn(PGconn* conn, bool prepare) : conn_(conn), prepare_(prepare) {}
  ~PgConn() { PQfinish(conn_); }
  PgConn(const PgConn&) = delete;
  PgConn& operator=(const PgConn&) = delete;

  PGconn* get() const { return conn_; }
  bool healthy() const { return PQstatus(conn_) == CONNECTION_OK && PQtransactionStatus(conn_) == PQTRANS_IDLE; }

  // Simple-protocol command (BEGIN, COMMIT, scripts). *command_tag receives e.g. "COMMIT" / "ROLLBACK".
  Status simple(const std::string& sql, PgFailure* failure, std::string* command_tag = nullptr) {
    PgResult res(PQexec(conn_, sql.c_str()));
    ExecStatusType st = res ? PQresultStatus(res.get()) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
      if (command_tag) *command_tag = PQcmdStatus(res.get());
      return Status::ok();
    }
    *failure = pg_failure(conn_, res.get());
    return failure->status;
  }

  // Runs one parameterized statement: prepared once per (SQL, parameter types), then executed.
  Result<PgResult> execute(std::string_view sql, const Params& params, PgFailure* failure) {
    size_t n = params.size();
    std::vector<Oid> types(n);
    std::vector<const char*> values(n);
    std::vector<int> lengths(n);
    std::vector<int> formats(n, 1);  // binary: exact doubles, no quoting, raw bytea
    std::vector<uint64_t> words(n);  // big-endian int8 / float8 payloads
    std::string key;
    key.reserve(n + 1 + sql.size());
    for (size_t i = 0; i < n; ++i) {
      const SqlValue& v = params[i];
      switch (v.index()) {
        case 0:  // NULL: type left to the server (unknown), value null
          types[i] = 0;
          values[i] = nullptr;
          key += 'n';
          break;
        case 1:
          types[i] = kInt8Oid;
          words[i] = to_big_endian(static_cast<uint64_t>(std::get<int64_t>(v)));
          values[i] = reinterpret_cast<const char*>(&words[i]);
          lengths[i] = 8;
          key += 'i';
          break;
        case 2:
          types[i] = kFloat8Oid;
          words[i] = to_big_endian(std::bit_cast<uint64_t>(std::get<double>(v)));
          values[i] = reinterpret_cast<const char*>(&words[i]);
          lengths[i] = 8;
          key += 'd';
          break;
        case 3: {
          const std::string& s = std::get<std::string>(v);
          types[i] = kTextOid;  // binary text is the raw UTF-8 bytes; the server validates them
          values[i] = s.data();
          lengths[i] = static_cast<int>(s.size());
          key += 't';
          break;
        }
        case 4: {
          const Blob& b = std::get<Blob>(v);
          types[i] = kByteaOid;
          values[i] = b.empty() ? "" : reinterpret_cast<const char*>(b.data());  // null would mean NULL
          lengths[i] = static_cast<int>(b.size());
          key += 'b';
          break;
        }
      }
      if (v.index() >= 3 && (v.index() == 3 ? std::get<std::string>(v).size() : std::get<Blob>(v).size()) >
                                static_cast<size_t>(std::numeric_limits<int>::max())) {
        *failure = {invalid_argument(fmt::format("parameter ${} is larger than 2 GiB", i + 1))};
        return failure->status;
      }
    }
    key += '|';
    key += sql;
    int n_params = static_cast<int>(n);

    PgResult res;
    auto it = prepared_.find(key);
    if (it == prepared_.end() && prepare_ && prepared_.size() < kMaxCachedStatements) {
      Prepared p{fmt::format("nc_{}", next_statement_++), 0};
      std::string text(sql);
      PgResult prep(PQprepare(conn_, p.name.c_str(), text.c_str(), n_params, types.data()));
      if (prep && PQresultStatus(prep.get()) == PGRES_COMMAND_OK) {
        // How many $N the statement uses (the server counts them): checked before every execution,
        // as a missing value would otherwise be a protocol error.
        prep.reset(PQdescribePrepared(conn_, p.name.c_str()));
      }
      if (!prep || PQresultStatus(prep.get()) != PGRES_COMMAND_OK) {
        *failure = pg_failure(conn_, prep.get());
        return Status(failure->status.code(),
                      fmt::format("{} (in: {})", failure->status.message(), sql_excerpt(sql)));
      }
      p.n_params = PQnparams(prep.get());
      it = prepared_.emplace(std::move(key), std::move(p)).first;
    }
    if (it != prepared_.end()) {
      if (it->second.n_params > n_params) {
        *failure = {invalid_argument(fmt::format("the statement uses ${} but only {} parameters given (in: {})",
                                                 it->second.n_params, n_params, sql_excerpt(sql)))};
        return failure->status;
      }
      res.reset(PQexecPrepared(conn_, it->second.name.c_str(), n_params, values.data(), lengths.data(),
                               formats.data(), /*resultFormat=*/0));
    } else {
      std::string text(sql);
      res.reset(PQexecParams(conn_, text.c_str(), n_params, types.data(), values.data(), lengths.data(),
                             formats.data(), /*resultFormat=*/0));
    }
    ExecStatusType st = res ? PQresultStatus(res.get()) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return res;
    if (st == PGRES_FATAL_ERROR || st == PGRES_NONFATAL_ERROR || !res) {
      *failure = pg_failure(conn_, res.get());
      const char* state = res ? PQresultErrorField(res.get(), PG_DIAG_SQLSTATE) : nullptr;
      if (state && (std::string_view(state) == "26000" ||  // prepared statement vanished
                    (std::string_view(state) == "0A000" &&
                     std::strstr(PQresultErrorMessage(res.get()), "cached plan") != nullptr))) {
        // The schema changed under a cached plan: forget the statements, run the transaction again.
        forget_prepared();
        failure->retryable = true;
      }
    } else {
      *failure = {internal_error(fmt::format("postgres: unsupported result status {} (COPY is not supported)",
                                             PQresStatus(st)))};
    }
    return Status(failure->status.code(), fmt::format("{} (in: {})", failure->status.message(), sql_excerpt(sql)));
  }

 private:
  static uint64_t to_big_endian(uint64_t x) {
    if constexpr (std::endian::native == std::endian::little) return __builtin_bswap64(x);
    return x;
  }

  void forget_prepared() {
    // The names are not reused (next_statement_ only grows), so a stale one can never be confused
    // with a new one; DEALLOCATE ALL would fail inside the aborted transaction, and is not needed.
    prepared_.clear();
  }

  struct Prepared {
    std::string name;
    int n_params;
  };

  PGconn* conn_;
  const bool prepare_;
  // "<parameter type letters>|<SQL>" -> statement: the types are part of the key because a
  // statement is prepared with them (a NULL leaves its type to the server).
  std::unordered_map<std::string, Prepared, TransparentHash, std::equal_to<>> prepared_;
  uint64_t next_statement_ = 0;
};

// ---- text-format result decoding ----

bool parse_int(std::string_view s, int64_t* out) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size();
}

double parse_double(std::string_view s) {
  if (s == "NaN") return std::numeric_limits<double>::quiet_NaN();
  if (s == "Infinity") return std::numeric_limits<double>::infinity();
  if (s == "-Infinity") return -std::numeric_limits<double>::infinity();
  double d = 0;
  std::from_chars(s.data(), s.data() + s.size(), d);
  return d;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Result<SqlValue> decode(Oid type, std::string_view text) {
  switch (type) {
    case kInt2Oid:
    case kInt4Oid:
    case kInt8Oid:
    case kOidOid: {
      int64_t v = 0;
      if (!parse_int(text, &v)) return internal_error(fmt::format("postgres: bad integer '{}'", text));
      return SqlValue(v);
    }
    case kBoolOid: return SqlValue(int64_t{text == "t" ? 1 : 0});
    case kFloat4Oid:
    case kFloat8Oid: return SqlValue(parse_double(text));
    case kNumericOid: {
      int64_t v = 0;
      if (parse_int(text, &v)) return SqlValue(v);
      return SqlValue(parse_double(text));
    }
    case kByteaOid: {
      // bytea_output = hex (set at connect): "\x0a1b..."
      if (text.size() < 2 || text[0] != '\\' || text[1] != 'x' || text.size() % 2 != 0) {
        return internal_error("postgres: bytea not in hex format");
      }
      Blob b((text.size() - 2) / 2);
      for (size_t i = 0; i < b.size(); ++i) {
        int hi = hex_digit(text[2 + 2 * i]), lo = hex_digit(text[3 + 2 * i]);
        if (hi < 0 || lo < 0) return internal_error("postgres: bad hex digit in bytea");
        b[i] = static_cast<uint8_t>(hi * 16 + lo);
      }
      return SqlValue(std::move(b));
    }
    default: return SqlValue(std::string(text));
  }
}

Result<Rows> decode_rows(const PGresult* res) {
  int n_rows = PQntuples(res);
  int n_cols = PQnfields(res);
  auto columns = std::make_shared<std::vector<std::string>>();
  std::vector<Oid> types(n_cols);
  for (int c = 0; c < n_cols; ++c) {
    columns->emplace_back(PQfname(res, c));
    types[c] = PQftype(res, c);
  }
  Rows rows;
  rows.reserve(n_rows);
  for (int r = 0; r < n_rows; ++r) {
    std::vector<SqlValue> values;
    values.reserve(n_cols);
    for (int c = 0; c < n_cols; ++c) {
      if (PQgetisnull(res, r, c)) {
        values.emplace_back();
        continue;
      }
      NC_ASSIGN_OR_RETURN(SqlValue v, decode(types[c], std::string_view(PQgetvalue(res, r, c),
                                                                        static_cast<size_t>(PQgetlength(res, r, c)))));
      values.push_back(std::move(v));
    }
    rows.emplace_back(columns, std::move(values));
  }
  return rows;
}

class PgTransaction final : public Transaction {
 public:
  PgTransaction(PgConn& conn, bool read_only) : Transaction(Dialect::kPostgres, read_only), conn_(conn) {}

  bool connection_lost() const { return connection_lost_; }

 protected:
  Result<int64_t> do_exec(std::string_view sql, const Params& params) override {
    NC_ASSIGN_OR_RETURN(PgResult res, run(sql, params));
    // Rows changed by INSERT/UPDATE/DELETE (also with RETURNING); 0 for SELECT and DDL, as on SQLite.
    std::string_view tag = PQcmdStatus(res.get());
    if (tag.substr(0, 6) == "SELECT") return int64_t{0};
    int64_t n = 0;
    parse_int(PQcmdTuples(res.get()), &n);
    return n;
  }

  Result<Rows> do_query(std::string_view sql, const Params& params) override {
    NC_ASSIGN_OR_RETURN(PgResult res, run(sql, params));
    Result<Rows> rows = decode_rows(res.get());
    if (!rows.is_ok()) return fail(rows.status(), false);
    return rows;
  }

  Status do_exec_script(std::string_view sql) override {
    if (read_only()) return fail(failed_precondition("exec_script in a read-only transaction"), false);
    PgFailure f;
    Status s = conn_.simple(std::string(sql), &f);
    if (!s.is_ok()) {
      connection_lost_ = f.connection_lost;
      return fail(s, f.retryable);
    }
    return s;
  }

 private:
  Result<PgResult> run(std::string_view sql, const Params& params) {
    PgFailure f;
    Result<PgResult> res = conn_.execute(sql, params, &f);
    if (!res.is_ok()) {
      connection_lost_ = f.connection_lost;
      return fail(res.status(), f.retryable);
    }
    return res;
  }

  PgConn& conn_;
  bool connection_lost_ = false;
};

Result<std::unique_ptr<PgConn>> connect(const std::string& url, const std::string& display_url,
                                        const DatabaseOptions& options) {
  // Earlier keywords are defaults: the URL's own connect_timeout / application_name win.
  std::string timeout = std::to_string(options.connect_timeout_s);
  const char* keys[] = {"connect_timeout", "fallback_application_name", "dbname", nullptr};
  const char* values[] = {timeout.c_str(), "neocloud", url.c_str(), nullptr};
  PGconn* raw = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
  if (!raw) return resource_exhausted("postgres: out of memory connecting");
  auto conn = std::make_unique<PgConn>(raw, options.postgres_prepare);
  if (PQstatus(raw) != CONNECTION_OK) {
    return unavailable(fmt::format("cannot connect to PostgreSQL at {}: {}", display_url, trim(PQerrorMessage(raw))));
  }
  PQsetNoticeProcessor(raw, notice_processor, nullptr);
  PgFailure f;
  Status s = conn->simple("SET bytea_output = 'hex'", &f);
  if (!s.is_ok()) return s.with_context("configuring the PostgreSQL connection");
  return conn;
}

class PgDatabase final : public Database {
 public:
  PgDatabase(std::string url, std::string display_url, DatabaseOptions options)
      : Database(display_url),
        url_(std::move(url)),
        options_(options),
        pool_(options.max_connections, options.pool_wait_ms,
              [this]() { return connect(url_, this->display_url(), options_); }) {}

  Dialect dialect() const override { return Dialect::kPostgres; }

  Status check_connect() {
    NC_ASSIGN_OR_RETURN(auto lease, pool_.acquire());
    return Status::ok();
  }

 protected:
  Status run_once(const TransactOptions& options, const std::function<Status(Transaction&)>& fn,
                  bool* retryable) override {
    *retryable = false;
    NC_ASSIGN_OR_RETURN(auto lease, pool_.acquire());
    PgConn& conn = *lease;
    std::string begin = options.isolation == Isolation::kSerializable ? "BEGIN ISOLATION LEVEL SERIALIZABLE"
                                                                      : "BEGIN ISOLATION LEVEL READ COMMITTED";
    if (options.read_only) begin += " READ ONLY";
    PgFailure f;
    Status s = conn.simple(begin, &f);
    if (!s.is_ok()) {
      *retryable = f.retryable;  // a stale pooled connection: try another one
      lease.discard();
      return s;
    }
    PgTransaction tx(conn, options.read_only);
    Status fn_status;
    try {
      fn_status = fn(tx);
    } catch (...) {  // the caller's exception: closing the connection rolls the transaction back
      lease.discard();
      throw;
    }
    if (!tx.error().is_ok() || !fn_status.is_ok()) {
      if (!tx.connection_lost()) {
        PgFailure ignored;
        (void)conn.simple("ROLLBACK", &ignored);
      }
      if (!conn.healthy()) lease.discard();
      if (!tx.error().is_ok()) {
        *retryable = tx.retryable();
        return tx.error();
      }
      return fn_status;
    }
    std::string tag;
    s = conn.simple("COMMIT", &f, &tag);
    if (!s.is_ok()) {
      if (f.connection_lost) {
        lease.discard();
        return unavailable("postgres: commit outcome unknown (connection lost during COMMIT): " + s.message());
      }
      // A serialization failure at commit: nothing was committed, retry.
      *retryable = f.retryable;
      if (!conn.healthy()) lease.discard();
      return s.with_context("commit");
    }
    if (tag != "COMMIT") {
      if (!conn.healthy()) lease.discard();
      return internal_error(fmt::format("postgres: the server rolled the transaction back at COMMIT ({})", tag));
    }
    if (!conn.healthy()) lease.discard();
    return Status::ok();
  }

 private:
  const std::string url_;
  const DatabaseOptions options_;
  ConnectionPool<PgConn> pool_;
};

}  // namespace

Result<std::unique_ptr<Database>> open_postgres(const std::string& url, const std::string& display_url,
                                                const DatabaseOptions& options) {
  char* err = nullptr;
  PQconninfoOption* parsed = PQconninfoParse(url.c_str(), &err);
  if (!parsed) {
    std::string msg = err ? trim(err) : "out of memory";
    PQfreemem(err);
    // libpq quotes the URI, password included: show the redacted one instead.
    for (size_t pos = msg.find(url); pos != std::string::npos; pos = msg.find(url, pos + display_url.size())) {
      msg.replace(pos, url.size(), display_url);
    }
    return invalid_argument(fmt::format("bad PostgreSQL URL '{}': {}", display_url, msg));
  }
  PQconninfoFree(parsed);
  auto db = std::make_unique<PgDatabase>(url, display_url, options);
  NC_RETURN_IF_ERROR(db->check_connect());
  return std::unique_ptr<Database>(std::move(db));
}

}  // namespace nc::storage
