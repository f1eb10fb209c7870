#include "engine/generate/generate.h"

#include <fmt/format.h>

#include "core/timer.h"
#include "engine/generate/text_stream.h"

namespace nc::engine {

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kCancelled: return "cancelled";
  }
  return "?";
}

Result<GenerateResult> generate(Context& ctx, const Vocab& vocab, std::span<const TokenId> prompt,
                                const GenerateParams& params,
                                const std::function<bool(const GeneratedToken&)>& on_token) {
  const int32_t n_vocab = static_cast<int32_t>(ctx.model().hparams().n_vocab);
  const int64_t n_ctx = ctx.params().n_ctx;
  if (prompt.empty()) return invalid_argument("the prompt has no tokens");
  if (static_cast<int64_t>(prompt.size()) >= n_ctx) {
    return out_of_range(fmt::format("the prompt has {} tokens; the context holds {} (one must be left to generate)",
                                    prompt.size(), n_ctx));
  }
  for (TokenId t : prompt) {
    if (t < 0 || t >= n_vocab) return invalid_argument(fmt::format("prompt token {} is not in the vocabulary", t));
  }
  NC_RETURN_IF_ERROR(validate(params.sampling, n_vocab));

  GenerateResult res;
  res.n_prompt = static_cast<int32_t>(prompt.size());
  Sampler sampler(params.sampling, n_vocab);
  for (TokenId t : prompt) sampler.accept(t);
  Utf8Stream utf8;
  StopMatcher stops(params.stop);
  const int32_t seq = params.seq;
  struct FreeSeq {
    Context& c;
    int32_t s;
    ~FreeSeq() { c.kv().free_seq(s); }
  } free_seq{ctx, seq};

  std::vector<float> logits;
  Batch batch;
  const double t0 = now_s();
  for (size_t i = 0; i < prompt.size(); ++i) batch.add(prompt[i], static_cast<int32_t>(i), seq, i + 1 == prompt.size());
  NC_RETURN_IF_ERROR(ctx.decode(batch, logits));
  const double t1 = now_s();
  res.prompt_seconds = t1 - t0;

  if (params.max_tokens == 0) {  // prompt evaluation only
    res.finish = FinishReason::kLength;
    return res;
  }
  // `pos` is where the sampled token would be evaluated; once it reaches n_ctx the context is full and
  // the token just sampled is the last one.
  int64_t pos = static_cast<int64_t>(prompt.size());
  while (true) {
    GeneratedToken g;
    if (params.keep_logits) res.step_logits.insert(res.step_logits.end(), logits.end() - n_vocab, logits.end());
    g.sample = sampler.sample(logits.data() + logits.size() - n_vocab);
    g.id = g.sample.token;
    sampler.accept(g.id);
    res.tokens.push_back(g.id);
    const bool eog = vocab.is_eog(g.id) && !params.ignore_eos;
    bool stopped = false;
    if (!eog) {
      std::string text = utf8.push(vocab.token_to_piece(g.id, /*special=*/false));
      g.text = stops.push(text, &stopped);
    }
    const bool at_max = params.max_tokens >= 0 && static_cast<int32_t>(res.tokens.size()) >= params.max_tokens;
    if (eog || stopped) {
      res.finish = FinishReason::kStop;
      if (stopped) res.stop_matched = stops.matched();
    } else if (at_max || pos >= n_ctx) {
      res.finish = FinishReason::kLength;
      res.context_full = !at_max;
    }
    const bool done = eog || stopped || at_max || pos >= n_ctx;
    if (done && !stopped) {
      // End of output: release what was held back.
      std::string rest = utf8.flush();
      bool s2 = false;
      rest = stops.push(rest, &s2);
      g.text += rest + (s2 ? std::string() : stops.flush());
      if (s2) {
        res.finish = FinishReason::kStop;
        res.stop_matched = stops.matched();
      }
    }
    res.text += g.text;
    if (on_token && !on_token(g)) {
      res.finish = FinishReason::kCancelled;
      break;
    }
    if (done) break;
    batch.clear();
    batch.add(g.id, static_cast<int32_t>(pos), seq, true);
    logits.clear();  // decode appends
    NC_RETURN_IF_ERROR(ctx.decode(batch, logits));
    ++pos;
  }
  res.generate_seconds = now_s() - t1;
  return res;
}

}  // namespace nc::engine
