// The one id generator of neocloud: random ids from the kernel's CSPRNG (getrandom), for every object id
// a client may see (requests, completions, jobs, keys' ids, audit records). Unguessable, so an id never
// leaks another tenant's activity or lets one guess another's object.
// Stateless apart from a per-thread buffer of random bytes; any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace nc {

// `n` random bytes (aborts if the kernel has no randomness to give: nothing safe can be done then).
void random_bytes(void* out, size_t n);
// A random 64-bit value.
uint64_t random_u64();
// `prefix` + `hex_chars` random lowercase hex digits: random_id("cmpl-", 24).
std::string random_id(std::string_view prefix, int hex_chars);
// `prefix` + `hex_chars` hex digits whose first 12 are the unix time in milliseconds (the rest random),
// so ids sort by creation time and an index on them grows at one end.
std::string time_ordered_id(std::string_view prefix, int hex_chars);

}  // namespace nc
