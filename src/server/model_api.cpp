// The model handlers (model_api.h): health, metrics, models, tokenize, detokenize, apply-template.
#include "server/model_api.h"

#include <fmt/format.h>

#include "core/histogram.h"
#include "core/json_parse.h"
#include "server/openai.h"

namespace nc::server {

using json = nlohmann::json;

Result<json> parse_body_object(const Exchange& ex) {
  auto body = parse_json(ex.req.body());
  if (!body.is_ok() || !body->is_object()) {
    const std::string why = body.is_ok() ? "it must be a JSON object" : body.status().message();
    return invalid_argument("We could not parse the JSON body of your request: " + why + ".");
  }
  return body;
}

ApiError model_not_found(const std::string& id) {
  return api_error(404, fmt::format("The model `{}` does not exist.", id), "model", "model_not_found");
}

namespace {
EngineService* ready_or_error(const ModelRegistry::Lookup& l, const std::string& id, std::optional<ApiError>* error) {
  switch (l.state) {
    case ModelRegistry::State::kReady: return l.service;
    case ModelRegistry::State::kLoading:
      *error = api_error(503, fmt::format("The model `{}` is still loading; try again shortly.", id), "model",
                         "model_loading", "server_error");
      return nullptr;
    case ModelRegistry::State::kFailed:
      *error = api_error(503, fmt::format("The model `{}` is not available.", id), "model", "model_unavailable",
                         "server_error");
      return nullptr;
    case ModelRegistry::State::kUnknown:
      *error = model_not_found(id);
      return nullptr;
  }
  return nullptr;
}
}  // namespace

namespace {
// What acquiring an adapter failed with, as the API answers it.
ApiError adapter_error(const std::string& id, const Status& st) {
  if (st.code() == StatusCode::kNotFound) return model_not_found(id);
  if (st.code() == StatusCode::kResourceExhausted)
    return api_error(503, st.message(), "model", "adapter_memory_full", "server_error");
  return api_error(503, fmt::format("The model `{}` is not available.", id), "model", "model_unavailable", "server_error");
}
}  // namespace

EngineService* ApiContext::find_model(const std::string& id, std::optional<ApiError>* error) {
  return ready_or_error(models.lookup(id), id, error);
}

EngineService* ApiContext::resolve_model(const Call& call, const json& body, std::string_view scope, bool model_optional,
                                         std::optional<ApiError>* error, ServedModel* served) {
  std::string id;
  if (auto it = body.find("model"); it != body.end() && it->is_string()) {
    id = it->get<std::string>();
  } else if (!model_optional) {
    *error = api_error(400, "you must provide a model parameter", "model");
    return nullptr;
  } else {
    // Routes where "model" is optional use the first model of the command line.
    const auto first = models.default_model();
    if (first.state != ModelRegistry::State::kReady) return ready_or_error(first, "default", error);
    id = first.service->id();
  }
  if (call.caller) {
    if (auto d = gw->authorize_inference(*call.caller, scope, id)) {
      *error = std::move(*d);
      return nullptr;
    }
  }
  if (served) served->id = id;
  const std::string org = call.caller ? call.caller->principal.org_id : "";
  const ModelRegistry::Lookup l = models.lookup(id);
  if (l.state != ModelRegistry::State::kUnknown && !l.org.empty() && call.caller && l.org != org) {
    *error = model_not_found(id);  // another organization's own model: as if it did not exist
    return nullptr;
  }
  if (l.state != ModelRegistry::State::kUnknown || !models.adapters().contains(id)) {
    if (served) {
      served->keep = l.keep;
      if (!l.org.empty()) served->base = "tenant-models";
    }
    return ready_or_error(l, id, error);
  }
  auto base = models.adapters().base_of(id, call.caller ? call.caller->principal.org_id : "");
  if (!base.is_ok()) {
    *error = model_not_found(id);
    return nullptr;
  }
  const ModelRegistry::Lookup bl = models.lookup(*base);
  if (served) {
    served->is_adapter = true;
    served->base = bl.org.empty() ? *base : "tenant-models";  // an organization's own model's price item
    served->keep = bl.keep;
  }
  return ready_or_error(bl, *base, error);
}

awaitable<bool> ApiContext::acquire_adapter(const Call& call, ServedModel& served, std::optional<ApiError>* error) {
  const std::string org = call.caller ? call.caller->principal.org_id : "";
  Result<AdapterRegistry::Acquired> a = not_found("");
  if (models.adapters().resident(served.id)) {
    a = models.adapters().acquire(served.id, org);
  } else {
    co_await offload([&] {  // reads the adapter's file
      a = models.adapters().acquire(served.id, org);
      return true;
    });
  }
  if (a.is_ok()) {
    served.adapter = a->adapter;
    co_return true;
  }
  *error = adapter_error(served.id, a.status());
  co_return false;
}

awaitable<bool> handle_health(ApiContext& ctx, Call& call) {
  const bool ready = ctx.models.all_ready();
  json j = json::object();
  j["status"] = ready ? "ok" : "loading";
  co_return co_await call.ex.reply(json_reply(ready ? 200 : 503, j));
}

namespace {
json model_json(const ModelRegistry::Entry& e) {
  const EngineService& m = *e.service;
  json j = {{"id", m.id()}, {"object", "model"}, {"created", m.created()},
            {"owned_by", e.spec.org.empty() ? std::string("neocloud") : e.spec.org},
            {"max_model_len", m.n_ctx()}};
  if (e.spec.random_weights) {
    j["random_weights"] = true;
    j["description"] = "Demo model generated by neocloud with random weights: its output is meaningless text.";
  }
  return j;
}
}  // namespace

namespace {
json adapter_json(const AdapterRegistry::Info& a, int64_t n_ctx) {
  return {{"id", a.spec.id},        {"object", "model"}, {"created", a.created},
          {"owned_by", a.spec.org.empty() ? "neocloud" : a.spec.org}, {"parent", a.spec.base},
          {"root", a.spec.base},    {"max_model_len", n_ctx}};
}

int64_t n_ctx_of(ApiContext& ctx, const std::string& base) {
  const auto l = ctx.models.lookup(base);
  return l.service ? l.service->n_ctx() : 0;
}

Reply models_reply(ApiContext& ctx, const Call& call) {
  json data = json::array();
  const std::string org = call.caller ? call.caller->principal.org_id : "";
  for (const auto& e : ctx.models.entries())
    if (e.state == ModelRegistry::State::kReady && (!call.caller || call.caller->allows_model(e.spec.id)) &&
        (e.spec.org.empty() || !call.caller || e.spec.org == org))
      data.push_back(model_json(e));
  for (const auto& a : ctx.models.adapters().list(call.caller ? call.caller->principal.org_id : ""))
    if (!call.caller || call.caller->allows_model(a.spec.id)) data.push_back(adapter_json(a, n_ctx_of(ctx, a.spec.base)));
  return json_reply(200, json{{"object", "list"}, {"data", data}});
}
}  // namespace

awaitable<bool> handle_list_models(ApiContext& ctx, Call& call) { co_return co_await call.ex.reply(models_reply(ctx, call)); }

awaitable<bool> handle_get_model(ApiContext& ctx, Call& call) {
  const std::string& id = call.params.at(0);
  std::optional<ApiError> error;
  if (call.caller) {
    if (auto d = ctx.gw->authorize_inference(*call.caller, "models", id)) co_return co_await call.ex.reply(error_reply(*d));
  }
  for (const auto& a : ctx.models.adapters().list(call.caller ? call.caller->principal.org_id : ""))
    if (a.spec.id == id) co_return co_await call.ex.reply(json_reply(200, adapter_json(a, n_ctx_of(ctx, a.spec.base))));
  if (!ctx.find_model(id, &error)) co_return co_await call.ex.reply(error_reply(*error));
  const std::string org = call.caller ? call.caller->principal.org_id : "";
  for (const auto& e : ctx.models.entries())
    if (e.spec.id == id && (e.spec.org.empty() || !call.caller || e.spec.org == org))
      co_return co_await call.ex.reply(json_reply(200, model_json(e)));
  Reply unknown = error_reply(model_not_found(id));
  co_return co_await call.ex.reply(unknown);
}

// Prometheus text: each metric family once (# HELP, # TYPE, then one series per model).
awaitable<bool> handle_metrics(ApiContext& ctx, Call& call) {
  std::string out;
  struct Served {
    std::string labels;
    engine::Scheduler::Stats stats;
  };
  std::vector<Served> served;
  // /metrics is public: organizations' own models are not listed.
  for (const auto& m : ctx.models.ready_services(/*public_only=*/true))
    served.push_back({fmt::format("model_name=\"{}\"", m->id()), m->stats()});
  auto family = [&](const char* name, const char* type, const char* help, auto value) {
    out += prometheus_header(fmt::format("neocloud:{}", name), type, help);
    for (const Served& s : served) out += fmt::format("neocloud:{}{{{}}} {}\n", name, s.labels, value(s.stats));
  };
  using Stats = engine::Scheduler::Stats;
  family("num_requests_running", "gauge", "Requests generating.", [](const Stats& s) { return s.running; });
  family("num_requests_waiting", "gauge", "Requests waiting for a slot or KV blocks.", [](const Stats& s) { return s.waiting; });
  family("kv_blocks_used", "gauge", "KV cache blocks in use.", [](const Stats& s) { return s.kv_blocks_used; });
  family("kv_blocks_total", "gauge", "KV cache blocks in all.", [](const Stats& s) { return s.kv_blocks_total; });
  family("prompt_tokens_total", "counter", "Prompt tokens evaluated.", [](const Stats& s) { return s.prompt_tokens; });
  family("generation_tokens_total", "counter", "Tokens generated.", [](const Stats& s) { return s.generated_tokens; });
  family("num_preemptions_total", "counter", "Sequences preempted for KV blocks.", [](const Stats& s) { return s.preemptions; });
  family("request_success_total", "counter", "Requests finished.", [](const Stats& s) { return s.requests_finished; });
  auto histograms = [&](const char* name, const char* help, Histogram Stats::*h) {
    const std::string full = fmt::format("neocloud:{}", name);
    out += prometheus_header(full, "histogram", help);
    for (const Served& s : served) (s.stats.*h).append_prometheus(out, full, s.labels);
  };
  histograms("time_to_first_token_seconds", "Time from submission to the first token.", &Stats::time_to_first_token);
  histograms("inter_token_latency_seconds", "Time between consecutive tokens of a request.", &Stats::inter_token);
  histograms("e2e_request_latency_seconds", "Time from submission to the end of the request.", &Stats::e2e);
  {
    const AdapterRegistry& ad = ctx.models.adapters();
    size_t n = 0, resident = 0;
    for (const auto& a : ad.list("")) ++n, resident += a.resident;
    out += prometheus_header("neocloud:lora_adapters", "gauge", "LoRA adapters registered.");
    out += fmt::format("neocloud:lora_adapters {}\n", n);
    out += prometheus_header("neocloud:lora_adapters_resident", "gauge", "LoRA adapters in memory.");
    out += fmt::format("neocloud:lora_adapters_resident {}\n", resident);
    out += prometheus_header("neocloud:lora_memory_bytes", "gauge", "Memory held by resident LoRA adapters.");
    out += fmt::format("neocloud:lora_memory_bytes {}\n", ad.resident_bytes());
    out += prometheus_header("neocloud:lora_memory_budget_bytes", "gauge", "serve --lora-memory-mib, in bytes.");
    out += fmt::format("neocloud:lora_memory_budget_bytes {}\n", ad.budget());
  }
  out += prometheus_header("neocloud:http_connections", "gauge", "Open client connections.");
  out += fmt::format("neocloud:http_connections {}\n", ctx.open_connections ? ctx.open_connections() : 0);
  if (ctx.gw) {
    // The usage ledger's writer: every request's record waits for this before its last byte.
    const storage::GroupCommit::Stats l = ctx.gw->ledger().stats();
    out += prometheus_header("neocloud:ledger_commits_total", "counter", "Ledger transactions committed (one fsync each).");
    out += fmt::format("neocloud:ledger_commits_total {}\n", l.groups);
    out += prometheus_header("neocloud:ledger_writes_total", "counter", "Ledger writes (records, holds, event batches).");
    out += fmt::format("neocloud:ledger_writes_total {}\n", l.units);
    out += prometheus_header("neocloud:ledger_write_seconds", "histogram",
                             "Time from a ledger write's submission to its durable commit.");
    l.write_seconds.append_prometheus(out, "neocloud:ledger_write_seconds");
  }
  Reply r;
  r.body = std::move(out);
  r.content_type = "text/plain; version=0.0.4";
  co_return co_await call.ex.reply(r);
}

namespace {
// The body and model of a tokenizer route, or the error already answered.
struct ModelCall {
  json body;
  EngineService* model = nullptr;
  ServedModel served;  // holds the engine for the call
  std::optional<Reply> error;
};
ModelCall model_call(ApiContext& ctx, Call& call, std::string_view scope) {
  ModelCall mc;
  auto body = parse_body_object(call.ex);
  if (!body.is_ok()) {
    mc.error = error_reply(body.status());
    return mc;
  }
  mc.body = std::move(*body);
  std::optional<ApiError> error;
  mc.model = ctx.resolve_model(call, mc.body, scope, /*model_optional=*/true, &error, &mc.served);
  if (!mc.model) mc.error = error_reply(*error);
  return mc;
}

Reply tokenize_reply(const EngineService& m, const json& body) {
  std::string text;
  if (auto it = body.find("content"); it != body.end() && it->is_string()) text = it->get<std::string>();
  else if (auto p = body.find("prompt"); p != body.end() && p->is_string()) text = p->get<std::string>();
  else return error_reply(api_error(400, "'content' (a string) is required", "content"));
  // A flag that is present must be a boolean (nlohmann's value() would throw on another type).
  bool add_special = true, parse_special = true, with_pieces = false;
  const std::pair<const char*, bool*> flags[] = {{"add_special", &add_special}, {"parse_special", &parse_special},
                                                 {"with_pieces", &with_pieces}};
  for (const auto& [k, out] : flags) {
    auto it = body.find(k);
    if (it == body.end() || it->is_null()) continue;
    if (!it->is_boolean()) return error_reply(api_error(400, fmt::format("'{}' must be a boolean", k), k));
    *out = it->get<bool>();
  }
  const auto ids = m.vocab().tokenize(text, add_special, parse_special);
  json j = {{"tokens", ids}, {"count", ids.size()}, {"max_model_len", m.n_ctx()}};
  if (with_pieces) {
    json pieces = json::array();
    for (auto id : ids) pieces.push_back({{"id", id}, {"piece", m.vocab().token_to_piece(id, true)}});
    j["tokens"] = pieces;
  }
  return json_reply(200, j);
}

Reply detokenize_reply(const EngineService& m, const json& body) {
  auto it = body.find("tokens");
  if (it == body.end() || !it->is_array()) return error_reply(api_error(400, "'tokens' (an array of ids) is required", "tokens"));
  std::vector<engine::TokenId> ids;
  for (const auto& x : *it) {
    if (!x.is_number_integer() || x.get<int64_t>() < 0 || x.get<int64_t>() >= m.vocab().n_tokens())
      return error_reply(api_error(400, "'tokens' holds an id outside the vocabulary", "tokens"));
    ids.push_back(static_cast<engine::TokenId>(x.get<int64_t>()));
  }
  return json_reply(200, json{{"content", m.vocab().detokenize(ids, false, false)}});
}
Reply apply_template_reply(const EngineService& m, const json& body) {
  auto text = render_chat_request(m.chat(), body);
  if (!text.is_ok()) return error_reply(text.status());
  return json_reply(200, json{{"prompt", *text}, {"format", m.chat().kind()}});
}
}  // namespace

awaitable<bool> handle_tokenize(ApiContext& ctx, Call& call) {
  ModelCall mc = model_call(ctx, call, "tokenize");
  if (mc.error) co_return co_await call.ex.reply(*mc.error);
  co_return co_await call.ex.reply(tokenize_reply(*mc.model, mc.body));
}

awaitable<bool> handle_detokenize(ApiContext& ctx, Call& call) {
  ModelCall mc = model_call(ctx, call, "tokenize");
  if (mc.error) co_return co_await call.ex.reply(*mc.error);
  co_return co_await call.ex.reply(detokenize_reply(*mc.model, mc.body));
}

// POST /apply-template (as llama.cpp's server): the chat prompt text a request's messages become.
awaitable<bool> handle_apply_template(ApiContext& ctx, Call& call) {
  ModelCall mc = model_call(ctx, call, "tokenize");
  if (mc.error) co_return co_await call.ex.reply(*mc.error);
  co_return co_await call.ex.reply(apply_template_reply(*mc.model, mc.body));
}

}  // namespace nc::server
