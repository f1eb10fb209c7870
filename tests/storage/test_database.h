// Test support shared by the suites that run on both storage backends (storage_test, tenant_store_test):
// a database of the current test's own — a SQLite file in a fresh directory, or a fresh schema on the
// PostgreSQL server of ctest's `pg` fixture (tools/postgres.sh writes its URL to NC_PG_URL_FILE; outside
// ctest set NC_TEST_PG_URL). Without a server the PostgreSQL cases fail, never skip.
// Needs NC_TEST_TMP and NC_PG_URL_FILE defined by the test target. Single-threaded test code.
#pragma once
#include <gtest/gtest.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>

#include "storage/database.h"

namespace nc::storage::test {

// Unwraps a Result; a failure ends the test (GoogleTest reports the exception as a failure).
template <typename T>
T must(Result<T> r) {
  if (!r.is_ok()) throw std::runtime_error("unexpected error: " + r.status().to_string());
  return std::move(r).value();
}

inline std::string test_name() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = std::string(info->test_suite_name()) + "." + info->name();
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return name;
}

// A fresh directory NC_TEST_TMP/<area>/<pid>/<test> for this test in this process. The process's
// <area>/<pid> directory is removed at exit when every test passed (a failing run keeps it).
inline std::string tmp_dir(const std::string& area) {
  static std::string root;  // one area per test binary
  root = std::string(NC_TEST_TMP) + "/" + area + "/" + std::to_string(::getpid());
  static const bool registered = (std::atexit([] {
    if (!::testing::UnitTest::GetInstance()->Passed()) return;
    std::error_code ec;
    std::filesystem::remove_all(root, ec);
  }), true);
  (void)registered;
  std::string d = root + "/" + test_name();
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

// The PostgreSQL server's URL: $NC_TEST_PG_URL, else the file tools/postgres.sh wrote; "" if none.
inline std::string pg_base_url() {
  if (const char* env = std::getenv("NC_TEST_PG_URL"); env && *env) return env;
  std::ifstream in(NC_PG_URL_FILE);
  std::string url;
  std::getline(in, url);
  return url;
}

inline std::string add_url_param(const std::string& url, const std::string& param) {
  return url + (url.find('?') == std::string::npos ? "?" : "&") + param;
}

// The current test's own database. create() from SetUp (check HasFatalFailure after it), drop() from
// TearDown: a passing test's SQLite directory is removed (a failing one's is kept for a look), a
// PostgreSQL schema always.
class TestDatabase {
 public:
  void create(Dialect dialect, const std::string& area) {
    if (dialect == Dialect::kSqlite) {
      dir_ = tmp_dir(area);
      url_ = "sqlite:" + dir_ + "/test.db";
      return;
    }
    const std::string base = pg_base_url();
    ASSERT_FALSE(base.empty()) << "no PostgreSQL server: run the suite through ctest (fixture storage.pg_start), "
                                  "or `tools/postgres.sh start DIR` and set NC_TEST_PG_URL";
    // Each test gets its own schema (ctest runs tests as parallel processes on one server).
    schema_ = "t" + std::to_string(::getpid()) + "_" + std::to_string(std::hash<std::string>()(test_name()) % 1000000007);
    admin_ = must(Database::open(base));
    const Status s = admin_->transact([&](Transaction& tx) {
      return tx.exec_script("DROP SCHEMA IF EXISTS " + schema_ + " CASCADE; CREATE SCHEMA " + schema_);
    });
    ASSERT_TRUE(s.is_ok()) << s.to_string();
    url_ = add_url_param(base, "options=-csearch_path%3D" + schema_);
  }

  void drop(bool test_failed) {
    if (!dir_.empty() && !test_failed) std::filesystem::remove_all(dir_);
    if (admin_) {
      Status s = admin_->transact([&](Transaction& tx) { return tx.exec_script("DROP SCHEMA " + schema_ + " CASCADE"); });
      EXPECT_TRUE(s.is_ok()) << s.to_string();
    }
  }

  const std::string& url() const { return url_; }
  // PostgreSQL: a connection outside the test's schema (to the same server); nullptr on SQLite.
  Database* admin() const { return admin_.get(); }

 private:
  std::string dir_, url_, schema_;
  std::unique_ptr<Database> admin_;
};

}  // namespace nc::storage::test
