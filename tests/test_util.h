// Shared helpers for neocloud tests: where test inputs live and a per-test temp directory.
#pragma once

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <string>

namespace nc::test {

inline std::string llama_src() { return NC_LLAMA_SRC; }
inline std::string vocab_path(const std::string& name) { return llama_src() + "/models/ggml-vocab-" + name + ".gguf"; }

// A directory for this test process's files (per process: ctest runs the same binary concurrently,
// e.g. once per kernel level, and the processes must not write each other's files).
inline std::string tmp_dir() {
  std::string d = std::string(NC_TEST_TMP) + "/" + std::to_string(::getpid()) + "/" +
                  ::testing::UnitTest::GetInstance()->current_test_suite()->name();
  std::filesystem::create_directories(d);
  return d;
}

}  // namespace nc::test
