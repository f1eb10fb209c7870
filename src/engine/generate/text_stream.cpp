#include "engine/generate/text_stream.h"

#include <algorithm>

namespace nc::engine {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";

// Length of the valid UTF-8 character at s[i] (strict: no overlongs, surrogates or > U+10FFFF);
// 0 if it is incomplete but could still become valid; -1 if it is invalid.
int char_len(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  const uint8_t c = b(i);
  if (c < 0x80) return 1;
  int n;
  uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF) n = 2;
  else if (c == 0xE0) n = 3, lo = 0xA0;
  else if (c >= 0xE1 && c <= 0xEC) n = 3;
  else if (c == 0xED) n = 3, hi = 0x9F;
  else if (c >= 0xEE && c <= 0xEF) n = 3;
  else if (c == 0xF0) n = 4, lo = 0x90;
  else if (c >= 0xF1 && c <= 0xF3) n = 4;
  else if (c == 0xF4) n = 4, hi = 0x8F;
  else return -1;
  for (int k = 1; k < n; ++k) {
    if (i + k >= s.size()) return 0;
    const uint8_t x = b(i + k);
    if (k == 1 ? (x < lo || x > hi) : (x < 0x80 || x > 0xBF)) return -1;
  }
  return n;
}

}  // namespace

std::string Utf8Stream::push(std::string_view bytes) {
  tail_.append(bytes);
  std::string out;
  size_t i = 0;
  while (i < tail_.size()) {
    const int n = char_len(tail_, i);
    if (n == 0) break;  // incomplete: wait for more bytes
    if (n < 0) {
      out.append(kReplacement);
      i += 1;
      continue;
    }
    out.append(tail_, i, static_cast<size_t>(n));
    i += static_cast<size_t>(n);
  }
  tail_.erase(0, i);
  return out;
}

std::string Utf8Stream::flush() {
  std::string out;
  if (!tail_.empty()) out.append(kReplacement);
  tail_.clear();
  return out;
}

StopMatcher::StopMatcher(std::vector<std::string> stops) {
  for (auto& s : stops) {
    if (!s.empty()) stops_.push_back(std::move(s));
  }
}

std::string StopMatcher::push(std::string_view text, bool* stopped) {
  *stopped = false;
  held_.append(text);
  // The earliest complete stop string wins (ties: the longer one starting there is irrelevant, the
  // released text is the same).
  size_t best = std::string::npos;
  for (const auto& s : stops_) {
    const size_t p = held_.find(s);
    if (p != std::string::npos && p < best) {
      best = p;
      matched_ = s;
    }
  }
  if (best != std::string::npos) {
    *stopped = true;
    std::string out = held_.substr(0, best);
    held_.clear();
    return out;
  }
  // Hold back the longest suffix that is a proper prefix of some stop string.
  size_t keep = 0;
  for (const auto& s : stops_) {
    const size_t max_k = std::min(s.size() - 1, held_.size());
    for (size_t k = max_k; k > keep; --k) {
      if (held_.compare(held_.size() - k, k, s, 0, k) == 0) {
        keep = k;
        break;
      }
    }
  }
  std::string out = held_.substr(0, held_.size() - keep);
  held_.erase(0, held_.size() - keep);
  return out;
}

std::string StopMatcher::flush() {
  std::string out;
  out.swap(held_);
  return out;
}

}  // namespace nc::engine
