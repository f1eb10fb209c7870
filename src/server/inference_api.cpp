// The inference handlers (inference_api.h): completions, chat completions, embeddings; whole answers.
#include "server/inference_api.h"

#include <fmt/format.h>

#include "core/ids.h"
#include "core/timer.h"
#include "gateway/request_policy.h"
#include "server/completion_run.h"
#include "server/model_api.h"

namespace nc::server {

using json = nlohmann::json;

Status check_request_work(const EdgeLimits& limits, int64_t sequences, int64_t tokens, const std::string& field) {
  if (sequences > limits.max_request_sequences) {
    return invalid_argument(fmt::format("This request needs {} sequences (prompts or inputs × n); the limit is {} per "
                                        "request. Split it into several requests.",
                                        sequences, limits.max_request_sequences))
        .with_field(field);
  }
  if (tokens > limits.max_request_tokens) {
    return invalid_argument(fmt::format("This request may compute up to {} tokens (prompt tokens × n plus max_tokens for "
                                        "every choice); the limit is {} per request. Lower n or max_tokens, or split it.",
                                        tokens, limits.max_request_tokens))
        .with_field(field);
  }
  return Status::ok();
}

namespace {
// The number of sequences a prompt/input array asks for, before anything is tokenized.
int64_t declared_items(const json& body, const char* field) {
  auto it = body.find(field);
  if (it == body.end() || !it->is_array() || it->empty() || (*it)[0].is_number_integer()) return 1;
  return static_cast<int64_t>(it->size());
}
int64_t declared_n(const json& body) {
  auto it = body.find("n");
  return it != body.end() && it->is_number_integer() ? std::max<int64_t>(it->get<int64_t>(), 1) : 1;
}
// Who shares the engine fairly: the caller's organization (everyone else shares one group).
std::string fairness_group(const Call& call) { return call.caller ? call.caller->principal.org_id : ""; }

awaitable<bool> completions(ApiContext& ctx, Call& call, bool chat) {
  const std::string scope = chat ? "chat.completions" : "completions";
  auto parsed_body = parse_body_object(call.ex);
  if (!parsed_body.is_ok()) co_return co_await call.ex.reply(error_reply(parsed_body.status()));
  const json body = std::move(*parsed_body);
  std::optional<ApiError> model_error;
  ServedModel served;
  EngineService* found = ctx.resolve_model(call, body, scope, /*model_optional=*/false, &model_error, &served);
  if (found && served.is_adapter && !co_await ctx.acquire_adapter(call, served, &model_error)) found = nullptr;
  if (!found) co_return co_await call.ex.reply(error_reply(*model_error));
  EngineService& m = *found;
  // A prompt array far over the work bound is refused before anything is tokenized.
  if (Status st = check_request_work(ctx.limits, (chat ? 1 : declared_items(body, "prompt")) * declared_n(body), 0,
                                     chat ? "n" : "prompt");
      !st.is_ok()) {
    co_return co_await call.ex.reply(error_reply(st));
  }
  CompletionOptions opt;
  std::vector<std::vector<engine::TokenId>> prompts;
  Status err;
  // Rendering the chat template and tokenizing run on the worker pool, not on the I/O thread.
  co_await ctx.prepare(call.ex.req.body().size(), [&] {
    auto o = parse_completion_options(body, m.vocab(), chat ? -1 : 16, chat);
    if (!o.is_ok()) return err = o.status(), false;
    opt = std::move(*o);
    if (chat) {
      auto text = render_chat_request(m.chat(), body);
      if (!text.is_ok()) return err = text.status(), false;
      prompts.push_back(m.vocab().tokenize(*text, true, true));
    } else {
      auto p = parse_prompts(body, m.vocab());
      if (!p.is_ok()) return err = p.status(), false;
      prompts = std::move(*p);
    }
    return true;
  });
  if (!err.is_ok()) co_return co_await call.ex.reply(error_reply(err));
  if (call.caller) {
    // The max_tokens cap of the key, project or org: a default when the request sets none, else a ceiling.
    if (auto d = gateway::apply_max_tokens_cap(*ctx.gw, *call.caller, max_tokens_given(body), &opt.gen.max_tokens))
      co_return co_await call.ex.reply(error_reply(*d));
  }
  std::vector<int64_t> lengths;
  for (const auto& p : prompts) {
    lengths.push_back(static_cast<int64_t>(p.size()));
    const int64_t want = static_cast<int64_t>(p.size()) + std::max(opt.gen.max_tokens, 1);
    if (want > m.n_ctx()) {
      co_return co_await call.ex.reply(error_reply(api_error(
          400,
          fmt::format("This model's maximum context length is {} tokens. However, you requested {} tokens "
                      "({} in your prompt; {} for the completion). Please reduce your prompt; or completion length.",
                      m.n_ctx(), want, p.size(), opt.gen.max_tokens),
          "prompt", "context_length_exceeded")));
    }
  }
  int64_t prompt_tokens = 0;
  for (const int64_t l : lengths) prompt_tokens += l;
  const int64_t output_worst = gateway::worst_case_output_tokens(lengths, opt.n, opt.gen.max_tokens, m.n_ctx());
  const int n_choices = static_cast<int>(prompts.size()) * opt.n;
  if (Status st = check_request_work(ctx.limits, n_choices, prompt_tokens * opt.n + output_worst,
                                     opt.gen.max_tokens >= 0 ? "max_tokens" : "n");
      !st.is_ok()) {
    co_return co_await call.ex.reply(error_reply(st));
  }
  CompletionRun run(ctx, call, m, chat, std::move(opt));
  run.model_id = served.id;
  run.n_choices = n_choices;
  run.prompt_tokens = prompt_tokens;
  if (call.caller) {
    gateway::AdmitRequest ar;
    ar.request_id = call.ex.request_id;
    ar.endpoint = scope;
    ar.model = served.id;
    ar.price_model = served.base;
    ar.prompt_tokens = prompt_tokens;
    ar.max_output_tokens = output_worst;
    std::optional<Reply> refused = co_await admit_request(*ctx.gw, ctx.io, call.caller, ar, run.opt.stream, &run.ticket);
    if (refused) co_return co_await call.ex.reply(*refused);
  }
  run.queue = std::make_shared<EventQueue>(call.ex.stream.get_executor());
  if (call.caller && !run.opt.stream) {
    run.early = std::make_shared<EarlySettle>();
    run.early->gw = ctx.gw;
    run.early->ticket = std::move(run.ticket);
    run.early->prompt_tokens = prompt_tokens;
    run.early->remaining = n_choices;
    run.early->billed = std::make_shared<Handoff<Status>>(ctx.io);
  }
  const std::string group = fairness_group(call);
  for (size_t pi = 0; pi < prompts.size(); ++pi) {
    for (int j = 0; j < run.opt.n; ++j) {
      engine::Request r;
      r.prompt = prompts[pi];
      r.gen = run.opt.gen;
      r.fairness_group = group;
      r.adapter = served.adapter;
      if (r.gen.sampling.seed && j > 0) r.gen.sampling.seed = *r.gen.sampling.seed + j;
      const int choice = static_cast<int>(pi) * run.opt.n + j;
      auto id = m.submit(std::move(r), [queue = run.queue, choice, early = run.early](const engine::SchedEvent& e) {
        queue->push(choice, e);
        if (early && e.kind == engine::SchedEvent::Kind::kDone) early->on_done(e);
      });
      if (!id.is_ok()) {
        // The choices already submitted end cancelled; `remaining` never reaches 0, so the record is
        // written here, once.
        run.cancel_all();
        if (call.caller) co_await settle_request(*ctx.gw, ctx.io, run.early ? run.early->ticket : run.ticket, 0, 0, "error");
        co_return co_await call.ex.reply(error_reply(id.status(), "prompt"));
      }
      run.ids.push_back(*id);
    }
  }
  run.cmpl_id = random_id(chat ? "chatcmpl-" : "cmpl-", 24);
  run.created = unix_s();
  run.choices.resize(n_choices);
  if (run.opt.stream) co_return co_await run.stream_events();
  co_return co_await run.collect_whole();
}
}  // namespace

json CompletionRun::chat_logprob(const engine::GeneratedToken& g) const {
  auto entry = [&](engine::TokenId id, float lp) {
    const std::string piece = m.vocab().token_to_piece(id, true);
    json bytes = json::array();
    for (unsigned char ch : piece) bytes.push_back(ch);
    return json{{"token", piece}, {"logprob", lp}, {"bytes", bytes}};
  };
  json e = entry(g.id, g.sample.logprob);
  json top = json::array();
  for (const auto& t : g.sample.top) top.push_back(entry(t.token, t.logprob));
  e["top_logprobs"] = top;
  return e;
}

void CompletionRun::add_logprobs(Choice& c, const engine::GeneratedToken& g) const {
  const std::string piece = m.vocab().token_to_piece(g.id, true);
  c.tokens.push_back(piece);
  c.token_logprobs.push_back(g.sample.logprob);
  json top = json::object();
  for (const auto& t : g.sample.top) top[m.vocab().token_to_piece(t.token, true)] = t.logprob;
  c.top_logprobs.push_back(top);
  c.text_offset.push_back(c.offset);
  c.offset += piece.size();
}

// The answer sent whole, after every choice ended (and, with a gateway, after its record committed).
awaitable<bool> CompletionRun::collect_whole() {
  Status failure;
  int remaining = n_choices;
  while (remaining > 0) {
    auto events = co_await queue->next();
    for (auto& [ci, e] : events) {
      Choice& c = choices[ci];
      if (e.kind == engine::SchedEvent::Kind::kToken) {
        c.text += e.token.text;
        if (opt.logprobs >= 0) {
          if (chat) c.chat_logprobs.push_back(chat_logprob(e.token));
          else add_logprobs(c, e.token);
        }
      } else {
        c.done = true;
        c.n_generated = e.n_generated;
        c.finish = finish_reason(e);
        if (!e.error.is_ok()) failure = e.error;
        --remaining;
      }
    }
  }
  int64_t completion_tokens = 0;
  for (const auto& c : choices) completion_tokens += c.n_generated;
  if (!failure.is_ok()) {
    if (early) co_await early->billed->get();
    co_return co_await call.ex.reply(error_reply(failure));
  }
  json cs = json::array();
  for (int i = 0; i < n_choices; ++i) {
    json lp = nullptr;
    if (opt.logprobs >= 0 && chat) {
      lp = {{"content", choices[i].chat_logprobs}, {"refusal", nullptr}};
    } else if (opt.logprobs >= 0) {
      lp = {{"tokens", choices[i].tokens}, {"token_logprobs", choices[i].token_logprobs},
            {"top_logprobs", choices[i].top_logprobs}, {"text_offset", choices[i].text_offset}};
    }
    if (chat) {
      cs.push_back({{"index", i},
                    {"message", {{"role", "assistant"}, {"content", choices[i].text}, {"refusal", nullptr}}},
                    {"logprobs", lp},
                    {"finish_reason", choices[i].finish}});
    } else {
      cs.push_back({{"index", i}, {"text", choices[i].text}, {"logprobs", lp}, {"finish_reason", choices[i].finish}});
    }
  }
  json res = {{"id", cmpl_id}, {"object", chat ? "chat.completion" : "text_completion"}, {"created", created},
              {"model", model_id}, {"choices", cs}, {"usage", usage_json(completion_tokens)}};
  Reply ok_reply = json_reply(200, res);
  if (early) {
    // The record commits before the answer leaves (it was submitted when the last choice ended).
    const Status billed = co_await early->billed->get();
    if (!billed.is_ok()) co_return co_await call.ex.reply(ledger_failed());
    ok_reply.headers = early->ticket.headers;
  }
  co_return co_await call.ex.reply(ok_reply);
}

awaitable<bool> handle_completions(ApiContext& ctx, Call& call) { return completions(ctx, call, false); }
awaitable<bool> handle_chat_completions(ApiContext& ctx, Call& call) { return completions(ctx, call, true); }

// POST /v1/embeddings: one engine request per input, pooled as the model's GGUF says (mean when it does
// not say), L2-normalized; "float" arrays or little-endian float32 in base64.
awaitable<bool> handle_embeddings(ApiContext& ctx, Call& call) {
  auto parsed_body = parse_body_object(call.ex);
  if (!parsed_body.is_ok()) co_return co_await call.ex.reply(error_reply(parsed_body.status()));
  const json body = std::move(*parsed_body);
  std::optional<ApiError> model_error;
  ServedModel served;
  EngineService* found = ctx.resolve_model(call, body, "embeddings", /*model_optional=*/false, &model_error, &served);
  if (found && served.is_adapter && !co_await ctx.acquire_adapter(call, served, &model_error)) found = nullptr;
  if (!found) co_return co_await call.ex.reply(error_reply(*model_error));
  EngineService& m = *found;
  const int64_t n_embd = m.model().hparams().n_embd;
  Result<EmbeddingOptions> parsed = invalid_argument("");
  // Tokenizing up to 8 MB of input runs on the worker pool, not on the I/O thread.
  co_await ctx.prepare(call.ex.req.body().size(), [&] {
    parsed = parse_embedding_request(body, m.vocab(), n_embd);
    return true;
  });
  if (!parsed.is_ok()) co_return co_await call.ex.reply(error_reply(parsed.status()));
  EmbeddingOptions opt = std::move(*parsed);
  engine::Pooling pooling = m.model().hparams().pooling;
  if (pooling == engine::Pooling::kUnspecified || pooling == engine::Pooling::kNone) pooling = engine::Pooling::kMean;
  if (pooling == engine::Pooling::kRank) {
    co_return co_await call.ex.reply(
        error_reply(api_error(400, "this model is a reranker (pooling 'rank'); it does not make embeddings", "model")));
  }
  int64_t prompt_tokens = 0;
  for (size_t i = 0; i < opt.inputs.size(); ++i) {
    const int64_t n = static_cast<int64_t>(opt.inputs[i].size());
    prompt_tokens += n;
    if (n > m.n_ctx()) {
      co_return co_await call.ex.reply(error_reply(api_error(
          400,
          fmt::format("This model's maximum context length is {} tokens, however you requested {} tokens in input {}. "
                      "Please reduce your input.",
                      m.n_ctx(), n, i),
          "input", "context_length_exceeded")));
    }
  }
  if (Status st = check_request_work(ctx.limits, static_cast<int64_t>(opt.inputs.size()), prompt_tokens, "input");
      !st.is_ok()) {
    co_return co_await call.ex.reply(error_reply(st));
  }
  gateway::Ticket ticket;
  if (call.caller) {
    gateway::AdmitRequest ar;
    ar.request_id = call.ex.request_id;
    ar.endpoint = "embeddings";
    ar.model = served.id;
    ar.price_model = served.base;
    ar.prompt_tokens = prompt_tokens;
    std::optional<Reply> refused = co_await admit_request(*ctx.gw, ctx.io, call.caller, ar, false, &ticket);
    if (refused) co_return co_await call.ex.reply(*refused);
  }
  auto queue = std::make_shared<EventQueue>(call.ex.stream.get_executor());
  std::vector<engine::RequestId> ids;
  const std::string group = fairness_group(call);
  for (size_t i = 0; i < opt.inputs.size(); ++i) {
    engine::Request r;
    r.kind = engine::RequestKind::kEmbed;
    r.pooling = pooling;
    r.prompt = std::move(opt.inputs[i]);
    r.fairness_group = group;
    r.adapter = served.adapter;
    const int index = static_cast<int>(i);
    auto id = m.submit(std::move(r), [queue, index](const engine::SchedEvent& e) { queue->push(index, e); });
    if (!id.is_ok()) {
      for (auto x : ids) m.cancel(x);
      if (call.caller) co_await settle_request(*ctx.gw, ctx.io, ticket, 0, 0, "error");
      co_return co_await call.ex.reply(error_reply(id.status(), "input"));
    }
    ids.push_back(*id);
  }
  std::vector<std::vector<float>> vectors(ids.size());
  Status failure;
  size_t remaining = ids.size();
  while (remaining > 0) {
    auto events = co_await queue->next();
    for (auto& [index, e] : events) {
      if (e.kind != engine::SchedEvent::Kind::kDone) continue;
      --remaining;
      if (!e.error.is_ok()) failure = e.error;
      vectors[index] = std::move(e.embedding);
    }
  }
  if (call.caller) {
    const Status billed = co_await settle_request(*ctx.gw, ctx.io, ticket, failure.is_ok() ? prompt_tokens : 0, 0,
                                                  failure.is_ok() ? "completed" : "error");
    if (!billed.is_ok() && failure.is_ok()) co_return co_await call.ex.reply(ledger_failed());
  }
  if (!failure.is_ok()) co_return co_await call.ex.reply(error_reply(failure));
  json data = json::array();
  for (size_t i = 0; i < vectors.size(); ++i) {
    json emb = opt.base64 ? json(base64_floats(vectors[i])) : json(vectors[i]);
    data.push_back({{"object", "embedding"}, {"index", i}, {"embedding", std::move(emb)}});
  }
  json res = {{"object", "list"}, {"data", std::move(data)}, {"model", served.id},
              {"usage", {{"prompt_tokens", prompt_tokens}, {"total_tokens", prompt_tokens}}}};
  Reply ok = json_reply(200, res);
  ok.headers = ticket.headers;
  co_return co_await call.ex.reply(ok);
}

}  // namespace nc::server
