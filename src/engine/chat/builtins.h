// The global functions a template can call: Jinja2's range, dict, namespace, joiner, cycler
// (unsupported), lipsum (unsupported) and the ones transformers adds: raise_exception(msg) and
// strftime_now(fmt). Thread-safe: each returns a fresh Value.
#pragma once

#include <optional>
#include <string_view>

#include "engine/chat/value.h"

namespace nc::chat::detail {

std::optional<Value> builtin_global(std::string_view name);

}  // namespace nc::chat::detail
