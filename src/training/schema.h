// The training module's tables (version 7: fine-tuning jobs and their events; version 8: models
// deployed at run time), as storage migrations
// the app composes with the other modules'. Thread-safe: a constant list built on first use.
#pragma once

#include <vector>

#include "storage/migrate.h"

namespace nc::training {

const std::vector<storage::Migration>& migrations();

}  // namespace nc::training
