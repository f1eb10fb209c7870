// Staging of a job's platform-given inputs (JobSpec::inputs): each (name, source) becomes a read-only
// file `name` in the job's working directory before a run starts. A hard link when the source is on
// the same file system and readable by every user (the job runs as its organization's uid); otherwise
// a copy made readable (0444). A name is one path component; whatever the directory holds under that
// name is replaced (staged afresh for every run: a run may have changed its directory).
// Thread-safety: a pure function of the file system; blocks on I/O (not under the controller's lock).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "core/status.h"

namespace nc::capacity {

Status stage_job_inputs(const std::vector<std::pair<std::string, std::string>>& inputs, const std::string& dir);

}  // namespace nc::capacity
