#include "core/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <string>

namespace nc {
void log_set_level(std::string_view level) {
  static bool init = [] {
    auto logger = spdlog::stderr_color_mt("neocloud");
    spdlog::set_default_logger(logger);
    spdlog::set_pattern("[%H:%M:%S.%e] [%^%l%$] %v");
    return true;
  }();
  (void)init;
  auto lvl = spdlog::level::from_str(std::string(level));
  if (lvl != spdlog::level::off || level == "off") spdlog::set_level(lvl);
}
}  // namespace nc
