// The executor suite on SlurmExecutor against the real single-node Slurm of the `slurm` ctest fixture
// (tools/slurm.sh start NC_SLURM_DIR: node `hostname -s`, 4 fake GPUs), and what only the Slurm backend
// promises: sbatch errors, script quoting, the GPU indices Slurm allocated, its own timeout clock.
// A missing Slurm is a failure, not a skip: CI must have started the fixture.
#include "capacity/slurm_executor.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "capacity/executor_suite.h"
#include "capacity/executor_test_util.h"

namespace nc::capacity {
namespace {

namespace fs = std::filesystem;
using namespace test_util;

const std::string kSlurmDir = NC_SLURM_DIR;

std::string host_short() {
  char buf[256] = {0};
  ::gethostname(buf, sizeof buf - 1);
  std::string h = buf;
  return h.substr(0, h.find('.'));
}


// Output of a shell command line (test-controlled text only).
std::string sh(const std::string& cmd) {
  std::string out;
  FILE* f = ::popen(cmd.c_str(), "r");
  if (!f) return out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  ::pclose(f);
  return out;
}

std::string slurm_conf() {
  auto conf = read_slurm_env_file(kSlurmDir + "/env");
  return conf.is_ok() ? *conf : "";
}

// Empty when the fixture's Slurm answers and shows our node; else why not.
std::string slurm_unavailable() {
  auto conf = read_slurm_env_file(kSlurmDir + "/env");
  if (!conf.is_ok()) {
    return conf.status().to_string() + " (run `tools/slurm.sh start " + kSlurmDir + "` or the ctest fixture)";
  }
  std::string out = sh("SLURM_CONF='" + *conf + "' timeout 10 sinfo -h -n '" + host_short() + "' -o %t 2>&1");
  // Up: idle, mixed, allocated or completing (a previous test's job is finishing).
  for (const char* up : {"idle", "mix", "alloc", "comp"}) {
    if (out.rfind(up, 0) == 0) return "";
  }
  return "sinfo does not show node " + host_short() + " up: '" + out + "'";
}

SlurmExecutorOptions options(SlurmGpuIndices mode) {
  SlurmExecutorOptions o;
  o.slurm_conf = slurm_conf();
  o.poll_interval_ms = 200;
  o.gpu_indices = mode;
  return o;
}

testing::ExecutorHarness slurm_harness() {
  testing::ExecutorHarness h;
  h.name = "slurm";
  // The suite checks that a job sees exactly its assignment's GPU indices: the scheduler-owned mode.
  // Slurm-owned indices (the default) are checked by the tests below.
  h.make = [] { return std::make_unique<SlurmExecutor>(options(SlurmGpuIndices::kAssignment)); };
  h.nodes = {host_short()};
  h.gpus_per_node = 4;
  h.unavailable = slurm_unavailable;
  h.allow_skip = false;
  return h;
}

}  // namespace

using testing::ExecutorSuite;
INSTANTIATE_TEST_SUITE_P(Slurm, ExecutorSuite, ::testing::Values(slurm_harness()));

namespace {

std::string test_dir() { return test_util::test_dir("slurm-executor"); }





std::optional<ExitReport> wait_report(Executor& ex, const std::string& id, int segment = 0, double timeout_s = 60,
                                      std::vector<ExitReport>* others = nullptr) {
  auto t0 = Clock::now();
  while (seconds_since(t0) < timeout_s) {
    std::optional<ExitReport> mine;
    for (ExitReport& r : ex.poll()) {
      if (r.job_id == id && r.segment == segment) mine = std::move(r);
      else if (others) others->push_back(std::move(r));
    }
    if (mine) return mine;
    sleep_ms(50);
  }
  return std::nullopt;
}

LaunchSpec job(const std::string& id, const std::string& dir, std::string command, std::vector<std::string> args,
               std::vector<NodeAssignment> nodes) {
  LaunchSpec s;
  s.job_id = id;
  s.command = std::move(command);
  s.args = std::move(args);
  s.working_dir = dir;
  s.log_path = dir + "/" + id + ".log";
  s.nodes = std::move(nodes);
  s.grace_period_s = 5;
  return s;
}

NodeAssignment node(std::vector<int> gpus, int32_t milli = 1000) {
  NodeAssignment n;
  n.node = host_short();
  n.gpus = std::move(gpus);
  n.gpu_milli = milli;
  return n;
}

std::string unique_id(const std::string& tag) {
  static int n = 0;
  return "s" + std::to_string(::getpid()) + "-" + tag + "-" + std::to_string(n++);
}

// "gpu:fake:2(IDX:0-1)" in `scontrol show job -d`, expanded: {0, 1}.
std::set<int> slurm_gpu_indices(const std::string& slurm_id) {
  std::string out = sh("SLURM_CONF='" + slurm_conf() + "' timeout 10 scontrol show job -d " + slurm_id + " 2>&1");
  std::set<int> idx;
  size_t p = out.find("IDX:");
  if (p == std::string::npos) return idx;
  std::string list = out.substr(p + 4, out.find(')', p) - p - 4);
  std::istringstream in(list);
  for (std::string part; std::getline(in, part, ',');) {
    size_t dash = part.find('-');
    int a = std::atoi(part.c_str()), b = dash == std::string::npos ? a : std::atoi(part.c_str() + dash + 1);
    for (int i = a; i <= b; ++i) idx.insert(i);
  }
  return idx;
}

std::set<int> parse_list(const std::string& s) {
  std::set<int> out;
  std::istringstream in(s);
  for (std::string part; std::getline(in, part, ',');) {
    if (!part.empty()) out.insert(std::atoi(part.c_str()));
  }
  return out;
}

#define SLURM_SETUP()                                   \
  {                                                     \
    std::string why = slurm_unavailable();              \
    ASSERT_TRUE(why.empty()) << "Slurm: " << why;       \
  }                                                     \
  const std::string dir = test_dir()

// ---- no Slurm needed ----

TEST(SlurmExecutorScript, ShellQuoteRoundTripsThroughBash) {
  const std::vector<std::string> words = {"", "plain", "two words", "it's", "'", "''", "$HOME `id` $(id) \\ \" !",
                                          "line1\nline2", "*?[a]{b,c}~", "-e"};
  for (const std::string& w : words) {
    std::string cmd = "printf '%s' " + shell_quote(w);
    // Run through bash -c with the command passed as one argv word (popen runs sh -c: quote it again).
    std::string out = sh("bash -c " + shell_quote(cmd));
    EXPECT_EQ(out, w);
  }
}

TEST(SlurmExecutorScript, BatchScriptIsValidBash) {
  LaunchSpec s;
  s.job_id = "id with 'quotes' and $x\n#SBATCH --mem=1";
  s.command = "sh";
  s.args = {"-c", "echo '$1'; exit 0", "a b", "\n#SBATCH --nodes=9"};
  s.env = {{"A", "x'y\"z$w"}};
  s.log_path = "/tmp/a%b c.log";
  s.nodes = {node({0, 1})};
  s.tasks_per_node = 2;
  for (SlurmGpuIndices mode : {SlurmGpuIndices::kSlurm, SlurmGpuIndices::kAssignment}) {
    std::string script = slurm_batch_script(s, mode);
    std::string path = std::string(NC_TEST_TMP) + "/slurm-script-" + std::to_string(::getpid()) + ".sh";
    fs::create_directories(NC_TEST_TMP);
    { std::ofstream(path) << script; }
    EXPECT_EQ(sh("bash -n '" + path + "' 2>&1 && echo OK"), "OK\n") << script;
    // Nothing a user wrote can become an #SBATCH directive: sbatch stops at the first command line,
    // which comes before any user text.
    std::istringstream in(script);
    std::string line;
    while (std::getline(in, line) && (line.empty() || line[0] == '#')) {
      EXPECT_EQ(line.find("SBATCH"), std::string::npos) << line;
    }
    fs::remove(path);
  }
}

// ---- on the fixture's Slurm ----

TEST(SlurmExecutor, SbatchRejectionIsALaunchError) {
  SLURM_SETUP();
  auto o = options(SlurmGpuIndices::kSlurm);
  o.partition = "no-such-partition";
  SlurmExecutor ex(o);
  std::string id = unique_id("badpart");
  Status s = ex.launch(job(id, dir, "true", {}, {node({0})}));
  EXPECT_FALSE(s.is_ok());
  EXPECT_NE(s.message().find("sbatch"), std::string::npos) << s.to_string();
  EXPECT_EQ(ex.running(), 0u);
  // More GPUs than the node has: refused by sbatch too, not left pending for ever.
  SlurmExecutor ex2(options(SlurmGpuIndices::kSlurm));
  Status s2 = ex2.launch(job(unique_id("toomany"), dir, "true", {}, {node({0, 1, 2, 3, 4, 5, 6, 7})}));
  EXPECT_FALSE(s2.is_ok());
  EXPECT_EQ(ex2.running(), 0u);
  // Specs Slurm cannot express.
  LaunchSpec dup = job(unique_id("dup"), dir, "true", {}, {node({0}), node({1})});
  EXPECT_EQ(ex2.launch(dup).code(), StatusCode::kInvalidArgument);
  LaunchSpec badenv = job(unique_id("badenv"), dir, "true", {}, {node({0})});
  badenv.env = {{"NOT A NAME", "x"}};
  EXPECT_EQ(ex2.launch(badenv).code(), StatusCode::kInvalidArgument);
}

TEST(SlurmExecutor, ArgumentsAndEnvironmentArePassedVerbatim) {
  SLURM_SETUP();
  SlurmExecutor ex(options(SlurmGpuIndices::kSlurm));
  const std::vector<std::string> args = {"two words", "it's", "\"double\"", "$HOME and $(id) and `id`",
                                         "back\\slash", "line1\nline2", "*", "", "-n", "50%% %j"};
  std::vector<std::string> argv = {"-c", "for a in \"$@\"; do printf '[%s]\\n' \"$a\"; done > args.out", "sh"};
  argv.insert(argv.end(), args.begin(), args.end());
  std::string id = unique_id("quote 'id' $x");
  LaunchSpec spec = job(id, dir, "sh", argv, {node({})});
  spec.env = {{"NC_WEIRD", "a 'b' \"c\" $d `e` \\f\ng"}};
  spec.log_path = dir + "/log with %j and 'quote'.log";
  std::string env_script = "env -0 > env0.out";
  ASSERT_TRUE(ex.launch(spec).is_ok());
  auto r = wait_report(ex, id);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->kind, ExitKind::kSucceeded) << r->detail << "\n" << slurp(spec.log_path);
  std::string expected;
  for (const std::string& a : args) expected += "[" + a + "]\n";
  EXPECT_EQ(slurp(dir + "/args.out"), expected);
  EXPECT_TRUE(fs::exists(spec.log_path)) << "the log keeps its literal name";

  // The environment value and the job id, checked with NUL-separated env output.
  std::string id2 = unique_id("env");
  LaunchSpec spec2 = job(id2, dir, "sh", {"-c", env_script}, {node({})});
  spec2.env = spec.env;
  ASSERT_TRUE(ex.launch(spec2).is_ok());
  auto r2 = wait_report(ex, id2);
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->kind, ExitKind::kSucceeded) << r2->detail;
  std::string env0 = slurp(dir + "/env0.out");
  EXPECT_NE(env0.find(std::string("NC_WEIRD=") + "a 'b' \"c\" $d `e` \\f\ng" + '\0'), std::string::npos);
  EXPECT_NE(env0.find("NEOCLOUD_JOB_ID=" + id2 + '\0'), std::string::npos);
  EXPECT_EQ(env0.find("NC_GPU_MAP="), std::string::npos) << "the wrapper's own variables do not leak";
  EXPECT_NE(env0.find(std::string("CUDA_VISIBLE_DEVICES=") + '\0'), std::string::npos) << "CPU-only: empty";
}

TEST(SlurmExecutor, ConcurrentJobsSeeTheDisjointGpusSlurmAllocated) {
  SLURM_SETUP();
  SlurmExecutor ex(options(SlurmGpuIndices::kSlurm));
  // Both jobs are assigned GPUs {1, 2}: Slurm's allocation wins and keeps them apart.
  auto script = [](const std::string& me, const std::string& other) {
    return "env > env." + me + ".tmp && mv env." + me + ".tmp env." + me + "; touch " + me +
           ".ready; i=0; while [ ! -e " + other + ".ready ]; do i=$((i+1)); [ $i -gt 300 ] && exit 9; sleep 0.1; done;"
           " sleep 1";
  };
  std::string a = unique_id("a"), b = unique_id("b");
  LaunchSpec sa = job(a, dir, "sh", {"-c", script("a", "b")}, {node({1, 2})});
  LaunchSpec sb = job(b, dir, "sh", {"-c", script("b", "a")}, {node({1, 2})});
  ASSERT_TRUE(ex.launch(sa).is_ok());
  ASSERT_TRUE(ex.launch(sb).is_ok());
  ASSERT_TRUE(wait_file(dir + "/env.a"));
  ASSERT_TRUE(wait_file(dir + "/env.b"));
  // While they run, compare with what Slurm says it allocated.
  std::set<int> slurm_a = slurm_gpu_indices(ex.slurm_job_id(a, 0));
  std::set<int> slurm_b = slurm_gpu_indices(ex.slurm_job_id(b, 0));
  std::vector<ExitReport> others;
  auto ra = wait_report(ex, a, 0, 60, &others);
  ASSERT_TRUE(ra);
  std::optional<ExitReport> rb;
  for (auto& r : others) {
    if (r.job_id == b) rb = r;
  }
  if (!rb) rb = wait_report(ex, b);
  ASSERT_TRUE(rb);
  EXPECT_EQ(ra->kind, ExitKind::kSucceeded) << ra->detail;
  EXPECT_EQ(rb->kind, ExitKind::kSucceeded) << rb->detail;
  auto env_a = read_env(dir + "/env.a"), env_b = read_env(dir + "/env.b");
  std::set<int> ga = parse_list(env_a["CUDA_VISIBLE_DEVICES"]), gb = parse_list(env_b["CUDA_VISIBLE_DEVICES"]);
  EXPECT_EQ(ga.size(), 2u) << env_a["CUDA_VISIBLE_DEVICES"];
  EXPECT_EQ(gb.size(), 2u) << env_b["CUDA_VISIBLE_DEVICES"];
  EXPECT_EQ(ga, slurm_a);
  EXPECT_EQ(gb, slurm_b);
  for (int g : ga) EXPECT_EQ(gb.count(g), 0u) << "GPU " << g << " given to both jobs";
  for (int g : ga) EXPECT_TRUE(g >= 0 && g < 4);
  for (int g : gb) EXPECT_TRUE(g >= 0 && g < 4);
  EXPECT_EQ(env_a["NVIDIA_VISIBLE_DEVICES"], env_a["CUDA_VISIBLE_DEVICES"]);
  EXPECT_EQ(env_a["WORLD_SIZE"], "1");
  EXPECT_EQ(env_b["WORLD_SIZE"], "1");
}

TEST(SlurmExecutor, FractionalJobGetsAWholeSlurmGpuAndItsShare) {
  SLURM_SETUP();
  SlurmExecutor ex(options(SlurmGpuIndices::kSlurm));
  std::string id = unique_id("frac");
  ASSERT_TRUE(ex.launch(job(id, dir, "sh", {"-c", "env > env.tmp && mv env.tmp env.out"}, {node({3}, 250)})).is_ok());
  auto r = wait_report(ex, id);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->kind, ExitKind::kSucceeded) << r->detail;
  auto env = read_env(dir + "/env.out");
  EXPECT_EQ(env["NEOCLOUD_GPU_MILLI"], "250");
  EXPECT_EQ(parse_list(env["CUDA_VISIBLE_DEVICES"]).size(), 1u) << env["CUDA_VISIBLE_DEVICES"];
}

TEST(SlurmExecutor, FirstFailingTaskDecidesTheExitStatus) {
  SLURM_SETUP();
  SlurmExecutor ex(options(SlurmGpuIndices::kSlurm));
  // Rank 1 exits 3; rank 0 would run for ever and is stopped by srun's --kill-on-bad-exit (its own
  // status, a SIGTERM, must not hide rank 1's).
  std::string id = unique_id("rank1");
  LaunchSpec spec = job(id, dir, "sh", {"-c", "if [ $RANK = 1 ]; then sleep 0.5; exit 3; fi; exec sleep 1000"}, {node({})});
  spec.tasks_per_node = 2;
  ASSERT_TRUE(ex.launch(spec).is_ok());
  auto r = wait_report(ex, id);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->kind, ExitKind::kFailed) << r->detail;
  EXPECT_EQ(r->exit_code, 3) << r->detail;
  EXPECT_EQ(r->signal, 0) << r->detail;
  // Several tasks failing at once ("tasks 0-2: Exited with exit code 4").
  std::string id3 = unique_id("all4");
  LaunchSpec all4 = job(id3, dir, "sh", {"-c", "exit 4"}, {node({})});
  all4.tasks_per_node = 3;
  ASSERT_TRUE(ex.launch(all4).is_ok());
  auto r3 = wait_report(ex, id3);
  ASSERT_TRUE(r3);
  EXPECT_EQ(r3->kind, ExitKind::kFailed) << r3->detail;
  EXPECT_EQ(r3->exit_code, 4) << r3->detail;
  // A task killed by a signal of its own.
  std::string id2 = unique_id("segv");
  ASSERT_TRUE(ex.launch(job(id2, dir, "sh", {"-c", "kill -SEGV $$"}, {node({})})).is_ok());
  auto r2 = wait_report(ex, id2);
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->kind, ExitKind::kFailed) << r2->detail;
  EXPECT_EQ(r2->signal, SIGSEGV) << r2->detail;
  EXPECT_FALSE(fs::exists(dir + "/core")) << "no core file from the batch script";
}

TEST(SlurmExecutor, OwnClockEnforcesMaxDurationWithinASecond) {
  SLURM_SETUP();
  SlurmExecutor ex(options(SlurmGpuIndices::kSlurm));
  std::string id = unique_id("timeout");
  LaunchSpec spec = job(id, dir, "sleep", {"100"}, {node({0})});
  spec.max_duration_s = 1;
  auto t0 = Clock::now();
  ASSERT_TRUE(ex.launch(spec).is_ok());
  auto r = wait_report(ex, id);
  double wall = seconds_since(t0);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->kind, ExitKind::kTimedOut) << r->detail;
  double ran = (r->ended_at_us - r->started_at_us) / 1e6;
  EXPECT_GE(ran, 1.0);
  EXPECT_LE(ran, 2.0);
  EXPECT_LE(wall, 30.0) << "Slurm's --time (minutes) must not be what stopped it";
}

TEST(SlurmExecutor, TerminateWhilePendingCancelsAtOnce) {
  SLURM_SETUP();
  SlurmExecutor ex(options(SlurmGpuIndices::kSlurm));
  // Four GPUs busy, so the second job pends.
  std::string hog = unique_id("hog"), waiter = unique_id("waiter");
  ASSERT_TRUE(ex.launch(job(hog, dir, "sleep", {"1000"}, {node({0, 1, 2, 3})})).is_ok());
  ASSERT_TRUE(ex.launch(job(waiter, dir, "sh", {"-c", "touch ran"}, {node({0})})).is_ok());
  for (int i = 0; i < 10; ++i) {
    (void)ex.poll();
    sleep_ms(100);
  }
  auto t0 = Clock::now();
  ASSERT_TRUE(ex.terminate(waiter, 0, 30).is_ok());
  EXPECT_LE(seconds_since(t0), 2.0) << "terminate() must return at once";
  std::vector<ExitReport> others;
  auto r = wait_report(ex, waiter, 0, 10, &others);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->kind, ExitKind::kTerminated) << r->detail;
  EXPECT_LE(seconds_since(t0), 5.0) << "a pending job has nothing to wait a grace period for";
  EXPECT_FALSE(fs::exists(dir + "/ran"));
  ASSERT_TRUE(ex.terminate(hog, 0, 1).is_ok());
  auto rh = wait_report(ex, hog);
  ASSERT_TRUE(rh);
  EXPECT_EQ(rh->kind, ExitKind::kTerminated) << rh->detail;
}

TEST(SlurmExecutor, JobWaitingForADownNodeIsReportedAsNodeFailed) {
  SLURM_SETUP();
  // tools/slurm.sh configures nc-down0, a node that never comes up.
  auto o = options(SlurmGpuIndices::kSlurm);
  o.node_unavailable_s = 2;
  SlurmExecutor ex(o);
  std::string id = unique_id("down");
  NodeAssignment down;
  down.node = "nc-down0";
  LaunchSpec spec = job(id, dir, "sh", {"-c", "touch ran"}, {node({}), down});
  ASSERT_TRUE(ex.launch(spec).is_ok());
  auto t0 = Clock::now();
  auto r = wait_report(ex, id, 0, 30);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->kind, ExitKind::kNodeFailed) << r->detail;
  EXPECT_GE(seconds_since(t0), 1.5);
  EXPECT_EQ(ex.running(), 0u);
  EXPECT_FALSE(fs::exists(dir + "/ran"));
}

// The controller may lose a cancel (busy, restarting) or a step may still be launching its tasks when
// the signal comes: the executor cancels again until Slurm reports the end. Here every scancel in the
// first 4 s does nothing (a wrapper in bin_dir), so only a repeated kill can end the job.
TEST(SlurmExecutor, KillIsRepeatedUntilSlurmReportsTheEnd) {
  SLURM_SETUP();
  const std::string bin = dir + "/lossy-bin";
  fs::create_directories(bin);
  for (const char* tool : {"sbatch", "squeue", "scontrol", "scancel"}) {
    std::string real = sh(std::string("command -v ") + tool);
    while (!real.empty() && real.back() == '\n') real.pop_back();
    ASSERT_FALSE(real.empty()) << tool << " is not installed";
    std::string script = "#!/bin/sh\n";
    if (std::string(tool) == "scancel") {
      script += "[ \"$(date +%s)\" -lt \"$(cat '" + dir + "/drop-until')\" ] && exit 0\n";
    }
    script += "exec '" + real + "' \"$@\"\n";
    std::ofstream(bin + "/" + tool) << script;
    fs::permissions(bin + "/" + tool, fs::perms::owner_all);
  }
  std::ofstream(dir + "/drop-until") << "0\n";
  auto o = options(SlurmGpuIndices::kSlurm);
  o.bin_dir = bin;
  SlurmExecutor ex(o);
  std::string id = unique_id("lossy");
  ASSERT_TRUE(ex.launch(job(id, dir, "sh", {"-c", "echo $$ > lossy.pid; exec sleep 1000"}, {node({0})})).is_ok());
  ASSERT_TRUE(wait_file(dir + "/lossy.pid"));
  (void)ex.poll();
  std::ofstream(dir + "/drop-until") << (std::time(nullptr) + 4) << "\n";
  auto t0 = Clock::now();
  ASSERT_TRUE(ex.terminate(id, 0, 0).is_ok());
  auto r = wait_report(ex, id, 0, 40);
  const double took = seconds_since(t0);
  if (!r) (void)sh("SLURM_CONF='" + slurm_conf() + "' scancel --jobname=nc-" + id + "-0");
  ASSERT_TRUE(r) << "the job outlived a lost cancel";
  EXPECT_EQ(r->kind, ExitKind::kTerminated) << r->detail;
  EXPECT_GE(took, 3.0) << "the first cancels were to be lost";
  EXPECT_LE(took, 30.0);
}

// Slurm lists a step before it has forked its tasks, and a SIGTERM in that window is accepted and lost.
// Stopped the moment its step appears, a job must still end by the SIGTERM (sent again a second later),
// well before the grace period's SIGKILL. Several rounds: the window is not hit every time.
TEST(SlurmExecutor, SigtermReachesAStepThatWasStillLaunching) {
  SLURM_SETUP();
  SlurmExecutor ex(options(SlurmGpuIndices::kSlurm));
  for (int round = 0; round < 8; ++round) {
    std::string id = unique_id("young");
    LaunchSpec spec = job(id, dir, "sleep", {"1000"}, {node({0})});
    spec.grace_period_s = 20;
    ASSERT_TRUE(ex.launch(spec).is_ok());
    std::string slurm_id;
    bool listed = false;
    for (int i = 0; i < 2000 && !listed; ++i) {
      if (slurm_id.empty()) slurm_id = ex.slurm_job_id(id, 0);
      std::string steps = sh("SLURM_CONF='" + slurm_conf() + "' squeue -h -s -j " + slurm_id + " -o %i 2>/dev/null");
      listed = steps.find(slurm_id + ".0") != std::string::npos;
    }
    ASSERT_TRUE(listed) << "step of " << slurm_id << " never listed";
    auto t0 = Clock::now();
    ASSERT_TRUE(ex.terminate(id, 0, spec.grace_period_s).is_ok());
    auto r = wait_report(ex, id, 0, 40);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->kind, ExitKind::kTerminated) << r->detail;
    EXPECT_LE(seconds_since(t0), 8.0) << "round " << round << ": the SIGTERM was lost; " << r->detail;
    EXPECT_EQ(r->detail.find("SIGKILLed"), std::string::npos) << r->detail;
  }
}

TEST(SlurmExecutor, DestructorCancelsUnreportedJobs) {
  SLURM_SETUP();
  std::string slurm_id;
  {
    SlurmExecutor ex(options(SlurmGpuIndices::kSlurm));
    std::string id = unique_id("orphan");
    ASSERT_TRUE(ex.launch(job(id, dir, "sh", {"-c", "echo $$ > pid.out; exec sleep 1000"}, {node({0})})).is_ok());
    ASSERT_TRUE(wait_file(dir + "/pid.out"));
    (void)ex.poll();
    slurm_id = ex.slurm_job_id(id, 0);
    ASSERT_FALSE(slurm_id.empty());
  }
  pid_t pid = static_cast<pid_t>(std::atol(slurp(dir + "/pid.out").c_str()));
  auto t0 = Clock::now();
  while (seconds_since(t0) < 15 && ::kill(pid, 0) == 0) sleep_ms(100);
  EXPECT_NE(::kill(pid, 0), 0) << "the task outlived its executor";
  std::string state = sh("SLURM_CONF='" + slurm_conf() + "' squeue -h --states=all -j " + slurm_id + " -o %T 2>&1");
  EXPECT_EQ(state.find("RUNNING"), std::string::npos) << state;
}

}  // namespace
}  // namespace nc::capacity
