// Writing and copying files whole, the one way: every byte written or an error that says why (a full
// disk is ResourceExhausted, anything else Unavailable), and a copy that appears at its name only when
// complete (written to "<to>.part", then renamed).
// Stateless functions of their arguments; any thread; they block on disk I/O.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

#include "core/status.h"

namespace nc {

// Writes all of `data` to `fd` (retrying short writes and EINTR).
Status write_all(int fd, std::string_view data);

// Copies what is left to read of `in` (not closed here) to a new file `to` with mode `mode` (set
// explicitly: the umask does not narrow it). "<to>.part" is removed first and created exclusively
// without following a link, so whatever was there is never written through; on failure it is removed.
Status copy_to_file(int in, const std::string& to, mode_t mode);

}  // namespace nc
