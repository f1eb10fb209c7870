#include "core/ids.h"

#include <sys/random.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "core/timer.h"

namespace nc {

namespace {
// Per-thread buffer: one getrandom() call per 256 bytes.
struct RandomBuffer {
  unsigned char bytes[256];
  size_t used = sizeof(bytes);
};
thread_local RandomBuffer tl_buffer;

void fill(void* out, size_t n) {
  auto* p = static_cast<unsigned char*>(out);
  while (n > 0) {
    const ssize_t got = ::getrandom(p, n, 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      std::abort();
    }
    p += got;
    n -= static_cast<size_t>(got);
  }
}
}  // namespace

void random_bytes(void* out, size_t n) {
  auto* p = static_cast<unsigned char*>(out);
  RandomBuffer& b = tl_buffer;
  while (n > 0) {
    if (b.used == sizeof(b.bytes)) {
      fill(b.bytes, sizeof(b.bytes));
      b.used = 0;
    }
    const size_t take = std::min(n, sizeof(b.bytes) - b.used);
    std::memcpy(p, b.bytes + b.used, take);
    std::memset(b.bytes + b.used, 0, take);  // a byte handed out is not kept
    b.used += take;
    p += take;
    n -= take;
  }
}

uint64_t random_u64() {
  uint64_t v;
  random_bytes(&v, sizeof(v));
  return v;
}

std::string random_id(std::string_view prefix, int hex_chars) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s(prefix);
  s.reserve(prefix.size() + static_cast<size_t>(std::max(hex_chars, 0)));
  unsigned char buf[64];
  int left = hex_chars;
  while (left > 0) {
    const int chunk = std::min(left, 128);
    random_bytes(buf, static_cast<size_t>((chunk + 1) / 2));
    for (int i = 0; i < chunk; ++i) s += kHex[(buf[i / 2] >> (i % 2 ? 0 : 4)) & 15];
    left -= chunk;
  }
  return s;
}

std::string time_ordered_id(std::string_view prefix, int hex_chars) {
  static constexpr char kHex[] = "0123456789abcdef";
  const uint64_t ms = static_cast<uint64_t>(unix_ms()) & 0xffffffffffffULL;
  const int time_chars = std::min(12, std::max(hex_chars, 0));
  std::string s(prefix);
  for (int i = 12 - time_chars; i < 12; ++i) s += kHex[(ms >> (4 * (11 - i))) & 15];
  return s + random_id("", hex_chars - time_chars);
}

}  // namespace nc
