// libFuzzer target: any bytes as a file upload — the multipart/form-data parser (a boundary taken from
// the input, the body fed in pieces whose sizes come from the input too) and the fine-tune file check
// (check_training_file) on every part's bytes. Must never crash, throw or hang; a body split differently
// must parse the same.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "server/multipart.h"
#include "server/training_data.h"

namespace {
using namespace nc;

struct Collect : server::MultipartSink {
  std::vector<std::string> parts;
  Status on_part(const server::PartHeaders& h) override {
    parts.push_back(h.name + "\n" + h.filename + "\n" + h.content_type + "\n");
    return Status::ok();
  }
  Status on_data(std::string_view b) override {
    parts.back().append(b);
    return Status::ok();
  }
  Status on_part_end() override { return Status::ok(); }
};

// Parses `body` fed in pieces of `step` bytes (0: whole); the parts, or "!" + the error.
std::vector<std::string> parse(const std::string& boundary, std::string_view body, size_t step) {
  server::MultipartParser p(boundary);
  Collect c;
  Status st;
  for (size_t i = 0; i < body.size() && st.is_ok();) {
    const size_t n = step == 0 ? body.size() : std::min(step, body.size() - i);
    st = p.feed(body.substr(i, n), c);
    i += n;
  }
  if (st.is_ok()) st = p.finish();
  if (!st.is_ok()) return {"!"};
  return c.parts;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const size_t blen = 1 + data[0] % 70, step = 1 + data[1] % 97;
  if (size < 2 + blen) return 0;
  const std::string boundary(reinterpret_cast<const char*>(data) + 2, blen);
  const std::string_view body(reinterpret_cast<const char*>(data) + 2 + blen, size - 2 - blen);
  (void)server::MultipartParser::boundary_of(body.substr(0, std::min<size_t>(body.size(), 200)));
  const auto whole = parse(boundary, body, 0);
  if (parse(boundary, body, step) != whole) std::abort();  // chunking must not change the result
  // Every part as a fine-tune file; the body itself too.
  for (const std::string& part : whole) {
    std::istringstream in(part);
    int64_t n = 0;
    (void)server::check_training_file(in, 4096, &n);
  }
  std::istringstream in{std::string(body)};
  int64_t n = 0;
  (void)server::check_training_file(in, 4096, &n);
  return 0;
}
