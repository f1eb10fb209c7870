// DrfFairShare: Dominant Resource Fairness across organizations (Ghodsi et al., NSDI'11). Each GPU type
// is a resource; an organization's dominant share is the largest fraction of any type's capacity it
// holds, divided by its weight (default 1). Among waiting jobs of one priority class, the organization
// with the smallest dominant share goes first, so a tenant that holds little gets the next free GPUs
// even when another tenant queued thousands of jobs before it.
// Organizations and types are the scheduler's dense ids. Threads: not synchronized.
#pragma once

#include <cstdint>
#include <vector>

namespace nc::capacity {

class DrfFairShare {
 public:
  explicit DrfFairShare(std::vector<int64_t> capacity_milli) : capacity_(std::move(capacity_milli)) {}

  void set_weight(int org, double weight);  // > 0
  void charge(int org, int type, int64_t milli);  // negative: give back
  double dominant_share(int org) const;

 private:
  struct Org {
    std::vector<int64_t> used;
    double weight = 1.0;
    double share = 0.0;  // cached dominant share
  };
  Org& org(int o);
  void recompute(Org& g) const;

  std::vector<int64_t> capacity_;
  std::vector<Org> orgs_;
};

}  // namespace nc::capacity
