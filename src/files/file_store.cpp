// FileStore (file_store.h): uploads to temporary files, durable commits, metadata rows.
#include "files/file_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>

#include "core/file_copy.h"
#include "core/ids.h"
#include "core/log.h"
#include "core/timer.h"

namespace nc::files {

namespace {

Status fsync_dir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return unavailable(fmt::format("open {}: {}", dir, std::strerror(errno)));
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return unavailable(fmt::format("fsync {}: {}", dir, std::strerror(errno)));
  return Status::ok();
}

bool is_file_id(std::string_view s) {
  if (s.size() != 29 || s.substr(0, 5) != "file-") return false;
  for (char c : s.substr(5))
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

std::string mib(int64_t b) { return fmt::format("{:.1f} MiB", static_cast<double>(b) / (1 << 20)); }

Result<FileRecord> record_of(const storage::Row& r) {
  FileRecord f;
  NC_ASSIGN_OR_RETURN(f.id, r.get_text(0));
  NC_ASSIGN_OR_RETURN(f.org, r.get_text(1));
  NC_ASSIGN_OR_RETURN(auto project, r.get_optional_text(2));
  f.project = project.value_or("");
  NC_ASSIGN_OR_RETURN(f.purpose, r.get_text(3));
  NC_ASSIGN_OR_RETURN(f.filename, r.get_text(4));
  NC_ASSIGN_OR_RETURN(f.bytes, r.get_int(5));
  NC_ASSIGN_OR_RETURN(f.sha256, r.get_text(6));
  NC_ASSIGN_OR_RETURN(f.created_at, r.get_int(7));
  return f;
}

constexpr const char* kColumns = "id, org_id, project_id, purpose, filename, bytes, sha256, created_at";

}  // namespace

// ---- Upload ----

Upload::Upload(FileStore& store, std::string org, std::string path, int fd)
    : store_(store), org_(std::move(org)), path_(std::move(path)), fd_(fd), sha_(EVP_MD_CTX_new()) {
  EVP_DigestInit_ex(sha_, EVP_sha256(), nullptr);
}

Upload::~Upload() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) {
    ::unlink(path_.c_str());
    store_.release(org_, bytes_);
  }
  EVP_MD_CTX_free(sha_);
}

Status Upload::write(std::string_view data) {
  if (committed_ || fd_ < 0) return failed_precondition("the upload is finished");
  if (data.empty()) return Status::ok();
  NC_RETURN_IF_ERROR(store_.reserve(org_, bytes_, static_cast<int64_t>(data.size())));
  bytes_ += static_cast<int64_t>(data.size());
  EVP_DigestUpdate(sha_, data.data(), data.size());
  const Status st = write_all(fd_, data);
  if (st.code() == StatusCode::kResourceExhausted) return resource_exhausted("the server's disk for files is full");
  if (!st.is_ok()) return st.with_context("writing the upload");
  return Status::ok();
}

// ---- FileStore ----

Result<std::unique_ptr<FileStore>> FileStore::open(storage::Database& db, FileStoreOptions options) {
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(options.dir) / ".tmp", ec);
  if (ec) return unavailable(fmt::format("cannot create the files directory '{}': {}", options.dir, ec.message()));
  ::chmod(options.dir.c_str(), 0700);
  ::chmod((options.dir + "/.tmp").c_str(), 0700);
  std::unique_ptr<FileStore> s(new FileStore(db, std::move(options)));
  NC_RETURN_IF_ERROR(s->sweep());
  return s;
}

Status FileStore::sweep() {
  namespace fs = std::filesystem;
  std::error_code ec;
  // Old ones only, here too: another process sharing the directory (PostgreSQL) may be uploading now.
  const int64_t cutoff = unix_s() - 3600;
  for (const auto& e : fs::directory_iterator(fs::path(options_.dir) / ".tmp", ec)) {
    struct stat st {};
    if (::lstat(e.path().c_str(), &st) == 0 && st.st_mtime < cutoff) fs::remove(e.path(), ec);
  }
  // Files without a row: a crash between the rename and the insert (or a removal's unlink). Only old
  // ones: another process may be between the two right now.
  std::vector<std::string> candidates;
  for (const auto& e : fs::directory_iterator(options_.dir, ec)) {
    const std::string name = e.path().filename().string();
    struct stat st {};
    if (!is_file_id(name) || ::lstat(e.path().c_str(), &st) != 0 || st.st_mtime > cutoff) continue;
    candidates.push_back(name);
  }
  if (candidates.empty()) return Status::ok();
  NC_ASSIGN_OR_RETURN(storage::Rows rows, db_.read([&](storage::Transaction& tx) { return tx.query("SELECT id FROM files"); }));
  std::set<std::string> known;
  for (const auto& r : rows) {
    NC_ASSIGN_OR_RETURN(std::string id, r.get_text(0));
    known.insert(id);
  }
  for (const auto& id : candidates) {
    if (known.count(id)) continue;
    NC_LOG_WARN("files: removing {} (no database row: left by a crash)", id);
    fs::remove(path_of(id), ec);
  }
  return Status::ok();
}

std::string FileStore::path_of(const std::string& id) const { return options_.dir + "/" + id; }

Result<int64_t> FileStore::used_bytes(const std::string& org) {
  NC_ASSIGN_OR_RETURN(storage::Row row, db_.read([&](storage::Transaction& tx) {
    return tx.query_one("SELECT COALESCE(SUM(bytes), 0) FROM files WHERE org_id = $1", {org});
  }));
  return row.get_int(0);
}

Result<std::unique_ptr<Upload>> FileStore::begin(const std::string& org) {
  NC_ASSIGN_OR_RETURN(int64_t used, used_bytes(org));
  {
    std::lock_guard<std::mutex> lock(mu_);
    used_[org] = used;
    if (used + reserved_[org] >= options_.org_quota_bytes)
      return resource_exhausted(fmt::format("the organization's files use {} of its {} storage quota; delete files to upload more",
                                            mib(used + reserved_[org]), mib(options_.org_quota_bytes)));
  }
  const std::string path = options_.dir + "/.tmp/" + random_id("up-", 24);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return unavailable(fmt::format("cannot create an upload in '{}': {}", options_.dir, std::strerror(errno)));
  return std::unique_ptr<Upload>(new Upload(*this, org, path, fd));
}

Status FileStore::reserve(const std::string& org, int64_t upload_bytes, int64_t n) {
  if (upload_bytes + n > options_.max_file_bytes)
    return resource_exhausted(fmt::format("the file is larger than the limit of {} per file", mib(options_.max_file_bytes)));
  std::lock_guard<std::mutex> lock(mu_);
  int64_t& reserved = reserved_[org];
  if (used_[org] + reserved + n > options_.org_quota_bytes)
    return resource_exhausted(fmt::format("the upload would pass the organization's {} storage quota for files ({} in use)",
                                          mib(options_.org_quota_bytes), mib(used_[org] + reserved)));
  reserved += n;
  return Status::ok();
}

void FileStore::release(const std::string& org, int64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  if ((reserved_[org] -= n) <= 0) reserved_.erase(org);
}

Result<FileRecord> FileStore::commit(Upload& up, const std::string& project, const std::string& purpose,
                                     const std::string& filename) {
  if (up.committed_ || up.fd_ < 0) return failed_precondition("the upload is finished");
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_DigestFinal_ex(up.sha_, digest, &n);
  FileRecord f;
  f.id = time_ordered_id("file-", 24);  // ids of one second still sort by creation
  f.org = up.org_;
  f.project = project;
  f.purpose = purpose;
  f.filename = filename;
  f.bytes = up.bytes_;
  f.created_at = unix_s();
  for (unsigned i = 0; i < n; ++i) f.sha256 += fmt::format("{:02x}", digest[i]);
  const int rc = ::fsync(up.fd_);
  ::close(up.fd_);
  up.fd_ = -1;
  if (rc != 0) return unavailable(fmt::format("fsync of the upload: {}", std::strerror(errno)));
  const std::string dest = path_of(f.id);
  if (::rename(up.path_.c_str(), dest.c_str()) != 0)
    return unavailable(fmt::format("storing the upload: {}", std::strerror(errno)));
  if (Status st = fsync_dir(options_.dir); !st.is_ok()) {
    ::unlink(dest.c_str());
    return st;
  }
  Status st = db_.transact([&](storage::Transaction& tx) -> Status {
    return tx
        .exec(fmt::format("INSERT INTO files ({}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)", kColumns),
              {f.id, f.org, project.empty() ? storage::kNull : storage::SqlValue(project), f.purpose, f.filename, f.bytes,
               f.sha256, f.created_at})
        .status();
  });
  if (!st.is_ok()) {
    ::unlink(dest.c_str());
    return st;
  }
  up.committed_ = true;
  std::lock_guard<std::mutex> lock(mu_);
  if ((reserved_[f.org] -= f.bytes) <= 0) reserved_.erase(f.org);
  used_[f.org] += f.bytes;
  return f;
}

Result<FileRecord> FileStore::get(const std::string& org, const std::string& id) {
  NC_ASSIGN_OR_RETURN(auto row, db_.read([&](storage::Transaction& tx) {
    return tx.query_optional(fmt::format("SELECT {} FROM files WHERE id = $1 AND org_id = $2", kColumns), {id, org});
  }));
  if (!row) return not_found(fmt::format("No such File object: {}", id));
  return record_of(*row);
}

Result<std::vector<FileRecord>> FileStore::list(const std::string& org, const ListOptions& o, bool* has_more) {
  const char* cmp = o.ascending ? ">" : "<";
  const char* dir = o.ascending ? "ASC" : "DESC";
  std::string sql = fmt::format("SELECT {} FROM files WHERE org_id = $1", kColumns);
  storage::Params params{org};
  if (!o.purpose.empty()) {
    params.push_back(o.purpose);
    sql += fmt::format(" AND purpose = ${}", params.size());
  }
  if (!o.after.empty()) {
    NC_ASSIGN_OR_RETURN(FileRecord a, get(org, o.after));
    params.push_back(a.created_at);
    params.push_back(a.id);
    sql += fmt::format(" AND (created_at {0} ${1} OR (created_at = ${1} AND id {0} ${2}))", cmp, params.size() - 1,
                       params.size());
  }
  params.push_back(o.limit + 1);
  sql += fmt::format(" ORDER BY created_at {0}, id {0} LIMIT ${1}", dir, params.size());
  NC_ASSIGN_OR_RETURN(storage::Rows rows, db_.read([&](storage::Transaction& tx) { return tx.query(sql, params); }));
  std::vector<FileRecord> out;
  for (const auto& r : rows) {
    if (static_cast<int64_t>(out.size()) == o.limit) break;
    NC_ASSIGN_OR_RETURN(FileRecord f, record_of(r));
    out.push_back(std::move(f));
  }
  if (has_more) *has_more = static_cast<int64_t>(rows.size()) > o.limit;
  return out;
}

Status FileStore::remove(const std::string& org, const std::string& id) {
  NC_ASSIGN_OR_RETURN(auto row, db_.transact([&](storage::Transaction& tx) {
    return tx.query_optional("DELETE FROM files WHERE id = $1 AND org_id = $2 RETURNING bytes", {id, org});
  }));
  if (!row) return not_found(fmt::format("No such File object: {}", id));
  NC_ASSIGN_OR_RETURN(int64_t bytes, row->get_int(0));
  ::unlink(path_of(id).c_str());
  std::lock_guard<std::mutex> lock(mu_);
  // Uploads in flight keep counting against what is left (the next begin reads the database again).
  if (auto it = used_.find(org); it != used_.end()) it->second = std::max<int64_t>(0, it->second - bytes);
  return Status::ok();
}

}  // namespace nc::files
