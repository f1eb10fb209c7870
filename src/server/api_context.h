// ApiContext: what the API handlers of one server share — the models, the gateway, job controller and
// file store (null when off), the worker pool for CPU and database work off the I/O thread, the I/O executor the
// hand-offs wake, and the edge's limits.
// Ownership: borrows everything (the HttpServer owns the pool and outlives every request).
// Thread-safety: used from the I/O thread; offload() runs its function on the pool.
#pragma once

#include <utility>  // before Boost: asio/awaitable.hpp uses std::exchange

#include <boost/asio.hpp>

#include <optional>

#include "capacity/job_controller.h"
#include "files/file_store.h"
#include "training/deployments.h"
#include "training/fine_tune_controller.h"
#include "gateway/gateway.h"
#include "server/model_registry.h"
#include "server/router.h"

namespace nc::server {

// What a request's "model" names beyond its engine: the id (echoed in responses and metered) and,
// for a LoRA adapter (adapter_registry.h), the adapter its requests run with.
struct ServedModel {
  std::string id;
  bool is_adapter = false;
  std::shared_ptr<const engine::LoraAdapter> adapter;  // set by acquire_adapter
  std::string base;  // an adapter's base model id (its price unless it has its own); a tenant's own
                     // model: "tenant-models" (the operator's price for every tenant model)
  std::shared_ptr<EngineService> keep;  // holds the engine while the request runs (a model may be removed)
};

struct ApiContext {
  ModelRegistry& models;
  gateway::Gateway* gw;
  capacity::JobController* jobs;
  files::FileStore* files;  // null: no Files API (no database)
  training::FineTuneController* fine_tunes;  // null: no fine-tuning API
  training::DeploymentStore* deployments;     // null: models loaded at run time are not kept across restarts
  std::string deploy_dir;                     // where tenants' deployed GGUF files are kept ("": no tenant models)
  int tenant_models_per_org = 2;
  asio::thread_pool& work;
  asio::any_io_executor io;
  const EdgeLimits& limits;
  std::function<int()> open_connections;  // the transport's count, for /metrics

  // Runs f() on the worker pool and resumes on the caller's executor with its result.
  template <typename F>
  awaitable<bool> offload(F f) {
    co_return co_await asio::co_spawn(work, [&f]() -> awaitable<bool> { co_return f(); }, use_awaitable);
  }
  // The same for request preparation, which runs inline when the body is small: two thread hand-offs
  // cost more than rendering and tokenizing a few KB.
  static constexpr size_t kInlinePrepBytes = 4096;
  template <typename F>
  awaitable<bool> prepare(size_t body_bytes, F f) {
    if (body_bytes <= kInlinePrepBytes) co_return f();
    co_return co_await offload(std::move(f));
  }

  // The ready model `id`, or the error to answer: 404 unknown, 503 still loading (or failed).
  EngineService* find_model(const std::string& id, std::optional<ApiError>* error);
  // The model a request body names ("model"; optional where `model_optional`: the first model of the
  // command line), checked against the caller's key scopes for `scope`. A LoRA adapter's id resolves
  // to its base model's engine (`served` says so; another organization's adapter is unknown, 404).
  EngineService* resolve_model(const Call& call, const nlohmann::json& body, std::string_view scope, bool model_optional,
                               std::optional<ApiError>* error, ServedModel* served = nullptr);
  // For an adapter: holds it for the request (served.adapter), reading its file on the worker pool when
  // it is not resident. false with the error: 503 adapter_memory_full when no room can be made.
  awaitable<bool> acquire_adapter(const Call& call, ServedModel& served, std::optional<ApiError>* error);
};

}  // namespace nc::server
