// GGUF reader and writer: round trips, and a clear error (never a crash) for every malformed input.
#include "engine/gguf/gguf.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <iterator>

#include "engine/gguf/gguf_writer.h"
#include "test_util.h"

namespace nc::engine {
namespace {

std::vector<uint8_t> read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

// A small valid file with every value type and two tensors.
std::vector<uint8_t> sample_file(const std::string& path) {
  GgufWriter w;
  w.set_string("general.architecture", "llama");
  w.set_u32("u32", 7);
  w.set_i32("i32", -7);
  w.set_u64("u64", 1ull << 40);
  w.set_f32("f32", 0.5f);
  w.set_bool("flag", true);
  w.set_array_f32("floats", {1.0f, 2.5f});
  w.set_array_i32("ints", {1, -2, 3});
  w.set_array_string("strings", {"a", "", "ccc"});
  w.add_tensor("t0", GgmlType::kF32, {4, 2}, [](uint8_t* d, size_t n) {
    for (size_t i = 0; i < n / 4; ++i) reinterpret_cast<float*>(d)[i] = static_cast<float>(i);
  });
  w.add_tensor("t1", GgmlType::kQ8_0, {32, 3}, [](uint8_t* d, size_t n) { std::memset(d, 1, n); });
  EXPECT_TRUE(w.write(path).is_ok());
  return read_all(path);
}

Status parse(const std::vector<uint8_t>& b) { return GgufFile::parse(b).status(); }

TEST(Gguf, WriterReaderRoundTrip) {
  const std::string path = test::tmp_dir() + "/rt.gguf";
  sample_file(path);
  auto f = GgufFile::open(path);
  ASSERT_TRUE(f.is_ok()) << f.status().to_string();
  const GgufFile& g = **f;
  EXPECT_EQ(g.version(), 3u);
  EXPECT_EQ(*g.get_string("general.architecture"), "llama");
  EXPECT_EQ(*g.get_u32("u32"), 7u);
  EXPECT_EQ(g.find("i32")->i, -7);
  EXPECT_EQ(g.find("u64")->u, 1ull << 40);
  EXPECT_EQ(*g.get_f32("f32"), 0.5f);
  EXPECT_TRUE(*g.get_bool("flag"));
  const GgufValue* fl = g.find("floats");
  ASSERT_EQ(fl->n_elems, 2u);
  EXPECT_EQ(fl->elem_float(1), 2.5);
  EXPECT_EQ(g.find("ints")->elem_int(1), -2);
  const GgufValue* st = g.find("strings");
  ASSERT_EQ(st->strings.size(), 3u);
  EXPECT_EQ(st->strings[2], "ccc");
  EXPECT_EQ(st->strings[1], "");
  ASSERT_EQ(g.tensors().size(), 2u);
  const GgufTensorInfo* t0 = g.find_tensor("t0");
  ASSERT_NE(t0, nullptr);
  EXPECT_EQ(t0->ne[0], 4);
  EXPECT_EQ(t0->ne[1], 2);
  EXPECT_EQ(t0->n_bytes, 32u);
  EXPECT_EQ(reinterpret_cast<const float*>(g.tensor_data(*t0))[5], 5.0f);
  const GgufTensorInfo* t1 = g.find_tensor("t1");
  EXPECT_EQ(t1->n_bytes, 3u * 34u);
  EXPECT_EQ(t1->offset % g.alignment(), 0u);
  EXPECT_EQ(g.data_offset() % g.alignment(), 0u);
}

TEST(Gguf, TypedGettersRejectWrongType) {
  const std::string path = test::tmp_dir() + "/types.gguf";
  sample_file(path);
  auto f = GgufFile::open(path);
  ASSERT_TRUE(f.is_ok());
  auto r = (*f)->get_u32("f32");
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("has type f32, expected u32"), std::string::npos);
  auto m = (*f)->get_u32("missing.key");
  ASSERT_FALSE(m.is_ok());
  EXPECT_NE(m.status().message().find("missing"), std::string::npos);
  EXPECT_EQ(*(*f)->get_u32_or("missing.key", 9), 9u);
}

TEST(Gguf, EveryTruncationIsAnErrorNotACrash) {
  auto bytes = sample_file(test::tmp_dir() + "/trunc.gguf");
  auto full = GgufFile::parse(bytes);
  ASSERT_TRUE(full.is_ok());
  // Only the alignment padding after the last tensor's bytes may be cut.
  const auto& last = (*full)->tensors().back();
  const size_t data_end = (*full)->data_offset() + last.offset + last.n_bytes;
  for (size_t n = 0; n < data_end; ++n) {
    std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + n);
    Status s = parse(cut);
    ASSERT_FALSE(s.is_ok()) << "prefix of " << n << " bytes parsed";
    ASSERT_FALSE(s.message().empty());
  }
}

TEST(Gguf, MissingFileIsNotFound) {
  auto f = GgufFile::open("/nonexistent/model.gguf");
  ASSERT_FALSE(f.is_ok());
  EXPECT_EQ(f.status().code(), StatusCode::kNotFound);
}

// Hand-built headers for the cases a writer cannot produce.
struct Builder {
  std::vector<uint8_t> b;
  template <typename T>
  Builder& put(T v) {
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    b.insert(b.end(), p, p + sizeof(T));
    return *this;
  }
  Builder& str(const std::string& s) {
    put<uint64_t>(s.size());
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
  Builder& header(uint32_t version, int64_t n_tensors, int64_t n_kv) {
    b.insert(b.end(), {'G', 'G', 'U', 'F'});
    return put(version).put(n_tensors).put(n_kv);
  }
  Builder& pad(size_t align = 32) {
    while (b.size() % align) b.push_back(0);
    return *this;
  }
};

void expect_error(const std::vector<uint8_t>& bytes, const std::string& fragment) {
  Status s = parse(bytes);
  ASSERT_FALSE(s.is_ok()) << "expected an error containing '" << fragment << "'";
  EXPECT_NE(s.message().find(fragment), std::string::npos) << s.to_string();
}

TEST(Gguf, MalformedHeaders) {
  expect_error({'G', 'G', 'M', 'L', 3, 0, 0, 0}, "bad magic");
  expect_error(Builder().header(1, 0, 0).b, "version 1");
  expect_error(Builder().header(4, 0, 0).b, "unsupported GGUF version 4");
  expect_error(Builder().header(0, 0, 0).b, "byte-swapped");
  expect_error(Builder().header(0x03000000, 0, 0).b, "byte-swapped");
  expect_error(Builder().header(3, -1, 0).b, "tensor count");
  expect_error(Builder().header(3, 0, 1LL << 40).b, "metadata count");
  EXPECT_TRUE(parse(Builder().header(3, 0, 0).b).is_ok());
  EXPECT_TRUE(parse(Builder().header(2, 0, 0).b).is_ok());
}

TEST(Gguf, MalformedMetadata) {
  expect_error(Builder().header(3, 0, 1).str("").put<int32_t>(4).put<uint32_t>(1).b, "empty key");
  expect_error(Builder().header(3, 0, 1).str("k").put<int32_t>(13).put<uint32_t>(1).b, "unknown value type 13");
  expect_error(Builder().header(3, 0, 2).str("k").put<int32_t>(4).put<uint32_t>(1).str("k").put<int32_t>(4).put<uint32_t>(2).b,
               "duplicate metadata key 'k'");
  expect_error(Builder().header(3, 0, 1).str("k").put<int32_t>(9).put<int32_t>(9).put<uint64_t>(0).b,
               "arrays of arrays");
  expect_error(Builder().header(3, 0, 1).str("k").put<int32_t>(9).put<int32_t>(4).put<uint64_t>(1ull << 31).b,
               "exceeds the limit");
  expect_error(Builder().header(3, 0, 1).str("k").put<int32_t>(9).put<int32_t>(4).put<uint64_t>(1000).b,
               "runs past the end");
  expect_error(Builder().header(3, 0, 1).str("k").put<int32_t>(8).put<uint64_t>(1ull << 31).b, "string length");
  expect_error(Builder().header(3, 0, 1).str("k").put<int32_t>(8).put<uint64_t>(100).b, "runs past the end");
  expect_error(Builder().header(3, 0, 1).str("general.alignment").put<int32_t>(4).put<uint32_t>(24).b,
               "power of two");
  expect_error(Builder().header(3, 0, 1).str("general.alignment").put<int32_t>(5).put<int32_t>(32).b, "must be u32");
}

Builder tensor_file(const std::string& name, std::vector<int64_t> ne, uint32_t type, uint64_t offset) {
  Builder b;
  b.header(3, 1, 0).str(name).put<uint32_t>(static_cast<uint32_t>(ne.size()));
  for (auto d : ne) b.put<int64_t>(d);
  b.put<uint32_t>(type).put<uint64_t>(offset);
  return b;
}

TEST(Gguf, MalformedTensorInfos) {
  expect_error(tensor_file(std::string(64, 'x'), {4}, 0, 0).b, "names must be shorter");
  expect_error(tensor_file("t", {1, 1, 1, 1, 1}, 0, 0).b, "at most 4");
  expect_error(tensor_file("t", {-4}, 0, 0).b, "negative");
  expect_error(tensor_file("t", {1LL << 40, 1LL << 40}, 0, 0).b, "overflow");
  expect_error(tensor_file("t", {4}, 99, 0).b, "unknown type id 99");
  expect_error(tensor_file("t", {4}, 4, 0).b, "unknown type id 4");
  expect_error(tensor_file("t", {33}, 8, 0).b, "not a multiple of the block size 32");
  expect_error(tensor_file("t", {4}, 0, 64).b, "offset");
  // Data outside the file.
  Builder out = tensor_file("t", {1024}, 0, 0);
  out.pad();
  out.b.resize(out.b.size() + 100);
  expect_error(out.b, "outside the file");
  // Two tensors with the same name.
  Builder dup;
  dup.header(3, 2, 0);
  for (int i = 0; i < 2; ++i) dup.str("t").put<uint32_t>(1).put<int64_t>(8).put<uint32_t>(0).put<uint64_t>(i * 32);
  dup.pad();
  dup.b.resize(dup.b.size() + 64);
  expect_error(dup.b, "duplicate tensor name 't'");
  // And the valid version of the same.
  Builder ok = tensor_file("t", {8}, 0, 0);
  ok.pad();
  ok.b.resize(ok.b.size() + 32);
  EXPECT_TRUE(parse(ok.b).is_ok());
}

TEST(Gguf, WriterFailsCleanlyOnUnwritablePath) {
  GgufWriter w;
  w.set_u32("a", 1);
  Status s = w.write("/nonexistent-dir/x.gguf");
  EXPECT_FALSE(s.is_ok());
}

TEST(Gguf, ReadsRealVocabFiles) {
  for (const char* v : {"llama-spm", "llama-bpe", "qwen2"}) {
    auto f = GgufFile::open(test::vocab_path(v));
    ASSERT_TRUE(f.is_ok()) << f.status().to_string();
    const GgufValue* toks = (*f)->find("tokenizer.ggml.tokens");
    ASSERT_NE(toks, nullptr);
    EXPECT_GT(toks->n_elems, 30000u);
  }
}

}  // namespace
}  // namespace nc::engine
