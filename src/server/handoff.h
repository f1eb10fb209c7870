// Hand-offs from other threads to a coroutine on the I/O thread: EventQueue (an engine request's events,
// pushed on the engine thread) and Handoff<T> (one value from the ledger's or the worker pool's thread).
// Both wake the waiting coroutine with a timer cancel posted to its executor (Boost 1.74's async_initiate
// with use_awaitable crashes under GCC 12). Shared-owned: the pushing thread keeps it alive.
// Thread-safety: push/set from any thread; next/get/drain from the one coroutine that owns the request.
#pragma once

#include <utility>  // before Boost: asio/awaitable.hpp uses std::exchange

#include <boost/asio.hpp>

#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>

#include "engine/sched/scheduler.h"

namespace nc::server {

class EventQueue : public std::enable_shared_from_this<EventQueue> {
 public:
  using Events = std::deque<std::pair<int, engine::SchedEvent>>;
  explicit EventQueue(boost::asio::any_io_executor ex) : timer_(ex) {
    timer_.expires_at(boost::asio::steady_timer::time_point::max());
  }
  // Engine thread: one event of choice `choice`.
  void push(int choice, const engine::SchedEvent& e) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      q_.emplace_back(choice, e);
    }
    boost::asio::post(timer_.get_executor(), [self = shared_from_this()] { self->timer_.cancel(); });
  }
  // What is queued now, without waiting.
  Events drain() {
    std::lock_guard<std::mutex> lock(mu_);
    Events out;
    out.swap(q_);
    return out;
  }
  boost::asio::awaitable<Events> next() {
    for (;;) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (!q_.empty()) {
          Events out;
          out.swap(q_);
          co_return out;
        }
      }
      boost::system::error_code ec;
      co_await timer_.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ec));
      timer_.expires_at(boost::asio::steady_timer::time_point::max());
    }
  }

 private:
  boost::asio::steady_timer timer_;
  std::mutex mu_;
  Events q_;
};

template <typename T>
class Handoff : public std::enable_shared_from_this<Handoff<T>> {
 public:
  explicit Handoff(boost::asio::any_io_executor ex) : timer_(ex) {
    timer_.expires_at(boost::asio::steady_timer::time_point::max());
  }
  void set(T v) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      value_.emplace(std::move(v));
    }
    boost::asio::post(timer_.get_executor(), [self = this->shared_from_this()] { self->timer_.cancel(); });
  }
  boost::asio::awaitable<T> get() {
    for (;;) {
      std::optional<T> v;
      {
        std::lock_guard<std::mutex> lock(mu_);
        v.swap(value_);
      }
      if (v) {
        T out = std::move(*v);
        co_return out;
      }
      boost::system::error_code ec;
      co_await timer_.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ec));
    }
  }

 private:
  boost::asio::steady_timer timer_;
  std::mutex mu_;
  std::optional<T> value_;
};

}  // namespace nc::server
