// EngineService (engine_service.h): one model's engine thread, scheduler and request submission.
#include "server/engine_service.h"
#include "core/timer.h"

#include <fmt/format.h>

#include <chrono>

#include "core/log.h"

namespace nc::server {

Result<std::unique_ptr<EngineService>> EngineService::start(const std::string& path, const std::string& id,
                                                            const EngineOptions& options) {
  std::unique_ptr<EngineService> s(new EngineService());
  s->id_ = id;
  s->options_ = options;
  s->created_ = unix_s();
  NC_ASSIGN_OR_RETURN(s->model_, engine::Model::load(path));
  NC_ASSIGN_OR_RETURN(s->vocab_, engine::Vocab::load(s->model_->gguf()));
  if (s->vocab_->n_tokens() != s->model_->hparams().n_vocab) {
    return invalid_argument(fmt::format("{}: the tokenizer has {} tokens but the model's output has {}", path,
                                        s->vocab_->n_tokens(), s->model_->hparams().n_vocab));
  }
  std::string tmpl;
  if (const auto* v = s->model_->gguf().find("tokenizer.chat_template"); v && v->type == engine::GgufType::kString)
    tmpl = std::string(v->str);
  s->chat_ = ChatFormatter::create(*s->vocab_, tmpl);
  if (s->chat_.kind() != "jinja") {
    NC_LOG_WARN("model '{}': chat uses the built-in {} format ({})", id, s->chat_.kind(), s->chat_.fallback_reason());
  }
  engine::ContextParams cp;
  cp.n_ctx = options.n_ctx;
  cp.n_ubatch = options.token_budget;
  cp.n_threads = options.n_threads;
  NC_ASSIGN_OR_RETURN(s->ctx_, engine::Context::create(*s->model_, cp));
  engine::SchedulerParams sp;
  sp.max_running = options.parallel;
  sp.token_budget = options.token_budget;
  sp.prefill_chunk = options.prefill_chunk > 0 ? options.prefill_chunk : options.token_budget;
  s->sched_ = std::make_unique<engine::Scheduler>(*s->ctx_, *s->vocab_, sp);
  s->thread_ = std::thread([p = s.get()] { p->loop(); });
  return s;
}

EngineService::~EngineService() {
  stop_ = true;
  {
    std::lock_guard<std::mutex> lock(mu_);
    wake_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Result<engine::RequestId> EngineService::submit(engine::Request request, engine::SchedCallback callback) {
  NC_ASSIGN_OR_RETURN(auto id, sched_->submit(std::move(request), std::move(callback)));
  {
    std::lock_guard<std::mutex> lock(mu_);
    wake_ = true;
  }
  cv_.notify_one();
  return id;
}

void EngineService::cancel(engine::RequestId id) {
  sched_->cancel(id);
  {
    std::lock_guard<std::mutex> lock(mu_);
    wake_ = true;
  }
  cv_.notify_one();
}

void EngineService::loop() {
  while (!stop_) {
    if (sched_->step()) continue;
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::milliseconds(100), [&] { return wake_; });
    wake_ = false;
  }
}

}  // namespace nc::server
