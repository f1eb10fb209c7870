// Streaming text assembly for generation:
//  - Utf8Stream: token pieces are byte strings that may end inside a UTF-8 character; it releases
//    only whole characters and holds the incomplete tail until the next piece completes it. Bytes
//    that can never form a valid character come out as U+FFFD, so the output is always valid UTF-8.
//  - StopMatcher: finds stop strings in the generated text across piece boundaries. Text that could
//    still be the start of a stop string is held back; when a stop string completes, the text before
//    it is released and the stop string itself never is.
// Thread-safety: one thread per object.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace nc::engine {

class Utf8Stream {
 public:
  // Appends bytes; returns the newly complete, valid UTF-8 text.
  std::string push(std::string_view bytes);
  // End of stream: an incomplete tail becomes U+FFFD.
  std::string flush();
  bool pending() const { return !tail_.empty(); }

 private:
  std::string tail_;
};

class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops = {});
  // Appends text; returns what can be released now. Sets `stopped` (and releases only the text
  // before the stop string) when a stop string completes; `matched` then names it.
  std::string push(std::string_view text, bool* stopped);
  // End of generation without a stop: releases the held-back text.
  std::string flush();
  const std::string& matched() const { return matched_; }

 private:
  std::vector<std::string> stops_;
  std::string held_;
  std::string matched_;
};

}  // namespace nc::engine
