// `neocloud serve [-m MODEL[:ALIAS]]... [--host H] [--port 8080] [--parallel N] [--ctx N] [-t N]`: serves
// the OpenAI-compatible API (see src/server/http_server.h) until SIGINT/SIGTERM. Several -m serve
// several models, addressed by id; with none, a demo model with random weights (made on first start).
// --db URL turns on the multi-tenant gateway (API keys, rate limits, budgets, the usage ledger, the
// admin API): the first start prints the operator's admin key once.
#include <fmt/format.h>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <thread>

#include "apps/neocloud/commands.h"
#include "core/log.h"
#include "gateway/gateway.h"
#include "storage/database.h"
#include "server/http_server.h"
#include "server/model_registry.h"

namespace nc::app {
namespace {

struct ServeOptions {
  std::vector<std::string> models;
  std::string host = "127.0.0.1";
  int port = 8080, parallel = 4, threads = 0;
  int64_t ctx = 4096, batch = 0, chunk = 128;
  std::string db, instance = "local", admin_key_file;
};

Status run_serve(const ServeOptions& o) {
  std::vector<server::ModelSpec> specs;
  for (const auto& m : o.models) specs.push_back(server::parse_model_arg(m));
  if (specs.empty()) specs.push_back(server::demo_model_spec());
  for (const auto& s : specs) {
    if (!s.make_demo && !std::filesystem::exists(s.path)) return not_found(fmt::format("model file '{}' does not exist", s.path));
  }
  server::EngineOptions eo;
  eo.n_ctx = o.ctx;
  eo.parallel = o.parallel;
  eo.n_threads = o.threads;
  // A step holds one prompt chunk next to every decoding sequence: small chunks keep inter-token latency
  // low while prompts are prefilled (bench/serving_vs_llamacpp.sh, docs/benchmarks.md).
  eo.prefill_chunk = o.chunk;
  eo.token_budget = o.batch > 0 ? o.batch : o.chunk + o.parallel;
  if (o.models.size() > 1 && o.threads == 0) {
    // Engines share the cores: each gets an equal part unless -t says otherwise.
    eo.n_threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency() / o.models.size()));
  }
  std::unique_ptr<storage::Database> db;
  std::unique_ptr<gateway::Gateway> gw;
  int lock_fd = -1;
  if (!o.db.empty()) {
    NC_ASSIGN_OR_RETURN(db, storage::Database::open(o.db));
    if (db->dialect() == storage::Dialect::kSqlite) {
      // On SQLite this process is the ledger's only writer (budgets are checked in its memory):
      // a second serve on the same file is refused.
      std::string path = o.db.rfind("sqlite://", 0) == 0 ? o.db.substr(9) : o.db.rfind("sqlite:", 0) == 0 ? o.db.substr(7) : o.db;
      lock_fd = ::open((path + ".serve.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
      if (lock_fd < 0 || ::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
        return failed_precondition(fmt::format("another `neocloud serve` uses the SQLite database '{}'; stop it, or use "
                                               "PostgreSQL (--db postgres://...) to run several processes",
                                               path));
      }
    }
    gateway::GatewayOptions go;
    go.instance = o.instance;
    gw = std::make_unique<gateway::Gateway>(*db, go);
    NC_ASSIGN_OR_RETURN(auto boot, gw->start());
    if (boot) {
      fmt::print(stderr, "neocloud: first start: the operator's admin key (shown once, store it now):\n  {}\n", *boot);
      if (!o.admin_key_file.empty()) {
        std::FILE* f = std::fopen(o.admin_key_file.c_str(), "wx");
        if (!f) return unavailable(fmt::format("cannot create --admin-key-file '{}'", o.admin_key_file));
        ::fchmod(fileno(f), 0600);
        fmt::print(f, "{}\n", *boot);
        std::fclose(f);
      }
    }
    fmt::print(stderr, "neocloud: gateway on ({}): API keys required\n", db->display_url());
  }
  NC_ASSIGN_OR_RETURN(auto registry, server::ModelRegistry::create(specs, eo));
  server::HttpServer srv(*registry, gw.get());
  NC_RETURN_IF_ERROR(srv.listen(o.host, static_cast<uint16_t>(o.port)));
  const uint16_t port = srv.port();  // read here: the loader thread must not touch the acceptor
  fmt::print(stderr, "neocloud: listening on http://{}:{}/v1 (models loading: /health answers 503 until ready)\n", o.host,
             port);
  Status load_error;
  std::mutex mu;
  registry->start_loading([&](const Status& st) {
    if (st.is_ok()) {
      std::string ids;
      for (const auto& e : registry->entries()) ids += (ids.empty() ? "" : ", ") + e.spec.id;
      fmt::print(stderr, "neocloud: serving {} at http://{}:{}/v1\n", ids, o.host, port);
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mu);
      load_error = st;
    }
    srv.stop();  // a model named on the command line does not load: stop, say why
  });
  srv.run();
  // Stop the engines (and drop their requests' callbacks) while the server's I/O context still exists:
  // callbacks post to it.
  registry->shutdown();
  if (gw) gw->stop();  // commits what is queued for the ledger
  if (lock_fd >= 0) ::close(lock_fd);
  std::lock_guard<std::mutex> lock(mu);
  return load_error;
}

}  // namespace

void add_serve_command(CLI::App& app) {
  auto o = std::make_shared<ServeOptions>();
  auto* cmd = app.add_subcommand("serve", "Serve the OpenAI-compatible API");
  cmd->add_option("-m,--model", o->models,
                  "GGUF model, optionally PATH:ALIAS (the id clients use); repeat for several models. "
                  "None: a demo model with random weights");
  cmd->add_option("--host", o->host, "address to listen on")->capture_default_str();
  cmd->add_option("--db", o->db,
                  "database for tenants, keys, limits, budgets and the usage ledger (sqlite:PATH or postgres://...); "
                  "turns on API keys. None: no keys, no metering");
  cmd->add_option("--instance", o->instance,
                  "this process's name in the ledger (distinct per process sharing one PostgreSQL)")
      ->capture_default_str();
  cmd->add_option("--admin-key-file", o->admin_key_file, "first start: also write the operator's admin key to this new file (0600)");
  cmd->add_option("--port", o->port, "port (0: any free port)")->capture_default_str();
  cmd->add_option("--parallel", o->parallel, "sequences generating at once, per model")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("-c,--ctx", o->ctx, "KV cache cells shared by all sequences, per model")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("-b,--batch", o->batch, "tokens per engine step (0: --prefill-chunk + --parallel)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--prefill-chunk", o->chunk, "prompt tokens per chunk (at most -b)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("-t,--threads", o->threads, "threads per model (0: the cores divided among the models)")
      ->capture_default_str();
  cmd->callback([o] { report(run_serve(*o)); });
}

}  // namespace nc::app
