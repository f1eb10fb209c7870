// The schema neocloud serve runs (apps/neocloud/cmd_serve.cpp composes the same modules), for tests.
#pragma once

#include <cstdlib>
#include <vector>

#include "capacity/schema.h"
#include "gateway/schema.h"
#include "storage/migrate.h"
#include "tenancy/schema.h"

namespace nc::test {

inline std::vector<storage::Migration> all_migrations() {
  auto all = storage::compose_migrations({tenancy::migrations(), gateway::migrations(), capacity::migrations()});
  if (!all.is_ok()) std::abort();
  return *all;
}

}  // namespace nc::test
