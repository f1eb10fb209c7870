// CompletionRun::stream_events: a completion streamed as server-sent events (OpenAI's chunk shapes).
#include <fmt/format.h>

#include "core/log.h"
#include "server/completion_run.h"
#include "server/sse_writer.h"

namespace nc::server {

using json = nlohmann::json;

// Headers, then one event per token with new text, a final chunk per choice, the usage chunk if asked,
// and [DONE]. A failed write means the client left: cancel, and bill what was generated for it.
awaitable<bool> CompletionRun::stream_events() {
  SseWriter sse(call.ex);
  Status failure;
  // Chat chunks carry a delta (role first, then content, then {} with the finish reason).
  auto chunk_json = [&](int index, const std::string& text, const json& lp, const json& finish, bool role = false) {
    json choice;
    if (chat) {
      json delta = json::object();
      if (role) delta = {{"role", "assistant"}, {"content", ""}, {"refusal", nullptr}};
      else if (finish.is_null()) delta = {{"content", text}};
      choice = {{"index", index}, {"delta", delta}, {"logprobs", lp}, {"finish_reason", finish}};
    } else {
      choice = {{"index", index}, {"text", text}, {"logprobs", lp}, {"finish_reason", finish}};
    }
    json c = {{"id", cmpl_id}, {"object", chat ? "chat.completion.chunk" : "text_completion"}, {"created", created},
              {"model", model_id}, {"choices", json::array({choice})}};
    if (opt.include_usage) c["usage"] = nullptr;
    return c;
  };
  bool alive = co_await sse.start(ticket.headers);
  int remaining = n_choices;
  int64_t completion_tokens = 0;
  if (chat) {
    for (int i = 0; i < n_choices && alive; ++i) alive = co_await sse.event(chunk_json(i, "", nullptr, nullptr, true));
  }
  while (alive && remaining > 0) {
    auto events = co_await queue->next();
    for (auto& [ci, e] : events) {
      if (!alive) break;
      if (e.kind == engine::SchedEvent::Kind::kToken) {
        choices[ci].n_generated += 1;
        json lp = nullptr;
        if (opt.logprobs >= 0 && chat) {
          lp = {{"content", json::array({chat_logprob(e.token)})}, {"refusal", nullptr}};
        } else if (opt.logprobs >= 0) {
          Choice tmp;
          tmp.offset = choices[ci].offset;
          add_logprobs(tmp, e.token);
          choices[ci].offset = tmp.offset;
          lp = {{"tokens", tmp.tokens}, {"token_logprobs", tmp.token_logprobs}, {"top_logprobs", tmp.top_logprobs},
                {"text_offset", tmp.text_offset}};
        }
        if (!e.token.text.empty() || opt.logprobs >= 0) alive = co_await sse.event(chunk_json(ci, e.token.text, lp, nullptr));
      } else {
        --remaining;
        completion_tokens += e.n_generated;
        choices[ci].n_generated = e.n_generated;
        choices[ci].done = true;
        if (!e.error.is_ok()) {
          failure = e.error;
          ApiError ae = api_error_of(e.error);
          ae.type = "server_error";
          alive = co_await sse.event(error_body(ae));
          continue;
        }
        alive = co_await sse.event(chunk_json(ci, "", nullptr, finish_reason(e)));
      }
    }
    if (call.caller && ctx.gw && alive) {  // what the client has: the open record follows (at most every second)
      int64_t delivered = 0;
      for (const auto& c : choices) delivered += c.n_generated;
      ctx.gw->progress(ticket, prompt_tokens, delivered);
    }
  }
  gateway::Gateway* gw = call.caller ? ctx.gw : nullptr;
  if (!alive) {
    cancel_all();
    if (gw) {
      // The client left: bill what was generated for it (tokens already queued for it included).
      for (auto& [ci, e] : queue->drain()) {
        if (choices[ci].done) continue;
        if (e.kind == engine::SchedEvent::Kind::kToken) choices[ci].n_generated += 1;
        else choices[ci].n_generated = e.n_generated;
      }
      int64_t generated = 0;
      for (const auto& c : choices) generated += c.n_generated;
      const Status billed = co_await settle_request(*gw, ctx.io, ticket, prompt_tokens, generated, "client_disconnected");
      if (!billed.is_ok()) NC_LOG_ERROR("ledger: request {}: {}", call.ex.request_id, billed.to_string());
    }
    co_return false;
  }
  if (gw) {
    // Durable before the last bytes: the usage chunk, [DONE] and the end of the chunked body.
    const Status billed = co_await settle_request(*gw, ctx.io, ticket, prompt_tokens, completion_tokens,
                                                  failure.is_ok() ? "completed" : "error");
    if (!billed.is_ok()) {
      NC_LOG_ERROR("ledger: request {}: {}", call.ex.request_id, billed.to_string());
      co_await sse.event(error_body(
          api_error(503, "The usage ledger is unavailable; this response is incomplete.", "", "", "server_error")));
      co_return false;
    }
  }
  if (opt.include_usage) {
    json u = {{"id", cmpl_id}, {"object", chat ? "chat.completion.chunk" : "text_completion"}, {"created", created},
              {"model", model_id}, {"choices", json::array()}, {"usage", usage_json(completion_tokens)}};
    alive = co_await sse.event(u);
  }
  if (alive) alive = co_await sse.done();
  co_return alive && sse.keep_alive();
}

}  // namespace nc::server
