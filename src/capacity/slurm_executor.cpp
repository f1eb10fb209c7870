#include "capacity/slurm_executor.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

extern char** environ;

#include "core/log.h"
#include "core/timer.h"

namespace nc::capacity {
namespace {

namespace fs = std::filesystem;

int64_t mono_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// ---- running a command: posix_spawn, argv only, stdin from a string, a deadline ----

struct CmdResult {
  bool started = false;
  bool timed_out = false;
  int status = 0;  // waitpid status
  std::string out, err;
  std::string spawn_error;

  bool ok() const { return started && !timed_out && WIFEXITED(status) && WEXITSTATUS(status) == 0; }
  std::string describe(const std::string& what) const {
    if (!started) return what + ": cannot run: " + spawn_error;
    if (timed_out) return what + ": timed out";
    std::string s = what;
    if (WIFEXITED(status)) s += " exited " + std::to_string(WEXITSTATUS(status));
    else if (WIFSIGNALED(status)) s += " killed by signal " + std::to_string(WTERMSIG(status));
    std::string e = err.empty() ? out : err;
    while (!e.empty() && (e.back() == '\n' || e.back() == ' ')) e.pop_back();
    if (!e.empty()) s += ": " + e;
    return s;
  }
};

void set_nonblock(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

CmdResult run_cmd(const std::string& path, const std::vector<std::string>& argv, const std::vector<std::string>& env,
                  const std::string& input, int timeout_ms) {
  CmdResult r;
  int out_p[2] = {-1, -1}, err_p[2] = {-1, -1}, in_s[2] = {-1, -1};
  if (::pipe2(out_p, O_CLOEXEC) != 0 || ::pipe2(err_p, O_CLOEXEC) != 0 ||
      ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in_s) != 0) {
    r.spawn_error = std::strerror(errno);
    for (int fd : {out_p[0], out_p[1], err_p[0], err_p[1], in_s[0], in_s[1]}) {
      if (fd >= 0) ::close(fd);
    }
    return r;
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in_s[1], 0);
  posix_spawn_file_actions_adddup2(&fa, out_p[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err_p[1], 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  std::vector<char*> av, ev;
  for (const std::string& a : argv) av.push_back(const_cast<char*>(a.c_str()));
  av.push_back(nullptr);
  for (const std::string& e : env) ev.push_back(const_cast<char*>(e.c_str()));
  ev.push_back(nullptr);
  pid_t pid = 0;
  int rc = path.find('/') == std::string::npos
               ? posix_spawnp(&pid, path.c_str(), &fa, &attr, av.data(), ev.data())
               : posix_spawn(&pid, path.c_str(), &fa, &attr, av.data(), ev.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  ::close(out_p[1]);
  ::close(err_p[1]);
  ::close(in_s[1]);
  if (rc != 0) {
    r.spawn_error = path + ": " + std::strerror(rc);
    ::close(out_p[0]);
    ::close(err_p[0]);
    ::close(in_s[0]);
    return r;
  }
  r.started = true;
  int in_fd = in_s[0], out_fd = out_p[0], err_fd = err_p[0];
  set_nonblock(in_fd);
  set_nonblock(out_fd);
  set_nonblock(err_fd);
  size_t written = 0;
  if (input.empty()) {
    ::shutdown(in_fd, SHUT_WR);
  }
  const int64_t deadline = mono_us() + static_cast<int64_t>(timeout_ms) * 1000;
  char buf[8192];
  while (out_fd >= 0 || err_fd >= 0) {
    int64_t left_ms = (deadline - mono_us()) / 1000;
    if (left_ms <= 0) {
      r.timed_out = true;
      break;
    }
    pollfd pf[3];
    int n = 0;
    int out_i = -1, err_i = -1, in_i = -1;
    if (out_fd >= 0) { out_i = n; pf[n++] = {out_fd, POLLIN, 0}; }
    if (err_fd >= 0) { err_i = n; pf[n++] = {err_fd, POLLIN, 0}; }
    if (in_fd >= 0 && written < input.size()) { in_i = n; pf[n++] = {in_fd, POLLOUT, 0}; }
    int pr = ::poll(pf, n, static_cast<int>(std::min<int64_t>(left_ms, 1000)));
    if (pr < 0) {
      if (errno == EINTR) continue;
      r.timed_out = true;  // cannot wait: treat as a failure to finish
      break;
    }
    auto drain = [&](int& fd, std::string& to, int idx) {
      if (idx < 0 || pf[idx].revents == 0) return;
      for (;;) {
        ssize_t k = ::read(fd, buf, sizeof buf);
        if (k > 0) {
          to.append(buf, static_cast<size_t>(k));
          continue;
        }
        if (k < 0 && (errno == EINTR)) continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        ::close(fd);  // EOF or error
        fd = -1;
        return;
      }
    };
    drain(out_fd, r.out, out_i);
    drain(err_fd, r.err, err_i);
    if (in_i >= 0 && pf[in_i].revents != 0) {
      ssize_t k = ::send(in_fd, input.data() + written, input.size() - written, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (k > 0) {
        written += static_cast<size_t>(k);
        if (written == input.size()) ::shutdown(in_fd, SHUT_WR);
      } else if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        written = input.size();  // the reader is gone
      }
    }
  }
  if (out_fd >= 0) ::close(out_fd);
  if (err_fd >= 0) ::close(err_fd);
  ::close(in_fd);
  if (r.timed_out) ::kill(pid, SIGKILL);
  // The pipes are closed: the command is exiting (or a child it left holds them; bounded by the deadline).
  for (;;) {
    pid_t w = ::waitpid(pid, &r.status, r.timed_out ? 0 : WNOHANG);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) break;
    if (w == 0) {
      if (mono_us() > deadline) {
        r.timed_out = true;
        ::kill(pid, SIGKILL);
        continue;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }
  return r;
}

// ---- small parsing helpers ----

bool valid_env_name(const std::string& s) {
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
}

bool has_nul(const std::string& s) { return s.find('\0') != std::string::npos; }

// Slurm's job name: nc-<job_id>-<segment>, with anything unusual in the id made '_' (keeps squeue and
// scontrol's space-separated output unambiguous).
std::string slurm_job_name(const LaunchSpec& spec) {
  std::string n = "nc-";
  for (char c : spec.job_id) {
    n += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.') ? c : '_';
  }
  return n + "-" + std::to_string(spec.segment);
}

// A path for --output / --error: '%' starts Slurm's filename patterns ("%%" is a '%').
std::string slurm_file_pattern(const std::string& path) {
  std::string s;
  for (char c : path) {
    s += c;
    if (c == '%') s += '%';
  }
  return s;
}

std::string gpu_list(const std::vector<int>& gpus) {
  std::string s;
  for (size_t i = 0; i < gpus.size(); ++i) s += (i ? "," : "") + std::to_string(gpus[i]);
  return s;
}

int master_port(std::string_view job_id) {  // as LocalExecutor::master_port
  uint64_t h = 1469598103934665603ull;
  for (char c : job_id) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  return 20000 + static_cast<int>(h % 10000);
}

bool fractional(const NodeAssignment& n) { return n.gpu_milli > 0 && n.gpu_milli < 1000 && !n.gpus.empty(); }

// "2026-11-28T07:52:53" (local time, as scontrol / squeue print it) -> unix seconds; 0 if not a time.
int64_t parse_slurm_time(const std::string& s) {
  std::tm tm{};
  int y, mo, d, h, mi, se;
  if (std::sscanf(s.c_str(), "%d-%d-%dT%d:%d:%d", &y, &mo, &d, &h, &mi, &se) != 6) return 0;
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = se;
  tm.tm_isdst = -1;
  time_t t = std::mktime(&tm);
  return t < 0 ? 0 : static_cast<int64_t>(t);
}

// The value of " Key=" in one line of `scontrol -o show job` (values we read have no spaces).
std::string field(const std::string& line, const std::string& key) {
  std::string pat = " " + key + "=";
  size_t p = line.find(pat);
  if (p == std::string::npos) {
    if (line.compare(0, key.size() + 1, key + "=") != 0) return "";
    p = 0;
    pat = key + "=";
  }
  p += pat.size();
  size_t e = line.find(' ', p);
  return line.substr(p, e == std::string::npos ? std::string::npos : e - p);
}

bool is_ended(const std::string& state) {
  static const std::set<std::string> kEnded = {"COMPLETED", "FAILED",    "CANCELLED",  "TIMEOUT",
                                               "NODE_FAIL", "BOOT_FAIL", "DEADLINE",   "OUT_OF_MEMORY",
                                               "PREEMPTED", "REVOKED",   "SPECIAL_EXIT"};
  return kEnded.count(state) > 0;
}
bool is_started(const std::string& state) {
  return state == "RUNNING" || state == "COMPLETING" || state == "SUSPENDED" || state == "STOPPED" ||
         state == "SIGNALING" || state == "STAGE_OUT" || is_ended(state);
}

// The signals srun names with strsignal() in "task N: <name>" (Linux numbering).
const char* kSignalNames =
    "  Hangup*) nc_sig=1 ;;\n"
    "  Interrupt*) nc_sig=2 ;;\n"
    "  Quit*) nc_sig=3 ;;\n"
    "  'Illegal instruction'*) nc_sig=4 ;;\n"
    "  'Trace/breakpoint trap'*) nc_sig=5 ;;\n"
    "  Aborted*) nc_sig=6 ;;\n"
    "  'Bus error'*) nc_sig=7 ;;\n"
    "  'Floating point exception'*) nc_sig=8 ;;\n"
    "  Killed*) nc_sig=9 ;;\n"
    "  'User defined signal 1'*) nc_sig=10 ;;\n"
    "  'Segmentation fault'*) nc_sig=11 ;;\n"
    "  'User defined signal 2'*) nc_sig=12 ;;\n"
    "  'Broken pipe'*) nc_sig=13 ;;\n"
    "  'Alarm clock'*) nc_sig=14 ;;\n"
    "  Terminated*) nc_sig=15 ;;\n"
    "  'CPU time limit exceeded'*) nc_sig=24 ;;\n"
    "  'File size limit exceeded'*) nc_sig=25 ;;\n"
    "  'Virtual timer expired'*) nc_sig=26 ;;\n"
    "  'Profiling timer expired'*) nc_sig=27 ;;\n"
    "  'Bad system call'*) nc_sig=31 ;;\n";

}  // namespace

// ---- public helpers ----

Result<std::string> read_slurm_env_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return not_found("cannot read " + path);
  std::string line, conf;
  while (std::getline(in, line)) {
    const std::string key = "SLURM_CONF=";
    size_t p = line.find(key);
    if (p == std::string::npos) continue;
    std::string v = line.substr(p + key.size());
    while (!v.empty() && (v.back() == '\r' || v.back() == ' ')) v.pop_back();
    if (v.size() >= 2 && ((v.front() == '\'' && v.back() == '\'') || (v.front() == '"' && v.back() == '"'))) {
      v = v.substr(1, v.size() - 2);
    }
    conf = v;
  }
  if (conf.empty()) return not_found(path + " sets no SLURM_CONF");
  return conf;
}

std::string SlurmExecutor::shell_quote(std::string_view s) {
  std::string q = "'";
  for (char c : s) {
    if (c == '\'') q += "'\\''";
    else q += c;
  }
  return q + "'";
}

std::string SlurmExecutor::batch_script(const LaunchSpec& spec, SlurmGpuIndices gpu_indices) {
  const int nnodes = static_cast<int>(spec.nodes.size());
  const int tpn = spec.tasks_per_node;
  const auto& q = shell_quote;
  const bool from_slurm = gpu_indices == SlurmGpuIndices::kSlurm;
  const bool any_gpu =
      std::any_of(spec.nodes.begin(), spec.nodes.end(), [](const NodeAssignment& n) { return !n.gpus.empty(); });

  // The per-task wrapper: runs on every node as `bash -c "$nc_task" nc-task command args...`.
  std::string w;
  w += "nc_rank=-1\nnc_i=0\nfor nc_n in";
  for (const NodeAssignment& n : spec.nodes) w += " " + q(n.node);
  w += "; do\n"
       "  if [ \"$nc_n\" = \"${SLURMD_NODENAME:-}\" ]; then nc_rank=$nc_i; break; fi\n"
       "  nc_i=$((nc_i + 1))\n"
       "done\n"
       "[ \"$nc_rank\" -ge 0 ] || nc_rank=${SLURM_NODEID:-0}\n";
  if (from_slurm) {
    w += "nc_m=\";${NC_GPU_MAP:-}\"\n"
         "nc_gpus=''\n"
         "case $nc_m in *\";${SLURMD_NODENAME:-}=\"*) nc_gpus=${nc_m#*\";${SLURMD_NODENAME:-}=\"}; "
         "nc_gpus=${nc_gpus%%;*} ;; esac\n"
         "if [ -n \"${SLURM_STEP_GPUS:-}${SLURM_JOB_GPUS:-}\" ] && [ -n \"${CUDA_VISIBLE_DEVICES:-}\" ]; then\n"
         "  nc_gpus=$CUDA_VISIBLE_DEVICES\n"
         "fi\n";
  } else {
    w += "case $nc_rank in\n";
    for (int i = 0; i < nnodes; ++i) w += "  " + std::to_string(i) + ") nc_gpus=" + q(gpu_list(spec.nodes[i].gpus)) + " ;;\n";
    w += "  *) nc_gpus='' ;;\nesac\n";
  }
  w += "export CUDA_VISIBLE_DEVICES=\"$nc_gpus\" NVIDIA_VISIBLE_DEVICES=\"$nc_gpus\"\n";
  w += "export WORLD_SIZE=" + std::to_string(nnodes * tpn) + " NNODES=" + std::to_string(nnodes) +
       " LOCAL_WORLD_SIZE=" + std::to_string(tpn) + " NODE_RANK=$nc_rank LOCAL_RANK=${SLURM_LOCALID:-0}\n";
  w += "export RANK=$((nc_rank * " + std::to_string(tpn) + " + LOCAL_RANK))\n";
  w += "export MASTER_ADDR=\"$NC_MASTER_ADDR\" MASTER_PORT=" +
       std::to_string(master_port(spec.job_id)) + "\n";
  w += "export NEOCLOUD_JOB_ID=" + q(spec.job_id) + " NEOCLOUD_SEGMENT=" + std::to_string(spec.segment) + "\n";
  w += "case $nc_rank in\n";
  for (int i = 0; i < nnodes; ++i) {
    if (fractional(spec.nodes[i])) {
      w += "  " + std::to_string(i) + ") export NEOCLOUD_GPU_MILLI=" + std::to_string(spec.nodes[i].gpu_milli) +
           " ;;\n";
    }
  }
  w += "  *) unset NEOCLOUD_GPU_MILLI ;;\nesac\n";
  w += "unset NC_GPU_MAP NC_MASTER_ADDR nc_rank nc_i nc_n nc_m nc_gpus\n";
  for (const auto& [k, v] : spec.env) w += "export " + k + "=" + q(v) + "\n";
  w += "exec \"$@\"\n";

  // The batch script (runs once, on the first node of the allocation). No user text before the first
  // command line, so nothing in it can be read as an #SBATCH directive.
  std::string s = "#!/bin/bash\n# neocloud SlurmExecutor batch script (generated)\nnc_task=" + q(w) + "\n";
  s += R"NC(nc_expand() {  # "0-1,3" -> "0,1,3"
  local out='' part a b IFS=,
  for part in $1; do
    case $part in
      *-*) a=${part%-*}; b=${part#*-}; while [ "$a" -le "$b" ]; do out=${out:+$out,}$a; a=$((a + 1)); done ;;
      *) out=${out:+$out,}$part ;;
    esac
  done
  printf '%s' "$out"
}
nc_watch() {  # copies srun's stderr to ours; prints "<srun's status> <what its first failing task did>"
  local line rc='' first=''
  while IFS= read -r line; do
    case $line in
      nc-srun-exit=*) rc=${line#nc-srun-exit=} ;;
      *)
        printf '%s\n' "$line" >&2
        if [ -z "$first" ]; then
          # "srun: error: node: task 1: Exited with exit code 3", "...: tasks 0-2: Killed"
          case $line in 'srun: error: '*': task'*': '*) first=${line#*': task'}; first=${first#*': '} ;; esac
        fi ;;
    esac
  done
  printf '%s %s' "${rc:-1}" "$first"
}
NC_GPU_MAP=''
)NC";
  if (from_slurm && any_gpu) {
    s += R"NC(# The GPUs Slurm allocated on each node, "node=0,1;node2=2,3;" (it sets no CUDA_VISIBLE_DEVICES for them).
for nc_try in 1 2 3 4 5 6 7 8 9 10; do
  if nc_out=$(timeout 20 scontrol show job -d "$SLURM_JOB_ID" 2>/dev/null); then
    while IFS= read -r nc_line; do
      case $nc_line in
        *Nodes=*GRES=*IDX:*)
          nc_n=${nc_line#*Nodes=}; nc_n=${nc_n%% *}
          nc_x=${nc_line#*IDX:}; nc_x=${nc_x%%)*}; nc_x=$(nc_expand "$nc_x")
          case $nc_n in *[\[,]*) nc_hosts=$(timeout 20 scontrol show hostnames "$nc_n") ;; *) nc_hosts=$nc_n ;; esac
          for nc_h in $nc_hosts; do NC_GPU_MAP="$NC_GPU_MAP$nc_h=$nc_x;"; done ;;
      esac
    done <<<"$nc_out"
  fi
  [ -n "$NC_GPU_MAP" ] && break
  sleep 0.5
done
if [ -z "$NC_GPU_MAP" ]; then
  echo "neocloud: cannot read the GPUs Slurm allocated to job $SLURM_JOB_ID (scontrol show job -d)" >&2
  exit 1
fi
)NC";
  }
  s += "NC_MASTER_ADDR=''\n";
  s += "while IFS= read -r nc_line; do\n"
       "  case $nc_line in *NodeAddr=*) nc_x=${nc_line#*NodeAddr=}; NC_MASTER_ADDR=${nc_x%% *}; break ;; esac\n"
       "done < <(timeout 20 scontrol show node " + q(spec.nodes[0].node) + " 2>/dev/null)\n";
  s += "[ -n \"$NC_MASTER_ADDR\" ] || NC_MASTER_ADDR=" + q(spec.nodes[0].node) + "\n";
  s += "export NC_GPU_MAP NC_MASTER_ADDR\n";
  const std::string log = q(slurm_file_pattern(spec.log_path));
  s += "exec 3>&1\n";
  s += "nc_res=$( { srun --quiet --kill-on-bad-exit=1 --nodes=" + std::to_string(nnodes) +
       " --ntasks=" + std::to_string(nnodes * tpn) + " --ntasks-per-node=" + std::to_string(tpn) +
       " --output=" + log + " --error=" + log + " --open-mode=append /bin/bash -c \"$nc_task\" nc-task " +
       q(spec.command);
  for (const std::string& a : spec.args) s += " " + q(a);
  s += " 2>&1 1>&3 3>&-; echo \"nc-srun-exit=$?\"; } | nc_watch )\n";
  s += "exec 3>&-\n";
  s += R"NC(nc_rc=${nc_res%% *}
nc_first=${nc_res#* }
case $nc_first in
  'Exited with exit code '*) exit "${nc_first#Exited with exit code }" ;;
  '') exit "$nc_rc" ;;
esac
nc_sig=0
case $nc_first in
)NC";
  s += kSignalNames;
  s += R"NC(esac
if [ "$nc_sig" -gt 0 ]; then
  ulimit -c 0 2>/dev/null
  trap - "$nc_sig" 2>/dev/null
  kill -s "$nc_sig" $$
  exit $((128 + nc_sig))
fi
exit "$nc_rc"
)NC";
  return s;
}

// ---- the executor ----

SlurmExecutor::SlurmExecutor(SlurmExecutorOptions options) : options_(std::move(options)) {
  if (options_.poll_interval_ms < 10) options_.poll_interval_ms = 10;
  if (options_.command_timeout_ms < 1000) options_.command_timeout_ms = 1000;
}

namespace {

struct Runner {
  const SlurmExecutorOptions& o;

  std::vector<std::string> env() const {
    std::vector<std::string> e;
    for (char** p = environ; p && *p; ++p) {
      if (!o.slurm_conf.empty() && std::strncmp(*p, "SLURM_CONF=", 11) == 0) continue;
      e.emplace_back(*p);
    }
    if (!o.slurm_conf.empty()) e.push_back("SLURM_CONF=" + o.slurm_conf);
    return e;
  }
  CmdResult operator()(const std::string& tool, std::vector<std::string> args, const std::string& input = "") const {
    std::string path = o.bin_dir.empty() ? tool : o.bin_dir + "/" + tool;
    args.insert(args.begin(), tool);
    const int64_t t0 = mono_us();
    CmdResult r = run_cmd(path, args, env(), input, o.command_timeout_ms);
    // A slow or failing controller shows in the log: jobs that do not start or stop are then explained.
    const double secs = static_cast<double>(mono_us() - t0) / 1e6;
    if (r.timed_out || !r.started || secs >= kSlowCommandS) {
      std::string cmd;
      for (const std::string& a : args) cmd += (cmd.empty() ? "" : " ") + a;
      NC_LOG_WARN("slurm: `{}` {} after {:.1f} s", cmd, r.ok() ? "succeeded" : r.describe("failed"), secs);
    }
    return r;
  }
  static constexpr double kSlowCommandS = 5.0;
};

// The running steps ("123.0") of the given jobs: srun's tasks, not the batch script or extern steps.
// A failed scancel worth a warning: not one whose job or step had ended meanwhile (a race, not trouble).
bool scancel_trouble(const CmdResult& r) {
  if (r.ok()) return false;
  if (!r.started || r.timed_out) return true;
  const std::string e = r.err + r.out;
  return e.find("already completing or completed") == std::string::npos && e.find("Invalid job id") == std::string::npos;
}

// (newest_start_s: the latest StartTime among them, unix seconds; 0 if none or unknown.)
std::vector<std::string> running_steps(const Runner& run, const std::vector<std::string>& job_ids,
                                       int64_t* newest_start_s = nullptr) {
  std::vector<std::string> steps;
  if (newest_start_s) *newest_start_s = 0;
  if (job_ids.empty()) return steps;
  std::string ids;
  for (const std::string& id : job_ids) ids += (ids.empty() ? "" : ",") + id;
  CmdResult r = run("squeue", {"-h", "-s", "-j", ids, "-o", "%i|%S"});
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) {
    const size_t bar = line.find('|');
    std::string s = line.substr(0, bar);
    size_t dot = s.find('.');
    if (dot != std::string::npos && dot + 1 < s.size() && std::isdigit(static_cast<unsigned char>(s[dot + 1]))) {
      steps.push_back(s);
      if (newest_start_s && bar != std::string::npos) {
        *newest_start_s = std::max(*newest_start_s, parse_slurm_time(line.substr(bar + 1)));
      }
    }
  }
  return steps;
}

}  // namespace

SlurmExecutor::~SlurmExecutor() {
  if (jobs_.empty()) return;
  Runner run{options_};
  std::vector<std::string> ids;
  for (auto& [key, job] : jobs_) {
    if (!job.done) ids.push_back(job.slurm_id);
  }
  if (ids.empty()) return;
  std::vector<std::string> steps = running_steps(run, ids);
  if (!steps.empty()) {
    steps.insert(steps.begin(), "--signal=KILL");
    (void)run("scancel", steps);
  }
  (void)run("scancel", ids);
}

std::string SlurmExecutor::slurm_job_id(const std::string& job_id, int segment) const {
  auto it = jobs_.find({job_id, segment});
  return it == jobs_.end() ? "" : it->second.slurm_id;
}

Status SlurmExecutor::validate(const LaunchSpec& spec) const {
  if (spec.job_id.empty()) return invalid_argument("launch: empty job_id");
  if (spec.segment < 0) return invalid_argument("launch: negative segment");
  if (spec.command.empty()) return invalid_argument("launch: empty command");
  if (spec.nodes.empty()) return invalid_argument("launch: no nodes");
  if (spec.tasks_per_node < 1) return invalid_argument("launch: tasks_per_node must be >= 1");
  if (spec.log_path.empty()) return invalid_argument("launch: empty log_path");
  if (spec.log_path.find('\\') != std::string::npos) {
    return invalid_argument("launch: a log_path with a backslash is not supported by Slurm's --output");
  }
  if (spec.max_duration_s < 0 || spec.grace_period_s < 0) return invalid_argument("launch: negative duration");
  if (has_nul(spec.job_id) || has_nul(spec.command) || has_nul(spec.working_dir) || has_nul(spec.log_path)) {
    return invalid_argument("launch: NUL byte in the spec");
  }
  for (const std::string& a : spec.args) {
    if (has_nul(a)) return invalid_argument("launch: NUL byte in an argument");
  }
  for (const auto& [k, v] : spec.env) {
    if (!valid_env_name(k)) return invalid_argument("launch: bad environment variable name '" + k + "'");
    if (has_nul(v)) return invalid_argument("launch: NUL byte in environment variable " + k);
  }
  std::set<std::string> names;
  for (const NodeAssignment& n : spec.nodes) {
    if (n.node.empty() || n.node.find_first_of(",[] \t\n'\"\\") != std::string::npos) {
      return invalid_argument("launch: bad node name '" + n.node + "'");
    }
    if (!names.insert(n.node).second) return invalid_argument("launch: node " + n.node + " appears twice");
    if (n.gpus.size() != spec.nodes[0].gpus.size()) {
      return invalid_argument("launch: Slurm needs the same GPU count on every node of a job");
    }
    for (int g : n.gpus) {
      if (g < 0) return invalid_argument("launch: negative GPU index");
    }
    if (n.gpu_milli <= 0 || n.gpu_milli > 1000) return invalid_argument("launch: gpu_milli out of 1..1000");
  }
  return Status::ok();
}

Status SlurmExecutor::launch(const LaunchSpec& spec_in) {
  Key key{spec_in.job_id, spec_in.segment};
  if (launched_.count(key)) {
    return {StatusCode::kAlreadyExists,
            "launch: job " + spec_in.job_id + " segment " + std::to_string(spec_in.segment) + " was launched already"};
  }
  NC_RETURN_IF_ERROR(validate(spec_in));
  LaunchSpec spec = spec_in;
  std::error_code ec;
  spec.log_path = fs::absolute(spec.log_path, ec).lexically_normal().string();
  fs::path log_dir = fs::path(spec.log_path).parent_path();
  fs::create_directories(log_dir, ec);
  if (ec) return internal_error("launch: cannot create " + log_dir.string() + ": " + ec.message());
  {
    std::ofstream touch(spec.log_path, std::ios::app);
    if (!touch) return internal_error("launch: cannot open the log " + spec.log_path);
  }
  std::string wd = spec.working_dir.empty() ? log_dir.string() : fs::absolute(spec.working_dir, ec).string();
  if (!fs::is_directory(wd, ec)) return invalid_argument("launch: working_dir " + wd + " is not a directory");

  const size_t gpus_per_node = spec.nodes[0].gpus.size();
  const bool frac = std::any_of(spec.nodes.begin(), spec.nodes.end(), fractional);
  size_t gres = gpus_per_node;
  if (frac && options_.gpu_indices == SlurmGpuIndices::kAssignment) gres = 0;  // shares a GPU: not Slurm's

  std::string nodelist;
  for (const NodeAssignment& n : spec.nodes) nodelist += (nodelist.empty() ? "" : ",") + n.node;
  const std::string name = slurm_job_name(spec);
  std::vector<std::string> args = {"--parsable",
                                   "--job-name=" + name,
                                   "--nodes=" + std::to_string(spec.nodes.size()),
                                   "--nodelist=" + nodelist,
                                   "--ntasks-per-node=" + std::to_string(spec.tasks_per_node),
                                   "--output=" + slurm_file_pattern(spec.log_path),
                                   "--error=" + slurm_file_pattern(spec.log_path),
                                   "--open-mode=append",
                                   "--chdir=" + wd,
                                   "--no-requeue"};
  if (gres > 0) args.push_back("--gres=gpu:" + std::to_string(gres));
  if (spec.max_duration_s > 0) {
    int64_t minutes = (spec.max_duration_s + spec.grace_period_s + 59) / 60 + 1;
    args.push_back("--time=" + std::to_string(minutes));
  }
  if (!options_.partition.empty()) args.push_back("--partition=" + options_.partition);

  const int64_t launched_us = unix_us();
  Runner run{options_};
  CmdResult r = run("sbatch", args, batch_script(spec, options_.gpu_indices));
  if (!r.ok()) {
    if (r.timed_out) {
      // It may have been submitted all the same: cancel whatever carries the name.
      (void)run("scancel", {"--jobname=" + name});
      return unavailable(r.describe("sbatch"));
    }
    return failed_precondition(r.describe("sbatch rejected job " + spec.job_id));
  }
  std::string id;
  for (char c : r.out) {
    if (!std::isdigit(static_cast<unsigned char>(c))) break;
    id += c;
  }
  if (id.empty()) {
    (void)run("scancel", {"--jobname=" + name});
    return internal_error("sbatch printed no job id: '" + r.out + "'");
  }
  Job job;
  job.job_id = spec.job_id;
  job.segment = spec.segment;
  job.slurm_id = id;
  job.launched_us = launched_us;
  job.max_duration_s = spec.max_duration_s;
  job.grace_period_s = spec.grace_period_s;
  launched_.insert(key);
  jobs_.emplace(key, std::move(job));
  return Status::ok();
}

int64_t SlurmExecutor::start_estimate_us(const Job& job) const {
  int64_t est = job.slurm_start_s * 1'000'000;
  // StartTime is truncated to the second: the job started in [S, S+1) and before we saw it running.
  if (job.seen_running && job.running_seen_us > 0) est = std::min(est + 999'999, job.running_seen_us);
  if (job.slurm_start_s == 0) est = job.running_seen_us;
  return std::max(est, job.launched_us);
}

void SlurmExecutor::refresh(int64_t now_us) {
  std::vector<Job*> live;
  std::string ids;
  for (auto& [key, job] : jobs_) {
    if (job.done) continue;
    live.push_back(&job);
    ids += (ids.empty() ? "" : ",") + job.slurm_id;
  }
  if (live.empty()) return;
  Runner run{options_};
  CmdResult r = run("squeue", {"-h", "--states=all", "-j", ids, "-o", "%i|%T|%S|%r"});
  if (!r.ok() && r.err.find("Invalid job id") == std::string::npos) return;  // try again next time
  struct Row {
    std::string state, start, reason;
  };
  std::map<std::string, Row> seen;  // by Slurm job id
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) {
    std::vector<std::string> f;
    size_t p = 0;
    for (int i = 0; i < 3; ++i) {
      size_t bar = line.find('|', p);
      if (bar == std::string::npos) break;
      f.push_back(line.substr(p, bar - p));
      p = bar + 1;
    }
    if (f.size() != 3) continue;
    seen[f[0]] = {f[1], f[2], line.substr(p)};
  }
  for (Job* job : live) {
    auto it = seen.find(job->slurm_id);
    if (it == seen.end()) {
      // Not listed: ended and forgotten (MinJobAge), or lost. Ask scontrol before giving up on it.
      if (++job->missing >= 2) finish(*job, now_us);
      continue;
    }
    job->missing = 0;
    const std::string& state = it->second.state;
    job->state = state;
    // Waiting for a node Slurm considers down or drained: the placement is stale, give it back.
    const std::string& reason = it->second.reason;
    bool node_gone = state == "PENDING" && (reason.find("ReqNodeNotAvail") != std::string::npos ||
                                            reason.find("NodeDown") != std::string::npos);
    if (!node_gone) {
      job->node_unavailable_since_us = 0;
    } else if (job->node_unavailable_since_us == 0) {
      job->node_unavailable_since_us = now_us;
    } else if (options_.node_unavailable_s > 0 && job->cause == Cause::kNone &&
               now_us - job->node_unavailable_since_us >= options_.node_unavailable_s * 1'000'000) {
      (void)run("scancel", {job->slurm_id});
      job->report.job_id = job->job_id;
      job->report.segment = job->segment;
      job->report.kind = ExitKind::kNodeFailed;
      job->report.started_at_us = job->report.ended_at_us = now_us;
      job->report.detail = "Slurm job " + job->slurm_id + " waited " + std::to_string(options_.node_unavailable_s) +
                           " s for an unavailable node (" + reason + "); cancelled";
      job->done = true;
      continue;
    }
    if (is_started(state) && job->slurm_start_s == 0) job->slurm_start_s = parse_slurm_time(it->second.start);
    if (state == "RUNNING" && !job->seen_running) {
      job->seen_running = true;
      job->running_seen_us = now_us;
    }
    if ((state == "COMPLETING" || is_ended(state)) && job->end_seen_us == 0) job->end_seen_us = now_us;
    if (is_ended(state)) finish(*job, now_us);
  }
}

void SlurmExecutor::finish(Job& job, int64_t now_us) {
  Runner run{options_};
  CmdResult r = run("scontrol", {"-o", "show", "job", job.slurm_id});
  ExitReport& rep = job.report;
  rep.job_id = job.job_id;
  rep.segment = job.segment;
  std::string line = r.out.substr(0, r.out.find('\n'));
  std::string state = r.ok() ? field(line, "JobState") : "";
  if (!r.ok() && r.err.find("Invalid job id") == std::string::npos && ++job.read_failures < 20) {
    return;  // scontrol trouble (timeout, controller busy): retry on later polls
  }
  if (job.end_seen_us == 0) job.end_seen_us = now_us;
  if (state.empty()) {
    // Slurm does not know the job (any more): its end is unknown, treat it as lost.
    rep.kind = job.cause == Cause::kTerminated ? ExitKind::kTerminated
               : job.cause == Cause::kTimedOut ? ExitKind::kTimedOut
                                               : ExitKind::kNodeFailed;
    rep.started_at_us = job.slurm_start_s || job.seen_running ? start_estimate_us(job) : job.launched_us;
    rep.ended_at_us = std::max(rep.started_at_us, job.end_seen_us);
    rep.detail = "Slurm job " + job.slurm_id + " vanished (" + r.describe("scontrol show job") + ")";
    job.done = true;
    return;
  }
  if (!is_ended(state)) return;  // squeue was ahead of scontrol: next time
  int64_t start_s = parse_slurm_time(field(line, "StartTime"));
  int64_t end_s = parse_slurm_time(field(line, "EndTime"));
  if (start_s > 0) job.slurm_start_s = start_s;
  rep.started_at_us = start_estimate_us(job);
  int64_t end_us = job.end_seen_us;
  if (end_s > 0) end_us = std::min(end_s * 1'000'000 + 999'999, end_us);
  rep.ended_at_us = std::max(rep.started_at_us, end_us);
  std::string ec = field(line, "ExitCode");  // "code:signal"
  int code = 0, sig = 0;
  std::sscanf(ec.c_str(), "%d:%d", &code, &sig);
  rep.exit_code = sig != 0 ? 0 : code;
  rep.signal = sig;
  std::string what = sig != 0 ? "a task was killed by signal " + std::to_string(sig)
                     : code != 0 ? "a task exited " + std::to_string(code)
                                 : "all tasks exited 0";
  std::string slurm = "Slurm job " + job.slurm_id + " " + state;
  std::string reason = field(line, "Reason");
  if (!reason.empty() && reason != "None") slurm += " (" + reason + ")";
  if (job.cause == Cause::kTerminated) {
    rep.kind = ExitKind::kTerminated;
    rep.detail = "terminated; " + slurm;
  } else if (job.cause == Cause::kTimedOut) {
    rep.kind = ExitKind::kTimedOut;
    rep.detail = "ran past max_duration_s=" + std::to_string(job.max_duration_s) + "; " + slurm;
  } else if (state == "COMPLETED" && code == 0 && sig == 0) {
    rep.kind = ExitKind::kSucceeded;
    rep.detail = what;
  } else if (state == "TIMEOUT" || state == "DEADLINE") {
    rep.kind = ExitKind::kTimedOut;
    rep.detail = slurm + " (Slurm's time limit)";
  } else if (state == "NODE_FAIL" || state == "BOOT_FAIL") {
    rep.kind = ExitKind::kNodeFailed;
    rep.detail = slurm;
  } else {
    rep.kind = ExitKind::kFailed;
    if (code == 0 && sig == 0 && state != "COMPLETED") rep.exit_code = 1;
    rep.detail = what + "; " + slurm + (state == "CANCELLED" ? ", cancelled outside the executor" : "");
  }
  if (job.killed) rep.detail += " (SIGKILLed after the grace period)";
  job.done = true;
}

void SlurmExecutor::stop(Job& job, Cause cause, int grace_s, int64_t now_mono_us) {
  job.cause = cause;
  Runner run{options_};
  // Does the job have a running step (srun's tasks)? Without one no task process exists yet (pending,
  // or the batch script is still before srun): cancel outright. Signalling a pending job makes scancel
  // retry for minutes, so never do that.
  int64_t newest_step_s = 0;
  if (running_steps(run, {job.slurm_id}, &newest_step_s).empty()) {
    CmdResult r = run("scancel", {job.slurm_id});
    if (scancel_trouble(r)) NC_LOG_WARN("slurm job {} ({} segment {}): {}", job.slurm_id, job.job_id, job.segment, r.describe("scancel"));
    job.kill_at_mono_us = now_mono_us + static_cast<int64_t>(std::max(grace_s, 0)) * 1'000'000;
    return;
  }
  if (grace_s <= 0) {
    kill(job, now_mono_us);
    return;
  }
  // SIGTERM to every process of the job's steps (srun tasks and their children), not the batch shell.
  term(job);
  job.kill_at_mono_us = now_mono_us + static_cast<int64_t>(grace_s) * 1'000'000;
  // A step still launching its tasks (Slurm lists it before it has forked them) loses the signal: Slurm
  // accepts it and delivers nothing. A step that young gets the SIGTERM again 1 s and 3 s later (a
  // loaded node may take that long to fork its tasks).
  if (newest_step_s == 0 || unix_us() / 1'000'000 - newest_step_s <= kYoungStepS) {
    job.term_again_at_mono_us = now_mono_us + kTermAgainUs;
    job.terms_left = 2;
  }
}

void SlurmExecutor::term(Job& job) {
  Runner run{options_};
  CmdResult r = run("scancel", {"--signal=TERM", job.slurm_id});
  if (scancel_trouble(r)) {
    NC_LOG_WARN("slurm job {} ({} segment {}): {}", job.slurm_id, job.job_id, job.segment, r.describe("scancel --signal=TERM"));
  }
}

void SlurmExecutor::kill(Job& job, int64_t now_mono_us) {
  Runner run{options_};
  if (job.killed) {
    NC_LOG_WARN("slurm job {} ({} segment {}) is still {} {:.0f} s after it was killed: killing it again", job.slurm_id,
                job.job_id, job.segment, job.state.empty() ? "listed" : job.state,
                static_cast<double>(now_mono_us - job.killed_at_mono_us) / 1e6);
  }
  job.killed = true;
  job.killed_at_mono_us = now_mono_us;
  job.kill_at_mono_us = 0;
  job.term_again_at_mono_us = 0;
  // SIGKILL to each step: immediate. (A job-level `scancel --signal=KILL` is a cancel, which sends
  // SIGTERM and waits the cluster's KillWait before the SIGKILL.) Then cancel the job itself.
  std::vector<std::string> steps = running_steps(run, {job.slurm_id});
  if (!steps.empty()) {
    steps.insert(steps.begin(), "--signal=KILL");
    CmdResult r = run("scancel", steps);
    if (scancel_trouble(r)) NC_LOG_WARN("slurm job {}: {}", job.slurm_id, r.describe("scancel --signal=KILL (steps)"));
  }
  CmdResult r = run("scancel", {job.slurm_id});
  if (scancel_trouble(r)) NC_LOG_WARN("slurm job {}: {}", job.slurm_id, r.describe("scancel"));
}

Status SlurmExecutor::kill_leftover(const std::string& job_id, int segment) {
  LaunchSpec spec;
  spec.job_id = job_id;
  spec.segment = segment;
  Runner run{options_};
  CmdResult r = run("scancel", {"--full", "--signal=KILL", "--jobname=" + slurm_job_name(spec)});
  (void)run("scancel", {"--jobname=" + slurm_job_name(spec)});
  if (!r.started || r.timed_out) return unavailable("scancel failed: " + r.spawn_error + r.err);
  return Status::ok();
}

Status SlurmExecutor::terminate(const std::string& job_id, int segment, int grace_s) {
  auto it = jobs_.find({job_id, segment});
  if (it == jobs_.end() || it->second.done) {
    // Ended but not yet reported still counts as running: it will be reported as it ended.
    if (it == jobs_.end()) {
      return not_found("terminate: job " + job_id + " segment " + std::to_string(segment) + " is not running");
    }
    return Status::ok();
  }
  Job& job = it->second;
  if (job.cause != Cause::kNone) {
    // Already stopping: a shorter grace brings the SIGKILL forward.
    int64_t at = mono_us() + static_cast<int64_t>(std::max(grace_s, 0)) * 1'000'000;
    if (!job.killed && (job.kill_at_mono_us == 0 || at < job.kill_at_mono_us)) job.kill_at_mono_us = at;
    return Status::ok();
  }
  stop(job, Cause::kTerminated, grace_s, mono_us());
  return Status::ok();
}

std::vector<ExitReport> SlurmExecutor::poll() {
  std::vector<ExitReport> out;
  if (jobs_.empty()) return out;
  int64_t now_mono = mono_us();
  int64_t now = unix_us();
  if (now_mono - last_refresh_mono_us_ >= static_cast<int64_t>(options_.poll_interval_ms) * 1000) {
    last_refresh_mono_us_ = now_mono;
    refresh(now);
    now_mono = mono_us();
    now = unix_us();
  }
  for (auto it = jobs_.begin(); it != jobs_.end();) {
    Job& job = it->second;
    if (!job.done) {
      if (job.cause == Cause::kNone && job.max_duration_s > 0 && job.seen_running &&
          now >= start_estimate_us(job) + job.max_duration_s * 1'000'000) {
        stop(job, Cause::kTimedOut, job.grace_period_s, now_mono);
      }
      if (job.term_again_at_mono_us > 0 && !job.killed && now_mono >= job.term_again_at_mono_us) {
        job.term_again_at_mono_us = --job.terms_left > 0 ? now_mono + 2 * kTermAgainUs : 0;
        if (job.state == "RUNNING") term(job);
      }
      if (job.kill_at_mono_us > 0 && !job.killed && now_mono >= job.kill_at_mono_us) kill(job, now_mono);
      // Killed but not ended: the controller may have lost the request (busy, restarting), or a step was
      // still launching. Cancelling again is harmless; giving up would leave the job holding its GPUs.
      if (job.killed && !job.done && now_mono - job.killed_at_mono_us >= kKillRetryUs) kill(job, now_mono);
    }
    if (job.done) {
      out.push_back(std::move(job.report));
      it = jobs_.erase(it);
    } else {
      ++it;
    }
  }
  return out;
}

}  // namespace nc::capacity
