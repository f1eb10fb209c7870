// ConnectionPool<Conn>: a bounded set of database connections, opened lazily by a factory (internal
// to src/storage). acquire() hands out an idle connection (most recently used first: its statement
// cache is warm) or opens a new one while fewer than max_size exist, else waits up to wait_ms.
// The pool owns idle connections; a Lease owns a leased one and gives it back when destroyed, unless
// discard() was called (a broken connection, closed instead). Thread-safe. The pool must outlive
// every Lease.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "core/status.h"

namespace nc::storage {

template <typename Conn>
class ConnectionPool {
 public:
  using Factory = std::function<Result<std::unique_ptr<Conn>>()>;

  class Lease {
   public:
    Lease() = default;
    Lease(ConnectionPool* pool, std::unique_ptr<Conn> conn) : pool_(pool), conn_(std::move(conn)) {}
    Lease(Lease&& o) noexcept : pool_(std::exchange(o.pool_, nullptr)), conn_(std::move(o.conn_)) {}
    Lease& operator=(Lease&& o) noexcept {
      if (this != &o) {
        reset();
        pool_ = std::exchange(o.pool_, nullptr);
        conn_ = std::move(o.conn_);
      }
      return *this;
    }
    ~Lease() { reset(); }

    Conn& operator*() const { return *conn_; }
    Conn* operator->() const { return conn_.get(); }
    // Closes the connection instead of returning it to the pool.
    void discard() {
      if (pool_ && conn_) {
        conn_.reset();
        pool_->forget();
      }
      pool_ = nullptr;
    }

   private:
    void reset() {
      if (pool_ && conn_) pool_->give_back(std::move(conn_));
      pool_ = nullptr;
      conn_.reset();
    }

    ConnectionPool* pool_ = nullptr;
    std::unique_ptr<Conn> conn_;
  };

  ConnectionPool(int max_size, int wait_ms, Factory factory)
      : max_size_(max_size), wait_ms_(wait_ms), factory_(std::move(factory)) {}
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;

  Result<Lease> acquire() {
    std::unique_lock<std::mutex> lock(mu_);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms_);
    while (idle_.empty() && n_open_ >= max_size_) {
      if (cv_.wait_until(lock, deadline) == std::cv_status::timeout && idle_.empty() && n_open_ >= max_size_) {
        return Status(StatusCode::kUnavailable,
                      fmt::format("all {} database connections busy for {} ms", max_size_, wait_ms_));
      }
    }
    if (!idle_.empty()) {
      std::unique_ptr<Conn> conn = std::move(idle_.back());
      idle_.pop_back();
      return Lease(this, std::move(conn));
    }
    ++n_open_;  // reserve the slot, then connect without holding the lock
    lock.unlock();
    Result<std::unique_ptr<Conn>> conn = factory_();
    if (!conn.is_ok()) {
      forget();
      return conn.status();
    }
    return Lease(this, std::move(conn).value());
  }

 private:
  void give_back(std::unique_ptr<Conn> conn) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      idle_.push_back(std::move(conn));
    }
    cv_.notify_one();
  }
  void forget() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      --n_open_;
    }
    cv_.notify_one();
  }

  const int max_size_;
  const int wait_ms_;
  const Factory factory_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Conn>> idle_;  // guarded by mu_
  int n_open_ = 0;                           // idle + leased + being opened; guarded by mu_
};

}  // namespace nc::storage
