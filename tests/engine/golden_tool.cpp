// nc_golden: helper for tools/make-goldens.sh.
//   nc_golden tokens N_TOKENS N_VOCAB SEED          -> prints the test prompt's ids, comma-separated
//   nc_golden pack REF_LOGITS.bin N_TOKENS N_VOCAB SEED OUT.golden
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "engine/golden.h"

int main(int argc, char** argv) {
  using namespace nc::test;
  const std::string cmd = argc > 1 ? argv[1] : "";
  if (cmd == "tokens" && argc == 5) {
    auto t = golden_tokens(std::atoi(argv[2]), std::atoi(argv[3]), std::strtoull(argv[4], nullptr, 10));
    for (size_t i = 0; i < t.size(); ++i) std::printf("%s%d", i ? "," : "", t[i]);
    std::printf("\n");
    return 0;
  }
  if (cmd == "pack" && argc == 7) {
    const uint32_t nt = std::atoi(argv[3]), nv = std::atoi(argv[4]);
    std::vector<float> logits(static_cast<size_t>(nt) * nv);
    FILE* f = std::fopen(argv[2], "rb");
    if (!f || std::fread(logits.data(), 4, logits.size(), f) != logits.size()) {
      std::fprintf(stderr, "cannot read %zu floats from %s\n", logits.size(), argv[2]);
      return 1;
    }
    std::fclose(f);
    auto g = golden_from_logits(logits, golden_tokens(nt, nv, std::strtoull(argv[5], nullptr, 10)), nv);
    return golden_write(g, argv[6]) ? 0 : 1;
  }
  std::fprintf(stderr, "usage: nc_golden tokens N NV SEED | pack REF N NV SEED OUT\n");
  return 2;
}
