// Logging: a thin layer over spdlog so that every module logs the same way (to stderr).
// Thread-safe. Use NC_LOG_INFO("loaded {} tensors", n) etc.; the level is set once at start-up.
#pragma once

#include <spdlog/spdlog.h>

#include <string_view>

namespace nc {
// level: "trace", "debug", "info", "warn", "error", "off". Unknown names keep the current level.
void log_set_level(std::string_view level);
}  // namespace nc

#define NC_LOG_DEBUG(...) SPDLOG_DEBUG(__VA_ARGS__)
#define NC_LOG_INFO(...) ::spdlog::info(__VA_ARGS__)
#define NC_LOG_WARN(...) ::spdlog::warn(__VA_ARGS__)
#define NC_LOG_ERROR(...) ::spdlog::error(__VA_ARGS__)
