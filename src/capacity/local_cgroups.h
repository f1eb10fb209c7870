// JobCgroups: the cgroups LocalExecutor (local_executor.h) runs jobs in — cgroup v2 where this machine
// has a writable one, else the cgroup v1 hierarchies (pids, memory, cpu, freezer, devices), behind one
// interface. Detection (v2: is the parent a writable cgroup2 mount, which of the cpu / memory / pids
// controllers can be enabled for its children, can clone3 start a process inside a cgroup; v1: which
// hierarchies are mounted and writable under this process's own cgroup), one cgroup per node of a
// segment with its cpu and memory limits and a pids limit, v1 device rules (only the job's GPUs), and
// the few control files the executor uses (cgroup.procs to list or add members; v2 cgroup.kill, v1
// freezer then SIGKILL). spawn_into_cgroup starts a task inside its cgroup (v2: clone3
// CLONE_INTO_CGROUP; v1: the child writes itself into cgroup.procs before execve), so that nothing it
// forks can start outside.
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
  // use false: off. parent: the cgroup2 directory to work under (empty: this process's own cgroup v2;
  // when this machine has no usable cgroup v2, the cgroup v1 hierarchies pids, memory, cpu, freezer and
  // devices are used under this process's own cgroup in each, where they are mounted and writable).
  // pids_max: the most processes one job's node cgroup may hold (0: no limit).
  JobCgroups(bool use, std::string parent, int64_t pids_max = 0);

  bool active() const { return version_ != 0; }
  int version() const { return version_; }  // 2, 1, or 0 (off)
  // "on: cgroup v2 ..." / "on: cgroup v1 ..." (where, which limits are enforced) or "off (<why>)".
  const std::string& status() const { return status_; }
  // Whether tasks can start inside their cgroup (clone3 CLONE_INTO_CGROUP on v2; on v1 the task joins
  // it before it execs); refused(): the kernel said no.
  bool clone_into() const { return clone_into_; }
  void clone_into_refused() { clone_into_ = false; }

  // Creates the cgroup `name` (replacing a stale empty one) with the cpu and memory limits where those
  // controllers are on, pids_max, and (v1, devices) access to only the common character devices and
  // the GPUs `gpus` (/dev/nvidia<N>, the NVIDIA control and UVM devices). Its handle, or "" when it could
  // not be created.
  std::string create(const std::string& name, int64_t cpu_milli, int64_t memory_mib, const std::vector<int>& gpus) const;
  // v2: the cgroup's directory (to open for spawn_into_cgroup's cgroup_fd); v1: "".
  std::string dir_of(const std::string& handle) const;
  // v1: descriptors of the handle's cgroup.procs files, one per hierarchy, for a task to join before it
  // execs (the caller closes them); v2: none.
  std::vector<int> join_fds(const std::string& handle) const;

  // The processes in the cgroups (cgroup.procs).
  std::set<pid_t> members(const std::vector<std::string>& handles) const;
  bool add(const std::string& handle, pid_t pid) const;  // cgroup.procs
  bool kill(const std::string& handle) const;            // SIGKILL to every member (v2 cgroup.kill; v1 frozen first)
  bool remove(const std::string& handle) const;          // rmdir (true: gone)

 private:
  std::vector<std::string> v1_dirs(const std::string& handle) const;  // "v1:<name>": one per hierarchy
  std::vector<std::string> dirs_of(const std::string& handle) const;  // v2: {handle}; v1: v1_dirs

  int version_ = 0;
  std::string parent_;                     // v2
  std::vector<std::string> v1_parents_;    // v1: one directory per hierarchy used
  std::string v1_pids_, v1_memory_, v1_cpu_, v1_freezer_, v1_devices_;  // v1: those parents, "" if not used
  std::string status_;
  bool has_cpu_ = false, has_memory_ = false, has_pids_ = false;
  int64_t pids_max_ = 0;
  bool clone_into_ = true;
};

// What posix_spawn does for a task (own session, stdin /dev/null, stdout and stderr to log_fd,
// working directory wd, kTaskDefaultSignals at their default, nothing blocked, no other descriptor), but
// born inside the cgroup open as cgroup_fd (v2; -1: none) and having joined the cgroup.procs files
// join_fds (v1) before it execs; home_fd >= 0 (a descriptor above 3) becomes the task's descriptor 3
// (the sandbox's job directory). Returns 0 (pid in *pid_out) or an errno; ENOSYS / EINVAL / E2BIG mean
// the kernel cannot do it (Linux < 5.7): start it otherwise and add() it.
int spawn_into_cgroup(int cgroup_fd, const std::vector<int>& join_fds, const char* exe, char* const argv[],
                      char* const envp[], const char* wd, int log_fd, int home_fd, pid_t* pid_out);

}  // namespace nc::capacity
