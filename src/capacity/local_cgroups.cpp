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

namespace {

constexpr long kCgroupV1Magic = 0x27e0eb;  // CGROUP_SUPER_MAGIC

// This process's cgroup in the v1 hierarchy holding `controller` ("N:cpu,cpuacct:/path" lines).
std::string own_v1_path(const std::string& controller) {
  std::istringstream in(read_small_file("/proc/self/cgroup"));
  std::string line;
  while (std::getline(in, line)) {
    const size_t a = line.find(':'), b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    std::istringstream names(line.substr(a + 1, b - a - 1));
    for (std::string n; std::getline(names, n, ',');) {
      if (n == controller) return line.substr(b + 1);
    }
  }
  return "";
}

// A writable directory for our jobs' cgroups in the v1 hierarchy of `controller`, or "".
std::string v1_parent(const std::string& controller) {
  const std::string mount = "/sys/fs/cgroup/" + controller;
  struct statfs fs{};
  if (::statfs(mount.c_str(), &fs) != 0 || static_cast<long>(fs.f_type) != kCgroupV1Magic) return "";
  std::string own = own_v1_path(controller);
  if (own == "/") own.clear();
  const std::string dir = mount + own + "/neocloud-jobs";
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return "";
  const std::string probe = dir + "/nc-probe-" + std::to_string(::getpid());
  if (::mkdir(probe.c_str(), 0755) != 0 && errno != EEXIST) return "";
  ::rmdir(probe.c_str());
  return dir;
}

// The character devices every job may use (null, zero, full, random, urandom, tty, ptmx, pts).
constexpr const char* kCommonDevices[] = {"c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm",  "c 1:9 rwm",
                                          "c 5:0 rwm", "c 5:2 rwm", "c 136:* rwm"};
constexpr int kNvidiaMajor = 195;  // /dev/nvidia<N> (minor N), nvidiactl (255), nvidia-modeset (254)

int proc_devices_major(const std::string& name) {
  std::istringstream in(read_small_file("/proc/devices"));
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream l(line);
    int major = -1;
    std::string n;
    if (l >> major >> n && n == name) return major;
  }
  return -1;
}

}  // namespace

JobCgroups::JobCgroups(bool use, std::string parent, int64_t pids_max) : pids_max_(pids_max) {
  if (!use) {
    status_ = "off (use_cgroups is false)";
    return;
  }
  const bool parent_given = !parent.empty();
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
  std::string v2_why;
  if (::statfs(parent.c_str(), &fs) != 0 || static_cast<long>(fs.f_type) != kCgroup2Magic) {
    v2_why = parent + " is not a cgroup2 mount";
  } else {
    // Enable the controllers for our children where they exist (refused when parent holds processes).
    std::string controllers = read_small_file(parent + "/cgroup.controllers");
    std::string enabled = read_small_file(parent + "/cgroup.subtree_control");
    for (const char* c : {"cpu", "memory", "pids"}) {
      if (has_word(controllers, c) && !has_word(enabled, c)) write_file(parent + "/cgroup.subtree_control", std::string("+") + c);
    }
    enabled = read_small_file(parent + "/cgroup.subtree_control");
    std::string probe = parent + "/nc-probe-" + std::to_string(::getpid());
    if (::mkdir(probe.c_str(), 0755) != 0 && errno != EEXIST) {
      v2_why = "cannot create a cgroup in " + parent + ": " + std::strerror(errno);
    } else {
      ::rmdir(probe.c_str());
      has_cpu_ = has_word(enabled, "cpu");
      has_memory_ = has_word(enabled, "memory");
      has_pids_ = has_word(enabled, "pids");
      parent_ = parent;
      version_ = 2;
      // clone3 with a too-small argument is EINVAL where the call exists (ENOSYS: before Linux 5.3, valgrind).
      if (::syscall(SYS_clone3, nullptr, 0) < 0 && errno == ENOSYS) clone_into_ = false;
      status_ = "on: cgroup v2 under " + parent + " (cpu.max " + (has_cpu_ ? "enforced" : "unavailable") + ", memory.max " +
                (has_memory_ ? "enforced" : "unavailable") + ", pids.max " + (has_pids_ ? "enforced" : "unavailable") +
                "; tasks " + (clone_into_ ? "start inside it" : "are moved in after they start") + ")";
      return;
    }
  }
  // cgroup v1: a process-tracking hierarchy (pids or freezer) is the least we need.
  if (!parent_given) {
    v1_pids_ = v1_parent("pids");
    v1_freezer_ = v1_parent("freezer");
    v1_memory_ = v1_parent("memory");
    v1_cpu_ = v1_parent("cpu");
    v1_devices_ = v1_parent("devices");
  }
  for (const std::string* d : {&v1_pids_, &v1_freezer_, &v1_memory_, &v1_cpu_, &v1_devices_}) {
    if (!d->empty()) v1_parents_.push_back(*d);
  }
  if (v1_pids_.empty() && v1_freezer_.empty()) {
    status_ = "off (" + v2_why + "; no writable cgroup v1 pids or freezer hierarchy)";
    v1_parents_.clear();
    return;
  }
  version_ = 1;
  has_cpu_ = !v1_cpu_.empty();
  has_memory_ = !v1_memory_.empty();
  has_pids_ = !v1_pids_.empty();
  auto on = [](const std::string& d) { return d.empty() ? "unavailable" : "enforced"; };
  status_ = std::string("on: cgroup v1 (") + v2_why + "): pids.max " + on(v1_pids_) + ", memory.limit_in_bytes " +
            on(v1_memory_) + ", cpu.cfs_quota_us " + on(v1_cpu_) + ", freezer " +
            (v1_freezer_.empty() ? "unavailable" : "used to stop jobs") + ", devices " +
            (v1_devices_.empty() ? "unavailable" : "only the job's GPUs") + "; tasks join before they exec";
}

std::vector<std::string> JobCgroups::dirs_of(const std::string& handle) const {
  return handle.rfind("v1:", 0) == 0 ? v1_dirs(handle) : std::vector<std::string>{handle};
}

std::vector<std::string> JobCgroups::v1_dirs(const std::string& handle) const {
  std::vector<std::string> out;
  const std::string name = handle.substr(3);  // "v1:<name>"
  for (const std::string& p : v1_parents_) out.push_back(p + "/" + name);
  return out;
}

std::string JobCgroups::create(const std::string& name, int64_t cpu_milli, int64_t memory_mib,
                               const std::vector<int>& gpus) const {
  if (version_ == 2) {
    std::string dir = parent_ + "/" + name;
    ::rmdir(dir.c_str());  // a stale one from a crashed run of this pid
    if (::mkdir(dir.c_str(), 0755) != 0) return "";
    if (has_cpu_ && cpu_milli > 0) {
      // cpu_milli of one CPU = cpu_milli/1000 of each 100 ms period; the kernel's minimum quota is 1 ms.
      int64_t quota = std::max<int64_t>(1000, cpu_milli * 100);
      write_file(dir + "/cpu.max", std::to_string(quota) + " 100000");
    }
    if (has_memory_ && memory_mib > 0) write_file(dir + "/memory.max", std::to_string(memory_mib * 1024 * 1024));
    if (has_pids_ && pids_max_ > 0) write_file(dir + "/pids.max", std::to_string(pids_max_));
    return dir;
  }
  if (version_ != 1) return "";
  const std::string handle = "v1:" + name;
  for (const std::string& dir : v1_dirs(handle)) {
    ::rmdir(dir.c_str());
    if (::mkdir(dir.c_str(), 0755) != 0) {
      remove(handle);
      return "";
    }
  }
  const std::string n = "/" + name;
  if (!v1_pids_.empty() && pids_max_ > 0) write_file(v1_pids_ + n + "/pids.max", std::to_string(pids_max_));
  if (!v1_memory_.empty() && memory_mib > 0) {
    write_file(v1_memory_ + n + "/memory.limit_in_bytes", std::to_string(memory_mib * 1024 * 1024));
  }
  if (!v1_cpu_.empty() && cpu_milli > 0) {
    write_file(v1_cpu_ + n + "/cpu.cfs_period_us", "100000");
    write_file(v1_cpu_ + n + "/cpu.cfs_quota_us", std::to_string(std::max<int64_t>(1000, cpu_milli * 100)));
  }
  if (!v1_devices_.empty()) {
    const std::string d = v1_devices_ + n;
    write_file(d + "/devices.deny", "a");
    for (const char* rule : kCommonDevices) write_file(d + "/devices.allow", rule);
    if (!gpus.empty()) {
      for (int g : gpus) write_file(d + "/devices.allow", "c " + std::to_string(kNvidiaMajor) + ":" + std::to_string(g) + " rw");
      write_file(d + "/devices.allow", "c " + std::to_string(kNvidiaMajor) + ":255 rw");  // nvidiactl
      write_file(d + "/devices.allow", "c " + std::to_string(kNvidiaMajor) + ":254 rw");  // nvidia-modeset
      const int uvm = proc_devices_major("nvidia-uvm");
      if (uvm > 0) write_file(d + "/devices.allow", "c " + std::to_string(uvm) + ":* rw");
    }
  }
  return handle;
}

std::string JobCgroups::dir_of(const std::string& handle) const { return version_ == 2 ? handle : ""; }

std::vector<int> JobCgroups::join_fds(const std::string& handle) const {
  std::vector<int> out;
  if (version_ != 1) return out;
  for (const std::string& dir : v1_dirs(handle)) {
    int fd = ::open((dir + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
    if (fd >= 0) out.push_back(fd);
  }
  return out;
}

std::set<pid_t> JobCgroups::members(const std::vector<std::string>& handles) const {
  std::set<pid_t> out;
  for (const std::string& h : handles) {
    for (const std::string& dir : dirs_of(h)) {
      std::istringstream in(read_small_file(dir + "/cgroup.procs"));
      pid_t pid = 0;
      while (in >> pid) out.insert(pid);
    }
  }
  return out;
}

bool JobCgroups::add(const std::string& handle, pid_t pid) const {
  bool ok = true;
  for (const std::string& dir : dirs_of(handle)) ok = write_file(dir + "/cgroup.procs", std::to_string(pid)) && ok;
  return ok;
}

bool JobCgroups::kill(const std::string& handle) const {
  if (handle.rfind("v1:", 0) != 0) return write_file(handle + "/cgroup.kill", "1");
  // v1 has no cgroup.kill: freeze (nothing can fork while we kill), SIGKILL every member, thaw.
  const std::string freezer = v1_freezer_.empty() ? "" : v1_freezer_ + "/" + handle.substr(3) + "/freezer.state";
  if (!freezer.empty()) write_file(freezer, "FROZEN");
  for (pid_t pid : members({handle})) ::kill(pid, SIGKILL);
  if (!freezer.empty()) write_file(freezer, "THAWED");
  return true;
}

bool JobCgroups::remove(const std::string& handle) const {
  bool gone = true;
  for (const std::string& dir : dirs_of(handle)) gone = (::rmdir(dir.c_str()) == 0 || errno == ENOENT) && gone;
  return gone;
}

// What posix_spawn below does, but born inside a cgroup (clone3 CLONE_INTO_CGROUP, Linux >= 5.7): a
// process moved in after it started may already have forked children that stay outside. The child is
// a copy of a possibly threaded process, so it makes only async-signal-safe calls before execve.
// Returns 0 or an errno; ENOSYS/EINVAL/E2BIG mean the kernel cannot do it.
int spawn_into_cgroup(int cgroup_fd, const std::vector<int>& join_fds, const char* exe, char* const argv[],
                      char* const envp[], const char* wd, int log_fd, int home_fd, pid_t* pid_out) {
  struct CloneArgs {  // struct clone_args (linux/sched.h), version 2
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size,
        cgroup;
  };
  int err_pipe[2];
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) return errno;
  CloneArgs args{};
  if (cgroup_fd >= 0) {
    args.flags = 0x200000000ULL;  // CLONE_INTO_CGROUP
    args.cgroup = static_cast<uint64_t>(cgroup_fd);
  }
  args.exit_signal = SIGCHLD;
  const int* joins = join_fds.data();  // read in the child without touching the vector's allocator
  const size_t n_joins = join_fds.size();
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
    for (size_t j = 0; j < n_joins && err == 0; ++j) {  // v1: into the job's cgroups before anything runs
      if (::write(joins[j], "0", 1) != 1) err = errno;
    }
    if (err != 0 || ::setsid() < 0 || ::chdir(wd) != 0 || (null_fd = ::open("/dev/null", O_RDONLY)) < 0 ||
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
