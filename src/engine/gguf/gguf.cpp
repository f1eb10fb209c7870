#include "engine/gguf/gguf.h"

#include <fmt/format.h>

#include <cstring>
#include <limits>

namespace nc::engine {

std::string_view gguf_type_name(GgufType t) {
  switch (t) {
    case GgufType::kU8: return "u8";
    case GgufType::kI8: return "i8";
    case GgufType::kU16: return "u16";
    case GgufType::kI16: return "i16";
    case GgufType::kU32: return "u32";
    case GgufType::kI32: return "i32";
    case GgufType::kF32: return "f32";
    case GgufType::kBool: return "bool";
    case GgufType::kString: return "string";
    case GgufType::kArray: return "array";
    case GgufType::kU64: return "u64";
    case GgufType::kI64: return "i64";
    case GgufType::kF64: return "f64";
  }
  return "?";
}

size_t gguf_type_size(GgufType t) {
  switch (t) {
    case GgufType::kU8: case GgufType::kI8: case GgufType::kBool: return 1;
    case GgufType::kU16: case GgufType::kI16: return 2;
    case GgufType::kU32: case GgufType::kI32: case GgufType::kF32: return 4;
    case GgufType::kU64: case GgufType::kI64: case GgufType::kF64: return 8;
    case GgufType::kString: case GgufType::kArray: return 0;
  }
  return 0;
}

namespace {

bool valid_value_type(int32_t t) { return t >= 0 && t <= 12; }

template <typename T>
T load_le(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));  // x86-64 and every target we build for is little-endian
  return v;
}

// Bounds-checked reader over the file's bytes.
class Cursor {
 public:
  explicit Cursor(std::span<const uint8_t> b) : b_(b) {}
  size_t pos() const { return pos_; }
  size_t left() const { return b_.size() - pos_; }
  const uint8_t* here() const { return b_.data() + pos_; }

  template <typename T>
  Status read(T& out, const char* what) {
    if (left() < sizeof(T)) return truncated(what);
    out = load_le<T>(here());
    pos_ += sizeof(T);
    return Status::ok();
  }
  Status skip(uint64_t n, const char* what) {
    if (n > left()) return truncated(what);
    pos_ += n;
    return Status::ok();
  }
  Status read_string(std::string_view& out, const char* what) {
    uint64_t n = 0;
    NC_RETURN_IF_ERROR(read(n, what));
    if (n > kGgufMaxStringLength)
      return data_loss(fmt::format("{} at byte {}: string length {} exceeds the limit of {}", what, pos_ - 8, n,
                                   kGgufMaxStringLength));
    if (n > left())
      return data_loss(fmt::format("{} at byte {}: string of {} bytes runs past the end of the file ({} bytes left)",
                                   what, pos_ - 8, n, left()));
    out = std::string_view(reinterpret_cast<const char*>(here()), n);
    pos_ += n;
    return Status::ok();
  }
  Status truncated(const char* what) const {
    return data_loss(fmt::format("file truncated: {} at byte {} needs more bytes than the {} left", what, pos_, left()));
  }

 private:
  std::span<const uint8_t> b_;
  size_t pos_ = 0;
};

Status read_scalar(Cursor& c, GgufType t, GgufValue& v, const char* what) {
  switch (t) {
    case GgufType::kU8: { uint8_t x; NC_RETURN_IF_ERROR(c.read(x, what)); v.u = x; v.i = x; return Status::ok(); }
    case GgufType::kI8: { int8_t x; NC_RETURN_IF_ERROR(c.read(x, what)); v.i = x; v.u = static_cast<uint64_t>(x); return Status::ok(); }
    case GgufType::kU16: { uint16_t x; NC_RETURN_IF_ERROR(c.read(x, what)); v.u = x; v.i = x; return Status::ok(); }
    case GgufType::kI16: { int16_t x; NC_RETURN_IF_ERROR(c.read(x, what)); v.i = x; v.u = static_cast<uint64_t>(x); return Status::ok(); }
    case GgufType::kU32: { uint32_t x; NC_RETURN_IF_ERROR(c.read(x, what)); v.u = x; v.i = x; return Status::ok(); }
    case GgufType::kI32: { int32_t x; NC_RETURN_IF_ERROR(c.read(x, what)); v.i = x; v.u = static_cast<uint64_t>(x); return Status::ok(); }
    case GgufType::kU64: { uint64_t x; NC_RETURN_IF_ERROR(c.read(x, what)); v.u = x; v.i = static_cast<int64_t>(x); return Status::ok(); }
    case GgufType::kI64: { int64_t x; NC_RETURN_IF_ERROR(c.read(x, what)); v.i = x; v.u = static_cast<uint64_t>(x); return Status::ok(); }
    case GgufType::kF32: { float x; NC_RETURN_IF_ERROR(c.read(x, what)); v.f = x; return Status::ok(); }
    case GgufType::kF64: { double x; NC_RETURN_IF_ERROR(c.read(x, what)); v.f = x; return Status::ok(); }
    case GgufType::kBool: { uint8_t x; NC_RETURN_IF_ERROR(c.read(x, what)); v.u = x != 0; v.i = x != 0; return Status::ok(); }
    case GgufType::kString: return c.read_string(v.str, what);
    case GgufType::kArray: return internal_error("read_scalar on array");
  }
  return internal_error("bad type");
}

uint64_t pad_to(uint64_t x, uint64_t align) { return (x + align - 1) / align * align; }

}  // namespace

int64_t GgufValue::elem_int(uint64_t idx) const {
  const uint8_t* p = elems + idx * gguf_type_size(elem_type);
  switch (elem_type) {
    case GgufType::kU8: return load_le<uint8_t>(p);
    case GgufType::kI8: return load_le<int8_t>(p);
    case GgufType::kU16: return load_le<uint16_t>(p);
    case GgufType::kI16: return load_le<int16_t>(p);
    case GgufType::kU32: return load_le<uint32_t>(p);
    case GgufType::kI32: return load_le<int32_t>(p);
    case GgufType::kU64: return static_cast<int64_t>(load_le<uint64_t>(p));
    case GgufType::kI64: return load_le<int64_t>(p);
    case GgufType::kBool: return load_le<uint8_t>(p) != 0;
    case GgufType::kF32: return static_cast<int64_t>(load_le<float>(p));
    case GgufType::kF64: return static_cast<int64_t>(load_le<double>(p));
    case GgufType::kString: case GgufType::kArray: return 0;
  }
  return 0;
}

double GgufValue::elem_float(uint64_t idx) const {
  const uint8_t* p = elems + idx * gguf_type_size(elem_type);
  switch (elem_type) {
    case GgufType::kF32: return load_le<float>(p);
    case GgufType::kF64: return load_le<double>(p);
    case GgufType::kU8: case GgufType::kI8: case GgufType::kU16: case GgufType::kI16: case GgufType::kU32:
    case GgufType::kI32: case GgufType::kU64: case GgufType::kI64: case GgufType::kBool:
      return static_cast<double>(elem_int(idx));
    case GgufType::kString: case GgufType::kArray: return 0;
  }
  return 0;
}

std::string GgufValue::to_display_string(size_t max_elems) const {
  auto quote = [](std::string_view s) {
    std::string r = "\"";
    for (char ch : s.substr(0, 120)) r += (ch == '\n') ? std::string("\\n") : std::string(1, ch);
    if (s.size() > 120) r += "...";
    return r + "\"";
  };
  switch (type) {
    case GgufType::kString: return quote(str);
    case GgufType::kBool: return u ? "true" : "false";
    case GgufType::kF32: case GgufType::kF64: return fmt::format("{}", f);
    case GgufType::kU8: case GgufType::kU16: case GgufType::kU32: case GgufType::kU64: return fmt::format("{}", u);
    case GgufType::kI8: case GgufType::kI16: case GgufType::kI32: case GgufType::kI64: return fmt::format("{}", i);
    case GgufType::kArray: {
      std::string r = fmt::format("[{} x {}] [", n_elems, gguf_type_name(elem_type));
      const uint64_t n = std::min<uint64_t>(n_elems, max_elems);
      for (uint64_t k = 0; k < n; ++k) {
        if (k) r += ", ";
        if (elem_type == GgufType::kString) r += quote(strings[k]);
        else if (elem_type == GgufType::kF32 || elem_type == GgufType::kF64) r += fmt::format("{}", elem_float(k));
        else r += fmt::format("{}", elem_int(k));
      }
      if (n < n_elems) r += ", ...";
      return r + "]";
    }
  }
  return "?";
}

Result<std::unique_ptr<GgufFile>> GgufFile::open(const std::string& path) {
  NC_ASSIGN_OR_RETURN(auto map, MappedFile::open(path));
  std::unique_ptr<GgufFile> f(new GgufFile());
  f->bytes_ = map->bytes();
  f->map_ = std::move(map);
  f->path_ = path;
  Status s = f->parse_all(true);
  if (!s.is_ok()) return s.with_context(path);
  return f;
}

Result<std::unique_ptr<GgufFile>> GgufFile::parse(std::span<const uint8_t> bytes, bool require_data) {
  std::unique_ptr<GgufFile> f(new GgufFile());
  f->bytes_ = bytes;
  NC_RETURN_IF_ERROR(f->parse_all(require_data));
  return f;
}

Status GgufFile::parse_all(bool require_data) {
  Cursor c(bytes_);
  uint32_t magic = 0;
  if (bytes_.size() < 4) return data_loss(fmt::format("not a GGUF file: only {} bytes", bytes_.size()));
  NC_RETURN_IF_ERROR(c.read(magic, "magic"));
  if (std::memcmp(bytes_.data(), "GGUF", 4) != 0)
    return invalid_argument(fmt::format("not a GGUF file: bad magic {:02x} {:02x} {:02x} {:02x} (want \"GGUF\")",
                                        bytes_[0], bytes_[1], bytes_[2], bytes_[3]));
  NC_RETURN_IF_ERROR(c.read(version_, "version"));
  if ((version_ & 0xFFFF) == 0)
    return invalid_argument(fmt::format("GGUF version {:#x} looks byte-swapped: big-endian files are not supported",
                                        version_));
  if (version_ == 1) return invalid_argument("GGUF version 1 is no longer supported; convert the file to v3");
  if (version_ == 0 || version_ > 3)
    return invalid_argument(fmt::format("unsupported GGUF version {} (supported: 2, 3)", version_));

  int64_t n_tensors = 0, n_kv = 0;
  NC_RETURN_IF_ERROR(c.read(n_tensors, "tensor count"));
  NC_RETURN_IF_ERROR(c.read(n_kv, "metadata count"));
  // Each KV needs at least 8 (key length) + 1 (key) + 4 (type) + 1 bytes; each tensor info at least 8+1+4+4+8.
  if (n_kv < 0 || static_cast<uint64_t>(n_kv) > c.left() / 14)
    return data_loss(fmt::format("metadata count {} is negative or larger than the file can hold", n_kv));
  if (n_tensors < 0 || static_cast<uint64_t>(n_tensors) > c.left() / 25)
    return data_loss(fmt::format("tensor count {} is negative or larger than the file can hold", n_tensors));

  kvs_.reserve(static_cast<size_t>(n_kv));
  for (int64_t k = 0; k < n_kv; ++k) {
    GgufKv kv;
    const size_t at = c.pos();
    NC_RETURN_IF_ERROR(c.read_string(kv.key, "metadata key"));
    if (kv.key.empty()) return data_loss(fmt::format("metadata entry {} at byte {} has an empty key", k, at));
    const std::string key(kv.key);
    int32_t t = 0;
    NC_RETURN_IF_ERROR(c.read(t, "metadata value type"));
    if (!valid_value_type(t)) return data_loss(fmt::format("metadata key '{}' has unknown value type {}", key, t));
    kv.value.type = static_cast<GgufType>(t);
    if (kv.value.type == GgufType::kArray) {
      int32_t et = 0;
      NC_RETURN_IF_ERROR(c.read(et, "array element type"));
      if (!valid_value_type(et))
        return data_loss(fmt::format("metadata key '{}': array has unknown element type {}", key, et));
      if (et == static_cast<int32_t>(GgufType::kArray))
        return data_loss(fmt::format("metadata key '{}': arrays of arrays are not allowed", key));
      kv.value.elem_type = static_cast<GgufType>(et);
      NC_RETURN_IF_ERROR(c.read(kv.value.n_elems, "array length"));
      const uint64_t n = kv.value.n_elems;
      if (n > kGgufMaxArrayElements)
        return data_loss(fmt::format("metadata key '{}': array of {} elements exceeds the limit of {}", key, n,
                                     kGgufMaxArrayElements));
      if (kv.value.elem_type == GgufType::kString) {
        if (n > c.left() / 8)
          return data_loss(fmt::format("metadata key '{}': {} strings cannot fit in the {} bytes left", key, n, c.left()));
        kv.value.strings.resize(n);
        for (uint64_t e = 0; e < n; ++e) {
          Status s = c.read_string(kv.value.strings[e], "array string");
          if (!s.is_ok()) return s.with_context(fmt::format("metadata key '{}' element {}", key, e));
        }
      } else {
        const uint64_t es = gguf_type_size(kv.value.elem_type);
        if (n > c.left() / es)
          return data_loss(fmt::format("metadata key '{}': array of {} x {} bytes runs past the end of the file", key,
                                       n, es));
        kv.value.elems = c.here();
        NC_RETURN_IF_ERROR(c.skip(n * es, "array data"));
      }
    } else {
      Status s = read_scalar(c, kv.value.type, kv.value, "metadata value");
      if (!s.is_ok()) return s.with_context(fmt::format("metadata key '{}'", key));
    }
    if (!kv_index_.emplace(kv.key, kvs_.size()).second)
      return data_loss(fmt::format("duplicate metadata key '{}'", key));
    kvs_.push_back(std::move(kv));
  }

  if (const GgufValue* a = find("general.alignment")) {
    if (a->type != GgufType::kU32)
      return data_loss(fmt::format("general.alignment must be u32, found {}", gguf_type_name(a->type)));
    if (a->u == 0 || (a->u & (a->u - 1)) != 0)
      return data_loss(fmt::format("general.alignment {} is not a nonzero power of two", a->u));
    alignment_ = static_cast<uint32_t>(a->u);
  }

  tensors_.reserve(static_cast<size_t>(n_tensors));
  uint64_t expected_offset = 0;
  for (int64_t k = 0; k < n_tensors; ++k) {
    GgufTensorInfo ti;
    NC_RETURN_IF_ERROR(c.read_string(ti.name, "tensor name"));
    const std::string name(ti.name);
    if (ti.name.size() >= kGgufMaxNameLength)
      return data_loss(fmt::format("tensor {} name '{}' is {} bytes; names must be shorter than {}", k, name,
                                   ti.name.size(), kGgufMaxNameLength));
    NC_RETURN_IF_ERROR(c.read(ti.n_dims, "tensor dimension count"));
    if (ti.n_dims > kGgufMaxDims)
      return data_loss(fmt::format("tensor '{}' has {} dimensions; at most {} are allowed", name, ti.n_dims,
                                   kGgufMaxDims));
    for (uint32_t d = 0; d < ti.n_dims; ++d) {
      NC_RETURN_IF_ERROR(c.read(ti.ne[d], "tensor dimension"));
      if (ti.ne[d] < 0) return data_loss(fmt::format("tensor '{}' dimension {} is negative ({})", name, d, ti.ne[d]));
    }
    // The element count must fit in int64.
    int64_t prod = 1;
    for (int d = 0; d < kGgufMaxDims; ++d) {
      if (ti.ne[d] != 0 && prod > std::numeric_limits<int64_t>::max() / ti.ne[d])
        return data_loss(fmt::format("tensor '{}' dimensions overflow: {} x {} x {} x {}", name, ti.ne[0], ti.ne[1],
                                     ti.ne[2], ti.ne[3]));
      prod *= ti.ne[d];
    }
    uint32_t type_id = 0;
    NC_RETURN_IF_ERROR(c.read(type_id, "tensor type"));
    auto traits = ggml_type_traits(type_id);
    if (!traits) return data_loss(fmt::format("tensor '{}' has unknown type id {}", name, type_id));
    ti.type = static_cast<GgmlType>(type_id);
    if (ti.ne[0] % traits->block_elems != 0)
      return data_loss(fmt::format("tensor '{}' of type {}: row length {} is not a multiple of the block size {}", name,
                                   traits->name, ti.ne[0], traits->block_elems));
    const uint64_t n_blocks = static_cast<uint64_t>(prod) / static_cast<uint64_t>(traits->block_elems);
    if (traits->block_bytes != 0 && n_blocks > std::numeric_limits<uint64_t>::max() / 2 / traits->block_bytes)
      return data_loss(fmt::format("tensor '{}' byte size overflows", name));
    ti.n_bytes = n_blocks * traits->block_bytes;
    NC_RETURN_IF_ERROR(c.read(ti.offset, "tensor offset"));
    if (ti.offset != expected_offset)
      return data_loss(fmt::format("tensor '{}' data offset {} is not where it must be ({}): tensors must be "
                                   "contiguous and aligned to {}",
                                   name, ti.offset, expected_offset, alignment_));
    const uint64_t padded = pad_to(ti.n_bytes, alignment_);
    if (padded < ti.n_bytes || expected_offset + padded < expected_offset)
      return data_loss(fmt::format("tensor '{}' offsets overflow", name));
    expected_offset += padded;
    if (!tensor_index_.emplace(ti.name, tensors_.size()).second)
      return data_loss(fmt::format("duplicate tensor name '{}'", name));
    tensors_.push_back(ti);
  }

  data_offset_ = pad_to(c.pos(), alignment_);
  if (require_data) {
    if (data_offset_ > bytes_.size() && !tensors_.empty())
      return data_loss(fmt::format("file truncated: data section would start at byte {} but the file has {} bytes",
                                   data_offset_, bytes_.size()));
    const uint64_t avail = data_offset_ <= bytes_.size() ? bytes_.size() - data_offset_ : 0;
    for (const auto& t : tensors_) {
      if (t.offset + t.n_bytes > avail)
        return data_loss(fmt::format("file truncated: tensor '{}' data [{}, {}) lies outside the file's {} data bytes",
                                     t.name, t.offset, t.offset + t.n_bytes, avail));
    }
  }
  return Status::ok();
}

const GgufValue* GgufFile::find(std::string_view key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kvs_[it->second].value;
}

const GgufTensorInfo* GgufFile::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

namespace {
Status wrong_type(std::string_view key, GgufType want, GgufType got) {
  return invalid_argument(
      fmt::format("metadata key '{}' has type {}, expected {}", key, gguf_type_name(got), gguf_type_name(want)));
}
Status missing(std::string_view key) { return invalid_argument(fmt::format("required metadata key '{}' is missing", key)); }
}  // namespace

Result<uint32_t> GgufFile::get_u32(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return missing(key);
  if (v->type != GgufType::kU32) return wrong_type(key, GgufType::kU32, v->type);
  return static_cast<uint32_t>(v->u);
}
Result<float> GgufFile::get_f32(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return missing(key);
  if (v->type != GgufType::kF32) return wrong_type(key, GgufType::kF32, v->type);
  return static_cast<float>(v->f);
}
Result<bool> GgufFile::get_bool(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return missing(key);
  if (v->type != GgufType::kBool) return wrong_type(key, GgufType::kBool, v->type);
  return v->u != 0;
}
Result<std::string_view> GgufFile::get_string(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return missing(key);
  if (v->type != GgufType::kString) return wrong_type(key, GgufType::kString, v->type);
  return v->str;
}
Result<uint32_t> GgufFile::get_u32_or(std::string_view key, uint32_t fallback) const {
  return find(key) ? get_u32(key) : Result<uint32_t>(fallback);
}
Result<float> GgufFile::get_f32_or(std::string_view key, float fallback) const {
  return find(key) ? get_f32(key) : Result<float>(fallback);
}
Result<bool> GgufFile::get_bool_or(std::string_view key, bool fallback) const {
  return find(key) ? get_bool(key) : Result<bool>(fallback);
}

}  // namespace nc::engine
