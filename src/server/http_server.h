// HttpServer: the API server — the route table (one line per route, with who may call it), the auth gate
// in front of it, and the wiring of the transport (server/transport.h) to the handler groups:
// inference (server/inference_api.h), models and tokenizer (server/model_api.h), and the admin, usage
// and jobs APIs of other modules (server/platform_api.h). docs/architecture.md describes the request path.
// With a Gateway (serve --db): every route but /health and /metrics needs an API key; inference requests
// pass rate limits and budgets and are written to the usage ledger before their last byte. With a
// JobController (serve --gpus/--gpu-nodes): the GPU jobs API, tenant-scoped by the key's organization
// and project ("local" without a gateway).
//
// Ownership: borrows the ModelRegistry, the Gateway, the JobController and the FileStore (all must
// outlive the server);
// owns the transport and the worker pool. Thread-safety: `listen` and `run` from one thread; `stop` from
// any thread.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "capacity/job_controller.h"
#include "core/status.h"
#include "files/file_store.h"
#include "training/deployments.h"
#include "training/fine_tune_controller.h"
#include "gateway/gateway.h"
#include "server/model_registry.h"
#include "server/transport.h"

namespace nc::server {

class HttpServer {
 public:
  // gateway: null serves without keys, limits or ledger (a private engine server).
  // The optional modules behind the API (null: that API is off).
  struct Modules {
    gateway::Gateway* gateway = nullptr;
    capacity::JobController* jobs = nullptr;
    files::FileStore* files = nullptr;                 // the Files API
    training::FineTuneController* fine_tunes = nullptr;  // the fine-tuning API
    training::DeploymentStore* deployments = nullptr;  // models loaded at run time, kept across restarts
    std::string deploy_dir;                            // tenants' deployed GGUF files ("": no tenant models)
    int tenant_models_per_org = 2;
  };
  explicit HttpServer(ModelRegistry& models, gateway::Gateway* gateway = nullptr, capacity::JobController* jobs = nullptr,
                      EdgeLimits limits = {});
  HttpServer(ModelRegistry& models, const Modules& modules, EdgeLimits limits);
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
