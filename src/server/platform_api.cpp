// Adapters from HTTP to the admin, usage-events and jobs APIs of gateway/ and capacity/ (platform_api.h).
#include "server/platform_api.h"

#include "capacity/jobs_api.h"
#include "core/log.h"
#include "gateway/admin_api.h"
#include "server/handoff.h"
#include "training/fine_tuning_api.h"

namespace nc::server {

using json = nlohmann::json;

awaitable<bool> handle_admin(ApiContext& ctx, Call& call) {
  const std::string method(call.ex.req.method_string());
  ApiResponse res;
  co_await ctx.offload([&] {
    res = gateway::handle_admin(*ctx.gw, *call.caller, method, call.ex.path, call.ex.query_text, call.ex.req.body());
    return true;
  });
  co_return co_await call.ex.reply(response_reply(res));
}

awaitable<bool> handle_jobs(ApiContext& ctx, Call& call) {
  const std::string org = call.caller ? call.caller->principal.org_id : "local";
  const std::string project = call.caller ? call.caller->principal.project_id : "";
  const std::string key_id = call.caller ? call.caller->principal.key_id : "";
  const std::string method(call.ex.req.method_string());
  ApiResponse res;
  co_await ctx.offload([&] {
    res = capacity::handle_jobs(*ctx.jobs, org, project, method, call.ex.path, call.ex.query_text, call.ex.req.body(),
                                key_id);
    return true;
  });
  co_return co_await call.ex.reply(response_reply(res));
}

awaitable<bool> handle_capacity_admin(ApiContext& ctx, Call& call) {
  const std::string method(call.ex.req.method_string());
  ApiResponse res;
  co_await ctx.offload([&] {
    res = capacity::handle_capacity_admin(*ctx.jobs, method, call.ex.path, call.ex.req.body());
    return true;
  });
  co_return co_await call.ex.reply(response_reply(res));
}

awaitable<bool> handle_fine_tuning(ApiContext& ctx, Call& call) {
  const std::string org = call.caller ? call.caller->principal.org_id : "local";
  const std::string project = call.caller ? call.caller->principal.project_id : "";
  const std::string key_id = call.caller ? call.caller->principal.key_id : "";
  const std::string method(call.ex.req.method_string());
  ApiResponse res;
  co_await ctx.offload([&] {  // creation tokenizes the files
    res = training::handle_fine_tuning(*ctx.fine_tunes, org, project, key_id, method, call.ex.path, call.ex.query_text,
                                       call.ex.req.body());
    return true;
  });
  co_return co_await call.ex.reply(response_reply(res));
}

// POST /v1/usage/events: CloudEvents metered into the ledger; 200 only once they are durable.
awaitable<bool> handle_usage_events(ApiContext& ctx, Call& call) {
  Result<std::vector<gateway::UsageEvent>> events = invalid_argument("");
  co_await ctx.offload([&] {
    events = ctx.gw->parse_usage_events(*call.caller, call.ex.req.body());
    return true;
  });
  if (!events.is_ok()) co_return co_await call.ex.reply(error_reply(api_error(400, events.status().message())));
  auto list = std::make_shared<std::vector<gateway::UsageEvent>>(std::move(*events));
  std::vector<std::pair<std::string, std::string>> keys;
  for (const auto& e : *list) keys.emplace_back(e.source, e.id);
  auto done = std::make_shared<Handoff<Result<gateway::Ledger::IngestResult>>>(ctx.io);
  ctx.gw->ingest(*call.caller, std::move(*list), [done](Result<gateway::Ledger::IngestResult> r) { done->set(std::move(r)); });
  Result<gateway::Ledger::IngestResult> stored = co_await done->get();
  if (!stored.is_ok()) {
    NC_LOG_ERROR("usage events: {}", stored.status().to_string());
    co_return co_await call.ex.reply(error_reply(api_error(
        503, "The usage ledger is unavailable; nothing was stored. Retry with the same ids.", "", "", "server_error")));
  }
  json dups = json::array();
  int64_t accepted = 0;
  for (size_t i = 0; i < keys.size(); ++i) {
    if (stored->inserted[i]) ++accepted;
    else dups.push_back(json::object({{"source", keys[i].first}, {"id", keys[i].second}}));
  }
  json res = json::object({{"object", "usage.events.result"}, {"accepted", accepted}, {"duplicates", dups}});
  co_return co_await call.ex.reply(json_reply(200, res));
}

}  // namespace nc::server
