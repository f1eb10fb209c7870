// AVX-512 (F, BW, VL, VNNI) kernels. Compiled with those flags only; selected at run time.
// Functions not specialised here keep their AVX2 versions.
#include <immintrin.h>

#include "engine/kernels/kernels.h"

namespace nc::engine {

void fill_kernels_avx512(TypeKernels& k) { (void)k; }

}  // namespace nc::engine
