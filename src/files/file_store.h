// FileStore: the files organizations upload (OpenAI's Files API: training data, GGUF models). Their
// bytes live on disk under `dir` (one file per id; `dir/.tmp` holds uploads in progress), their metadata
// in the database (schema.h). An upload streams into a temporary file while its SHA-256 is computed and
// its size is held against the per-file limit and the organization's storage quota, counting the
// organization's other uploads in flight in this process. commit() makes it durable (fsync, rename,
// fsync of the directory) and only then writes the row: a file is never partly visible, and a crash
// leaves at worst an unreferenced or temporary file, which open() removes once it is an hour old (so
// that another process's upload or commit in progress on a shared PostgreSQL is never touched). Removing a file deletes its row
// and its bytes; whoever already opened or linked it (a fine-tuning job) keeps reading it.
//
// Ownership: borrows the Database (outlives the store). Thread-safety: all methods may be called from
// any thread; those that touch the database or fsync block (not for an I/O thread); Upload::write only
// writes to the page cache and may run on the I/O thread. One Upload is used by one thread at a time.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "storage/database.h"

struct evp_md_ctx_st;

namespace nc::files {

struct FileRecord {
  std::string id;  // "file-" + 24 hex digits
  std::string org, project, purpose, filename, sha256;  // sha256: 64 lowercase hex digits
  int64_t bytes = 0;
  int64_t created_at = 0;  // unix seconds
};

struct FileStoreOptions {
  std::string dir;
  int64_t max_file_bytes = 512LL << 20;  // one file (OpenAI: 512 MB)
  int64_t org_quota_bytes = 10LL << 30;  // all of an organization's files
};

class FileStore;

// One upload in progress: its bytes go to a temporary file as they arrive.
class Upload {
 public:
  ~Upload();  // not committed: the temporary file is removed and its bytes no longer count
  Upload(const Upload&) = delete;
  Upload& operator=(const Upload&) = delete;
  // ResourceExhausted when the file would pass the size limit or the organization's quota (the
  // message says which and how much); Unavailable when the disk refuses (full: ResourceExhausted).
  Status write(std::string_view data);
  int64_t bytes() const { return bytes_; }
  // The temporary file, complete once the body is: read it to validate before commit.
  const std::string& temp_path() const { return path_; }

 private:
  friend class FileStore;
  Upload(FileStore& store, std::string org, std::string path, int fd);
  FileStore& store_;
  std::string org_, path_;
  int fd_ = -1;
  evp_md_ctx_st* sha_ = nullptr;
  int64_t bytes_ = 0;
  bool committed_ = false;
};

struct ListOptions {
  std::string purpose;  // "": all
  std::string after;    // a file id: those after it in this order
  int64_t limit = 10000;
  bool ascending = false;  // OpenAI's order=asc; newest first by default
};

class FileStore {
 public:
  // Creates the directories (0700) and removes leftovers of a crash.
  static Result<std::unique_ptr<FileStore>> open(storage::Database& db, FileStoreOptions options);

  Result<std::unique_ptr<Upload>> begin(const std::string& org);
  // Makes the upload durable and visible. The upload is spent either way.
  Result<FileRecord> commit(Upload& upload, const std::string& project, const std::string& purpose,
                            const std::string& filename);
  // Another organization's file, or one that does not exist: NotFound.
  Result<FileRecord> get(const std::string& org, const std::string& id);
  // `has_more` says whether more follow the returned ones.
  Result<std::vector<FileRecord>> list(const std::string& org, const ListOptions& options, bool* has_more);
  Status remove(const std::string& org, const std::string& id);
  // The bytes of a committed file.
  std::string path_of(const std::string& id) const;
  // Bytes the organization's committed files use.
  Result<int64_t> used_bytes(const std::string& org);
  const FileStoreOptions& options() const { return options_; }

 private:
  friend class Upload;
  FileStore(storage::Database& db, FileStoreOptions options) : db_(db), options_(std::move(options)) {}
  Status sweep();
  // Holds n more bytes of `org`'s upload against the limits (see Upload::write).
  Status reserve(const std::string& org, int64_t upload_bytes, int64_t n);
  void release(const std::string& org, int64_t n);

  storage::Database& db_;
  FileStoreOptions options_;
  std::mutex mu_;
  std::map<std::string, int64_t> used_;      // org -> committed bytes (refreshed by begin)
  std::map<std::string, int64_t> reserved_;  // org -> bytes of its uploads in flight
};

}  // namespace nc::files
