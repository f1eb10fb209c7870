// The capacity scheduler: gang and topology placement, quotas, DRF fair share, priority classes with
// preemption, EASY backfill, fractional GPUs, and a randomized invariant check of its books.
#include "capacity/scheduler.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>

namespace nc::capacity {
namespace {

constexpr int64_t kSec = 1000000;

Node gpu_node(const std::string& id, int gpus, const std::string& type = "H100", const std::string& rack = "r0") {
  Node n = make_node(id, 64000, 512 * 1024, gpus, type);
  n.rack = rack;
  n.gpu_memory_mib = type == "H100" ? 81920 : 24576;
  return n;
}

std::unique_ptr<Scheduler> make(std::vector<Node> nodes, SchedulerOptions o = {}) {
  auto s = Scheduler::create(Cluster(std::move(nodes)), o);
  EXPECT_TRUE(s.is_ok()) << s.status().to_string();
  return std::move(s).value();
}

SchedJob job(uint64_t id, const std::string& org, int gpus, PriorityClass p = PriorityClass::kOnDemand,
             int64_t max_s = 3600, int nodes = 0) {
  SchedJob j;
  j.id = id;
  j.org = org;
  j.priority = p;
  j.shape.gpus = gpus;
  j.shape.nodes = nodes;
  j.shape.cpu_milli = 1000;
  j.shape.memory_mib = 1024;
  j.max_duration_s = max_s;
  j.submitted_us = static_cast<int64_t>(id);
  return j;
}

std::set<uint64_t> started(const std::vector<Decision>& ds) {
  std::set<uint64_t> s;
  for (const auto& d : ds) {
    if (d.kind == Decision::Kind::kStart) s.insert(d.job);
  }
  return s;
}

std::set<uint64_t> preempted(const std::vector<Decision>& ds) {
  std::set<uint64_t> s;
  for (const auto& d : ds) {
    if (d.kind == Decision::Kind::kPreempt) s.insert(d.job);
  }
  return s;
}

const Decision* find(const std::vector<Decision>& ds, uint64_t id, Decision::Kind k = Decision::Kind::kStart) {
  for (const auto& d : ds) {
    if (d.job == id && d.kind == k) return &d;
  }
  return nullptr;
}

TEST(SchedulerTest, GangTakesAllItsNodesOrNothing) {
  auto s = make({gpu_node("a", 8), gpu_node("b", 8)});
  ASSERT_TRUE(s->submit(job(1, "o", 6)).is_ok());
  ASSERT_TRUE(s->submit(job(2, "o", 6)).is_ok());
  auto d = s->schedule(0);
  EXPECT_EQ(started(d), (std::set<uint64_t>{1, 2}));
  // 4 GPUs are left, 2 on each node: a 4-GPU job that must be on one node waits; on two nodes it runs.
  ASSERT_TRUE(s->submit(job(3, "o", 4, PriorityClass::kOnDemand, 3600, 1)).is_ok());
  d = s->schedule(1);
  EXPECT_TRUE(d.empty());
  EXPECT_EQ(s->info(3)->state, JobInfo::State::kQueued);
  EXPECT_EQ(s->info(3)->reason, PendingReason::kResources);
  ASSERT_TRUE(s->remove(3).is_ok());
  ASSERT_TRUE(s->submit(job(4, "o", 4)).is_ok());
  d = s->schedule(2);
  const Decision* st = find(d, 4);
  ASSERT_NE(st, nullptr);
  ASSERT_EQ(st->placement.parts.size(), 2u);
  for (const auto& part : st->placement.parts) EXPECT_EQ(part.gpus.size(), 2u);
  EXPECT_EQ(s->cluster().gpu_free_milli(), 0);
  // An 8-GPU job on a full cluster never gets a partial grant.
  ASSERT_TRUE(s->submit(job(5, "o", 8)).is_ok());
  EXPECT_TRUE(s->schedule(3).empty());
  EXPECT_EQ(s->cluster().gpu_free_milli(), 0);
}

TEST(SchedulerTest, FewestNodesAndOneRack) {
  std::vector<Node> nodes = {gpu_node("a", 8, "H100", "r1"), gpu_node("b", 8, "H100", "r2"),
                             gpu_node("c", 8, "H100", "r2"), gpu_node("d", 8, "H100", "r1"),
                             gpu_node("e", 8, "H100", "r2")};
  auto s = make(nodes);
  // 16 GPUs: two whole nodes, both in one rack (r1 has exactly two: the tightest rack that fits).
  ASSERT_TRUE(s->submit(job(1, "o", 16)).is_ok());
  auto d = s->schedule(0);
  const Decision* st = find(d, 1);
  ASSERT_NE(st, nullptr);
  ASSERT_EQ(st->placement.parts.size(), 2u);
  std::set<std::string> racks;
  for (const auto& p : st->placement.parts) racks.insert(s->cluster().node(p.node).rack);
  EXPECT_EQ(racks, (std::set<std::string>{"r1"}));
  // 8 GPUs fit on one node: one node, not two halves.
  ASSERT_TRUE(s->submit(job(2, "o", 8)).is_ok());
  d = s->schedule(1);
  ASSERT_NE(find(d, 2), nullptr);
  EXPECT_EQ(find(d, 2)->placement.parts.size(), 1u);
}

TEST(SchedulerTest, PrefersOneNvlinkIsland) {
  Node n = gpu_node("a", 8);
  n.gpu_domain = {0, 0, 0, 0, 1, 1, 1, 1};
  auto s = make({n});
  ASSERT_TRUE(s->submit(job(1, "o", 2)).is_ok());
  auto d = s->schedule(0);
  ASSERT_NE(find(d, 1), nullptr);
  // A 4-GPU job must not straddle islands (2,3 + 4,5): it gets island 1 whole.
  ASSERT_TRUE(s->submit(job(2, "o", 4)).is_ok());
  d = s->schedule(1);
  ASSERT_NE(find(d, 2), nullptr);
  std::set<int> island;
  const Decision* d2 = find(d, 2);
  for (const auto& g : d2->placement.parts[0].gpus) island.insert(n.gpu_domain[g.gpu]);
  EXPECT_EQ(island.size(), 1u);
  // The 2-GPU job went to the tightest island that fits; then another 2 fill island 0.
  ASSERT_TRUE(s->submit(job(3, "o", 2)).is_ok());
  d = s->schedule(2);
  ASSERT_NE(find(d, 3), nullptr);
  for (const auto& g : find(d, 3)->placement.parts[0].gpus) EXPECT_EQ(n.gpu_domain[g.gpu], 0);
}

TEST(SchedulerTest, QuotaPerOrgAndType) {
  auto s = make({gpu_node("a", 8), gpu_node("b", 8, "L4")});
  ASSERT_TRUE(s->set_quota("acme", "H100", 4000).is_ok());
  EXPECT_FALSE(s->set_quota("acme", "nope", 1000).is_ok());
  for (uint64_t i = 1; i <= 3; ++i) {
    SchedJob j = job(i, "acme", 2);
    j.shape.gpu_types = {"H100"};
    ASSERT_TRUE(s->submit(j).is_ok());
  }
  auto d = s->schedule(0);
  EXPECT_EQ(started(d), (std::set<uint64_t>{1, 2}));
  EXPECT_EQ(s->info(3)->reason, PendingReason::kQuota);
  EXPECT_EQ(s->org_gpu_milli("acme"), 4000);
  // Another org is not limited by acme's quota.
  ASSERT_TRUE(s->submit(job(4, "other", 2)).is_ok());
  EXPECT_EQ(started(s->schedule(1)), (std::set<uint64_t>{4}));
  // A job allowed on either type goes where the quota leaves room (L4).
  ASSERT_TRUE(s->submit(job(5, "acme", 2)).is_ok());
  d = s->schedule(2);
  ASSERT_NE(find(d, 5), nullptr);
  EXPECT_EQ(find(d, 5)->placement.gpu_type, "L4");
  // A total limit over all types.
  ASSERT_TRUE(s->set_quota("acme", "", 6000).is_ok());
  ASSERT_TRUE(s->submit(job(6, "acme", 1)).is_ok());
  EXPECT_TRUE(started(s->schedule(3)).empty());
  ASSERT_TRUE(s->remove(1).is_ok());
  // Job 3 now fits both limits (H100 2+2 of 4, total 6 of 6); job 6 would exceed the total.
  EXPECT_EQ(started(s->schedule(4)), (std::set<uint64_t>{3}));
  EXPECT_EQ(s->info(6)->reason, PendingReason::kQuota);
}

TEST(SchedulerTest, QuotaFreedByRemoveLetsTheNextJobStart) {
  auto s = make({gpu_node("a", 8)});
  ASSERT_TRUE(s->set_quota("acme", "", 2000).is_ok());
  ASSERT_TRUE(s->submit(job(1, "acme", 2)).is_ok());
  ASSERT_TRUE(s->submit(job(2, "acme", 2)).is_ok());
  EXPECT_EQ(started(s->schedule(0)), (std::set<uint64_t>{1}));
  EXPECT_EQ(s->info(2)->reason, PendingReason::kQuota);
  ASSERT_TRUE(s->remove(1).is_ok());
  EXPECT_EQ(started(s->schedule(1)), (std::set<uint64_t>{2}));
}

TEST(SchedulerTest, DrfSharesFreeGpusAcrossOrgs) {
  auto s = make({gpu_node("a", 8)});
  // acme queued 10 jobs before beta queued any: beta still gets half.
  for (uint64_t i = 1; i <= 10; ++i) ASSERT_TRUE(s->submit(job(i, "acme", 1)).is_ok());
  for (uint64_t i = 11; i <= 20; ++i) ASSERT_TRUE(s->submit(job(i, "beta", 1)).is_ok());
  s->schedule(0);
  EXPECT_EQ(s->org_gpu_milli("acme"), 4000);
  EXPECT_EQ(s->org_gpu_milli("beta"), 4000);
  // Within an org, FIFO: acme's first four run.
  for (uint64_t i = 1; i <= 4; ++i) EXPECT_EQ(s->info(i)->state, JobInfo::State::kRunning) << i;
  // Weights: gamma with weight 3 vs delta weight 1 on a fresh cluster.
  auto w = make({gpu_node("a", 8)});
  w->set_weight("gamma", 3.0);
  for (uint64_t i = 1; i <= 10; ++i) ASSERT_TRUE(w->submit(job(i, "delta", 1)).is_ok());
  for (uint64_t i = 11; i <= 20; ++i) ASSERT_TRUE(w->submit(job(i, "gamma", 1)).is_ok());
  w->schedule(0);
  EXPECT_EQ(w->org_gpu_milli("gamma"), 6000);
  EXPECT_EQ(w->org_gpu_milli("delta"), 2000);
}

TEST(SchedulerTest, OnDemandPreemptsNewestSpotAndWaitsForIt) {
  auto s = make({gpu_node("a", 8)});
  for (uint64_t i = 1; i <= 4; ++i) ASSERT_TRUE(s->submit(job(i, "spotter", 2, PriorityClass::kSpot)).is_ok());
  for (uint64_t i = 1; i <= 4; ++i) {
    ASSERT_EQ(started(s->schedule(static_cast<int64_t>(i) * kSec)).size(), i == 1 ? 4u : 0u);
  }
  // Spot never preempts spot; on-demand never preempts on-demand.
  ASSERT_TRUE(s->submit(job(10, "spotter", 2, PriorityClass::kSpot)).is_ok());
  EXPECT_TRUE(s->schedule(10 * kSec).empty());
  ASSERT_TRUE(s->remove(10).is_ok());
  // A 4-GPU on-demand job stops exactly two spot jobs and starts once they have stopped.
  ASSERT_TRUE(s->submit(job(20, "buyer", 4)).is_ok());
  auto d = s->schedule(20 * kSec);
  EXPECT_EQ(preempted(d).size(), 2u);
  const Decision* st = find(d, 20);
  ASSERT_NE(st, nullptr);
  EXPECT_EQ(std::set<uint64_t>(st->after.begin(), st->after.end()), preempted(d));
  for (uint64_t v : preempted(d)) {
    const auto info = s->info(v);
    ASSERT_TRUE(info.has_value());
    EXPECT_EQ(info->state, JobInfo::State::kStopping);
    for (const auto& g : info->placement.parts[0].gpus) {
      bool shared = false;
      for (const auto& h : st->placement.parts[0].gpus) shared = shared || g.gpu == h.gpu;
      EXPECT_TRUE(shared) << "victim " << v << " GPU " << g.gpu << " not taken by the preemptor";
    }
  }
  EXPECT_EQ(s->cluster().gpu_free_milli(), 0);
  EXPECT_EQ(s->org_gpu_milli("spotter"), 4000);
  EXPECT_EQ(s->org_gpu_milli("buyer"), 4000);
  // The controller reports the victims ended and requeues them: they wait (no room), nothing is lost.
  for (uint64_t v : preempted(d)) {
    ASSERT_TRUE(s->remove(v).is_ok());
    SchedJob again = job(v, "spotter", 2, PriorityClass::kSpot);
    ASSERT_TRUE(s->submit(again).is_ok());
  }
  EXPECT_TRUE(s->schedule(21 * kSec).empty());
  EXPECT_EQ(s->queued(), 2u);
  // When the on-demand job ends, the requeued spot jobs run again.
  ASSERT_TRUE(s->remove(20).is_ok());
  EXPECT_EQ(started(s->schedule(22 * kSec)).size(), 2u);
}

TEST(SchedulerTest, NoPreemptionWhenItCannotMakeRoom) {
  auto s = make({gpu_node("a", 8)});
  ASSERT_TRUE(s->submit(job(1, "x", 6)).is_ok());
  ASSERT_TRUE(s->submit(job(2, "y", 2, PriorityClass::kSpot)).is_ok());
  EXPECT_EQ(started(s->schedule(0)).size(), 2u);
  // 4 GPUs: stopping the 2-GPU spot job leaves only 2; no victim is taken in vain.
  ASSERT_TRUE(s->submit(job(3, "z", 4)).is_ok());
  EXPECT_TRUE(s->schedule(1).empty());
  EXPECT_EQ(s->info(2)->state, JobInfo::State::kRunning);
}

TEST(SchedulerTest, EasyBackfillNeverDelaysTheReservedJob) {
  auto s = make({gpu_node("a", 8), gpu_node("b", 2)});
  ASSERT_TRUE(s->submit(job(1, "o", 2, PriorityClass::kOnDemand, 1000)).is_ok());  // best fit: all of b
  ASSERT_TRUE(s->submit(job(2, "o", 6, PriorityClass::kOnDemand, 100, 1)).is_ok());  // on a
  auto d = s->schedule(0);
  ASSERT_EQ(started(d).size(), 2u);
  const size_t node_a = find(d, 2)->placement.parts[0].node;
  ASSERT_EQ(s->cluster().node(find(d, 1)->placement.parts[0].node).id, "b");
  // Node a: 2 free until t=100 s; node b: full until t=1000 s.
  ASSERT_TRUE(s->submit(job(3, "o", 8, PriorityClass::kOnDemand, 100)).is_ok());   // head: needs all of a at 100 s
  ASSERT_TRUE(s->submit(job(4, "o", 2, PriorityClass::kOnDemand, 500)).is_ok());   // would delay job 3
  ASSERT_TRUE(s->submit(job(5, "o", 2, PriorityClass::kOnDemand, 50)).is_ok());    // ends before 100 s
  d = s->schedule(1 * kSec);
  EXPECT_EQ(started(d), (std::set<uint64_t>{5}));
  ASSERT_NE(find(d, 5), nullptr);
  EXPECT_EQ(find(d, 5)->placement.parts[0].node, node_a);
  EXPECT_TRUE(s->last_cycle().shadow);
  EXPECT_EQ(s->info(4)->reason, PendingReason::kBackfill);
  EXPECT_EQ(s->info(3)->reason, PendingReason::kResources);
  // Job 2 ends at 100 s (job 5 before it): job 3 starts then, undelayed.
  ASSERT_TRUE(s->remove(2).is_ok());
  ASSERT_TRUE(s->remove(5).is_ok());
  d = s->schedule(100 * kSec);
  EXPECT_EQ(started(d).count(3), 1u);
}

TEST(SchedulerTest, BackfillOffLetsLongJobsJump) {
  SchedulerOptions o;
  o.backfill = false;
  auto s = make({gpu_node("a", 8)}, o);
  ASSERT_TRUE(s->submit(job(1, "o", 6, PriorityClass::kOnDemand, 100)).is_ok());
  s->schedule(0);
  ASSERT_TRUE(s->submit(job(3, "o", 8)).is_ok());
  ASSERT_TRUE(s->submit(job(4, "o", 2, PriorityClass::kOnDemand, 500)).is_ok());
  EXPECT_EQ(started(s->schedule(1)), (std::set<uint64_t>{4}));
}

TEST(SchedulerTest, FractionalJobsShareAGpu) {
  auto s = make({gpu_node("a", 2)});
  for (uint64_t i = 1; i <= 5; ++i) {
    SchedJob j = job(i, "o", 1);
    j.shape.gpu_milli = 250;
    ASSERT_TRUE(s->submit(j).is_ok());
  }
  auto d = s->schedule(0);
  ASSERT_EQ(started(d).size(), 5u);
  std::map<int, int32_t> per_gpu;
  for (const auto& x : d) {
    ASSERT_EQ(x.placement.parts[0].gpus.size(), 1u);
    per_gpu[x.placement.parts[0].gpus[0].gpu] += x.placement.parts[0].gpus[0].milli;
  }
  // Best fit packs four on one GPU and the fifth on the other.
  EXPECT_EQ(per_gpu.size(), 2u);
  EXPECT_EQ(std::max(per_gpu[0], per_gpu[1]), 1000);
  // A whole-GPU job cannot take the partly used GPU.
  ASSERT_TRUE(s->submit(job(6, "o", 1)).is_ok());
  EXPECT_TRUE(s->schedule(1).empty());
  EXPECT_EQ(s->cluster().gpu_allocated_milli(), 1250);
}

TEST(SchedulerTest, SubmitRefusesWhatCanNeverRun) {
  auto s = make({gpu_node("a", 8), gpu_node("b", 8, "L4")});
  EXPECT_EQ(s->submit(job(1, "o", 16, PriorityClass::kOnDemand, 10, 1)).code(), StatusCode::kFailedPrecondition);
  SchedJob big = job(2, "o", 4);
  big.shape.min_gpu_memory_mib = 100000;
  Status st = s->submit(big);
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(st.message().find("H100"), std::string::npos) << st.message();
  SchedJob wrong = job(3, "o", 1);
  wrong.shape.gpu_types = {"B200"};
  EXPECT_EQ(s->submit(wrong).code(), StatusCode::kFailedPrecondition);
  SchedJob bad = job(4, "o", 3, PriorityClass::kOnDemand, 10, 2);
  EXPECT_EQ(s->submit(bad).code(), StatusCode::kInvalidArgument);
  bad = job(5, "o", 2);
  bad.shape.gpu_milli = 500;
  EXPECT_EQ(s->submit(bad).code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(s->submit(job(6, "o", 1)).is_ok());
  EXPECT_EQ(s->submit(job(6, "o", 1)).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(s->remove(99).code(), StatusCode::kNotFound);
  // 16 GPUs with no node count: two H100 nodes? Only one H100 node exists, and types do not mix.
  EXPECT_EQ(s->submit(job(7, "o", 16)).code(), StatusCode::kFailedPrecondition);
}

Reservation res(uint64_t id, const std::string& org, int gpus, int64_t start_s, int64_t end_s) {
  return Reservation{id, org, "H100", gpus, start_s * kSec, end_s * kSec};
}

TEST(SchedulerReservations, AdmissionNeverPromisesMoreThanTheCapacity) {
  auto s = make({gpu_node("a", 8)});
  ASSERT_TRUE(s->add_reservation(res(1, "acme", 4, 100, 200), 0).is_ok());
  ASSERT_TRUE(s->add_reservation(res(2, "beta", 4, 150, 250), 0).is_ok());
  Status full = s->add_reservation(res(3, "gamma", 1, 160, 170), 0);
  EXPECT_EQ(full.code(), StatusCode::kFailedPrecondition) << full.to_string();
  EXPECT_TRUE(s->add_reservation(res(4, "gamma", 4, 200, 300), 0).is_ok());  // acme's has ended by then
  EXPECT_EQ(s->add_reservation(res(5, "x", 9, 500, 600), 0).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(s->add_reservation(res(6, "x", 1, 50, 40), 0).code(), StatusCode::kInvalidArgument);
  Reservation wrong = res(7, "x", 1, 500, 600);
  wrong.gpu_type = "B200";
  EXPECT_EQ(s->add_reservation(wrong, 0).code(), StatusCode::kInvalidArgument);
  // A running on-demand job that may run until t=1000 holds 6 GPUs through any window before then.
  ASSERT_TRUE(s->submit(job(10, "o", 6, PriorityClass::kOnDemand, 1000)).is_ok());
  ASSERT_EQ(started(s->schedule(0)).size(), 0u);  // 6 + acme's 4 at t=100 > 8: it must wait
  ASSERT_TRUE(s->set_quota("q", "", 2000).is_ok());
  EXPECT_EQ(s->add_reservation(res(8, "q", 4, 700, 800), 0).code(), StatusCode::kFailedPrecondition);  // over quota
}

TEST(SchedulerReservations, WindowIsProtectedThenJobsRunInsideAndStopAtTheEnd) {
  auto s = make({gpu_node("a", 4), gpu_node("b", 4)});
  ASSERT_TRUE(s->add_reservation(res(1, "acme", 4, 100, 200), 0).is_ok());
  // Before the start: an on-demand job ending after t=100 may take only what the reservation leaves.
  ASSERT_TRUE(s->submit(job(10, "o", 6, PriorityClass::kOnDemand, 1000)).is_ok());
  ASSERT_TRUE(s->submit(job(11, "o", 4, PriorityClass::kOnDemand, 1000)).is_ok());
  ASSERT_TRUE(s->submit(job(12, "o", 4, PriorityClass::kOnDemand, 50)).is_ok());  // ends before the window
  auto d = s->schedule(1 * kSec);
  EXPECT_EQ(started(d), (std::set<uint64_t>{11, 12}));
  ASSERT_TRUE(s->remove(12).is_ok());  // ended at t=51
  // A spot job may use the reserved GPUs meanwhile...
  ASSERT_TRUE(s->submit(job(13, "s", 4, PriorityClass::kSpot, 1000)).is_ok());
  EXPECT_EQ(started(s->schedule(60 * kSec)), (std::set<uint64_t>{13}));
  // ...and is preempted when the reservation starts.
  SchedJob in = job(20, "acme", 2);
  in.reservation = 1;
  ASSERT_TRUE(s->submit(in).is_ok());
  SchedJob in2 = job(21, "acme", 2);
  in2.reservation = 1;
  ASSERT_TRUE(s->submit(in2).is_ok());
  SchedJob in3 = job(22, "acme", 1);
  in3.reservation = 1;
  ASSERT_TRUE(s->submit(in3).is_ok());
  SchedJob other = job(23, "intruder", 1);
  other.reservation = 1;
  EXPECT_EQ(s->submit(other).code(), StatusCode::kNotFound);  // another org's reservation does not exist for it
  EXPECT_TRUE(started(s->schedule(99 * kSec)).empty());       // not started yet
  d = s->schedule(100 * kSec);
  EXPECT_EQ(preempted(d), (std::set<uint64_t>{13}));
  EXPECT_EQ(started(d), (std::set<uint64_t>{20, 21}));  // FIFO; job 22 waits for room inside
  auto info = s->reservation_info(1);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->state, ReservationInfo::State::kActive);
  EXPECT_EQ(info->queued, 1);
  std::set<std::pair<size_t, int>> held;
  for (const auto& p : info->placement.parts) {
    for (const auto& g : p.gpus) held.insert({p.node, g.gpu});
  }
  for (uint64_t id : {20u, 21u}) {
    const Decision* st = find(d, id);
    ASSERT_NE(st, nullptr);
    EXPECT_EQ(st->after, std::vector<uint64_t>{13});  // launched after the spot job stopped
    for (const auto& p : st->placement.parts) {
      for (const auto& g : p.gpus) EXPECT_TRUE(held.count({p.node, g.gpu})) << "job " << id << " outside the reservation";
    }
  }
  ASSERT_TRUE(s->remove(13).is_ok());
  ASSERT_TRUE(s->remove(20).is_ok());
  EXPECT_EQ(started(s->schedule(150 * kSec)), (std::set<uint64_t>{22}));
  // At the end its jobs are stopped; the GPUs return once they have.
  d = s->schedule(200 * kSec);
  std::set<uint64_t> stopped;
  for (const auto& x : d) {
    if (x.kind == Decision::Kind::kStop) stopped.insert(x.job);
  }
  EXPECT_EQ(stopped, (std::set<uint64_t>{21, 22}));
  const int64_t before = s->cluster().gpu_allocated_milli();
  ASSERT_TRUE(s->remove(21).is_ok());
  ASSERT_TRUE(s->remove(22).is_ok());
  s->schedule(201 * kSec);
  EXPECT_FALSE(s->reservation_info(1).has_value());
  EXPECT_EQ(s->cluster().gpu_allocated_milli(), before - 4000);
  EXPECT_EQ(s->org_gpu_milli("acme"), 0);
}

TEST(SchedulerReservations, CancelDropsQueuedJobs) {
  auto s = make({gpu_node("a", 8)});
  ASSERT_TRUE(s->add_reservation(res(1, "acme", 2, 10, 20), 0).is_ok());
  SchedJob in = job(5, "acme", 1);
  in.reservation = 1;
  ASSERT_TRUE(s->submit(in).is_ok());
  ASSERT_TRUE(s->cancel_reservation(1).is_ok());
  auto d = s->schedule(1 * kSec);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].kind, Decision::Kind::kStop);
  EXPECT_EQ(d[0].job, 5u);
  EXPECT_FALSE(s->info(5).has_value());
  EXPECT_FALSE(s->reservation_info(1).has_value());
  EXPECT_EQ(s->cancel_reservation(1).code(), StatusCode::kNotFound);
}

// Random submits, cycles and removals; after every step the books must balance: free capacity equals
// capacity minus what running jobs hold, no node is over-committed, quotas hold, gangs are whole.
TEST(SchedulerTest, RandomizedBooksBalance) {
  std::mt19937_64 rng(42);
  std::vector<Node> nodes;
  for (int i = 0; i < 12; ++i) {
    Node n = gpu_node("n" + std::to_string(i), i % 3 == 0 ? 4 : 8, i % 4 == 0 ? "L4" : "H100", "r" + std::to_string(i % 3));
    if (n.num_gpus() == 8) n.gpu_domain = {0, 0, 0, 0, 1, 1, 1, 1};
    nodes.push_back(n);
  }
  auto s = make(nodes);
  const std::vector<std::string> orgs = {"a", "b", "c"};
  ASSERT_TRUE(s->set_quota("a", "H100", 16000).is_ok());
  ASSERT_TRUE(s->set_quota("b", "", 24000).is_ok());
  std::map<uint64_t, SchedJob> live;
  std::set<uint64_t> running;
  uint64_t next = 1;
  int64_t now = 0;
  int starts = 0, preemptions = 0;
  for (int step = 0; step < 3000; ++step) {
    now += kSec;
    const int op = static_cast<int>(rng() % 10);
    if (op < 5) {
      SchedJob j = job(next++, orgs[rng() % 3], static_cast<int>(rng() % 9), static_cast<PriorityClass>(rng() % 3),
                       static_cast<int64_t>(rng() % 500));
      if (rng() % 5 == 0) {
        j.shape.gpus = 1;
        j.shape.gpu_milli = static_cast<int32_t>(100 + rng() % 800);
      }
      if (rng() % 7 == 0 && j.shape.gpus >= 2 && j.shape.gpus % 2 == 0) j.shape.nodes = 2;
      if (rng() % 9 == 0) j.shape.gpus = 16;
      Status st = s->submit(j);
      if (st.is_ok()) live[j.id] = j;
    } else if (op < 8 && !live.empty()) {
      auto it = live.begin();
      std::advance(it, static_cast<long>(rng() % live.size()));
      ASSERT_TRUE(s->remove(it->first).is_ok());
      running.erase(it->first);
      live.erase(it);
    } else {
      for (const auto& d : s->schedule(now)) {
        preemptions += d.kind == Decision::Kind::kPreempt ? 1 : 0;
        if (d.kind == Decision::Kind::kStart) {
          ++starts;
          running.insert(d.job);
          const SchedJob& j = live.at(d.job);
          int64_t milli = 0;
          std::set<size_t> used_nodes;
          for (const auto& p : d.placement.parts) {
            EXPECT_TRUE(used_nodes.insert(p.node).second) << "a gang uses a node twice";
            EXPECT_EQ(s->cluster().node(p.node).gpu_type, d.placement.gpu_type);
            for (const auto& g : p.gpus) milli += g.milli;
          }
          EXPECT_EQ(milli, j.shape.total_gpu_milli()) << "job " << d.job << " got a partial gang";
          if (j.shape.nodes > 0) {
            EXPECT_EQ(static_cast<int>(d.placement.parts.size()), j.shape.nodes);
          }
        }
      }
    }
    // Books: sum over running (not stopping) jobs == allocated.
    int64_t held = 0;
    std::map<std::string, int64_t> per_org;
    std::map<std::string, int64_t> a_h100;
    for (uint64_t id : running) {
      auto info = s->info(id);
      ASSERT_TRUE(info.has_value());
      if (info->state != JobInfo::State::kRunning) continue;
      held += info->placement.total_gpu_milli();
      per_org[live.at(id).org] += info->placement.total_gpu_milli();
      if (info->placement.gpu_type == "H100") a_h100[live.at(id).org] += info->placement.total_gpu_milli();
    }
    ASSERT_EQ(held, s->cluster().gpu_allocated_milli()) << "step " << step;
    for (const auto& o : orgs) EXPECT_EQ(per_org[o], s->org_gpu_milli(o));
    EXPECT_LE(a_h100["a"], 16000);
    EXPECT_LE(per_org["b"], 24000);
    for (const auto& n : s->cluster().nodes()) {
      for (int32_t f : n.gpu_free) ASSERT_TRUE(f >= 0 && f <= 1000);
      ASSERT_GE(n.cpu_free, 0);
    }
    // Preempted jobs: the test plays the controller and reports them stopped right away.
    for (auto it = running.begin(); it != running.end();) {
      auto info = s->info(*it);
      if (info && info->state == JobInfo::State::kStopping) {
        ASSERT_TRUE(s->remove(*it).is_ok());
        live.erase(*it);
        it = running.erase(it);
      } else {
        ++it;
      }
    }
  }
  // The walk really exercised the scheduler.
  EXPECT_GT(starts, 300);
  EXPECT_GT(preemptions, 10);
}

}  // namespace
}  // namespace nc::capacity
