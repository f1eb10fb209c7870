// NodeHealth: which inventory nodes are alive. A node is alive while it heartbeats (the operator's
// POST /v1/admin/nodes/{id}/heartbeat, or the controller itself for this machine's own nodes); one
// silent for longer than the timeout is down until its next heartbeat. It only keeps the books: taking a
// lost node out of the scheduler and requeueing its jobs is the JobController's (job_controller.h), which
// reads check()'s answer.
//
// Ownership: the JobController owns one, next to its Scheduler. Threads: not synchronized; the
// controller calls it only under its own mutex.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/status.h"

namespace nc::capacity {

// A node as the operator's /v1/admin/nodes lists it.
struct NodeStatus {
  std::string id, gpu_type;
  int gpus = 0;
  int64_t gpu_free_milli = 0;
  bool down = false;
  int64_t last_heartbeat_us = 0;
};

class NodeHealth {
 public:
  // Every node starts alive, last seen at now_us. timeout_s 0: nodes never go down. self_nodes are
  // this machine's: check() counts them alive at every call.
  NodeHealth(const std::vector<std::string>& nodes, int64_t now_us, int timeout_s, std::vector<std::string> self_nodes);

  // A node says it is alive: NotFound for an unknown node; true when it was down (it is back).
  Result<bool> heartbeat(const std::string& node, int64_t now_us);

  struct Lost {
    std::string node;
    int64_t last_us = 0;  // its last heartbeat: what its jobs are billed until
  };
  // Marks the nodes silent for longer than the timeout as down; returns those that went down now (in
  // node name order).
  std::vector<Lost> check(int64_t now_us);

  bool down(const std::string& node) const;
  int64_t last_heartbeat_us(const std::string& node) const;  // 0 for an unknown node

 private:
  struct Health {
    int64_t last_us = 0;
    bool down = false;
  };
  std::map<std::string, Health> nodes_;
  int timeout_s_ = 0;
  std::vector<std::string> self_nodes_;
};

}  // namespace nc::capacity
