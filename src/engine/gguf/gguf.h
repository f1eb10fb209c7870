// GGUF v2/v3 reader: validates a whole file up front and then exposes its metadata and tensor index.
// Every malformed input yields a Status naming what is wrong (bad magic or version, truncation, a
// dimension overflow, an offset outside the file, an unknown type, a duplicate key) and never a
// crash; `parse` is the libFuzzer entry point.
//
// Ownership: a GgufFile made by `open` owns its memory map. One made by `parse` borrows the caller's
// bytes, which must outlive it. Every string_view and pointer handed out points into those bytes.
// Thread-safety: immutable after construction; any thread may read it.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/mapped_file.h"
#include "core/status.h"
#include "engine/gguf/ggml_type.h"

namespace nc::engine {

enum class GgufType : int32_t {
  kU8 = 0,
  kI8 = 1,
  kU16 = 2,
  kI16 = 3,
  kU32 = 4,
  kI32 = 5,
  kF32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kU64 = 10,
  kI64 = 11,
  kF64 = 12,
};

std::string_view gguf_type_name(GgufType t);
// Size in bytes of a fixed-size value type; 0 for string and array.
size_t gguf_type_size(GgufType t);

constexpr uint32_t kGgufDefaultAlignment = 32;
constexpr uint64_t kGgufMaxStringLength = uint64_t{1} << 30;
constexpr uint64_t kGgufMaxArrayElements = uint64_t{1} << 30;
constexpr size_t kGgufMaxNameLength = 64;  // tensor names must be shorter (GGML_MAX_NAME)
constexpr int kGgufMaxDims = 4;

// One metadata value. Scalars are decoded; arrays of numbers point at their little-endian bytes.
struct GgufValue {
  GgufType type = GgufType::kU8;
  uint64_t u = 0;  // unsigned ints and bool
  int64_t i = 0;   // signed ints
  double f = 0;    // f32 / f64
  std::string_view str;
  // Arrays.
  GgufType elem_type = GgufType::kU8;
  uint64_t n_elems = 0;
  const uint8_t* elems = nullptr;          // numeric arrays: n_elems * gguf_type_size(elem_type) bytes
  std::vector<std::string_view> strings;   // string arrays

  // Element i of a numeric array, converted; callers check elem_type first.
  int64_t elem_int(uint64_t idx) const;
  double elem_float(uint64_t idx) const;
  // Human-readable, truncated for long arrays (for `model info`).
  std::string to_display_string(size_t max_elems = 8) const;
};

struct GgufKv {
  std::string_view key;
  GgufValue value;
};

struct GgufTensorInfo {
  std::string_view name;
  uint32_t n_dims = 0;
  std::array<int64_t, kGgufMaxDims> ne{1, 1, 1, 1};  // ne[0] is the contiguous (row) dimension
  GgmlType type = GgmlType::kF32;
  uint64_t offset = 0;  // relative to the data section
  size_t n_bytes = 0;
  int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
  int64_t n_rows() const { return ne[1] * ne[2] * ne[3]; }
};

class GgufFile {
 public:
  // Maps and validates the file at `path`.
  static Result<std::unique_ptr<GgufFile>> open(const std::string& path);
  // Validates `bytes` (borrowed). With `require_data`, tensor data must lie inside `bytes`.
  static Result<std::unique_ptr<GgufFile>> parse(std::span<const uint8_t> bytes, bool require_data = true);

  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  size_t data_offset() const { return data_offset_; }
  size_t file_size() const { return bytes_.size(); }
  const std::string& path() const { return path_; }

  const std::vector<GgufKv>& kvs() const { return kvs_; }
  const GgufValue* find(std::string_view key) const;

  // Typed getters: the key must exist and have exactly this type (as llama.cpp's loader requires).
  Result<uint32_t> get_u32(std::string_view key) const;
  Result<float> get_f32(std::string_view key) const;
  Result<bool> get_bool(std::string_view key) const;
  Result<std::string_view> get_string(std::string_view key) const;
  // Same, but an absent key gives `fallback`; a present key of another type is still an error.
  Result<uint32_t> get_u32_or(std::string_view key, uint32_t fallback) const;
  Result<float> get_f32_or(std::string_view key, float fallback) const;
  Result<bool> get_bool_or(std::string_view key, bool fallback) const;

  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* find_tensor(std::string_view name) const;
  // Start of the tensor's bytes (inside the mapped file).
  const uint8_t* tensor_data(const GgufTensorInfo& t) const { return bytes_.data() + data_offset_ + t.offset; }
  const MappedFile* mapped() const { return map_.get(); }

 private:
  GgufFile() = default;
  Status parse_all(bool require_data);

  std::unique_ptr<MappedFile> map_;
  std::string path_;
  std::span<const uint8_t> bytes_;
  uint32_t version_ = 0;
  uint32_t alignment_ = kGgufDefaultAlignment;
  size_t data_offset_ = 0;
  std::vector<GgufKv> kvs_;
  std::unordered_map<std::string_view, size_t> kv_index_;
  std::vector<GgufTensorInfo> tensors_;
  std::unordered_map<std::string_view, size_t> tensor_index_;
};

}  // namespace nc::engine
