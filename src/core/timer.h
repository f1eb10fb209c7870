// Time helpers: monotonic (now_ns, now_s) and wall-clock unix microseconds (unix_us). Thread-safe (stateless).
#pragma once

#include <chrono>
#include <cstdint>

namespace nc {
inline int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
inline double now_s() { return static_cast<double>(now_ns()) * 1e-9; }
// Wall-clock time as unix microseconds (what stored and billed times use).
inline int64_t unix_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}
}  // namespace nc
