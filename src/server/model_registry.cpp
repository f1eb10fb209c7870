// ModelRegistry (model_registry.h): a process's models by id, loaded in the background.
#include "server/model_registry.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <cstdlib>
#include <set>

#include "core/log.h"
#include "engine/model/synth.h"

namespace nc::server {

ModelSpec parse_model_arg(const std::string& arg) {
  ModelSpec s;
  s.path = arg;
  if (auto colon = arg.rfind(':'); colon != std::string::npos && !std::filesystem::exists(arg)) {
    s.path = arg.substr(0, colon);
    s.id = arg.substr(colon + 1);
  }
  if (s.id.empty()) s.id = std::filesystem::path(s.path).stem().string();
  return s;
}

ModelSpec demo_model_spec() {
  std::filesystem::path dir;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) dir = x;
  else if (const char* h = std::getenv("HOME"); h && *h) dir = std::filesystem::path(h) / ".cache";
  else dir = std::filesystem::temp_directory_path();
  ModelSpec s;
  // The version in the name changes whenever the demo model's recipe does.
  s.path = (dir / "neocloud" / "demo-tiny-q8_0-v2.gguf").string();
  s.id = "demo-random-weights";
  s.random_weights = true;
  s.make_demo = true;
  return s;
}

namespace {

Status make_demo_model(const std::string& path) {
  if (std::filesystem::exists(path)) return Status::ok();
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  if (ec) return unavailable(fmt::format("cannot create {}: {}", std::filesystem::path(path).parent_path().string(), ec.message()));
  NC_LOG_INFO("writing the demo model (random weights) to {}", path);
  engine::SynthOptions o;
  o.vocab_path = "demo";
  o.shape = "tiny";
  o.type = "q8_0";
  o.out_path = path;  // written atomically: a crash never leaves half a model
  return engine::synth_model(o);
}

}  // namespace

Result<std::unique_ptr<ModelRegistry>> ModelRegistry::create(std::vector<ModelSpec> specs, const EngineOptions& options,
                                                             std::vector<AdapterSpec> adapters, size_t adapter_memory) {
  if (specs.empty()) return invalid_argument("no model to serve");
  std::set<std::string> ids;
  for (const auto& s : specs) {
    if (s.id.empty()) return invalid_argument(fmt::format("model '{}' has an empty id", s.path));
    if (!ids.insert(s.id).second)
      return invalid_argument(fmt::format("two models have the id '{}': give one an alias with PATH:ALIAS", s.id));
  }
  for (const auto& a : adapters) {
    if (a.id.empty()) return invalid_argument(fmt::format("adapter '{}' has an empty id", a.path));
    if (!ids.insert(a.id).second) return invalid_argument(fmt::format("the id '{}' is used twice", a.id));
    if (std::none_of(specs.begin(), specs.end(), [&](const ModelSpec& s) { return s.id == a.base; }))
      return invalid_argument(fmt::format("adapter '{}': no model '{}' to apply it to", a.id, a.base));
  }
  std::unique_ptr<ModelRegistry> r(new ModelRegistry());
  r->options_ = options;
  r->adapters_ = std::make_unique<AdapterRegistry>(adapter_memory);
  r->startup_adapters_ = std::move(adapters);
  for (auto& s : specs) {
    Entry e;
    e.spec = std::move(s);
    r->entries_.push_back(std::move(e));
  }
  return r;
}

ModelRegistry::~ModelRegistry() { shutdown(); }

void ModelRegistry::start_loading(std::function<void(const Status&)> on_done) {
  loader_ = std::thread([this, on_done = std::move(on_done)] {
    Status first;
    size_t n;
    {
      std::lock_guard<std::mutex> lock(mu_);
      n = entries_.size();
    }
    for (size_t i = 0; i < n && !stopping_; ++i) {
      ModelSpec spec;
      {
        std::lock_guard<std::mutex> lock(mu_);
        spec = entries_[i].spec;
      }
      const Status made = spec.make_demo ? make_demo_model(spec.path) : Status::ok();
      Result<std::unique_ptr<EngineService>> svc =
          made.is_ok() ? EngineService::start(spec.path, spec.id, options_) : Result<std::unique_ptr<EngineService>>(made);
      std::lock_guard<std::mutex> lock(mu_);
      Entry& e = entries_[i];
      if (svc.is_ok()) {
        e.service = svc->get();
        e.shared = std::shared_ptr<EngineService>(std::move(*svc));
        e.state = State::kReady;
        services_.push_back(e.shared);
        NC_LOG_INFO("model '{}' ready ({})", spec.id, spec.path);
      } else {
        e.state = State::kFailed;
        e.error = svc.status().with_context(fmt::format("model '{}'", spec.id));
        first = e.error;
        break;  // serve stops on a model that does not load: loading the rest would only delay that
      }
    }
    for (size_t i = 0; i < startup_adapters_.size() && first.is_ok() && !stopping_; ++i) {
      const AdapterSpec& a = startup_adapters_[i];
      if (Status st = add_adapter(a); !st.is_ok()) first = st.with_context(fmt::format("adapter '{}'", a.id));
      else NC_LOG_INFO("adapter '{}' ready on '{}' ({})", a.id, a.base, a.path);
    }
    adapters_ready_ = first.is_ok();
    if (on_done && !stopping_) on_done(first);
  });
}

Status ModelRegistry::add_adapter(const AdapterSpec& spec) {
  const Lookup base = lookup(spec.base);
  if (base.state != State::kReady)
    return not_found(fmt::format("no ready model `{}` to apply the adapter to", spec.base)).with_field("base");
  if (lookup(spec.id).state != State::kUnknown)
    return Status(StatusCode::kAlreadyExists, fmt::format("`{}` is a model's id", spec.id)).with_field("id");
  // `base.keep` holds the engine while the adapter is read and checked against it. If the base was
  // removed meanwhile (remove_model sweeps only the adapters registered by then), this one goes too:
  // an adapter never outlives the model it points to.
  NC_RETURN_IF_ERROR(adapters_->add(spec, base.service->model()));
  if (lookup(spec.base).service != base.service) {
    (void)adapters_->remove(spec.id);
    return not_found(fmt::format("the model `{}` was removed while the adapter loaded", spec.base)).with_field("base");
  }
  return Status::ok();
}

void ModelRegistry::shutdown() {
  stopping_ = true;
  if (loader_.joinable()) loader_.join();
  reaper_cv_.notify_all();
  if (reaper_.joinable()) reaper_.join();
  std::vector<std::shared_ptr<EngineService>> services;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& e : entries_) {
      e.service = nullptr;
      e.shared.reset();
      if (e.state == State::kReady) e.state = State::kFailed, e.error = unavailable("the server is shutting down");
    }
    services.swap(services_);
    for (auto& r : retiring_) services.push_back(std::move(r));
    retiring_.clear();
  }
  services.clear();  // stops the engine threads outside the lock
}

namespace {
ModelRegistry::Lookup lookup_of(const ModelRegistry::Entry& e) {
  const bool ready = e.state == ModelRegistry::State::kReady;
  return {e.state, ready ? e.service : nullptr, ready ? e.shared : nullptr, e.spec.org};
}
}  // namespace

ModelRegistry::Lookup ModelRegistry::lookup(const std::string& id) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& e : entries_)
    if (e.spec.id == id) return lookup_of(e);
  return {};
}

ModelRegistry::Lookup ModelRegistry::default_model() const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& e : entries_)  // the first public model (the command line's first, unless removed)
    if (e.spec.org.empty()) return lookup_of(e);
  return {};
}

Status ModelRegistry::add_model(const ModelSpec& spec) {
  auto taken = [&] {
    if (adapters_->contains(spec.id)) return true;
    std::lock_guard<std::mutex> lock(mu_);
    return std::any_of(entries_.begin(), entries_.end(), [&](const Entry& e) { return e.spec.id == spec.id; });
  };
  if (spec.id.empty()) return invalid_argument("a model needs an id").with_field("id");
  if (!adapters_ready_) return unavailable("the command line's models are still loading; retry shortly");
  if (taken()) return Status(StatusCode::kAlreadyExists, fmt::format("the model id `{}` is taken", spec.id)).with_field("id");
  if (stopping_) return unavailable("the server is shutting down");
  NC_ASSIGN_OR_RETURN(std::unique_ptr<EngineService> svc, EngineService::start(spec.path, spec.id, options_));
  std::shared_ptr<EngineService> shared(std::move(svc));
  if (taken()) return Status(StatusCode::kAlreadyExists, fmt::format("the model id `{}` is taken", spec.id)).with_field("id");
  std::lock_guard<std::mutex> lock(mu_);
  Entry e;
  e.spec = spec;
  e.state = State::kReady;
  e.service = shared.get();
  e.shared = shared;
  entries_.push_back(std::move(e));
  services_.push_back(std::move(shared));
  NC_LOG_INFO("model '{}' loaded at run time ({}{})", spec.id, spec.path, spec.org.empty() ? "" : ", organization " + spec.org);
  return Status::ok();
}

Status ModelRegistry::remove_model(const std::string& id) {
  std::shared_ptr<EngineService> gone;
  if (!adapters_ready_) return unavailable("the command line's models are still loading; retry shortly");
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = std::find_if(entries_.begin(), entries_.end(), [&](const Entry& e) { return e.spec.id == id; });
    if (it == entries_.end() || it->state == State::kLoading) return not_found(fmt::format("no model `{}`", id));
    gone = it->shared;
    entries_.erase(it);
    services_.erase(std::remove(services_.begin(), services_.end(), gone), services_.end());
  }
  // Its adapters go with it (requests holding one keep it, and the engine through their Lookup).
  for (const auto& a : adapters_->list(""))
    if (a.spec.base == id) (void)adapters_->remove(a.spec.id);
  if (gone) {
    std::lock_guard<std::mutex> lock(mu_);
    retiring_.push_back(std::move(gone));
    if (!reaper_.joinable()) reaper_ = std::thread([this] { reap_loop(); });
  }
  reaper_cv_.notify_all();
  NC_LOG_INFO("model '{}' removed (its engine stops when its last request ends)", id);
  return Status::ok();
}

// Stops removed engines once no request holds them (use_count 1: only this list). Off the I/O thread,
// because stopping an engine joins its thread.
void ModelRegistry::reap_loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    std::vector<std::shared_ptr<EngineService>> done;
    for (auto it = retiring_.begin(); it != retiring_.end();) {
      if (it->use_count() == 1) {
        done.push_back(std::move(*it));
        it = retiring_.erase(it);
      } else {
        ++it;
      }
    }
    if (!done.empty()) {
      lock.unlock();
      done.clear();
      lock.lock();
      continue;
    }
    reaper_cv_.wait_for(lock, std::chrono::milliseconds(200));
  }
}

std::vector<std::shared_ptr<EngineService>> ModelRegistry::ready_services(bool public_only) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::shared_ptr<EngineService>> out;
  for (const auto& e : entries_)
    if (e.state == State::kReady && (!public_only || e.spec.org.empty())) out.push_back(e.shared);
  return out;
}

bool ModelRegistry::all_ready() const {
  if (!adapters_ready_) return false;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& e : entries_)
    if (e.state != State::kReady) return false;
  return true;
}

std::vector<ModelRegistry::Entry> ModelRegistry::entries() const {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_;
}

}  // namespace nc::server
