// The executor contract's shared helpers (executor.h).
#include "capacity/executor.h"

#include <fmt/format.h>

#include <cstdint>
#include <string>

namespace nc::capacity {

std::string_view exit_kind_name(ExitKind k) {
  switch (k) {
    case ExitKind::kSucceeded: return "succeeded";
    case ExitKind::kFailed: return "failed";
    case ExitKind::kTerminated: return "terminated";
    case ExitKind::kTimedOut: return "timed_out";
    case ExitKind::kNodeFailed: return "node_failed";
  }
  return "unknown";
}

bool is_reserved_env(std::string_view n) {
  static constexpr std::string_view kExact[] = {
      "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES",
      "GPU_DEVICE_ORDINAL",   "RANK",                   "WORLD_SIZE",           "LOCAL_RANK",
      "LOCAL_WORLD_SIZE",     "NODE_RANK",              "NNODES",               "MASTER_ADDR",
      "MASTER_PORT"};
  for (std::string_view e : kExact)
    if (n == e) return true;
  return n.starts_with("NEOCLOUD_") || n.starts_with("SLURM_");
}

Status check_job_env(std::string_view name, std::string_view value) {
  const auto bad_name = [&] {
    std::string shown(name.substr(0, 64));
    for (char& c : shown)
      if (static_cast<unsigned char>(c) < 0x20) c = '?';
    return invalid_argument(fmt::format("env: '{}' is not a valid variable name (letters, digits and '_', not starting "
                                        "with a digit, at most 256 bytes)",
                                        shown))
        .with_field("env");
  };
  if (name.empty() || name.size() > 256 || (name[0] >= '0' && name[0] <= '9')) return bad_name();
  for (char c : name) {
    if (!(c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) return bad_name();
  }
  if (is_reserved_env(name)) {
    return invalid_argument(fmt::format("env: {} is set by neocloud for every task (its GPUs, ranks and rendezvous); a "
                                        "job may not set it",
                                        name))
        .with_field("env." + std::string(name));
  }
  if (value.find('\0') != std::string_view::npos)
    return invalid_argument(fmt::format("env: the value of {} holds a NUL byte", name)).with_field("env." + std::string(name));
  return Status::ok();
}

int master_port(std::string_view job_id) {
  uint64_t h = 1469598103934665603ull;
  for (char c : job_id) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  return 20000 + static_cast<int>(h % 10000);
}

}  // namespace nc::capacity
