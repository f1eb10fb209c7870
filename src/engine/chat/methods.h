// Python methods of str, dict, list and tuple as templates call them ('a,b'.split(','),
// message.get('content'), d.items(), ...). Methods that mutate a list or dict are refused the way
// HF's ImmutableSandboxedEnvironment refuses them: the attribute is an Undefined whose use raises
// "access to attribute 'append' of 'list' object is unsafe.". Thread-safe (stateless).
#pragma once

#include <optional>
#include <string_view>

#include "engine/chat/value.h"

namespace nc::chat::detail {

// `self.name` when `name` is a Python method of self's type: a bound-method callable, or an unsafe
// Undefined for mutating methods. nullopt when the type has no such attribute.
std::optional<Value> method_attribute(const Value& self, std::string_view name);

}  // namespace nc::chat::detail
