// Shared helpers for neocloud tests: where test inputs live and a per-test temp directory.
#pragma once

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace nc::test {

inline std::string llama_src() { return NC_LLAMA_SRC; }
inline std::string vocab_path(const std::string& name) { return llama_src() + "/models/ggml-vocab-" + name + ".gguf"; }

inline std::string process_tmp_root() { return std::string(NC_TEST_TMP) + "/" + std::to_string(::getpid()); }

// At exit, removes this process's temp root when every test passed (synthetic models are large: a
// kept directory per run filled disks); a failing run keeps its files for inspection. Registered with
// atexit from inside a test, so it runs before gtest's UnitTest singleton is destroyed.
inline void remove_tmp_root_if_passed() {
  if (!::testing::UnitTest::GetInstance()->Passed()) return;
  std::error_code ec;
  std::filesystem::remove_all(process_tmp_root(), ec);
}

// A directory for this test process's files (per process: ctest runs the same binary concurrently,
// e.g. once per kernel level, and the processes must not write each other's files).
inline std::string tmp_dir() {
  static const bool registered = (std::atexit(remove_tmp_root_if_passed), true);
  (void)registered;
  std::string d = process_tmp_root() + "/" + ::testing::UnitTest::GetInstance()->current_test_suite()->name();
  std::filesystem::create_directories(d);
  return d;
}

}  // namespace nc::test
