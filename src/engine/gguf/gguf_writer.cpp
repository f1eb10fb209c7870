#include "engine/gguf/gguf_writer.h"

#include <fmt/format.h>

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

namespace nc::engine {

namespace {
void append_bytes(std::vector<uint8_t>& out, const void* p, size_t n) {
  const auto* b = static_cast<const uint8_t*>(p);
  out.insert(out.end(), b, b + n);
}
template <typename T>
void append(std::vector<uint8_t>& out, T v) {
  append_bytes(out, &v, sizeof(T));
}
void append_string(std::vector<uint8_t>& out, std::string_view s) {
  append<uint64_t>(out, s.size());
  append_bytes(out, s.data(), s.size());
}
}  // namespace

void GgufWriter::replace(Kv kv) {
  for (auto& k : kvs_) {
    if (k.key == kv.key) {
      k = std::move(kv);
      return;
    }
  }
  kvs_.push_back(std::move(kv));
}

void GgufWriter::put(std::string key, GgufType type, const void* data, size_t n) {
  Kv kv{std::move(key), type};
  append_bytes(kv.payload, data, n);
  replace(std::move(kv));
}

void GgufWriter::set_u32(std::string key, uint32_t v) { put(std::move(key), GgufType::kU32, &v, 4); }
void GgufWriter::set_i32(std::string key, int32_t v) { put(std::move(key), GgufType::kI32, &v, 4); }
void GgufWriter::set_u64(std::string key, uint64_t v) { put(std::move(key), GgufType::kU64, &v, 8); }
void GgufWriter::set_f32(std::string key, float v) { put(std::move(key), GgufType::kF32, &v, 4); }
void GgufWriter::set_bool(std::string key, bool v) {
  uint8_t b = v ? 1 : 0;
  put(std::move(key), GgufType::kBool, &b, 1);
}
void GgufWriter::set_string(std::string key, std::string v) {
  Kv kv{std::move(key), GgufType::kString};
  append_string(kv.payload, v);
  replace(std::move(kv));
}
void GgufWriter::set_array_f32(std::string key, std::vector<float> v) {
  Kv kv{std::move(key), GgufType::kArray, GgufType::kF32};
  kv.n_elems = v.size();
  append_bytes(kv.payload, v.data(), v.size() * 4);
  replace(std::move(kv));
}
void GgufWriter::set_array_i32(std::string key, std::vector<int32_t> v) {
  Kv kv{std::move(key), GgufType::kArray, GgufType::kI32};
  kv.n_elems = v.size();
  append_bytes(kv.payload, v.data(), v.size() * 4);
  replace(std::move(kv));
}
void GgufWriter::set_array_string(std::string key, std::vector<std::string> v) {
  Kv kv{std::move(key), GgufType::kArray, GgufType::kString};
  kv.n_elems = v.size();
  for (const auto& s : v) append_string(kv.payload, s);
  replace(std::move(kv));
}

void GgufWriter::set_value(std::string key, const GgufValue& v) {
  Kv kv{std::move(key), v.type};
  switch (v.type) {
    case GgufType::kString: append_string(kv.payload, v.str); break;
    case GgufType::kArray:
      kv.elem_type = v.elem_type;
      kv.n_elems = v.n_elems;
      if (v.elem_type == GgufType::kString) {
        for (auto s : v.strings) append_string(kv.payload, s);
      } else {
        append_bytes(kv.payload, v.elems, v.n_elems * gguf_type_size(v.elem_type));
      }
      break;
    case GgufType::kF32: { float f = static_cast<float>(v.f); append(kv.payload, f); break; }
    case GgufType::kF64: append(kv.payload, v.f); break;
    case GgufType::kU8: case GgufType::kI8: case GgufType::kU16: case GgufType::kI16: case GgufType::kU32:
    case GgufType::kI32: case GgufType::kU64: case GgufType::kI64: case GgufType::kBool:
      append_bytes(kv.payload, &v.u, gguf_type_size(v.type));  // little-endian low bytes
      break;
  }
  replace(std::move(kv));
}

void GgufWriter::add_tensor(std::string name, GgmlType type, std::vector<int64_t> ne, Filler fill) {
  int64_t n = 1;
  for (auto d : ne) n *= d;
  const auto& tr = ggml_traits(type);
  const size_t n_bytes = static_cast<size_t>(n / tr.block_elems) * tr.block_bytes;
  tensors_.push_back({std::move(name), type, std::move(ne), n_bytes, std::move(fill)});
}

Status GgufWriter::write(const std::string& path) const {
  uint32_t alignment = alignment_;
  for (const auto& kv : kvs_) {
    if (kv.key == "general.alignment" && kv.type == GgufType::kU32) std::memcpy(&alignment, kv.payload.data(), 4);
  }
  if (alignment == 0 || (alignment & (alignment - 1)) != 0)
    return invalid_argument(fmt::format("general.alignment {} is not a power of two", alignment));

  std::vector<uint8_t> head;
  append_bytes(head, "GGUF", 4);
  append<uint32_t>(head, 3);
  append<int64_t>(head, static_cast<int64_t>(tensors_.size()));
  append<int64_t>(head, static_cast<int64_t>(kvs_.size()));
  for (const auto& kv : kvs_) {
    append_string(head, kv.key);
    append<int32_t>(head, static_cast<int32_t>(kv.type));
    if (kv.type == GgufType::kArray) {
      append<int32_t>(head, static_cast<int32_t>(kv.elem_type));
      append<uint64_t>(head, kv.n_elems);
    }
    append_bytes(head, kv.payload.data(), kv.payload.size());
  }
  uint64_t offset = 0;
  auto pad = [&](uint64_t x) { return (x + alignment - 1) / alignment * alignment; };
  for (const auto& t : tensors_) {
    append_string(head, t.name);
    append<uint32_t>(head, static_cast<uint32_t>(t.ne.size()));
    for (auto d : t.ne) append<int64_t>(head, d);
    append<uint32_t>(head, static_cast<uint32_t>(t.type));
    append<uint64_t>(head, offset);
    offset += pad(t.n_bytes);
  }
  head.resize(pad(head.size()), 0);

  // Unique per process, so concurrent writers of the same path never share a temp file.
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(tmp.c_str(), "wb"), &std::fclose);
  if (!f) return invalid_argument(fmt::format("cannot create {}: {}", tmp, std::strerror(errno)));
  auto fail = [&](const char* what) {
    Status s = internal_error(fmt::format("writing {}: {}: {}", tmp, what, std::strerror(errno)));
    f.reset();
    std::remove(tmp.c_str());
    return s;
  };
  if (std::fwrite(head.data(), 1, head.size(), f.get()) != head.size()) return fail("header");
  std::vector<uint8_t> buf;
  for (const auto& t : tensors_) {
    buf.assign(pad(t.n_bytes), 0);
    if (t.fill) t.fill(buf.data(), t.n_bytes);
    if (std::fwrite(buf.data(), 1, buf.size(), f.get()) != buf.size()) return fail("tensor data");
  }
  if (std::fflush(f.get()) != 0) return fail("flush");
  if (std::fclose(f.release()) != 0) {
    std::remove(tmp.c_str());
    return internal_error(fmt::format("closing {}: {}", tmp, std::strerror(errno)));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    Status s = internal_error(fmt::format("rename {} -> {}: {}", tmp, path, std::strerror(errno)));
    std::remove(tmp.c_str());
    return s;
  }
  return Status::ok();
}

}  // namespace nc::engine
