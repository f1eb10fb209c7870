// ThreadPool: a persistent set of worker threads for data-parallel kernels (matmul, attention).
// Workers live for the pool's lifetime; `run` wakes them, the calling thread takes part as thread 0,
// and returns when every thread has finished. Workers spin briefly before sleeping so that the
// hundreds of small parallel regions of one decode step cost microseconds, not syscalls.
// Thread-safety: `run` must be called from one thread at a time (the pool's owner, e.g. the engine's
// step-loop thread); it is not reentrant.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

namespace nc {

class ThreadPool {
 public:
  // n_threads counts the caller: n_threads - 1 workers are started. n_threads <= 0 means hardware threads.
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Calls fn(tid, n_threads) once on each of the pool's threads, tid in [0, n_threads).
  void run(const std::function<void(int tid, int n_threads)>& fn);

  // Splits [0, n) into chunks of `grain` handed out dynamically; fn(begin, end, tid) per chunk.
  void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t, int)>& fn);

 private:
  void worker_main(int tid);

  int n_threads_;
  std::vector<std::thread> workers_;
  const std::function<void(int, int)>* job_ = nullptr;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
};

}  // namespace nc
