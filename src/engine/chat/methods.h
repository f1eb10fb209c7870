// Python methods of str, dict, list and tuple as templates call them ('a,b'.split(','),
// message.get('content'), d.items(), ...). Methods that mutate a list or dict are refused the way
// HF's ImmutableSandboxedEnvironment refuses them: the attribute is an Undefined whose use raises
// "access to attribute 'append' of 'list' object is unsafe.". Thread-safe (stateless).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/chat/value.h"

namespace nc::chat::detail {

// `self.name` when `name` is a Python method of self's type: a bound-method callable, or an unsafe
// Undefined for mutating methods. nullopt when the type has no such attribute.
std::optional<Value> method_attribute(const Value& self, std::string_view name);

// str.split() / str.rsplit() without a separator: runs of Python whitespace separate the words.
// maxsplit < 0: no limit.
std::vector<std::string> split_whitespace(std::string_view s, int64_t maxsplit, bool from_right);

}  // namespace nc::chat::detail
