// ModelRegistry: the models one `neocloud serve` process serves, addressed by id. Models load on a
// background thread after the server starts listening, so /health can answer 503 while they load;
// a model that fails to load stops the server (its command line named something that does not work).
// Models are also added and removed at run time (add_model/remove_model: the operator's and tenants'
// own models, server/model_deploy_api.h).
//
// Ownership: owns the EngineServices (shared: a request holds Lookup::keep while it runs). A pointer
// from `lookup` stays valid while that Lookup's `keep` (or a copy) lives, and for the command line's
// models until `shutdown`, which may only run after the HTTP server's I/O loop has returned (in-flight
// request coroutines hold such pointers; their frames must not touch a service when destroyed). A
// removed model's engine is stopped on the reaper thread once nothing holds it.
// Thread-safety: lookups from any thread; start_loading once; shutdown from the thread that owns the
// registry (idempotent).
#pragma once
#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/status.h"
#include "server/adapter_registry.h"
#include "server/engine_service.h"

namespace nc::server {

struct ModelSpec {
  std::string path;
  std::string id;            // the name clients send as "model"
  bool random_weights = false;  // labelled so in /v1/models
  bool make_demo = false;       // write neocloud's demo model (random weights, demo tokenizer) to `path` if absent
  std::string org;              // "": public; else the organization whose own model it is (only it sees it)
  std::string file_id;          // a tenant's model: the uploaded file it was loaded from
};

// The demo model `serve` uses when given no model: $XDG_CACHE_HOME/neocloud (or ~/.cache/neocloud).
ModelSpec demo_model_spec();

// Parses "PATH[:ALIAS]" (a path that exists with a colon in it is taken whole). The id defaults to the
// file name without ".gguf".
ModelSpec parse_model_arg(const std::string& arg);

class ModelRegistry {
 public:
  enum class State { kUnknown, kLoading, kReady, kFailed };
  struct Entry {
    ModelSpec spec;
    State state = State::kLoading;
    Status error;                  // kFailed
    EngineService* service = nullptr;  // kReady
    std::shared_ptr<EngineService> shared;  // the same, owning (requests hold it through Lookup::keep)
  };

  // InvalidArgument if two specs share an id (models and adapters). `adapters`: LoRA adapters added
  // once their base models are loaded (a failure stops loading, like a model's); adapter_memory: the
  // budget of resident adapters (adapter_registry.h).
  static Result<std::unique_ptr<ModelRegistry>> create(std::vector<ModelSpec> specs, const EngineOptions& options,
                                                       std::vector<AdapterSpec> adapters = {},
                                                       size_t adapter_memory = size_t{1} << 30);
  ~ModelRegistry();

  // Loads the models one after another on a background thread; `on_done` runs on it after the last one
  // (with the first error, if any) unless shutdown came first. Call once.
  void start_loading(std::function<void(const Status&)> on_done);
  // Stops loading after the model being loaded, then stops every engine (their requests end).
  void shutdown();

  struct Lookup {
    State state = State::kUnknown;
    EngineService* service = nullptr;  // when kReady
    std::shared_ptr<EngineService> keep;  // holds the service for a request (see remove_model)
    std::string org;                      // the model's owner ("" = public)
  };
  Lookup lookup(const std::string& id) const;
  // The first model on the command line (for routes where "model" is optional).
  Lookup default_model() const;
  // public_only: without organizations' own models.
  std::vector<std::shared_ptr<EngineService>> ready_services(bool public_only = false) const;
  bool all_ready() const;
  std::vector<Entry> entries() const;
  // The LoRA adapters served as models (on the ready services' models).
  AdapterRegistry& adapters() { return *adapters_; }
  const AdapterRegistry& adapters() const { return *adapters_; }
  // Registers an adapter on the ready base model `spec.base` (NotFound if there is none).
  Status add_adapter(const AdapterSpec& spec);
  // Loads a model at run time (blocks: call it off the I/O thread) and serves it under spec.id:
  // AlreadyExists when the id is taken (by a model or an adapter), the loader's error for a bad file.
  Status add_model(const ModelSpec& spec);
  // Stops serving a model (and its adapters): new requests get 404 at once; requests in flight hold its
  // engine (Lookup::keep) and finish; the engine is stopped on the registry's reaper thread once the
  // last of them lets go. NotFound when there is no such model.
  Status remove_model(const std::string& id);

 private:
  ModelRegistry() = default;

  EngineOptions options_;
  mutable std::mutex mu_;
  std::vector<Entry> entries_;                              // guarded by mu_
  std::vector<std::shared_ptr<EngineService>> services_;    // guarded by mu_
  std::vector<std::shared_ptr<EngineService>> retiring_;    // removed, stopped when unused; guarded by mu_
  std::thread reaper_;
  std::condition_variable reaper_cv_;
  void reap_loop();
  std::thread loader_;
  std::atomic<bool> stopping_{false};
  std::unique_ptr<AdapterRegistry> adapters_;
  std::vector<AdapterSpec> startup_adapters_;
  std::atomic<bool> adapters_ready_{false};  // the startup adapters are registered
};

}  // namespace nc::server
