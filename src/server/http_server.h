// HttpServer: the OpenAI-compatible HTTP API over Boost.Beast with C++20 coroutines, one I/O thread.
// Endpoints so far: GET /health, GET /v1/models[/{id}], POST /v1/completions (streaming and not),
// POST /tokenize, POST /detokenize, GET /metrics. Chat completions and embeddings come next (issue 4).
//
// Ownership: borrows the EngineServices (they must outlive it). Thread-safety: `listen` and `run`
// from one thread; `stop` from any thread.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "server/engine_service.h"

namespace nc::server {

class HttpServer {
 public:
  explicit HttpServer(std::vector<EngineService*> models);
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
