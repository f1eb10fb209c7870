// AdapterRegistry (adapter_registry.h): LoRA adapters as models, resident within a memory budget.
#include "server/adapter_registry.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/timer.h"

namespace nc::server {

namespace {
std::string size_text(size_t bytes) {
  return bytes >= (size_t{1} << 20) ? fmt::format("{:.1f} MiB", static_cast<double>(bytes) / (1 << 20))
                                    : fmt::format("{:.1f} KiB", static_cast<double>(bytes) / (1 << 10));
}

Status unknown(const std::string& id) { return not_found(fmt::format("adapter `{}` does not exist", id)); }

// Whether a caller of organization `org` ("": no tenancy) sees an adapter of organization `owner`
// ("": every organization's).
bool visible(const std::string& owner, const std::string& org) { return org.empty() || owner.empty() || owner == org; }

Status over_budget(const std::string& id, size_t need, size_t budget) {
  return resource_exhausted(fmt::format("adapter `{}` needs {} and the {} of adapter memory (serve --lora-memory-mib) "
                                        "are held by adapters in use; retry later",
                                        id, size_text(need), size_text(budget)));
}
}  // namespace

bool AdapterRegistry::make_room(size_t need, const Entry* keep) {
  while (resident_ + need > budget_) {
    Entry* victim = nullptr;
    for (auto& e : entries_) {
      // use_count 1: only this registry holds it, no request does.
      if (e.get() == keep || !e->adapter || e->adapter.use_count() > 1) continue;
      if (!victim || e->last_used < victim->last_used) victim = e.get();
    }
    if (!victim) return false;
    resident_ -= victim->bytes;
    victim->adapter.reset();
  }
  return true;
}

std::shared_ptr<AdapterRegistry::Entry> AdapterRegistry::find(const std::string& id) const {
  for (const auto& e : entries_)
    if (e->spec.id == id) return e;
  return nullptr;
}

Status AdapterRegistry::add(const AdapterSpec& spec, const engine::Model& base) {
  if (spec.id.empty() || spec.id.size() > 256) return invalid_argument("an adapter id of 1 to 256 bytes").with_field("id");
  auto taken = [&] {
    return Status(StatusCode::kAlreadyExists, fmt::format("adapter `{}` already exists", spec.id)).with_field("id");
  };
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (find(spec.id)) return taken();
  }
  NC_ASSIGN_OR_RETURN(auto adapter, engine::LoraAdapter::load(spec.path, base));  // outside the lock
  std::lock_guard<std::mutex> lock(mu_);
  if (find(spec.id)) return taken();  // added meanwhile
  const size_t bytes = adapter->bytes();
  if (!make_room(bytes, nullptr)) return over_budget(spec.id, bytes, budget_);
  auto e = std::make_shared<Entry>();
  e->spec = spec;
  e->base = &base;
  e->adapter = std::move(adapter);
  e->bytes = bytes;
  e->last_used = ++clock_;
  e->created = unix_s();
  resident_ += bytes;
  entries_.push_back(std::move(e));
  return Status::ok();
}

Status AdapterRegistry::remove(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    if ((*it)->spec.id != id) continue;
    if ((*it)->adapter) resident_ -= (*it)->bytes;
    (*it)->adapter.reset();
    entries_.erase(it);
    return Status::ok();
  }
  return unknown(id);
}

Result<AdapterRegistry::Acquired> AdapterRegistry::acquire(const std::string& id, const std::string& org) {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    std::shared_ptr<Entry> e = find(id);
    if (!e || !visible(e->spec.org, org)) return unknown(id);  // another organization's: unknown
    e->last_used = ++clock_;
    if (e->adapter) return Acquired{e->spec.base, e->adapter};
    if (e->loading) {  // another request reads it: wait for that
      loaded_.wait(lock);
      continue;
    }
    e->loading = true;
    const std::string path = e->spec.path;
    const engine::Model* base = e->base;
    lock.unlock();
    auto adapter = engine::LoraAdapter::load(path, *base);
    lock.lock();
    e->loading = false;
    loaded_.notify_all();
    if (!adapter.is_ok()) return adapter.status();
    const size_t bytes = (*adapter)->bytes();
    if (find(id) == e) {  // still registered: resident from now on, if there is room
      if (!make_room(bytes, e.get())) return over_budget(id, bytes, budget_);
      e->bytes = bytes;
      e->adapter = *adapter;
      resident_ += bytes;
    }
    return Acquired{e->spec.base, *adapter};  // (removed meanwhile: this request still runs with it)
  }
}

Result<std::string> AdapterRegistry::base_of(const std::string& id, const std::string& org) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::shared_ptr<Entry> e = find(id);
  if (!e || !visible(e->spec.org, org)) return unknown(id);
  return e->spec.base;
}

std::vector<AdapterRegistry::Info> AdapterRegistry::list(const std::string& org) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Info> out;
  for (const auto& e : entries_)
    if (visible(e->spec.org, org))
      out.push_back({e->spec, e->adapter != nullptr, e->bytes, e->created});
  return out;
}

bool AdapterRegistry::contains(const std::string& id) const {
  std::lock_guard<std::mutex> lock(mu_);
  return std::any_of(entries_.begin(), entries_.end(), [&](const auto& e) { return e->spec.id == id; });
}

bool AdapterRegistry::resident(const std::string& id) const {
  std::lock_guard<std::mutex> lock(mu_);
  const std::shared_ptr<Entry> e = find(id);
  return e && e->adapter;
}

size_t AdapterRegistry::resident_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return resident_;
}

}  // namespace nc::server
