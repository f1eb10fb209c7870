// Test support shared by the gateway suites that run on both storage backends (ledger_test,
// usage_api_test): a fixture whose test parameter is the dialect and whose db_ is the current test's
// own database (storage::test::TestDatabase: a SQLite file in a fresh directory, or a fresh schema on
// the PostgreSQL server of ctest's `pg` fixture, whose URL is in NC_PG_URL_FILE), with the neocloud
// schema migrated. A suite that adds to SetUp calls GatewayDbTest::SetUp() first and returns when
// HasFatalFailure(); one that adds to TearDown releases what uses db_ before GatewayDbTest::TearDown().
// Needs NC_TEST_TMP and NC_PG_URL_FILE defined by the test target. Single-threaded test code.
#pragma once
#include <gtest/gtest.h>

#include <memory>

#include "storage/database.h"
#include "storage/migrate.h"
#include "all_migrations.h"
#include "tests/storage/test_database.h"

namespace nc::gateway::test {

class GatewayDbTest : public ::testing::TestWithParam<storage::Dialect> {
 protected:
  void SetUp() override {
    test_db_.create(GetParam(), "gateway");
    if (HasFatalFailure()) return;
    db_ = storage::test::must(storage::Database::open(test_db_.url()));
    ASSERT_TRUE(storage::migrate(*db_, nc::test::all_migrations()).is_ok());
  }
  void TearDown() override {
    db_.reset();
    test_db_.drop(HasFailure());
  }

  storage::test::TestDatabase test_db_;
  std::unique_ptr<storage::Database> db_;
};

}  // namespace nc::gateway::test
