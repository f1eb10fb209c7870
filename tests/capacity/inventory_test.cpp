// GPU inventory discovery's parsers (capacity/inventory.h): sinfo's node lines and nvidia-smi's GPU list.
#include "capacity/inventory.h"

#include <gtest/gtest.h>

namespace nc::capacity {
namespace {

TEST(Inventory, SinfoNodesWithGpusOnceEach) {
  // A node listed once per partition, gres with a type and a socket suffix, a typeless count, a node
  // without GPUs, a malformed line.
  const std::string text =
      "gpu1 64 515000 gpu:a100:8(S:0-1)\n"
      "gpu1 64 515000 gpu:a100:8(S:0-1)\n"
      "gpu2 32 256000 gpu:4\n"
      "cpu1 128 1024000 (null)\n"
      "gpu3 16 128000 gpu:h100:2,shard:8\n"
      "garbage\n";
  const auto nodes = parse_sinfo_nodes(text);
  ASSERT_EQ(nodes.size(), 3u);
  EXPECT_EQ(nodes[0].id, "gpu1");
  EXPECT_EQ(nodes[0].num_gpus(), 8);
  EXPECT_EQ(nodes[0].gpu_type, "a100");
  EXPECT_EQ(nodes[0].cpu_milli, 64000);
  EXPECT_EQ(nodes[1].id, "gpu2");
  EXPECT_EQ(nodes[1].gpu_type, "gpu");
  EXPECT_EQ(nodes[1].num_gpus(), 4);
  EXPECT_EQ(nodes[2].gpu_type, "h100");
  EXPECT_EQ(nodes[2].num_gpus(), 2);
  EXPECT_TRUE(parse_sinfo_nodes("").empty());
}

TEST(Inventory, NvidiaSmiGpusAsOneNode) {
  const std::string text = "0, NVIDIA H100 80GB HBM3, 81559\n1, NVIDIA H100 80GB HBM3, 81559\n";
  auto n = parse_nvidia_smi_gpus(text, "host-a", 16000, 128000);
  ASSERT_TRUE(n.is_ok()) << n.status().to_string();
  EXPECT_EQ(n->id, "host-a");
  EXPECT_EQ(n->num_gpus(), 2);
  EXPECT_EQ(n->gpu_type, "NVIDIA-H100-80GB-HBM3");
  EXPECT_EQ(n->gpu_memory_mib, 81559);
  EXPECT_EQ(parse_nvidia_smi_gpus("", "h", 1000, 1000).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(parse_nvidia_smi_gpus("No devices were found\n", "h", 1000, 1000).status().code(), StatusCode::kNotFound);
}

TEST(Inventory, SimulatedGpusAndBadCounts) {
  InventorySource s;
  s.gpus = "3";
  s.gpu_type = "sim";
  auto nodes = discover_inventory(s);
  ASSERT_TRUE(nodes.is_ok()) << nodes.status().to_string();
  ASSERT_EQ(nodes->size(), 1u);
  EXPECT_EQ((*nodes)[0].num_gpus(), 3);
  EXPECT_EQ((*nodes)[0].gpu_type, "sim");
  for (const char* bad : {"0", "65", "x", "", "2x"}) {
    s.gpus = bad;
    EXPECT_EQ(discover_inventory(s).status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

}  // namespace
}  // namespace nc::capacity
