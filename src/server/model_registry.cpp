// ModelRegistry (model_registry.h): a process's models by id, loaded in the background.
#include "server/model_registry.h"

#include <fmt/format.h>

#include <algorithm>
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
        e.state = State::kReady;
        services_.push_back(std::move(*svc));
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
  return adapters_->add(spec, base.service->model());
}

void ModelRegistry::shutdown() {
  stopping_ = true;
  if (loader_.joinable()) loader_.join();
  std::vector<std::unique_ptr<EngineService>> services;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& e : entries_) {
      e.service = nullptr;
      if (e.state == State::kReady) e.state = State::kFailed, e.error = unavailable("the server is shutting down");
    }
    services.swap(services_);
  }
  services.clear();  // stops the engine threads outside the lock
}

ModelRegistry::Lookup ModelRegistry::lookup(const std::string& id) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& e : entries_)
    if (e.spec.id == id) return {e.state, e.state == State::kReady ? e.service : nullptr};
  return {};
}

ModelRegistry::Lookup ModelRegistry::default_model() const {
  std::lock_guard<std::mutex> lock(mu_);
  const Entry& e = entries_.front();  // create() refuses an empty list
  return {e.state, e.state == State::kReady ? e.service : nullptr};
}

std::vector<EngineService*> ModelRegistry::ready_services() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<EngineService*> out;
  for (const auto& e : entries_)
    if (e.state == State::kReady) out.push_back(e.service);
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
