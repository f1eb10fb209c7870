// The job controller on the local executor with simulated GPUs: jobs see exactly their GPUs, spot jobs
// are preempted and requeued, cancel kills the process tree, max duration times out, every segment is
// metered once with its real run time, quotas hold, and one organization never sees another's jobs.
#include "capacity/gpu_metering.h"
#include "capacity/job_controller.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <ostream>
#include <atomic>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "capacity/job_store.h"
#include "capacity/local_executor.h"
#include "capacity/slurm_executor.h"
#include "storage/database.h"
#include "storage/migrate.h"
#include "all_migrations.h"
#include <unistd.h>

#include <filesystem>

namespace nc::capacity {
namespace {

using namespace std::chrono_literals;

struct Metered {
  std::mutex mu;
  std::vector<SegmentUsage> calls;
};

// Which executor the controller drives, and the GPU inventory it has (4 GPUs per node).
struct ControllerHarness {
  std::string name;
  std::vector<std::string> nodes;
  std::function<std::unique_ptr<Executor>()> make;
  std::function<std::string()> unavailable;  // non-empty: why it cannot run here (the test fails)
};
std::ostream& operator<<(std::ostream& os, const ControllerHarness& h) { return os << h.name; }

ControllerHarness local_harness() {
  ControllerHarness h;
  h.name = "local";
  h.nodes = {"node-a", "node-b"};
  h.make = [] {
    LocalExecutorOptions eo;
    eo.nodes = {"node-a", "node-b"};
    eo.gpus_per_node = 4;
    return std::make_unique<LocalExecutor>(eo);
  };
  h.unavailable = [] { return std::string(); };
  return h;
}

#ifdef NC_SLURM_DIR
std::string host_short() {
  char buf[256] = {0};
  ::gethostname(buf, sizeof buf - 1);
  std::string host = buf;
  return host.substr(0, host.find('.'));
}

// The real single-node Slurm of the ctest `slurm` fixture (tools/slurm.sh): node `hostname -s`, 4 GPUs.
ControllerHarness slurm_harness() {
  ControllerHarness h;
  h.name = "slurm";
  h.nodes = {host_short()};
  h.make = [] {
    SlurmExecutorOptions o;
    auto conf = read_slurm_env_file(std::string(NC_SLURM_DIR) + "/env");
    o.slurm_conf = conf.is_ok() ? *conf : "";
    o.poll_interval_ms = 200;
    o.gpu_indices = SlurmGpuIndices::kAssignment;  // the scheduler's books decide which GPUs a job sees
    return std::make_unique<SlurmExecutor>(o);
  };
  h.unavailable = [] {
    auto conf = read_slurm_env_file(std::string(NC_SLURM_DIR) + "/env");
    return conf.is_ok() ? std::string() : conf.status().to_string() + " (the ctest `slurm` fixture starts Slurm)";
  };
  return h;
}
#endif

class ControllerFixture : public ::testing::Test {
 protected:
  virtual ControllerHarness harness() const = 0;

  void SetUp() override {
    const std::string why = harness().unavailable();
    ASSERT_TRUE(why.empty()) << why;
    static const std::string root = std::string(NC_TEST_TMP) + "/job_controller/" + std::to_string(::getpid());
    static const bool registered = (std::atexit([] {  // removed at exit when every test passed
      if (!::testing::UnitTest::GetInstance()->Passed()) return;
      std::error_code ec;
      std::filesystem::remove_all(root, ec);
    }), true);
    (void)registered;
    dir_ = root + "/" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    ctl_ = make_controller(nullptr);
    ctl_->start();
  }

  std::unique_ptr<JobController> make_controller(JobStore* store, int node_timeout_s = 0) {
    const ControllerHarness h = harness();
    std::vector<Node> nodes;
    for (const auto& n : h.nodes) nodes.push_back(make_node(n, 16000, 64 * 1024, 4, "sim"));
    auto sched = Scheduler::create(Cluster(nodes), SchedulerOptions{});
    EXPECT_TRUE(sched.is_ok());
    JobControllerOptions co;
    co.log_dir = dir_ + "/jobs";
    co.tick_ms = 50;
    co.grace_period_s = 1;
    co.heartbeat_s = 1;
    co.store = store;
    co.node_timeout_s = node_timeout_s;
    co.meter = [this](const SegmentUsage& u) {
      std::lock_guard<std::mutex> lock(metered_.mu);
      metered_.calls.push_back(u);
      return Status::ok();
    };
    return std::make_unique<JobController>(std::move(sched).value(), h.make(), co);
  }
  int total_gpus() const { return 4 * static_cast<int>(harness().nodes.size()); }
  void TearDown() override {
    ctl_.reset();
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }

  JobSpec shell(const std::string& script, int gpus, PriorityClass p = PriorityClass::kOnDemand) {
    JobSpec s;
    s.command = "sh";
    s.args = {"-c", script};
    s.shape.gpus = gpus;
    s.priority = p;
    s.max_duration_s = 60;
    return s;
  }

  // Waits until pred(job) or the deadline; returns the last view.
  Job wait_for(const std::string& org, const std::string& id, const std::function<bool(const Job&)>& pred,
               std::chrono::seconds deadline = 30s) {
    const auto end = std::chrono::steady_clock::now() + deadline;
    for (;;) {
      auto j = ctl_->get(org, id);
      EXPECT_TRUE(j.is_ok());
      if (!j.is_ok()) return {};
      if (pred(*j) || std::chrono::steady_clock::now() > end) return *j;
      std::this_thread::sleep_for(20ms);
    }
  }
  Job wait_done(const std::string& org, const std::string& id) {
    return wait_for(org, id, [](const Job& j) { return is_terminal(j.state); });
  }
  std::string log_of(const std::string& org, const std::string& id) {
    auto l = ctl_->logs(org, id, 0);
    EXPECT_TRUE(l.is_ok());
    return l.is_ok() ? l->first : "";
  }
  std::vector<SegmentUsage> metered_for(const std::string& id) {
    std::lock_guard<std::mutex> lock(metered_.mu);
    std::vector<SegmentUsage> out;
    for (const auto& u : metered_.calls) {
      if (u.job_id == id) out.push_back(u);
    }
    return out;
  }
  static bool has_event(const Job& j, const std::string& type) {
    for (const auto& e : j.events) {
      if (e.type == type) return true;
    }
    return false;
  }

  std::string dir_;
  Metered metered_;
  std::unique_ptr<JobController> ctl_;
};

// The job suite, on every executor.
class JobControllerTest : public ControllerFixture, public ::testing::WithParamInterface<ControllerHarness> {
 protected:
  ControllerHarness harness() const override { return GetParam(); }
};

// What needs several nodes or this process's own restart: the local executor's simulated nodes.
class LocalJobControllerTest : public ControllerFixture {
 protected:
  ControllerHarness harness() const override { return local_harness(); }
};

TEST_P(JobControllerTest, TwoGpuJobSeesExactlyItsGpus) {
  auto a = ctl_->submit("acme", "p1", shell("echo CVD=$CUDA_VISIBLE_DEVICES WS=$WORLD_SIZE", 2));
  auto b = ctl_->submit("acme", "p1", shell("echo CVD=$CUDA_VISIBLE_DEVICES WS=$WORLD_SIZE", 2));
  ASSERT_TRUE(a.is_ok() && b.is_ok()) << a.status().to_string();
  Job ja = wait_done("acme", a->id), jb = wait_done("acme", b->id);
  ASSERT_EQ(ja.state, JobState::kSucceeded) << log_of("acme", a->id);
  ASSERT_EQ(jb.state, JobState::kSucceeded);
  for (const Job* j : {&ja, &jb}) {
    ASSERT_EQ(j->segments.size(), 1u);
    ASSERT_EQ(j->segments[0].nodes.size(), 1u);
    const auto& gpus = j->segments[0].nodes[0].gpus;
    ASSERT_EQ(gpus.size(), 2u);
    EXPECT_EQ(log_of("acme", j->id), fmt::format("CVD={},{} WS=1\n", gpus[0], gpus[1]));
  }
  EXPECT_EQ(ja.segments[0].gpu_milli, 2000);
}

TEST_F(LocalJobControllerTest, GangOverTwoNodesGetsRanks) {
  JobSpec s = shell("echo rank=$RANK of $WORLD_SIZE node=$NODE_RANK gpus=$CUDA_VISIBLE_DEVICES", 8);
  s.shape.nodes = 2;
  s.tasks_per_node = 1;
  auto j = ctl_->submit("acme", "p1", s);
  ASSERT_TRUE(j.is_ok()) << j.status().to_string();
  Job done = wait_done("acme", j->id);
  ASSERT_EQ(done.state, JobState::kSucceeded) << log_of("acme", j->id);
  const std::string log = log_of("acme", j->id);
  EXPECT_NE(log.find("rank=0 of 2 node=0 gpus=0,1,2,3"), std::string::npos) << log;
  EXPECT_NE(log.find("rank=1 of 2 node=1 gpus=0,1,2,3"), std::string::npos) << log;
  // A 16-GPU job can never run on 8 GPUs: refused at submit, not queued for ever.
  auto big = ctl_->submit("acme", "p1", shell("true", 16));
  EXPECT_EQ(big.status().code(), StatusCode::kFailedPrecondition);
}

TEST_P(JobControllerTest, SpotIsPreemptedRequeuedAndMeteredPerSegment) {
  // Spot fills node-a and node-b; it traps TERM to show the grace period is given.
  // Spot takes every GPU (of both nodes on the local executor's simulated pair).
  JobSpec spot = shell("trap 'echo got TERM; exit 0' TERM; echo start; sleep 30 & wait", total_gpus(), PriorityClass::kSpot);
  spot.shape.nodes = static_cast<int>(harness().nodes.size());
  auto sp = ctl_->submit("spotco", "p", spot);
  ASSERT_TRUE(sp.is_ok());
  wait_for("spotco", sp->id, [](const Job& j) { return j.state == JobState::kRunning; });
  // Running for the controller once launched; on Slurm the tasks start a moment later: wait for its output.
  for (int i = 0; i < 300 && log_of("spotco", sp->id).find("start") == std::string::npos; ++i) std::this_thread::sleep_for(50ms);
  ASSERT_NE(log_of("spotco", sp->id).find("start"), std::string::npos);
  std::this_thread::sleep_for(200ms);
  auto od = ctl_->submit("acme", "p1", shell("echo on-demand ran; sleep 1", 2));
  ASSERT_TRUE(od.is_ok());
  Job odj = wait_done("acme", od->id);
  ASSERT_EQ(odj.state, JobState::kSucceeded);
  // The spot job was preempted, requeued, and runs again (segment 1) once the on-demand job ended.
  Job spj = wait_for("spotco", sp->id, [](const Job& j) { return j.segments.size() == 2 && j.state == JobState::kRunning; });
  EXPECT_TRUE(has_event(spj, "preempting"));
  EXPECT_TRUE(has_event(spj, "preempted"));
  EXPECT_TRUE(has_event(spj, "requeued"));
  ASSERT_EQ(spj.segments.size(), 2u);
  EXPECT_EQ(spj.segments[0].end, "terminated");
  EXPECT_NE(log_of("spotco", sp->id).find("got TERM"), std::string::npos);
  // The on-demand job started only after the spot job had stopped: no GPU was double-booked.
  EXPECT_GE(odj.segments[0].started_us, spj.segments[0].ended_us);
  ASSERT_TRUE(ctl_->cancel("spotco", sp->id).is_ok());
  Job cancelled = wait_done("spotco", sp->id);
  EXPECT_EQ(cancelled.state, JobState::kCancelled);
  // Two segments, each metered exactly once, with the times the job really ran.
  std::this_thread::sleep_for(200ms);
  auto m = metered_for(sp->id);
  ASSERT_EQ(m.size(), 2u);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(m[i].segment, i);
    EXPECT_EQ(m[i].gpu_milli, total_gpus() * 1000);
    EXPECT_EQ(m[i].priority, PriorityClass::kSpot);
    EXPECT_EQ(m[i].started_us, cancelled.segments[i].started_us);
    EXPECT_EQ(m[i].ended_us, cancelled.segments[i].ended_us);
    EXPECT_GT(m[i].ended_us, m[i].started_us);
  }
  auto om = metered_for(od->id);
  ASSERT_EQ(om.size(), 1u);
  const double secs = static_cast<double>(om[0].ended_us - om[0].started_us) / 1e6;
  EXPECT_NEAR(secs, 1.0, 1.0);  // `sleep 1`: within 1 s per segment
  EXPECT_EQ(om[0].gpu_milli, 2000);
}

TEST_P(JobControllerTest, CancelKillsTheWholeProcessTree) {
  auto j = ctl_->submit("acme", "p1", shell("sleep 1000 & echo $! > child.pid; echo $$ > main.pid; wait", 1));
  ASSERT_TRUE(j.is_ok());
  wait_for("acme", j->id, [](const Job& x) { return x.state == JobState::kRunning; });
  const std::string dir = dir_ + "/jobs/" + j->id;
  pid_t child = 0, main_pid = 0;
  for (int i = 0; i < 200 && (child == 0 || main_pid == 0); ++i) {
    std::ifstream c(dir + "/child.pid"), m(dir + "/main.pid");
    c >> child;
    m >> main_pid;
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_GT(child, 0);
  ASSERT_GT(main_pid, 0);
  ASSERT_TRUE(ctl_->cancel("acme", j->id).is_ok());
  Job done = wait_done("acme", j->id);
  EXPECT_EQ(done.state, JobState::kCancelled);
  bool gone = false;
  for (int i = 0; i < 250 && !gone; ++i) {
    gone = kill(child, 0) != 0 && kill(main_pid, 0) != 0;
    if (!gone) std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(gone) << "a process of the cancelled job survived";
  // Cancelling again: it already ended.
  EXPECT_EQ(ctl_->cancel("acme", j->id).status().code(), StatusCode::kFailedPrecondition);
}

TEST_P(JobControllerTest, MaxDurationTimesOut) {
  JobSpec s = shell("sleep 100", 1);
  s.max_duration_s = 1;
  auto j = ctl_->submit("acme", "p1", s);
  ASSERT_TRUE(j.is_ok());
  Job done = wait_done("acme", j->id);
  EXPECT_EQ(done.state, JobState::kTimedOut);
  EXPECT_NE(done.exit_code, 0) << "a job killed at its time limit did not succeed";
  ASSERT_EQ(done.segments.size(), 1u);
  const double secs = static_cast<double>(done.segments[0].ended_us - done.segments[0].started_us) / 1e6;
  EXPECT_GE(secs, 1.0);
  EXPECT_LE(secs, 4.0);
}

TEST_P(JobControllerTest, QuotaAndTenantIsolation) {
  ASSERT_TRUE(ctl_->set_quota("acme", "", 2000).is_ok());
  auto a = ctl_->submit("acme", "p1", shell("sleep 30", 2));
  auto b = ctl_->submit("acme", "p1", shell("sleep 30", 2));
  ASSERT_TRUE(a.is_ok() && b.is_ok());
  wait_for("acme", a->id, [](const Job& x) { return x.state == JobState::kRunning; });
  std::this_thread::sleep_for(200ms);
  Job jb = *ctl_->get("acme", b->id);
  EXPECT_EQ(jb.state, JobState::kQueued);
  EXPECT_EQ(jb.pending_reason, "quota");
  // Another org: cannot see, list or cancel acme's jobs.
  EXPECT_EQ(ctl_->get("other", a->id).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(ctl_->cancel("other", a->id).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(ctl_->logs("other", a->id, 0).status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(ctl_->list("other").empty());
  EXPECT_EQ(ctl_->list("acme").size(), 2u);
  EXPECT_EQ(ctl_->get("acme", a->id)->state, JobState::kRunning);
  // Cancelling the running one lets the queued one start.
  ASSERT_TRUE(ctl_->cancel("acme", a->id).is_ok());
  Job started = wait_for("acme", b->id, [](const Job& x) { return x.state == JobState::kRunning; });
  EXPECT_EQ(started.state, JobState::kRunning);
  ASSERT_TRUE(ctl_->cancel("acme", b->id).is_ok());
  EXPECT_EQ(wait_done("acme", b->id).state, JobState::kCancelled);
}

TEST_P(JobControllerTest, BadSpecsAreRefused) {
  JobSpec s = shell("true", 1);
  s.command.clear();
  EXPECT_EQ(ctl_->submit("acme", "p", s).status().code(), StatusCode::kInvalidArgument);
  s = shell("true", 3);
  s.shape.nodes = 2;
  EXPECT_EQ(ctl_->submit("acme", "p", s).status().code(), StatusCode::kInvalidArgument);
  s = shell("true", 1);
  s.env = {{"A=B", "x"}};
  EXPECT_EQ(ctl_->submit("acme", "p", s).status().code(), StatusCode::kInvalidArgument);
  s = shell("true", 1);
  s.max_duration_s = 365LL * 86400;
  EXPECT_EQ(ctl_->submit("acme", "p", s).status().code(), StatusCode::kInvalidArgument);
  // What a job carries is bounded (it is stored and listed): a 5 MB command, 2000 args, 300 env vars.
  s = shell("true", 1);
  s.command = std::string(5 << 20, 'x');
  EXPECT_EQ(ctl_->submit("acme", "p", s).status().field(), "command");
  s = shell("true", 1);
  s.args.assign(2000, "a");
  EXPECT_EQ(ctl_->submit("acme", "p", s).status().field(), "args");
  s = shell("true", 1);
  for (int i = 0; i < 300; ++i) s.env.emplace_back("V" + std::to_string(i), "x");
  EXPECT_EQ(ctl_->submit("acme", "p", s).status().field(), "env");
  // A job may not choose its GPUs, ranks or ids: every reserved name is refused, naming it.
  for (const char* name : {"CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "RANK", "WORLD_SIZE", "LOCAL_RANK",
                           "MASTER_ADDR", "MASTER_PORT", "NEOCLOUD_JOB_ID", "SLURM_JOB_ID"}) {
    s = shell("true", 1);
    s.env = {{"OK_VAR", "1"}, {name, "0,1,2,3"}};
    const Status st = ctl_->submit("acme", "p", s).status();
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << name;
    EXPECT_NE(st.message().find(name), std::string::npos) << st.message();
    EXPECT_EQ(st.field(), std::string("env.") + name);
  }
  for (const auto& [name, value] : std::vector<std::pair<std::string, std::string>>{
           {"", "x"}, {"1A", "x"}, {"A-B", "x"}, {"A B", "x"}, {std::string("A\0B", 3), "x"}, {"A", std::string("x\0y", 3)}}) {
    s = shell("true", 1);
    s.env = {{name, value}};
    EXPECT_EQ(ctl_->submit("acme", "p", s).status().code(), StatusCode::kInvalidArgument) << name;
  }
  EXPECT_TRUE(ctl_->list("acme").empty());
}

// A job the executor refuses to launch (here: its working directory does not exist) ends failed with a
// launch_failed segment, and its GPUs are free again: a job that needs every GPU runs next.
TEST_P(JobControllerTest, LaunchFailureEndsTheJobAndFreesItsGpus) {
  JobSpec bad = shell("true", total_gpus());
  bad.working_dir = dir_ + "/no-such-dir";
  auto j = ctl_->submit("acme", "p1", bad);
  ASSERT_TRUE(j.is_ok()) << j.status().to_string();
  Job done = wait_done("acme", j->id);
  EXPECT_EQ(done.state, JobState::kFailed);
  ASSERT_EQ(done.segments.size(), 1u);
  EXPECT_EQ(done.segments[0].end, "launch_failed");
  EXPECT_FALSE(has_event(done, "started"));
  EXPECT_TRUE(metered_for(j->id).empty()) << "nothing ran: nothing to bill";
  auto all = ctl_->submit("acme", "p1", shell("true", total_gpus()));
  ASSERT_TRUE(all.is_ok());
  EXPECT_EQ(wait_done("acme", all->id).state, JobState::kSucceeded) << log_of("acme", all->id);
}

// An executor whose every call takes 1 s (a Slurm controller under load): the API still answers at
// once, since the controller never calls the executor while holding its lock; a cancel still stops
// the job.
class SlowExecutor final : public Executor {
 public:
  explicit SlowExecutor(std::unique_ptr<Executor> inner) : inner_(std::move(inner)) {}
  std::string_view name() const override { return "slow"; }
  Status launch(const LaunchSpec& spec) override {
    std::this_thread::sleep_for(1s);
    return inner_->launch(spec);
  }
  Status terminate(const std::string& id, int segment, int grace_s) override {
    std::this_thread::sleep_for(1s);
    return inner_->terminate(id, segment, grace_s);
  }
  std::vector<ExitReport> poll() override {
    std::this_thread::sleep_for(1s);
    return inner_->poll();
  }
  size_t running() const override { return inner_->running(); }
  Status kill_leftover(const std::string& id, int segment) override { return inner_->kill_leftover(id, segment); }

 private:
  std::unique_ptr<Executor> inner_;
};

TEST_F(LocalJobControllerTest, ApiAnswersWhileTheExecutorIsSlow) {
  ctl_.reset();
  auto sched = Scheduler::create(Cluster({make_node("node-a", 16000, 64 * 1024, 4, "sim")}), SchedulerOptions{});
  ASSERT_TRUE(sched.is_ok());
  JobControllerOptions co;
  co.log_dir = dir_ + "/jobs";
  co.tick_ms = 50;
  co.grace_period_s = 1;
  LocalExecutorOptions eo;
  eo.nodes = {"node-a"};
  eo.gpus_per_node = 4;
  ctl_ = std::make_unique<JobController>(std::move(sched).value(),
                                         std::make_unique<SlowExecutor>(std::make_unique<LocalExecutor>(eo)), co);
  ctl_->start();
  auto j = ctl_->submit("acme", "p1", shell("sleep 1000", 1));
  ASSERT_TRUE(j.is_ok());
  wait_for("acme", j->id, [](const Job& x) { return x.state == JobState::kRunning; });
  // Every API call below lands while the loop is inside a 1 s executor call.
  double worst = 0;
  for (int i = 0; i < 20; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_TRUE(ctl_->get("acme", j->id).is_ok());
    (void)ctl_->list("acme");
    (void)ctl_->nodes();
    worst = std::max(worst, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_LT(worst, 0.5) << "an API call waited for the executor";
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(ctl_->cancel("acme", j->id).is_ok());
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 0.5);
  Job done = wait_done("acme", j->id);
  EXPECT_EQ(done.state, JobState::kCancelled);
}

// A node that stops sending heartbeats is taken out: its jobs stop, a requeue-able one runs again on
// another node (billed until the lost node's last heartbeat), the other ends node_failed; the node comes
// back with its next heartbeat.
TEST_F(LocalJobControllerTest, LostNodeRequeuesOrFailsItsJobs) {
  ctl_.reset();
  ctl_ = make_controller(nullptr, /*node_timeout_s=*/1);
  std::mutex mu;
  std::set<std::string> beating = {"node-a", "node-b"};
  std::atomic<bool> stop{false};
  std::thread beats([&] {
    while (!stop) {
      {
        std::lock_guard<std::mutex> lock(mu);
        for (const auto& n : beating) (void)ctl_->heartbeat(n);
      }
      std::this_thread::sleep_for(100ms);
    }
  });
  ctl_->start();
  auto j1 = ctl_->submit("acme", "p", shell("sleep 30", 4));
  JobSpec s2 = shell("sleep 30", 4);
  s2.requeue = false;
  auto j2 = ctl_->submit("acme", "p", s2);
  ASSERT_TRUE(j1.is_ok() && j2.is_ok());
  Job r1 = wait_for("acme", j1->id, [](const Job& j) { return j.state == JobState::kRunning; });
  Job r2 = wait_for("acme", j2->id, [](const Job& j) { return j.state == JobState::kRunning; });
  const std::string n1 = r1.segments[0].nodes[0].node, n2 = r2.segments[0].nodes[0].node;
  ASSERT_NE(n1, n2);
  EXPECT_EQ(ctl_->heartbeat("nope").code(), StatusCode::kNotFound);
  // j2's node goes silent: j2 (no requeue) ends node_failed.
  {
    std::lock_guard<std::mutex> lock(mu);
    beating.erase(n2);
  }
  Job f2 = wait_done("acme", j2->id);
  EXPECT_EQ(f2.state, JobState::kNodeFailed);
  bool down = false;
  for (const auto& n : ctl_->nodes()) down = down || (n.id == n2 && n.down);
  EXPECT_TRUE(down);
  // It comes back; then j1's node goes silent: j1 is requeued and runs on the other node.
  {
    std::lock_guard<std::mutex> lock(mu);
    beating.insert(n2);
  }
  std::this_thread::sleep_for(300ms);
  for (const auto& n : ctl_->nodes()) EXPECT_FALSE(n.down) << n.id;
  {
    std::lock_guard<std::mutex> lock(mu);
    beating.erase(n1);
  }
  Job again = wait_for("acme", j1->id, [](const Job& j) { return j.segments.size() == 2 && j.state == JobState::kRunning; });
  ASSERT_EQ(again.segments.size(), 2u);
  EXPECT_EQ(again.segments[1].nodes[0].node, n2);
  EXPECT_TRUE(has_event(again, "node_lost"));
  EXPECT_TRUE(has_event(again, "requeued"));
  ASSERT_TRUE(ctl_->cancel("acme", j1->id).is_ok());
  wait_done("acme", j1->id);
  stop = true;
  beats.join();
  std::this_thread::sleep_for(200ms);
  auto m = metered_for(j1->id);
  ASSERT_EQ(m.size(), 2u);
  // Segment 0 is billed until the lost node's last heartbeat, not until the kill a second later.
  EXPECT_LE(m[0].ended_us, again.segments[1].started_us);
  EXPECT_GT(m[0].ended_us, m[0].started_us);
}

// CPU-only jobs need no GPU, so a per-organization cap bounds them; GPU jobs and other orgs are not
// counted, and ended jobs free their place.
TEST_F(LocalJobControllerTest, CpuOnlyJobsAreBoundedPerOrganization) {
  std::vector<std::string> ids;
  for (int i = 0; i < 4; ++i) {
    auto j = ctl_->submit("acme", "p", shell("sleep 30", 0));
    ASSERT_TRUE(j.is_ok()) << j.status().to_string();
    ids.push_back(j->id);
  }
  const Status fifth = ctl_->submit("acme", "p", shell("sleep 30", 0)).status();
  EXPECT_EQ(fifth.code(), StatusCode::kResourceExhausted) << fifth.to_string();
  EXPECT_EQ(fifth.field(), "gpus");
  auto other = ctl_->submit("other", "p", shell("true", 0));
  EXPECT_TRUE(other.is_ok()) << "the cap is per organization";
  auto gpu = ctl_->submit("acme", "p", shell("true", 1));
  EXPECT_TRUE(gpu.is_ok()) << "GPU jobs are not counted";
  for (const auto& id : ids) ASSERT_TRUE(ctl_->cancel("acme", id).is_ok());
  for (const auto& id : ids) wait_done("acme", id);
  EXPECT_TRUE(ctl_->submit("acme", "p", shell("true", 0)).is_ok()) << "ended jobs free their place";
}

// What a segment is billed as: GPU-seconds rounded up; a CPU-only job's seconds on its own item; a run
// that started is at least one unit.
TEST(GpuMetering, SegmentsBillGpuSecondsCpuSecondsAndAtLeastOneUnit) {
  SegmentUsage u;
  u.job_id = "job_1";
  u.org = "acme";
  u.project = "p";
  u.gpu_type = "H100";
  u.item_class = "on-demand";
  u.segment = 2;
  u.started_us = 1'000'000;
  u.gpu_milli = 2000;
  u.ended_us = u.started_us + 1'500'000;
  GpuUsage g = gpu_usage(u);
  EXPECT_EQ(g.item, "gpu-seconds/H100/on-demand");
  EXPECT_EQ(g.quantity, 3);
  EXPECT_EQ(g.id, "job_1/2");
  EXPECT_EQ(g.source, "neocloud/capacity");
  EXPECT_EQ(g.data["gpu_milli"], 2000);
  u.gpu_milli = 0;
  u.ended_us = u.started_us + 2'100'000;
  g = gpu_usage(u);
  EXPECT_EQ(g.item, "cpu-seconds/on-demand");
  EXPECT_EQ(g.type, "cpu.seconds");
  EXPECT_EQ(g.quantity, 3);
  u.ended_us = u.started_us;  // started and ended at once
  EXPECT_EQ(gpu_usage(u).quantity, 1);
  u.gpu_milli = 250;
  u.ended_us = u.started_us + 1000;
  EXPECT_EQ(gpu_usage(u).quantity, 1);
}

// Jobs and quotas survive a restart: history stays, queued jobs queue again, a job that was running when
// the process went away has its segment closed at the last heartbeat, metered, and is requeued.
TEST_F(LocalJobControllerTest, RestartRecoversJobsQuotasAndInterruptedSegments) {
  ctl_.reset();
  auto db = storage::Database::open("sqlite:" + dir_ + "/nc.db");
  ASSERT_TRUE(db.is_ok()) << db.status().to_string();
  ASSERT_TRUE(storage::migrate(**db, nc::test::all_migrations()).is_ok());
  ASSERT_TRUE((*db)->transact([](storage::Transaction& tx) -> Status {
                return tx.exec("INSERT INTO organizations (id, name, created_at) VALUES ('acme', 'acme', 0)").status();
              }).is_ok());
  JobStore store(**db);
  std::string long_id, blocked_id, done_id;
  int64_t alive_before_stop = 0;
  {
    auto a = make_controller(&store);
    ASSERT_TRUE(a->recover().is_ok());
    a->start();
    ctl_ = std::move(a);
    ASSERT_TRUE(ctl_->set_quota("acme", "", 2000).is_ok());
    auto done = ctl_->submit("acme", "p", shell("echo finished", 1));
    ASSERT_TRUE(done.is_ok());
    done_id = done->id;
    ASSERT_EQ(wait_done("acme", done_id).state, JobState::kSucceeded);
    auto lj = ctl_->submit("acme", "p", shell("sleep 60", 2));
    auto bj = ctl_->submit("acme", "p", shell("echo later", 2));
    ASSERT_TRUE(lj.is_ok() && bj.is_ok());
    long_id = lj->id;
    blocked_id = bj->id;
    wait_for("acme", long_id, [](const Job& j) { return j.state == JobState::kRunning; });
    std::this_thread::sleep_for(2500ms);  // a heartbeat or two are saved
    alive_before_stop = ctl_->get("acme", long_id)->alive_us;
    EXPECT_GT(alive_before_stop, 0);
    EXPECT_EQ(ctl_->get("acme", blocked_id)->pending_reason, "quota");
    ctl_.reset();  // the process "dies": its jobs are killed, nothing more is recorded
  }
  {
    std::lock_guard<std::mutex> lock(metered_.mu);
    metered_.calls.clear();
  }
  ctl_ = make_controller(&store);
  ASSERT_TRUE(ctl_->recover().is_ok());
  // History: the finished job is still there, unchanged.
  Job done = *ctl_->get("acme", done_id);
  EXPECT_EQ(done.state, JobState::kSucceeded);
  EXPECT_TRUE(has_event(done, "succeeded"));
  EXPECT_EQ(log_of("acme", done_id), "finished\n");
  // The interrupted job: segment 0 closed at its last heartbeat, and held (not relaunched blindly: a job
  // that kills the server would crash it in a loop).
  Job lj = *ctl_->get("acme", long_id);
  EXPECT_EQ(lj.state, JobState::kQueued);
  EXPECT_TRUE(lj.held);
  EXPECT_EQ(lj.pending_reason, "held");
  ASSERT_EQ(lj.segments.size(), 1u);
  EXPECT_EQ(lj.segments[0].end, "interrupted");
  EXPECT_EQ(lj.segments[0].ended_us, alive_before_stop);
  EXPECT_TRUE(has_event(lj, "interrupted"));
  EXPECT_TRUE(has_event(lj, "held"));
  ctl_->start();
  // The server goes on with the other jobs; the held one does not run.
  EXPECT_EQ(wait_for("acme", blocked_id, [](const Job& j) { return is_terminal(j.state); }).state, JobState::kSucceeded);
  EXPECT_EQ(ctl_->get("acme", long_id)->state, JobState::kQueued);
  EXPECT_EQ(ctl_->get("acme", long_id)->segments.size(), 1u) << "the held job ran";
  // The interrupted segment was metered once after the restart.
  auto m = metered_for(long_id);
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].segment, 0);
  EXPECT_EQ(m[0].end, "interrupted");
  EXPECT_EQ(m[0].ended_us, alive_before_stop);
  EXPECT_TRUE(metered_for(done_id).empty());  // metered before the restart, not again
  // Released, it runs again (segment 1); releasing what is not held is a 409.
  EXPECT_EQ(ctl_->release("acme", done_id).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(ctl_->release("other", long_id).status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(ctl_->release("acme", long_id).is_ok());
  lj = wait_for("acme", long_id, [](const Job& j) { return j.state == JobState::kRunning; });
  EXPECT_EQ(lj.segments.size(), 2u);
  EXPECT_FALSE(lj.held);
  EXPECT_TRUE(has_event(lj, "released"));
  // The server dies again while it runs: held again, across the restart.
  std::this_thread::sleep_for(1500ms);  // segment 1 is saved as running
  ctl_.reset();
  ctl_ = make_controller(&store);
  ASSERT_TRUE(ctl_->recover().is_ok());
  Job held = *ctl_->get("acme", long_id);
  EXPECT_EQ(held.state, JobState::kQueued);
  EXPECT_EQ(held.pending_reason, "held");
  ASSERT_EQ(held.segments.size(), 2u);
  EXPECT_EQ(held.segments[1].end, "interrupted");
  ctl_->start();
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(ctl_->get("acme", long_id)->segments.size(), 2u) << "the held job ran again unreleased";
  ASSERT_TRUE(ctl_->cancel("acme", long_id).is_ok());
  EXPECT_EQ(ctl_->get("acme", long_id)->state, JobState::kCancelled);
  ctl_.reset();
  db->reset();
}

#ifdef NC_SLURM_DIR
INSTANTIATE_TEST_SUITE_P(Slurm, JobControllerTest, ::testing::Values(slurm_harness()));
#endif
INSTANTIATE_TEST_SUITE_P(Local, JobControllerTest, ::testing::Values(local_harness()));

}  // namespace
}  // namespace nc::capacity
