// The files module's table (version 6: uploaded files' metadata; their bytes live on disk, see
// file_store.h), as a storage migration the app composes with the other modules'.
// Thread-safe: a constant list built on first use.
#pragma once

#include <vector>

#include "storage/migrate.h"

namespace nc::files {

const std::vector<storage::Migration>& migrations();

}  // namespace nc::files
