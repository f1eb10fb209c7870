// LocalExecutor (local_executor.h): launching tasks, watching and stopping process trees, reaping
// orphans. Its cgroups are local_cgroups.h's.
#include "capacity/local_executor.h"
#include "capacity/log_cap.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>

#include "capacity/local_cgroups.h"

namespace nc::capacity {
namespace {

constexpr int64_t kUsPerS = 1'000'000;

int64_t clock_us(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return static_cast<int64_t>(ts.tv_sec) * kUsPerS + ts.tv_nsec / 1000;
}
int64_t unix_us() { return clock_us(CLOCK_REALTIME); }
int64_t mono_us() { return clock_us(CLOCK_MONOTONIC); }

std::string errno_text(int err) { return std::strerror(err); }

Status errno_status(int err, const std::string& what) {
  std::string m = what + ": " + errno_text(err);
  switch (err) {
    case ENOENT: case ENOTDIR: return not_found(m);
    case EACCES: case EPERM: return {StatusCode::kPermissionDenied, m};
    case EAGAIN: case ENOMEM: return resource_exhausted(m);
    default: return internal_error(m);
  }
}

struct ProcInfo {
  pid_t pid = 0, ppid = 0, session = 0;
  char state = '?';
};

// Every process on the machine (/proc/<pid>/stat: "pid (comm) state ppid pgrp session ...").
std::vector<ProcInfo> list_processes() {
  std::vector<ProcInfo> out;
  DIR* dir = ::opendir("/proc");
  if (dir == nullptr) return out;
  while (dirent* e = ::readdir(dir)) {
    if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
    char path[300];
    std::snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
    int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    char buf[512];
    ssize_t n = ::read(fd, buf, sizeof buf - 1);
    ::close(fd);
    if (n <= 0) continue;
    buf[n] = '\0';
    const char* close_paren = std::strrchr(buf, ')');
    if (close_paren == nullptr) continue;
    ProcInfo p;
    int pgrp = 0;
    if (std::sscanf(close_paren + 1, " %c %d %d %d", &p.state, &p.ppid, &pgrp, &p.session) != 4) continue;
    p.pid = static_cast<pid_t>(std::atoi(e->d_name));
    out.push_back(p);
  }
  ::closedir(dir);
  return out;
}

// argv[0] as execvp would find it, but in the job's PATH (a relative entry is relative to working_dir).
Result<std::string> resolve_command(const std::string& command, const std::string& path_var,
                                    const std::string& working_dir) {
  if (command.find('/') != std::string::npos) return command;
  std::istringstream in(path_var);
  std::string dir;
  while (std::getline(in, dir, ':')) {
    if (dir.empty()) dir = ".";
    std::string candidate = dir + "/" + command;
    std::string check = candidate[0] == '/' ? candidate : working_dir + "/" + candidate;
    struct stat st{};
    if (::stat(check.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(check.c_str(), X_OK) == 0) {
      return check;
    }
  }
  return not_found("command '" + command + "' not found in PATH=" + path_var);
}

std::string join_gpus(const std::vector<int>& gpus) {
  std::string s;
  for (size_t i = 0; i < gpus.size(); ++i) s += (i ? "," : "") + std::to_string(gpus[i]);
  return s;
}

bool task_failed(int status) { return !(WIFEXITED(status) && WEXITSTATUS(status) == 0); }

}  // namespace

int LocalExecutor::master_port(std::string_view job_id) { return capacity::master_port(job_id); }

LocalExecutor::LocalExecutor(LocalExecutorOptions options)
    : options_(std::move(options)),
      cgroups_(options_.use_cgroups, options_.cgroup_parent, options_.pids_max),
      sandbox_(options_.sandbox),
      images_(options_.images) {
  if (options_.reap_orphans) ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  images_.sweep();  // a crashed server's containers (their processes died with it)
}

LocalExecutor::~LocalExecutor() {
  for (auto& [key, seg] : segments_) {
    signal_all(seg->procs, SIGKILL);
    for (Task& t : seg->tasks) {
      while (!t.done && ::waitpid(t.pid, &t.status, 0) < 0 && errno == EINTR) {
      }
    }
    retire(std::move(seg->procs));
  }
  segments_.clear();
  // Kill and reap what the tasks left behind, for a bounded time (a process stuck in the kernel cannot
  // be waited for forever).
  int64_t deadline = mono_us() + 3 * kUsPerS;
  while (!sweep_leftovers() && mono_us() < deadline) ::usleep(10'000);
}

Status LocalExecutor::launch(const LaunchSpec& spec) {
  // Validate everything first: a launch that fails here has started nothing.
  if (spec.job_id.empty()) return invalid_argument("launch: empty job_id");
  if (!sandbox_.required_error().empty()) return failed_precondition(sandbox_.required_error());
  if (sandbox_.active() && sandbox_.per_user() && (spec.run_as_uid <= 0 || spec.run_as_uid >= 0xFFFFFFFFLL)) {
    return invalid_argument("launch " + spec.job_id + ": a sandboxed job needs the uid to run as (run_as_uid)");
  }
  const std::string what = "launch " + spec.job_id + " segment " + std::to_string(spec.segment);
  auto key = std::make_pair(spec.job_id, spec.segment);
  if (launched_.count(key)) return {StatusCode::kAlreadyExists, what + ": already launched"};
  if (spec.command.empty()) return invalid_argument(what + ": empty command");
  if (spec.log_path.empty()) return invalid_argument(what + ": empty log_path");
  if (spec.nodes.empty()) return invalid_argument(what + ": no nodes");
  if (spec.tasks_per_node < 1) return invalid_argument(what + ": tasks_per_node < 1");
  std::set<std::string> names;
  for (const NodeAssignment& n : spec.nodes) {
    if (n.node.empty()) return invalid_argument(what + ": a node without a name");
    if (!names.insert(n.node).second) return invalid_argument(what + ": node " + n.node + " assigned twice");
    if (!options_.nodes.empty() &&
        std::find(options_.nodes.begin(), options_.nodes.end(), n.node) == options_.nodes.end()) {
      return invalid_argument(what + ": unknown node " + n.node);
    }
    for (size_t i = 0; i < n.gpus.size(); ++i) {
      int g = n.gpus[i];
      if (g < 0 || (options_.gpus_per_node > 0 && g >= options_.gpus_per_node) || (i > 0 && g <= n.gpus[i - 1])) {
        return invalid_argument(what + ": bad GPU list " + join_gpus(n.gpus) + " on node " + n.node);
      }
    }
    if (n.gpu_milli < 1 || n.gpu_milli > 1000) return invalid_argument(what + ": gpu_milli out of 1..1000");
    if (n.gpu_milli < 1000 && n.gpus.size() != 1) {
      return invalid_argument(what + ": a fractional share needs exactly one GPU");
    }
  }
  for (const auto& [k, v] : spec.env) {
    if (k.empty() || k.find('=') != std::string::npos) return invalid_argument(what + ": bad env name '" + k + "'");
  }
  if (!spec.image.empty()) {
    if (!runs_images()) {
      return failed_precondition(what + ": this machine runs no container images (sandbox " + sandbox_.status() +
                                 "; images " + images_.status() + ")");
    }
    NC_RETURN_IF_ERROR(JobImages::check_reference(spec.image));
  }

  std::error_code ec;
  std::filesystem::path log_path(spec.log_path);
  if (log_path.has_parent_path()) std::filesystem::create_directories(log_path.parent_path(), ec);
  if (ec) return internal_error(what + ": create " + log_path.parent_path().string() + ": " + ec.message());
  std::string working_dir = spec.working_dir;
  if (working_dir.empty()) working_dir = log_path.has_parent_path() ? log_path.parent_path().string() : ".";
  struct stat st{};
  if (::stat(working_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return not_found(what + ": working_dir " + working_dir + " is not a directory");
  }

  auto seg = std::make_unique<Segment>();
  seg->job_id = spec.job_id;
  seg->segment = spec.segment;
  seg->max_duration_s = spec.max_duration_s;
  seg->grace_period_s = spec.grace_period_s;
  seg->log_path = spec.log_path;
  seg->sandboxed = sandbox_.active();
  seg->procs.sandboxed = seg->sandboxed;
  for (const NodeAssignment& n : spec.nodes) seg->node_names.push_back(n.node);
  LaunchSpec resolved = spec;
  resolved.working_dir = working_dir;
  Status s = spawn_all(resolved, *seg);
  if (!s.is_ok()) return s.with_context(what);
  launched_.insert(key);
  segments_.emplace(key, std::move(seg));
  return Status::ok();
}

Status LocalExecutor::spawn_all(const LaunchSpec& spec, Segment& seg) {
  // The environment every task shares: a few variables of ours, then the job's, then spec.env.
  using Env = std::map<std::string, std::string>;
  Env base;
  const char* path = std::getenv("PATH");
  base["PATH"] = path ? path : "/usr/local/bin:/usr/bin:/bin";
  for (const char* name : {"HOME", "USER", "LANG"}) {
    if (const char* v = std::getenv(name)) base[name] = v;
  }
  const int nnodes = static_cast<int>(spec.nodes.size());
  base["WORLD_SIZE"] = std::to_string(nnodes * spec.tasks_per_node);
  base["LOCAL_WORLD_SIZE"] = std::to_string(spec.tasks_per_node);
  base["NNODES"] = std::to_string(nnodes);
  base["MASTER_ADDR"] = "127.0.0.1";
  base["MASTER_PORT"] = std::to_string(master_port(spec.job_id));
  base["NEOCLOUD_JOB_ID"] = spec.job_id;
  base["NEOCLOUD_SEGMENT"] = std::to_string(spec.segment);

  const bool sandboxed = sandbox_.active();
  std::string exe;
  int home_fd = -1;  // sandboxed: the job's directory, descriptor 3 in the task
  if (sandboxed) {
    // Inside, the job's directory is its home; it looks its command up itself (bwrap's execvp, in the
    // job's PATH, in the sandbox's view of the file system).
    base["HOME"] = kJobHome;
    base["USER"] = "job";
    base["LOGNAME"] = "job";
    if (!sandbox_.give(spec.working_dir, static_cast<uid_t>(spec.run_as_uid))) {
      return failed_precondition("working_dir " + spec.working_dir + " cannot be given to uid " +
                                 std::to_string(spec.run_as_uid) + " (not a directory under the jobs directory)");
    }
    int fd = ::open(spec.working_dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return errno_status(errno, "open " + spec.working_dir);
    home_fd = ::fcntl(fd, F_DUPFD_CLOEXEC, 10);  // clear of 0-3, which the task's are made of
    ::close(fd);
    if (home_fd < 0) return errno_status(errno, "dup " + spec.working_dir);
  } else {
    // spec.env may change PATH, so resolve the command in the job's own PATH.
    Env with_spec = base;
    for (const auto& [k, v] : spec.env) with_spec[k] = v;
    NC_ASSIGN_OR_RETURN(exe, resolve_command(spec.command, with_spec["PATH"], spec.working_dir));
  }
  struct FdCloser {
    int fd;
    ~FdCloser() {
      if (fd >= 0) ::close(fd);
    }
  } home_closer{home_fd};

  int log_fd = ::open(spec.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) return errno_status(errno, "open " + spec.log_path);
  if (log_fd < 3) {  // keep it clear of the 0-2 it is duplicated onto
    int high = ::fcntl(log_fd, F_DUPFD_CLOEXEC, 3);
    ::close(log_fd);
    if (high < 0) return errno_status(errno, "dup " + spec.log_path);
    log_fd = high;
  }

  // A container image: its file system is every task's root; the container goes with the segment's
  // processes (retire / sweep_leftovers), the gang rollback's included.
  std::optional<ImageRoot> image;
  if (!spec.image.empty()) {
    auto root = images_.mount("nc-" + spec.job_id + "-" + std::to_string(spec.segment), spec.image);
    if (!root.is_ok()) {
      ::close(log_fd);
      return root.status();
    }
    image = std::move(*root);
    seg.procs.image = image->container;
    // The image's environment (Docker's ENV) under ours and the job's.
    base["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    base.erase("LANG");
    for (const auto& [k, v] : image->env) {
      if (!is_reserved_env(k) && k != "HOME" && k != "USER" && k != "LOGNAME") base[k] = v;
    }
  }

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addchdir_np(&actions, spec.working_dir.c_str());
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, log_fd, 1);
  posix_spawn_file_actions_adddup2(&actions, log_fd, 2);
  if (home_fd >= 0) posix_spawn_file_actions_adddup2(&actions, home_fd, 3);
  posix_spawn_file_actions_addclosefrom_np(&actions, home_fd >= 0 ? 4 : 3);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // Own session (and so process group); no blocked signals; default dispositions.
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  sigset_t mask;
  sigemptyset(&mask);
  posix_spawnattr_setsigmask(&attr, &mask);
  for (int sig : kTaskDefaultSignals) sigaddset(&mask, sig);
  posix_spawnattr_setsigdefault(&attr, &mask);

  std::vector<std::string> argv_s;
  if (!sandboxed) {
    argv_s.push_back(spec.command);
    for (const std::string& a : spec.args) argv_s.push_back(a);
  }
  auto make_argv = [](std::vector<std::string>& strings) {
    std::vector<char*> v;
    for (std::string& a : strings) v.push_back(a.data());
    v.push_back(nullptr);
    return v;
  };
  std::vector<char*> argv = make_argv(argv_s);

  Status result;
  seg.started_us = unix_us();
  seg.started_mono_us = mono_us();
  int n_spawned = 0;
  for (int node_rank = 0; node_rank < nnodes && result.is_ok(); ++node_rank) {
    const NodeAssignment& node = spec.nodes[node_rank];
    std::string cgroup = cgroups_active() ? make_cgroup(spec, node_rank) : "";
    int cgroup_fd = -1;
    std::vector<int> join_fds;  // v1: the task joins these before it execs
    if (!cgroup.empty()) {
      seg.procs.cgroups.push_back(cgroup);
      if (!cgroups_.dir_of(cgroup).empty()) cgroup_fd = ::open(cgroups_.dir_of(cgroup).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      join_fds = cgroups_.join_fds(cgroup);
    }
    Env env = base;
    std::string gpus = join_gpus(node.gpus);
    env["CUDA_VISIBLE_DEVICES"] = gpus;
    env["NVIDIA_VISIBLE_DEVICES"] = gpus;
    if (node.gpu_milli < 1000) env["NEOCLOUD_GPU_MILLI"] = std::to_string(node.gpu_milli);
    env["NODE_RANK"] = std::to_string(node_rank);
    if (sandboxed) {  // the node's GPU device nodes differ per node
      argv_s = sandbox_.wrap(static_cast<uid_t>(spec.run_as_uid), node.gpus, 3, spec.command, spec.args,
                             image ? &*image : nullptr);
      exe = argv_s[0];
      argv = make_argv(argv_s);
    }
    for (int local_rank = 0; local_rank < spec.tasks_per_node; ++local_rank) {
      Env task_env = env;
      task_env["LOCAL_RANK"] = std::to_string(local_rank);
      task_env["RANK"] = std::to_string(node_rank * spec.tasks_per_node + local_rank);
      for (const auto& [k, v] : spec.env) {
        if (!is_reserved_env(k)) task_env[k] = v;  // the GPUs, ranks and rendezvous are ours
      }
      std::vector<std::string> env_s;
      for (const auto& [k, v] : task_env) env_s.push_back(k + "=" + v);
      std::vector<char*> envp;
      for (std::string& e : env_s) envp.push_back(e.data());
      envp.push_back(nullptr);
      pid_t pid = 0;
      int err = -1;
      if (n_spawned == options_.fail_spawn_at) err = EAGAIN;
      if (err < 0 && (cgroup_fd >= 0 || !join_fds.empty()) && cgroups_.clone_into()) {
        err = spawn_into_cgroup(cgroup_fd, join_fds, exe.c_str(), argv.data(), envp.data(), spec.working_dir.c_str(),
                                log_fd, home_fd, &pid);
        if (err == ENOSYS || err == EINVAL || err == E2BIG) {
          cgroups_.clone_into_refused();  // an older kernel: move the process in after it started
          err = -1;
        }
      }
      bool born_in_cgroup = err == 0;
      if (err < 0) err = posix_spawn(&pid, exe.c_str(), &actions, &attr, argv.data(), envp.data());
      ++n_spawned;
      if (err != 0) {
        result = errno_status(err, "spawn " + exe + " (task " + std::to_string(local_rank) + " on node " +
                                       node.node + ")");
        break;
      }
      if (!cgroup.empty() && !born_in_cgroup) cgroups_.add(cgroup, pid);
      seg.tasks.push_back(Task{pid, node_rank, local_rank});
      seg.procs.sids.insert(pid);
    }
    if (cgroup_fd >= 0) ::close(cgroup_fd);
    for (int fd : join_fds) ::close(fd);
  }
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&actions);
  ::close(log_fd);
  if (result.is_ok()) return result;

  // Gang: stop and reap whatever started, and anything it started.
  signal_all(seg.procs, SIGKILL);
  for (Task& t : seg.tasks) {
    while (::waitpid(t.pid, &t.status, 0) < 0 && errno == EINTR) {
    }
  }
  retire(std::move(seg.procs));
  return result;
}

Status LocalExecutor::terminate(const std::string& job_id, int segment, int grace_s) {
  auto it = segments_.find({job_id, segment});
  if (it == segments_.end()) {
    return not_found("terminate: " + job_id + " segment " + std::to_string(segment) + " is not running");
  }
  Segment& seg = *it->second;
  int64_t now = mono_us();
  reap_tasks(seg, now);
  // A segment whose tasks have all ended keeps its real outcome; poll() reports it.
  bool all_done = std::all_of(seg.tasks.begin(), seg.tasks.end(), [](const Task& t) { return t.done; });
  if (!all_done) stop(seg, StopCause::kTerminated, grace_s, now);
  return Status::ok();
}

void LocalExecutor::reap_tasks(Segment& seg, int64_t now_mono_us) {
  for (size_t i = 0; i < seg.tasks.size(); ++i) {
    Task& t = seg.tasks[i];
    if (t.done) continue;
    int status = 0;
    pid_t r = ::waitpid(t.pid, &status, WNOHANG);
    if (r == 0 || (r < 0 && errno == EINTR)) continue;
    if (r < 0) status = 255 << 8;  // ECHILD: someone else reaped it; count it as a failure
    t.done = true;
    t.status = status;
    if (!task_failed(status)) continue;
    if (seg.first_bad < 0) seg.first_bad = static_cast<int>(i);
    if (seg.cause == StopCause::kNone) stop(seg, StopCause::kFailed, seg.grace_period_s, now_mono_us);
  }
}

void LocalExecutor::stop(Segment& seg, StopCause cause, int grace_s, int64_t now_mono_us) {
  if (seg.cause == StopCause::kNone) seg.cause = cause;
  if (seg.killed) return;
  if (grace_s <= 0) {
    signal_all(seg.procs, SIGKILL);
    seg.killed = true;
    return;
  }
  int64_t kill_at = now_mono_us + static_cast<int64_t>(grace_s) * kUsPerS;
  if (seg.kill_at_mono_us == 0) {
    signal_all(seg.procs, SIGTERM);
    signal_all(seg.procs, SIGCONT);  // a stopped process must run to see SIGTERM
    seg.kill_at_mono_us = kill_at;
  } else {
    seg.kill_at_mono_us = std::min(seg.kill_at_mono_us, kill_at);
  }
}

int LocalExecutor::signal_all(ProcessSet& procs, int sig) {
  const std::set<pid_t>& sids = procs.sids;
  // Sandboxed, a task's own pid is bwrap's first process: it gets SIGKILL only (job_sandbox.h).
  const bool spare_tasks = procs.sandboxed && sig != SIGKILL;
  if (sig != 0 && !spare_tasks) {
    for (pid_t sid : sids) ::kill(-sid, sig);  // a task's process group id is its pid
    if (sig == SIGKILL) {
      for (const std::string& cg : procs.cgroups) cgroups_.kill(cg);
    }
  }
  std::set<pid_t> members = cgroups_.members(procs.cgroups);
  const pid_t self = ::getpid();
  std::vector<ProcInfo> matched;
  std::set<pid_t> matched_pids;
  for (const ProcInfo& p : list_processes()) {
    if (p.pid == self || (!sids.count(p.session) && !members.count(p.pid) && !procs.seen.count(p.pid))) continue;
    matched.push_back(p);
    matched_pids.insert(p.pid);
  }
  std::set<pid_t> still_seen;
  int live = 0;
  for (const ProcInfo& p : matched) {
    if (p.state == 'Z') {
      // A zombie is gone unless it is (or may become) our child. We reap those re-parented to us, as
      // subreaper, but not tasks: reap_tasks() needs their status. One whose parent is of the job is kept
      // in sight (it comes to us when that parent dies); one of init or a stranger is not ours.
      if (p.ppid == self && !sids.count(p.pid)) {
        int status = 0;
        if (::waitpid(p.pid, &status, WNOHANG) == 0) still_seen.insert(p.pid);
      } else if (p.ppid != self && matched_pids.count(p.ppid)) {
        still_seen.insert(p.pid);
      }
      continue;
    }
    ++live;
    if (!sids.count(p.pid)) still_seen.insert(p.pid);
    if (sig != 0 && !(spare_tasks && sids.count(p.pid))) ::kill(p.pid, sig);
  }
  procs.seen = std::move(still_seen);
  return live;
}

void LocalExecutor::retire(ProcessSet procs) {
  leftovers_.push_back(std::move(procs));
  sweep_leftovers();
}

bool LocalExecutor::sweep_leftovers() {
  for (size_t i = 0; i < leftovers_.size();) {
    ProcessSet& l = leftovers_[i];
    bool gone = signal_all(l, SIGKILL) == 0 && l.seen.empty();
    for (const std::string& cg : l.cgroups) gone = gone && cgroups_.remove(cg);
    if (gone) {
      if (!l.image.empty()) images_.release(l.image);
      leftovers_.erase(leftovers_.begin() + static_cast<std::ptrdiff_t>(i));
    } else {
      ++i;
    }
  }
  return leftovers_.empty();
}

std::vector<ExitReport> LocalExecutor::poll() {
  std::vector<ExitReport> out;
  const int64_t now = mono_us();
  for (auto it = segments_.begin(); it != segments_.end();) {
    Segment& seg = *it->second;
    reap_tasks(seg, now);
    enforce_log_cap(seg.log_path, options_.max_log_bytes, &seg.log_capped);
    if (std::all_of(seg.tasks.begin(), seg.tasks.end(), [](const Task& t) { return t.done; })) {
      out.push_back(make_report(seg, unix_us()));
      retire(std::move(seg.procs));  // what the job left behind dies now; later polls make sure of it
                                     // (and its container goes once nothing is left)
      it = segments_.erase(it);
      continue;
    }
    if (seg.max_duration_s > 0 && seg.cause == StopCause::kNone &&
        now - seg.started_mono_us >= seg.max_duration_s * kUsPerS) {
      stop(seg, StopCause::kTimedOut, seg.grace_period_s, now);
    }
    if (seg.kill_at_mono_us != 0 && now >= seg.kill_at_mono_us && !seg.killed) {
      stop(seg, seg.cause, 0, now);
    }
    ++it;
  }
  sweep_leftovers();
  // As subreaper, reap (about once a second) the orphans that running jobs leave as zombies.
  if (options_.reap_orphans && !segments_.empty() && now - last_scan_mono_us_ >= kUsPerS) {
    last_scan_mono_us_ = now;
    for (auto& [key, seg] : segments_) signal_all(seg->procs, 0);
  }
  return out;
}

std::string LocalExecutor::make_cgroup(const LaunchSpec& spec, int node_rank) {
  std::string name = "nc-";
  for (char c : spec.job_id) name += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') ? c : '_';
  name += "-s" + std::to_string(spec.segment) + "-n" + std::to_string(node_rank) + "-p" + std::to_string(::getpid());
  const NodeAssignment& n = spec.nodes[node_rank];
  return cgroups_.create(name, n.cpu_milli, n.memory_mib, n.gpus);
}

}  // namespace nc::capacity
