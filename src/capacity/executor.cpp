#include "capacity/executor.h"

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

}  // namespace nc::capacity
