// TenantStore on both backends (SQLite file; the real PostgreSQL server of the ctest fixture `pg`,
// see tests/CMakeLists.txt): organizations, projects, keys shown once and stored hashed, authentication
// (malformed / unknown / revoked / expired / wrong kind), rotation with overlap, tenant isolation
// (an org-A caller cannot see or touch org-B objects: NotFound, as for objects that do not exist),
// bootstrap exactly once (also when two processes race), and the audit log of every mutation.
#include <gtest/gtest.h>
#include <unistd.h>

#include <thread>

#include "storage/database.h"
#include "storage/migrate.h"
#include "all_migrations.h"
#include "core/timer.h"
#include "tests/storage/test_database.h"
#include "tenancy/tenant_store.h"

namespace nc::tenancy {
namespace {

using storage::Database;
using storage::Dialect;
using storage::Transaction;

using storage::test::must;

class TenantStoreTest : public ::testing::TestWithParam<Dialect> {
 protected:
  void SetUp() override {
    test_db_.create(GetParam(), "tenancy");
    if (HasFatalFailure()) return;
    url_ = test_db_.url();
    db_ = must(Database::open(url_));
    ASSERT_TRUE(storage::migrate(*db_, nc::test::all_migrations()).is_ok());
    store_ = std::make_unique<TenantStore>(*db_);
  }
  void TearDown() override {
    store_.reset();
    db_.reset();
    test_db_.drop(HasFailure());
  }

  storage::test::TestDatabase test_db_;
  std::string url_;
  std::unique_ptr<Database> db_;
  std::unique_ptr<TenantStore> store_;
  const Actor cli_{""};
};

TEST_P(TenantStoreTest, KeysAuthenticateToTheirTenantAndAreStoredHashed) {
  const Organization org = must(store_->create_org("acme", cli_));
  const Project proj = must(store_->create_project(org.id, "web", cli_));
  auto key = must(store_->create_key(org.id, proj.id, KeyKind::kInference, "ci", R"({"models":["m"]})", std::nullopt, cli_));
  EXPECT_EQ(key.plaintext.rfind("nc-inf-", 0), 0u);
  const Principal p = must(store_->authenticate(key.plaintext, nc::unix_us()));
  EXPECT_EQ(p.org_id, org.id);
  EXPECT_EQ(p.project_id, proj.id);
  EXPECT_EQ(p.key_id, key.info.id);
  EXPECT_EQ(p.kind, KeyKind::kInference);
  EXPECT_EQ(p.scopes, R"({"models":["m"]})");
  // The plaintext is nowhere in the database: only its digest and the redacted form.
  const std::string secret = key.plaintext.substr(7);
  const auto rows = must(db_->read([&](Transaction& tx) { return tx.query("SELECT redacted, scopes, name FROM api_keys"); }));
  for (const auto& r : rows)
    for (size_t i = 0; i < 3; ++i) EXPECT_EQ(must(r.get_text(i)).find(secret), std::string::npos);
  // Listing shows the redacted key.
  const auto keys = must(store_->list_keys(org.id));
  ASSERT_EQ(keys.size(), 1u);
  EXPECT_EQ(keys[0].redacted, key.info.redacted);
}

TEST_P(TenantStoreTest, BadKeysAreUnauthenticated) {
  const Organization org = must(store_->create_org("acme", cli_));
  const Project proj = must(store_->create_project(org.id, "web", cli_));
  auto key = must(store_->create_key(org.id, proj.id, KeyKind::kInference, "k", "", std::nullopt, cli_));
  auto unknown = must(generate_key(KeyKind::kInference));  // well-formed but never stored
  for (const std::string& bad : {std::string(""), std::string("sk-abc"), key.plaintext.substr(0, key.plaintext.size() - 1),
                                 unknown.plaintext}) {
    auto r = store_->authenticate(bad, nc::unix_us());
    ASSERT_FALSE(r.is_ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kUnauthenticated);
  }
  // Expired and revoked keys.
  auto short_lived = must(store_->create_key(org.id, proj.id, KeyKind::kInference, "s", "", nc::unix_us() + 1'000'000, cli_));
  EXPECT_TRUE(store_->authenticate(short_lived.plaintext, nc::unix_us()).is_ok());
  EXPECT_EQ(store_->authenticate(short_lived.plaintext, nc::unix_us() + 2'000'000).status().code(), StatusCode::kUnauthenticated);
  ASSERT_TRUE(store_->revoke_key(org.id, key.info.id, cli_).is_ok());
  ASSERT_TRUE(store_->revoke_key(org.id, key.info.id, cli_).is_ok());  // idempotent
  EXPECT_EQ(store_->authenticate(key.plaintext, nc::unix_us()).status().code(), StatusCode::kUnauthenticated);
}

TEST_P(TenantStoreTest, OneTenantCannotSeeOrTouchAnother) {
  const Organization a = must(store_->create_org("a", cli_));
  const Organization b = must(store_->create_org("b", cli_));
  const Project pa = must(store_->create_project(a.id, "p", cli_));
  const Project pb = must(store_->create_project(b.id, "p", cli_));  // same name, other org: fine
  auto kb = must(store_->create_key(b.id, pb.id, KeyKind::kInference, "b-key", "", std::nullopt, cli_));
  // Org A naming org B's objects: NotFound, exactly as for objects that do not exist.
  EXPECT_EQ(store_->revoke_key(a.id, kb.info.id, cli_).code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->revoke_key(a.id, "key_does_not_exist", cli_).code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->rotate_key(a.id, kb.info.id, 0, cli_).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->create_key(a.id, pb.id, KeyKind::kInference, "x", "", std::nullopt, cli_).status().code(),
            StatusCode::kNotFound);
  EXPECT_TRUE(must(store_->list_keys(a.id)).empty());
  ASSERT_EQ(must(store_->list_projects(a.id)).size(), 1u);
  EXPECT_EQ(must(store_->list_projects(a.id))[0].id, pa.id);
  EXPECT_TRUE(must(store_->audit_log(a.id)).size() >= 2);
  for (const auto& e : must(store_->audit_log(a.id))) EXPECT_NE(e.target, kb.info.id);
  // B's key still works.
  EXPECT_TRUE(store_->authenticate(kb.plaintext, nc::unix_us()).is_ok());
  // The schema itself refuses a key of org A on org B's project.
  Status s = db_->transact([&](Transaction& tx) {
    return tx.exec("INSERT INTO api_keys (id, org_id, project_id, kind, name, key_hash, redacted, created_at) "
                   "VALUES ('key_x', $1, $2, 'inference', 'x', $3, 'r', 0)",
                   {a.id, pb.id, storage::Blob(32, 7)})
        .status();
  });
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.to_string();
}

TEST_P(TenantStoreTest, RotationOverlapsThenTheOldKeyExpires) {
  const Organization org = must(store_->create_org("acme", cli_));
  const Project proj = must(store_->create_project(org.id, "web", cli_));
  auto old_key = must(store_->create_key(org.id, proj.id, KeyKind::kInference, "svc", R"({"models":["x"]})", std::nullopt, cli_));
  const int64_t t0 = nc::unix_us();
  auto new_key = must(store_->rotate_key(org.id, old_key.info.id, 60'000'000, Actor{old_key.info.id}));
  EXPECT_NE(new_key.plaintext, old_key.plaintext);
  EXPECT_EQ(new_key.info.project_id, proj.id);
  EXPECT_EQ(new_key.info.scopes, R"({"models":["x"]})");
  EXPECT_TRUE(store_->authenticate(old_key.plaintext, t0 + 1'000'000).is_ok());   // during the overlap
  EXPECT_FALSE(store_->authenticate(old_key.plaintext, t0 + 120'000'000).is_ok()); // after it
  EXPECT_TRUE(store_->authenticate(new_key.plaintext, t0 + 120'000'000).is_ok());
  const auto log = must(store_->audit_log(org.id));
  ASSERT_FALSE(log.empty());
  EXPECT_EQ(log.back().action, "api_key.rotate");
  EXPECT_EQ(log.back().actor_key_id, old_key.info.id);
  EXPECT_NE(log.back().before_json.find(old_key.info.id), std::string::npos);
  EXPECT_NE(log.back().after_json.find(new_key.info.id), std::string::npos);
}

TEST_P(TenantStoreTest, KindsAndProjectsAreChecked) {
  const Organization org = must(store_->create_org("acme", cli_));
  const Project proj = must(store_->create_project(org.id, "web", cli_));
  EXPECT_EQ(store_->create_key(org.id, "", KeyKind::kInference, "k", "", std::nullopt, cli_).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->create_key(org.id, proj.id, KeyKind::kAdmin, "k", "", std::nullopt, cli_).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->create_key(org.id, proj.id, KeyKind::kInference, "k", "not json", std::nullopt, cli_).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->create_project(org.id, "web", cli_).status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->create_project("org_nope", "x", cli_).status().code(), StatusCode::kNotFound);
  auto admin = must(store_->create_key(org.id, "", KeyKind::kAdmin, "ops", "", std::nullopt, cli_));
  const Principal p = must(store_->authenticate(admin.plaintext, nc::unix_us()));
  EXPECT_EQ(p.kind, KeyKind::kAdmin);
  EXPECT_TRUE(p.project_id.empty());
}

TEST_P(TenantStoreTest, BootstrapHappensOnceEvenWhenRacing) {
  std::vector<std::optional<TenantStore::CreatedKey>> got(4);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      auto db = Database::open(url_);  // separate connections, as separate processes would have
      ASSERT_TRUE(db.is_ok());
      TenantStore s(**db);
      auto r = s.bootstrap(Actor{"bootstrap"});
      ASSERT_TRUE(r.is_ok()) << r.status().to_string();
      got[i] = std::move(*r);
    });
  }
  for (auto& t : threads) t.join();
  int created = 0;
  for (auto& g : got) {
    if (!g) continue;
    ++created;
    const Principal p = must(store_->authenticate(g->plaintext, nc::unix_us()));
    EXPECT_EQ(p.kind, KeyKind::kAdmin);
  }
  EXPECT_EQ(created, 1);
  EXPECT_FALSE(must(store_->bootstrap(Actor{"bootstrap"})).has_value());
}

INSTANTIATE_TEST_SUITE_P(Sqlite, TenantStoreTest, ::testing::Values(Dialect::kSqlite));
INSTANTIATE_TEST_SUITE_P(Postgres, TenantStoreTest, ::testing::Values(Dialect::kPostgres));

}  // namespace
}  // namespace nc::tenancy
