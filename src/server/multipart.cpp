// MultipartParser (multipart.h): a state machine over a sliding buffer.
#include "server/multipart.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <utility>
#include <vector>

namespace nc::server {

namespace {

constexpr size_t kMaxPartHeaderBytes = 16 * 1024;
constexpr int kMaxParts = 64;

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return std::tolower(x) == std::tolower(y); });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// A header's value as `type; k=v; k="quoted \" v"` -> type and parameters (keys lowercased).
struct HeaderValue {
  std::string type;
  std::vector<std::pair<std::string, std::string>> params;
  const std::string* find(std::string_view key) const {
    for (const auto& [k, v] : params)
      if (k == key) return &v;
    return nullptr;
  }
};

Result<HeaderValue> parse_header_value(std::string_view s) {
  HeaderValue h;
  size_t i = s.find(';');
  h.type = std::string(trim(s.substr(0, i)));
  while (i != std::string_view::npos && i < s.size()) {
    ++i;  // past ';'
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    if (i >= s.size()) break;
    const size_t eq = s.find('=', i);
    if (eq == std::string_view::npos) return invalid_argument(fmt::format("a parameter without '=' in '{}'", s));
    std::string key(trim(s.substr(i, eq - i)));
    std::transform(key.begin(), key.end(), key.begin(), [](unsigned char c) { return std::tolower(c); });
    i = eq + 1;
    std::string value;
    if (i < s.size() && s[i] == '"') {
      ++i;
      bool closed = false;
      while (i < s.size()) {
        const char c = s[i++];
        if (c == '\\' && i < s.size()) {
          value.push_back(s[i++]);
        } else if (c == '"') {
          closed = true;
          break;
        } else {
          value.push_back(c);
        }
      }
      if (!closed) return invalid_argument(fmt::format("an unterminated quoted string in '{}'", s));
      i = s.find(';', i);
    } else {
      const size_t end = s.find(';', i);
      value = std::string(trim(s.substr(i, end == std::string_view::npos ? std::string_view::npos : end - i)));
      i = end;
    }
    h.params.emplace_back(std::move(key), std::move(value));
  }
  return h;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// RFC 5987 ext-value: charset'lang'percent-encoded (UTF-8 only).
Result<std::string> decode_ext_value(std::string_view v) {
  const size_t q1 = v.find('\''), q2 = q1 == std::string_view::npos ? q1 : v.find('\'', q1 + 1);
  if (q2 == std::string_view::npos || !iequals(v.substr(0, q1), "utf-8"))
    return invalid_argument("filename* must be UTF-8''percent-encoded");
  std::string out;
  for (size_t i = q2 + 1; i < v.size(); ++i) {
    if (v[i] != '%') {
      out.push_back(v[i]);
      continue;
    }
    if (i + 2 >= v.size()) return invalid_argument("a truncated %-escape in filename*");
    const int hi = hex_value(v[i + 1]), lo = hex_value(v[i + 2]);
    if (hi < 0 || lo < 0) return invalid_argument("a bad %-escape in filename*");
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

Result<PartHeaders> parse_part_headers(std::string_view block) {
  PartHeaders p;
  bool disposition = false;
  size_t i = 0;
  while (i < block.size()) {
    size_t end = block.find("\r\n", i);
    if (end == std::string_view::npos) end = block.size();
    const std::string_view line = block.substr(i, end - i);
    i = end + 2;
    if (line.empty()) continue;
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) return invalid_argument(fmt::format("a part's header line has no ':': '{}'", line));
    const std::string_view name = trim(line.substr(0, colon)), value = trim(line.substr(colon + 1));
    if (iequals(name, "content-disposition")) {
      NC_ASSIGN_OR_RETURN(HeaderValue h, parse_header_value(value));
      if (!iequals(h.type, "form-data")) return invalid_argument("a part's Content-Disposition is not form-data");
      const std::string* n = h.find("name");
      if (!n) return invalid_argument("a part's Content-Disposition has no name");
      p.name = *n;
      if (const std::string* ext = h.find("filename*")) {
        NC_ASSIGN_OR_RETURN(p.filename, decode_ext_value(*ext));
        p.has_filename = true;
      } else if (const std::string* f = h.find("filename")) {
        p.filename = *f;
        p.has_filename = true;
      }
      disposition = true;
    } else if (iequals(name, "content-type")) {
      p.content_type = std::string(value);
    }
  }
  if (!disposition) return invalid_argument("a part has no Content-Disposition header");
  return p;
}

}  // namespace

Result<std::string> MultipartParser::boundary_of(std::string_view content_type) {
  auto h = parse_header_value(content_type);
  if (!h.is_ok() || !iequals(h->type, "multipart/form-data"))
    return invalid_argument("the request must be multipart/form-data (Content-Type: multipart/form-data; boundary=...)");
  const std::string* b = h->find("boundary");
  if (!b || b->empty() || b->size() > 70) return invalid_argument("the multipart Content-Type needs a boundary of 1 to 70 characters");
  return *b;
}

MultipartParser::MultipartParser(std::string boundary) : delimiter_("\r\n--" + boundary) {}

Status MultipartParser::feed(std::string_view data, MultipartSink& sink) {
  if (!error_.is_ok()) return error_;
  if (state_ == State::kEpilogue) return Status::ok();
  pending_.append(data);
  bool progress = true;
  while (progress && error_.is_ok() && state_ != State::kEpilogue) {
    progress = false;
    error_ = step(sink, &progress);
  }
  if (state_ == State::kEpilogue) pending_.clear();
  return error_;
}

Status MultipartParser::step(MultipartSink& sink, bool* progress) {
  switch (state_) {
    case State::kPreamble:
    case State::kBody: {
      const size_t at = pending_.find(delimiter_);
      if (at == std::string::npos) {
        // Everything but a tail that could be the start of the delimiter is data (or preamble).
        const size_t keep = std::min(pending_.size(), delimiter_.size() - 1);
        const size_t emit = pending_.size() - keep;
        if (emit > 0) {
          if (state_ == State::kBody) NC_RETURN_IF_ERROR(sink.on_data(std::string_view(pending_).substr(0, emit)));
          pending_.erase(0, emit);
        }
        return Status::ok();
      }
      if (state_ == State::kBody) {
        if (at > 0) NC_RETURN_IF_ERROR(sink.on_data(std::string_view(pending_).substr(0, at)));
        NC_RETURN_IF_ERROR(sink.on_part_end());
      }
      pending_.erase(0, at + delimiter_.size());
      state_ = State::kAfterBoundary;
      *progress = true;
      return Status::ok();
    }
    case State::kAfterBoundary: {
      if (pending_.size() >= 2 && pending_.compare(0, 2, "--") == 0) {
        state_ = State::kEpilogue;
        *progress = true;
        return Status::ok();
      }
      // Transport padding (spaces, tabs) then CRLF.
      size_t i = 0;
      while (i < pending_.size() && (pending_[i] == ' ' || pending_[i] == '\t')) ++i;
      if (i > 256) return invalid_argument("malformed multipart body: junk after a boundary");
      if (pending_.size() < i + 2) return Status::ok();
      if (pending_.compare(i, 2, "\r\n") != 0) return invalid_argument("malformed multipart body: a boundary is not followed by a line break");
      pending_.erase(0, i + 2);
      state_ = State::kHeaders;
      *progress = true;
      return Status::ok();
    }
    case State::kHeaders: {
      // An empty header block ("\r\n" right away) is allowed by RFC 2046 but form-data needs a disposition.
      const size_t end = pending_.compare(0, 2, "\r\n") == 0 ? 0 : pending_.find("\r\n\r\n");
      if (end == std::string::npos) {
        if (pending_.size() > kMaxPartHeaderBytes) return invalid_argument("a multipart part's headers exceed 16 KiB");
        return Status::ok();
      }
      if (end > kMaxPartHeaderBytes) return invalid_argument("a multipart part's headers exceed 16 KiB");
      if (++parts_ > kMaxParts) return invalid_argument(fmt::format("more than {} multipart parts", kMaxParts));
      NC_ASSIGN_OR_RETURN(PartHeaders h, parse_part_headers(std::string_view(pending_).substr(0, end)));
      pending_.erase(0, end == 0 ? 2 : end + 4);
      NC_RETURN_IF_ERROR(sink.on_part(h));
      state_ = State::kBody;
      *progress = true;
      return Status::ok();
    }
    case State::kEpilogue:
      return Status::ok();
  }
  return Status::ok();
}

Status MultipartParser::finish() const {
  if (!error_.is_ok()) return error_;
  if (state_ != State::kEpilogue) return invalid_argument("the multipart body ended before its closing boundary");
  return Status::ok();
}

}  // namespace nc::server
