#include "storage/group_commit.h"

#include <future>
#include <vector>

namespace nc::storage {

GroupCommit::GroupCommit(Database& db, size_t max_group) : db_(db), max_group_(max_group < 1 ? 1 : max_group) {
  thread_ = std::thread([this] { loop(); });
}

GroupCommit::~GroupCommit() { stop(); }

void GroupCommit::submit(Work work, Done done) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_) {
      queue_.push_back(Unit{std::move(work), std::move(done), std::chrono::steady_clock::now()});
      cv_.notify_one();
      return;
    }
  }
  done(unavailable("the ledger writer has stopped"));
}

Status GroupCommit::run(Work work) {
  std::promise<Status> p;
  auto f = p.get_future();
  submit(std::move(work), [&p](Status s) { p.set_value(std::move(s)); });
  return f.get();
}

void GroupCommit::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
    cv_.notify_one();
  }
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

GroupCommit::Stats GroupCommit::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void GroupCommit::loop() {
  std::vector<Unit> group;
  std::vector<Status> results;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, drained
      while (!queue_.empty() && group.size() < max_group_) {
        group.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    results.assign(group.size(), Status::ok());
    Status s = db_.transact([&](Transaction& tx) -> Status {
      for (size_t i = 0; i < group.size(); ++i) {
        results[i] = tx.savepoint(group[i].work);
        // A retryable failure or a broken transaction ends the attempt (the whole group reruns or fails).
        if (!tx.error().is_ok()) return tx.error();
      }
      return Status::ok();
    });
    const auto committed = std::chrono::steady_clock::now();
    {
      std::lock_guard<std::mutex> lock(mu_);
      stats_.groups += 1;
      stats_.units += group.size();
      for (const Unit& u : group) stats_.write_seconds.observe(std::chrono::duration<double>(committed - u.submitted).count());
    }
    for (size_t i = 0; i < group.size(); ++i) group[i].done(s.is_ok() ? results[i] : s);
    group.clear();
  }
}

}  // namespace nc::storage
