// The files module's tables (schema.h).
#include "files/schema.h"

namespace nc::files {

namespace {

// Version 6: files organizations upload (OpenAI's Files API). The row is written only once the bytes
// are complete, hashed and on disk; `bytes` sums to an organization's storage use.
constexpr const char* kFilesV6 = R"sql(
CREATE TABLE files (
  id          TEXT PRIMARY KEY,
  org_id      TEXT NOT NULL,
  project_id  TEXT,
  purpose     TEXT NOT NULL,
  filename    TEXT NOT NULL,
  bytes       BIGINT NOT NULL CHECK (bytes >= 0),
  sha256      TEXT NOT NULL,
  created_at  BIGINT NOT NULL
);
CREATE INDEX files_org_created ON files (org_id, created_at);
)sql";

}  // namespace

const std::vector<storage::Migration>& migrations() {
  static const std::vector<storage::Migration> list = [] {
    storage::Migration m;
    m.version = 6;
    m.name = "files";
    m.sql = kFilesV6;
    return std::vector<storage::Migration>{m};
  }();
  return list;
}

}  // namespace nc::files
