// Synthetic models shared by the tests of one ctest run: shared_model(options) writes the model once
// into test-tmp/models/ (named by every option that changes its bytes; synth_model is deterministic)
// and later calls, from any test process, reuse the file. Writers race safely: each writes its own
// temporary file and renames it into place. The ctest fixture `models` empties the directory before
// the run and removes it after (tests/CMakeLists.txt).
#pragma once

#include <unistd.h>

#include <filesystem>
#include <functional>
#include <string>

#include <gtest/gtest.h>

#include "engine/model/synth.h"

namespace nc::test {

inline std::string shared_model(engine::SynthOptions o) {
  const std::string key = o.vocab_path + "|" + o.shape + "|" + o.type + "|" + o.arch + "|" + std::to_string(o.tied) + "|" +
                          std::to_string(o.llama3_rope) + "|" + o.chat_template + "|" + std::to_string(o.seed) + "|" +
                          std::to_string(o.n_ctx);
  const std::string dir = std::string(NC_TEST_TMP) + "/models";
  std::filesystem::create_directories(dir);
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016zx", std::hash<std::string>{}(key));
  const std::string path = dir + "/" + o.arch + "-" + o.shape + "-" + o.type + "-" + hex + ".gguf";
  if (std::filesystem::exists(path)) return path;
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  o.out_path = tmp;
  const Status s = engine::synth_model(o);
  EXPECT_TRUE(s.is_ok()) << s.to_string();
  if (!s.is_ok()) return path;
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  EXPECT_FALSE(ec) << "rename " << tmp << ": " << ec.message();
  return path;
}

}  // namespace nc::test
