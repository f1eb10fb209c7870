// Read bandwidth of this machine with N threads (OpenMP): sums a 2 GiB buffer (huge pages where
// the kernel allows), best of 8 passes.
// Used for the decode roofline: tokens/s <= bandwidth / weight bytes per token.
// Build: gcc -O2 -mavx2 -fopenmp membw.c -o membw ; run: OMP_NUM_THREADS=2 ./membw [MiB]
#include <immintrin.h>
#include <omp.h>
#include <sys/mman.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char** argv) {
  size_t bytes = (size_t)(argc > 1 ? atol(argv[1]) : 2048) << 20;
  size_t n = bytes / sizeof(__m256i);
  // Anonymous memory on transparent huge pages, like the engine's repacked weights.
  __m256i* buf = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (buf == MAP_FAILED) return 1;
  madvise(buf, bytes, MADV_HUGEPAGE);
  memset(buf, 1, bytes);
  double best = 1e9;
  volatile long sink = 0;
  for (int rep = 0; rep < 8; rep++) {
    double t0 = omp_get_wtime();
    long total = 0;
#pragma omp parallel reduction(+ : total)
    {
      __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
#pragma omp for schedule(static)
      for (size_t i = 0; i < n; i += 4) {
        a0 = _mm256_add_epi64(a0, _mm256_load_si256(buf + i));
        a1 = _mm256_add_epi64(a1, _mm256_load_si256(buf + i + 1));
        a2 = _mm256_add_epi64(a2, _mm256_load_si256(buf + i + 2));
        a3 = _mm256_add_epi64(a3, _mm256_load_si256(buf + i + 3));
      }
      __m256i acc = _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
      long tmp[4];
      _mm256_storeu_si256((__m256i*)tmp, acc);
      total += tmp[0] + tmp[1] + tmp[2] + tmp[3];
    }
    double t = omp_get_wtime() - t0;
    sink += total;
    if (t < best) best = t;
  }
  printf("threads=%d read_gbps=%.2f\n", omp_get_max_threads(), bytes / best / 1e9);
  munmap(buf, bytes);
  return 0;
}
