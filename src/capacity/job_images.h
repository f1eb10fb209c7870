// JobImages: a job's own root file system from an OCI container image, for the job sandbox
// (job_sandbox.h). Images are podman's: podman keeps them (pulled by the operator, or imported), and for
// each run of a job podman creates a container from the image and mounts its file system (the image's
// layers under a writable layer of the container's own). The job then runs in the same bubblewrap sandbox
// as any job, with that file system as its `/` instead of the host's — the unprivileged-runtime model
// of enroot/pyxis and Apptainer: no container daemon and no second confinement to keep in step, the
// same uid, namespaces, cgroups, GPU devices and signals as every other job. The image's configuration
// applies as Docker's does: its Env under the job's, its Entrypoint before the job's command (which
// replaces the image's Cmd), its WorkingDir as the job's working directory (else /home/job).
//
// Storage: podman's --root is `dir`/storage (options; the server keeps it inside the jobs directory,
// which every job has covered); its --runroot, which podman wants short, /run/neocloud-images/<hash of dir>. The containers are labelled with `dir` and named
// nc-<job>-<segment>; sweep() removes every one a crashed server left. The directories from `dir` down to
// a mounted root are made passable (o+x, nothing listable) so that the job's user can reach its root;
// a job sees only its own (other jobs' are under the covered jobs directory).
//
// Images are used only as they are stored: nothing is pulled at launch (a pull blocks and may not be
// wanted on the fleet); an image that is not there fails the launch with the command that adds it.
//
// Ownership: a value holding only paths; containers it creates are released by release() or sweep().
// Threads: const methods may be called from any thread; each call runs podman and waits for it (up to
// a deadline).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "capacity/subprocess.h"
#include "core/status.h"

namespace nc::capacity {

struct ImageOptions {
  bool use = false;
  std::string dir;  // podman's storage lives in dir/storage (created 0711)
};

// A mounted container: the root file system of one job run, and the image's configuration.
struct ImageRoot {
  std::string container;  // podman's name for it (nc-<job>-<segment>)
  std::string path;       // the mounted root file system
  std::vector<std::pair<std::string, std::string>> env;  // the image's Env, in order
  std::vector<std::string> entrypoint;
  std::string working_dir;  // "" when the image sets none
  std::vector<std::string> host_files;  // of /etc/resolv.conf and /etc/hosts, those the host's may cover
};

class JobImages {
 public:
  explicit JobImages(ImageOptions options);

  bool available() const { return available_; }
  // One line for the operator: where images come from, or "off (<why>)".
  const std::string& status() const { return status_; }

  // Creates and mounts the container `name` from `image` (prepared for the sandbox: /tmp, /home/job,
  // /dev, /proc, /etc/resolv.conf and /etc/hosts exist in it). NotFound naming the image when it is not
  // stored here; FailedPrecondition when images are off.
  Result<ImageRoot> mount(const std::string& name, const std::string& image) const;
  // Unmounts and removes the container (nothing if it does not exist).
  void release(const std::string& name) const;
  // Removes every container of this storage (a crashed server's): how many.
  int sweep() const;

  // An image reference's syntax ([registry[:port]/]path[:tag][@sha256:digest], at most 255 bytes, no
  // leading '-'): InvalidArgument naming the field "image".
  static Status check_reference(std::string_view image);
  // The command an operator runs to add an image to this storage.
  std::string pull_hint(const std::string& image) const;

 private:
  // Runs podman on this storage with `args`, killed after timeout_ms (image commands of a launch get
  // 2 minutes: storage locks may make one wait for another).
  SubprocessResult podman(const std::vector<std::string>& args, int timeout_ms = 120'000) const;

  ImageOptions options_;
  std::string podman_;
  std::string run_root_;  // podman's --runroot: /run/neocloud-images/<hash of dir> (it must be short)
  bool available_ = false;
  std::string status_;
};

}  // namespace nc::capacity
