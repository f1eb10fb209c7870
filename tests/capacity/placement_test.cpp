// Tests for the capacity scheduler's placement core: cluster allocation, CSV loaders, the RandomFit,
// BestFit and FGD policies, and the trace replay (with numbers computed by hand).
#include <gtest/gtest.h>

#include <set>

#include "capacity/cluster.h"
#include "capacity/placement.h"
#include "capacity/trace_sim.h"

namespace nc::capacity {
namespace {

TaskRequest gpu_task(int num_gpu, int32_t gpu_milli = kMilliPerGpu, std::vector<std::string> types = {}) {
  TaskRequest t;
  t.name = "t";
  t.cpu_milli = 1000;
  t.memory_mib = 1024;
  t.num_gpu = num_gpu;
  t.gpu_milli = num_gpu > 0 ? gpu_milli : 0;
  t.gpu_types = std::move(types);
  return t;
}

Node node(const std::string& id, int gpus, const std::string& type = "T4", int64_t cpu = 64000) {
  return make_node(id, cpu, 256 * 1024, gpus, type);
}

// Takes `milli` of GPU g on node i (to build partly used clusters by hand).
void use(Cluster& c, size_t i, int g, int32_t milli) {
  Placement p;
  p.node = i;
  p.gpus.push_back({g, milli});
  ASSERT_TRUE(c.allocate(p).is_ok());
}

TargetWorkload target(std::vector<TargetWorkload::TaskType> types) { return TargetWorkload{std::move(types)}; }

std::vector<std::unique_ptr<PlacementPolicy>> all_policies(const TargetWorkload& t) {
  std::vector<std::unique_ptr<PlacementPolicy>> out;
  for (auto name : policy_names()) out.push_back(std::move(make_policy(name, t, 7).value()));
  return out;
}

const TargetWorkload kWholeGpus = target({{1, 1000, 1.0}});

TEST(Cluster, AllocateAndReleaseAreExactInverses) {
  Cluster c({node("a", 4), node("b", 2, "V100")});
  const Cluster before = c;
  std::vector<Placement> ps;
  Placement p1{0, {{0, 300}, {2, 1000}}, 5000, 2048};
  Placement p2{0, {{0, 700}}, 1000, 1};
  Placement p3{1, {{1, 1}}, 0, 0};
  for (const auto& p : {p1, p2, p3}) ASSERT_TRUE(c.allocate(p).is_ok());
  EXPECT_EQ(c.gpu_allocated_milli(), 2001);
  EXPECT_EQ(c.node(0).gpu_free, (std::vector<int32_t>{0, 1000, 0, 1000}));
  EXPECT_EQ(c.node(0).cpu_free, 64000 - 6000);
  // Over-allocation and malformed placements are refused and change nothing.
  const Cluster mid = c;
  EXPECT_FALSE(c.allocate(Placement{0, {{0, 1}}, 0, 0}).is_ok());
  EXPECT_FALSE(c.allocate(Placement{0, {{1, 500}, {1, 500}}, 0, 0}).is_ok());
  EXPECT_FALSE(c.allocate(Placement{0, {{9, 1}}, 0, 0}).is_ok());
  EXPECT_FALSE(c.allocate(Placement{5, {}, 0, 0}).is_ok());
  EXPECT_FALSE(c.allocate(Placement{1, {}, 1'000'000, 0}).is_ok());
  EXPECT_FALSE(c.release(Placement{0, {{1, 1}}, 0, 0}).is_ok());  // GPU 1 is fully free
  EXPECT_EQ(c.node(0).gpu_free, mid.node(0).gpu_free);
  EXPECT_EQ(c.gpu_free_milli(), mid.gpu_free_milli());
  for (const auto& p : {p2, p3, p1}) ASSERT_TRUE(c.release(p).is_ok());
  for (size_t i = 0; i < c.size(); ++i) {
    EXPECT_EQ(c.node(i).gpu_free, before.node(i).gpu_free);
    EXPECT_EQ(c.node(i).cpu_free, before.node(i).cpu_free);
    EXPECT_EQ(c.node(i).memory_free, before.node(i).memory_free);
  }
  EXPECT_EQ(c.gpu_free_milli(), before.gpu_free_milli());
}

TEST(Placement, GangNeverSpansNodesAndFailsWithoutOneFreeNode) {
  Cluster c({node("a", 4), node("b", 4), node("c", 8)});
  use(c, 0, 0, 1000);
  use(c, 0, 1, 1);  // a: 2 full GPUs
  use(c, 1, 3, 10);  // b: 3 full GPUs
  use(c, 2, 0, 1000);
  for (int g = 1; g < 6; ++g) use(c, 2, g, 500);  // c: 2 full GPUs (6, 7)
  for (auto& p : all_policies(kWholeGpus)) {
    EXPECT_FALSE(p->place(c, gpu_task(4))) << p->name();
    auto two = p->place(c, gpu_task(2));
    ASSERT_TRUE(two) << p->name();
    EXPECT_EQ(two->gpus.size(), 2u);
  }
  Cluster d = c;
  ASSERT_TRUE(d.release(Placement{1, {{3, 10}}, 0, 0}).is_ok());  // b: 4 full GPUs now
  for (auto& p : all_policies(kWholeGpus)) {
    auto four = p->place(d, gpu_task(4));
    ASSERT_TRUE(four) << p->name();
    EXPECT_EQ(four->node, 1u) << p->name();
    std::set<int> gpus;
    for (auto& s : four->gpus) {
      gpus.insert(s.gpu);
      EXPECT_EQ(s.milli, 1000);
    }
    EXPECT_EQ(gpus.size(), 4u);
    EXPECT_TRUE(d.allocate(*four).is_ok());
    ASSERT_TRUE(d.release(*four).is_ok());
  }
}

TEST(Placement, RespectsGpuTypeCpuAndMemory) {
  Cluster c({node("t4", 8, "T4"), node("v100", 1, "V100M32")});
  for (auto& p : all_policies(kWholeGpus)) {
    auto a = p->place(c, gpu_task(1, 1000, {"V100M16", "V100M32"}));
    ASSERT_TRUE(a) << p->name();
    EXPECT_EQ(a->node, 1u);
    EXPECT_FALSE(p->place(c, gpu_task(2, 1000, {"V100M32"}))) << p->name();
    EXPECT_FALSE(p->place(c, gpu_task(1, 1000, {"A100"}))) << p->name();
    TaskRequest big = gpu_task(1);
    big.cpu_milli = 100000;
    EXPECT_FALSE(p->place(c, big)) << p->name();
    big = gpu_task(1);
    big.memory_mib = 512 * 1024;
    EXPECT_FALSE(p->place(c, big)) << p->name();
  }
}

TEST(Placement, BestFitPacksFractionsOntoTheTightestGpu) {
  Cluster c({node("a", 2)});
  BestFitPolicy bf;
  auto place = [&](int32_t milli) {
    auto p = bf.place(c, gpu_task(1, milli));
    EXPECT_TRUE(p);
    EXPECT_TRUE(c.allocate(*p).is_ok());
    return p->gpus.at(0).gpu;
  };
  EXPECT_EQ(place(300), 0);
  EXPECT_EQ(place(300), 0);
  EXPECT_EQ(place(300), 0);
  EXPECT_EQ(place(500), 1);  // 100 left on GPU 0
  EXPECT_EQ(place(100), 0);  // exact fit
  EXPECT_EQ(c.node(0).gpu_free, (std::vector<int32_t>{0, 500}));
  EXPECT_FALSE(bf.place(c, gpu_task(1, 600)));
}

TEST(Placement, BestFitPicksTheTightestNode) {
  Cluster c({node("a", 8), node("b", 2), node("c", 4), node("d", 4)});
  use(c, 2, 0, 1000);
  use(c, 2, 1, 1000);  // c: 2 full GPUs free of 4
  use(c, 3, 0, 400);   // d: 3.6 GPUs free
  BestFitPolicy bf;
  // 2 whole GPUs leave a 6000, b 0, c 0, d 1600 milli: b and c tie on GPU and CPU, the lower index wins.
  auto p = bf.place(c, gpu_task(2));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->node, 1u);
  // 3 whole GPUs: only a (8) and d (3 full) fit; d leaves 600 milli.
  p = bf.place(c, gpu_task(3));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->node, 3u);
  // The score is per node: half a GPU leaves a 7500, b 1500, c 1500, d 3100 -> b, GPU 0.
  p = bf.place(c, gpu_task(1, 500));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->node, 1u);
  EXPECT_EQ(p->gpus.at(0).gpu, 0);
  // On one node the tightest fitting GPU wins: d alone, 500 milli -> GPU 0 (600 free).
  Cluster d({node("d", 4)});
  use(d, 0, 0, 400);
  p = bf.place(d, gpu_task(1, 500));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->gpus.at(0).gpu, 0);
}

TEST(Fgd, NodeFragmentationMatchesTheFormula) {
  FgdPolicy single(target({{1, 1000, 0.5}, {1, 500, 0.5}}));
  // 1000: usable by both; 600: stranded for whole GPUs (0.5*600); 300: stranded for both (300).
  EXPECT_DOUBLE_EQ(single.node_fragmentation({1000, 600, 300}, 64000), 600.0);
  EXPECT_DOUBLE_EQ(single.node_fragmentation({}, 64000), 0.0);
  FgdPolicy multi(target({{2, 1000, 1.0}}));
  EXPECT_DOUBLE_EQ(multi.node_fragmentation({1000, 500}, 64000), 1500.0);      // cannot run: all stranded
  EXPECT_DOUBLE_EQ(multi.node_fragmentation({1000, 1000, 500}, 64000), 500.0);  // runs: the 500 is stranded
  // A type needing more CPU than the node has left cannot use any of its GPUs.
  FgdPolicy cpu(target({{1, 1000, 0.5, 8000}, {1, 500, 0.5, 2000}}));
  EXPECT_DOUBLE_EQ(cpu.node_fragmentation({1000, 600, 300}, 8000), 600.0);
  EXPECT_DOUBLE_EQ(cpu.node_fragmentation({1000, 600, 300}, 4000), 0.5 * 1900 + 0.5 * 300);
  EXPECT_DOUBLE_EQ(cpu.node_fragmentation({1000, 600, 300}, 1000), 1900.0);
  FgdPolicy cpu_only(target({{0, 0, 1.0}}));
  EXPECT_DOUBLE_EQ(cpu_only.node_fragmentation({1000, 300}, 64000), 0.0);
}

TEST(Fgd, PrefersKeepingWholeGpusWhereBestFitFragments) {
  // a: one whole free GPU. b: three GPUs with 700 free each. The workload wants whole GPUs.
  Cluster c({node("a", 1), node("b", 3)});
  for (int g = 0; g < 3; ++g) use(c, 1, g, 300);
  const TaskRequest half = gpu_task(1, 500);
  BestFitPolicy bf;
  auto b = bf.place(c, half);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->node, 0u);  // leaves 500 on a (vs 1600 on b): a's whole GPU is broken up
  FgdPolicy fgd(kWholeGpus);
  const double before = fgd.cluster_fragmentation(c);
  EXPECT_DOUBLE_EQ(before, 2100.0);
  auto f = fgd.place(c, half);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->node, 1u);  // a's GPU stays whole for the next whole-GPU task
  ASSERT_TRUE(c.allocate(*f).is_ok());
  EXPECT_DOUBLE_EQ(fgd.cluster_fragmentation(c), 1600.0);
  EXPECT_TRUE(fgd.place(c, gpu_task(1)));
}

TEST(Fgd, AvoidsStrandingGpusBehindExhaustedCpu) {
  // a: 8 GPUs, 16 cores. b: 8 GPUs, 64 cores. Whole-GPU tasks need 4 cores each. A CPU-only task of
  // 13 cores fits on both: BestFit takes a (less CPU left: 3 cores) and strands 7 of a's GPUs; FGD takes b.
  Cluster c({node("a", 8, "T4", 16000), node("b", 8, "T4", 64000)});
  use(c, 0, 0, 1000);
  use(c, 1, 0, 1000);
  TaskRequest cpu_task = gpu_task(0);
  cpu_task.cpu_milli = 13000;
  BestFitPolicy bf;
  EXPECT_EQ(bf.place(c, cpu_task)->node, 0u);
  FgdPolicy fgd(target({{1, 1000, 1.0, 4000}}));
  EXPECT_EQ(fgd.place(c, cpu_task)->node, 1u);
}

TEST(Fgd, CacheFollowsClusterChanges) {
  Cluster c({node("a", 4), node("b", 8), node("c", 2)});
  FgdPolicy fgd(target({{1, 1000, 0.4}, {1, 300, 0.3}, {4, 1000, 0.2}, {0, 0, 0.1}}));
  std::vector<Placement> live;
  const std::vector<TaskRequest> tasks = {gpu_task(1, 300), gpu_task(4), gpu_task(1, 700), gpu_task(1),
                                          gpu_task(1, 300), gpu_task(2), gpu_task(1, 300)};
  for (int round = 0; round < 3; ++round) {
    for (const auto& t : tasks) {
      auto p = fgd.place(c, t);
      if (!p) continue;
      ASSERT_TRUE(c.allocate(*p).is_ok());
      live.push_back(*p);
      double direct = 0;
      for (const auto& n : c.nodes()) direct += fgd.node_fragmentation(n.gpu_free, n.cpu_free);
      EXPECT_NEAR(fgd.cluster_fragmentation(c), direct, 1e-6);
    }
    ASSERT_TRUE(c.release(live.front()).is_ok());
    live.erase(live.begin());
  }
}

TEST(RandomFit, IsSeededAndFeasible) {
  Cluster c({node("a", 8), node("b", 8), node("c", 8), node("d", 2, "V100")});
  auto run = [&](uint64_t seed) {
    Cluster k = c;
    RandomFitPolicy rf(seed);
    std::vector<size_t> nodes;
    for (int i = 0; i < 20; ++i) {
      auto p = rf.place(k, gpu_task(1, 250, {"T4"}));
      EXPECT_TRUE(p);
      EXPECT_NE(p->node, 3u);
      EXPECT_TRUE(k.allocate(*p).is_ok());
      nodes.push_back(p->node);
    }
    return nodes;
  };
  EXPECT_EQ(run(1), run(1));
  EXPECT_NE(run(1), run(2));
}

TEST(Csv, LoadsNodesAndPods) {
  auto nodes = parse_node_csv("sn,cpu_milli,memory_mib,gpu,model\nn0,64000,262144,2,P100\r\n\nn1,32000,1024,0,\n");
  ASSERT_TRUE(nodes.is_ok()) << nodes.status().to_string();
  ASSERT_EQ(nodes->size(), 2u);
  EXPECT_EQ((*nodes)[0].gpu_free, (std::vector<int32_t>{1000, 1000}));
  EXPECT_EQ((*nodes)[0].gpu_type, "P100");
  EXPECT_EQ((*nodes)[1].num_gpus(), 0);
  auto pods = parse_pod_csv(
      "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time\n"
      "p0,8000,30517,0,0,,BE,Running,5,10,5\n"
      "p1,4000,15258,1,220,nan,BE,Running,1,9,1\n"
      "p2,16000,32768,1,1000,V100M16|V100M32,LS,Running,3,3,3\n");
  ASSERT_TRUE(pods.is_ok()) << pods.status().to_string();
  ASSERT_EQ(pods->size(), 3u);
  EXPECT_TRUE((*pods)[1].request.is_fractional());
  EXPECT_TRUE((*pods)[1].request.gpu_types.empty());
  EXPECT_EQ((*pods)[2].request.gpu_types, (std::vector<std::string>{"V100M16", "V100M32"}));
  EXPECT_EQ((*pods)[0].creation_time, 5);
  EXPECT_EQ((*pods)[0].deletion_time, 10);
  // Without time columns (openb_pod_list_multigpu*.csv): file order, never leaving.
  auto untimed = parse_pod_csv("name,cpu_milli,memory_mib,num_gpu,gpu_milli\na,1,1,8,1000\nb,1,1,0,0\n");
  ASSERT_TRUE(untimed.is_ok());
  EXPECT_EQ((*untimed)[1].creation_time, 1);
  EXPECT_EQ((*untimed)[1].deletion_time, kNoDeletion);
}

TEST(Csv, NodeTopologyColumns) {
  auto nodes = parse_node_csv("sn,cpu_milli,memory_mib,gpu,model,rack,gpu_memory_mib,nvlink\n"
                              "n0,64000,512000,8,H100,r1,81920,0|0|0|0|1|1|1|1\n"
                              "n1,64000,512000,2,L4,,,\n");
  ASSERT_TRUE(nodes.is_ok()) << nodes.status().to_string();
  EXPECT_EQ((*nodes)[0].rack, "r1");
  EXPECT_EQ((*nodes)[0].gpu_memory_mib, 81920);
  EXPECT_EQ((*nodes)[0].gpu_domain, (std::vector<int>{0, 0, 0, 0, 1, 1, 1, 1}));
  EXPECT_EQ((*nodes)[1].gpu_domain, (std::vector<int>{0, 0}));
  auto bad = parse_node_csv("sn,cpu_milli,memory_mib,gpu,model,nvlink\nn0,1,1,4,H100,0|0|1\n", "inv.csv");
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("inv.csv:2"), std::string::npos) << bad.status().message();
  bad = parse_node_csv("sn,cpu_milli,memory_mib,gpu,model,nvlink\nn0,1,1,2,H100,0|x\n");
  EXPECT_FALSE(bad.is_ok());
}

// `nvidia-smi topo -m` of a node with two NVLink pairs (GPU0-1, GPU2-3) joined only through PCIe/SYS.
TEST(Csv, NvidiaTopoGivesNvlinkIslands) {
  const char* topo =
      "\tGPU0\tGPU1\tGPU2\tGPU3\tCPU Affinity\tNUMA Affinity\n"
      "GPU0\t X \tNV4\tSYS\tSYS\t0-31\t0\n"
      "GPU1\tNV4\t X \tSYS\tSYS\t0-31\t0\n"
      "GPU2\tSYS\tSYS\t X \tNV4\t32-63\t1\n"
      "GPU3\tSYS\tSYS\tNV4\t X \t32-63\t1\n"
      "\nLegend:\n  X    = Self\n  NV#  = Connection traversing a bonded set of # NVLinks\n";
  auto islands = parse_nvidia_topo(topo, 4);
  ASSERT_TRUE(islands.is_ok()) << islands.status().to_string();
  EXPECT_EQ(*islands, (std::vector<int>{0, 0, 1, 1}));
  // An NVSwitch system: every pair is NV18, one island.
  std::string all = "\tGPU0\tGPU1\tGPU2\nGPU0\t X \tNV18\tNV18\nGPU1\tNV18\t X \tNV18\nGPU2\tNV18\tNV18\t X \n";
  EXPECT_EQ(*parse_nvidia_topo(all, 3), (std::vector<int>{0, 0, 0}));
  EXPECT_FALSE(parse_nvidia_topo(all, 4).is_ok());  // a GPU row missing
}

TEST(Csv, MalformedRowsGiveLineAndReason) {
  auto expect_error = [](const Status& s, std::string_view where, std::string_view what) {
    EXPECT_FALSE(s.is_ok());
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(s.message().find(where), std::string::npos) << s.message();
    EXPECT_NE(s.message().find(what), std::string::npos) << s.message();
  };
  const std::string nh = "sn,cpu_milli,memory_mib,gpu,model\n";
  expect_error(parse_node_csv("", "n.csv").status(), "n.csv:0", "empty file");
  expect_error(parse_node_csv("sn,cpu_milli,gpu,model\n", "n.csv").status(), "n.csv:1", "memory_mib");
  expect_error(parse_node_csv(nh + "a,1,1,1,T4\nb,1,1,x2,T4\n", "n.csv").status(), "n.csv:3", "gpu 'x2' is not an integer");
  expect_error(parse_node_csv(nh + "a,1,1,1\n", "n.csv").status(), "n.csv:2", "expected 5 fields, found 4");
  expect_error(parse_node_csv(nh + "a,-5,1,1,T4\n", "n.csv").status(), "n.csv:2", "out of range");
  expect_error(parse_node_csv(nh + "a,1,1,2,\n", "n.csv").status(), "n.csv:2", "no GPU model");
  expect_error(parse_node_csv(nh + "a,1,1,99999999999999999999999,T4\n", "n.csv").status(), "n.csv:2", "not an integer");
  const std::string ph = "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,creation_time,deletion_time\n";
  expect_error(parse_pod_csv(ph + "p,1,1,1,1001,,0,1\n", "p.csv").status(), "p.csv:2", "gpu_milli 1001");
  expect_error(parse_pod_csv(ph + "p,1,1,2,500,,0,1\n", "p.csv").status(), "p.csv:2", "whole GPUs");
  expect_error(parse_pod_csv(ph + "p,1,1,1,0,,0,1\n", "p.csv").status(), "p.csv:2", "gpu_milli is 0");
  expect_error(parse_pod_csv(ph + "p,1,1,1,100,,9,1\n", "p.csv").status(), "p.csv:2", "before creation_time");
  expect_error(parse_pod_csv(ph + "p,1,1,1,100,A||B,0,1\n", "p.csv").status(), "p.csv:2", "empty GPU type");
  expect_error(parse_pod_csv(ph + ",1,1,1,100,,0,1\n", "p.csv").status(), "p.csv:2", "empty pod name");
  expect_error(parse_pod_csv(ph + "p,1,1,1,100,,0,1.5\n", "p.csv").status(), "p.csv:2", "deletion_time '1.5'");
  EXPECT_EQ(load_pods_csv("/nonexistent/pods.csv").status().code(), StatusCode::kNotFound);
}

// a: 3 GPUs, b: 1 GPU (4000 milli). BestFit, by hand:
//   t=0 p0 1 GPU   -> b (leaves 0 vs 2000 on a)      allocated 1000
//   t=0 p1 2 GPUs  -> a GPUs 0,1                      allocated 3000
//   t=2 p2 2 GPUs  -> fails: 1 GPU free (first failure; requested 5000/4000)
//   t=5 p1 leaves; p3 500 milli -> a GPU 0            allocated 1500
//   t=6 p4 2 GPUs  -> a GPUs 1,2                      allocated 3500 (after the last arrival)
//   t=8 p4 leaves                                     allocated 1500 until t=10
// GPU-time: 3000*5 + 1500*1 + 3500*2 + 1500*2 = 26500 of 4000*10 -> 0.6625.
std::vector<PodRecord> hand_pods() {
  auto pod = [](std::string name, TaskRequest t, int64_t c, int64_t d) {
    t.name = std::move(name);
    return PodRecord{t, c, d};
  };
  return {pod("p0", gpu_task(1), 0, 10), pod("p1", gpu_task(2), 0, 5), pod("p2", gpu_task(2), 2, 4),
          pod("p4", gpu_task(2), 6, 8), pod("p3", gpu_task(1, 500), 5, 10)};  // p4 before p3 in the file
}

TEST(Replay, SmallTraceMatchesHandComputedNumbers) {
  Cluster c({node("a", 3), node("b", 1)});
  BestFitPolicy bf;
  ReplayOptions o;
  o.time_samples = 11;
  o.requested_step = 0.25;
  auto r = replay(c, hand_pods(), bf, o);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->pods, 5);
  EXPECT_EQ(r->gpus, 4);
  EXPECT_EQ(r->failed_pods, 1);
  EXPECT_EQ(r->failed_gpu_pods, 1);
  ASSERT_TRUE(r->unallocated_gpus_at_first_failure);
  EXPECT_DOUBLE_EQ(*r->unallocated_gpus_at_first_failure, 1.0);
  EXPECT_DOUBLE_EQ(*r->requested_at_first_failure, 1.25);
  EXPECT_DOUBLE_EQ(r->allocated_gpu_ratio, 0.6625);
  EXPECT_DOUBLE_EQ(r->allocated_ratio_after_arrivals, 0.875);
  ASSERT_EQ(r->over_time.size(), 11u);  // t = 0, 1, ..., 10
  const double expect_t[] = {0.75, 0.75, 0.75, 0.75, 0.75, 0.375, 0.875, 0.875, 0.375, 0.375, 0.0};
  for (int i = 0; i < 11; ++i) {
    EXPECT_DOUBLE_EQ(r->over_time[i].x, i);
    EXPECT_DOUBLE_EQ(r->over_time[i].allocated_ratio, expect_t[i]) << "t=" << i;
  }
  // Requested 0.25 (p0), 0.75 (p1), 1.25 (p2, failed), 1.375 (p3: no new 0.25 step), 1.875 (p4).
  ASSERT_EQ(r->vs_requested.size(), 4u);
  EXPECT_DOUBLE_EQ(r->vs_requested[1].x, 0.75);
  EXPECT_DOUBLE_EQ(r->vs_requested[1].allocated_ratio, 0.75);
  EXPECT_DOUBLE_EQ(r->vs_requested[2].allocated_ratio, 0.75);
  EXPECT_DOUBLE_EQ(r->vs_requested[3].x, 1.875);
  EXPECT_DOUBLE_EQ(r->vs_requested[3].allocated_ratio, 0.875);
  // The cluster passed in is not changed.
  EXPECT_EQ(c.gpu_free_milli(), 4000);
}

TEST(Replay, WithoutDeparturesArrivalsAccumulate) {
  Cluster c({node("a", 3), node("b", 1)});
  BestFitPolicy bf;
  ReplayOptions o;
  o.departures = false;
  auto r = replay(c, hand_pods(), bf, o);
  ASSERT_TRUE(r.is_ok());
  // p0 -> b, p1 -> a(0,1), p2 fails (1 GPU free), p3 -> a GPU 2 (500), p4 fails.
  EXPECT_EQ(r->failed_gpu_pods, 2);
  EXPECT_DOUBLE_EQ(*r->unallocated_gpus_at_first_failure, 1.0);
  EXPECT_DOUBLE_EQ(r->allocated_ratio_after_arrivals, 0.875);
  EXPECT_DOUBLE_EQ(r->allocated_gpu_ratio, (3000.0 * 5 + 3500.0 * 1) / (4000.0 * 6));
  EXPECT_FALSE(replay(c, hand_pods(), bf, ReplayOptions{true, 1, 0.01}).is_ok());
}

// The same pods through the Scheduler (they wait instead of failing), by hand:
//   t=0 p0 -> b, p1 -> a(2)                   t=2 p2 waits (first failure: 1 GPU free, requested 1.25)
//   t=5 p1 ends: p2 -> a(2) (waited 3 s), p3 -> a's third GPU (500)   t=6 p4 waits
//   t=7 p2 ends: p4 -> a (waited 1 s)          t=9 p4 ends; t=10 p0 and p3 end
// GPU-time 3000*5 + 3500*2 + 3500*2 + 1500*1 = 30500 of 4000*10.
TEST(Replay, ThroughTheSchedulerPodsWait) {
  Cluster c({node("a", 3), node("b", 1)});
  ScheduledReplayOptions o;
  o.replay.time_samples = 11;
  o.scheduler.placement = "best-fit";
  auto r = replay_scheduled(c, hand_pods(), o);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_TRUE(r->queued);
  EXPECT_EQ(r->started_pods, 5);
  EXPECT_EQ(r->never_started, 0);
  ASSERT_TRUE(r->unallocated_gpus_at_first_failure);
  EXPECT_DOUBLE_EQ(*r->unallocated_gpus_at_first_failure, 1.0);
  EXPECT_DOUBLE_EQ(*r->requested_at_first_failure, 1.25);
  EXPECT_DOUBLE_EQ(r->allocated_gpu_ratio, 30500.0 / 40000.0);
  EXPECT_DOUBLE_EQ(r->allocated_ratio_after_arrivals, 0.875);
  EXPECT_DOUBLE_EQ(r->queue_delay_mean_s, 0.8);
  EXPECT_DOUBLE_EQ(r->queue_delay_p99_s, 3.0);
  EXPECT_DOUBLE_EQ(r->jct_mean_s, 5.6);
  EXPECT_EQ(r->preemptions, 0);
}

TEST(Replay, ThroughTheSchedulerBestEffortPodsAreSpot) {
  Cluster c({node("a", 2)});
  TaskRequest be = gpu_task(2), ls = gpu_task(1);
  be.name = "be";
  ls.name = "ls";
  std::vector<PodRecord> pods = {PodRecord{be, 0, 100, "BE"}, PodRecord{ls, 1, 11, "LS"}};
  ScheduledReplayOptions o;
  auto r = replay_scheduled(c, pods, o);
  ASSERT_TRUE(r.is_ok());
  // be runs from 0, is preempted at 1 by ls, waits, and starts over at 11 when ls ends: ends at 111.
  EXPECT_EQ(r->preemptions, 1);
  EXPECT_EQ(r->started_pods, 2);
  EXPECT_DOUBLE_EQ(r->jct_mean_s, (111.0 + 10.0) / 2);
  o.be_as_spot = false;
  r = replay_scheduled(c, pods, o);
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->preemptions, 0);
  EXPECT_DOUBLE_EQ(r->queue_delay_p99_s, 99.0);  // ls waits for be
}

TEST(TargetWorkload, CountsTaskTypes) {
  auto pods = hand_pods();
  auto w = TargetWorkload::from_pods(pods);
  ASSERT_EQ(w.types.size(), 3u);  // (1,500), (1,1000), (2,1000)
  double sum = 0;
  for (auto& t : w.types) sum += t.weight;
  EXPECT_DOUBLE_EQ(sum, 1.0);
  EXPECT_EQ(w.types[0].num_gpu, 1);
  EXPECT_EQ(w.types[0].per_gpu_milli, 500);
  EXPECT_DOUBLE_EQ(w.types[2].weight, 0.6);
}

}  // namespace
}  // namespace nc::capacity
