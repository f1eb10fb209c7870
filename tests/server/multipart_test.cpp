// MultipartParser (server/multipart.h): bodies split anywhere parse the same; malformed ones are refused.
#include "server/multipart.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace nc::server {
namespace {

struct Collect : MultipartSink {
  struct Part {
    PartHeaders h;
    std::string data;
    bool ended = false;
  };
  std::vector<Part> parts;
  Status on_part(const PartHeaders& h) override {
    parts.push_back({h, "", false});
    return Status::ok();
  }
  Status on_data(std::string_view b) override {
    parts.back().data.append(b);
    return Status::ok();
  }
  Status on_part_end() override {
    parts.back().ended = true;
    return Status::ok();
  }
};

const std::string kBoundary = "xYz-42";

std::string body_with(const std::string& file) {
  return "preamble to ignore\r\n--xYz-42\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nfine-tune\r\n"
         "--xYz-42 \t\r\ncontent-disposition: form-data; name=\"file\"; filename=\"a \\\"b\\\".jsonl\"\r\n"
         "Content-Type: application/jsonl\r\n\r\n" +
         file + "\r\n--xYz-42--\r\nepilogue";
}

TEST(Multipart, SplitAnywhereParsesTheSame) {
  // The file holds near-boundaries: CRLF, "--", the boundary without its CRLF.
  const std::string file = "line1\r\n--xYz-4\r\n-xYz-42 x\r\r\n--xY\n" + std::string(70000, 'q') + "\r\n";
  const std::string body = body_with(file);
  std::mt19937 rng(7);
  for (int round = 0; round < 40; ++round) {
    MultipartParser p(kBoundary);
    Collect c;
    size_t i = 0;
    while (i < body.size()) {
      const size_t n = round == 0 ? 1 : std::uniform_int_distribution<size_t>(1, 300)(rng);
      ASSERT_TRUE(p.feed(std::string_view(body).substr(i, n), c).is_ok());
      i += n;
    }
    ASSERT_TRUE(p.finish().is_ok());
    ASSERT_EQ(c.parts.size(), 2u);
    EXPECT_EQ(c.parts[0].h.name, "purpose");
    EXPECT_EQ(c.parts[0].data, "fine-tune");
    EXPECT_FALSE(c.parts[0].h.has_filename);
    EXPECT_EQ(c.parts[1].h.name, "file");
    EXPECT_EQ(c.parts[1].h.filename, "a \"b\".jsonl");
    EXPECT_EQ(c.parts[1].h.content_type, "application/jsonl");
    EXPECT_EQ(c.parts[1].data, file);
    EXPECT_TRUE(c.parts[0].ended && c.parts[1].ended);
  }
}

TEST(Multipart, BoundaryFromContentType) {
  EXPECT_EQ(*MultipartParser::boundary_of("multipart/form-data; boundary=abc"), "abc");
  EXPECT_EQ(*MultipartParser::boundary_of("Multipart/Form-Data; charset=utf-8; boundary=\"a b;c\""), "a b;c");
  EXPECT_FALSE(MultipartParser::boundary_of("application/json").is_ok());
  EXPECT_FALSE(MultipartParser::boundary_of("multipart/form-data").is_ok());
  EXPECT_FALSE(MultipartParser::boundary_of("multipart/form-data; boundary=" + std::string(71, 'a')).is_ok());
}

TEST(Multipart, ExtendedFilename) {
  MultipartParser p("b");
  Collect c;
  const std::string body =
      "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x\"; filename*=UTF-8''caf%C3%A9.jsonl\r\n\r\nz\r\n--b--";
  ASSERT_TRUE(p.feed(body, c).is_ok());
  ASSERT_TRUE(p.finish().is_ok());
  EXPECT_EQ(c.parts.at(0).h.filename, "caf\xC3\xA9.jsonl");
}

TEST(Multipart, MalformedBodiesAreRefused) {
  const std::vector<std::string> bad = {
      "--b\r\nContent-Type: text/plain\r\n\r\nz\r\n--b--",                         // no disposition
      "--b\r\nContent-Disposition: attachment; name=\"f\"\r\n\r\nz\r\n--b--",     // not form-data
      "--b\r\nContent-Disposition: form-data\r\n\r\nz\r\n--b--",                  // no name
      "--b\r\nContent-Disposition: form-data; name=\"f\r\n\r\nz\r\n--b--",         // unterminated quote
      "--bjunk\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\nz\r\n--b--",  // junk after a boundary
      "--b\r\nContent-Disposition: form-data; name=\"f\"; filename*=latin1''x\r\n\r\nz\r\n--b--",
      "--b\r\nNoColonHere\r\n\r\nz\r\n--b--",
      "--b\r\n" + std::string(17 * 1024, 'h') + "\r\n\r\nz\r\n--b--",  // headers over 16 KiB
  };
  for (const std::string& body : bad) {
    MultipartParser p("b");
    Collect c;
    const Status st = p.feed(body, c);
    EXPECT_FALSE(st.is_ok() && p.finish().is_ok()) << body.substr(0, 80);
  }
  // Too many parts.
  std::string many;
  for (int i = 0; i < 65; ++i) many += "--b\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\nz\r\n";
  MultipartParser p("b");
  Collect c;
  EXPECT_FALSE(p.feed(many + "--b--", c).is_ok());
  // Truncated: no closing boundary.
  MultipartParser q("b");
  Collect d;
  ASSERT_TRUE(q.feed("--b\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\nabc", d).is_ok());
  EXPECT_FALSE(q.finish().is_ok());
}

TEST(Multipart, SinkErrorsStopTheParser) {
  struct Refuse : Collect {
    Status on_data(std::string_view) override { return resource_exhausted("full"); }
  } r;
  MultipartParser p("b");
  const Status st = p.feed("--b\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\n" + std::string(100, 'x'), r);
  EXPECT_EQ(st.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(p.feed("more", r).code(), StatusCode::kResourceExhausted);
}

}  // namespace
}  // namespace nc::server
