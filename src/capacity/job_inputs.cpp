// stage_job_inputs (job_inputs.h).
#include "capacity/job_inputs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>

#include "core/file_copy.h"

namespace nc::capacity {

Status stage_job_inputs(const std::vector<std::pair<std::string, std::string>>& inputs, const std::string& dir) {
  for (const auto& [name, src] : inputs) {
    if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos)
      return invalid_argument(fmt::format("input name '{}' is not one path component", name));
    const std::string dst = dir + "/" + name;
    struct stat st {};
    if (::stat(src.c_str(), &st) != 0) return not_found(fmt::format("input '{}' ({}) is gone", name, src));
    // Staged afresh for every run: the job may have replaced the previous run's copy in its directory.
    if (::unlink(dst.c_str()) != 0 && errno != ENOENT)
      return unavailable(fmt::format("staging '{}': {}", name, std::strerror(errno)));
    if ((st.st_mode & S_IROTH) && ::link(src.c_str(), dst.c_str()) == 0) continue;
    const int in = ::open(src.c_str(), O_RDONLY | O_CLOEXEC);
    if (in < 0) return unavailable(fmt::format("input '{}': {}", src, std::strerror(errno)));
    const Status copied = copy_to_file(in, dst, 0444);
    ::close(in);
    if (!copied.is_ok()) return copied.with_context(fmt::format("staging '{}'", name));
  }
  return Status::ok();
}

}  // namespace nc::capacity
