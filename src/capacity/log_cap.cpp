// The cap on a job's log file (log_cap.h).
#include "capacity/log_cap.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

namespace nc::capacity {

std::string log_cap_note(int64_t cap_bytes) {
  return fmt::format("\n[neocloud: this job's log reached its cap of {} bytes; later output is discarded]\n", cap_bytes);
}

bool enforce_log_cap(const std::string& path, int64_t cap_bytes, bool* capped) {
  if (cap_bytes <= 0) return false;
  const std::string note = log_cap_note(cap_bytes);
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return false;
  const int64_t keep = cap_bytes + (*capped ? static_cast<int64_t>(note.size()) : 0);
  if (st.st_size <= keep) return false;
  // Cut at the cap and (re)write the note right after it: a writer that does not append (Slurm's I/O
  // keeps its own offset) may have written over the last note.
  if (::truncate(path.c_str(), cap_bytes) != 0) return false;
  const int fd = ::open(path.c_str(), O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return true;
  const bool ok = ::pwrite(fd, note.data(), note.size(), cap_bytes) == static_cast<ssize_t>(note.size());
  ::close(fd);
  // What the job writes after this goes at the next call.
  if (ok) *capped = true;
  return true;
}

}  // namespace nc::capacity
