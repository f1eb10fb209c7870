#include "engine/gguf/ggml_type.h"

#include <array>
#include <cctype>
#include <string>

namespace nc::engine {

namespace {
struct Row {
  uint32_t id;
  GgmlTypeTraits traits;
};
// From ggml/src/ggml.c type_traits (llama.cpp 80fb11a).
constexpr std::array<Row, 35> kTypes{{
    {0, {"f32", 1, 4}},          {1, {"f16", 1, 2}},          {2, {"q4_0", 32, 18}},
    {3, {"q4_1", 32, 20}},       {6, {"q5_0", 32, 22}},       {7, {"q5_1", 32, 24}},
    {8, {"q8_0", 32, 34}},       {9, {"q8_1", 32, 36}},       {10, {"q2_K", 256, 84}},
    {11, {"q3_K", 256, 110}},    {12, {"q4_K", 256, 144}},    {13, {"q5_K", 256, 176}},
    {14, {"q6_K", 256, 210}},    {15, {"q8_K", 256, 292}},    {16, {"iq2_xxs", 256, 66}},
    {17, {"iq2_xs", 256, 74}},   {18, {"iq3_xxs", 256, 98}},  {19, {"iq1_s", 256, 50}},
    {20, {"iq4_nl", 32, 18}},    {21, {"iq3_s", 256, 110}},   {22, {"iq2_s", 256, 82}},
    {23, {"iq4_xs", 256, 136}},  {24, {"i8", 1, 1}},          {25, {"i16", 1, 2}},
    {26, {"i32", 1, 4}},         {27, {"i64", 1, 8}},         {28, {"f64", 1, 8}},
    {29, {"iq1_m", 256, 56}},    {30, {"bf16", 1, 2}},        {34, {"tq1_0", 256, 54}},
    {35, {"tq2_0", 256, 66}},    {39, {"mxfp4", 32, 17}},     {40, {"nvfp4", 64, 36}},
    {41, {"q1_0", 128, 18}},     {42, {"q2_0", 64, 18}},
}};

std::string lower(std::string_view s) {
  std::string r(s);
  for (auto& c : r) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return r;
}
}  // namespace

std::optional<GgmlTypeTraits> ggml_type_traits(uint32_t type_id) {
  for (const auto& r : kTypes)
    if (r.id == type_id) return r.traits;
  return std::nullopt;
}

const GgmlTypeTraits& ggml_traits(GgmlType type) {
  for (const auto& r : kTypes)
    if (r.id == static_cast<uint32_t>(type)) return r.traits;
  static const GgmlTypeTraits kUnknown{"unknown", 1, 0};
  return kUnknown;
}

std::string_view ggml_type_name(GgmlType type) { return ggml_traits(type).name; }

std::optional<GgmlType> ggml_type_from_name(std::string_view name) {
  const std::string n = lower(name);
  for (const auto& r : kTypes)
    if (lower(r.traits.name) == n) return static_cast<GgmlType>(r.id);
  return std::nullopt;
}

}  // namespace nc::engine
