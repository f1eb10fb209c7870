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

Status AdapterRegistry::add(const AdapterSpec& spec, const engine::Model& base) {
  if (spec.id.empty() || spec.id.size() > 256) return invalid_argument("an adapter id of 1 to 256 bytes").with_field("id");
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& e : entries_)
    if (e->spec.id == spec.id) return Status(StatusCode::kAlreadyExists, fmt::format("adapter `{}` already exists", spec.id)).with_field("id");
  NC_ASSIGN_OR_RETURN(auto adapter, engine::LoraAdapter::load(spec.path, base));
  const size_t bytes = adapter->bytes();
  if (!make_room(bytes, nullptr)) return over_budget(spec.id, bytes, budget_);
  auto e = std::make_unique<Entry>();
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
    entries_.erase(it);
    return Status::ok();
  }
  return not_found(fmt::format("adapter `{}` does not exist", id));
}

Result<AdapterRegistry::Acquired> AdapterRegistry::acquire(const std::string& id, const std::string& org) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& e : entries_) {
    if (e->spec.id != id) continue;
    if (!org.empty() && !e->spec.org.empty() && e->spec.org != org) break;  // another organization's: unknown
    e->last_used = ++clock_;
    if (!e->adapter) {
      NC_ASSIGN_OR_RETURN(auto adapter, engine::LoraAdapter::load(e->spec.path, *e->base));
      if (!make_room(adapter->bytes(), e.get())) return over_budget(id, adapter->bytes(), budget_);
      e->bytes = adapter->bytes();
      e->adapter = std::move(adapter);
      resident_ += e->bytes;
    }
    return Acquired{e->spec.base, e->adapter};
  }
  return not_found(fmt::format("adapter `{}` does not exist", id));
}

std::vector<AdapterRegistry::Info> AdapterRegistry::list(const std::string& org) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Info> out;
  for (const auto& e : entries_)
    if (org.empty() || e->spec.org.empty() || e->spec.org == org)
      out.push_back({e->spec, e->adapter != nullptr, e->bytes, e->created});
  return out;
}

bool AdapterRegistry::contains(const std::string& id) const {
  std::lock_guard<std::mutex> lock(mu_);
  return std::any_of(entries_.begin(), entries_.end(), [&](const auto& e) { return e->spec.id == id; });
}

size_t AdapterRegistry::resident_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return resident_;
}

}  // namespace nc::server
