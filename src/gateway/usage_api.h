// The organization usage and costs API in OpenAI's shape, read from the usage ledger (schema v2 in
// src/storage/schema.cpp: usage_records, usage_events):
//   GET /v1/organization/usage/completions  — tokens and request counts per time bucket
//   GET /v1/organization/usage/fine_tuning  — trained tokens per time bucket (neocloud's)
//   GET /v1/organization/costs              — money per day bucket
// See ../shared/design/openai-api.md §7 for the wire shapes. The org always comes from the caller's
// admin key (the HTTP layer passes it); the query string can only narrow within that org.
//
// usage/completions: start_time (required, unix s, inclusive), end_time (exclusive, default now),
//   bucket_width 1m|1h|1d (default 1d), group_by ⊆ {project_id, api_key_id, model} (user_id, batch and
//   service_tier are accepted and stay null), filters project_ids / api_key_ids / models, limit (buckets:
//   1d default 7 max 31; 1h 24/168; 1m 60/1440), page (the previous response's next_page cursor).
//   Counts settled usage_records (completions and chat completions; embeddings are endpoint
//   "embeddings" and are not counted here) by started_at: input_tokens = prompt_tokens (includes
//   cached), input_cached_tokens, output_tokens, num_model_requests. Buckets with no usage are present
//   with empty results, as OpenAI does.
// costs: start_time, end_time, bucket_width 1d only, group_by ⊆ {project_id, line_item, api_key_id},
//   project_ids / api_key_ids filters, limit 1..180 (default 7), page. Sums cost_micros of settled
//   usage_records (line_item = model) and usage_events (line_item = item), converted to currency units
//   only in the response: amount {value: micros / 1e6, currency: "usd"}.
// Array parameters accept repeated `x=a&x=b`, `x[]=a` and comma-separated values.
//
// Errors: InvalidArgument naming the parameter (the HTTP layer answers 400 with param set).
// Thread-safety: stateless functions; the Database is thread-safe. Each call is one read transaction.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "storage/database.h"

namespace nc::gateway {

// `query`: the raw query string after '?', percent-encoded. `now_s`: the clock (unix seconds).
Result<nlohmann::ordered_json> usage_completions(storage::Database& db, const std::string& org_id, std::string_view query,
                                                 int64_t now_s);
// GET /v1/organization/usage/fine_tuning (neocloud's): trained tokens and jobs billed per bucket, from
// the fine-tuning usage events (item "fine-tune:<base>"); group_by and filters as usage/completions
// (model = the base model).
Result<nlohmann::ordered_json> usage_fine_tuning(storage::Database& db, const std::string& org_id, std::string_view query,
                                                 int64_t now_s);
Result<nlohmann::ordered_json> organization_costs(storage::Database& db, const std::string& org_id,
                                                  std::string_view query, int64_t now_s);

}  // namespace nc::gateway
