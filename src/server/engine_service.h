// EngineService: one served model — Model, Vocab, Context and Scheduler — driven by its own engine
// thread that runs scheduler steps while there is work and sleeps otherwise.
//
// Ownership: owns everything it loads; the id is the name clients use in "model".
// Thread-safety: submit / cancel / stats from any thread; callbacks run on the engine thread.
#pragma once
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "core/status.h"
#include "engine/model/context.h"
#include "engine/model/model.h"
#include "engine/sched/scheduler.h"
#include "engine/tokenizer/vocab.h"
#include "server/chat_prompt.h"

namespace nc::server {

struct EngineOptions {
  int64_t n_ctx = 4096;      // KV cells shared by all sequences
  int parallel = 4;          // sequences generating at once
  int n_threads = 0;         // 0: all cores
  int64_t token_budget = 512;  // tokens per engine step (decode tokens + prefill chunks)
  int64_t prefill_chunk = 0;   // prompt chunk size; 0: token_budget
};

class EngineService {
 public:
  static Result<std::unique_ptr<EngineService>> start(const std::string& path, const std::string& id,
                                                      const EngineOptions& options);
  ~EngineService();
  EngineService(const EngineService&) = delete;
  EngineService& operator=(const EngineService&) = delete;

  const std::string& id() const { return id_; }
  const engine::Vocab& vocab() const { return *vocab_; }
  const engine::Model& model() const { return *model_; }
  const ChatFormatter& chat() const { return chat_; }
  int64_t n_ctx() const { return options_.n_ctx; }
  int64_t created() const { return created_; }

  Result<engine::RequestId> submit(engine::Request request, engine::SchedCallback callback);
  void cancel(engine::RequestId id);
  engine::Scheduler::Stats stats() const { return sched_->stats(); }

 private:
  EngineService() = default;
  void loop();

  std::string id_;
  EngineOptions options_;
  int64_t created_ = 0;
  std::unique_ptr<engine::Model> model_;
  std::unique_ptr<engine::Vocab> vocab_;
  ChatFormatter chat_;
  std::unique_ptr<engine::Context> ctx_;
  std::unique_ptr<engine::Scheduler> sched_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool wake_ = false;
  std::atomic<bool> stop_{false};
};

}  // namespace nc::server
