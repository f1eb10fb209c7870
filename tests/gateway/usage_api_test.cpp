// The organization usage and costs API (src/gateway/usage_api.h) on both backends (SQLite file; the
// real PostgreSQL server of the ctest fixture `pg`): buckets of 1d / 1h / 1m aligned to the width,
// totals and group_by combinations, filters, query-string decoding, paging with cursors, costs from
// usage_records and usage_events in currency units, open records left out, another org's rows never
// shown, and InvalidArgument naming the parameter for bad queries.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "gateway/usage_api.h"
#include "storage/database.h"
#include "tests/gateway/gateway_test_db.h"

namespace nc::gateway {
namespace {

using json = nlohmann::ordered_json;
using storage::Dialect;
using storage::Transaction;
using storage::test::must;

constexpr int64_t kDay = 86400;
constexpr int64_t kT0 = 1730419200;  // 2024-11-01T00:00:00Z, a multiple of a day
constexpr int64_t kNow = kT0 + 30 * kDay;

int64_t us(int64_t seconds) { return seconds * 1'000'000; }

struct Record {
  std::string org = "org_a", project = "proj_1", key = "key_1", model = "m1", endpoint = "chat.completions";
  std::string state = "settled";
  int64_t prompt = 0, completion = 0, cached = 0, cost = 0;
  int64_t started_at_us = 0;
};

class UsageApiTest : public test::GatewayDbTest {
 protected:
  void SetUp() override {
    GatewayDbTest::SetUp();
    if (HasFatalFailure()) return;
    exec("INSERT INTO organizations (id, name, created_at) VALUES ('org_a', 'a', 0), ('org_b', 'b', 0)");
  }

  void exec(const std::string& sql, const storage::Params& params = {}) {
    const Status s = db_->transact([&](Transaction& tx) { return tx.exec(sql, params).status(); });
    ASSERT_TRUE(s.is_ok()) << s.to_string();
  }

  void add(const Record& r) {
    exec("INSERT INTO usage_records (id, org_id, project_id, api_key_id, model, endpoint, state, prompt_tokens, "
         "completion_tokens, cached_tokens, cost_micros, period, instance, started_at) "
         "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, '2024-11', 'i1', $12)",
         {"rec_" + std::to_string(next_id_++), r.org, r.project.empty() ? storage::kNull : storage::SqlValue(r.project),
          r.key, r.model, r.endpoint, r.state, r.prompt, r.completion, r.cached, r.cost, r.started_at_us});
  }

  void add_event(const std::string& org, const std::string& project, const std::string& key, const std::string& item,
                 int64_t cost, int64_t time_us) {
    exec("INSERT INTO usage_events (org_id, source, id, type, project_id, api_key_id, time, item, quantity, cost_micros, "
         "received_at) VALUES ($1, 'gpu', $2, 'gpu.hours', $3, $4, $5, $6, 1, $7, $5)",
         {org, "ev_" + std::to_string(next_id_++), project, key, time_us, item, cost});
  }

  json usage(const std::string& query, const std::string& org = "org_a") {
    return must(usage_completions(*db_, org, query, kNow));
  }
  json costs(const std::string& query, const std::string& org = "org_a") {
    return must(organization_costs(*db_, org, query, kNow));
  }
  static std::string range(int64_t start, int64_t end) {
    return "start_time=" + std::to_string(start) + "&end_time=" + std::to_string(end);
  }

  int next_id_ = 0;
};

// The bucket start times of a page.
std::vector<int64_t> starts(const json& page) {
  std::vector<int64_t> out;
  for (const auto& b : page["data"]) out.push_back(b["start_time"].get<int64_t>());
  return out;
}

TEST_P(UsageApiTest, DailyTotalsCountSettledCompletionsOnly) {
  add({.prompt = 100, .completion = 10, .cached = 40, .started_at_us = us(kT0 + 5)});
  add({.model = "m2", .endpoint = "completions", .prompt = 50, .completion = 5, .started_at_us = us(kT0 + kDay - 1)});
  add({.prompt = 7, .completion = 3, .cached = 1, .started_at_us = us(kT0 + 2 * kDay)});
  add({.state = "open", .prompt = 1000, .started_at_us = us(kT0 + 6)});               // not settled
  add({.endpoint = "embeddings", .prompt = 2000, .started_at_us = us(kT0 + 7)});      // not a completion
  add({.org = "org_b", .prompt = 3000, .started_at_us = us(kT0 + 8)});                // another org

  const json page = usage(range(kT0, kT0 + 3 * kDay));
  EXPECT_EQ(page["object"], "page");
  EXPECT_EQ(page["has_more"], false);
  EXPECT_TRUE(page["next_page"].is_null());
  ASSERT_EQ(page["data"].size(), 3u);
  EXPECT_EQ(starts(page), (std::vector<int64_t>{kT0, kT0 + kDay, kT0 + 2 * kDay}));
  const json& b0 = page["data"][0];
  EXPECT_EQ(b0["object"], "bucket");
  EXPECT_EQ(b0["end_time"], kT0 + kDay);
  ASSERT_EQ(b0["results"].size(), 1u);
  const json expected = {{"object", "organization.usage.completions.result"},
                         {"input_tokens", 150},
                         {"input_cached_tokens", 40},
                         {"output_tokens", 15},
                         {"input_audio_tokens", 0},
                         {"output_audio_tokens", 0},
                         {"num_model_requests", 2},
                         {"project_id", nullptr},
                         {"user_id", nullptr},
                         {"api_key_id", nullptr},
                         {"model", nullptr},
                         {"batch", nullptr},
                         {"service_tier", nullptr}};
  EXPECT_EQ(b0["results"][0], expected) << b0.dump();
  EXPECT_TRUE(page["data"][1]["results"].empty());  // a bucket with no usage is still there
  ASSERT_EQ(page["data"][2]["results"].size(), 1u);
  EXPECT_EQ(page["data"][2]["results"][0]["input_tokens"], 7);
  EXPECT_EQ(page["data"][2]["results"][0]["num_model_requests"], 1);

  // The other org sees only its own record.
  const json b = usage(range(kT0, kT0 + kDay), "org_b");
  ASSERT_EQ(b["data"][0]["results"].size(), 1u);
  EXPECT_EQ(b["data"][0]["results"][0]["input_tokens"], 3000);
}

TEST_P(UsageApiTest, HourBucketsAlignDownAndKeepStartInclusiveEndExclusive) {
  add({.prompt = 1, .started_at_us = us(kT0 + 600)});            // in the first hour but before start_time
  add({.prompt = 2, .started_at_us = us(kT0 + 1800)});           // exactly start_time: counted
  add({.prompt = 4, .started_at_us = us(kT0 + 3600) - 1});       // last microsecond of the first hour
  add({.prompt = 8, .started_at_us = us(kT0 + 2 * 3600 + 5)});   // third hour
  add({.prompt = 16, .started_at_us = us(kT0 + 3 * 3600 - 1)});  // last second before end_time: counted
  add({.prompt = 32, .started_at_us = us(kT0 + 3 * 3600)});      // exactly end_time: not counted

  const json page = usage(range(kT0 + 1800, kT0 + 3 * 3600) + "&bucket_width=1h");
  EXPECT_EQ(starts(page), (std::vector<int64_t>{kT0, kT0 + 3600, kT0 + 7200}));
  EXPECT_EQ(page["data"][0]["end_time"], kT0 + 3600);
  ASSERT_EQ(page["data"][0]["results"].size(), 1u);
  EXPECT_EQ(page["data"][0]["results"][0]["input_tokens"], 6);
  EXPECT_TRUE(page["data"][1]["results"].empty());
  ASSERT_EQ(page["data"][2]["results"].size(), 1u);
  EXPECT_EQ(page["data"][2]["results"][0]["input_tokens"], 24);
  EXPECT_EQ(page["data"][2]["results"][0]["num_model_requests"], 2);
}

TEST_P(UsageApiTest, MinuteBuckets) {
  add({.prompt = 1, .started_at_us = us(kT0 + 60) - 1});
  add({.prompt = 2, .started_at_us = us(kT0 + 60)});
  add({.prompt = 4, .started_at_us = us(kT0 + 179)});
  const json page = usage(range(kT0 + 30, kT0 + 180) + "&bucket_width=1m");
  EXPECT_EQ(starts(page), (std::vector<int64_t>{kT0, kT0 + 60, kT0 + 120}));
  std::vector<int64_t> totals;
  for (const auto& b : page["data"]) totals.push_back(b["results"].empty() ? 0 : b["results"][0]["input_tokens"].get<int64_t>());
  EXPECT_EQ(totals, (std::vector<int64_t>{1, 2, 4}));
  // Default limit for 1m is 60 buckets: a 2-hour range has more.
  const json long_range = usage(range(kT0, kT0 + 7200) + "&bucket_width=1m");
  EXPECT_EQ(long_range["data"].size(), 60u);
  EXPECT_EQ(long_range["has_more"], true);
}

TEST_P(UsageApiTest, GroupByModelProjectAndKey) {
  add({.project = "proj_1", .key = "key_1", .model = "m1", .prompt = 1, .started_at_us = us(kT0 + 1)});
  add({.project = "proj_1", .key = "key_2", .model = "m2", .prompt = 2, .started_at_us = us(kT0 + 2)});
  add({.project = "proj_2", .key = "key_3", .model = "m1", .prompt = 4, .started_at_us = us(kT0 + 3)});
  add({.project = "", .key = "key_4", .model = "m2", .prompt = 8, .started_at_us = us(kT0 + 4)});  // no project
  const std::string day = range(kT0, kT0 + kDay);

  const json by_model = usage(day + "&group_by=model")["data"][0]["results"];
  ASSERT_EQ(by_model.size(), 2u);
  EXPECT_EQ(by_model[0]["model"], "m1");
  EXPECT_EQ(by_model[0]["input_tokens"], 5);
  EXPECT_EQ(by_model[0]["num_model_requests"], 2);
  EXPECT_TRUE(by_model[0]["project_id"].is_null());
  EXPECT_TRUE(by_model[0]["api_key_id"].is_null());
  EXPECT_EQ(by_model[1]["model"], "m2");
  EXPECT_EQ(by_model[1]["input_tokens"], 10);

  const json by_project = usage(day + "&group_by[]=project_id")["data"][0]["results"];
  ASSERT_EQ(by_project.size(), 3u);  // the NULL project is its own group, listed last
  EXPECT_EQ(by_project[0]["project_id"], "proj_1");
  EXPECT_EQ(by_project[0]["input_tokens"], 3);
  EXPECT_EQ(by_project[1]["project_id"], "proj_2");
  EXPECT_TRUE(by_project[2]["project_id"].is_null());
  EXPECT_EQ(by_project[2]["input_tokens"], 8);
  EXPECT_TRUE(by_project[0]["model"].is_null());

  // Three spellings of the same two-key grouping give the same answer.
  const json a = usage(day + "&group_by=project_id,model");
  EXPECT_EQ(usage(day + "&group_by=model&group_by=project_id"), a);
  EXPECT_EQ(usage(day + "&group_by%5B%5D=model&group_by%5B%5D=project_id"), a);
  const json pm = a["data"][0]["results"];
  ASSERT_EQ(pm.size(), 4u);
  std::set<std::string> seen;
  for (const auto& r : pm) {
    seen.insert(r["project_id"].is_null() ? "-" : r["project_id"].get<std::string>());
    EXPECT_FALSE(r["model"].is_null());
    EXPECT_TRUE(r["api_key_id"].is_null());
  }
  EXPECT_EQ(seen, (std::set<std::string>{"proj_1", "proj_2", "-"}));

  const json by_key = usage(day + "&group_by=api_key_id,project_id,model")["data"][0]["results"];
  ASSERT_EQ(by_key.size(), 4u);
  EXPECT_EQ(by_key[0]["api_key_id"], "key_1");
  EXPECT_EQ(by_key[0]["project_id"], "proj_1");
  EXPECT_EQ(by_key[0]["model"], "m1");

  // user_id, batch and service_tier are accepted and stay null: one total row.
  const json by_user = usage(day + "&group_by=user_id,batch,service_tier")["data"][0]["results"];
  ASSERT_EQ(by_user.size(), 1u);
  EXPECT_EQ(by_user[0]["input_tokens"], 15);
  EXPECT_TRUE(by_user[0]["user_id"].is_null());
}

TEST_P(UsageApiTest, Filters) {
  add({.project = "proj_1", .key = "key_1", .model = "gpt-4o mini", .prompt = 1, .started_at_us = us(kT0 + 1)});
  add({.project = "proj_2", .key = "key_2", .model = "m2", .prompt = 2, .started_at_us = us(kT0 + 2)});
  add({.project = "proj_3", .key = "key_3", .model = "m3", .prompt = 4, .started_at_us = us(kT0 + 3)});
  const std::string day = range(kT0, kT0 + kDay);
  auto total = [&](const std::string& extra) -> int64_t {
    const json r = usage(day + extra)["data"][0]["results"];
    return r.empty() ? 0 : r[0]["input_tokens"].get<int64_t>();
  };
  EXPECT_EQ(total(""), 7);
  EXPECT_EQ(total("&models=gpt-4o+mini"), 1);  // '+' is a space
  EXPECT_EQ(total("&models=gpt%2D4o%20mini,m3"), 5);
  EXPECT_EQ(total("&project_ids=proj_1&project_ids=proj_2"), 3);
  EXPECT_EQ(total("&project_ids[]=proj_2&project_ids[]=proj_3"), 6);
  EXPECT_EQ(total("&api_key_ids=key_3"), 4);
  EXPECT_EQ(total("&api_key_ids=key_3&models=m2"), 0);  // filters combine with AND
  EXPECT_EQ(total("&project_ids=nope"), 0);
  EXPECT_EQ(total("&user_ids=u1"), 0);  // no usage is attributed to users
  EXPECT_EQ(total("&batch=true"), 0);   // no batch jobs
  EXPECT_EQ(total("&batch=false"), 7);
  EXPECT_EQ(total("&unknown=1&foo"), 7);  // unknown parameters are ignored
}

TEST_P(UsageApiTest, AnotherOrgsRowsNeverAppear) {
  add({.org = "org_b", .project = "proj_b", .key = "key_b", .model = "mb", .prompt = 99, .cost = 99,
       .started_at_us = us(kT0 + 1)});
  add_event("org_b", "proj_b", "key_b", "gpu", 77, us(kT0 + 2));
  add({.prompt = 1, .cost = 1, .started_at_us = us(kT0 + 3)});
  const std::string day = range(kT0, kT0 + kDay);
  for (const std::string& extra : {std::string(""), std::string("&project_ids=proj_b"), std::string("&api_key_ids=key_b"),
                                   std::string("&org_id=org_b"), std::string("&group_by=project_id,api_key_id")}) {
    for (const json& page : {usage(day + extra), costs(day + extra)}) {
      const std::string text = page.dump();
      EXPECT_EQ(text.find("proj_b"), std::string::npos) << text;
      EXPECT_EQ(text.find("key_b"), std::string::npos) << text;
      EXPECT_EQ(text.find("99"), std::string::npos) << text;
      EXPECT_EQ(text.find("7.7e"), std::string::npos) << text;
    }
  }
  EXPECT_TRUE(usage(day + "&models=mb")["data"][0]["results"].empty());
  EXPECT_EQ(usage(day)["data"][0]["results"][0]["input_tokens"], 1);
  EXPECT_DOUBLE_EQ(costs(day)["data"][0]["results"][0]["amount"]["value"].get<double>(), 0.000001);
}

TEST_P(UsageApiTest, PagesCoverEveryBucketOnce) {
  for (int64_t d = 0; d < 5; ++d) add({.prompt = 1 + d, .cost = 10 + d, .started_at_us = us(kT0 + d * kDay + 7200)});
  add_event("org_a", "proj_1", "key_1", "gpu", 1000, us(kT0 + 4 * kDay + 5));
  const std::string query = range(kT0 + 3600, kT0 + 5 * kDay) + "&limit=2";

  for (bool is_costs : {false, true}) {
    SCOPED_TRACE(is_costs ? "costs" : "usage");
    std::vector<int64_t> all;
    std::string cursor;
    int pages = 0;
    while (true) {
      const json page = is_costs ? costs(query + cursor) : usage(query + cursor);
      ++pages;
      ASSERT_LE(pages, 3);
      for (const auto& b : page["data"]) {
        all.push_back(b["start_time"].get<int64_t>());
        ASSERT_EQ(b["results"].size(), 1u);
        if (is_costs) {
          const int64_t day = (all.back() - kT0) / kDay;
          EXPECT_DOUBLE_EQ(b["results"][0]["amount"]["value"].get<double>(), (10 + day + (day == 4 ? 1000 : 0)) / 1e6);
        } else {
          EXPECT_EQ(b["results"][0]["input_tokens"], 1 + (all.back() - kT0) / kDay);
        }
      }
      if (!page["has_more"].get<bool>()) {
        EXPECT_TRUE(page["next_page"].is_null());
        EXPECT_EQ(page["data"].size(), 1u);
        break;
      }
      EXPECT_EQ(page["data"].size(), 2u);
      ASSERT_TRUE(page["next_page"].is_string());
      cursor = "&page=" + page["next_page"].get<std::string>();
    }
    EXPECT_EQ(pages, 3);
    EXPECT_EQ(all, (std::vector<int64_t>{kT0, kT0 + kDay, kT0 + 2 * kDay, kT0 + 3 * kDay, kT0 + 4 * kDay}));
  }
  // A page that reaches end_time exactly is the last one.
  const json exact = usage(range(kT0, kT0 + 2 * kDay) + "&limit=2");
  EXPECT_EQ(exact["data"].size(), 2u);
  EXPECT_EQ(exact["has_more"], false);
  EXPECT_TRUE(exact["next_page"].is_null());
}

TEST_P(UsageApiTest, CostsSumRecordsAndEventsInCurrencyUnits) {
  add({.project = "proj_1", .key = "key_1", .model = "m1", .cost = 1234567, .started_at_us = us(kT0 + 10)});
  add({.project = "proj_2", .key = "key_2", .model = "m1", .cost = 1, .started_at_us = us(kT0 + 20)});
  add({.model = "m1", .state = "open", .cost = 5'000'000, .started_at_us = us(kT0 + 30)});  // not settled
  add({.model = "m1", .cost = 3'000'000, .started_at_us = us(kT0 + kDay)});                // next day
  add_event("org_a", "proj_2", "key_2", "gpu.h100", 500000, us(kT0 + 40));
  add_event("org_a", "proj_2", "key_2", "gpu.h100", 250000, us(kT0 + kDay - 1));
  const std::string two_days = range(kT0, kT0 + 2 * kDay);

  const json page = costs(two_days);
  ASSERT_EQ(page["data"].size(), 2u);
  const json total = page["data"][0]["results"];
  ASSERT_EQ(total.size(), 1u);
  const json expected = {{"object", "organization.costs.result"},
                         {"amount", {{"value", 1.984568}, {"currency", "usd"}}},
                         {"line_item", nullptr},
                         {"project_id", nullptr},
                         {"api_key_id", nullptr},
                         {"quantity", nullptr},
                         {"quantity_unit", nullptr}};
  EXPECT_EQ(total[0].dump(), expected.dump());
  EXPECT_DOUBLE_EQ(page["data"][1]["results"][0]["amount"]["value"].get<double>(), 3.0);

  const json by_item = costs(two_days + "&group_by=line_item")["data"][0]["results"];
  ASSERT_EQ(by_item.size(), 2u);
  EXPECT_EQ(by_item[0]["line_item"], "gpu.h100");
  EXPECT_DOUBLE_EQ(by_item[0]["amount"]["value"].get<double>(), 0.75);
  EXPECT_EQ(by_item[1]["line_item"], "m1");
  EXPECT_EQ(by_item[1]["amount"].dump(), R"({"value":1.234568,"currency":"usd"})");

  const json p1 = costs(two_days + "&project_ids=proj_1")["data"][0]["results"];
  ASSERT_EQ(p1.size(), 1u);
  EXPECT_EQ(p1[0]["amount"].dump(), R"({"value":1.234567,"currency":"usd"})");

  const json by_proj_key = costs(two_days + "&group_by=project_id,api_key_id&api_key_ids=key_2")["data"][0]["results"];
  ASSERT_EQ(by_proj_key.size(), 1u);
  EXPECT_EQ(by_proj_key[0]["project_id"], "proj_2");
  EXPECT_EQ(by_proj_key[0]["api_key_id"], "key_2");
  EXPECT_TRUE(by_proj_key[0]["line_item"].is_null());
  EXPECT_DOUBLE_EQ(by_proj_key[0]["amount"]["value"].get<double>(), 0.750001);

  // Costs only have day buckets; limit goes to 180.
  EXPECT_EQ(costs(range(kT0, kT0 + 200 * kDay) + "&limit=180")["data"].size(), 180u);
  EXPECT_EQ(organization_costs(*db_, "org_a", two_days + "&limit=181", kNow).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(organization_costs(*db_, "org_a", two_days + "&bucket_width=1h", kNow).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(organization_costs(*db_, "org_a", two_days + "&group_by=model", kNow).status().code(),
            StatusCode::kInvalidArgument);
}

TEST_P(UsageApiTest, EndTimeDefaultsToNow) {
  add({.prompt = 5, .started_at_us = us(kNow - 10)});
  add({.prompt = 7, .started_at_us = us(kNow) + 999999});  // within the current second: included
  const json page = usage("start_time=" + std::to_string(kNow - 2 * kDay));
  ASSERT_EQ(page["data"].size(), 3u);  // kNow is day-aligned: [now-2d, now+1s) touches a third day
  EXPECT_EQ(page["data"][1]["results"][0]["input_tokens"], 5);
  EXPECT_EQ(page["data"][2]["results"][0]["input_tokens"], 7);
}

TEST_P(UsageApiTest, BadQueriesAreInvalidArgumentNamingTheParameter) {
  const std::string day = range(kT0, kT0 + kDay);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "start_time"},
      {"end_time=" + std::to_string(kT0), "start_time"},
      {"start_time=abc", "start_time"},
      {"start_time=12x", "start_time"},
      {"start_time=-5", "start_time"},
      {"start_time=" + std::to_string(kT0) + "&end_time=soon", "end_time"},
      {range(kT0, kT0), "end_time"},
      {range(kT0, kT0 - 1), "end_time"},
      {day + "&bucket_width=5m", "bucket_width"},
      {day + "&group_by=foo", "group_by"},
      {day + "&group_by=model,line_item", "group_by"},
      {day + "&limit=0", "limit"},
      {day + "&limit=32", "limit"},
      {day + "&limit=two", "limit"},
      {day + "&bucket_width=1h&limit=169", "limit"},
      {day + "&bucket_width=1m&limit=1441", "limit"},
      {day + "&page=garbage", "page"},
      {day + "&page=page_zz", "page"},
      {day + "&page=page_0000000000000001", "page"},  // not a bucket of this query
      {day + "&batch=maybe", "batch"},
  };
  for (const auto& [query, param] : cases) {
    const auto r = usage_completions(*db_, "org_a", query, kNow);
    ASSERT_FALSE(r.is_ok()) << query;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << query;
    EXPECT_NE(r.status().message().find(param), std::string::npos) << query << ": " << r.status().to_string();
  }
  EXPECT_TRUE(usage_completions(*db_, "org_a", day + "&bucket_width=1m&limit=1440", kNow).is_ok());
  EXPECT_EQ(organization_costs(*db_, "org_a", "", kNow).status().code(), StatusCode::kInvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(Sqlite, UsageApiTest, ::testing::Values(Dialect::kSqlite));
INSTANTIATE_TEST_SUITE_P(Postgres, UsageApiTest, ::testing::Values(Dialect::kPostgres));

}  // namespace
}  // namespace nc::gateway
