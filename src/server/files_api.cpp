// The Files API (files_api.h).
#include "server/files_api.h"

#include <fmt/format.h>

#include <cctype>
#include <fstream>

#include "engine/gguf/gguf.h"
#include "server/multipart.h"
#include "server/training_data.h"

namespace nc::server {

namespace {

using json = nlohmann::json;

constexpr size_t kMaxTrainingLineBytes = 8 << 20;
constexpr size_t kMaxOtherFieldBytes = 64 * 1024;

std::string org_of(const Call& call) { return call.caller ? call.caller->principal.org_id : "local"; }
std::string project_of(const Call& call) { return call.caller ? call.caller->principal.project_id : ""; }

json file_json(const files::FileRecord& f) {
  return {{"id", f.id},
          {"object", "file"},
          {"bytes", f.bytes},
          {"created_at", f.created_at},
          {"expires_at", nullptr},
          {"filename", f.filename},
          {"purpose", f.purpose},
          {"status", "processed"},
          {"status_details", nullptr},
          {"sha256", f.sha256}};
}

// (Replies are built outside the coroutines: GCC 12 mishandles initializer lists inside them.)
Reply list_reply(const std::vector<files::FileRecord>& list, bool more) {
  json data = json::array();
  for (const auto& f : list) data.push_back(file_json(f));
  json res = {{"object", "list"}, {"data", data}, {"has_more", more}};
  res["first_id"] = list.empty() ? json() : json(list.front().id);
  res["last_id"] = list.empty() ? json() : json(list.back().id);
  return json_reply(200, res);
}

Reply deleted_reply(const std::string& id) { return json_reply(200, json{{"id", id}, {"object", "file"}, {"deleted", true}}); }

Reply not_found_reply(const std::string& id) {
  return error_reply(api_error(404, fmt::format("No such File object: {}", id), "id", "file_not_found"));
}

// The multipart form of an upload: the file's bytes go to the Upload, `purpose` is kept.
class UploadForm : public MultipartSink {
 public:
  UploadForm(files::Upload& up, int64_t max_file_bytes) : up_(up), max_file_bytes_(max_file_bytes) {}

  Status on_part(const PartHeaders& h) override {
    if (h.name == "file") {
      if (file_seen) return invalid_argument("the form has more than one 'file'").with_field("file");
      file_seen = true;
      filename = h.filename;
      part_ = Part::kFile;
    } else if (h.name == "purpose") {
      purpose.clear();
      part_ = Part::kPurpose;
    } else {
      part_ = Part::kOther;
    }
    return Status::ok();
  }
  Status on_data(std::string_view b) override {
    switch (part_) {
      case Part::kFile:
        if (up_.bytes() + static_cast<int64_t>(b.size()) > max_file_bytes_) {
          too_large = true;
          return resource_exhausted(fmt::format("The file exceeds the limit of {} bytes per file.", max_file_bytes_))
              .with_field("file");
        }
        if (Status st = up_.write(b); !st.is_ok()) {
          write_failed = true;
          return st;
        }
        return Status::ok();
      case Part::kPurpose:
        if (purpose.size() + b.size() > 256) return invalid_argument("'purpose' is too long").with_field("purpose");
        purpose.append(b);
        return Status::ok();
      default:
        other_bytes_ += b.size();
        if (other_bytes_ > kMaxOtherFieldBytes) return invalid_argument("the form's other fields exceed 64 KiB");
        return Status::ok();
    }
  }
  Status on_part_end() override {
    part_ = Part::kNone;
    return Status::ok();
  }

  bool file_seen = false, too_large = false, write_failed = false;
  std::string filename, purpose;

 private:
  enum class Part { kNone, kFile, kPurpose, kOther };
  files::Upload& up_;
  int64_t max_file_bytes_;
  Part part_ = Part::kNone;
  size_t other_bytes_ = 0;
};

// A file name as stored: its last path component, without control characters; at most 255 bytes.
Result<std::string> clean_filename(const std::string& raw) {
  std::string name = raw.substr(raw.find_last_of("/\\") == std::string::npos ? 0 : raw.find_last_of("/\\") + 1);
  if (name.empty()) return invalid_argument("the 'file' part needs a filename").with_field("file");
  if (name.size() > 255) return invalid_argument("the filename is longer than 255 bytes").with_field("file");
  for (unsigned char c : name)
    if (c < 0x20 || c == 0x7f) return invalid_argument("the filename has control characters").with_field("file");
  try {
    (void)json(name).dump();
  } catch (const json::exception&) {
    return invalid_argument("the filename is not UTF-8").with_field("file");
  }
  return name;
}

// RFC 5987 percent-encoding (for Content-Disposition's filename*).
std::string percent_encode(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') out.push_back(static_cast<char>(c));
    else out += fmt::format("%{:02X}", c);
  }
  return out;
}

Reply upload_error_reply(const UploadForm& form, const Status& st) {
  if (form.too_large) return error_reply(api_error(413, st.message(), "file", "request_too_large"));
  if (form.write_failed && st.code() == StatusCode::kResourceExhausted && st.message().find("quota") != std::string::npos) {
    ApiError e = api_error(429, st.message(), "file", "storage_quota_exceeded", "insufficient_quota");
    e.should_retry = false;
    return error_reply(e);
  }
  if (form.write_failed) return error_reply(api_error(507, st.message(), "file", "insufficient_storage", "server_error"));
  return error_reply(api_error(400, st.message(), st.field()));
}

// Checks the stored bytes for their purpose (off the I/O thread).
Status check_content(const std::string& purpose, const std::string& path) {
  if (purpose == "fine-tune") {
    std::ifstream in(path, std::ios::binary);
    if (!in) return unavailable("cannot read the upload back");
    int64_t examples = 0;
    Status st = check_training_file(in, kMaxTrainingLineBytes, &examples);
    if (!st.is_ok()) return invalid_argument("Invalid file format for fine-tuning: " + st.message()).with_field("file");
    return Status::ok();
  }
  auto gguf = engine::GgufFile::open(path);
  if (!gguf.is_ok()) {
    std::string why = gguf.status().message();  // without the server's path
    for (size_t at = why.find(path); at != std::string::npos; at = why.find(path)) why.replace(at, path.size(), "the file");
    return invalid_argument("The file is not a GGUF model: " + why).with_field("file");
  }
  return Status::ok();
}

Reply file_reply(const Result<files::FileRecord>& r) {
  if (!r.is_ok()) return error_reply(r.status());
  return json_reply(200, file_json(*r));
}

// Reads the rest of a refused upload (bounded by the route's limit), so that the client, still
// sending, reads the answer instead of a reset connection.
awaitable<void> drain(BodyReader& body) {
  while (!body.done()) {
    Result<std::string_view> chunk = co_await body.next();
    if (!chunk.is_ok() || chunk->empty()) break;
  }
}

}  // namespace

uint64_t upload_body_limit(const files::FileStore& store) {
  return static_cast<uint64_t>(store.options().max_file_bytes) + (1 << 20);
}

awaitable<bool> handle_file_upload(ApiContext& ctx, Call& call) {
  const std::string org = org_of(call);
  auto boundary = MultipartParser::boundary_of(std::string(call.ex.req[http::field::content_type]));
  if (!boundary.is_ok()) {
    Reply refused = error_reply(api_error(400, boundary.status().message()));
    co_return co_await call.ex.reply(refused);
  }
  std::unique_ptr<files::Upload> up;
  Status began;
  co_await ctx.offload([&] {
    auto r = ctx.files->begin(org);
    if (r.is_ok()) up = std::move(*r);
    else began = r.status();
    return true;
  });
  if (!began.is_ok()) {
    ApiError e = began.code() == StatusCode::kResourceExhausted
                     ? api_error(429, began.message(), "file", "storage_quota_exceeded", "insufficient_quota")
                     : api_error_of(began);
    e.should_retry = began.code() != StatusCode::kResourceExhausted;
    co_await drain(*call.ex.body);
    Reply refused = error_reply(e);
    co_return co_await call.ex.reply(refused);
  }
  MultipartParser parser(*boundary);
  UploadForm form(*up, ctx.files->options().max_file_bytes);
  Status st;
  for (;;) {
    Result<std::string_view> chunk = co_await call.ex.body->next();
    if (!chunk.is_ok()) {
      if (chunk.status().code() == StatusCode::kResourceExhausted) {  // past the route's body limit
        form.too_large = true;
        st = resource_exhausted(fmt::format("The file exceeds the limit of {} bytes per file.",
                                            ctx.files->options().max_file_bytes));
        break;
      }
      co_return false;  // the client went away or stalled: nothing to answer
    }
    if (chunk->empty()) {
      st = parser.finish();
      break;
    }
    st = parser.feed(*chunk, form);
    if (!st.is_ok()) break;
  }
  if (!st.is_ok()) {
    up.reset();  // the partial file is gone before the client hears of the refusal
    co_await drain(*call.ex.body);
    Reply refused = upload_error_reply(form, st);
    co_return co_await call.ex.reply(refused);
  }
  if (!form.file_seen) co_return co_await call.ex.reply(error_reply(api_error(400, "'file' is required", "file")));
  if (form.purpose.empty()) co_return co_await call.ex.reply(error_reply(api_error(400, "'purpose' is required", "purpose")));
  if (form.purpose != "fine-tune" && form.purpose != "model") {
    Reply refused = error_reply(api_error(
        400, fmt::format("'{}' is not a supported purpose: use 'fine-tune' or 'model'", form.purpose), "purpose"));
    co_return co_await call.ex.reply(refused);
  }
  auto name = clean_filename(form.filename);
  if (!name.is_ok()) co_return co_await call.ex.reply(error_reply(name.status()));
  const std::string project = project_of(call);
  Result<files::FileRecord> stored = internal_error("not stored");
  co_await ctx.offload([&] {
    Status valid = check_content(form.purpose, up->temp_path());
    if (!valid.is_ok()) stored = valid;
    else stored = ctx.files->commit(*up, project, form.purpose, *name);
    up.reset();
    return true;
  });
  Reply answer = file_reply(stored);
  co_return co_await call.ex.reply(answer);
}

awaitable<bool> handle_list_files(ApiContext& ctx, Call& call) {
  files::ListOptions o;
  const QueryString& q = call.ex.query;
  o.purpose = q.get("purpose").value_or("");
  o.after = q.get("after").value_or("");
  const std::string order = q.get("order").value_or("desc");
  if (order != "asc" && order != "desc")
    co_return co_await call.ex.reply(error_reply(api_error(400, "'order' must be 'asc' or 'desc'", "order")));
  o.ascending = order == "asc";
  if (auto l = q.get("limit")) {
    char* end = nullptr;
    const long long v = std::strtoll(l->c_str(), &end, 10);
    if (l->empty() || *end != '\0' || v < 1 || v > 10000)
      co_return co_await call.ex.reply(error_reply(api_error(400, "'limit' must be an integer from 1 to 10000", "limit")));
    o.limit = v;
  }
  const std::string org = org_of(call);
  Result<std::vector<files::FileRecord>> list = internal_error("");
  bool more = false;
  co_await ctx.offload([&] {
    list = ctx.files->list(org, o, &more);
    return true;
  });
  if (!list.is_ok()) {
    Reply refused = list.status().code() == StatusCode::kNotFound ? error_reply(api_error(400, list.status().message(), "after"))
                                                                  : error_reply(list.status());
    co_return co_await call.ex.reply(refused);
  }
  Reply answer = list_reply(*list, more);
  co_return co_await call.ex.reply(answer);
}

namespace {
// The caller's file named by the route (its database row read on the worker pool).
awaitable<Result<files::FileRecord>> callers_file(ApiContext& ctx, Call& call) {
  const std::string org = org_of(call), id = call.params.at(0);
  Result<files::FileRecord> f = internal_error("");
  co_await ctx.offload([&] {
    f = ctx.files->get(org, id);
    return true;
  });
  co_return f;
}
}  // namespace

awaitable<bool> handle_get_file(ApiContext& ctx, Call& call) {
  Result<files::FileRecord> f = co_await callers_file(ctx, call);
  if (!f.is_ok() && f.status().code() == StatusCode::kNotFound) co_return co_await call.ex.reply(not_found_reply(call.params.at(0)));
  Reply answer = file_reply(f);
  co_return co_await call.ex.reply(answer);
}

awaitable<bool> handle_file_content(ApiContext& ctx, Call& call) {
  Result<files::FileRecord> f = co_await callers_file(ctx, call);
  if (!f.is_ok() && f.status().code() == StatusCode::kNotFound) co_return co_await call.ex.reply(not_found_reply(call.params.at(0)));
  if (!f.is_ok()) co_return co_await call.ex.reply(error_reply(f.status()));
  Headers h;
  h.emplace_back("content-disposition", "attachment; filename*=UTF-8''" + percent_encode(f->filename));
  const std::string path = ctx.files->path_of(f->id);
  co_return co_await call.ex.reply_file(path, "application/octet-stream", std::move(h));
}

awaitable<bool> handle_delete_file(ApiContext& ctx, Call& call) {
  const std::string org = org_of(call), id = call.params.at(0);
  Status st;
  co_await ctx.offload([&] {
    st = ctx.files->remove(org, id);
    return true;
  });
  if (st.code() == StatusCode::kNotFound) co_return co_await call.ex.reply(not_found_reply(id));
  if (!st.is_ok()) co_return co_await call.ex.reply(error_reply(st));
  Reply answer = deleted_reply(id);
  co_return co_await call.ex.reply(answer);
}

}  // namespace nc::server
