// `neocloud serve -m MODEL[:ALIAS] [--host H] [--port 8080] [--parallel N] [--ctx N] [-t N]`: serves
// the OpenAI-compatible API (see src/server/http_server.h) until SIGINT/SIGTERM.
#include <fmt/format.h>

#include <filesystem>
#include <thread>

#include "apps/neocloud/commands.h"
#include "core/log.h"
#include "server/engine_service.h"
#include "server/http_server.h"

namespace nc::app {
namespace {

struct ServeOptions {
  std::string model, host = "127.0.0.1";
  int port = 8080, parallel = 4, threads = 0;
  int64_t ctx = 4096, batch = 512;
};

Status run_serve(const ServeOptions& o) {
  std::string path = o.model, id;
  if (auto colon = o.model.rfind(':'); colon != std::string::npos && !std::filesystem::exists(o.model)) {
    path = o.model.substr(0, colon);
    id = o.model.substr(colon + 1);
  }
  if (id.empty()) id = std::filesystem::path(path).stem().string();
  server::EngineOptions eo;
  eo.n_ctx = o.ctx;
  eo.parallel = o.parallel;
  eo.n_threads = o.threads;
  eo.token_budget = o.batch;
  NC_ASSIGN_OR_RETURN(auto svc, server::EngineService::start(path, id, eo));
  server::HttpServer srv({svc.get()});
  NC_RETURN_IF_ERROR(srv.listen(o.host, static_cast<uint16_t>(o.port)));
  fmt::print(stderr, "neocloud: serving model '{}' at http://{}:{}/v1\n", id, o.host, srv.port());
  srv.run();
  // Stop the engine (and drop its requests' callbacks) while the server's I/O context still exists:
  // callbacks post to it.
  svc.reset();
  return Status::ok();
}

}  // namespace

void add_serve_command(CLI::App& app) {
  auto o = std::make_shared<ServeOptions>();
  auto* cmd = app.add_subcommand("serve", "Serve the OpenAI-compatible API");
  cmd->add_option("-m,--model", o->model, "GGUF model, optionally PATH:ALIAS (the id clients use)")->required();
  cmd->add_option("--host", o->host, "address to listen on")->capture_default_str();
  cmd->add_option("--port", o->port, "port (0: any free port)")->capture_default_str();
  cmd->add_option("--parallel", o->parallel, "sequences generating at once")->capture_default_str();
  cmd->add_option("-c,--ctx", o->ctx, "KV cache cells shared by all sequences")->capture_default_str();
  cmd->add_option("-b,--batch", o->batch, "tokens per engine step")->capture_default_str();
  cmd->add_option("-t,--threads", o->threads, "threads (0: all cores)")->capture_default_str();
  cmd->callback([o] { report(run_serve(*o)); });
}

}  // namespace nc::app
