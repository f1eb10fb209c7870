// A job segment's GPU-seconds as a usage event (gpu_metering.h).
#include "capacity/gpu_metering.h"

#include <fmt/format.h>

#include <algorithm>

namespace nc::capacity {

GpuUsage gpu_usage(const SegmentUsage& u) {
  GpuUsage g;
  g.org = u.org;
  g.project = u.project;
  g.api_key_id = u.api_key_id;
  g.id = fmt::format("{}/{}", u.job_id, u.segment);
  g.time_us = u.ended_us;
  const int64_t us = std::max<int64_t>(0, u.ended_us - u.started_us);
  if (u.gpu_milli > 0) {
    g.item = fmt::format("gpu-seconds/{}/{}", u.gpu_type, u.item_class);
    const __int128 milli_us = static_cast<__int128>(u.gpu_milli) * us;
    g.quantity = static_cast<int64_t>((milli_us + 999'999'999) / 1'000'000'000);
  } else {
    // A CPU-only job: job-seconds of its own price item.
    g.type = "cpu.seconds";
    g.item = fmt::format("cpu-seconds/{}", u.item_class);
    g.quantity = (us + 999'999) / 1'000'000;
  }
  // The minimum billable unit: a run that started is at least one second.
  if (u.started_us > 0) g.quantity = std::max<int64_t>(g.quantity, 1);
  g.data = {{"job_id", u.job_id},       {"segment", u.segment},        {"gpu_type", u.gpu_type},
            {"priority", std::string(priority_name(u.priority))}, {"gpu_milli", u.gpu_milli}, {"started_at_us", u.started_us},
            {"ended_at_us", u.ended_us}, {"end", u.end}};
  return g;
}

}  // namespace nc::capacity
