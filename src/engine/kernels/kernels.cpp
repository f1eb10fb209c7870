#include "engine/kernels/kernels.h"

#include <array>
#include <cstdlib>
#include <cstring>
#include <string>

namespace nc::engine {

std::string_view kernel_level_name(KernelLevel level) {
  switch (level) {
    case KernelLevel::kScalar: return "scalar";
    case KernelLevel::kAvx2: return "avx2";
    case KernelLevel::kAvx512: return "avx512";
  }
  return "?";
}

namespace {
KernelLevel detect_level() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  KernelLevel cpu = KernelLevel::kScalar;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
    cpu = KernelLevel::kAvx2;
  if (cpu == KernelLevel::kAvx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni"))
    cpu = KernelLevel::kAvx512;
#else
  KernelLevel cpu = KernelLevel::kScalar;
#endif
  // The override can only lower the level: never run instructions the CPU lacks.
  if (const char* env = std::getenv("NEOCLOUD_KERNELS")) {
    const std::string v(env);
    KernelLevel want = cpu;
    if (v == "scalar") want = KernelLevel::kScalar;
    else if (v == "avx2") want = KernelLevel::kAvx2;
    else if (v == "avx512") want = KernelLevel::kAvx512;
    if (static_cast<int>(want) < static_cast<int>(cpu)) cpu = want;
  }
  return cpu;
}

constexpr std::array<GgmlType, 7> kSupported{GgmlType::kF32,  GgmlType::kF16,  GgmlType::kBF16, GgmlType::kQ8_0,
                                             GgmlType::kQ4_0, GgmlType::kQ4_K, GgmlType::kQ6_K};

struct Tables {
  // [level][supported type index]
  std::array<std::array<TypeKernels, kSupported.size()>, 3> t;
  Tables() {
    for (size_t i = 0; i < kSupported.size(); ++i) {
      TypeKernels k;
      k.weight_type = kSupported[i];
      fill_kernels_scalar(k);
      t[0][i] = k;
#if defined(__x86_64__)
      fill_kernels_avx2(k);
      t[1][i] = k;
      fill_kernels_avx512(k);
      t[2][i] = k;
#else
      t[1][i] = k;
      t[2][i] = k;
#endif
    }
  }
};
const Tables& tables() {
  static const Tables kTables;
  return kTables;
}
}  // namespace

KernelLevel best_kernel_level() {
  static const KernelLevel kLevel = detect_level();
  return kLevel;
}

const VecKernels& vec_kernels(KernelLevel level) {
  static const std::array<VecKernels, 3> kVec = [] {
    std::array<VecKernels, 3> v;
    fill_vec_kernels_scalar(v[0]);
    v[1] = v[0];
#if defined(__x86_64__)
    fill_vec_kernels_avx2(v[1]);
#endif
    v[2] = v[1];
    return v;
  }();
  return kVec[static_cast<int>(level)];
}

bool weight_type_supported(GgmlType type) {
  for (auto t : kSupported)
    if (t == type) return true;
  return false;
}

const TypeKernels& type_kernels(GgmlType weight_type, KernelLevel level) {
  for (size_t i = 0; i < kSupported.size(); ++i)
    if (kSupported[i] == weight_type) return tables().t[static_cast<int>(level)][i];
  static const TypeKernels kNone;
  return kNone;
}

}  // namespace nc::engine
