// GPU-time metering: what one ended job segment (or a reservation's hold) is billed as — a usage event
// of GPU-seconds, rounded up, on the price item "gpu-seconds/<type>/<on-demand|spot|reserved|
// in-reservation|reservation>" (a CPU-only job: job-seconds on "cpu-seconds/<class>"; a run that started
// bills at least one unit), keyed (source "neocloud/capacity", id "<job>/<segment>") so that the
// ledger stores it once however often it is retried. The billing module prices and stores it
// (gateway/metered_usage.h); capacity knows no prices or ledger.
// Plain values and a pure function; any thread.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

#include "capacity/job_record.h"

namespace nc::capacity {

struct GpuUsage {
  std::string org, project, api_key_id;
  std::string source = "neocloud/capacity", id, type = "gpu.seconds", item;
  int64_t time_us = 0;   // when the segment ended
  int64_t quantity = 0;  // GPU-seconds (gpu_milli × seconds / 1000, rounded up)
  nlohmann::json data;   // job_id, segment, gpu_type, priority, gpu_milli, started/ended_at_us, end
};

GpuUsage gpu_usage(const SegmentUsage& u);

}  // namespace nc::capacity
