// The executor job suite: the same tests run against every Executor implementation (local, Slurm).
// A test binary instantiates it with INSTANTIATE_TEST_SUITE_P(Name, ExecutorSuite, Values(harness)).
#pragma once

#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "capacity/executor.h"

namespace nc::capacity::testing {

struct ExecutorHarness {
  std::string name;
  // A fresh executor for one test.
  std::function<std::unique_ptr<Executor>()> make;
  // Node names a job may be assigned to and the GPUs each has (indices 0..gpus_per_node-1).
  std::vector<std::string> nodes;
  int gpus_per_node = 4;
  // Empty: available. Otherwise why the backend cannot run here (the suite then FAILS, never skips,
  // unless allow_skip is set for a backend that is optional on this machine).
  std::function<std::string()> unavailable;
  bool allow_skip = false;
};

inline std::ostream& operator<<(std::ostream& os, const ExecutorHarness& h) { return os << h.name; }

class ExecutorSuite : public ::testing::TestWithParam<ExecutorHarness> {};

}  // namespace nc::capacity::testing
