// GPU quotas per organization and GPU type (quota.h).
#include "capacity/quota.h"

namespace nc::capacity {

QuotaPolicy::Org& QuotaPolicy::org(int o) {
  if (static_cast<size_t>(o) >= orgs_.size()) orgs_.resize(static_cast<size_t>(o) + 1);
  Org& g = orgs_[static_cast<size_t>(o)];
  if (g.used.empty()) {
    g.used.assign(static_cast<size_t>(num_types_), 0);
    g.limit.assign(static_cast<size_t>(num_types_), -1);
  }
  return g;
}

void QuotaPolicy::set_limit(int o, int type, std::optional<int64_t> milli) {
  Org& g = org(o);
  const int64_t v = milli ? *milli : -1;
  if (type < 0) {
    g.limit_total = v;
  } else if (type < num_types_) {
    g.limit[static_cast<size_t>(type)] = v;
  }
}

std::optional<int64_t> QuotaPolicy::limit(int o, int type) const {
  if (static_cast<size_t>(o) >= orgs_.size() || orgs_[o].used.empty()) return std::nullopt;
  const Org& g = orgs_[o];
  const int64_t v = type < 0 ? g.limit_total : g.limit[static_cast<size_t>(type)];
  if (v < 0) return std::nullopt;
  return v;
}

bool QuotaPolicy::allows(int o, int type, int64_t milli) const {
  if (static_cast<size_t>(o) >= orgs_.size() || orgs_[o].used.empty()) return true;
  const Org& g = orgs_[o];
  if (g.limit_total >= 0 && g.used_total + milli > g.limit_total) return false;
  if (type >= 0) {
    const int64_t l = g.limit[static_cast<size_t>(type)];
    if (l >= 0 && g.used[static_cast<size_t>(type)] + milli > l) return false;
  }
  return true;
}

void QuotaPolicy::charge(int o, int type, int64_t milli) {
  Org& g = org(o);
  g.used_total += milli;
  if (type >= 0) g.used[static_cast<size_t>(type)] += milli;
}

int64_t QuotaPolicy::used(int o, int type) const {
  if (static_cast<size_t>(o) >= orgs_.size() || orgs_[o].used.empty()) return 0;
  return type < 0 ? orgs_[o].used_total : orgs_[o].used[static_cast<size_t>(type)];
}

}  // namespace nc::capacity
