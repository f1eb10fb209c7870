// The executor job suite (executor_suite.h): every test runs `sh -c '...'` jobs on GetParam()'s backend
// and checks the Executor contract (executor.h) from the outside: environment, ranks, gang launch,
// stopping whole process trees, grace periods, timeouts, exit kinds, logs, exactly-once reports.
// Backends differ in speed (Slurm polls squeue/sacct), so waits poll against generous deadlines.
#include "capacity/executor_suite.h"
#include "capacity/executor_test_util.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

namespace nc::capacity::testing {
namespace {

namespace fs = std::filesystem;

int64_t unix_us_now() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}


using namespace test_util;
std::string test_dir() { return test_util::test_dir("executor"); }

std::string job_id(const std::string& tag) {
  static std::atomic<int> n{0};
  return "t" + std::to_string(::getpid()) + "-" + tag + "-" + std::to_string(n++);
}


std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}




// Gone: no such process, or a zombie someone else must reap (one of ours would be a leak).
bool process_gone(pid_t pid) {
  if (::kill(pid, 0) != 0 && errno == ESRCH) return true;
  std::string stat = slurp("/proc/" + std::to_string(pid) + "/stat");
  size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return true;
  char state = '?';
  int ppid = 0;
  if (std::sscanf(stat.c_str() + paren + 1, " %c %d", &state, &ppid) != 2) return false;
  return state == 'Z' && ppid != ::getpid();
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
  s.grace_period_s = 5;
  return s;
}

NodeAssignment on(const std::string& node, std::vector<int> gpus, int32_t gpu_milli = 1000) {
  NodeAssignment n;
  n.node = node;
  n.gpus = std::move(gpus);
  n.gpu_milli = gpu_milli;
  return n;
}

// Polls an executor, keeping every report and failing the test on a segment reported twice.
class Reports {
 public:
  explicit Reports(Executor* ex) : ex_(ex) {}

  void poll() {
    for (ExitReport& r : ex_->poll()) {
      if (!seen_.insert({r.job_id, r.segment}).second) {
        ADD_FAILURE() << r.job_id << " segment " << r.segment << " reported twice";
      }
      all_.push_back(std::move(r));
    }
  }

  // The report of job_id/segment, polling until it comes or timeout_s passes.
  std::optional<ExitReport> wait(const std::string& job_id, int segment = 0, double timeout_s = 30) {
    auto t0 = Clock::now();
    for (;;) {
      poll();
      for (const ExitReport& r : all_) {
        if (r.job_id == job_id && r.segment == segment) return r;
      }
      if (seconds_since(t0) > timeout_s) return std::nullopt;
      sleep_ms(50);
    }
  }

  // Polls while waiting for every pid to be gone.
  bool wait_gone(const std::vector<pid_t>& pids, double timeout_s = 15) {
    auto t0 = Clock::now();
    for (;;) {
      poll();
      if (std::all_of(pids.begin(), pids.end(), process_gone)) return true;
      if (seconds_since(t0) > timeout_s) return false;
      sleep_ms(50);
    }
  }

  size_t count() const { return all_.size(); }

 private:
  Executor* ex_;
  std::vector<ExitReport> all_;
  std::set<std::pair<std::string, int>> seen_;
};

std::string describe(const ExitReport& r) {
  return std::string(exit_kind_name(r.kind)) + " exit_code=" + std::to_string(r.exit_code) +
         " signal=" + std::to_string(r.signal) + " (" + r.detail + ")";
}

}  // namespace

// The harness's executor, a Reports poller on it and a fresh directory; fails (or skips, where the
// harness allows) when the backend is unavailable here.
#define EXECUTOR_SUITE_SETUP()                                                      \
  const ExecutorHarness& h = GetParam();                                            \
  if (h.unavailable) {                                                              \
    std::string why = h.unavailable();                                              \
    if (!why.empty() && h.allow_skip) GTEST_SKIP() << h.name << ": " << why;       \
    ASSERT_TRUE(why.empty()) << h.name << " is unavailable: " << why;               \
  }                                                                                 \
  ASSERT_FALSE(h.nodes.empty());                                                    \
  std::unique_ptr<Executor> ex = h.make();                                          \
  ASSERT_NE(ex, nullptr);                                                           \
  Reports reports(ex.get());                                                        \
  const std::string dir = test_dir()

TEST_P(ExecutorSuite, TwoGpuJobSeesExactlyItsGpusAndRanks) {
  EXECUTOR_SUITE_SETUP();
  ASSERT_GE(h.gpus_per_node, 3) << "the suite needs GPUs 1 and 2 on a node";
  std::string id = job_id("gpus");
  ASSERT_TRUE(ex->launch(sh_job(id, "env > env.$RANK.tmp && mv env.$RANK.tmp env.$RANK", dir,
                                {on(h.nodes[0], {1, 2})}, 2)).is_ok());
  EXPECT_EQ(ex->running(), 1u);
  auto r = reports.wait(id);
  ASSERT_TRUE(r) << "no report within the deadline";
  EXPECT_EQ(r->kind, ExitKind::kSucceeded) << describe(*r);
  std::string port;
  for (int rank = 0; rank < 2; ++rank) {
    SCOPED_TRACE("rank " + std::to_string(rank));
    auto env = read_env(dir + "/env." + std::to_string(rank));
    EXPECT_EQ(env["CUDA_VISIBLE_DEVICES"], "1,2");
    EXPECT_EQ(env["NVIDIA_VISIBLE_DEVICES"], "1,2");
    EXPECT_EQ(env.count("NEOCLOUD_GPU_MILLI"), 0u);
    EXPECT_EQ(env["WORLD_SIZE"], "2");
    EXPECT_EQ(env["RANK"], std::to_string(rank));
    EXPECT_EQ(env["LOCAL_RANK"], std::to_string(rank));
    EXPECT_EQ(env["LOCAL_WORLD_SIZE"], "2");
    EXPECT_EQ(env["NODE_RANK"], "0");
    EXPECT_EQ(env["NNODES"], "1");
    EXPECT_EQ(env["NEOCLOUD_JOB_ID"], id);
    EXPECT_EQ(env["NEOCLOUD_SEGMENT"], "0");
    EXPECT_FALSE(env["MASTER_ADDR"].empty());
    int p = std::atoi(env["MASTER_PORT"].c_str());
    EXPECT_TRUE(p > 1024 && p < 65536) << env["MASTER_PORT"];
    if (rank == 0) port = env["MASTER_PORT"];
    EXPECT_EQ(env["MASTER_PORT"], port);
  }
  EXPECT_EQ(ex->running(), 0u);
}

TEST_P(ExecutorSuite, ConcurrentJobsWithDisjointGpusEachSeeTheirOwn) {
  EXECUTOR_SUITE_SETUP();
  ASSERT_GE(h.gpus_per_node, 4) << "the suite needs 4 GPUs on a node";
  // Each job waits for the other's marker: both succeed only if they ran at the same time.
  auto script = [](const std::string& me, const std::string& other) {
    return "env > env." + me + ".tmp && mv env." + me + ".tmp env." + me + "; touch " + me +
           ".ready; i=0; while [ ! -e " + other + ".ready ]; do i=$((i+1)); [ $i -gt 300 ] && exit 9; sleep 0.1; done";
  };
  std::string a = job_id("a"), b = job_id("b");
  ASSERT_TRUE(ex->launch(sh_job(a, script("a", "b"), dir, {on(h.nodes[0], {0, 1})})).is_ok());
  ASSERT_TRUE(ex->launch(sh_job(b, script("b", "a"), dir, {on(h.nodes[0], {2, 3})})).is_ok());
  EXPECT_EQ(ex->running(), 2u);
  auto ra = reports.wait(a, 0, 60);
  auto rb = reports.wait(b, 0, 60);
  ASSERT_TRUE(ra && rb);
  EXPECT_EQ(ra->kind, ExitKind::kSucceeded) << describe(*ra);
  EXPECT_EQ(rb->kind, ExitKind::kSucceeded) << describe(*rb);
  EXPECT_EQ(read_env(dir + "/env.a")["CUDA_VISIBLE_DEVICES"], "0,1");
  EXPECT_EQ(read_env(dir + "/env.b")["CUDA_VISIBLE_DEVICES"], "2,3");
  EXPECT_EQ(read_env(dir + "/env.b")["NVIDIA_VISIBLE_DEVICES"], "2,3");
}

TEST_P(ExecutorSuite, MultiNodeJobHasEveryRankOnce) {
  EXECUTOR_SUITE_SETUP();
  ASSERT_GE(h.gpus_per_node, 4);
  // Two nodes x 2 tasks where the harness has two nodes (Slurm's test cluster has one: 1 x 2).
  const int nnodes = h.nodes.size() >= 2 ? 2 : 1, tpn = 2, world = nnodes * tpn;
  std::vector<NodeAssignment> nodes = {on(h.nodes[0], {0, 1})};
  if (nnodes == 2) nodes.push_back(on(h.nodes[1], {2, 3}));
  std::string id = job_id("multi");
  ASSERT_TRUE(ex->launch(sh_job(id, "echo $RANK >> ranks; env > env.$RANK.tmp && mv env.$RANK.tmp env.$RANK",
                                dir, nodes, tpn)).is_ok());
  auto r = reports.wait(id);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->kind, ExitKind::kSucceeded) << describe(*r);
  std::vector<std::string> ranks = lines_of(slurp(dir + "/ranks"));
  std::sort(ranks.begin(), ranks.end());
  std::vector<std::string> expected;
  for (int i = 0; i < world; ++i) expected.push_back(std::to_string(i));
  EXPECT_EQ(ranks, expected) << "every rank exactly once";
  auto env0 = read_env(dir + "/env.0");
  for (int rank = 0; rank < world; ++rank) {
    SCOPED_TRACE("rank " + std::to_string(rank));
    auto env = read_env(dir + "/env." + std::to_string(rank));
    int node_rank = rank / tpn;
    EXPECT_EQ(env["WORLD_SIZE"], std::to_string(world));
    EXPECT_EQ(env["RANK"], std::to_string(rank));
    EXPECT_EQ(env["NODE_RANK"], std::to_string(node_rank));
    EXPECT_EQ(env["LOCAL_RANK"], std::to_string(rank % tpn));
    EXPECT_EQ(env["LOCAL_WORLD_SIZE"], std::to_string(tpn));
    EXPECT_EQ(env["NNODES"], std::to_string(nnodes));
    EXPECT_EQ(env["CUDA_VISIBLE_DEVICES"], node_rank == 0 ? "0,1" : "2,3");
    EXPECT_EQ(env["MASTER_ADDR"], env0["MASTER_ADDR"]);
    EXPECT_EQ(env["MASTER_PORT"], env0["MASTER_PORT"]);
  }
}

TEST_P(ExecutorSuite, GangLaunchFailureLeavesNothingRunning) {
  EXECUTOR_SUITE_SETUP();
  // A second node that does not exist: the launch fails as a whole.
  std::string id = job_id("badnode");
  Status s = ex->launch(sh_job(id, "echo $$ >> pids; exec sleep 1000", dir,
                               {on(h.nodes[0], {0}), on("no-such-node-" + std::to_string(::getpid()), {0})}));
  EXPECT_FALSE(s.is_ok());
  EXPECT_EQ(ex->running(), 0u);
  // A command that does not exist: refused at launch, or (a backend that only finds out when the task
  // runs) reported as failed; either way nothing is left running.
  std::string id2 = job_id("badcmd");
  LaunchSpec bad = sh_job(id2, "", dir, {on(h.nodes[0], {0})});
  bad.command = "/nonexistent/neocloud-no-such-command";
  bad.args = {};
  size_t expected_reports = 0;
  if (ex->launch(bad).is_ok()) {
    expected_reports = 1;
    auto r = reports.wait(id2);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->kind, ExitKind::kFailed) << describe(*r);
  }
  EXPECT_EQ(ex->running(), 0u);
  // Nothing of the first job may survive (if any task started at all).
  auto t0 = Clock::now();
  while (seconds_since(t0) < 1) {
    reports.poll();
    sleep_ms(50);
  }
  std::vector<pid_t> pids;
  for (const std::string& l : lines_of(slurp(dir + "/pids"))) pids.push_back(std::atoi(l.c_str()));
  EXPECT_TRUE(reports.wait_gone(pids));
  EXPECT_EQ(reports.count(), expected_reports);
}

TEST_P(ExecutorSuite, TerminateKillsTheWholeProcessTree) {
  EXECUTOR_SUITE_SETUP();
  std::string id = job_id("tree");
  ASSERT_TRUE(ex->launch(sh_job(id,
                                "sleep 1000 & echo $! > child.pid; "
                                "sh -c 'sleep 1000 & echo $! > grandchild.pid; wait' & "
                                "echo $$ > parent.pid; wait",
                                dir, {on(h.nodes[0], {0})})).is_ok());
  for (const char* f : {"parent.pid", "child.pid", "grandchild.pid"}) {
    ASSERT_TRUE(wait_file(dir + "/" + f)) << f;
  }
  std::vector<pid_t> pids = {read_pid(dir + "/parent.pid"), read_pid(dir + "/child.pid"),
                             read_pid(dir + "/grandchild.pid")};
  for (pid_t p : pids) ASSERT_GT(p, 0);
  ASSERT_TRUE(ex->terminate(id, 0, 5).is_ok());
  auto r = reports.wait(id);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->kind, ExitKind::kTerminated) << describe(*r);
  EXPECT_TRUE(reports.wait_gone(pids)) << "a process of the terminated job is still alive";
  EXPECT_EQ(ex->running(), 0u);
}

TEST_P(ExecutorSuite, TermTrappingJobGetsItsGracePeriod) {
  EXECUTOR_SUITE_SETUP();
  std::string id = job_id("trap");
  LaunchSpec spec = sh_job(id, "trap 'echo \"got TERM\"; exit 0' TERM; echo ready > ready; while :; do sleep 0.2; done",
                           dir, {on(h.nodes[0], {0})});
  ASSERT_TRUE(ex->launch(spec).is_ok());
  ASSERT_TRUE(wait_file(dir + "/ready"));
  ASSERT_TRUE(ex->terminate(id, 0, 10).is_ok());
  auto r = reports.wait(id);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->kind, ExitKind::kTerminated) << describe(*r);
  EXPECT_NE(slurp(spec.log_path).find("got TERM"), std::string::npos) << slurp(spec.log_path);
}

TEST_P(ExecutorSuite, TermIgnoringJobIsKilledAfterGrace) {
  EXECUTOR_SUITE_SETUP();
  std::string id = job_id("ignore");
  ASSERT_TRUE(ex->launch(sh_job(id, "trap '' TERM; echo ready > ready; while :; do sleep 0.2; done", dir,
                                {on(h.nodes[0], {0})})).is_ok());
  ASSERT_TRUE(wait_file(dir + "/ready"));
  auto t0 = Clock::now();
  ASSERT_TRUE(ex->terminate(id, 0, 1).is_ok());
  auto r = reports.wait(id);
  double elapsed = seconds_since(t0);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->kind, ExitKind::kTerminated) << describe(*r);
  EXPECT_GE(elapsed, 0.8) << "killed before its grace period";
  EXPECT_LE(elapsed, 5.0) << "not SIGKILLed soon after its 1 s grace period";
}

TEST_P(ExecutorSuite, MaxDurationIsEnforced) {
  EXECUTOR_SUITE_SETUP();
  std::string id = job_id("timeout");
  LaunchSpec spec = sh_job(id, "", dir, {on(h.nodes[0], {0})});
  spec.command = "sleep";
  spec.args = {"100"};
  spec.max_duration_s = 2;
  ASSERT_TRUE(ex->launch(spec).is_ok());
  auto r = reports.wait(id);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->kind, ExitKind::kTimedOut) << describe(*r);
  double ran_s = (r->ended_at_us - r->started_at_us) / 1e6;
  EXPECT_GE(ran_s, 2.0);
  EXPECT_LE(ran_s, 4.5);
}

TEST_P(ExecutorSuite, ExitStatusesAndTimes) {
  EXECUTOR_SUITE_SETUP();
  const int64_t before_us = unix_us_now();
  std::string ok = job_id("ok"), three = job_id("three"), killed = job_id("killed");
  ASSERT_TRUE(ex->launch(sh_job(ok, "exit 0", dir, {on(h.nodes[0], {0})})).is_ok());
  ASSERT_TRUE(ex->launch(sh_job(three, "exit 3", dir, {on(h.nodes[0], {1})})).is_ok());
  ASSERT_TRUE(ex->launch(sh_job(killed, "kill -KILL $$", dir, {on(h.nodes[0], {2})})).is_ok());
  auto r_ok = reports.wait(ok), r_three = reports.wait(three), r_killed = reports.wait(killed);
  const int64_t after_us = unix_us_now();
  ASSERT_TRUE(r_ok && r_three && r_killed);
  EXPECT_EQ(r_ok->kind, ExitKind::kSucceeded) << describe(*r_ok);
  EXPECT_EQ(r_ok->exit_code, 0);
  EXPECT_EQ(r_ok->signal, 0);
  EXPECT_EQ(r_three->kind, ExitKind::kFailed) << describe(*r_three);
  EXPECT_EQ(r_three->exit_code, 3);
  EXPECT_EQ(r_three->signal, 0);
  // A signal we did not send is a failure, with the signal.
  EXPECT_EQ(r_killed->kind, ExitKind::kFailed) << describe(*r_killed);
  EXPECT_EQ(r_killed->signal, SIGKILL);
  // Slack for backends that record times in whole seconds.
  const int64_t slack_us = 2'000'000;
  for (const auto& r : {*r_ok, *r_three, *r_killed}) {
    SCOPED_TRACE(r.job_id);
    EXPECT_GE(r.started_at_us, before_us - slack_us);
    EXPECT_LE(r.started_at_us, r.ended_at_us);
    EXPECT_LE(r.ended_at_us, after_us + slack_us);
  }
}

TEST_P(ExecutorSuite, LogGetsStdoutAndStderrOfEveryTask) {
  EXECUTOR_SUITE_SETUP();
  const int nnodes = h.nodes.size() >= 2 ? 2 : 1, tpn = 2;
  std::vector<NodeAssignment> nodes = {on(h.nodes[0], {0})};
  if (nnodes == 2) nodes.push_back(on(h.nodes[1], {0}));
  std::string id = job_id("log");
  LaunchSpec spec = sh_job(id, "echo \"out of rank $RANK\"; echo \"err of rank $RANK\" >&2", dir, nodes, tpn);
  spec.log_path = dir + "/logs/nested/" + id + ".log";  // parent directories are created
  fs::create_directories(dir + "/logs/nested");
  { std::ofstream(spec.log_path) << "line from before\n"; }  // appended to, not truncated
  ASSERT_TRUE(ex->launch(spec).is_ok());
  auto r = reports.wait(id);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->kind, ExitKind::kSucceeded) << describe(*r);
  std::string log = slurp(spec.log_path);
  EXPECT_NE(log.find("line from before\n"), std::string::npos) << log;
  for (int rank = 0; rank < nnodes * tpn; ++rank) {
    EXPECT_NE(log.find("out of rank " + std::to_string(rank) + "\n"), std::string::npos) << log;
    EXPECT_NE(log.find("err of rank " + std::to_string(rank) + "\n"), std::string::npos) << log;
  }
}

TEST_P(ExecutorSuite, FractionalGpuJobSeesItsShare) {
  EXECUTOR_SUITE_SETUP();
  ASSERT_GE(h.gpus_per_node, 4);
  std::string id = job_id("frac");
  ASSERT_TRUE(ex->launch(sh_job(id, "env > env.tmp && mv env.tmp env.out", dir, {on(h.nodes[0], {3}, 250)})).is_ok());
  auto r = reports.wait(id);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->kind, ExitKind::kSucceeded) << describe(*r);
  auto env = read_env(dir + "/env.out");
  EXPECT_EQ(env["NEOCLOUD_GPU_MILLI"], "250");
  EXPECT_EQ(env["CUDA_VISIBLE_DEVICES"], "3");
  EXPECT_EQ(env["WORLD_SIZE"], "1");
}

TEST_P(ExecutorSuite, ReservedEnvIsTheExecutorsAndWorkingDirIsHonored) {
  EXECUTOR_SUITE_SETUP();
  std::string wd = dir + "/work dir";  // a space, to catch unquoted paths
  fs::create_directories(wd);
  std::string id = job_id("env");
  LaunchSpec spec = sh_job(id, "env > env.tmp && mv env.tmp env.out; pwd -P > pwd.out", wd, {on(h.nodes[0], {0, 1})});
  spec.log_path = dir + "/" + id + ".log";
  // A job may not choose its GPUs or ranks: reserved names in its env are ignored (and refused at submit).
  spec.env = {{"NC_SUITE_VAR", "hello world"}, {"CUDA_VISIBLE_DEVICES", "7"}, {"MASTER_PORT", "23456"},
              {"RANK", "7"}, {"NEOCLOUD_JOB_ID", "other"}};
  ASSERT_TRUE(ex->launch(spec).is_ok());
  auto r = reports.wait(id);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->kind, ExitKind::kSucceeded) << describe(*r);
  auto env = read_env(wd + "/env.out");
  EXPECT_EQ(env["NC_SUITE_VAR"], "hello world");
  EXPECT_EQ(env["CUDA_VISIBLE_DEVICES"], "0,1");
  EXPECT_EQ(env["NVIDIA_VISIBLE_DEVICES"], "0,1");
  EXPECT_EQ(env["MASTER_PORT"], std::to_string(master_port(id)));
  EXPECT_EQ(env["RANK"], "0");
  EXPECT_EQ(env["NEOCLOUD_JOB_ID"], id);
  EXPECT_EQ(slurp(wd + "/pwd.out"), fs::canonical(wd).string() + "\n");

  // No working_dir: the log's directory (created by the executor).
  std::string id2 = job_id("nowd");
  LaunchSpec spec2 = sh_job(id2, "pwd -P > pwd.out", "", {on(h.nodes[0], {0})});
  spec2.log_path = dir + "/logs2/" + id2 + ".log";
  ASSERT_TRUE(ex->launch(spec2).is_ok());
  auto r2 = reports.wait(id2);
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->kind, ExitKind::kSucceeded) << describe(*r2);
  EXPECT_EQ(slurp(dir + "/logs2/pwd.out"), fs::canonical(dir + "/logs2").string() + "\n");
}

TEST_P(ExecutorSuite, EachSegmentIsReportedOnceAndLaunchedOnce) {
  EXECUTOR_SUITE_SETUP();
  std::string id = job_id("once");
  LaunchSpec spec = sh_job(id, "exit 0", dir, {on(h.nodes[0], {0})});
  ASSERT_TRUE(ex->launch(spec).is_ok());
  auto r = reports.wait(id);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->kind, ExitKind::kSucceeded) << describe(*r);
  auto t0 = Clock::now();
  while (seconds_since(t0) < 1.5) {
    reports.poll();
    sleep_ms(50);
  }
  EXPECT_EQ(reports.count(), 1u);
  EXPECT_EQ(ex->running(), 0u);
  EXPECT_EQ(ex->terminate(id, 0, 1).code(), StatusCode::kNotFound);
  EXPECT_EQ(ex->terminate("no-such-job-" + id, 0, 1).code(), StatusCode::kNotFound);
  EXPECT_EQ(ex->launch(spec).code(), StatusCode::kAlreadyExists);

  // The next segment (a requeue) is a new launch, itself at most once.
  LaunchSpec next = sh_job(id, "exec sleep 1000", dir, {on(h.nodes[0], {0})});
  next.segment = 1;
  ASSERT_TRUE(ex->launch(next).is_ok());
  EXPECT_EQ(ex->launch(next).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(ex->running(), 1u);
  EXPECT_EQ(ex->terminate(id, 2, 1).code(), StatusCode::kNotFound);
  ASSERT_TRUE(ex->terminate(id, 1, 1).is_ok());
  auto r1 = reports.wait(id, 1);
  ASSERT_TRUE(r1);
  EXPECT_EQ(r1->kind, ExitKind::kTerminated) << describe(*r1);
  EXPECT_EQ(r1->segment, 1);
  EXPECT_EQ(ex->running(), 0u);
  EXPECT_EQ(ex->terminate(id, 1, 1).code(), StatusCode::kNotFound);
}

}  // namespace nc::capacity::testing
