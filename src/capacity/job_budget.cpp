// JobBudgets (job_budget.h).
#include "capacity/job_budget.h"

#include <fmt/format.h>

namespace nc::capacity {

Result<int64_t> JobBudgets::hold(const std::string& org, const std::string& project, const std::string& key,
                                 const JobSpec& spec, const std::vector<std::string>& gpu_types) {
  if (!enabled()) return int64_t{0};
  const std::string cls = spec.reservation.empty() ? std::string(priority_name(spec.priority)) : "in-reservation";
  std::vector<std::string> items;
  int64_t quantity = 0;
  if (spec.shape.gpus == 0) {
    items.push_back(fmt::format("cpu-seconds/{}", cls));
    quantity = spec.max_duration_s;
  } else {
    const auto& types = spec.shape.gpu_types.empty() ? gpu_types : spec.shape.gpu_types;
    for (const auto& t : types) items.push_back(fmt::format("gpu-seconds/{}/{}", t, cls));
    // GPU-seconds rounded up, as gpu_metering.h bills them.
    quantity = (spec.shape.total_gpu_milli() * spec.max_duration_s + 999) / 1000;
  }
  quantity = std::max<int64_t>(quantity, 1);  // the minimum billable unit
  return hooks_.hold(org, project, key, items, quantity);
}

void JobBudgets::release_due() {
  for (int64_t h : due_) {
    if (hooks_.release) hooks_.release(h);
  }
  due_.clear();
}

}  // namespace nc::capacity
