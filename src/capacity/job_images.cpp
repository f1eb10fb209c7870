// JobImages (job_images.h): podman's containers as jobs' root file systems.
#include "capacity/job_images.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "capacity/subprocess.h"

namespace nc::capacity {
namespace {

namespace fs = std::filesystem;

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  return s;
}

// A directory `name` in the directory open as `at`, made by us (root) when missing; never through a
// symbolic link (an image's /home -> /root must not make us write on the host). Returns its fd or -1.
int ensure_dir_at(int at, const char* name) {
  struct stat st{};
  if (::fstatat(at, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno != ENOENT || ::mkdirat(at, name, 0755) != 0) return -1;
    ::fchmodat(at, name, 0755, 0);  // the server's umask (077) would close it to the job's user
  } else if (!S_ISDIR(st.st_mode)) {
    errno = ENOTDIR;
    return -1;
  }
  return ::openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

// A regular file `name` in `at` (created empty when missing). false when it is anything else (a link).
bool ensure_file_at(int at, const char* name) {
  int fd = ::openat(at, name, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  struct stat st{};
  const bool ok = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (st.st_size > 0 || ::fchmod(fd, 0644) == 0);
  ::close(fd);
  return ok;
}

}  // namespace

JobImages::JobImages(ImageOptions options) : options_(std::move(options)) {
  if (!options_.use) {
    status_ = "off (container images not enabled)";
    return;
  }
  podman_ = find_executable("podman");
  if (podman_.empty()) {
    status_ = "off (podman is not installed: apt-get install podman)";
    return;
  }
  if (::geteuid() != 0) {
    status_ = "off (mounting an image's file system needs a server running as root)";
    return;
  }
  std::error_code ec;
  fs::path dir = fs::weakly_canonical(fs::absolute(options_.dir, ec), ec);
  options_.dir = dir.string();
  // podman's run root must be a short path (under 50 characters): one per storage, named by its hash.
  uint64_t h = 1469598103934665603ULL;  // FNV-1a
  for (unsigned char c : options_.dir) h = (h ^ c) * 1099511628211ULL;
  const fs::path run_parent = fs::is_directory("/run", ec) ? "/run/neocloud-images" : "/tmp/neocloud-images";
  run_root_ = (run_parent / fmt::format("{:016x}", h)).string();
  for (const fs::path& d : {dir, dir / "storage", run_parent, fs::path(run_root_)}) {
    if (::mkdir(d.c_str(), d.string().rfind(options_.dir, 0) == 0 ? 0711 : 0700) != 0 && errno != EEXIST) {
      status_ = fmt::format("off (cannot create {}: {})", d.string(), std::strerror(errno));
      return;
    }
  }
  SubprocessResult r = podman({"info", "--format", "{{.Version.Version}} {{.Store.GraphDriverName}}"}, 60'000);
  if (!r.ok()) {
    status_ = "off (podman does not work here: " + first_line(r.describe("podman info")) + ")";
    return;
  }
  std::istringstream words(r.out);
  std::string version, driver;
  words >> version >> driver;
  available_ = true;
  status_ = fmt::format("on: podman {} ({} storage in {}); a job's image is its root file system, in the same sandbox; "
                        "add an image with: {}",
                        version, driver, options_.dir, pull_hint("IMAGE"));
}

SubprocessResult JobImages::podman(const std::vector<std::string>& args, int timeout_ms) const {
  Command c;
  c.argv = {podman_,          "--root",   options_.dir + "/storage", "--runroot", run_root_, "--cgroup-manager",
            "cgroupfs",       "--events-backend", "none",                    "--log-level", "error"};
  c.argv.insert(c.argv.end(), args.begin(), args.end());
  c.path = podman_;
  c.timeout_ms = timeout_ms;
  return run_subprocess(c);
}

std::string JobImages::pull_hint(const std::string& image) const {
  return fmt::format("podman --root {}/storage --runroot {} pull {}", options_.dir, run_root_, image);
}

Status JobImages::check_reference(std::string_view image) {
  auto bad = [&](const std::string& why) { return invalid_argument("image: " + why).with_field("image"); };
  if (image.empty() || image.size() > 255) return bad("a reference of 1 to 255 bytes");
  if (!std::isalnum(static_cast<unsigned char>(image[0]))) return bad("must start with a letter or digit");
  for (char c : image) {
    const bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' || c == '/' ||
                    c == ':' || c == '@';
    if (!ok) return bad("only letters, digits and . _ - / : @ (registry/path:tag or @sha256:digest)");
  }
  if (image.find("//") != std::string_view::npos || image.back() == '/' || image.back() == ':')
    return bad("not a reference (registry/path:tag)");
  return Status::ok();
}

Result<ImageRoot> JobImages::mount(const std::string& name, const std::string& image) const {
  if (!available_) return failed_precondition("container images are " + status_);
  NC_RETURN_IF_ERROR(check_reference(image));
  SubprocessResult r = podman({"image", "inspect", "--format", "{{json .Config}}", image});
  if (!r.ok()) {
    if (r.exited() && (r.err.find("no such image") != std::string::npos || r.err.find("not known") != std::string::npos ||
                       r.err.find("unable to find") != std::string::npos)) {
      return not_found(fmt::format("image '{}' is not on this machine (an operator adds it with: {})", image,
                                   pull_hint(image)));
    }
    return unavailable(first_line(r.describe("podman image inspect")));
  }
  ImageRoot root;
  root.container = name;
  nlohmann::json config = nlohmann::json::parse(r.out, nullptr, false);
  if (config.is_object()) {
    if (config.contains("Env") && config["Env"].is_array()) {
      for (const auto& e : config["Env"]) {
        if (!e.is_string()) continue;
        const std::string kv = e.get<std::string>();
        const size_t eq = kv.find('=');
        if (eq != std::string::npos && eq > 0) root.env.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
      }
    }
    if (config.contains("Entrypoint") && config["Entrypoint"].is_array()) {
      for (const auto& a : config["Entrypoint"]) {
        if (a.is_string()) root.entrypoint.push_back(a.get<std::string>());
      }
    }
    if (config.contains("WorkingDir") && config["WorkingDir"].is_string()) root.working_dir = config["WorkingDir"];
  }
  // The container is never started: the command given is only what `create` requires.
  r = podman({"create", "--pull", "never", "--replace", "--name", name, "--label", "neocloud.images=" + options_.dir,
              "--entrypoint", "", image, "/nonexistent"});
  if (!r.ok()) return unavailable(first_line(r.describe("podman create " + image)));
  r = podman({"mount", name});
  if (!r.ok()) {
    release(name);
    return unavailable(first_line(r.describe("podman mount " + name)));
  }
  root.path = trimmed(r.out);
  // Passable (o+x) from the storage down to the root, for the job's user: listing stays root's.
  fs::path p = fs::path(root.path);
  if (p.string().rfind(options_.dir + "/", 0) != 0) {
    release(name);
    return internal_error("podman mounted " + root.path + ", outside " + options_.dir);
  }
  for (fs::path d = p.parent_path(); d.string().size() >= options_.dir.size(); d = d.parent_path()) {
    struct stat st{};
    if (::lstat(d.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || ::chmod(d.c_str(), (st.st_mode & 07777) | 0111) != 0) {
      release(name);
      return internal_error("cannot make " + d.string() + " passable for the job's user");
    }
    if (d.string().size() == options_.dir.size()) break;
  }
  // What the sandbox mounts on must exist in the image (the job's user could not create it there).
  int rootfd = ::open(root.path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  bool ok = rootfd >= 0;
  for (const char* d : {"tmp", "dev", "proc"}) {
    int fd = ok ? ensure_dir_at(rootfd, d) : -1;
    ok = ok && fd >= 0;
    if (fd >= 0) ::close(fd);
  }
  int home = ok ? ensure_dir_at(rootfd, "home") : -1;
  int job = home >= 0 ? ensure_dir_at(home, "job") : -1;
  ok = ok && job >= 0;
  int etc = ok ? ensure_dir_at(rootfd, "etc") : -1;
  if (etc >= 0) {
    for (const char* f : {"resolv.conf", "hosts"}) {
      if (ensure_file_at(etc, f)) root.host_files.push_back(std::string("/etc/") + f);
    }
  }
  for (int fd : {job, home, etc, rootfd}) {
    if (fd >= 0) ::close(fd);
  }
  if (!ok) {
    release(name);
    return failed_precondition(fmt::format("image '{}' cannot be a job's root: its /tmp, /dev, /proc or /home/job is "
                                           "not a directory",
                                           image));
  }
  return root;
}

void JobImages::release(const std::string& name) const {
  if (!available_) return;
  podman({"rm", "--force", "--time", "0", "--ignore", name}, 60'000);
}

int JobImages::sweep() const {
  if (!available_) return 0;
  SubprocessResult r = podman({"ps", "--all", "--quiet", "--filter", "label=neocloud.images=" + options_.dir}, 60'000);
  if (!r.ok()) return 0;
  std::istringstream in(r.out);
  int n = 0;
  for (std::string id; in >> id;) {
    release(id);
    ++n;
  }
  return n;
}

}  // namespace nc::capacity
