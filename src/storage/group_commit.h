// GroupCommit: many small write units, few commits. Callers on any thread submit a unit of work (a
// function over a Transaction) with a completion callback; one writer thread takes every unit queued
// so far, runs each inside its own SAVEPOINT of ONE transaction and commits once — one fsync for the
// group — then calls each unit's callback with that unit's own Status. A unit that fails is rolled
// back to its savepoint alone; the others still commit. While a group commits, new units queue for the
// next, so under load groups grow by themselves and with no load a unit commits at once (no timer).
//
// Durability: a unit's callback sees OK only after COMMIT returned (SQLite synchronous=FULL: the WAL
// is fsynced; PostgreSQL: synchronous_commit). A failed COMMIT or a non-retryable error outside any
// unit fails every unit of the group with that error. Retryable failures (busy, serialization) rerun
// the whole group (Database::transact), so a unit's function may run more than once: it must
// (re)assign, never accumulate, whatever it reports to its caller.
//
// Threads: submit() from any thread; callbacks run on the writer thread (keep them short: post to
// your own executor). stop() drains what is queued, then joins; submit() after stop() calls the
// callback at once with Unavailable. Ownership: borrows the Database (it must outlive this).
#pragma once
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include "core/histogram.h"
#include "core/status.h"
#include "storage/database.h"

namespace nc::storage {

class GroupCommit {
 public:
  using Work = std::function<Status(Transaction&)>;
  using Done = std::function<void(Status)>;

  // Bounds (seconds) of the write-latency histogram: how long units took from submit() to their
  // callback (queueing for the writer, their group's SQL and COMMIT).
  static constexpr double kWriteBounds[] = {0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0025, 0.005,
                                            0.01,   0.025,   0.05,   0.1,     0.25,  0.5,   1.0};
  struct Stats {
    uint64_t groups = 0, units = 0;
    Histogram write_seconds{kWriteBounds};
  };

  // max_group: the most units one transaction carries.
  explicit GroupCommit(Database& db, size_t max_group = 4096);
  ~GroupCommit();
  GroupCommit(const GroupCommit&) = delete;
  GroupCommit& operator=(const GroupCommit&) = delete;

  void submit(Work work, Done done);
  // Runs `work` in the next group and waits for its outcome (for callers that may block).
  Status run(Work work);
  void stop();
  Stats stats() const;

 private:
  struct Unit {
    Work work;
    Done done;
    std::chrono::steady_clock::time_point submitted;
  };
  void loop();

  Database& db_;
  const size_t max_group_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Unit> queue_;
  bool stopping_ = false;
  Stats stats_;
  std::thread thread_;
};

}  // namespace nc::storage
