#include "engine/sched/scheduler.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/timer.h"

namespace nc::engine {

struct Scheduler::Seq {
  RequestId id = 0;
  Request req;
  SchedCallback cb;
  std::vector<TokenId> tokens;  // prompt, then generated tokens
  int32_t n_prompt = 0;
  int64_t n_computed = 0;       // leading tokens whose K/V are in the cache
  int32_t slot = -1;            // KV sequence id while running
  std::unique_ptr<Sampler> sampler;
  Utf8Stream utf8;
  StopMatcher stops;
  bool done = false;
  int64_t planned = 0;          // tokens in this step's batch
  double t_submit = 0, t_last = 0;  // seconds (now_s)
  int64_t logits_row = -1;      // this step's output row, if any

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

void Scheduler::Histogram::observe(double seconds) {
  for (size_t i = 0; i < std::size(kBounds); ++i)
    if (seconds <= kBounds[i]) ++counts[i];
  ++count;
  sum += seconds;
}

Result<RequestId> Scheduler::submit(Request request, SchedCallback callback) {
  if (request.prompt.empty()) return invalid_argument("the prompt has no tokens");
  for (TokenId t : request.prompt) {
    if (t < 0 || t >= n_vocab_) return invalid_argument(fmt::format("prompt token {} is not in the vocabulary", t));
  }
  if (static_cast<int64_t>(request.prompt.size()) >= p_.max_seq_len) {
    return out_of_range(fmt::format("the prompt has {} tokens; a sequence holds at most {} (one must be left to generate)",
                                    request.prompt.size(), p_.max_seq_len));
  }
  NC_RETURN_IF_ERROR(validate(request.gen.sampling, n_vocab_));
  auto s = std::make_unique<Seq>();
  s->tokens = request.prompt;
  s->n_prompt = static_cast<int32_t>(request.prompt.size());
  s->sampler = std::make_unique<Sampler>(request.gen.sampling, n_vocab_);
  for (TokenId t : request.prompt) s->sampler->accept(t);
  s->stops = StopMatcher(request.gen.stop);
  s->req = std::move(request);
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

void Scheduler::finish(Seq& s, FinishReason reason, const Status& error) {
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
  if (s.cb) s.cb(e);
}

void Scheduler::preempt(Seq& s) {
  ctx_.kv().free_seq(s.slot);
  free_slots_.push_back(s.slot);
  s.slot = -1;
  s.n_computed = 0;  // recomputed from its tokens (prompt + generated so far) when readmitted
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
  int64_t rows = 0;
  for (auto& sp : running_) {
    Seq& s = *sp;
    s.logits_row = -1;
    for (int64_t i = 0; i < s.planned; ++i) {
      const int64_t pos = s.n_computed + i;
      const bool last = pos + 1 == static_cast<int64_t>(s.tokens.size());
      batch.add(s.tokens[pos], static_cast<int32_t>(pos), s.slot, last);
      if (last) s.logits_row = rows++;
    }
  }
  int64_t prompt_tokens = 0, generated = 0;
  if (batch.size() > 0) {
    std::vector<float> logits;
    Status st = ctx_.decode(batch, logits);
    if (!st.is_ok()) {
      for (auto& s : running_)
        if (s->planned > 0) finish(*s, FinishReason::kLength, st);
      drop_done();
      return true;
    }
    for (auto& sp : running_) {
      Seq& s = *sp;
      if (s.planned == 0) continue;
      if (s.n_computed < s.n_prompt) prompt_tokens += std::min<int64_t>(s.planned, s.n_prompt - s.n_computed);
      s.n_computed += s.planned;
      if (s.logits_row < 0) continue;
      SchedEvent e;
      e.id = s.id;
      GeneratedToken& g = e.token;
      g.sample = s.sampler->sample(logits.data() + s.logits_row * n_vocab_);
      g.id = g.sample.token;
      s.sampler->accept(g.id);
      s.tokens.push_back(g.id);
      ++generated;
      const GenerateParams& gp = s.req.gen;
      const bool eog = vocab_.is_eog(g.id) && !gp.ignore_eos;
      bool stopped = false;
      if (!eog) g.text = s.stops.push(s.utf8.push(vocab_.token_to_piece(g.id, false)), &stopped);
      const bool at_max = gp.max_tokens >= 0 && s.n_generated() >= gp.max_tokens;
      const int64_t pos = static_cast<int64_t>(s.tokens.size()) - 1;  // where the new token would go
      const bool full = pos >= p_.max_seq_len;
      const bool done = eog || stopped || at_max || full;
      FinishReason reason = eog || stopped ? FinishReason::kStop : FinishReason::kLength;
      if (done && !stopped) {
        bool s2 = false;
        const std::string rest = s.stops.push(s.utf8.flush(), &s2);
        g.text += rest + (s2 ? std::string() : s.stops.flush());
        if (s2) reason = FinishReason::kStop, stopped = true;
      }
      e.n_prompt = s.n_prompt;
      e.n_generated = s.n_generated();
      {
        const double t = now_s();
        std::lock_guard<std::mutex> lock(mu_);
        if (s.n_generated() == 1) stats_.time_to_first_token.observe(t - s.t_submit);
        else stats_.inter_token.observe(t - s.t_last);
        if (done) {
          stats_.e2e.observe(t - s.t_submit);
          ++stats_.requests_finished;
        }
        s.t_last = t;
      }
      if (s.cb) s.cb(e);
      if (done) {
        SchedEvent d;
        d.kind = SchedEvent::Kind::kDone;
        d.id = s.id;
        d.finish = reason;
        d.context_full = full && !at_max && !eog && !stopped;
        d.stop_matched = stopped ? s.stops.matched() : std::string();
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
