// write_all and copy_to_file (file_copy.h).
#include "core/file_copy.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace nc {

Status write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      if (errno == ENOSPC || errno == EDQUOT) return resource_exhausted("the disk is full");
      return unavailable(fmt::format("write: {}", std::strerror(errno)));
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::ok();
}

Status copy_to_file(int in, const std::string& to, mode_t mode) {
  const std::string tmp = to + ".part";
  ::unlink(tmp.c_str());
  const int out = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
  if (out < 0) return unavailable(fmt::format("creating {}: {}", tmp, std::strerror(errno)));
  std::vector<char> buf(1 << 20);
  Status st;
  for (;;) {
    const ssize_t n = ::read(in, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) st = unavailable(fmt::format("read: {}", std::strerror(errno)));
    if (n <= 0) break;
    st = write_all(out, std::string_view(buf.data(), static_cast<size_t>(n)));
    if (!st.is_ok()) break;
  }
  ::fchmod(out, mode);
  ::close(out);
  if (st.is_ok() && ::rename(tmp.c_str(), to.c_str()) != 0)
    st = unavailable(fmt::format("renaming to {}: {}", to, std::strerror(errno)));
  if (!st.is_ok()) ::unlink(tmp.c_str());
  return st;
}

}  // namespace nc
