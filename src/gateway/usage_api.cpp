#include "gateway/usage_api.h"

#include "core/query_string.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <optional>
#include <utility>
#include <vector>

namespace nc::gateway {

namespace {

using json = nlohmann::ordered_json;

// Unix seconds accepted for start_time / end_time: 0 .. 9999-12-31T23:59:59Z, so that microseconds
// and bucket arithmetic stay far from int64 overflow.
constexpr int64_t kMaxTime = 253402300799;
constexpr int64_t kMicros = 1'000'000;

// Query strings: core/query_string.h (percent-decoded, `name[]` as `name`, lists by repeat or comma).

std::optional<int64_t> parse_int(std::string_view s) {
  int64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

Result<int64_t> parse_time(const std::string& name, const std::string& value) {
  const auto v = parse_int(value);
  if (!v || *v < 0 || *v > kMaxTime) return invalid_argument(name + ": must be an integer unix time in seconds");
  return *v;
}

// ---- page cursor: "page_" + 16 hex digits of the next page's first bucket start (unix seconds) ----

std::string encode_cursor(int64_t bucket_start) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "page_%016llx", static_cast<unsigned long long>(bucket_start));
  return buf;
}

std::optional<int64_t> decode_cursor(std::string_view cursor) {
  if (!cursor.starts_with("page_") || cursor.size() != 5 + 16) return std::nullopt;
  uint64_t v = 0;
  const char* first = cursor.data() + 5;
  const char* last = cursor.data() + cursor.size();
  const auto [end, ec] = std::from_chars(first, last, v, 16);
  if (ec != std::errc() || end != last || v > static_cast<uint64_t>(kMaxTime)) return std::nullopt;
  return static_cast<int64_t>(v);
}

// ---- what differs between the endpoints ----

struct Width {
  std::string_view name;
  int64_t seconds;
  int64_t default_limit, max_limit;
};

struct Filter {
  std::string_view param;   // the query parameter (an array)
  std::string_view column;  // its column in the source; empty: a key always null here (any value matches nothing)
};

struct Endpoint {
  std::vector<Width> widths;               // the first is the default
  std::vector<std::string_view> group_by;  // group_by values that are columns of the source
  std::vector<std::string_view> null_keys; // group_by values accepted but always null here
  std::vector<Filter> filters;
  bool batch_param = false;  // `batch` is accepted: every request is non-batch, so batch=true matches nothing
  // One SELECT yielding `t` (unix microseconds) and the group and aggregate columns, with $1 = org_id
  // and $4 <= t < $5 applied inside (so the (org_id, time) indexes serve it).
  std::string_view source;
  std::string_view aggregates;  // SELECT-list aggregates over the source's columns
  // One result object (group keys null) from the aggregates of a row, which start at column `first`.
  Result<json> (*result)(const storage::Row& row, size_t first);
};

// A validated request: the page of buckets to answer and the SQL that aggregates it.
struct Plan {
  int64_t width = 0;
  int64_t page_start = 0;  // first bucket of this page (unix seconds, aligned)
  int64_t buckets = 0;     // on this page
  std::optional<int64_t> next_page;
  std::vector<std::string_view> group_by;  // source columns grouped on, in the endpoint's order
  std::vector<std::string> where;          // conditions on the source's columns
  storage::Params params;
};

Result<Plan> make_plan(const Endpoint& ep, const std::string& org_id, const QueryString& q, int64_t now_s) {
  Plan plan;
  // Time range.
  const auto start_text = q.get("start_time");
  if (!start_text) return invalid_argument("start_time: required");
  NC_ASSIGN_OR_RETURN(const int64_t start, parse_time("start_time", *start_text));
  int64_t end = now_s + 1;  // default: up to now, the current second included
  if (const auto end_text = q.get("end_time")) {
    NC_ASSIGN_OR_RETURN(end, parse_time("end_time", *end_text));
  }
  if (end <= start) return invalid_argument("end_time: must be after start_time (the default is now)");

  // Bucket width and limit.
  const Width* width = &ep.widths.front();
  if (const auto w = q.get("bucket_width")) {
    auto it = std::find_if(ep.widths.begin(), ep.widths.end(), [&](const Width& x) { return x.name == *w; });
    if (it == ep.widths.end()) {
      std::string allowed;
      for (const Width& x : ep.widths) allowed += (allowed.empty() ? "" : ", ") + std::string(x.name);
      return invalid_argument("bucket_width: must be one of " + allowed);
    }
    width = &*it;
  }
  plan.width = width->seconds;
  int64_t limit = width->default_limit;
  if (const auto l = q.get("limit")) {
    const auto v = parse_int(*l);
    if (!v || *v < 1 || *v > width->max_limit)
      return invalid_argument("limit: must be an integer from 1 to " + std::to_string(width->max_limit) +
                              " for bucket_width " + std::string(width->name));
    limit = *v;
  }

  // The page: buckets are aligned to the width (UTC); the first one contains start_time.
  const int64_t origin = start - start % plan.width;
  plan.page_start = origin;
  if (const auto page = q.get("page"); page && !page->empty()) {
    const auto at = decode_cursor(*page);
    if (!at || *at < origin || *at >= end || (*at - origin) % plan.width != 0)
      return invalid_argument("page: not a cursor of this query");
    plan.page_start = *at;
  }
  const int64_t page_end = plan.page_start + limit * plan.width;
  plan.buckets = (std::min(page_end, end) - plan.page_start + plan.width - 1) / plan.width;
  if (page_end < end) plan.next_page = page_end;

  // Grouping: kept in the endpoint's order so that the SQL and the output do not depend on the query's.
  const std::vector<std::string> group_by = q.list("group_by");
  for (const std::string& g : group_by) {
    const bool known = std::find(ep.group_by.begin(), ep.group_by.end(), g) != ep.group_by.end() ||
                       std::find(ep.null_keys.begin(), ep.null_keys.end(), g) != ep.null_keys.end();
    if (!known) return invalid_argument("group_by: unsupported value '" + g + "'");
  }
  for (std::string_view key : ep.group_by)
    if (std::find(group_by.begin(), group_by.end(), key) != group_by.end()) plan.group_by.push_back(key);

  // $1 org, $2 page start (s), $3 width (s), $4 / $5 the time range in microseconds, then filter values.
  plan.params = {org_id, plan.page_start, plan.width, std::max(start, plan.page_start) * kMicros,
                 std::min(end, page_end) * kMicros};
  for (const Filter& f : ep.filters) {
    const std::vector<std::string> values = q.list(f.param);
    if (values.empty()) continue;
    if (f.column.empty()) {
      plan.where.push_back("1 = 0");
      continue;
    }
    std::string in = std::string(f.column) + " IN (";
    for (size_t i = 0; i < values.size(); ++i) {
      plan.params.emplace_back(values[i]);
      in += (i ? ", $" : "$") + std::to_string(plan.params.size());
    }
    plan.where.push_back(in + ")");
  }
  if (const auto batch = q.get("batch"); ep.batch_param && batch) {
    if (*batch != "true" && *batch != "false") return invalid_argument("batch: must be true or false");
    if (*batch == "true") plan.where.push_back("1 = 0");
  }
  return plan;
}

// Runs the plan in one read transaction and returns the page.
Result<json> run_plan(storage::Database& db, const Endpoint& ep, const Plan& plan) {
  const std::string bucket = "(t / 1000000 - $2) / $3";
  std::string keys, order;
  for (std::string_view k : plan.group_by) {
    keys += ", " + std::string(k);
    order += ", " + std::string(k) + " IS NULL, " + std::string(k);  // NULLs last on both backends
  }
  std::string where;
  for (const std::string& w : plan.where) where += (where.empty() ? " WHERE " : " AND ") + w;
  const std::string sql = "SELECT " + bucket + keys + ", " + std::string(ep.aggregates) + " FROM (" +
                          std::string(ep.source) + ") s" + where + " GROUP BY 1" + keys + " ORDER BY 1" + order;
  NC_ASSIGN_OR_RETURN(const storage::Rows rows,
                      db.read([&](storage::Transaction& tx) { return tx.query(sql, plan.params); }));

  json data = json::array();
  for (int64_t i = 0; i < plan.buckets; ++i) {
    const int64_t at = plan.page_start + i * plan.width;
    data.push_back({{"object", "bucket"}, {"start_time", at}, {"end_time", at + plan.width}, {"results", json::array()}});
  }
  for (const storage::Row& row : rows) {
    NC_ASSIGN_OR_RETURN(const int64_t b, row.get_int(0));
    if (b < 0 || b >= plan.buckets) return internal_error("usage query returned bucket " + std::to_string(b));
    NC_ASSIGN_OR_RETURN(json result, ep.result(row, 1 + plan.group_by.size()));
    for (size_t k = 0; k < plan.group_by.size(); ++k) {
      NC_ASSIGN_OR_RETURN(const auto v, row.get_optional_text(1 + k));
      result[std::string(plan.group_by[k])] = v ? json(*v) : json(nullptr);
    }
    data[static_cast<size_t>(b)]["results"].push_back(std::move(result));
  }
  json page = {{"object", "page"}, {"data", std::move(data)}, {"has_more", plan.next_page.has_value()}};
  page["next_page"] = plan.next_page ? json(encode_cursor(*plan.next_page)) : json(nullptr);
  return page;
}

Result<json> serve(const Endpoint& ep, storage::Database& db, const std::string& org_id, std::string_view query,
                   int64_t now_s) {
  const QueryString q(query);
  NC_ASSIGN_OR_RETURN(Plan plan, make_plan(ep, org_id, q, now_s));
  return run_plan(db, ep, plan);
}

// ---- the two endpoints ----

// Columns from `first`: SUM(prompt_tokens), SUM(completion_tokens), SUM(cached_tokens), COUNT(*).
Result<json> completions_result(const storage::Row& row, size_t first) {
  NC_ASSIGN_OR_RETURN(const int64_t input, row.get_int(first));
  NC_ASSIGN_OR_RETURN(const int64_t output, row.get_int(first + 1));
  NC_ASSIGN_OR_RETURN(const int64_t cached, row.get_int(first + 2));
  NC_ASSIGN_OR_RETURN(const int64_t requests, row.get_int(first + 3));
  return json{{"object", "organization.usage.completions.result"},
              {"input_tokens", input},
              {"input_cached_tokens", cached},
              {"output_tokens", output},
              {"input_audio_tokens", 0},
              {"output_audio_tokens", 0},
              {"num_model_requests", requests},
              {"project_id", nullptr},
              {"user_id", nullptr},
              {"api_key_id", nullptr},
              {"model", nullptr},
              {"batch", nullptr},
              {"service_tier", nullptr}};
}

// Column `first`: SUM(cost) in micro-units, converted to currency units only here.
Result<json> costs_result(const storage::Row& row, size_t first) {
  NC_ASSIGN_OR_RETURN(const int64_t micros, row.get_int(first));
  return json{{"object", "organization.costs.result"},
              {"amount", {{"value", static_cast<double>(micros) / 1e6}, {"currency", "usd"}}},
              {"line_item", nullptr},
              {"project_id", nullptr},
              {"api_key_id", nullptr},
              {"quantity", nullptr},
              {"quantity_unit", nullptr}};
}

const Endpoint& completions_endpoint() {
  static const Endpoint ep{
      .widths = {{"1d", 86400, 7, 31}, {"1h", 3600, 24, 168}, {"1m", 60, 60, 1440}},
      .group_by = {"project_id", "api_key_id", "model"},
      .null_keys = {"user_id", "batch", "service_tier"},
      .filters = {{"project_ids", "project_id"}, {"api_key_ids", "api_key_id"}, {"models", "model"}, {"user_ids", ""}},
      .batch_param = true,
      .source = "SELECT started_at AS t, project_id, api_key_id, model, prompt_tokens, completion_tokens, cached_tokens "
                "FROM usage_records WHERE org_id = $1 AND state = 'settled' "
                "AND endpoint IN ('completions', 'chat.completions') AND started_at >= $4 AND started_at < $5",
      .aggregates = "SUM(prompt_tokens), SUM(completion_tokens), SUM(cached_tokens), COUNT(*)",
      .result = completions_result,
  };
  return ep;
}

// Columns from `first`: SUM(input_tokens) (trained tokens), COUNT(*) (jobs billed).
Result<json> fine_tuning_result(const storage::Row& row, size_t first) {
  NC_ASSIGN_OR_RETURN(const int64_t tokens, row.get_int(first));
  NC_ASSIGN_OR_RETURN(const int64_t jobs, row.get_int(first + 1));
  return json{{"object", "organization.usage.fine_tuning.result"},
              {"trained_tokens", tokens},
              {"num_jobs", jobs},
              {"project_id", nullptr},
              {"api_key_id", nullptr},
              {"model", nullptr}};
}

// Fine-tuning's usage events (item "fine-tune:<base>", one per job): the base model is the item's rest.
const Endpoint& fine_tuning_endpoint() {
  static const Endpoint ep{
      .widths = {{"1d", 86400, 7, 31}, {"1h", 3600, 24, 168}, {"1m", 60, 60, 1440}},
      .group_by = {"project_id", "api_key_id", "model"},
      .null_keys = {},
      .filters = {{"project_ids", "project_id"}, {"api_key_ids", "api_key_id"}, {"models", "model"}},
      .batch_param = false,
      .source = "SELECT e.time AS t, e.project_id, e.api_key_id, SUBSTR(e.item, 11) AS model, e.input_tokens "
                "FROM usage_events e WHERE e.org_id = $1 AND e.item LIKE 'fine-tune:%' "
                "AND e.time >= $4 AND e.time < $5",
      .aggregates = "SUM(input_tokens), COUNT(*)",
      .result = fine_tuning_result,
  };
  return ep;
}

const Endpoint& costs_endpoint() {
  static const Endpoint ep{
      .widths = {{"1d", 86400, 7, 180}},
      .group_by = {"project_id", "line_item", "api_key_id"},
      .null_keys = {},
      .filters = {{"project_ids", "project_id"}, {"api_key_ids", "api_key_id"}},
      .batch_param = false,
      .source = "SELECT r.started_at AS t, r.model AS line_item, r.project_id, r.api_key_id, r.cost_micros AS cost "
                "FROM usage_records r WHERE r.org_id = $1 AND r.state = 'settled' "
                "AND r.started_at >= $4 AND r.started_at < $5 "
                "UNION ALL "
                "SELECT e.time, e.item, e.project_id, e.api_key_id, e.cost_micros "
                "FROM usage_events e WHERE e.org_id = $1 AND e.time >= $4 AND e.time < $5",
      .aggregates = "SUM(cost)",
      .result = costs_result,
  };
  return ep;
}

}  // namespace

Result<nlohmann::ordered_json> usage_completions(storage::Database& db, const std::string& org_id, std::string_view query,
                                                 int64_t now_s) {
  return serve(completions_endpoint(), db, org_id, query, now_s);
}

Result<nlohmann::ordered_json> usage_fine_tuning(storage::Database& db, const std::string& org_id, std::string_view query,
                                                 int64_t now_s) {
  return serve(fine_tuning_endpoint(), db, org_id, query, now_s);
}

Result<nlohmann::ordered_json> organization_costs(storage::Database& db, const std::string& org_id,
                                                  std::string_view query, int64_t now_s) {
  return serve(costs_endpoint(), db, org_id, query, now_s);
}

}  // namespace nc::gateway
