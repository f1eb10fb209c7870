// The executor contract's shared helpers (executor.h).
#include "capacity/executor.h"

#include <cstdint>

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

int master_port(std::string_view job_id) {
  uint64_t h = 1469598103934665603ull;
  for (char c : job_id) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  return 20000 + static_cast<int>(h % 10000);
}

}  // namespace nc::capacity
