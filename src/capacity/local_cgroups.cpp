// JobCgroups and spawn_into_cgroup (local_cgroups.h).
#include "capacity/local_cgroups.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

namespace nc::capacity {
namespace {

constexpr long kCgroup2Magic = 0x63677270;  // CGROUP2_SUPER_MAGIC

bool write_file(const std::string& path, const std::string& text) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  return ok;
}

std::string read_small_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool has_word(const std::string& text, const std::string& word) {
  std::istringstream in(text);
  std::string w;
  while (in >> w) {
    if (w == word) return true;
  }
  return false;
}

}  // namespace

JobCgroups::JobCgroups(bool use, std::string parent) {
  if (!use) {
    status_ = "off (use_cgroups is false)";
    return;
  }
  if (parent.empty()) {
    std::istringstream in(read_small_file("/proc/self/cgroup"));
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("0::", 0) == 0) parent = "/sys/fs/cgroup" + line.substr(3);
    }
    if (parent.empty()) parent = "/sys/fs/cgroup";
  }
  while (parent.size() > 1 && parent.back() == '/') parent.pop_back();
  struct statfs fs{};
  if (::statfs(parent.c_str(), &fs) != 0 || static_cast<long>(fs.f_type) != kCgroup2Magic) {
    status_ = "off (" + parent + " is not a cgroup2 mount)";
    return;
  }
  // Enable the controllers for our children where they exist (refused when parent holds processes).
  std::string controllers = read_small_file(parent + "/cgroup.controllers");
  std::string enabled = read_small_file(parent + "/cgroup.subtree_control");
  for (const char* c : {"cpu", "memory"}) {
    if (has_word(controllers, c) && !has_word(enabled, c)) write_file(parent + "/cgroup.subtree_control", std::string("+") + c);
  }
  enabled = read_small_file(parent + "/cgroup.subtree_control");
  has_cpu_ = has_word(enabled, "cpu");
  has_memory_ = has_word(enabled, "memory");
  std::string probe = parent + "/nc-probe-" + std::to_string(::getpid());
  if (::mkdir(probe.c_str(), 0755) != 0 && errno != EEXIST) {
    status_ = "off (cannot create a cgroup in " + parent + ": " + std::strerror(errno) + ")";
    return;
  }
  ::rmdir(probe.c_str());
  parent_ = parent;
  // clone3 with a too-small argument is EINVAL where the call exists (ENOSYS: before Linux 5.3, valgrind).
  if (::syscall(SYS_clone3, nullptr, 0) < 0 && errno == ENOSYS) clone_into_ = false;
  status_ = "on under " + parent + " (cpu.max " + (has_cpu_ ? "enforced" : "unavailable") + ", memory.max " +
            (has_memory_ ? "enforced" : "unavailable") + "; tasks " +
            (clone_into_ ? "start inside it" : "are moved in after they start") + ")";
}

std::string JobCgroups::create(const std::string& name, int64_t cpu_milli, int64_t memory_mib) const {
  std::string dir = parent_ + "/" + name;
  ::rmdir(dir.c_str());  // a stale one from a crashed run of this pid
  if (::mkdir(dir.c_str(), 0755) != 0) return "";
  if (has_cpu_ && cpu_milli > 0) {
    // cpu_milli of one CPU = cpu_milli/1000 of each 100 ms period; the kernel's minimum quota is 1 ms.
    int64_t quota = std::max<int64_t>(1000, cpu_milli * 100);
    write_file(dir + "/cpu.max", std::to_string(quota) + " 100000");
  }
  if (has_memory_ && memory_mib > 0) write_file(dir + "/memory.max", std::to_string(memory_mib * 1024 * 1024));
  return dir;
}

std::set<pid_t> JobCgroups::members(const std::vector<std::string>& cgroups) {
  std::set<pid_t> out;
  for (const std::string& cg : cgroups) {
    std::istringstream in(read_small_file(cg + "/cgroup.procs"));
    pid_t pid = 0;
    while (in >> pid) out.insert(pid);
  }
  return out;
}

bool JobCgroups::add(const std::string& cgroup, pid_t pid) { return write_file(cgroup + "/cgroup.procs", std::to_string(pid)); }

bool JobCgroups::kill(const std::string& cgroup) { return write_file(cgroup + "/cgroup.kill", "1"); }

// What posix_spawn below does, but born inside a cgroup (clone3 CLONE_INTO_CGROUP, Linux >= 5.7): a
// process moved in after it started may already have forked children that stay outside. The child is
// a copy of a possibly threaded process, so it makes only async-signal-safe calls before execve.
// Returns 0 or an errno; ENOSYS/EINVAL/E2BIG mean the kernel cannot do it.
int spawn_into_cgroup(int cgroup_fd, const char* exe, char* const argv[], char* const envp[], const char* wd,
                      int log_fd, int home_fd, pid_t* pid_out) {
  struct CloneArgs {  // struct clone_args (linux/sched.h), version 2
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size,
        cgroup;
  };
  int err_pipe[2];
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) return errno;
  CloneArgs args{};
  args.flags = 0x200000000ULL;  // CLONE_INTO_CGROUP
  args.exit_signal = SIGCHLD;
  args.cgroup = static_cast<uint64_t>(cgroup_fd);
  long pid = ::syscall(SYS_clone3, &args, sizeof args);
  if (pid == 0) {
    int err = 0;
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    struct sigaction dfl{};
    dfl.sa_handler = SIG_DFL;
    for (int sig : kTaskDefaultSignals) ::sigaction(sig, &dfl, nullptr);
    int null_fd = -1;
    int keep = err_pipe[1];  // where the error goes (moved off 3 when home_fd takes it)
    if (::setsid() < 0 || ::chdir(wd) != 0 || (null_fd = ::open("/dev/null", O_RDONLY)) < 0 ||
        ::dup2(null_fd, 0) < 0 || ::dup2(log_fd, 1) < 0 || ::dup2(log_fd, 2) < 0) {
      err = errno;
    } else {
      // Everything but 0-2 (0-3 with home_fd) and the error pipe (which closes on exec) is closed.
      int first = 3;
      if (home_fd >= 0) {
        if (keep == 3) keep = ::fcntl(keep, F_DUPFD_CLOEXEC, 4);
        if (keep < 0 || ::dup2(home_fd, 3) < 0) {
          err = errno;
          if (keep < 0) keep = err_pipe[1];
          ssize_t ignored = ::write(keep, &err, sizeof err);
          (void)ignored;
          ::_exit(127);
        }
        first = 4;
      }
      if (keep > first) ::close_range(static_cast<unsigned>(first), static_cast<unsigned>(keep - 1), 0);
      ::close_range(static_cast<unsigned>(keep + 1), ~0u, 0);
      ::execve(exe, argv, envp);
      err = errno;
    }
    ssize_t ignored = ::write(keep, &err, sizeof err);
    (void)ignored;
    ::_exit(127);
  }
  int saved = errno;
  ::close(err_pipe[1]);
  if (pid < 0) {
    ::close(err_pipe[0]);
    return saved;
  }
  int err = 0;
  ssize_t n;
  while ((n = ::read(err_pipe[0], &err, sizeof err)) < 0 && errno == EINTR) {
  }
  ::close(err_pipe[0]);
  if (n == static_cast<ssize_t>(sizeof err)) {  // it never ran the command: reap it
    while (::waitpid(static_cast<pid_t>(pid), nullptr, 0) < 0 && errno == EINTR) {
    }
    return err != 0 ? err : EIO;
  }
  *pid_out = static_cast<pid_t>(pid);
  return 0;
}

}  // namespace nc::capacity
