// The PostgreSQL backend of Database (internal to src/storage; use Database::open). A bounded pool of
// libpq connections, SERIALIZABLE transactions, prepared statements cached per connection.
// See database.h for the transaction and error contract. Thread-safe like every Database.
#pragma once

#include <memory>
#include <string>

#include "core/status.h"
#include "storage/database.h"

namespace nc::storage {

// url: a libpq connection URI (postgres://... or postgresql://...). display_url: the same without
// passwords, for messages and logs.
Result<std::unique_ptr<Database>> open_postgres(const std::string& url, const std::string& display_url,
                                                const DatabaseOptions& options);

}  // namespace nc::storage
