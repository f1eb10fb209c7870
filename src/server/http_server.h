// HttpServer: the OpenAI-compatible HTTP API over Boost.Beast with C++20 coroutines, one I/O thread.
// Endpoints: GET /health (503 while models load), GET /v1/models[/{id}], POST /v1/completions and
// /v1/chat/completions (streaming and not), POST /v1/embeddings, POST /tokenize, POST /detokenize,
// POST /apply-template (the chat prompt text, as llama.cpp's server),
// GET /metrics. Requests name their model by id; a model still loading answers 503.
// With a Gateway (serve --db): every route but /health and /metrics needs an API key; inference
// requests pass rate limits and budgets and are written to the usage ledger before their last byte;
// POST /v1/usage/events and the admin API (/v1/organization/..., /v1/admin/...) are served too.
// With a JobController (serve --gpus/--gpu-nodes): the GPU jobs API /v1/jobs... (capacity/jobs_api.h),
// tenant-scoped by the key's organization and project ("local" without a gateway).
//
// Ownership: borrows the ModelRegistry, the Gateway and the JobController (all must outlive the server). Thread-safety: `listen` and `run`
// from one thread; `stop` from any thread.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "capacity/job_controller.h"
#include "gateway/gateway.h"
#include "server/model_registry.h"

namespace nc::server {

class HttpServer {
 public:
  // gateway: null serves without keys, limits or ledger (a private engine server).
  explicit HttpServer(ModelRegistry& models, gateway::Gateway* gateway = nullptr,
                      capacity::JobController* jobs = nullptr);
  ~HttpServer();
  // Binds host:port (port 0: any free port, see port()).
  Status listen(const std::string& host, uint16_t port);
  uint16_t port() const;
  // Serves until stop() or SIGINT/SIGTERM.
  void run();
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace nc::server
