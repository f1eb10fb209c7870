// run_subprocess: runs one helper command (sbatch, squeue, scontrol, scancel, sinfo, nvidia-smi) the way
// the capacity code needs it — posix_spawn with an argv (no shell, so nothing in an argument is
// interpreted), an explicit environment, text on stdin, stdout and stderr captured separately, and a
// deadline after which the command is SIGKILLed and reported as timed out. The child starts with no
// blocked signals and default dispositions; its 0-2 are the call's own pipes (close-on-exec on our side).
//
// Not for jobs' own processes: LocalExecutor spawns those itself (own session, log file, cgroup).
// Ownership: the call owns the child until it returns (it is reaped, or killed and reaped, before then).
// Threads: any thread; calls are independent (posix_spawn is safe in a threaded process). The call
// blocks until the command ends or its deadline passes.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace nc::capacity {

struct Command {
  std::string path;                // a path with a '/', or a name looked up in PATH
  std::vector<std::string> argv;   // argv[0] included; empty: {path}
  std::optional<std::vector<std::string>> env;  // "NAME=value" entries; nullopt: this process's environment
  std::string input;               // written to its stdin, which is then closed (empty: closed at once)
  int timeout_ms = 20000;          // from the start to the end of the command, output included
};

struct SubprocessResult {
  bool started = false;    // false: it could not be run (spawn_error says why)
  bool timed_out = false;  // it ran past timeout_ms and was SIGKILLed
  int status = 0;          // waitpid status
  std::string out, err;    // what it wrote to stdout and stderr
  std::string spawn_error;

  bool exited() const;      // it ended by itself with an exit status
  int exit_code() const;    // -1 unless exited()
  int term_signal() const;  // the signal that ended it (0: none)
  bool ok() const;          // exited 0
  // "<what> exited 3: <its stderr (or stdout)>", "<what>: timed out", "<what>: cannot run: ...".
  std::string describe(const std::string& what) const;
};

SubprocessResult run_subprocess(const Command& cmd);

// This process's environment with each override's NAME set to its value (and its own entries for those
// names left out).
std::vector<std::string> environment_with(const std::vector<std::pair<std::string, std::string>>& overrides);

// The first line of a command's output or description (for one-line status messages); "no output"
// when it is empty.
std::string first_line(const std::string& text);

// The absolute path of executable `name`: the first in this process's PATH, else in /usr/bin, /bin,
// /usr/sbin or /sbin (a root service's PATH may lack the sbin directories); "" if none.
std::string find_executable(const std::string& name);

}  // namespace nc::capacity
