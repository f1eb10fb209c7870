#include "engine/kernels/kernels.h"

#include <array>
#if defined(__x86_64__)
#include <cpuid.h>
#endif
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
#if defined(__x86_64__)
uint64_t xgetbv0() {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}
#endif

KernelLevel detect_level() {
  KernelLevel cpu = KernelLevel::kScalar;
#if defined(__x86_64__)
  unsigned a, b, c, d;
  if (__get_cpuid(1, &a, &b, &c, &d)) {
    const bool osxsave = c & (1u << 27), fma = c & (1u << 12), f16c = c & (1u << 29);
    const uint64_t xcr0 = osxsave ? xgetbv0() : 0;
    unsigned a7 = 0, b7 = 0, c7 = 0, d7 = 0;
    __get_cpuid_count(7, 0, &a7, &b7, &c7, &d7);
    const bool avx2 = b7 & (1u << 5);
    const bool avx512 = (b7 & (1u << 16)) && (b7 & (1u << 17)) && (b7 & (1u << 30)) && (b7 & (1u << 31)) &&
                        (c7 & (1u << 11));  // F, DQ, BW, VL, VNNI
    if ((xcr0 & 0x6) == 0x6 && avx2 && fma && f16c) cpu = KernelLevel::kAvx2;
    if (cpu == KernelLevel::kAvx2 && (xcr0 & 0xE6) == 0xE6 && avx512) cpu = KernelLevel::kAvx512;
  }
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
#if defined(__x86_64__)
    fill_vec_kernels_avx512(v[2]);
#endif
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
