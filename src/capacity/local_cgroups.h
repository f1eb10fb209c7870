// JobCgroups: the cgroup v2 subtree LocalExecutor (local_executor.h) runs jobs in. Detection (is the
// parent a writable cgroup2 mount, which of the cpu / memory controllers can be enabled for its
// children, can clone3 start a process inside a cgroup), one cgroup per node of a segment with cpu.max
// and memory.max from its NodeAssignment, and the few control files the executor uses (cgroup.procs to
// list or add members, cgroup.kill). spawn_into_cgroup starts a task inside its cgroup, so that nothing
// it forks can start outside.
//
// Ownership: the LocalExecutor owns one JobCgroups and the cgroups it creates (it removes them once
// empty). Threads: not synchronized; the executor's one thread. spawn_into_cgroup may be called from
// any thread (the child makes only async-signal-safe calls before execve).
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <cstdint>
#include <set>
#include <string>
#include <vector>

namespace nc::capacity {

// Signals a server commonly ignores or handles (SIGPIPE above all), which a task must not inherit so:
// a task starts with these at their default disposition.
inline constexpr int kTaskDefaultSignals[] = {SIGHUP, SIGINT,  SIGQUIT, SIGPIPE, SIGTERM, SIGCHLD, SIGUSR1,
                                              SIGUSR2, SIGALRM, SIGTSTP, SIGTTIN, SIGTTOU, SIGXFSZ};

class JobCgroups {
 public:
  // use false, or a parent (empty: this process's own cgroup) that is no writable cgroup2 mount: off.
  JobCgroups(bool use, std::string parent);

  bool active() const { return !parent_.empty(); }
  // "on under <parent> (...)" or "off (<why>)".
  const std::string& status() const { return status_; }
  // Whether tasks can start inside their cgroup (clone3 CLONE_INTO_CGROUP); refused(): the kernel said no.
  bool clone_into() const { return clone_into_; }
  void clone_into_refused() { clone_into_ = false; }

  // Creates <parent>/<name> (replacing a stale empty one) with cpu.max (cpu_milli of one CPU) and
  // memory.max where those controllers are enabled; its path, or "" when it could not be created.
  std::string create(const std::string& name, int64_t cpu_milli, int64_t memory_mib) const;

  // The processes in the cgroups (cgroup.procs).
  static std::set<pid_t> members(const std::vector<std::string>& cgroups);
  static bool add(const std::string& cgroup, pid_t pid);  // cgroup.procs
  static bool kill(const std::string& cgroup);            // cgroup.kill: SIGKILL to every member

 private:
  std::string parent_;  // empty: off
  std::string status_;
  bool has_cpu_ = false, has_memory_ = false;
  bool clone_into_ = true;
};

// What posix_spawn does for a task (own session, stdin /dev/null, stdout and stderr to log_fd,
// working directory wd, kTaskDefaultSignals at their default, nothing blocked, no other descriptor), but
// born inside the cgroup open as cgroup_fd; home_fd >= 0 (a descriptor above 3) becomes the task's
// descriptor 3 (the sandbox's job directory). Returns 0 (pid in *pid_out) or an errno; ENOSYS / EINVAL /
// E2BIG mean the kernel cannot do it (Linux < 5.7): start it otherwise and add() it.
int spawn_into_cgroup(int cgroup_fd, const char* exe, char* const argv[], char* const envp[], const char* wd,
                      int log_fd, int home_fd, pid_t* pid_out);

}  // namespace nc::capacity
