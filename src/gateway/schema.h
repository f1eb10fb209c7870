// The gateway's tables (prices, limits, budgets, the usage ledger: versions 2 and 4), as storage
// migrations; they reference tenancy's tables (tenancy/schema.h), so the app composes both.
// Thread-safe: a constant list built on first use.
#pragma once

#include <vector>

#include "storage/migrate.h"

namespace nc::gateway {

const std::vector<storage::Migration>& migrations();

}  // namespace nc::gateway
