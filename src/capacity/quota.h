// QuotaPolicy: how much GPU capacity each organization may hold at once — per GPU type and over all
// types (milli-GPUs; a whole GPU is 1000). A job is admitted on a GPU type only if both limits leave
// room for all of it; running jobs are never stopped by a lower limit (it applies to new starts).
// Organizations and GPU types are the scheduler's dense ids. No limit set = unlimited.
// Threads: not synchronized (the scheduler's thread).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

namespace nc::capacity {

class QuotaPolicy {
 public:
  explicit QuotaPolicy(int num_types) : num_types_(num_types) {}

  // type -1: the limit over all GPU types. nullopt removes the limit.
  void set_limit(int org, int type, std::optional<int64_t> milli);
  std::optional<int64_t> limit(int org, int type) const;

  bool allows(int org, int type, int64_t milli) const;
  void charge(int org, int type, int64_t milli);  // negative: give back
  int64_t used(int org, int type) const;           // type -1: over all types

 private:
  struct Org {
    std::vector<int64_t> used, limit;  // per type; limit -1 = none
    int64_t used_total = 0, limit_total = -1;
  };
  Org& org(int o);

  int num_types_;
  std::vector<Org> orgs_;
};

}  // namespace nc::capacity
