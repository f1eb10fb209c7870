// JobSandbox: how LocalExecutor (local_executor.h) confines a tenant's task. A task runs under Debian's
// bubblewrap (`bwrap`), started through util-linux's `setpriv` as the organization's own unprivileged uid
// when this process is root:
//   - its own PID, IPC, UTS and mount namespaces (it sees and can signal only its own processes; when
//     its PID namespace's first process dies, the kernel kills every process left in it, so a `setsid`
//     or double-forked child cannot outlive the job);
//   - the host's file system read-only, fresh /dev (only the job's GPU device nodes are added) and /proc,
//     a private /tmp, an empty /home, and one writable directory: the job's own, bound at /home/job
//     (kJobHome, also its HOME and working directory) from a descriptor the executor opened as root, so
//     that no directory above it needs to be reachable by the job's user;
//   - the control plane's paths (the database, key files, the jobs directory with every job's log)
//     covered by empty mounts where the job's user could reach them at all.
// A task killed by a signal is reported by bwrap as exit status 128 + the signal (as a shell does).
// Signals: bwrap's first process (the task's pid) dies of SIGTERM and, with --die-with-parent, takes the
// job with it at once; the sandbox's PID 1 ignores what it has no handler for. So a job is asked to stop
// by signalling the processes inside (the executor skips the task's own pid), and killed by SIGKILL to
// the task's process group.
//
// Detection (the constructor): bwrap and setpriv in PATH, and a probe sandbox (`true`, as the probe
// user) that must start; status() says which confinement is active, or why none is. Mode kRequired
// with no working sandbox: required_error() is set and the executor refuses every launch.
//
// Ownership: a value; holds no resources. Threads: const methods may be called from any thread.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "capacity/job_images.h"

namespace nc::capacity {

enum class SandboxMode {
  kOff,       // tasks run as this process's user, in its world (tests of the executor's own logic)
  kAuto,      // sandboxed when the host can; otherwise unconfined, said loudly
  kRequired,  // sandboxed, or no job runs at all
};

struct SandboxOptions {
  SandboxMode mode = SandboxMode::kOff;
  // Control-plane files and directories to cover (a directory: empty tmpfs; a file: /dev/null).
  std::vector<std::string> hidden_paths;
  // Where jobs' directories are (created if missing; made 0711). bwrap, as the job's user, must pass
  // through every directory above a job's: when one above this root is closed to other users, no
  // sandbox can start (kAuto: off, said; kRequired: required_error()).
  std::string jobs_root;
  // Where GPU device nodes are (tests point it elsewhere): /dev/nvidia<N> for each assigned GPU N, plus
  // the shared control nodes (nvidiactl, nvidia-uvm, nvidia-uvm-tools, nvidia-modeset) when present.
  std::string dev_dir = "/dev";
};

inline constexpr const char* kJobHome = "/home/job";
// The NVIDIA device nodes every GPU job needs besides its /dev/nvidia<N> (bound when present).
inline constexpr const char* kGpuControlDevices[] = {"nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset"};

class JobSandbox {
 public:
  explicit JobSandbox(SandboxOptions options);

  bool active() const { return active_; }
  // Whether each task runs as the uid it is given (this process is root); otherwise as this process's.
  bool per_user() const { return per_user_; }
  // One line for the operator: what confines jobs, or "off (<why>)".
  const std::string& status() const { return status_; }
  // Non-empty when mode is kRequired and no sandbox works (jobs_root unreachable included): why (every
  // launch fails with it).
  const std::string& required_error() const { return required_error_; }

  // Opens the directories from jobs_root down to dir (inclusive of dir's parent) to other users'
  // traversal (adds o+x; nothing is listable or readable by that). false if dir is not under jobs_root.
  bool open_path_to(const std::string& dir) const;

  // The argv (argv[0] an absolute path) that runs `command args...` sandboxed as `uid` (ignored unless
  // per_user()), with `home_fd` (a descriptor number in the task: an open directory) bound writable at
  // kJobHome and the device nodes of `gpus` visible. The environment passes through unchanged.
  // With `image` (job_images.h; non-null): the image's mounted file system is the task's `/` (the
  // host's is not seen at all, but for its /etc/resolv.conf and /etc/hosts), the image's entrypoint
  // comes before the command, and the image's working directory (if it sets one) is the task's.
  std::vector<std::string> wrap(uid_t uid, const std::vector<int>& gpus, int home_fd, const std::string& command,
                                const std::vector<std::string>& args, const ImageRoot* image = nullptr) const;
  // The same sandbox for a wrapper that adds the rest itself (the Slurm batch script, slurm_script.h):
  // setpriv (per_user) and bwrap with everything but the GPU device binds, the home bind and the command.
  // (Slurm signals every process of a step, bwrap's own included: the script starts bwrap with SIGTERM
  // ignored and the command through `env --default-signal=TERM`, so that the job, not bwrap, gets it.)
  std::vector<std::string> launcher(uid_t uid) const;
  const std::string& dev_dir() const { return options_.dev_dir; }
  // Makes dir (a job's own directory under jobs_root) the job user's: o+x on the way, chown, 0700.
  bool give(const std::string& dir, uid_t uid) const;

 private:
  // setpriv (per_user) and bwrap's arguments, up to (not including) "--" and the command.
  std::vector<std::string> base_args(uid_t uid, const std::vector<int>& gpus, int home_fd, const ImageRoot* image) const;

  SandboxOptions options_;
  bool active_ = false;
  bool per_user_ = false;
  std::string bwrap_, setpriv_;
  std::vector<std::string> hide_dirs_, hide_files_;
  std::string status_, required_error_;
};

}  // namespace nc::capacity
