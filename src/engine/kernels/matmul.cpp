#include "engine/kernels/matmul.h"

#include <algorithm>
#include <atomic>

namespace nc::engine {

void matmul_prepare(GgmlType weight_type, const float* x, int64_t n_tokens, int64_t n_cols, int64_t ldx,
                    ActBuffer& out, ThreadPool& pool, int64_t n_exact) {
  const TypeKernels& k = type_kernels(weight_type);
  out.act_type = k.act_type;
  out.n_tokens = n_tokens;
  out.n_exact = n_exact < 0 ? n_tokens : std::min(n_exact, n_tokens);
  out.n_cols = n_cols;
  out.row_bytes = k.act_bytes(n_cols);
  const size_t need = out.row_bytes * static_cast<size_t>(n_tokens);
  if (out.data.size() < need) out.data.resize(need);
  auto quantize = k.quantize_act;
  if (n_tokens * n_cols < 16384) {
    for (int64_t t = 0; t < n_tokens; ++t) quantize(x + t * ldx, out.data.data() + t * out.row_bytes, n_cols);
    return;
  }
  pool.parallel_for(n_tokens, std::max<int64_t>(1, n_tokens / (4 * pool.size())), [&](int64_t b, int64_t e, int) {
    for (int64_t t = b; t < e; ++t) quantize(x + t * ldx, out.data.data() + t * out.row_bytes, n_cols);
  });
}

namespace {

constexpr int64_t kDecodeTokens = 4;

// One work unit: rows [r0, r1) of one job, for every token.
void run_rows(const MatmulJob& job, const TypeKernels& k, const ActBuffer& acts, int64_t r0, int64_t r1) {
  const WeightView& w = *job.w;
  const int64_t n = w.n_cols;
  const int64_t T = acts.n_tokens;
  if (w.packed != nullptr) {
    // r0 is a multiple of the group size; the last group may be partial (r1 == n_rows).
    const int64_t G = k.pack_rows;
    const int64_t g0 = r0 / G, g1 = (r1 + G - 1) / G;
    // Columns [0, n_exact) with the llama.cpp-order kernel, the rest with the fast one if there is one.
    const int64_t split = k.gemm_packed_fast ? acts.n_exact : T;
    auto run = [&](auto fn, int max_cols, int64_t c0, int64_t c1) {
      for (int64_t t0 = c0; t0 < c1; t0 += max_cols) {
        const int nc = static_cast<int>(std::min<int64_t>(max_cols, c1 - t0));
        fn(n, w.packed + g0 * w.packed_group_bytes, w.packed_group_bytes, static_cast<int>(g1 - g0),
           static_cast<int>(r1 - g0 * G), acts.row(t0), acts.row_bytes, nc, job.y + t0 * job.ldy + g0 * G,
           static_cast<size_t>(job.ldy));
      }
    };
    run(k.gemm_packed, k.gemm_packed_max_cols, 0, split);
    if (split < T) run(k.gemm_packed_fast, k.gemm_packed_fast_max_cols, split, T);
    return;
  }
  if (k.gemm != nullptr) {
    // Few tokens (decode): one weight row at a time, so each thread reads a single sequential stream
    // that the hardware prefetcher follows (several interleaved rows measured 35% slower).
    const int MR = T <= kDecodeTokens ? 1 : k.gemm_max_rows, NR = k.gemm_max_cols;
    for (int64_t t0 = 0; t0 < T; t0 += NR) {
      const int nc = static_cast<int>(std::min<int64_t>(NR, T - t0));
      for (int64_t r = r0; r < r1; r += MR) {
        const int nr = static_cast<int>(std::min<int64_t>(MR, r1 - r));
        k.gemm(n, w.data + r * w.row_bytes, w.row_bytes, nr, acts.row(t0), acts.row_bytes, nc, job.y + t0 * job.ldy + r,
               static_cast<size_t>(job.ldy));
      }
    }
    return;
  }
  for (int64_t t = 0; t < T; ++t) {
    const uint8_t* a = acts.row(t);
    float* y = job.y + t * job.ldy;
    for (int64_t r = r0; r < r1; ++r) y[r] = k.vec_dot(n, w.data + r * w.row_bytes, a);
  }
}

}  // namespace

void matmul_run(std::span<const MatmulJob> jobs, const ActBuffer& acts, ThreadPool& pool) {
  // Work units of `chunk` rows over all jobs, handed out dynamically.
  const int64_t T = acts.n_tokens;
  const int64_t chunk = 64;
  std::vector<int64_t> starts;  // prefix sums of chunks per job
  starts.reserve(jobs.size() + 1);
  int64_t total = 0;
  for (const auto& j : jobs) {
    starts.push_back(total);
    total += (j.w->n_rows + chunk - 1) / chunk;
  }
  starts.push_back(total);
  std::vector<const TypeKernels*> kern(jobs.size());
  for (size_t i = 0; i < jobs.size(); ++i) kern[i] = &type_kernels(jobs[i].w->type);

  auto run_unit = [&](int64_t u, size_t& job) {
    while (starts[job + 1] <= u) ++job;
    while (starts[job] > u) --job;
    const int64_t r0 = (u - starts[job]) * chunk;
    const int64_t r1 = std::min(jobs[job].w->n_rows, r0 + chunk);
    run_rows(jobs[job], *kern[job], acts, r0, r1);
  };
  if (T <= kDecodeTokens) {
    // Decode is bound by reading the weights once. Each thread owns a contiguous run of units and
    // takes them front to back (one long stream the hardware prefetcher follows; measured +8% over
    // interleaved chunks); a thread that finishes early steals units from the back of another's
    // run, so a slow core does not leave the other one waiting at the end of the region.
    const int nth = pool.size();
    std::vector<std::atomic<uint64_t>> ranges(nth);
    auto pack = [](uint64_t b, uint64_t e) { return b | (e << 32); };
    for (int t = 0; t < nth; ++t) ranges[t].store(pack(total * t / nth, total * (t + 1) / nth));
    pool.run([&](int tid, int n_threads) {
      size_t job = 0;
      for (;;) {  // own run, from the front
        uint64_t old = ranges[tid].load(std::memory_order_acquire);
        const uint64_t b = old & 0xFFFFFFFFu, e = old >> 32;
        if (b >= e) break;
        if (!ranges[tid].compare_exchange_weak(old, pack(b + 1, e), std::memory_order_acq_rel)) continue;
        run_unit(static_cast<int64_t>(b), job);
      }
      for (int off = 1; off < n_threads; ++off) {  // then others' runs, from the back
        auto& victim = ranges[(tid + off) % n_threads];
        for (;;) {
          uint64_t old = victim.load(std::memory_order_acquire);
          const uint64_t b = old & 0xFFFFFFFFu, e = old >> 32;
          if (b >= e) break;
          if (!victim.compare_exchange_weak(old, pack(b, e - 1), std::memory_order_acq_rel)) continue;
          run_unit(static_cast<int64_t>(e - 1), job);
        }
      }
    });
    return;
  }
  std::atomic<int64_t> next{0};
  auto work = [&](int, int) {
    size_t job = 0;
    for (;;) {
      const int64_t u = next.fetch_add(1, std::memory_order_relaxed);
      if (u >= total) break;
      run_unit(u, job);
    }
  };
  pool.run(work);
}

void matmul(const WeightView& w, const float* x, int64_t n_tokens, int64_t ldx, float* y, int64_t ldy,
            ActBuffer& scratch, ThreadPool& pool, int64_t n_exact) {
  matmul_prepare(w.type, x, n_tokens, w.n_cols, ldx, scratch, pool, n_exact);
  const MatmulJob job{&w, y, ldy};
  matmul_run(std::span<const MatmulJob>(&job, 1), scratch, pool);
}

}  // namespace nc::engine
