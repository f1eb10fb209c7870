// The executor suite on LocalExecutor (two simulated nodes of 4 GPUs), and what only the local executor
// promises: its environment, spec validation, gang rollback, fail-fast, leftovers, destructor, cgroups.
#include "capacity/local_executor.h"
#include "capacity/log_cap.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "capacity/executor_suite.h"
#include "capacity/executor_test_util.h"

namespace nc::capacity {
namespace {

namespace fs = std::filesystem;
using namespace test_util;
std::string test_dir() { return test_util::test_dir("local-executor"); }

const std::vector<std::string> kNodes = {"node-a", "node-b"};

LocalExecutorOptions local_options() {
  LocalExecutorOptions o;
  o.nodes = kNodes;
  o.gpus_per_node = 4;
  return o;
}

testing::ExecutorHarness local_harness() {
  testing::ExecutorHarness h;
  h.name = "local";
  h.make = [] { return std::make_unique<LocalExecutor>(local_options()); };
  h.nodes = kNodes;
  h.gpus_per_node = 4;
  return h;
}







// "pid (comm) state ppid ..." -> state and ppid; false if the process does not exist.
bool proc_state(pid_t pid, char* state, int* ppid) {
  std::string stat = slurp("/proc/" + std::to_string(pid) + "/stat");
  size_t paren = stat.rfind(')');
  return paren != std::string::npos && std::sscanf(stat.c_str() + paren + 1, " %c %d", state, ppid) == 2;
}

// No such process, or a zombie someone else must reap.
bool gone(pid_t pid) {
  char state = '?';
  int ppid = 0;
  if (!proc_state(pid, &state, &ppid)) return true;
  return state == 'Z' && ppid != ::getpid();
}

// This process's children (any state).
std::vector<pid_t> our_children() {
  std::vector<pid_t> out;
  for (const auto& e : fs::directory_iterator("/proc")) {
    std::string name = e.path().filename();
    if (name.empty() || name[0] < '1' || name[0] > '9') continue;
    char state = '?';
    int ppid = 0;
    pid_t pid = std::atoi(name.c_str());
    if (proc_state(pid, &state, &ppid) && ppid == ::getpid()) out.push_back(pid);
  }
  return out;
}

// Polls ex until pred() holds or timeout_s passes; collects reports.
template <typename Pred>
bool poll_until(Executor& ex, std::vector<ExitReport>* reports, Pred pred, double timeout_s = 20) {
  auto t0 = Clock::now();
  for (;;) {
    for (ExitReport& r : ex.poll()) reports->push_back(std::move(r));
    if (pred()) return true;
    if (seconds_since(t0) > timeout_s) return false;
    sleep_ms(20);
  }
}

LaunchSpec sh_job(const std::string& id, const std::string& script, const std::string& dir,
                  std::vector<NodeAssignment> nodes, int tasks_per_node = 1) {
  LaunchSpec s;
  s.job_id = id;
  s.command = "sh";
  s.args = {"-c", script};
  s.working_dir = dir;
  s.log_path = dir + "/" + id + ".log";
  s.nodes = std::move(nodes);
  s.tasks_per_node = tasks_per_node;
  s.grace_period_s = 1;
  return s;
}

NodeAssignment on(const std::string& node, std::vector<int> gpus) {
  NodeAssignment n;
  n.node = node;
  n.gpus = std::move(gpus);
  return n;
}

TEST(LocalExecutor, ExitKindNames) {
  EXPECT_EQ(exit_kind_name(ExitKind::kSucceeded), "succeeded");
  EXPECT_EQ(exit_kind_name(ExitKind::kFailed), "failed");
  EXPECT_EQ(exit_kind_name(ExitKind::kTerminated), "terminated");
  EXPECT_EQ(exit_kind_name(ExitKind::kTimedOut), "timed_out");
  EXPECT_EQ(exit_kind_name(ExitKind::kNodeFailed), "node_failed");
}

TEST(LocalExecutor, EnvironmentIsMinimalAndLocal) {
  std::string dir = test_dir();
  ::setenv("NC_LOCAL_EXECUTOR_TEST_SECRET", "leaked", 1);
  LocalExecutor ex(local_options());
  EXPECT_EQ(ex.name(), "local");
  ASSERT_TRUE(ex.launch(sh_job("envjob", "env > env.out", dir, {on("node-a", {})})).is_ok());
  std::vector<ExitReport> reports;
  ASSERT_TRUE(poll_until(ex, &reports, [&] { return !reports.empty(); }));
  EXPECT_EQ(reports[0].kind, ExitKind::kSucceeded) << reports[0].detail;
  std::map<std::string, std::string> env;
  std::istringstream in(slurp(dir + "/env.out"));
  for (std::string line; std::getline(in, line);) {
    size_t eq = line.find('=');
    if (eq != std::string::npos) env[line.substr(0, eq)] = line.substr(eq + 1);
  }
  EXPECT_EQ(env.count("NC_LOCAL_EXECUTOR_TEST_SECRET"), 0u) << "the executor's environment leaked";
  EXPECT_EQ(env["PATH"], std::getenv("PATH"));
  EXPECT_EQ(env["MASTER_ADDR"], "127.0.0.1");
  EXPECT_EQ(env["MASTER_PORT"], std::to_string(LocalExecutor::master_port("envjob")));
  EXPECT_EQ(env.count("CUDA_VISIBLE_DEVICES"), 1u);
  EXPECT_EQ(env["CUDA_VISIBLE_DEVICES"], "");  // a CPU-only job sees no GPU
  for (const char* id : {"a", "job-1", "some/other:job"}) {
    int port = LocalExecutor::master_port(id);
    EXPECT_GE(port, 20000);
    EXPECT_LE(port, 29999);
    EXPECT_EQ(port, LocalExecutor::master_port(id));
  }
}

TEST(LocalExecutor, RejectsBadSpecsWithoutStartingAnything) {
  std::string dir = test_dir();
  LocalExecutor ex(local_options());
  auto bad = [&](const std::string& why, auto mutate) {
    LaunchSpec s = sh_job("bad-" + why, "exec sleep 1000", dir, {on("node-a", {0})});
    mutate(s);
    Status st = ex.launch(s);
    EXPECT_FALSE(st.is_ok()) << why;
    EXPECT_EQ(ex.running(), 0u) << why;
  };
  bad("unknown-node", [](LaunchSpec& s) { s.nodes[0].node = "node-z"; });
  bad("gpu-out-of-range", [](LaunchSpec& s) { s.nodes[0].gpus = {4}; });
  bad("gpus-unsorted", [](LaunchSpec& s) { s.nodes[0].gpus = {2, 1}; });
  bad("fraction-of-two", [](LaunchSpec& s) { s.nodes[0].gpus = {1, 2}, s.nodes[0].gpu_milli = 500; });
  bad("node-twice", [](LaunchSpec& s) { s.nodes.push_back(s.nodes[0]); });
  bad("no-nodes", [](LaunchSpec& s) { s.nodes.clear(); });
  bad("no-tasks", [](LaunchSpec& s) { s.tasks_per_node = 0; });
  bad("no-working-dir", [&](LaunchSpec& s) { s.working_dir = dir + "/missing"; });
  bad("bad-env", [](LaunchSpec& s) { s.env = {{"A=B", "c"}}; });
  bad("no-command", [](LaunchSpec& s) { s.command = "neocloud-no-such-command-xyz"; });
  bad("empty-id", [](LaunchSpec& s) { s.job_id.clear(); });
  bad("image-without-images", [](LaunchSpec& s) { s.image = "debian:12"; });  // no sandbox here: no images
  EXPECT_FALSE(ex.runs_images());
  EXPECT_TRUE(our_children().empty());
  // A refused launch may be retried.
  ASSERT_TRUE(ex.launch(sh_job("bad-no-tasks", "exit 0", dir, {on("node-a", {0})})).is_ok());
}

TEST(JobImages, ReferencesAreCheckedBeforeAnyCommandSeesThem) {
  for (const char* ok : {"debian:12", "localhost/nc-test:1", "registry.example.com:5000/team/pytorch:2.3-cuda12",
                         "busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}) {
    EXPECT_TRUE(JobImages::check_reference(ok).is_ok()) << ok;
  }
  for (const char* bad : {"", "-rm", "--root=/", "debian 12", "a//b", "debian:", "x/", "a;b", "$(id)", "a\nb"}) {
    Status st = JobImages::check_reference(bad);
    EXPECT_FALSE(st.is_ok()) << bad;
    EXPECT_EQ(st.field(), "image") << bad;
  }
  EXPECT_FALSE(JobImages::check_reference(std::string(256, 'a')).is_ok());
  // Off, or without podman or root: mount refuses and names why.
  JobImages off(ImageOptions{});
  EXPECT_FALSE(off.available());
  EXPECT_EQ(off.mount("nc-x-0", "debian:12").status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(off.sweep(), 0);
}

TEST(LocalExecutor, GangRollbackStopsTheTasksAlreadyStarted) {
  std::string dir = test_dir();
  LocalExecutorOptions o = local_options();
  o.fail_spawn_at = 3;  // the second task of the second node
  LocalExecutor ex(o);
  Status s = ex.launch(sh_job("gang", "sleep 1000 & echo $! >> pids; wait", dir,
                              {on("node-a", {0}), on("node-b", {0})}, 2));
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted) << s.to_string();
  EXPECT_EQ(ex.running(), 0u);
  std::vector<ExitReport> reports;
  // Every process the started tasks (and their children) ran is gone, and reaped.
  EXPECT_TRUE(poll_until(ex, &reports, [] { return our_children().empty(); }, 10));
  std::istringstream in(slurp(dir + "/pids"));
  for (pid_t pid; in >> pid;) EXPECT_TRUE(gone(pid)) << pid;
  EXPECT_TRUE(reports.empty());
  // Not launched, so it may be launched again.
  EXPECT_TRUE(ex.launch(sh_job("gang", "exit 0", dir, {on("node-a", {0})})).is_ok());
}

TEST(LocalExecutor, FailedTaskStopsTheOthers) {
  std::string dir = test_dir();
  LocalExecutor ex(local_options());
  ASSERT_TRUE(ex.launch(sh_job("failfast", "if [ $RANK = 1 ]; then exit 3; fi; exec sleep 1000", dir,
                               {on("node-a", {0}), on("node-b", {0})}, 2)).is_ok());
  std::vector<ExitReport> reports;
  ASSERT_TRUE(poll_until(ex, &reports, [&] { return !reports.empty(); }, 10));
  EXPECT_EQ(reports[0].kind, ExitKind::kFailed);
  EXPECT_EQ(reports[0].exit_code, 3);
  EXPECT_EQ(reports[0].signal, 0);
  EXPECT_EQ(reports[0].detail, "task 1 on node-a exited 3");
}

// A job's log is cut at the cap, with a line saying so, however much the job goes on writing.
TEST(LocalExecutor, LogIsCutAtItsCap) {
  std::string dir = test_dir();
  LocalExecutorOptions o = local_options();
  o.max_log_bytes = 100'000;
  LocalExecutor ex(o);
  // ~3 MB in 1 KB lines over ~1 s, so that polls happen while it writes and after it ends.
  LaunchSpec s = sh_job("chatty", "i=0; while [ $i -lt 3000 ]; do head -c 1023 /dev/zero | tr '\\0' x; echo; "
                                  "i=$((i+1)); done", dir, {on("node-a", {0})});
  ASSERT_TRUE(ex.launch(s).is_ok());
  std::vector<ExitReport> reports;
  ASSERT_TRUE(poll_until(ex, &reports, [&] { return !reports.empty(); }, 60));
  EXPECT_EQ(reports[0].kind, ExitKind::kSucceeded) << reports[0].detail;
  const std::string log = slurp(s.log_path);
  const std::string note = log_cap_note(100'000);
  EXPECT_EQ(log.size(), 100'000 + note.size());
  EXPECT_TRUE(log.ends_with(note)) << log.substr(log.size() - std::min<size_t>(log.size(), 200));
  EXPECT_EQ(log.substr(0, 1024), std::string(1023, 'x') + "\n");
}

TEST(LocalExecutor, ProcessesLeftBehindAreKilledAtTheEnd) {
  std::string dir = test_dir();
  LocalExecutor ex(local_options());
  ASSERT_TRUE(ex.launch(sh_job("leftover", "sleep 1000 & echo $! > child.pid; exit 0", dir, {on("node-a", {})})).is_ok());
  std::vector<ExitReport> reports;
  ASSERT_TRUE(poll_until(ex, &reports, [&] { return !reports.empty(); }));
  EXPECT_EQ(reports[0].kind, ExitKind::kSucceeded);
  pid_t child = read_pid(dir + "/child.pid");
  ASSERT_GT(child, 0);
  EXPECT_TRUE(poll_until(ex, &reports, [&] { return gone(child); }));
  EXPECT_TRUE(poll_until(ex, &reports, [] { return our_children().empty(); }));
}

TEST(LocalExecutor, DestructorKillsAndReapsEverything) {
  std::string dir = test_dir();
  auto ex = std::make_unique<LocalExecutor>(local_options());
  ASSERT_TRUE(ex->launch(sh_job("dtor", "sleep 1000 & echo $! > child.pid; echo $$ > parent.pid; wait", dir,
                                {on("node-a", {0}), on("node-b", {1})})).is_ok());
  ASSERT_TRUE(ex->launch(sh_job("dtor2", "exec sleep 1000", dir, {on("node-a", {2})}, 3)).is_ok());
  ASSERT_TRUE(wait_file(dir + "/child.pid") && wait_file(dir + "/parent.pid"));
  pid_t child = read_pid(dir + "/child.pid"), parent = read_pid(dir + "/parent.pid");
  auto t0 = Clock::now();
  ex.reset();
  EXPECT_LT(seconds_since(t0), 5);
  EXPECT_TRUE(gone(child));
  EXPECT_TRUE(gone(parent));
  EXPECT_TRUE(our_children().empty());
}

// After a crash a new executor does not own the old one's processes: kill_leftover finds them by the
// segment's NEOCLOUD_JOB_ID / NEOCLOUD_SEGMENT and kills them (children included), and nothing else.
TEST(LocalExecutor, KillLeftoverStopsAnotherExecutorsSegment) {
  std::string dir = test_dir();
  LocalExecutor old_one(local_options());
  ASSERT_TRUE(old_one.launch(sh_job("orphan", "sleep 1000 & echo $! > child.pid; echo $$ > parent.pid; wait", dir,
                                    {on("node-a", {0})})).is_ok());
  ASSERT_TRUE(old_one.launch(sh_job("bystander", "echo $$ > other.pid; exec sleep 1000", dir, {on("node-a", {1})})).is_ok());
  ASSERT_TRUE(wait_file(dir + "/child.pid") && wait_file(dir + "/parent.pid") && wait_file(dir + "/other.pid"));
  const pid_t child = read_pid(dir + "/child.pid"), parent = read_pid(dir + "/parent.pid");
  const pid_t other = read_pid(dir + "/other.pid");
  LocalExecutor new_one(local_options());
  ASSERT_TRUE(new_one.kill_leftover("orphan", 1).is_ok());  // another segment: nothing to do
  EXPECT_FALSE(gone(parent));
  ASSERT_TRUE(new_one.kill_leftover("orphan", 0).is_ok());
  std::vector<ExitReport> reports;
  ASSERT_TRUE(poll_until(old_one, &reports, [&] { return !reports.empty(); }));
  // Killed; the orphaned child is reaped by a later poll of the executor that is its subreaper.
  EXPECT_TRUE(poll_until(old_one, &reports, [&] { return gone(child) && gone(parent); }));
  EXPECT_FALSE(gone(other));
  ASSERT_TRUE(old_one.terminate("bystander", 0, 0).is_ok());
}

TEST(LocalExecutor, TerminateWithoutGraceKillsAtOnce) {
  std::string dir = test_dir();
  LocalExecutor ex(local_options());
  ASSERT_TRUE(ex.launch(sh_job("nograce", "trap '' TERM; echo ready > ready; while :; do sleep 0.2; done", dir,
                               {on("node-a", {0})})).is_ok());
  ASSERT_TRUE(wait_file(dir + "/ready"));
  auto t0 = Clock::now();
  ASSERT_TRUE(ex.terminate("nograce", 0, 0).is_ok());
  std::vector<ExitReport> reports;
  ASSERT_TRUE(poll_until(ex, &reports, [&] { return !reports.empty(); }));
  EXPECT_LT(seconds_since(t0), 1.0);
  EXPECT_EQ(reports[0].kind, ExitKind::kTerminated);
  EXPECT_EQ(reports[0].signal, SIGKILL);
}

// The cgroup v2 mount, if this machine has one we may write (hybrid hosts mount it under unified/).
std::string writable_cgroup2_mount() {
  std::istringstream in(slurp("/proc/mounts"));
  for (std::string line; std::getline(in, line);) {
    std::istringstream f(line);
    std::string dev, dir, type;
    f >> dev >> dir >> type;
    if (type == "cgroup2" && ::access(dir.c_str(), W_OK) == 0) return dir;
  }
  return "";
}

TEST(LocalExecutor, CgroupStatusIsReported) {
  LocalExecutor ex(local_options());
  std::printf("cgroups with default options: %s\n", ex.cgroup_status().c_str());
  EXPECT_EQ(ex.cgroups_active(), ex.cgroup_status().rfind("on:", 0) == 0) << ex.cgroup_status();
  LocalExecutorOptions off = local_options();
  off.use_cgroups = false;
  EXPECT_FALSE(LocalExecutor(off).cgroups_active());
  LocalExecutorOptions tmpfs = local_options();
  tmpfs.cgroup_parent = "/tmp";
  EXPECT_FALSE(LocalExecutor(tmpfs).cgroups_active());
}

// With a cgroup, even a process that left the job's session (setsid) is stopped.
TEST(LocalExecutor, CgroupCatchesProcessesThatLeftTheSession) {
  std::string mount = writable_cgroup2_mount();
  if (mount.empty()) GTEST_SKIP() << "no writable cgroup2 mount on this machine";
  std::string parent = mount + "/nc-executor-test-" + std::to_string(::getpid());
  ASSERT_TRUE(::mkdir(parent.c_str(), 0755) == 0 || errno == EEXIST) << parent;
  std::string dir = test_dir();
  {
    LocalExecutorOptions o = local_options();
    o.cgroup_parent = parent;
    LocalExecutor ex(o);
    ASSERT_TRUE(ex.cgroups_active()) << ex.cgroup_status();
    std::printf("%s\n", ex.cgroup_status().c_str());
    if (ex.cgroup_status().find("moved in after") != std::string::npos) {
      ::rmdir(parent.c_str());
      GTEST_SKIP() << "without clone3 a child forked before the move escapes: " << ex.cgroup_status();
    }
    ASSERT_TRUE(ex.launch(sh_job("escape", "setsid sh -c 'echo $$ > escaped.pid; exec sleep 1000' & wait; sleep 1000",
                                 dir, {on("node-a", {0})})).is_ok());
    ASSERT_TRUE(wait_file(dir + "/escaped.pid"));
    pid_t escaped = read_pid(dir + "/escaped.pid");
    EXPECT_NE(slurp("/proc/" + std::to_string(escaped) + "/cgroup").find("nc-escape-s0-n0"), std::string::npos);
    ASSERT_TRUE(ex.terminate("escape", 0, 1).is_ok());
    std::vector<ExitReport> reports;
    ASSERT_TRUE(poll_until(ex, &reports, [&] { return !reports.empty(); }));
    EXPECT_EQ(reports[0].kind, ExitKind::kTerminated);
    EXPECT_TRUE(poll_until(ex, &reports, [&] { return gone(escaped); })) << "the escaped process survived";
    EXPECT_TRUE(poll_until(ex, &reports, [] { return our_children().empty(); }));
    // The job's cgroup is removed once empty.
    auto no_child_cgroup = [&] {
      for (const auto& e : fs::directory_iterator(parent)) {
        if (e.is_directory()) return false;
      }
      return true;
    };
    EXPECT_TRUE(poll_until(ex, &reports, no_child_cgroup, 5));
  }
  ::rmdir(parent.c_str());
}

// Where the host has cgroup v1 only (as these test machines do): each node of a job is in its own
// cgroup in every writable hierarchy, born there, so a setsid escape is still caught; pids.max stops a
// fork bomb, memory.limit_in_bytes an allocation beyond the job's memory, and the devices rules every
// device node but the common ones and the job's GPUs.
TEST(LocalExecutor, CgroupV1LimitsAndCatchesAJob) {
  LocalExecutorOptions o = local_options();
  o.pids_max = 32;
  LocalExecutor ex(o);
  if (ex.cgroup_status().find("cgroup v1") == std::string::npos) {
    GTEST_SKIP() << "this machine's cgroups are not v1: " << ex.cgroup_status();
  }
  std::printf("%s\n", ex.cgroup_status().c_str());
  std::string dir = test_dir();
  NodeAssignment node = on("node-a", {0});
  node.memory_mib = 64;
  const std::string script =
      "setsid sh -c 'echo $$ > escaped.pid; exec sleep 1000' & "
      // 200 MiB in a 64 MiB cgroup: the allocating process is killed.
      "python3 -c 'x = bytearray(200 << 20); print(\"allocated\")' > alloc.out 2>&1; echo alloc_rc=$? >> alloc.out; "
      // /dev/kmsg (c 1:11) is no common device: the devices cgroup refuses it, even to root.
      "head -c 1 /dev/kmsg > /dev/null 2> kmsg.err; echo kmsg_rc=$? >> kmsg.err; "
      // 60 sleeps in a cgroup that allows 32 processes: forks fail (then only builtins, which need none).
      "sh -c 'i=0; while [ $i -lt 60 ]; do sleep 30 & i=$((i+1)); done'; echo bomb_rc=$? > bomb.out; "
      "echo done > done.flag; wait";
  ASSERT_TRUE(ex.launch(sh_job("v1job", script, dir, {node})).is_ok());
  std::vector<ExitReport> reports;
  ASSERT_TRUE(poll_until(ex, &reports, [&] { return fs::exists(dir + "/done.flag"); }, 60)) << slurp(dir + "/v1job.log");
  pid_t escaped = read_pid(dir + "/escaped.pid");
  const std::string cg = slurp("/proc/" + std::to_string(escaped) + "/cgroup");
  EXPECT_NE(cg.find("pids:/"), std::string::npos);
  EXPECT_NE(cg.find("nc-v1job-s0-n0"), std::string::npos) << cg;
  EXPECT_NE(slurp(dir + "/v1job.log").find("fork"), std::string::npos)
      << "no fork failed under pids.max 32: " << slurp(dir + "/v1job.log");
  EXPECT_EQ(slurp(dir + "/bomb.out").find("bomb_rc=0"), std::string::npos) << slurp(dir + "/bomb.out");
  EXPECT_EQ(slurp(dir + "/alloc.out").find("allocated"), std::string::npos) << slurp(dir + "/alloc.out");
  EXPECT_EQ(slurp(dir + "/kmsg.err").find("kmsg_rc=0"), std::string::npos) << slurp(dir + "/kmsg.err");
  ASSERT_TRUE(ex.terminate("v1job", 0, 1).is_ok());
  ASSERT_TRUE(poll_until(ex, &reports, [&] { return !reports.empty(); }));
  EXPECT_TRUE(poll_until(ex, &reports, [&] { return gone(escaped); })) << "the escaped process survived";
}

}  // namespace
}  // namespace nc::capacity

namespace nc::capacity::testing {
INSTANTIATE_TEST_SUITE_P(Local, ExecutorSuite, ::testing::Values(local_harness()),
                         [](const auto& info) { return info.param.name; });
}  // namespace nc::capacity::testing
