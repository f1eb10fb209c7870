// MultipartParser: an incremental parser of a multipart/form-data body (RFC 7578, RFC 2046 §5.1), fed
// the body in whatever chunks the network delivers, for uploads that must never be whole in memory
// (POST /v1/files). Parts are reported to a Sink: their headers (the Content-Disposition's name and
// filename, the Content-Type), then their bytes in pieces, then their end. Limits: each part's headers
// at most 16 KiB, at most 64 parts; anything malformed is an InvalidArgument saying what.
// Thread-safety: one parser per body, used by one thread.
#pragma once

#include <string>
#include <string_view>

#include "core/status.h"

namespace nc::server {

struct PartHeaders {
  std::string name;          // Content-Disposition's name
  std::string filename;      // its filename (filename*=UTF-8''... decoded); "" when none
  bool has_filename = false;
  std::string content_type;  // "" when none
};

class MultipartSink {
 public:
  virtual ~MultipartSink() = default;
  virtual Status on_part(const PartHeaders& headers) = 0;
  virtual Status on_data(std::string_view bytes) = 0;
  virtual Status on_part_end() = 0;
};

class MultipartParser {
 public:
  // The boundary of a Content-Type "multipart/form-data; boundary=..."; InvalidArgument otherwise.
  static Result<std::string> boundary_of(std::string_view content_type);

  explicit MultipartParser(std::string boundary);
  // The next bytes of the body. The first error stops the parser (later calls repeat it).
  Status feed(std::string_view data, MultipartSink& sink);
  // At the end of the body: InvalidArgument unless the closing boundary was seen.
  Status finish() const;

 private:
  enum class State { kPreamble, kAfterBoundary, kHeaders, kBody, kEpilogue };
  Status step(MultipartSink& sink, bool* progress);

  std::string delimiter_;  // "\r\n--" + boundary
  std::string pending_ = "\r\n";  // the body as if it began with a line break (no special first boundary)
  State state_ = State::kPreamble;
  Status error_;
  int parts_ = 0;
};

}  // namespace nc::server
