// The one clock of neocloud: monotonic time (now_ns, now_s, steady_ms) for durations and deadlines, and
// wall-clock unix time (unix_us, unix_ms, unix_s) for what is stored, billed or shown to clients.
// Stateless; any thread.
#pragma once

#include <chrono>
#include <cstdint>

namespace nc {
inline int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
inline double now_s() { return static_cast<double>(now_ns()) * 1e-9; }
inline int64_t steady_ms() { return now_ns() / 1000000; }
// Wall-clock time as unix microseconds (what stored and billed times use).
inline int64_t unix_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}
inline int64_t unix_ms() { return unix_us() / 1000; }
inline int64_t unix_s() { return unix_us() / 1000000; }
}  // namespace nc
