// DrfFairShare (fair_share.h): Dominant Resource Fairness ordering of waiting jobs across organizations.
#include "capacity/fair_share.h"

#include <algorithm>

namespace nc::capacity {

DrfFairShare::Org& DrfFairShare::org(int o) {
  if (static_cast<size_t>(o) >= orgs_.size()) orgs_.resize(static_cast<size_t>(o) + 1);
  Org& g = orgs_[static_cast<size_t>(o)];
  if (g.used.size() != capacity_.size()) g.used.assign(capacity_.size(), 0);
  return g;
}

void DrfFairShare::recompute(Org& g) const {
  double s = 0;
  for (size_t t = 0; t < capacity_.size(); ++t) {
    if (capacity_[t] > 0) s = std::max(s, static_cast<double>(g.used[t]) / static_cast<double>(capacity_[t]));
  }
  g.share = s / g.weight;
}

void DrfFairShare::set_weight(int o, double weight) {
  Org& g = org(o);
  g.weight = weight > 0 ? weight : 1.0;
  recompute(g);
}

void DrfFairShare::charge(int o, int type, int64_t milli) {
  if (type < 0) return;
  Org& g = org(o);
  g.used[static_cast<size_t>(type)] += milli;
  recompute(g);
}

double DrfFairShare::dominant_share(int o) const {
  if (static_cast<size_t>(o) >= orgs_.size()) return 0.0;
  return orgs_[o].share;
}

}  // namespace nc::capacity
