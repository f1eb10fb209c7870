// NodeHealth (node_health.h): node heartbeats, down and up.
#include "capacity/node_health.h"

#include <fmt/format.h>

#include <utility>

namespace nc::capacity {

NodeHealth::NodeHealth(const std::vector<std::string>& nodes, int64_t now_us, int timeout_s,
                       std::vector<std::string> self_nodes)
    : timeout_s_(timeout_s), self_nodes_(std::move(self_nodes)) {
  for (const auto& n : nodes) nodes_[n] = {now_us, false};
}

Result<bool> NodeHealth::heartbeat(const std::string& node, int64_t now_us) {
  auto it = nodes_.find(node);
  if (it == nodes_.end()) return not_found(fmt::format("no node '{}'", node));
  it->second.last_us = now_us;
  if (!it->second.down) return false;
  it->second.down = false;
  return true;
}

std::vector<NodeHealth::Lost> NodeHealth::check(int64_t now_us) {
  for (const auto& n : self_nodes_) {
    if (auto it = nodes_.find(n); it != nodes_.end()) it->second.last_us = now_us;
  }
  std::vector<Lost> lost;
  if (timeout_s_ <= 0) return lost;
  for (auto& [node, h] : nodes_) {
    if (h.down || now_us - h.last_us <= static_cast<int64_t>(timeout_s_) * 1000000) continue;
    h.down = true;
    lost.push_back({node, h.last_us});
  }
  return lost;
}

bool NodeHealth::down(const std::string& node) const {
  auto it = nodes_.find(node);
  return it != nodes_.end() && it->second.down;
}

int64_t NodeHealth::last_heartbeat_us(const std::string& node) const {
  auto it = nodes_.find(node);
  return it == nodes_.end() ? 0 : it->second.last_us;
}

}  // namespace nc::capacity
