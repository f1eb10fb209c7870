// The storage suite, run on both backends: every TEST_P below runs once on SQLite (a temp file) and
// once on a real PostgreSQL server. ctest starts that server with tools/postgres.sh (fixture
// storage.pg_start) and passes its URL in the file NC_PG_URL_FILE; outside ctest set NC_TEST_PG_URL.
// Without a server the PostgreSQL cases FAIL (never skip): CI must prove both backends.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <barrier>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "storage/database.h"
#include "storage/migrate.h"
#include "all_migrations.h"
#include "tests/storage/test_database.h"

namespace nc::storage {

// ctest shows this in test names: storage.Postgres/StorageTest.RoundTripsEveryValueType/postgres.
void PrintTo(Dialect d, std::ostream* os) { *os << dialect_name(d); }

namespace {

#define ASSERT_OK(expr)                                   \
  do {                                                    \
    ::nc::Status s_ = (expr);                             \
    ASSERT_TRUE(s_.is_ok()) << #expr << ": " << s_.to_string(); \
  } while (0)

using test::add_url_param;
using test::must;
using test::test_name;

// A fresh directory for this test in this process.
std::string tmp_dir() { return test::tmp_dir("storage"); }

class StorageTest : public ::testing::TestWithParam<Dialect> {
 protected:
  void SetUp() override {
    test_db_.create(GetParam(), "storage");
    if (HasFatalFailure()) return;
    url_ = test_db_.url();
    admin_ = test_db_.admin();
    auto db = Database::open(url_);
    ASSERT_TRUE(db.is_ok()) << db.status().to_string();
    db_ = std::move(db).value();
    ASSERT_EQ(db_->dialect(), GetParam());
  }

  void TearDown() override {
    db_.reset();
    test_db_.drop(HasFailure());
  }

  std::unique_ptr<Database> open_again(const DatabaseOptions& options = {}) { return must(Database::open(url_, options)); }

  std::string blob_type() const { return GetParam() == Dialect::kSqlite ? "BLOB" : "BYTEA"; }

  void exec_ok(const std::string& sql, const Params& params = {}) {
    Status s = db_->transact([&](Transaction& tx) { return tx.exec(sql, params).status(); });
    ASSERT_TRUE(s.is_ok()) << sql << ": " << s.to_string();
  }

  int64_t count(const std::string& table) {
    return must(db_->read([&](Transaction& tx) -> Result<int64_t> {
      NC_ASSIGN_OR_RETURN(Row row, tx.query_one("SELECT COUNT(*) FROM " + table));
      return row.get_int(0);
    }));
  }

  test::TestDatabase test_db_;
  std::string url_;
  Database* admin_ = nullptr;  // PostgreSQL only: outside the test's schema
  std::unique_ptr<Database> db_;
};

TEST_P(StorageTest, RoundTripsEveryValueType) {
  exec_ok("CREATE TABLE vals (id BIGINT PRIMARY KEY, i BIGINT, d DOUBLE PRECISION, t TEXT, b " + blob_type() + ")");
  std::mt19937_64 rng(42);
  Blob big(8 << 20);
  for (auto& byte : big) byte = static_cast<uint8_t>(rng());
  Blob all_bytes(256);
  for (int i = 0; i < 256; ++i) all_bytes[i] = static_cast<uint8_t>(i);
  std::string utf8 = "h\xc3\xa9llo w\xc3\xb6rld \xe2\x80\x94 \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xf0\x9f\x9a\x80 'quotes' \"dq\" \\ ;--";
  std::string long_text(100000, 'x');
  struct Case {
    SqlValue i, d, t, b;
  };
  std::vector<Case> cases = {
      {kNull, kNull, kNull, kNull},
      {int64_t{0}, 0.0, std::string(), Blob()},
      {std::numeric_limits<int64_t>::min(), -1e300, utf8, all_bytes},
      {std::numeric_limits<int64_t>::max(), 3.141592653589793, long_text, big},
      {int64_t{-1}, 5e-324, std::string("plain"), to_blob(std::string("\0\x01\xff", 3))},
      {int64_t{1} << 53, std::numeric_limits<double>::infinity(), std::string("\t\n"), Blob{0}},
      {int64_t{42}, 0.1, std::string("x"), Blob{0x5c, 0x78}},  // "\x": bytea's hex prefix as data
  };
  ASSERT_OK(db_->transact([&](Transaction& tx) -> Status {
    for (size_t k = 0; k < cases.size(); ++k) {
      const Case& c = cases[k];
      NC_RETURN_IF_ERROR(tx.exec("INSERT INTO vals (id, i, d, t, b) VALUES ($1, $2, $3, $4, $5)",
                                 {static_cast<int64_t>(k), c.i, c.d, c.t, c.b})
                             .status());
    }
    return Status::ok();
  }));
  Rows rows = must(db_->read([](Transaction& tx) { return tx.query("SELECT id, i, d, t, b FROM vals ORDER BY id"); }));
  ASSERT_EQ(rows.size(), cases.size());
  for (size_t k = 0; k < cases.size(); ++k) {
    SCOPED_TRACE("case " + std::to_string(k));
    const Row& row = rows[k];
    ASSERT_EQ(row.size(), 5u);
    EXPECT_EQ(must(row.get_int("id")), static_cast<int64_t>(k));
    EXPECT_TRUE(row.at(1) == cases[k].i) << sql_type_name(row.at(1));
    EXPECT_TRUE(row.at(2) == cases[k].d) << sql_type_name(row.at(2));
    EXPECT_TRUE(row.at(3) == cases[k].t) << sql_type_name(row.at(3));
    EXPECT_TRUE(row.at(4) == cases[k].b) << sql_type_name(row.at(4)) << " size "
                                         << (row.at(4).index() == 4 ? std::get<Blob>(row.at(4)).size() : 0);
  }
  // Empty text and empty blob are values, not NULL.
  EXPECT_EQ(must(rows[1].get_text("t")), "");
  EXPECT_TRUE(must(rows[1].get_blob("b")).empty());
  EXPECT_EQ(must(rows[3].get_blob(4)).size(), big.size());
}

TEST_P(StorageTest, ParameterTypesComeBackAsTheyWent) {
  // Without a table (each backend types a bare parameter from its value).
  Row row = must(db_->read([](Transaction& tx) {
    return tx.query_one("SELECT $1 AS i, $2 AS d, $3 AS t, $4 AS b",
                        {int64_t{7}, 2.5, std::string("seven"), Blob{1, 2, 3}});
  }));
  EXPECT_EQ(must(row.get_int("i")), 7);
  EXPECT_EQ(must(row.get_double("d")), 2.5);
  EXPECT_EQ(must(row.get_text("t")), "seven");
  EXPECT_EQ(must(row.get_blob("b")), (Blob{1, 2, 3}));
  // Aggregates of BIGINT come back as integers on both (PostgreSQL's SUM is numeric).
  exec_ok("CREATE TABLE money (micros BIGINT NOT NULL)");
  exec_ok("INSERT INTO money (micros) VALUES ($1), ($2)", {int64_t{4'000'000'000'000}, int64_t{5}});
  Row sum = must(db_->read([](Transaction& tx) { return tx.query_one("SELECT SUM(micros) FROM money"); }));
  EXPECT_EQ(must(sum.get_int(0)), 4'000'000'000'005);
}

TEST_P(StorageTest, RowGettersReportTypeMismatchAndNull) {
  Row row = must(db_->read([](Transaction& tx) {
    return tx.query_one("SELECT $1 AS n, $2 AS t, $3 AS i", {kNull, std::string("abc"), int64_t{3}});
  }));
  Result<int64_t> r = row.get_int("t");
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("expected integer, got text"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("(t)"), std::string::npos) << r.status().message();
  EXPECT_FALSE(row.get_text("n").is_ok());
  EXPECT_FALSE(row.get_text(7).is_ok());
  EXPECT_FALSE(row.get_int("missing").is_ok());
  EXPECT_TRUE(row.is_null(0));
  EXPECT_EQ(must(row.get_optional_text("n")), std::nullopt);
  EXPECT_EQ(must(row.get_optional_int("i")), std::optional<int64_t>(3));
  EXPECT_EQ(must(row.get_double("i")), 3.0);  // integers widen to double
  EXPECT_FALSE(row.get_optional_int("t").is_ok());
}

TEST_P(StorageTest, PlaceholdersOutOfOrderAndRepeated) {
  exec_ok("CREATE TABLE p (a BIGINT, b TEXT, c BIGINT)");
  exec_ok("INSERT INTO p (a, b, c) VALUES ($3, $1, $2)", {std::string("bee"), int64_t{30}, int64_t{10}});
  Row row = must(db_->read([](Transaction& tx) {
    return tx.query_one("SELECT a, b, c FROM p WHERE c = $2 AND b = $1", {std::string("bee"), int64_t{30}});
  }));
  EXPECT_EQ(must(row.get_int("a")), 10);
  EXPECT_EQ(must(row.get_text("b")), "bee");
  EXPECT_EQ(must(row.get_int("c")), 30);
  Row n = must(db_->read([](Transaction& tx) {
    return tx.query_one("SELECT COUNT(*) FROM p WHERE a = $1 OR c = $1 OR a + $1 = $2", {int64_t{30}, int64_t{-1}});
  }));
  EXPECT_EQ(must(n.get_int(0)), 1);
  // Too few parameters is the caller's error, not a crash or an outage.
  Status s = db_->read([](Transaction& tx) { return tx.query("SELECT a FROM p WHERE a = $2", {int64_t{1}}).status(); });
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.to_string();
}

TEST_P(StorageTest, ExecCountsChangedRows) {
  exec_ok("CREATE TABLE r (k BIGINT PRIMARY KEY, v BIGINT)");
  Result<int64_t> n = db_->transact([](Transaction& tx) -> Result<int64_t> {
    NC_ASSIGN_OR_RETURN(int64_t inserted, tx.exec("INSERT INTO r (k, v) VALUES (1, 0), (2, 0), (3, 5)"));
    if (inserted != 3) return internal_error("inserted " + std::to_string(inserted));
    NC_ASSIGN_OR_RETURN(int64_t none, tx.exec("UPDATE r SET v = 1 WHERE k > 100"));
    if (none != 0) return internal_error("updated " + std::to_string(none));
    NC_ASSIGN_OR_RETURN(int64_t selected, tx.exec("SELECT * FROM r"));
    if (selected != 0) return internal_error("select counted " + std::to_string(selected));
    return tx.exec("UPDATE r SET v = v + 1 WHERE v = 0");
  });
  EXPECT_EQ(must(std::move(n)), 2);
}

TEST_P(StorageTest, UniqueViolationIsAlreadyExistsAndAbortsTheTransaction) {
  exec_ok("CREATE TABLE u (k TEXT PRIMARY KEY, v BIGINT)");
  exec_ok("INSERT INTO u (k, v) VALUES ('a', 1)");
  Status later;
  Status s = db_->transact([&](Transaction& tx) -> Status {
    NC_RETURN_IF_ERROR(tx.exec("INSERT INTO u (k, v) VALUES ('b', 2)").status());
    Status dup = tx.exec("INSERT INTO u (k, v) VALUES ('a', 3)").status();
    later = tx.exec("INSERT INTO u (k, v) VALUES ('c', 4)").status();
    return dup;
  });
  EXPECT_EQ(s.code(), StatusCode::kAlreadyExists) << s.to_string();
  EXPECT_EQ(later.code(), StatusCode::kFailedPrecondition) << later.to_string();
  EXPECT_EQ(count("u"), 1);  // 'b' was rolled back with the rest
  // Swallowing the error does not commit the transaction either.
  s = db_->transact([&](Transaction& tx) -> Status {
    (void)tx.exec("INSERT INTO u (k, v) VALUES ('d', 1)");
    (void)tx.exec("INSERT INTO u (k, v) VALUES ('a', 1)");
    return Status::ok();
  });
  EXPECT_EQ(s.code(), StatusCode::kAlreadyExists) << s.to_string();
  EXPECT_EQ(count("u"), 1);
  // The portable upsert.
  exec_ok("INSERT INTO u (k, v) VALUES ('a', 9) ON CONFLICT (k) DO UPDATE SET v = excluded.v");
  exec_ok("INSERT INTO u (k, v) VALUES ('a', 10) ON CONFLICT (k) DO NOTHING");
  Row row = must(db_->read([](Transaction& tx) { return tx.query_one("SELECT v FROM u WHERE k = 'a'"); }));
  EXPECT_EQ(must(row.get_int(0)), 9);
}

TEST_P(StorageTest, ConstraintViolationsMapToStatusCodes) {
  exec_ok("CREATE TABLE parent (id BIGINT PRIMARY KEY)");
  exec_ok("CREATE TABLE child (id BIGINT PRIMARY KEY, parent_id BIGINT NOT NULL REFERENCES parent (id), "
          "n BIGINT CHECK (n >= 0))");
  exec_ok("INSERT INTO parent (id) VALUES (1)");
  auto insert = [&](const Params& p) {
    return db_->transact([&](Transaction& tx) {
      return tx.exec("INSERT INTO child (id, parent_id, n) VALUES ($1, $2, $3)", p).status();
    });
  };
  EXPECT_EQ(insert({int64_t{1}, int64_t{2}, int64_t{0}}).code(), StatusCode::kFailedPrecondition);  // FK
  EXPECT_EQ(insert({int64_t{1}, kNull, int64_t{0}}).code(), StatusCode::kInvalidArgument);          // NOT NULL
  EXPECT_EQ(insert({int64_t{1}, int64_t{1}, int64_t{-1}}).code(), StatusCode::kInvalidArgument);    // CHECK
  ASSERT_OK(insert({int64_t{1}, int64_t{1}, int64_t{0}}));
  EXPECT_EQ(insert({int64_t{1}, int64_t{1}, int64_t{0}}).code(), StatusCode::kAlreadyExists);
  Status del = db_->transact([](Transaction& tx) { return tx.exec("DELETE FROM parent WHERE id = 1").status(); });
  EXPECT_EQ(del.code(), StatusCode::kFailedPrecondition) << del.to_string();
}

TEST_P(StorageTest, BadSqlIsInternalWithTheDatabaseMessage) {
  Status s = db_->read([](Transaction& tx) { return tx.query("SELEC 1").status(); });
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  EXPECT_NE(s.message().find("syntax"), std::string::npos) << s.message();
  s = db_->read([](Transaction& tx) { return tx.query("SELECT * FROM no_such_table").status(); });
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  EXPECT_NE(s.message().find("no_such_table"), std::string::npos) << s.message();
  s = db_->transact([](Transaction& tx) { return tx.exec("CREATE TABLE a (x BIGINT); CREATE TABLE b (y BIGINT)").status(); });
  EXPECT_FALSE(s.is_ok());  // one statement per exec; scripts go through exec_script
}

TEST_P(StorageTest, RollbackOnErrorLeavesNothing) {
  exec_ok("CREATE TABLE rb (k BIGINT PRIMARY KEY)");
  Status s = db_->transact([](Transaction& tx) -> Status {
    for (int64_t k = 0; k < 10; ++k) NC_RETURN_IF_ERROR(tx.exec("INSERT INTO rb (k) VALUES ($1)", {k}).status());
    return resource_exhausted("budget exceeded");  // the caller's own error
  });
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(s.message(), "budget exceeded");
  EXPECT_EQ(count("rb"), 0);
  Result<int64_t> r = db_->transact([](Transaction& tx) -> Result<int64_t> {
    NC_RETURN_IF_ERROR(tx.exec("INSERT INTO rb (k) VALUES (1)").status());
    return not_found("no such org");
  });
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(count("rb"), 0);
}

TEST_P(StorageTest, ReadOnlyTransactionsRefuseWrites) {
  exec_ok("CREATE TABLE ro (k BIGINT)");
  Status s = db_->read([](Transaction& tx) { return tx.exec("INSERT INTO ro (k) VALUES (1)").status(); });
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.to_string();
  s = db_->read([](Transaction& tx) { return tx.exec_script("DELETE FROM ro"); });
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.to_string();
  EXPECT_EQ(count("ro"), 0);
}

TEST_P(StorageTest, ExceptionInFnRollsBackAndPropagates) {
  exec_ok("CREATE TABLE ex (k BIGINT)");
  for (int i = 0; i < 3; ++i) {  // more than once: the connection must come back clean
    EXPECT_THROW((void)db_->transact([](Transaction& tx) -> Status {
      (void)tx.exec("INSERT INTO ex (k) VALUES (1)");
      throw std::runtime_error("caller bug");
    }),
                 std::runtime_error);
  }
  EXPECT_EQ(count("ex"), 0);
  exec_ok("INSERT INTO ex (k) VALUES (2)");
  EXPECT_EQ(count("ex"), 1);
}

TEST_P(StorageTest, NestedTransactionIsRefused) {
  Status inner;
  ASSERT_OK(db_->transact([&](Transaction&) {
    inner = db_->read([](Transaction& tx) { return tx.query("SELECT 1").status(); });
    return Status::ok();
  }));
  EXPECT_EQ(inner.code(), StatusCode::kFailedPrecondition) << inner.to_string();
}

TEST_P(StorageTest, ConcurrentReadModifyWriteIsSerializable) {
  exec_ok("CREATE TABLE counter (id BIGINT PRIMARY KEY, v BIGINT NOT NULL)");
  exec_ok("INSERT INTO counter (id, v) VALUES (1, 0)");
  constexpr int kThreads = 8;
  constexpr int kIncrements = 200;
  std::atomic<int> attempts{0};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  std::string first_error;
  std::mutex mu;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kIncrements; ++i) {
        Status s = db_->transact([&](Transaction& tx) -> Status {
          attempts.fetch_add(1);
          NC_ASSIGN_OR_RETURN(Row row, tx.query_one("SELECT v FROM counter WHERE id = 1"));
          NC_ASSIGN_OR_RETURN(int64_t v, row.get_int(0));
          return tx.exec("UPDATE counter SET v = $1 WHERE id = 1", {v + 1}).status();
        });
        if (!s.is_ok()) {
          failures.fetch_add(1);
          std::lock_guard<std::mutex> lock(mu);
          if (first_error.empty()) first_error = s.to_string();
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0) << first_error;
  Row row = must(db_->read([](Transaction& tx) { return tx.query_one("SELECT v FROM counter WHERE id = 1"); }));
  EXPECT_EQ(must(row.get_int(0)), kThreads * kIncrements);
  std::printf("[%s] %d transactions took %d attempts\n", std::string(dialect_name(GetParam())).c_str(),
              kThreads * kIncrements, attempts.load());
}

TEST_P(StorageTest, ConcurrentReadersSeeConsistentSnapshots) {
  // Two rows always sum to 100 (transfers between them); readers on other connections never see a
  // half-done transfer.
  exec_ok("CREATE TABLE acct (id BIGINT PRIMARY KEY, bal BIGINT NOT NULL)");
  exec_ok("INSERT INTO acct (id, bal) VALUES (1, 100), (2, 0)");
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0}, reads{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&] {
      while (!stop.load()) {
        Result<int64_t> sum = db_->read([](Transaction& tx) -> Result<int64_t> {
          NC_ASSIGN_OR_RETURN(Row a, tx.query_one("SELECT bal FROM acct WHERE id = 1"));
          NC_ASSIGN_OR_RETURN(Row b, tx.query_one("SELECT bal FROM acct WHERE id = 2"));
          NC_ASSIGN_OR_RETURN(int64_t x, a.get_int(0));
          NC_ASSIGN_OR_RETURN(int64_t y, b.get_int(0));
          return x + y;
        });
        if (!sum.is_ok() || *sum != 100) bad.fetch_add(1);
        reads.fetch_add(1);
      }
    });
  }
  for (int i = 0; i < 200; ++i) {
    Status s = db_->transact([&](Transaction& tx) -> Status {
      int64_t d = i % 2 == 0 ? 1 : -1;
      NC_RETURN_IF_ERROR(tx.exec("UPDATE acct SET bal = bal - $1 WHERE id = 1", {d}).status());
      return tx.exec("UPDATE acct SET bal = bal + $1 WHERE id = 2", {d}).status();
    });
    EXPECT_TRUE(s.is_ok()) << s.to_string();
  }
  stop.store(true);
  for (auto& t : readers) t.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_GT(reads.load(), 0);
}

TEST_P(StorageTest, CommittedDataSurvivesReopening) {
  exec_ok("CREATE TABLE d (k BIGINT PRIMARY KEY, v TEXT)");
  exec_ok("INSERT INTO d (k, v) VALUES (1, 'durable')");
  db_.reset();
  db_ = open_again();
  Row row = must(db_->read([](Transaction& tx) { return tx.query_one("SELECT v FROM d WHERE k = 1"); }));
  EXPECT_EQ(must(row.get_text(0)), "durable");
  // And a second instance open at the same time sees commits of the first.
  auto other = open_again();
  exec_ok("INSERT INTO d (k, v) VALUES (2, 'seen')");
  Row seen = must(other->read([](Transaction& tx) { return tx.query_one("SELECT v FROM d WHERE k = 2"); }));
  EXPECT_EQ(must(seen.get_text(0)), "seen");
}

TEST_P(StorageTest, MigrationsApplyInOrderOnce) {
  std::vector<Migration> list = {
      {1, "create_a", "CREATE TABLE a (x BIGINT); INSERT INTO a (x) VALUES (1)", "", ""},
      {2, "per_dialect", "", "CREATE TABLE b (y BLOB)", "CREATE TABLE b (y BYTEA)"},
      {5, "alter_a", "ALTER TABLE a ADD COLUMN z TEXT; UPDATE a SET z = 'v5'", "", ""},
  };
  EXPECT_EQ(must(schema_version(*db_)), 0);
  ASSERT_OK(migrate(*db_, {list[0]}));
  EXPECT_EQ(must(schema_version(*db_)), 1);
  ASSERT_OK(migrate(*db_, list));
  ASSERT_OK(migrate(*db_, list));  // idempotent
  EXPECT_EQ(must(schema_version(*db_)), 5);
  EXPECT_EQ(count("a"), 1);  // version 1's INSERT ran once
  Rows rows = must(db_->read([](Transaction& tx) {
    return tx.query("SELECT version, name, applied_at FROM schema_migrations ORDER BY version");
  }));
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(must(rows[1].get_text("name")), "per_dialect");
  EXPECT_GT(must(rows[2].get_int("applied_at")), 1'600'000'000'000'000);
  // A renamed migration is refused; so is a list out of order.
  std::vector<Migration> renamed = list;
  renamed[1].name = "renamed";
  EXPECT_EQ(migrate(*db_, renamed).code(), StatusCode::kFailedPrecondition);
  std::vector<Migration> unordered = {list[2], list[0]};
  EXPECT_EQ(migrate(*db_, unordered).code(), StatusCode::kInvalidArgument);
  // A failing migration leaves neither its changes nor its record.
  std::vector<Migration> failing = list;
  failing.push_back({6, "broken", "CREATE TABLE c (x BIGINT); INSERT INTO nowhere VALUES (1)", "", ""});
  EXPECT_FALSE(migrate(*db_, failing).is_ok());
  EXPECT_EQ(must(schema_version(*db_)), 5);
  Status c_exists = db_->read([](Transaction& tx) { return tx.query("SELECT * FROM c").status(); });
  EXPECT_FALSE(c_exists.is_ok());
}

TEST_P(StorageTest, ConcurrentMigrationsApplyOnce) {
  constexpr int kProcesses = 4;  // Database instances, as if several replicas started at once
  std::vector<std::unique_ptr<Database>> dbs;
  for (int i = 0; i < kProcesses; ++i) dbs.push_back(open_again());
  std::vector<Migration> list = nc::test::all_migrations();
  list.push_back({1000, "counter", "CREATE TABLE applied (n BIGINT); INSERT INTO applied (n) VALUES (1)", "", ""});
  std::barrier start(kProcesses);
  std::vector<Status> results(kProcesses);
  std::vector<std::thread> threads;
  for (int i = 0; i < kProcesses; ++i) {
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      results[i] = migrate(*dbs[i], list);
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kProcesses; ++i) EXPECT_TRUE(results[i].is_ok()) << results[i].to_string();
  EXPECT_EQ(count("applied"), 1);
  EXPECT_EQ(count("schema_migrations"), static_cast<int64_t>(list.size()));
}

TEST_P(StorageTest, TenancySchemaEnforcesTenantBoundaries) {
  ASSERT_OK(migrate(*db_, nc::test::all_migrations()));
  Blob hash_a(32, 0xaa), hash_b(32, 0xbb);
  ASSERT_OK(db_->transact([&](Transaction& tx) -> Status {
    NC_RETURN_IF_ERROR(tx.exec("INSERT INTO organizations (id, name, created_at) VALUES ('org_a', 'A', 1), "
                               "('org_b', 'B', 1)")
                           .status());
    NC_RETURN_IF_ERROR(
        tx.exec("INSERT INTO projects (id, org_id, name, created_at) VALUES ('proj_a', 'org_a', 'default', 1)").status());
    return tx
        .exec("INSERT INTO api_keys (id, org_id, project_id, kind, name, key_hash, redacted, scopes, created_at) "
              "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
              {std::string("key_1"), std::string("org_a"), std::string("proj_a"), std::string("inference"),
               std::string("ci"), hash_a, std::string("nc-inference-...abcd"), std::string("{\"models\":[\"*\"]}"),
               int64_t{1}})
        .status();
  }));
  auto insert_key = [&](const std::string& id, const std::string& org, const SqlValue& project, const std::string& kind,
                        const Blob& hash) {
    return db_->transact([&](Transaction& tx) {
      return tx
          .exec("INSERT INTO api_keys (id, org_id, project_id, kind, name, key_hash, redacted, created_at) "
                "VALUES ($1, $2, $3, $4, 'k', $5, 'r', 1)",
                {id, org, project, kind, hash})
          .status();
    });
  };
  // Org B cannot get a key into org A's project (composite foreign key).
  EXPECT_EQ(insert_key("key_2", "org_b", std::string("proj_a"), "inference", hash_b).code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(insert_key("key_2", "org_b", kNull, "inference", hash_a).code(), StatusCode::kAlreadyExists);  // same hash
  EXPECT_EQ(insert_key("key_2", "org_b", kNull, "root", hash_b).code(), StatusCode::kInvalidArgument);     // kind
  EXPECT_EQ(insert_key("key_2", "org_b", kNull, "admin", Blob(31, 1)).code(), StatusCode::kInvalidArgument);
  ASSERT_OK(insert_key("key_2", "org_b", kNull, "admin", hash_b));
  Row key = must(db_->read([&](Transaction& tx) {
    return tx.query_one("SELECT org_id, project_id, scopes, revoked_at FROM api_keys WHERE key_hash = $1", {hash_a});
  }));
  EXPECT_EQ(must(key.get_text("org_id")), "org_a");
  EXPECT_EQ(must(key.get_text("scopes")), "{\"models\":[\"*\"]}");
  EXPECT_EQ(must(key.get_optional_int("revoked_at")), std::nullopt);
  Row defaults = must(db_->read([&](Transaction& tx) {
    return tx.query_one("SELECT scopes FROM api_keys WHERE id = 'key_2'");
  }));
  EXPECT_EQ(must(defaults.get_text(0)), "{}");
  exec_ok("INSERT INTO audit_log (id, org_id, actor_key_id, action, target, before_json, after_json, at) "
          "VALUES ('audit_1', 'org_a', 'key_1', 'api_key.create', 'api_key:key_1', NULL, '{}', 2)");
  EXPECT_EQ(count("audit_log"), 1);
}

TEST_P(StorageTest, ResultTypedTransactionsReturnTheirValue) {
  exec_ok("CREATE TABLE kv (k TEXT PRIMARY KEY, v BIGINT)");
  Result<std::string> r = db_->transact([](Transaction& tx) -> Result<std::string> {
    NC_RETURN_IF_ERROR(tx.exec("INSERT INTO kv (k, v) VALUES ('x', 1)").status());
    return std::string("done");
  });
  EXPECT_EQ(must(std::move(r)), "done");
  Result<std::optional<Row>> none = db_->read([](Transaction& tx) {
    return tx.query_optional("SELECT v FROM kv WHERE k = 'nope'");
  });
  EXPECT_FALSE(must(std::move(none)).has_value());
  Result<Row> missing = db_->read([](Transaction& tx) { return tx.query_one("SELECT v FROM kv WHERE k = 'nope'"); });
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
}

// Cases that only PostgreSQL has (a server connection to lose).
class PostgresStorageTest : public StorageTest {};

TEST_P(PostgresStorageTest, LostConnectionIsRetried) {
  exec_ok("CREATE TABLE lc (k BIGINT)");
  // The server terminates every pooled connection of this instance; the next transaction still works
  // (the lost connection is dropped and the transaction runs again on a new one).
  std::unique_ptr<Database> victim = must(Database::open(add_url_param(url_, "application_name=nc_victim")));
  ASSERT_OK(victim->read([](Transaction& tx) { return tx.query("SELECT 1").status(); }));
  Rows killed = must(admin_->transact([](Transaction& tx) {
    return tx.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'nc_victim'");
  }));
  ASSERT_EQ(killed.size(), 1u);  // the victim's one pooled connection
  EXPECT_EQ(must(killed[0].get_int(0)), 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // termination is asynchronous
  ASSERT_OK(victim->transact([](Transaction& tx) { return tx.exec("INSERT INTO lc (k) VALUES (1)").status(); }));
  EXPECT_EQ(count("lc"), 1);
}

// ctest selects the PostgreSQL cases by the "Postgres/" prefix (they need the `pg` fixture).
TEST_P(PostgresStorageTest, UnpreparedStatementsWorkTheSame) {
  DatabaseOptions options;
  options.postgres_prepare = false;  // PQexecParams, as behind PgBouncer in transaction mode
  auto db = open_again(options);
  ASSERT_OK(db->transact([](Transaction& tx) -> Status {
    NC_RETURN_IF_ERROR(tx.exec("CREATE TABLE up (k BIGINT PRIMARY KEY, b BYTEA, t TEXT)").status());
    for (int64_t k = 0; k < 3; ++k) {
      NC_RETURN_IF_ERROR(tx.exec("INSERT INTO up (k, b, t) VALUES ($1, $2, $3)", {k, Blob{1, 2}, std::string("x")}).status());
    }
    return Status::ok();
  }));
  Row row = must(db->read([](Transaction& tx) { return tx.query_one("SELECT COUNT(*), MAX(k) FROM up WHERE b = $1", {Blob{1, 2}}); }));
  EXPECT_EQ(must(row.get_int(0)), 3);
  EXPECT_EQ(must(row.get_int(1)), 2);
  Status dup = db->transact([](Transaction& tx) { return tx.exec("INSERT INTO up (k) VALUES (1)").status(); });
  EXPECT_EQ(dup.code(), StatusCode::kAlreadyExists);
}

INSTANTIATE_TEST_SUITE_P(Sqlite, StorageTest, ::testing::Values(Dialect::kSqlite));
INSTANTIATE_TEST_SUITE_P(Postgres, StorageTest, ::testing::Values(Dialect::kPostgres));
INSTANTIATE_TEST_SUITE_P(Postgres, PostgresStorageTest, ::testing::Values(Dialect::kPostgres));

// ---- opening: bad URLs and unreachable servers fail with a clear Status, never crash ----

TEST(StorageOpen, RejectsBadUrls) {
  struct Case {
    std::string url;
    StatusCode code;
  };
  std::string dir = tmp_dir();
  {
    std::ofstream garbage(dir + "/garbage.db");
    garbage << std::string(4096, 'g');
  }
  std::vector<Case> cases = {
      {"", StatusCode::kInvalidArgument},
      {"sqlite:", StatusCode::kInvalidArgument},
      {"mysql://localhost/db", StatusCode::kInvalidArgument},
      {"sqlite:/nonexistent-dir/sub/x.db", StatusCode::kUnavailable},
      {dir, StatusCode::kUnavailable},  // a directory
      {dir + "/garbage.db", StatusCode::kDataLoss},
      {"postgresql://[::1/db", StatusCode::kInvalidArgument},
      {"postgresql://user:secret@[::1/db", StatusCode::kInvalidArgument},
      {"postgres://nobody:secret@127.0.0.1:1/db?connect_timeout=3", StatusCode::kUnavailable},
  };
  for (const Case& c : cases) {
    Result<std::unique_ptr<Database>> db = Database::open(c.url);
    ASSERT_FALSE(db.is_ok()) << c.url;
    EXPECT_EQ(db.status().code(), c.code) << c.url << ": " << db.status().to_string();
    EXPECT_FALSE(db.status().message().empty());
    EXPECT_EQ(db.status().message().find("secret"), std::string::npos) << "password leaked: " << db.status().message();
    std::printf("%s -> %s\n", c.url.c_str(), db.status().to_string().c_str());
  }
}

TEST(StorageOpen, PlainPathAndSqliteUrlOpenTheSameFile) {
  std::string path = tmp_dir() + "/same.db";
  {
    auto db = must(Database::open(path));
    ASSERT_OK(db->transact([](Transaction& tx) { return tx.exec_script("CREATE TABLE t (x BIGINT); INSERT INTO t VALUES (7)"); }));
  }
  auto db = must(Database::open("sqlite://" + path));
  Row row = must(db->read([](Transaction& tx) { return tx.query_one("SELECT x FROM t"); }));
  EXPECT_EQ(must(row.get_int(0)), 7);
  // The writer connection's settings (transact runs there).
  Row mode = must(db->transact([](Transaction& tx) { return tx.query_one("PRAGMA journal_mode"); }));
  EXPECT_EQ(must(mode.get_text(0)), "wal");
  Row sync = must(db->transact([](Transaction& tx) { return tx.query_one("PRAGMA synchronous"); }));
  EXPECT_EQ(must(sync.get_int(0)), 2);  // FULL
  Row fk = must(db->transact([](Transaction& tx) { return tx.query_one("PRAGMA foreign_keys"); }));
  EXPECT_EQ(must(fk.get_int(0)), 1);
}

// The background checkpointer copies the WAL into the database file while the writer keeps going:
// without it (wal_autocheckpoint is off on the writer) the WAL would grow without bound and every
// read would search an ever longer WAL index.
TEST(StorageOpen, SqliteBackgroundCheckpointCopiesTheWal) {
  const std::string path = tmp_dir() + "/ckpt.db";
  auto db = must(Database::open(path));
  ASSERT_OK(db->transact([](Transaction& tx) { return tx.exec_script("CREATE TABLE t (x BIGINT, pad TEXT)"); }));
  const std::string pad(1000, 'p');
  for (int i = 0; i < 2000; ++i) {
    ASSERT_OK(db->transact([&](Transaction& tx) { return tx.exec("INSERT INTO t VALUES ($1, $2)", {int64_t{i}, pad}).status(); }));
  }
  // ~2 MB of rows: the checkpointer (every 100 ms) must have moved them into the main file.
  uintmax_t size = 0;
  for (int i = 0; i < 50 && size < 2000 * 1000; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    size = std::filesystem::file_size(path);
  }
  EXPECT_GE(size, 2000u * 1000u) << "the WAL was never checkpointed into " << path;
}

// A writer that never pauses still gets its WAL restarted from the beginning now and then: the file
// stops growing near sqlite_wal_restart_pages instead of holding every page ever written.
TEST(StorageOpen, SqliteWalStartsOverUnderContinuousWrites) {
  const std::string path = tmp_dir() + "/restart.db";
  DatabaseOptions options;
  options.sqlite_wal_restart_pages = 256;  // 1 MiB of 4 KiB pages
  auto db = must(Database::open(path, options));
  ASSERT_OK(db->transact([](Transaction& tx) { return tx.exec_script("CREATE TABLE t (x BIGINT, pad TEXT)"); }));
  const std::string pad(4000, 'p');
  // ~1 page per row, 10 rows per transaction with a 1 ms pause: ~20-30 MiB/s here, until 48 MiB.
  const int64_t target_rows = (int64_t{48} << 20) / 4096;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  int64_t rows = 0;
  while (rows < target_rows && std::chrono::steady_clock::now() < give_up) {
    ASSERT_OK(db->transact([&](Transaction& tx) -> Status {
      for (int i = 0; i < 10; ++i) NC_RETURN_IF_ERROR(tx.exec("INSERT INTO t VALUES ($1, $2)", {rows + i, pad}).status());
      return Status::ok();
    }));
    rows += 10;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  const uintmax_t wal = std::filesystem::file_size(path + "-wal");
  std::printf("%lld rows (%.1f MiB) written; WAL file %.1f MiB\n", static_cast<long long>(rows), rows * 4096.0 / 1048576,
              wal / 1048576.0);
  ASSERT_GE(rows, target_rows) << "too few writes in 60 s to show anything";
  EXPECT_LT(wal, uintmax_t{16} << 20) << "the WAL kept growing";
}

}  // namespace
}  // namespace nc::storage
