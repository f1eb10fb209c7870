// GgmlType: the tensor element types a GGUF file can declare (ids match ggml's enum), with their
// block geometry. Knowing every type's geometry lets the reader validate any file; which types the
// engine can compute with is a separate question (kernels/).
// Thread-safety: constant tables, safe from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace nc::engine {

enum class GgmlType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kIQ2_XXS = 16,
  kIQ2_XS = 17,
  kIQ3_XXS = 18,
  kIQ1_S = 19,
  kIQ4_NL = 20,
  kIQ3_S = 21,
  kIQ2_S = 22,
  kIQ4_XS = 23,
  kI8 = 24,
  kI16 = 25,
  kI32 = 26,
  kI64 = 27,
  kF64 = 28,
  kIQ1_M = 29,
  kBF16 = 30,
  kTQ1_0 = 34,
  kTQ2_0 = 35,
  kMXFP4 = 39,
  kNVFP4 = 40,
  kQ1_0 = 41,
  kQ2_0 = 42,
};

struct GgmlTypeTraits {
  std::string_view name;    // ggml's lower-case name, e.g. "q4_K"
  int64_t block_elems = 0;  // elements per block (1 for plain types)
  size_t block_bytes = 0;   // bytes per block
};

// Traits of a type id as read from a file; nullopt for ids ggml does not define.
std::optional<GgmlTypeTraits> ggml_type_traits(uint32_t type_id);
const GgmlTypeTraits& ggml_traits(GgmlType type);  // for known enum values
std::string_view ggml_type_name(GgmlType type);
// Parses "f32", "F16", "q4_k", "Q8_0", ... (case-insensitive); nullopt if unknown.
std::optional<GgmlType> ggml_type_from_name(std::string_view name);

// Bytes of one row of n elements (n must be a multiple of the block size).
inline size_t ggml_row_bytes(GgmlType type, int64_t n) {
  const auto& t = ggml_traits(type);
  return static_cast<size_t>(n / t.block_elems) * t.block_bytes;
}

}  // namespace nc::engine
