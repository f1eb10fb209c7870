// The cap on a job's log file (both executors): once the file passes `cap_bytes` it is cut back to
// `cap_bytes` and one line saying so is written after it; the job's processes keep writing through their
// own descriptors (appending, or at their own offset: Slurm's), so later output is cut again, and the
// line rewritten, at each call (the disk holds at most the cap plus what a job writes between two calls). Stateless apart from the caller's `capped` flag; any thread.
#pragma once

#include <cstdint>
#include <string>

namespace nc::capacity {

// The line appended when a log is cut.
std::string log_cap_note(int64_t cap_bytes);

// Cuts `path` as above; true when it cut something. `capped`: set once the note is in the file.
bool enforce_log_cap(const std::string& path, int64_t cap_bytes, bool* capped);

}  // namespace nc::capacity
