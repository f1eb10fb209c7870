// stage_job_inputs (job_inputs.h).
#include "capacity/job_inputs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>

namespace nc::capacity {

namespace {

Status copy_file(const std::string& from, const std::string& to) {
  const int in = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return unavailable(fmt::format("input '{}': {}", from, std::strerror(errno)));
  const std::string tmp = to + ".part";
  ::unlink(tmp.c_str());  // whatever the job left there (a link, a file): never written through
  const int out = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0444);
  if (out < 0) {
    ::close(in);
    return unavailable(fmt::format("staging '{}': {}", to, std::strerror(errno)));
  }
  std::vector<char> buf(1 << 20);
  Status st;
  for (;;) {
    const ssize_t n = ::read(in, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      st = unavailable(fmt::format("reading input '{}': {}", from, std::strerror(errno)));
      break;
    }
    if (n == 0) break;
    for (ssize_t done = 0; done < n;) {
      const ssize_t w = ::write(out, buf.data() + done, static_cast<size_t>(n - done));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) {
        st = unavailable(fmt::format("staging '{}': {}", to, std::strerror(errno)));
        break;
      }
      done += w;
    }
    if (!st.is_ok()) break;
  }
  ::fchmod(out, 0444);  // the umask may have narrowed the mode
  ::close(in);
  ::close(out);
  if (st.is_ok() && ::rename(tmp.c_str(), to.c_str()) != 0)
    st = unavailable(fmt::format("staging '{}': {}", to, std::strerror(errno)));
  if (!st.is_ok()) ::unlink(tmp.c_str());
  return st;
}

}  // namespace

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
    NC_RETURN_IF_ERROR(copy_file(src, dst));
  }
  return Status::ok();
}

}  // namespace nc::capacity
