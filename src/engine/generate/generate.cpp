#include "engine/generate/generate.h"

#include <fmt/format.h>

#include "core/timer.h"
#include "engine/generate/sequence_output.h"

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
  SequenceOutput out(params, vocab, n_vocab, prompt);
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
    if (params.keep_logits) res.step_logits.insert(res.step_logits.end(), logits.end() - n_vocab, logits.end());
    SequenceOutput::Step st = out.next(logits.data() + logits.size() - n_vocab, pos, n_ctx);
    const GeneratedToken& g = st.token;
    res.tokens.push_back(g.id);
    res.text += g.text;
    if (st.done) {
      res.finish = st.finish;
      res.context_full = st.context_full;
      res.stop_matched = st.stop_matched;
    }
    if (on_token && !on_token(g)) {
      res.finish = FinishReason::kCancelled;
      break;
    }
    if (st.done) break;
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
