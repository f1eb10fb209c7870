// run_subprocess (subprocess.h): posix_spawn with pipes for stdout / stderr, a socket for stdin (written
// with MSG_NOSIGNAL: a command that exits early does not SIGPIPE us) and one poll loop to a deadline.
#include "capacity/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <thread>

#include "core/timer.h"

extern char** environ;

namespace nc::capacity {

bool SubprocessResult::exited() const { return started && !timed_out && WIFEXITED(status); }
int SubprocessResult::exit_code() const { return exited() ? WEXITSTATUS(status) : -1; }
int SubprocessResult::term_signal() const { return started && !timed_out && WIFSIGNALED(status) ? WTERMSIG(status) : 0; }
bool SubprocessResult::ok() const { return exit_code() == 0; }

std::string SubprocessResult::describe(const std::string& what) const {
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

std::vector<std::string> environment_with(const std::vector<std::pair<std::string, std::string>>& overrides) {
  std::vector<std::string> e;
  for (char** p = environ; p && *p; ++p) {
    const std::string_view var(*p);
    const bool replaced = std::any_of(overrides.begin(), overrides.end(), [&](const auto& o) {
      return var.size() > o.first.size() && var.compare(0, o.first.size(), o.first) == 0 && var[o.first.size()] == '=';
    });
    if (!replaced) e.emplace_back(var);
  }
  for (const auto& [name, value] : overrides) e.push_back(name + "=" + value);
  return e;
}

namespace {

int64_t mono_us() { return now_ns() / 1000; }

void set_nonblock(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

}  // namespace

SubprocessResult run_subprocess(const Command& cmd) {
  const std::string& path = cmd.path;
  const std::string& input = cmd.input;
  const int timeout_ms = cmd.timeout_ms;
  std::vector<std::string> argv = cmd.argv.empty() ? std::vector<std::string>{path} : cmd.argv;
  std::vector<std::string> env = cmd.env ? *cmd.env : environment_with({});
  SubprocessResult r;
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

std::string first_line(const std::string& text) {
  std::string line = text.substr(0, text.find('\n'));
  return line.empty() ? "no output" : line;
}

std::string find_executable(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::istringstream in(path ? path : "/usr/local/bin:/usr/bin:/bin");
  std::string dir;
  while (std::getline(in, dir, ':')) {
    if (dir.empty() || dir[0] != '/') continue;
    std::string candidate = dir + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  for (const char* dir : {"/usr/bin", "/bin", "/usr/sbin", "/sbin"}) {
    std::string candidate = std::string(dir) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

}  // namespace nc::capacity
