// The SQLite backend of Database (internal to src/storage; use Database::open). One writer connection
// behind a mutex (BEGIN IMMEDIATE), a pool of query_only reader connections, WAL, foreign keys on.
// See database.h for the transaction and error contract. Thread-safe like every Database.
#pragma once

#include <memory>
#include <string>

#include "core/status.h"
#include "storage/database.h"

namespace nc::storage {

// path: the database file (created if missing). display_url: the URL as given, for messages.
Result<std::unique_ptr<Database>> open_sqlite(const std::string& path, const std::string& display_url,
                                              const DatabaseOptions& options);

}  // namespace nc::storage
