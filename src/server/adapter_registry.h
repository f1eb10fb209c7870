// AdapterRegistry: the LoRA adapters one `serve` process offers as models of their own (engine/model/
// lora.h), each on a base model of the ModelRegistry, public or private to one organization, added and
// removed at run time (`serve --lora`, the operator's /v1/admin/lora_adapters).
//
// Memory: adapters are resident within a byte budget. An adapter a request wants is loaded from its
// file when it is not resident (an adapter stays registered when evicted); to make room, resident
// adapters no request holds are evicted, least recently used first. When every resident adapter is in
// use and the budget is full, acquire() is ResourceExhausted (the API's 503): unlike vLLM's
// --max-loras, any number of adapters may be registered, and requests are never served by another.
// A removed or evicted adapter stays alive for the requests already holding it (shared_ptr).
//
// Ownership: owns the registrations; borrows the base models (the ModelRegistry's: removing a model
// removes its adapters first, and ModelRegistry::add_adapter undoes a registration whose base was
// removed while it loaded).
// Threads: every method from any thread. Reading a file runs outside the registry's lock (other
// adapters stay usable meanwhile); a second request for an adapter being loaded waits for that load.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/status.h"
#include "engine/model/lora.h"
#include "engine/model/model.h"

namespace nc::server {

struct AdapterSpec {
  std::string id;    // the model id clients send
  std::string base;  // the base model's id
  std::string path;  // the adapter GGUF
  std::string org;   // "" : every organization; else only this one sees and uses it
};

class AdapterRegistry {
 public:
  explicit AdapterRegistry(size_t budget_bytes) : budget_(budget_bytes) {}

  // Reads and checks the adapter against `base` (which must stay alive while it is registered) and
  // registers it, resident. AlreadyExists for a taken id; InvalidArgument (naming what is wrong) for
  // an adapter of another model; ResourceExhausted if it cannot be made resident.
  Status add(const AdapterSpec& spec, const engine::Model& base);
  // NotFound if absent. Requests holding it finish with it.
  Status remove(const std::string& id);

  struct Acquired {
    std::string base;
    std::shared_ptr<const engine::LoraAdapter> adapter;
  };
  // The adapter `id` for a caller of organization `org` ("": no tenancy, sees all): NotFound for an
  // unknown id or another organization's adapter (the same answer); ResourceExhausted as above;
  // the file's error if it can no longer be read.
  Result<Acquired> acquire(const std::string& id, const std::string& org);

  // The base model of adapter `id` as `org` sees it (NotFound as acquire), without loading it.
  Result<std::string> base_of(const std::string& id, const std::string& org) const;

  struct Info {
    AdapterSpec spec;
    bool resident = false;
    size_t bytes = 0;  // when resident (else the size it had)
    int64_t created = 0;
  };
  // The adapters `org` may use ("": all).
  std::vector<Info> list(const std::string& org) const;
  bool contains(const std::string& id) const;
  bool resident(const std::string& id) const;  // acquire() would not read a file
  size_t resident_bytes() const;
  size_t budget() const { return budget_; }

 private:
  struct Entry {
    AdapterSpec spec;
    const engine::Model* base = nullptr;
    std::shared_ptr<const engine::LoraAdapter> adapter;  // null: evicted
    size_t bytes = 0;
    uint64_t last_used = 0;
    int64_t created = 0;
    bool loading = false;  // a request is reading it from its file (outside the lock)
  };
  std::shared_ptr<Entry> find(const std::string& id) const;  // under mu_
  // Makes room for `need` bytes by evicting idle adapters, least recently used first (not `keep`).
  bool make_room(size_t need, const Entry* keep);

  const size_t budget_;
  mutable std::mutex mu_;
  std::condition_variable loaded_;  // a load finished
  std::vector<std::shared_ptr<Entry>> entries_;
  size_t resident_ = 0;
  uint64_t clock_ = 0;
};

}  // namespace nc::server
