// `neocloud serve [-m MODEL[:ALIAS]]... [--host H] [--port 8080] [--parallel N] [--ctx N] [-t N]`: serves
// the OpenAI-compatible API (see src/server/http_server.h) until SIGINT/SIGTERM. Several -m serve
// several models, addressed by id; with none, a demo model with random weights (made on first start).
// --db URL turns on the multi-tenant gateway (API keys, rate limits, budgets, the usage ledger, the
// admin API): the first start prints the operator's admin key once.
// --gpus N|auto (simulated GPUs on this machine, or nvidia-smi's) or --gpu-nodes CSV turns on GPU job
// rental (/v1/jobs): jobs run on this machine (local executor); each run's GPU-seconds go to the ledger.
#include <fmt/format.h>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <thread>

#include "apps/neocloud/commands.h"
#include "capacity/gpu_metering.h"
#include "capacity/inventory.h"
#include "capacity/job_controller.h"
#include "capacity/job_store.h"
#include "capacity/schema.h"
#include "capacity/local_executor.h"
#include "capacity/slurm_executor.h"
#include "files/file_store.h"
#include "files/schema.h"
#include "server/fine_tune_hooks.h"
#include "server/model_deploy_api.h"
#include "training/fine_tune_controller.h"
#include "training/fine_tune_store.h"
#include "training/schema.h"
#include "core/log.h"
#include "gateway/gateway.h"
#include "gateway/metered_usage.h"
#include "gateway/schema.h"
#include "tenancy/schema.h"
#include "storage/database.h"
#include "server/http_server.h"
#include "server/model_registry.h"

namespace nc::app {
namespace {

struct ServeOptions {
  std::vector<std::string> models;
  std::vector<std::string> loras;  // ID=PATH@BASE
  double lora_memory_mib = 1024;
  std::string host = "127.0.0.1";
  int port = 8080, parallel = 4, threads = 0;
  int64_t ctx = 4096, batch = 0, chunk = 128;
  std::string db, instance = "local", admin_key_file;
  std::string gpus, gpu_type = "sim", gpu_nodes, jobs_dir;
  int jobs_heartbeat = 10, jobs_grace = 10, node_timeout = -1, job_budget_grace = 60;
  std::string executor = "local", slurm_conf;
  server::EdgeLimits limits;
  int64_t job_log_max_bytes = 256LL << 20;
  int64_t job_pids_max = 4096;
  std::string job_sandbox = "auto", gpu_device_dir = "/dev";
  std::string job_images = "auto", job_images_dir;
  std::vector<int64_t> job_uid_range;  // base, count
  std::string files_dir;
  double max_file_mib = 512, files_quota_mib = 10240;
  std::string trainer_dir = NC_TRAINER_DIR;
  int fine_tune_gpus = 1, fine_tune_threads = 2;
  int tenant_models = 2;
};

// A metered GPU segment as the ledger's usage event.
gateway::UsageEvent usage_event(const capacity::GpuUsage& g) {
  gateway::UsageEvent e;
  e.source = g.source;
  e.id = g.id;
  e.type = g.type;
  e.project_id = g.project;
  e.api_key_id = g.api_key_id;
  e.time = g.time_us;
  e.item = g.item;
  e.quantity = g.quantity;
  e.data = g.data.dump();
  return e;
}

// Says loudly which confinement jobs get; false when jobs must be sandboxed and cannot be.
bool report_sandbox(const capacity::JobSandbox& sb) {
  if (!sb.required_error().empty()) return false;
  if (sb.active()) {
    fmt::print(stderr, "neocloud: job sandbox {}\n", sb.status());
  } else {
    fmt::print(stderr,
               "neocloud: WARNING: JOBS ARE NOT SANDBOXED: {}. A job can read this server's files and signal its "
               "processes. Install bubblewrap, or start with --job-sandbox required to refuse to run jobs without "
               "it.\n",
               sb.status());
  }
  return true;
}

Status run_serve(const ServeOptions& o) {
  // Everything the server writes (the database and its WAL, key files, job directories and logs) is
  // private to its user.
  ::umask(077);
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
  std::unique_ptr<files::FileStore> file_store;
  int lock_fd = -1;
  std::string db_path;  // the SQLite file, if that is the database
  if (!o.db.empty()) {
    NC_ASSIGN_OR_RETURN(db, storage::Database::open(o.db));
    if (db->dialect() == storage::Dialect::kSqlite) {
      // On SQLite this process is the ledger's only writer (budgets are checked in its memory):
      // a second serve on the same file is refused.
      std::string& path = db_path;
      path = o.db.rfind("sqlite://", 0) == 0 ? o.db.substr(9) : o.db.rfind("sqlite:", 0) == 0 ? o.db.substr(7) : o.db;
      lock_fd = ::open((path + ".serve.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
      if (lock_fd < 0 || ::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
        return failed_precondition(fmt::format("another `neocloud serve` uses the SQLite database '{}'; stop it, or use "
                                               "PostgreSQL (--db postgres://...) to run several processes",
                                               path));
      }
    }
    gateway::GatewayOptions go;
    go.instance = o.instance;
    // The schema of the whole deployment: each module's tables, composed here.
    NC_ASSIGN_OR_RETURN(go.migrations, storage::compose_migrations({tenancy::migrations(), gateway::migrations(),
                                                                    capacity::migrations(), files::migrations(),
                                                                    training::migrations()}));
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
    // Uploaded files: next to the SQLite file; with PostgreSQL the operator names a path every server shares.
    files::FileStoreOptions fo;
    fo.dir = !o.files_dir.empty()  ? o.files_dir
             : !db_path.empty()    ? (std::filesystem::path(db_path).parent_path() / "files").string()
                                   : (std::filesystem::temp_directory_path() / "neocloud-files").string();
    fo.max_file_bytes = static_cast<int64_t>(o.max_file_mib * (1 << 20));
    fo.org_quota_bytes = static_cast<int64_t>(o.files_quota_mib * (1 << 20));
    NC_ASSIGN_OR_RETURN(file_store, files::FileStore::open(*db, fo));
    fmt::print(stderr, "neocloud: files API on: files in {} ({} MiB per file, {} MiB per organization)\n", fo.dir,
               o.max_file_mib, o.files_quota_mib);
  }
  std::string jobs_dir;
  std::unique_ptr<capacity::JobStore> job_store;
  std::unique_ptr<capacity::JobController> jobs;
  if (!o.gpus.empty() || !o.gpu_nodes.empty() || o.executor == "slurm") {
    capacity::InventorySource inv;
    inv.nodes_csv = o.gpu_nodes;
    inv.slurm = o.executor == "slurm";
    inv.slurm_conf = o.slurm_conf;
    inv.gpus = o.gpus;
    inv.gpu_type = o.gpu_type;
    NC_ASSIGN_OR_RETURN(auto nodes, capacity::discover_inventory(inv));
    capacity::LocalExecutorOptions leo;
    leo.max_log_bytes = o.job_log_max_bytes;
    leo.pids_max = o.job_pids_max;
    leo.sandbox.mode = o.job_sandbox == "required" ? capacity::SandboxMode::kRequired
                       : o.job_sandbox == "off"    ? capacity::SandboxMode::kOff
                                                   : capacity::SandboxMode::kAuto;
    for (const auto& n : nodes) leo.nodes.push_back(n.id);
    NC_ASSIGN_OR_RETURN(auto sched, capacity::Scheduler::create(capacity::Cluster(nodes)));
    capacity::JobControllerOptions jo;
    jo.heartbeat_s = o.jobs_heartbeat;
    // --gpus: this machine, alive while this process is. --gpu-nodes: nodes report with heartbeats.
    // Slurm: Slurm watches its nodes (a lost node's job ends NODE_FAIL and is requeued).
    if (o.gpu_nodes.empty() || o.executor == "slurm") {
      for (const auto& n : nodes) jo.self_nodes.push_back(n.id);
    }
    jo.node_timeout_s = o.node_timeout >= 0 ? o.node_timeout : (o.gpu_nodes.empty() ? 0 : 60);
    jo.grace_period_s = o.jobs_grace;
    jo.log_dir = o.jobs_dir.empty() ? (std::filesystem::temp_directory_path() / "neocloud-jobs").string() : o.jobs_dir;
    jobs_dir = jo.log_dir;
    if (o.job_uid_range.size() == 2) jo.job_uids = {o.job_uid_range[0], o.job_uid_range[1]};
    // What a job must never see: every job's directory and log, the database and the key file.
    leo.sandbox.hidden_paths = {jo.log_dir};
    if (file_store) leo.sandbox.hidden_paths.push_back(file_store->options().dir);
    leo.sandbox.jobs_root = jo.log_dir;
    leo.sandbox.dev_dir = o.gpu_device_dir;
    // Container images: podman's storage inside the jobs directory (covered for every job).
    leo.images.use = o.job_images != "off" && leo.sandbox.mode != capacity::SandboxMode::kOff;
    leo.images.dir = o.job_images_dir.empty() ? (std::filesystem::path(jo.log_dir) / ".images").string() : o.job_images_dir;
    if (!o.job_images_dir.empty()) leo.sandbox.hidden_paths.push_back(o.job_images_dir);
    if (!o.admin_key_file.empty()) leo.sandbox.hidden_paths.push_back(o.admin_key_file);
    if (!db_path.empty()) {
      for (const char* suffix : {"", "-wal", "-shm", "-journal", ".serve.lock"}) leo.sandbox.hidden_paths.push_back(db_path + suffix);
    }
    if (gw) {
      jo.meter = [g = gw.get()](const capacity::SegmentUsage& u) {
        const capacity::GpuUsage usage = capacity::gpu_usage(u);
        return gateway::record_metered_usage(*g, usage.org, usage_event(usage));
      };
      // Jobs are held against the same budgets as inference (usage_holds.h).
      jo.budget.hold = [g = gw.get()](const std::string& org, const std::string& project, const std::string& key,
                                      const std::vector<std::string>& items, int64_t quantity) {
        return g->usage_holds().hold(org, project, key, items, quantity);
      };
      jo.budget.release = [g = gw.get()](int64_t h) { g->usage_holds().release(h); };
      jo.budget.within = [g = gw.get()](int64_t h) { return g->usage_holds().within(h); };
      jo.budget.grace_s = o.job_budget_grace;
      job_store = std::make_unique<capacity::JobStore>(*db);
      jo.store = job_store.get();
    }
    std::unique_ptr<capacity::Executor> executor;
    if (o.executor == "slurm") {
      capacity::SlurmExecutorOptions so;
      so.slurm_conf = o.slurm_conf;
      so.gpu_indices = capacity::SlurmGpuIndices::kAssignment;  // our scheduler's books decide the GPUs
      so.sandbox = leo.sandbox;
      so.max_log_bytes = o.job_log_max_bytes;
      auto slurm = std::make_unique<capacity::SlurmExecutor>(so);
      if (!report_sandbox(slurm->sandbox())) return failed_precondition(slurm->sandbox().required_error());
      fmt::print(stderr, "neocloud: job container images off (the Slurm executor runs none yet: a job naming one is a 400)\n");
      executor = std::move(slurm);
    } else {
      auto local = std::make_unique<capacity::LocalExecutor>(leo);
      if (!report_sandbox(local->sandbox())) return failed_precondition(local->sandbox().required_error());
      fmt::print(stderr, "neocloud: job cgroups {}\n", local->cgroup_status());
      fmt::print(stderr, "neocloud: job container images {}\n", local->runs_images() ? local->images().status() : "off (" + std::string(local->sandbox().active() ? local->images().status() : "jobs are not sandboxed") + ")");
      executor = std::move(local);
    }
    jobs = std::make_unique<capacity::JobController>(std::move(sched), std::move(executor), jo);
    NC_RETURN_IF_ERROR(jobs->recover());
    jobs->start();
    int total = 0;
    for (const auto& n : nodes) total += n.num_gpus();
    fmt::print(stderr, "neocloud: GPU jobs on ({} executor): {} node(s), {} GPU(s) ({}), logs in {}\n", o.executor,
               nodes.size(), total, nodes.empty() ? "" : nodes[0].gpu_type, jo.log_dir);
  }
  std::vector<server::AdapterSpec> adapters;
  for (const std::string& l : o.loras) {
    const size_t eq = l.find('='), at = l.rfind('@');
    if (eq == std::string::npos || at == std::string::npos || at < eq)
      return invalid_argument(fmt::format("--lora '{}': expected ID=PATH@BASE (BASE: a model id of -m)", l));
    adapters.push_back({l.substr(0, eq), l.substr(at + 1), l.substr(eq + 1, at - eq - 1), ""});
  }
  NC_ASSIGN_OR_RETURN(auto registry, server::ModelRegistry::create(specs, eo, std::move(adapters),
                                                                   static_cast<size_t>(o.lora_memory_mib * (1 << 20))));
  // Fine-tuning: the trainer runs as the organization's capacity job; needs jobs, files and a database.
  std::unique_ptr<training::FineTuneStore> ft_store;
  std::unique_ptr<training::FineTuneController> fine_tunes;
  if (jobs && file_store) {
    ft_store = std::make_unique<training::FineTuneStore>(*db);
    training::FineTuneOptions fto;
    fto.dir = (std::filesystem::path(jobs_dir) / ".fine-tunes").string();  // hidden from jobs with the jobs dir
    fto.trainer_dir = o.trainer_dir;
    fto.gpus = o.fine_tune_gpus;
    fto.threads = o.fine_tune_threads;
    if (!std::filesystem::exists(std::filesystem::path(fto.trainer_dir) / "neocloud_train.py"))
      return not_found(fmt::format("--trainer-dir '{}' has no neocloud_train.py", fto.trainer_dir));
    fine_tunes = std::make_unique<training::FineTuneController>(*jobs, *file_store, ft_store.get(),
                                                                server::make_fine_tune_hooks(*registry, gw.get()), fto);
    fmt::print(stderr, "neocloud: fine-tuning API on: trainer {} ({} GPU(s), {} threads per job)\n", fto.trainer_dir,
               fto.gpus, fto.threads);
  }
  std::unique_ptr<training::DeploymentStore> deployments;
  if (db) deployments = std::make_unique<training::DeploymentStore>(*db);
  server::HttpServer::Modules mods;
  mods.gateway = gw.get();
  mods.jobs = jobs.get();
  mods.files = file_store.get();
  mods.fine_tunes = fine_tunes.get();
  mods.deployments = deployments.get();
  if (file_store) mods.deploy_dir = (std::filesystem::path(file_store->options().dir) / "models").string();
  mods.tenant_models_per_org = o.tenant_models;
  server::HttpServer srv(*registry, mods, o.limits);
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
      if (deployments) server::restore_deployments(*registry, *deployments);
      if (fine_tunes) {  // its models are adapters of the loaded ones: served again from here
        if (Status r = fine_tunes->recover(); !r.is_ok()) NC_LOG_ERROR("fine-tuning jobs: {}", r.to_string());
        fine_tunes->start();
      }
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
  if (fine_tunes) fine_tunes->stop();
  registry->shutdown();
  if (jobs) jobs->stop();  // running jobs are killed with their executor
  jobs.reset();
  if (gw) gw->stop();  // commits what is queued for the ledger
  if (lock_fd >= 0) ::close(lock_fd);
  std::lock_guard<std::mutex> lock(mu);
  return load_error;
}

}  // namespace

void add_serve_command(CLI::App& app) {
  auto o = std::make_shared<ServeOptions>();
  auto* cmd = app.add_subcommand("serve", "Serve the OpenAI-compatible API");
  cmd->add_option("--lora", o->loras,
                  "ID=PATH@BASE: serve a LoRA adapter (llama.cpp's GGUF format) on model BASE as model ID; repeat "
                  "for several (the operator adds more at run time: POST /v1/admin/lora_adapters)");
  cmd->add_option("--lora-memory-mib", o->lora_memory_mib,
                  "memory for resident LoRA adapters; idle ones are evicted least recently used first and "
                  "reloaded when asked for")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
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
  cmd->add_option("--gpus", o->gpus, "rent GPUs of this machine as jobs (/v1/jobs): N simulated GPUs, or auto (nvidia-smi)");
  cmd->add_option("--executor", o->executor,
                  "where jobs run: local (this machine) or slurm (sbatch; the GPU inventory comes from sinfo unless "
                  "--gpu-nodes names it)")
      ->check(CLI::IsMember({"local", "slurm"}))
      ->capture_default_str();
  cmd->add_option("--slurm-conf", o->slurm_conf, "SLURM_CONF for the slurm executor (default: Slurm's own)");
  cmd->add_option("--gpu-type", o->gpu_type, "the GPU type name of --gpus N")->capture_default_str();
  cmd->add_option("--gpu-nodes", o->gpu_nodes, "GPU inventory CSV (sn,cpu_milli,memory_mib,gpu,model) for /v1/jobs");
  cmd->add_option("--jobs-grace", o->jobs_grace, "seconds between SIGTERM and SIGKILL when a job is cancelled or preempted")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--jobs-heartbeat", o->jobs_heartbeat,
                  "seconds between saves of running jobs' alive time (what a crash can leave unbilled)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--node-timeout", o->node_timeout,
                  "seconds without a heartbeat (POST /v1/admin/nodes/{id}/heartbeat) before a --gpu-nodes node is down "
                  "and its jobs requeue (default 60; 0: never)");
  cmd->add_option("--job-log-max-bytes", o->job_log_max_bytes,
                  "a job's log is cut at this size, with a line saying so (0: no cap)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--job-budget-grace", o->job_budget_grace,
                  "seconds between SIGTERM and SIGKILL for a job whose budget ran out while it ran")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--job-pids-max", o->job_pids_max,
                  "processes one node of a job may have at once, where cgroups are on (0: no limit)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--job-sandbox", o->job_sandbox,
                  "confine jobs with bubblewrap, as each organization's own uid: auto (when the host can; a warning "
                  "otherwise), required (refuse to start without it), off")
      ->check(CLI::IsMember({"auto", "required", "off"}))
      ->capture_default_str();
  cmd->add_option("--job-images", o->job_images,
                  "let jobs name a container image (podman's) as their file system, in the same sandbox: auto (when "
                  "podman is installed and jobs are sandboxed), off")
      ->check(CLI::IsMember({"auto", "off"}))
      ->capture_default_str();
  cmd->add_option("--job-images-dir", o->job_images_dir,
                  "podman's storage for jobs' images (default: <jobs-dir>/.images); `serve` prints at start the podman "
                  "command that adds an image to it");
  cmd->add_option("--gpu-device-dir", o->gpu_device_dir,
                  "where the GPUs' device nodes are (nvidia0, nvidiactl, ...); a sandboxed job sees only its own")
      ->capture_default_str();
  cmd->add_option("--job-uid-range", o->job_uid_range, "BASE COUNT: the uids sandboxed jobs run as (one per organization)")
      ->expected(2);
  cmd->add_option("--files-dir", o->files_dir,
                  "where uploaded files are kept (default: files/ beside the SQLite database; with PostgreSQL, a path "
                  "every server shares)");
  cmd->add_option("--max-file-mib", o->max_file_mib, "the largest file an organization may upload")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--files-quota-mib", o->files_quota_mib, "the storage each organization's files may use in all")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--tenant-models", o->tenant_models,
                  "GGUF models each organization may deploy as its own (POST /v1/models with an uploaded file; 0: none)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--trainer-dir", o->trainer_dir, "where the fine-tuning trainer (neocloud_train.py) is")
      ->capture_default_str();
  cmd->add_option("--fine-tune-gpus", o->fine_tune_gpus, "GPUs each fine-tuning job's trainer asks for (0: CPU only)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--fine-tune-threads", o->fine_tune_threads, "CPU threads of each fine-tuning trainer")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--jobs-dir", o->jobs_dir, "where job logs and working directories go (default: $TMPDIR/neocloud-jobs)");
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
  // The edge's limits on what one client may send or hold (server/transport.h).
  auto& l = o->limits;
  cmd->add_option("--max-connections", l.max_connections, "open connections at once; beyond, 503 and close")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--max-body-bytes", l.max_body_bytes, "largest request body (413 beyond)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--header-timeout-ms", l.header_timeout_ms, "time a client has to send a request's headers")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--body-timeout-ms", l.body_timeout_ms, "time a client has to send a request's body")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--idle-timeout-ms", l.idle_timeout_ms, "how long a kept-alive connection may wait for its next request")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--write-timeout-ms", l.write_timeout_ms, "time each response write may take (a client that stops reading is dropped)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--max-request-tokens", l.max_request_tokens,
                  "tokens one request may make the engine compute (prompt tokens x n + max_tokens x choices; embedding inputs)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--max-request-sequences", l.max_request_sequences, "sequences one request may start (prompts x n; embedding inputs)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->callback([o] { report(run_serve(*o)); });
}

}  // namespace nc::app
