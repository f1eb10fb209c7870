#include "engine/generate/sequence_output.h"

namespace nc::engine {

SequenceOutput::SequenceOutput(const GenerateParams& params, const Vocab& vocab, int32_t n_vocab,
                               std::span<const TokenId> prompt)
    : params_(params), vocab_(vocab), sampler_(params.sampling, n_vocab), stops_(params.stop) {
  for (TokenId t : prompt) sampler_.accept(t);
}

SequenceOutput::Step SequenceOutput::next(const float* logits, int64_t pos, int64_t max_len) {
  Step s;
  GeneratedToken& g = s.token;
  g.sample = sampler_.sample(logits);
  g.id = g.sample.token;
  sampler_.accept(g.id);
  ++n_generated_;
  const bool eog = vocab_.is_eog(g.id) && !params_.ignore_eos;
  bool stopped = false;
  if (!eog) g.text = stops_.push(utf8_.push(vocab_.token_to_piece(g.id, /*special=*/false)), &stopped);
  const bool at_max = params_.max_tokens >= 0 && n_generated_ >= params_.max_tokens;
  const bool full = pos >= max_len;
  s.done = eog || stopped || at_max || full;
  if (!s.done) return s;
  if (!stopped) {
    // End of output: release what was held back (it may still complete a stop string).
    bool s2 = false;
    const std::string rest = stops_.push(utf8_.flush(), &s2);
    g.text += rest + (s2 ? std::string() : stops_.flush());
    stopped = s2;
  }
  s.finish = eog || stopped ? FinishReason::kStop : FinishReason::kLength;
  s.context_full = full && !at_max && !eog && !stopped;
  if (stopped) s.stop_matched = stops_.matched();
  return s;
}

}  // namespace nc::engine
