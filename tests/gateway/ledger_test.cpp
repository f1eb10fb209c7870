// The usage ledger on both backends (SQLite file; the ctest fixture's PostgreSQL): group commit keeps
// each unit atomic; budget holds never overspend under concurrency — also with two writers (two
// processes sharing one database); settle moves holds to spent exactly; reconcile settles a crashed
// instance's open records; usage events are stored once per (org, source, id); prices apply by
// effective date; policy changes are tenant-scoped and audited.
#include <gtest/gtest.h>
#include "core/timer.h"

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include "gateway/budget_accountant.h"
#include "gateway/gateway.h"
#include "gateway/metered_usage.h"
#include "gateway/ledger.h"
#include "gateway/policy.h"
#include "storage/group_commit.h"
#include "tenancy/tenant_store.h"
#include "tests/gateway/gateway_test_db.h"

namespace nc::gateway {
namespace {

using storage::Database;
using storage::Dialect;
using storage::Transaction;
using storage::test::must;

class LedgerTest : public test::GatewayDbTest {
 protected:
  void SetUp() override {
    GatewayDbTest::SetUp();
    if (HasFatalFailure()) return;
    tenants_ = std::make_unique<tenancy::TenantStore>(*db_);
    org_ = must(tenants_->create_org("acme", actor_)).id;
    project_ = must(tenants_->create_project(org_, "p", actor_)).id;
  }
  void TearDown() override {
    tenants_.reset();
    GatewayDbTest::TearDown();
  }

  int64_t scalar(const std::string& sql, const storage::Params& params = {}) {
    return must(db_->read([&](Transaction& tx) -> Result<int64_t> {
      NC_ASSIGN_OR_RETURN(auto row, tx.query_one(sql, params));
      return row.get_int(0);
    }));
  }

  HoldRequest hold_for(const std::string& id, int64_t micros, int64_t budget) {
    HoldRequest h;
    h.record.id = id;
    h.record.org_id = org_;
    h.record.project_id = project_;
    h.record.model = "tiny";
    h.record.endpoint = "completions";
    h.record.started_at = nc::unix_us();
    h.held_micros = micros;
    Budget b;
    b.scope = Scope::kProject;
    b.scope_id = project_;
    b.org_id = org_;
    b.monthly_limit_micros = budget;
    h.budgets.push_back(b);
    return h;
  }

  static Status wait(const std::function<void(Ledger::Done)>& f) {
    std::promise<Status> p;
    auto fut = p.get_future();
    f([&p](Status s) { p.set_value(std::move(s)); });
    return fut.get();
  }

  std::unique_ptr<tenancy::TenantStore> tenants_;
  std::string org_, project_;
  const tenancy::Actor actor_{""};
};

TEST_P(LedgerTest, GroupCommitKeepsEachUnitAtomic) {
  ASSERT_TRUE(db_->transact([](Transaction& tx) { return tx.exec_script("CREATE TABLE t (k BIGINT PRIMARY KEY)"); }).is_ok());
  storage::GroupCommit gc(*db_);
  constexpr int kUnits = 200;
  std::vector<std::promise<Status>> done(kUnits);
  for (int i = 0; i < kUnits; ++i) {
    gc.submit(
        [i](Transaction& tx) -> Status {
          NC_RETURN_IF_ERROR(tx.exec("INSERT INTO t (k) VALUES ($1)", {int64_t{i}}).status());
          // Every 10th unit inserts a second row and then fails: both of its rows must vanish.
          if (i % 10 == 0) {
            NC_RETURN_IF_ERROR(tx.exec("INSERT INTO t (k) VALUES ($1)", {int64_t{1000 + i}}).status());
            return tx.exec("INSERT INTO t (k) VALUES ($1)", {int64_t{i}}).status();  // duplicate key
          }
          return Status::ok();
        },
        [&done, i](Status s) { done[i].set_value(std::move(s)); });
  }
  for (int i = 0; i < kUnits; ++i) {
    const Status s = done[i].get_future().get();
    if (i % 10 == 0) EXPECT_EQ(s.code(), StatusCode::kAlreadyExists) << i;
    else EXPECT_TRUE(s.is_ok()) << i << ": " << s.to_string();
  }
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM t"), kUnits - kUnits / 10);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM t WHERE k >= 1000"), 0);
  const auto st = gc.stats();
  EXPECT_EQ(st.units, static_cast<uint64_t>(kUnits));
  EXPECT_LT(st.groups, static_cast<uint64_t>(kUnits));  // queued while one commits: grouped
}

// 50 requests at once, each holding a worst case of 25 against a budget of 500: exactly 20 fit; when
// they settle at their real cost the holds turn into spend exactly.
TEST_P(LedgerTest, ConcurrentHoldsNeverOverspendAndSettleExactly) {
  Ledger ledger(*db_, "test");
  constexpr int kRequests = 50;
  std::vector<std::thread> threads;
  std::atomic<int> admitted{0}, refused{0};
  std::vector<std::string> ok_ids(kRequests);
  for (int i = 0; i < kRequests; ++i) {
    threads.emplace_back([&, i] {
      const std::string id = "req_" + std::to_string(i);
      const Status s = wait([&](Ledger::Done d) { ledger.hold(hold_for(id, 25, 500), std::move(d)); });
      if (s.is_ok()) {
        ++admitted;
        ok_ids[i] = id;
      } else {
        EXPECT_EQ(s.code(), StatusCode::kResourceExhausted) << s.to_string();
        EXPECT_NE(s.message().find("insufficient_quota"), std::string::npos);
        ++refused;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(admitted.load(), 20);
  EXPECT_EQ(refused.load(), 30);
  EXPECT_EQ(scalar("SELECT held_micros FROM spend WHERE scope = 'project' AND scope_id = $1", {project_}), 500);
  int64_t spent = 0;
  for (const auto& id : ok_ids) {
    if (id.empty()) continue;
    UsageRecord r = hold_for(id, 25, 500).record;
    r.status = "completed";
    r.prompt_tokens = 3;
    r.completion_tokens = 7;
    r.cost_micros = 10;
    r.finished_at = nc::unix_us();
    spent += 10;
    ASSERT_TRUE(wait([&](Ledger::Done d) { ledger.settle(r, std::move(d)); }).is_ok());
  }
  for (const char* scope : {"org", "project"}) {
    const std::string id = std::string(scope) == "org" ? org_ : project_;
    EXPECT_EQ(scalar("SELECT held_micros FROM spend WHERE scope = $1 AND scope_id = $2", {scope, id}), 0) << scope;
    EXPECT_EQ(scalar("SELECT spent_micros FROM spend WHERE scope = $1 AND scope_id = $2", {scope, id}), spent) << scope;
  }
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM usage_records WHERE state = 'settled' AND cost_micros = 10"), 20);
  // A record settles once: a second settle of the same request is refused, nothing changes.
  std::string settled_id;
  for (const auto& id : ok_ids) {
    if (!id.empty()) settled_id = id;
  }
  UsageRecord again = hold_for(settled_id, 25, 500).record;
  again.status = "completed";
  again.cost_micros = 10;
  EXPECT_FALSE(wait([&](Ledger::Done d) { ledger.settle(again, std::move(d)); }).is_ok());
  EXPECT_EQ(scalar("SELECT spent_micros FROM spend WHERE scope = 'project' AND scope_id = $1", {project_}), spent);
}

// Two writers on one database (two serve processes sharing PostgreSQL, or two on one SQLite file):
// the budget still holds, because the check and the hold are one serializable transaction.
TEST_P(LedgerTest, TwoWritersStillNeverOverspend) {
  auto db2 = must(Database::open(test_db_.url()));
  Ledger a(*db_, "a"), b(*db2, "b");
  std::vector<std::thread> threads;
  std::atomic<int> admitted{0};
  for (int i = 0; i < 40; ++i) {
    threads.emplace_back([&, i] {
      Ledger& l = i % 2 ? a : b;
      const Status s = wait([&](Ledger::Done d) { l.hold(hold_for("r" + std::to_string(i), 30, 300), std::move(d)); });
      if (s.is_ok()) ++admitted;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(admitted.load(), 10);
  EXPECT_EQ(scalar("SELECT held_micros FROM spend WHERE scope = 'project' AND scope_id = $1", {project_}), 300);
}

// The in-process accountant (serve on SQLite): the same exactness with a mutex instead of a commit.
TEST_P(LedgerTest, InProcessBudgetHoldsNeverOverspend) {
  BudgetAccountant acc;
  ASSERT_TRUE(acc.load(*db_, "2026-11").is_ok());
  acc.add_spent({{Scope::kProject, project_}, {Scope::kOrg, org_}}, "2026-11", 100);  // 100 already spent
  const std::vector<Budget> budgets = {hold_for("x", 0, 600).budgets};
  std::vector<std::thread> threads;
  std::atomic<int> admitted{0};
  for (int i = 0; i < 50; ++i) {
    threads.emplace_back([&] {
      if (!acc.try_hold(budgets, "2026-11", 25)) ++admitted;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(admitted.load(), 20);  // (600 - 100) / 25
  auto refusal = acc.try_hold(budgets, "2026-11", 25);
  ASSERT_TRUE(refusal.has_value());
  EXPECT_NE(refusal->find("100"), std::string::npos);  // says what was spent
  acc.release(budgets, "2026-11", 25);
  EXPECT_FALSE(acc.try_hold(budgets, "2026-11", 25).has_value());
  EXPECT_FALSE(acc.try_hold(budgets, "2026-12", 25).has_value());  // a new month starts empty
}

// In-process budgets, a response sent whole: its open record is written only when the request is
// still running after open_record_delay_ms. A short request has one write (its final record); a
// long one has an open record (holding its worst case on the counters) that its settle updates.
TEST_P(LedgerTest, DeferredOpenRecordsAreWrittenOnlyForLongRequests) {
  GatewayOptions opts;
  opts.budgets = GatewayOptions::Budgets::kInProcess;
  opts.open_record_delay_ms = 150;
  opts.policy_refresh_ms = 20;
  Gateway gw(*db_, opts);
  ASSERT_TRUE(gw.start().is_ok());
  Price price;
  price.item = "tiny";
  price.effective_from = nc::unix_us() - 1000000;
  price.input_per_mtok = price.output_per_mtok = 1000000;  // 1 micro per token
  ASSERT_TRUE(gw.policy().add_price(price, actor_).is_ok());
  ASSERT_TRUE(gw.policy().set_budget(org_, Scope::kProject, project_, int64_t{1000000}, actor_).is_ok());
  ASSERT_TRUE(gw.policy().refresh().is_ok());
  auto caller = std::make_shared<Caller>();
  caller->principal.org_id = org_;
  caller->principal.project_id = project_;
  caller->principal.kind = tenancy::KeyKind::kInference;
  auto admit = [&](const std::string& id, Ticket* t) {
    AdmitRequest r;
    r.request_id = id;
    r.endpoint = "completions";
    r.model = "tiny";
    r.prompt_tokens = 10;
    r.max_output_tokens = 90;
    ASSERT_FALSE(gw.admit(caller, r, t).has_value());
    ASSERT_TRUE(t->open_record_pending);
    gw.defer_open_record(*t);
  };
  auto settle = [&](Ticket& t) {
    Usage u;
    u.prompt_tokens = 10;
    u.completion_tokens = 5;
    return wait([&](Ledger::Done d) { gw.settle(t, u, std::move(d)); });
  };
  const auto units = [&] { return gw.ledger().stats().units; };

  Ticket quick;
  admit("quick", &quick);
  const uint64_t before = units();
  ASSERT_TRUE(settle(quick).is_ok());
  EXPECT_EQ(units() - before, 1u);  // the final record only
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // past the delay: nothing more is written
  EXPECT_EQ(units() - before, 1u);

  Ticket slow;
  admit("slow", &slow);
  for (int i = 0; i < 500 && units() - before < 2; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(units() - before, 2u);  // its open record, once it ran past the delay
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM usage_records WHERE id = 'slow' AND state = 'open'"), 1);
  EXPECT_EQ(scalar("SELECT held_micros FROM spend WHERE scope = 'project' AND scope_id = $1", {project_}), 100);
  ASSERT_TRUE(settle(slow).is_ok());
  EXPECT_EQ(units() - before, 3u);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM usage_records WHERE state = 'settled' AND status = 'completed' AND cost_micros = 15"), 2);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM usage_records"), 2);
  EXPECT_EQ(scalar("SELECT held_micros FROM spend WHERE scope = 'project' AND scope_id = $1", {project_}), 0);
  EXPECT_EQ(scalar("SELECT spent_micros FROM spend WHERE scope = 'project' AND scope_id = $1", {project_}), 30);
  // A request settles once, whichever way its record was written.
  EXPECT_EQ(settle(quick).code(), StatusCode::kAlreadyExists);
  gw.stop();
}

// A job's GPU-seconds (the platform's own meter) count against the budgets at once: the next inference
// request of the project is refused without a restart, and a repeated meter call counts once.
TEST_P(LedgerTest, MeteredUsageCountsAgainstBudgetsAtOnce) {
  GatewayOptions opts;
  opts.budgets = GatewayOptions::Budgets::kInProcess;
  opts.policy_refresh_ms = 20;
  Gateway gw(*db_, opts);
  ASSERT_TRUE(gw.start().is_ok());
  Price gpu;
  gpu.item = "gpu-seconds/sim/on-demand";
  gpu.effective_from = nc::unix_us() - 1000000;
  gpu.per_unit = 1000;  // 1000 micros per GPU-second
  ASSERT_TRUE(gw.policy().add_price(gpu, actor_).is_ok());
  ASSERT_TRUE(gw.policy().set_budget(org_, Scope::kProject, project_, int64_t{1000000}, actor_).is_ok());
  ASSERT_TRUE(gw.policy().refresh().is_ok());
  auto caller = std::make_shared<Caller>();
  caller->principal.org_id = org_;
  caller->principal.project_id = project_;
  caller->principal.kind = tenancy::KeyKind::kInference;
  AdmitRequest r;
  r.request_id = "before";
  r.endpoint = "completions";
  r.model = "tiny";
  r.prompt_tokens = 10;
  r.max_output_tokens = 10;
  Ticket t1;
  ASSERT_FALSE(gw.admit(caller, r, &t1).has_value()) << "within the budget before the job's spend";
  gw.release(t1);
  UsageEvent e;
  e.source = "neocloud/capacity";
  e.id = "job_0000000000000001/0";
  e.type = "gpu.seconds";
  e.project_id = project_;
  e.time = nc::unix_us();
  e.item = gpu.item;
  e.quantity = 1500;  // 1.5 M micros: past the 1 M budget
  ASSERT_TRUE(record_metered_usage(gw, org_, e).is_ok());
  ASSERT_TRUE(record_metered_usage(gw, org_, e).is_ok());  // a retry: stored and counted once
  EXPECT_EQ(scalar("SELECT spent_micros FROM spend WHERE scope = 'project' AND scope_id = $1", {project_}), 1500000);
  r.request_id = "after";
  Ticket t2;
  auto denied = gw.admit(caller, r, &t2);
  ASSERT_TRUE(denied.has_value()) << "the job's spend is seen by admission at once";
  EXPECT_EQ(denied->status, 429);
  EXPECT_EQ(denied->code, "insufficient_quota");
  gw.stop();
}

TEST_P(LedgerTest, ReconcileSettlesOnlyThisInstancesOpenRecords) {
  {
    Ledger crashed(*db_, "node-1"), other(*db_, "node-2");
    ASSERT_TRUE(wait([&](Ledger::Done d) { crashed.hold(hold_for("a", 40, 1000), std::move(d)); }).is_ok());
    ASSERT_TRUE(wait([&](Ledger::Done d) { crashed.hold(hold_for("b", 60, 1000), std::move(d)); }).is_ok());
    ASSERT_TRUE(wait([&](Ledger::Done d) { other.hold(hold_for("c", 5, 1000), std::move(d)); }).is_ok());
  }
  Ledger restarted(*db_, "node-1");
  EXPECT_EQ(must(restarted.reconcile()), 2);
  EXPECT_EQ(must(restarted.reconcile()), 0);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM usage_records WHERE state = 'settled' AND status = 'interrupted'"), 2);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM usage_records WHERE state = 'open'"), 1);  // node-2's
  EXPECT_EQ(scalar("SELECT held_micros FROM spend WHERE scope = 'project' AND scope_id = $1", {project_}), 5);
}

TEST_P(LedgerTest, UsageEventsAreStoredOncePerOrgSourceAndId) {
  Ledger ledger(*db_, "test");
  const std::string other_org = must(tenants_->create_org("other", actor_)).id;
  auto ev = [](const std::string& id, int64_t cost) {
    UsageEvent e;
    e.source = "jobs";
    e.id = id;
    e.type = "neocloud.gpu";
    e.time = nc::unix_us();
    e.item = "gpu_seconds:H100";
    e.quantity = 10;
    e.cost_micros = cost;
    return e;
  };
  auto ingest = [&](const std::string& org, std::vector<UsageEvent> events) {
    std::promise<Result<Ledger::IngestResult>> p;
    auto f = p.get_future();
    ledger.ingest(org, std::move(events), [&p](Result<Ledger::IngestResult> r) { p.set_value(std::move(r)); });
    return must(f.get()).inserted;
  };
  EXPECT_EQ(ingest(org_, {ev("1", 7), ev("2", 7), ev("1", 7)}), (std::vector<bool>{true, true, false}));
  EXPECT_EQ(ingest(org_, {ev("2", 7), ev("3", 7)}), (std::vector<bool>{false, true}));
  EXPECT_EQ(ingest(other_org, {ev("1", 7)}), (std::vector<bool>{true}));  // another tenant's id space
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM usage_events WHERE org_id = $1", {org_}), 3);
  EXPECT_EQ(scalar("SELECT spent_micros FROM spend WHERE scope = 'org' AND scope_id = $1", {org_}), 21);
}

TEST_P(LedgerTest, PricesApplyByEffectiveDateAndPolicyIsTenantScoped) {
  Policy policy(*db_);
  const tenancy::Actor admin{"key_admin"};
  Price p1{"tiny", 1000, 1000000, 2000000, 500000, 0};
  Price p2{"tiny", 5000, 3000000, 4000000, 0, 0};
  ASSERT_TRUE(policy.add_price(p1, admin).is_ok());
  ASSERT_TRUE(policy.add_price(p2, admin).is_ok());
  EXPECT_EQ(policy.add_price(p2, admin).code(), StatusCode::kAlreadyExists);
  auto snap = policy.snapshot();
  EXPECT_EQ(snap->price_at("tiny", 999), nullptr);
  EXPECT_EQ(snap->price_at("tiny", 1000)->input_per_mtok, 1000000);
  EXPECT_EQ(snap->price_at("tiny", 4999)->input_per_mtok, 1000000);
  EXPECT_EQ(snap->price_at("tiny", 5000)->input_per_mtok, 3000000);
  // 10 prompt tokens of which 4 cached, 3 completion tokens at p1: (6*1 + 3*2 + 4*0.5) = 14 micros.
  EXPECT_EQ(token_cost_micros(p1, 10, 3, 4), 14);
  EXPECT_EQ(token_cost_micros(p1, 1, 0, 0), 1);  // rounds up
  // Another org's project is NotFound, like one that does not exist; nothing is written.
  const std::string other_org = must(tenants_->create_org("other", actor_)).id;
  Limits l;
  l.rpm = 5;
  EXPECT_EQ(policy.set_limits(other_org, Scope::kProject, project_, l, admin).code(), StatusCode::kNotFound);
  EXPECT_EQ(policy.set_budget(other_org, Scope::kProject, project_, 100, admin).code(), StatusCode::kNotFound);
  ASSERT_TRUE(policy.set_limits(org_, Scope::kProject, project_, l, admin).is_ok());
  ASSERT_TRUE(policy.set_budget(org_, Scope::kProject, project_, 100, admin).is_ok());
  EXPECT_EQ(*policy.snapshot()->find_limits(Scope::kProject, project_)->rpm, 5);
  EXPECT_EQ(policy.snapshot()->find_budget(Scope::kProject, project_)->monthly_limit_micros, 100);
  ASSERT_TRUE(policy.set_limits(org_, Scope::kProject, project_, Limits{}, admin).is_ok());  // all null: removed
  EXPECT_EQ(policy.snapshot()->find_limits(Scope::kProject, project_), nullptr);
  const auto audit = must(tenants_->audit_log(org_));
  int limit_sets = 0, budget_sets = 0, limit_deletes = 0;
  for (const auto& e : audit) {
    limit_sets += e.action == "rate_limits.set";
    budget_sets += e.action == "budget.set";
    limit_deletes += e.action == "rate_limits.delete";
    if (e.action == "rate_limits.delete") {
      EXPECT_NE(e.before_json.find("\"rpm\":5"), std::string::npos);
    }
  }
  EXPECT_EQ(limit_sets, 1);
  EXPECT_EQ(budget_sets, 1);
  EXPECT_EQ(limit_deletes, 1);
  EXPECT_TRUE(must(tenants_->audit_log(other_org)).size() == 1);  // its own creation only
}

INSTANTIATE_TEST_SUITE_P(Sqlite, LedgerTest, ::testing::Values(Dialect::kSqlite),
                         [](const auto&) { return std::string("sqlite"); });
INSTANTIATE_TEST_SUITE_P(Postgres, LedgerTest, ::testing::Values(Dialect::kPostgres),
                         [](const auto&) { return std::string("postgres"); });

}  // namespace
}  // namespace nc::gateway
