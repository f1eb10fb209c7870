#include "engine/sched/scheduler.h"

#include <fmt/format.h>

#include <algorithm>

#include <cmath>

#include "core/timer.h"
#include "engine/generate/sequence_output.h"

namespace nc::engine {

struct Scheduler::Seq {
  RequestId id = 0;
  Request req;
  SchedCallback cb;
  std::vector<TokenId> tokens;  // prompt, then generated tokens
  int32_t n_prompt = 0;
  int64_t n_computed = 0;       // leading tokens whose K/V are in the cache
  int32_t slot = -1;            // KV sequence id while running
  std::unique_ptr<SequenceOutput> out;  // kGenerate
  std::vector<double> embd_acc;         // kEmbed: pooled state so far ([n_embd], double for long prompts)
  bool done = false;
  int64_t planned = 0;          // tokens in this step's batch
  double t_submit = 0, t_last = 0;  // seconds (now_s)
  int64_t logits_row = -1;      // this step's logits row, if any
  int64_t embd_row = -1, n_embd_rows = 0;  // this step's embedding rows

  bool embed() const { return req.kind == RequestKind::kEmbed; }
  // What the token at `pos` returns when evaluated.
  uint8_t output_at(int64_t pos) const {
    const bool last = pos + 1 == static_cast<int64_t>(tokens.size());
    if (!embed()) return last ? Batch::kLogits : Batch::kNoOutput;
    switch (req.pooling) {
      case Pooling::kCls: return pos == 0 ? Batch::kEmbedding : Batch::kNoOutput;
      case Pooling::kLast: return last ? Batch::kEmbedding : Batch::kNoOutput;
      case Pooling::kMean:
      case Pooling::kUnspecified:
      case Pooling::kNone:
      case Pooling::kRank: return Batch::kEmbedding;
    }
    return Batch::kNoOutput;
  }

  int32_t n_generated() const { return static_cast<int32_t>(tokens.size()) - n_prompt; }
};

Scheduler::Scheduler(Context& ctx, const Vocab& vocab, const SchedulerParams& params)
    : ctx_(ctx), vocab_(vocab), p_(params), n_vocab_(static_cast<int32_t>(ctx.model().hparams().n_vocab)) {
  p_.token_budget = std::max<int64_t>(1, std::min(p_.token_budget, ctx.params().n_ubatch));
  p_.prefill_chunk = std::max<int64_t>(1, std::min(p_.prefill_chunk, p_.token_budget));
  if (p_.max_seq_len <= 0 || p_.max_seq_len > ctx.params().n_ctx) p_.max_seq_len = ctx.params().n_ctx;
  p_.max_running = std::max(1, p_.max_running);
  for (int32_t i = p_.max_running - 1; i >= 0; --i) free_slots_.push_back(i);
  stats_.kv_blocks_total = ctx.kv().n_blocks();
}

Scheduler::~Scheduler() = default;

Result<RequestId> Scheduler::submit(Request request, SchedCallback callback) {
  if (request.prompt.empty()) return invalid_argument("the prompt has no tokens");
  for (TokenId t : request.prompt) {
    if (t < 0 || t >= n_vocab_) return invalid_argument(fmt::format("prompt token {} is not in the vocabulary", t));
  }
  const bool embed = request.kind == RequestKind::kEmbed;
  const int64_t n_prompt = static_cast<int64_t>(request.prompt.size());
  if (embed && n_prompt > p_.max_seq_len) {
    return out_of_range(fmt::format("the input has {} tokens; a sequence holds at most {}", n_prompt, p_.max_seq_len));
  }
  if (!embed && n_prompt >= p_.max_seq_len) {
    return out_of_range(fmt::format("the prompt has {} tokens; a sequence holds at most {} (one must be left to generate)",
                                    n_prompt, p_.max_seq_len));
  }
  if (embed && request.pooling != Pooling::kMean && request.pooling != Pooling::kCls &&
      request.pooling != Pooling::kLast) {
    return invalid_argument(fmt::format("pooling '{}' cannot make an embedding (mean, cls or last can)",
                                        pooling_name(request.pooling)));
  }
  if (!embed) NC_RETURN_IF_ERROR(validate(request.gen.sampling, n_vocab_));
  auto s = std::make_unique<Seq>();
  s->tokens = request.prompt;
  s->n_prompt = static_cast<int32_t>(n_prompt);
  s->req = std::move(request);
  if (!embed) s->out = std::make_unique<SequenceOutput>(s->req.gen, vocab_, n_vocab_, s->req.prompt);
  s->cb = std::move(callback);
  s->t_submit = now_s();
  std::lock_guard<std::mutex> lock(mu_);
  s->id = next_id_++;
  const RequestId id = s->id;
  incoming_.push_back(std::move(s));
  return id;
}

void Scheduler::cancel(RequestId id) {
  std::lock_guard<std::mutex> lock(mu_);
  cancelled_.insert(id);
}

Scheduler::Stats Scheduler::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

int64_t Scheduler::blocks_for(const Seq& s, int64_t extra) const {
  const KvCache& kv = ctx_.kv();
  const int64_t bs = kv.block_size();
  const int64_t have = s.slot >= 0 && kv.has_seq(s.slot) ? static_cast<int64_t>(kv.block_table(s.slot).size()) : 0;
  return std::max<int64_t>(0, (s.n_computed + extra + bs - 1) / bs - have);
}

void Scheduler::finish(Seq& s, FinishReason reason, const Status& error, std::vector<float> embedding) {
  if (s.done) return;
  s.done = true;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.e2e.observe(now_s() - s.t_submit);
    ++stats_.requests_finished;
  }
  SchedEvent e;
  e.kind = SchedEvent::Kind::kDone;
  e.id = s.id;
  e.finish = reason;
  e.error = error;
  e.n_prompt = s.n_prompt;
  e.n_generated = s.n_generated();
  e.embedding = std::move(embedding);
  if (s.cb) s.cb(e);
}

void Scheduler::finish_embedding(Seq& s) {
  // Mean of the rows (cls and last pool a single row), then L2-normalized as llama.cpp's
  // embd_normalize = 2 (what llama-server's /v1/embeddings returns).
  const double n = s.req.pooling == Pooling::kMean ? static_cast<double>(s.n_prompt) : 1.0;
  double norm = 0;
  for (double& v : s.embd_acc) {
    v /= n;
    norm += v * v;
  }
  norm = std::sqrt(norm);
  std::vector<float> embedding(s.embd_acc.size());
  for (size_t k = 0; k < s.embd_acc.size(); ++k) embedding[k] = static_cast<float>(norm > 0 ? s.embd_acc[k] / norm : 0.0);
  finish(s, FinishReason::kStop, Status::ok(), std::move(embedding));
}

void Scheduler::preempt(Seq& s) {
  ctx_.kv().free_seq(s.slot);
  free_slots_.push_back(s.slot);
  s.slot = -1;
  s.n_computed = 0;  // recomputed from its tokens (prompt + generated so far) when readmitted
  s.embd_acc.clear();
}

void Scheduler::admit_incoming() {
  std::unordered_set<RequestId> cancelled;
  {
    std::lock_guard<std::mutex> lock(mu_);
    while (!incoming_.empty()) {
      waiting_.push_back(std::move(incoming_.front()));
      incoming_.pop_front();
    }
    cancelled.swap(cancelled_);
  }
  if (cancelled.empty()) return;
  for (auto& s : waiting_)
    if (cancelled.count(s->id)) finish(*s, FinishReason::kCancelled);
  for (auto& s : running_)
    if (cancelled.count(s->id)) finish(*s, FinishReason::kCancelled);
}

bool Scheduler::step() {
  admit_incoming();
  KvCache& kv = ctx_.kv();
  // Drop finished sequences (cancelled ones included).
  auto drop_done = [&] {
    for (auto& s : running_) {
      if (s->done && s->slot >= 0) {
        kv.free_seq(s->slot);
        free_slots_.push_back(s->slot);
        s->slot = -1;
      }
    }
    running_.erase(std::remove_if(running_.begin(), running_.end(), [](const auto& s) { return s->done; }), running_.end());
    waiting_.erase(std::remove_if(waiting_.begin(), waiting_.end(), [](const auto& s) { return s->done; }), waiting_.end());
  };
  drop_done();

  // Admit waiting sequences while there are slots and room for their first chunk.
  while (!waiting_.empty() && !free_slots_.empty()) {
    Seq& s = *waiting_.front();
    const int64_t pending = static_cast<int64_t>(s.tokens.size()) - s.n_computed;
    const int64_t first = std::min(pending, p_.prefill_chunk);
    const int64_t reserve = static_cast<int64_t>(running_.size());  // one block per running decode
    if (!running_.empty() && blocks_for(s, first) + reserve > kv.n_free_blocks()) break;
    s.slot = free_slots_.back();
    free_slots_.pop_back();
    running_.push_back(std::move(waiting_.front()));
    waiting_.pop_front();
  }
  if (running_.empty()) {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.running = 0;
    stats_.waiting = static_cast<int>(waiting_.size());
    stats_.kv_blocks_used = kv.n_used_blocks();
    return false;
  }

  // Plan: decode tokens first (one per sequence), then whole prefill chunks that fit the budget.
  int64_t budget = p_.token_budget;
  for (auto& s : running_) s->planned = 0;
  for (int pass = 0; pass < 2; ++pass) {
    for (auto& sp : running_) {
      Seq& s = *sp;
      const int64_t pending = static_cast<int64_t>(s.tokens.size()) - s.n_computed;
      const bool decode = pending == 1 && s.n_computed > 0;
      if (decode != (pass == 0) || budget <= 0) continue;
      const int64_t k = decode ? 1 : std::min(pending, p_.prefill_chunk - s.n_computed % p_.prefill_chunk);
      if (k > budget) continue;
      s.planned = k;
      budget -= k;
    }
  }
  // KV: preempt the newest sequences until the plan fits.
  int64_t preempted = 0;
  for (;;) {
    int64_t need = 0;
    for (auto& s : running_) need += blocks_for(*s, s->planned);
    if (need <= kv.n_free_blocks()) break;
    if (running_.size() == 1) {
      // Even alone it does not fit: the cache is too small for this sequence.
      finish(*running_.front(), FinishReason::kLength,
             resource_exhausted(fmt::format("the KV cache ({} blocks) cannot hold this sequence", kv.n_blocks())));
      drop_done();
      return true;
    }
    auto victim = std::move(running_.back());
    running_.pop_back();
    preempt(*victim);
    victim->planned = 0;
    waiting_.push_front(std::move(victim));
    ++preempted;
  }

  Batch batch;
  int64_t rows = 0, embd_rows = 0;
  for (auto& sp : running_) {
    Seq& s = *sp;
    s.logits_row = -1;
    s.embd_row = embd_rows;
    s.n_embd_rows = 0;
    for (int64_t i = 0; i < s.planned; ++i) {
      const int64_t pos = s.n_computed + i;
      const uint8_t output = s.output_at(pos);
      batch.add_output(s.tokens[pos], static_cast<int32_t>(pos), s.slot, output);
      if (output == Batch::kLogits) s.logits_row = rows++;
      if (output == Batch::kEmbedding) ++s.n_embd_rows, ++embd_rows;
    }
  }
  int64_t prompt_tokens = 0, generated = 0;
  if (batch.size() > 0) {
    std::vector<float> logits, embd;
    Status st = ctx_.decode(batch, logits, &embd);
    if (!st.is_ok()) {
      for (auto& s : running_)
        if (s->planned > 0) finish(*s, FinishReason::kLength, st);
      drop_done();
      return true;
    }
    const int64_t E = ctx_.model().hparams().n_embd;
    for (auto& sp : running_) {
      Seq& s = *sp;
      if (s.planned == 0) continue;
      if (s.n_computed < s.n_prompt) prompt_tokens += std::min<int64_t>(s.planned, s.n_prompt - s.n_computed);
      s.n_computed += s.planned;
      if (s.embed()) {
        if (s.embd_acc.empty()) s.embd_acc.assign(E, 0.0);
        for (int64_t r = 0; r < s.n_embd_rows; ++r) {
          const float* row = embd.data() + (s.embd_row + r) * E;
          for (int64_t k = 0; k < E; ++k) s.embd_acc[k] += row[k];
        }
        if (s.n_computed == s.n_prompt) finish_embedding(s);
        continue;
      }
      if (s.logits_row < 0) continue;
      // `pos`: where the new token would go.
      SequenceOutput::Step out = s.out->next(logits.data() + s.logits_row * n_vocab_,
                                             static_cast<int64_t>(s.tokens.size()), p_.max_seq_len);
      s.tokens.push_back(out.token.id);
      ++generated;
      SchedEvent e;
      e.id = s.id;
      e.token = std::move(out.token);
      e.n_prompt = s.n_prompt;
      e.n_generated = s.n_generated();
      {
        const double t = now_s();
        std::lock_guard<std::mutex> lock(mu_);
        if (s.n_generated() == 1) stats_.time_to_first_token.observe(t - s.t_submit);
        else stats_.inter_token.observe(t - s.t_last);
        if (out.done) {
          stats_.e2e.observe(t - s.t_submit);
          ++stats_.requests_finished;
        }
        s.t_last = t;
      }
      if (s.cb) s.cb(e);
      if (out.done) {
        SchedEvent d;
        d.kind = SchedEvent::Kind::kDone;
        d.id = s.id;
        d.finish = out.finish;
        d.context_full = out.context_full;
        d.stop_matched = out.stop_matched;
        d.n_prompt = s.n_prompt;
        d.n_generated = s.n_generated();
        s.done = true;
        if (s.cb) s.cb(d);
      }
    }
  }
  drop_done();
  std::lock_guard<std::mutex> lock(mu_);
  stats_.running = static_cast<int>(running_.size());
  stats_.waiting = static_cast<int>(waiting_.size() + incoming_.size());
  stats_.kv_blocks_used = kv.n_used_blocks();
  stats_.preemptions += preempted;
  stats_.steps += 1;
  stats_.prompt_tokens += prompt_tokens;
  stats_.generated_tokens += generated;
  return true;
}

}  // namespace nc::engine
