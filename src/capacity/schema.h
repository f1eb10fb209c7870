// The capacity module's tables (GPU quotas, jobs, reservations: version 3), as a storage migration;
// gpu_quotas references tenancy's organizations (tenancy/schema.h), so the app composes both.
// Thread-safe: a constant list built on first use.
#pragma once

#include <vector>

#include "storage/migrate.h"

namespace nc::capacity {

const std::vector<storage::Migration>& migrations();

}  // namespace nc::capacity
