// GgufWriter: builds a GGUF v3 file (metadata + tensors) and writes it atomically: the bytes go to
// "<path>.tmp.<pid>" and are renamed over `path` only when complete, so a failed write never leaves a
// partial model behind. Tensor bytes are produced by a callback at write time, so multi-GB models
// are written without holding them in memory.
// Thread-safety: single-threaded; one writer per file.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "engine/gguf/ggml_type.h"
#include "engine/gguf/gguf.h"

namespace nc::engine {

class GgufWriter {
 public:
  // Fills `dst` (exactly the tensor's byte size) with the tensor's data.
  using Filler = std::function<void(uint8_t* dst, size_t n_bytes)>;

  void set_u32(std::string key, uint32_t v);
  void set_i32(std::string key, int32_t v);
  void set_u64(std::string key, uint64_t v);
  void set_f32(std::string key, float v);
  void set_bool(std::string key, bool v);
  void set_string(std::string key, std::string v);
  void set_array_f32(std::string key, std::vector<float> v);
  void set_array_i32(std::string key, std::vector<int32_t> v);
  void set_array_string(std::string key, std::vector<std::string> v);
  // Copies a value read from another GGUF file (any type).
  void set_value(std::string key, const GgufValue& v);

  // ne[0] is the row length. The byte size follows from the type.
  void add_tensor(std::string name, GgmlType type, std::vector<int64_t> ne, Filler fill);

  Status write(const std::string& path) const;

 private:
  struct Kv {
    Kv(std::string k, GgufType t, GgufType et = GgufType::kU8) : key(std::move(k)), type(t), elem_type(et) {}
    std::string key;
    GgufType type;
    GgufType elem_type = GgufType::kU8;
    std::vector<uint8_t> payload;  // encoded value bytes (after the type tag / array header)
    uint64_t n_elems = 0;
  };
  struct Tensor {
    std::string name;
    GgmlType type;
    std::vector<int64_t> ne;
    size_t n_bytes;
    Filler fill;
  };
  void put(std::string key, GgufType type, const void* data, size_t n);
  void replace(Kv kv);

  std::vector<Kv> kvs_;
  std::vector<Tensor> tensors_;
  uint32_t alignment_ = kGgufDefaultAlignment;
};

}  // namespace nc::engine
