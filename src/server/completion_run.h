// CompletionRun: one admitted /v1/completions or /v1/chat/completions request whose choices run on the
// engine, and the two ways its answer leaves: whole (collect_whole) or as server-sent events
// (stream_events, completion_stream.cpp). Internal to the inference routes (server/inference_api.cpp).
// Ownership: owns the request's queue, ids and ticket. Thread-safety: the request's coroutine only (the
// engine thread touches only the EventQueue and the EarlySettle).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "server/api_context.h"
#include "server/inference_admission.h"
#include "server/openai.h"

namespace nc::server {

struct CompletionRun {
  CompletionRun(ApiContext& c, Call& k, EngineService& model, bool is_chat, CompletionOptions o)
      : ctx(c), call(k), m(model), chat(is_chat), opt(std::move(o)) {}
  ApiContext& ctx;
  Call& call;
  EngineService& m;
  std::string model_id;  // the id the request named (a LoRA adapter's, or m's)
  bool chat = false;
  CompletionOptions opt;
  int n_choices = 0;
  int64_t prompt_tokens = 0;
  std::shared_ptr<EventQueue> queue;
  std::vector<engine::RequestId> ids;
  gateway::Ticket ticket;              // streaming (or no early settle)
  std::shared_ptr<EarlySettle> early;  // a response sent whole, gateway on
  std::string cmpl_id;
  int64_t created = 0;

  struct Choice {
    std::string text;
    nlohmann::json chat_logprobs = nlohmann::json::array();
    int32_t n_generated = 0;
    bool done = false;
    std::string finish;
    nlohmann::json tokens = nlohmann::json::array(), token_logprobs = nlohmann::json::array(),
                   top_logprobs = nlohmann::json::array(), text_offset = nlohmann::json::array();
    size_t offset = 0;
  };
  std::vector<Choice> choices;

  void cancel_all() {
    for (auto x : ids) m.cancel(x);
  }
  nlohmann::json chat_logprob(const engine::GeneratedToken& g) const;
  void add_logprobs(Choice& c, const engine::GeneratedToken& g) const;
  static std::string finish_reason(const engine::SchedEvent& e) {
    return e.finish == engine::FinishReason::kStop ? "stop" : "length";
  }
  nlohmann::json usage_json(int64_t completion_tokens) const {
    return {{"prompt_tokens", prompt_tokens}, {"completion_tokens", completion_tokens},
            {"total_tokens", prompt_tokens + completion_tokens}};
  }

  awaitable<bool> collect_whole();
  awaitable<bool> stream_events();
};

}  // namespace nc::server
