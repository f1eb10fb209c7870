// Helpers shared by the executor tests (the shared suite, the local and the Slurm tests): per-test
// directories, reading files the jobs write, and waiting for them. Single-threaded test code.
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>

namespace nc::capacity::test_util {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }
inline void sleep_ms(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

inline std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Waits until `path` holds a complete line (the scripts write files with `echo`, or `mv` them in place).
inline bool wait_file(const std::string& path, double timeout_s = 30) {
  auto t0 = Clock::now();
  while (seconds_since(t0) < timeout_s) {
    std::string s = slurp(path);
    if (!s.empty() && s.back() == '\n') return true;
    sleep_ms(20);
  }
  return false;
}

inline pid_t read_pid(const std::string& path) { return static_cast<pid_t>(std::atol(slurp(path).c_str())); }

// `env` output as a map (lines of multi-line values are skipped or harmless).
inline std::map<std::string, std::string> read_env(const std::string& path) {
  std::map<std::string, std::string> env;
  std::istringstream in(slurp(path));
  for (std::string line; std::getline(in, line);) {
    size_t eq = line.find('=');
    if (eq != std::string::npos && eq > 0) env.emplace(line.substr(0, eq), line.substr(eq + 1));
  }
  return env;
}

// A fresh directory for the current test, NC_TEST_TMP/<prefix>-<pid>/<suite>/<test> (absolute and
// canonical: the Slurm backend's tasks must see it too). The process's root is removed at exit when
// every test passed; a failing run keeps it for inspection. One prefix per test binary.
inline std::string test_dir(const std::string& prefix) {
  namespace fs = std::filesystem;
  static const std::string root = std::string(NC_TEST_TMP) + "/" + prefix + "-" + std::to_string(::getpid());
  static const bool registered = (std::atexit([] {
    if (!::testing::UnitTest::GetInstance()->Passed()) return;
    std::error_code ec;
    fs::remove_all(root, ec);
  }), true);
  (void)registered;
  auto sanitize = [](const std::string& s) {
    std::string out;
    for (char c : s) out += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') ? c : '-';
    return out;
  };
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const std::string d = root + "/" + sanitize(info->test_suite_name()) + "/" + sanitize(info->name());
  fs::remove_all(d);
  fs::create_directories(d);
  return fs::canonical(d).string();
}

}  // namespace nc::capacity::test_util
