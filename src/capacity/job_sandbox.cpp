// JobSandbox (job_sandbox.h): finding bubblewrap, probing it, and the argv of a sandboxed task.
#include "capacity/job_sandbox.h"
#include "capacity/subprocess.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>

namespace nc::capacity {
namespace {

namespace fs = std::filesystem;

constexpr uid_t kProbeUid = 65534;  // nobody

bool under(const std::string& path, const std::string& dir) {
  return path == dir || (path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 && path[dir.size()] == '/');
}

// Whether a user that is neither the owner nor in the group of path's ancestors can reach path:
// every directory above it must be searchable by others.
bool reachable_by_others(const fs::path& path) {
  fs::path dir = path.parent_path();
  for (;;) {
    struct stat st{};
    if (::stat(dir.c_str(), &st) != 0) return false;
    if (!(st.st_mode & S_IXOTH)) return false;
    if (dir == dir.root_path() || dir.empty()) return true;
    dir = dir.parent_path();
  }
}

}  // namespace

JobSandbox::JobSandbox(SandboxOptions options) : options_(std::move(options)) {
  if (options_.mode == SandboxMode::kOff) {
    status_ = "off (--job-sandbox off)";
    return;
  }
  auto unavailable = [&](const std::string& why) {
    status_ = "off (" + why + ")";
    if (options_.mode == SandboxMode::kRequired) {
      required_error_ = "jobs must be sandboxed (--job-sandbox required) but " + why;
    }
  };
  bwrap_ = find_executable("bwrap");
  if (bwrap_.empty()) {
    unavailable("bubblewrap is not installed: apt-get install bubblewrap");
    return;
  }
  per_user_ = ::geteuid() == 0;
  if (per_user_) {
    setpriv_ = find_executable("setpriv");
    if (setpriv_.empty()) {
      unavailable("setpriv (util-linux) is not installed");
      return;
    }
  }
  if (!options_.jobs_root.empty()) {
    std::error_code ec;
    fs::path root = fs::weakly_canonical(fs::absolute(options_.jobs_root, ec), ec);
    // Missing directories on the way are made passable (0711) by us: the server's umask would close them.
    std::vector<fs::path> missing;
    for (fs::path p = root; !p.empty() && !fs::exists(p, ec); p = p.parent_path()) {
      missing.push_back(p);
      if (p == p.root_path()) break;
    }
    for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
      if (::mkdir(it->c_str(), 0711) == 0) ::chmod(it->c_str(), 0711);
    }
    options_.jobs_root = root.string();
    if (::chmod(root.c_str(), 0711) != 0 || (per_user_ && !reachable_by_others(root / "job"))) {
      unavailable("the jobs directory " + root.string() +
                  " cannot be reached by the jobs' users: a directory above it is closed to others (o-x); "
                  "use a --jobs-dir every user can pass through, such as /var/lib/neocloud/jobs");
      return;
    }
  }
  // What to cover: paths that exist and that the job's user could reach; /tmp and /home are replaced
  // by empty ones anyway, /dev and /proc by fresh ones.
  for (const std::string& p : options_.hidden_paths) {
    std::error_code ec;
    fs::path canon = fs::weakly_canonical(fs::absolute(p, ec), ec);
    if (ec || !fs::exists(canon, ec)) continue;
    const std::string c = canon.string();
    if (c == "/" || under(c, "/tmp") || under(c, "/home") || under(c, "/dev") || under(c, "/proc")) continue;
    if (per_user_ && !reachable_by_others(canon)) continue;
    (fs::is_directory(canon, ec) ? hide_dirs_ : hide_files_).push_back(c);
  }
  std::sort(hide_dirs_.begin(), hide_dirs_.end());
  hide_dirs_.erase(std::unique(hide_dirs_.begin(), hide_dirs_.end()), hide_dirs_.end());

  // The probe: the real arguments (no home) around `true`, as the probe user.
  Command probe;
  probe.argv = launcher(kProbeUid);
  probe.argv.insert(probe.argv.end(), {"--", "true"});
  probe.path = probe.argv[0];
  SubprocessResult r = run_subprocess(probe);
  if (!r.ok()) {
    unavailable("a probe sandbox did not start: " + first_line(r.describe("bwrap")));
    return;
  }

  Command version_cmd;
  version_cmd.path = bwrap_;
  version_cmd.argv = {bwrap_, "--version"};
  const std::string version = run_subprocess(version_cmd).out;
  active_ = true;
  std::string hidden;
  for (const auto& d : hide_dirs_) hidden += (hidden.empty() ? "" : ", ") + d;
  for (const auto& f : hide_files_) hidden += (hidden.empty() ? "" : ", ") + f;
  status_ = "on: " + first_line(version) + "; " +
            (per_user_ ? std::string("each organization's jobs run as its own uid")
                       : std::string("jobs run as this server's uid (not root: no per-organization users)")) +
            "; own pid/ipc/uts/mount namespaces; read-only system, private /tmp, writable " + kJobHome +
            "; only the job's GPU device nodes; covered: /tmp, /home" + (hidden.empty() ? "" : ", " + hidden);
}

bool JobSandbox::open_path_to(const std::string& dir) const {
  std::error_code ec;
  fs::path d = fs::weakly_canonical(fs::absolute(dir, ec), ec).parent_path();
  if (options_.jobs_root.empty() || !under(d.string(), options_.jobs_root)) return false;
  for (; d.string().size() > options_.jobs_root.size(); d = d.parent_path()) {
    struct stat st{};
    if (::lstat(d.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return false;
    if (!(st.st_mode & S_IXOTH) && ::chmod(d.c_str(), (st.st_mode & 07777) | 0111) != 0) return false;
  }
  return true;
}

std::vector<std::string> JobSandbox::base_args(uid_t uid, const std::vector<int>& gpus, int home_fd,
                                               const ImageRoot* image) const {
  std::vector<std::string> a;
  if (per_user_) {  // setpriv execs bwrap as the job's uid
    a = {setpriv_, "--reuid=" + std::to_string(uid), "--regid=" + std::to_string(uid), "--clear-groups",
         "--no-new-privs"};
  }
  a.insert(a.end(), {bwrap_, "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--hostname", "job", "--die-with-parent"});
  if (image) {  // the image's file system; nothing of the host's but the name service files
    a.insert(a.end(), {"--bind", image->path, "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"});
    for (const std::string& f : image->host_files) a.insert(a.end(), {"--ro-bind-try", f, f});
  } else {
    a.insert(a.end(), {"--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", "--tmpfs", "/home"});
    for (const std::string& d : hide_dirs_) a.insert(a.end(), {"--tmpfs", d});
    for (const std::string& f : hide_files_) a.insert(a.end(), {"--ro-bind", "/dev/null", f});
  }
  if (!gpus.empty()) {
    const std::string src = options_.dev_dir;
    for (const char* shared : kGpuControlDevices) {
      a.insert(a.end(), {"--dev-bind-try", src + "/" + shared, std::string("/dev/") + shared});
    }
    for (int g : gpus) {
      const std::string node = "nvidia" + std::to_string(g);
      a.insert(a.end(), {"--dev-bind-try", src + "/" + node, "/dev/" + node});
    }
  }
  if (home_fd >= 0) a.insert(a.end(), {"--bind-fd", std::to_string(home_fd), kJobHome});
  const std::string cwd = image && !image->working_dir.empty() ? image->working_dir : kJobHome;
  if (home_fd >= 0 || image) a.insert(a.end(), {"--chdir", cwd});
  return a;
}

std::vector<std::string> JobSandbox::launcher(uid_t uid) const { return base_args(uid, {}, -1, nullptr); }

bool JobSandbox::give(const std::string& dir, uid_t uid) const {
  if (!open_path_to(dir)) return false;
  if (!per_user_) return true;
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = ::fchown(fd, uid, uid) == 0 && ::fchmod(fd, 0700) == 0;
  ::close(fd);
  return ok;
}

std::vector<std::string> JobSandbox::wrap(uid_t uid, const std::vector<int>& gpus, int home_fd,
                                          const std::string& command, const std::vector<std::string>& args,
                                          const ImageRoot* image) const {
  std::vector<std::string> argv = base_args(uid, gpus, home_fd, image);
  argv.push_back("--");
  if (image) argv.insert(argv.end(), image->entrypoint.begin(), image->entrypoint.end());
  argv.push_back(command);
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

}  // namespace nc::capacity
