#include "engine/sched/scheduler.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <tuple>

#include "core/timer.h"
#include "engine/generate/sequence_output.h"

namespace nc::engine {

struct Scheduler::Seq {
  RequestId id = 0;
  Group* group = nullptr;       // set when it leaves incoming_ (engine thread)
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

// One fairness group: its waiting sequences (FIFO) and what the fair choices read.
struct Scheduler::Group {
  std::string key;
  uint64_t serial = 0;        // creation order: the last tie-break, so choices never depend on hashing
  std::deque<std::unique_ptr<Seq>> waiting;
  int running = 0;
  uint64_t last_admit = 0;    // admissions_ when it last got a slot (0: never)
  uint64_t last_prefill = 0;  // plan_steps_ when a prefill chunk of it was last planned (0: never)

  // Drops the cancelled (done) sequences at the front of the queue.
  void pop_done(std::unordered_map<RequestId, Seq*>& live) {
    while (!waiting.empty() && waiting.front()->done) {
      live.erase(waiting.front()->id);
      waiting.pop_front();
    }
  }
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
  if (request.adapter && request.adapter->base() != &ctx_.model())
    return invalid_argument("the request's LoRA adapter belongs to another model");
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
  std::deque<std::unique_ptr<Seq>> incoming;
  std::unordered_set<RequestId> cancelled;
  {
    std::lock_guard<std::mutex> lock(mu_);
    incoming.swap(incoming_);
    cancelled.swap(cancelled_);
  }
  for (auto& s : incoming) {
    auto& g = groups_[s->req.fairness_group];
    if (!g) {
      g = std::make_unique<Group>();
      g->key = s->req.fairness_group;
      g->serial = next_group_serial_++;
    }
    s->group = g.get();
    live_[s->id] = s.get();
    g->waiting.push_back(std::move(s));
    ++n_waiting_;
  }
  for (RequestId id : cancelled) {
    auto it = live_.find(id);
    if (it == live_.end() || it->second->done) continue;
    Seq& s = *it->second;
    finish(s, FinishReason::kCancelled);
    if (s.slot < 0) {
      // Waiting: it stays queued, done and emptied, until it reaches its group's front (no O(waiting) erase).
      --n_waiting_;
      s.tokens = {};
      s.req = Request{};
      s.out.reset();
    }
  }
}

Scheduler::Group* Scheduler::pick_group() {
  Group* best = nullptr;
  for (auto& [key, gp] : groups_) {
    Group* g = gp.get();
    g->pop_done(live_);
    if (g->waiting.empty()) continue;
    if (!best || std::tie(g->running, g->last_admit, g->serial) < std::tie(best->running, best->last_admit, best->serial))
      best = g;
  }
  return best;
}

bool Scheduler::step() {
  admit_incoming();
  KvCache& kv = ctx_.kv();
  // Drop finished sequences (cancelled ones included).
  auto drop_done = [&] {
    for (auto& s : running_) {
      if (!s->done) continue;
      if (s->slot >= 0) {
        kv.free_seq(s->slot);
        free_slots_.push_back(s->slot);
        s->slot = -1;
      }
      --s->group->running;
      live_.erase(s->id);
    }
    running_.erase(std::remove_if(running_.begin(), running_.end(), [](const auto& s) { return s->done; }), running_.end());
  };
  drop_done();
  // Forget idle groups (nothing waiting or running): O(groups).
  for (auto it = groups_.begin(); it != groups_.end();) {
    it->second->pop_done(live_);
    if (it->second->running == 0 && it->second->waiting.empty()) it = groups_.erase(it);
    else ++it;
  }

  // Admit waiting sequences while there are slots and room for their first chunk, each slot to the
  // group with the fewest running sequences (see the header), FIFO within the group.
  while (n_waiting_ > 0 && !free_slots_.empty()) {
    Group* g = pick_group();
    if (g == nullptr) break;
    Seq& s = *g->waiting.front();
    const int64_t pending = static_cast<int64_t>(s.tokens.size()) - s.n_computed;
    const int64_t first = std::min(pending, p_.prefill_chunk);
    const int64_t reserve = static_cast<int64_t>(running_.size());  // one block per running decode
    if (!running_.empty() && blocks_for(s, first) + reserve > kv.n_free_blocks()) break;
    s.slot = free_slots_.back();
    free_slots_.pop_back();
    running_.push_back(std::move(g->waiting.front()));
    g->waiting.pop_front();
    --n_waiting_;
    ++g->running;
    g->last_admit = ++admissions_;
  }
  if (running_.empty()) {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.running = 0;
    stats_.waiting = static_cast<int>(n_waiting_ + static_cast<int64_t>(incoming_.size()));
    stats_.kv_blocks_used = kv.n_used_blocks();
    return false;
  }

  // Plan: decode tokens first (one per sequence, in admission order), then whole prefill chunks that
  // fit the budget, round-robin over the groups: the group served least recently first, one chunk
  // per group per round, the oldest sequence of a group first.
  ++plan_steps_;
  int64_t budget = p_.token_budget;
  auto plan = [&](Seq& s, bool decode) {
    const int64_t pending = static_cast<int64_t>(s.tokens.size()) - s.n_computed;
    const int64_t k = decode ? 1 : std::min(pending, p_.prefill_chunk - s.n_computed % p_.prefill_chunk);
    if (budget <= 0 || k > budget) return;
    s.planned = k;
    budget -= k;
  };
  std::vector<std::pair<Group*, std::vector<Seq*>>> prefills;  // by group, admission order within
  for (auto& sp : running_) {
    Seq& s = *sp;
    s.planned = 0;
    const int64_t pending = static_cast<int64_t>(s.tokens.size()) - s.n_computed;
    if (pending == 1 && s.n_computed > 0) {
      plan(s, true);
      continue;
    }
    auto it = std::find_if(prefills.begin(), prefills.end(), [&](const auto& e) { return e.first == s.group; });
    if (it == prefills.end()) {
      prefills.emplace_back(s.group, std::vector<Seq*>{});
      it = std::prev(prefills.end());
    }
    it->second.push_back(&s);
  }
  std::sort(prefills.begin(), prefills.end(), [](const auto& a, const auto& b) {
    return std::tie(a.first->last_prefill, a.first->serial) < std::tie(b.first->last_prefill, b.first->serial);
  });
  for (size_t round = 0; budget > 0; ++round) {
    bool any = false;
    for (auto& [g, seqs] : prefills) {
      if (round >= seqs.size()) continue;
      any = true;
      plan(*seqs[round], false);
      if (seqs[round]->planned > 0) g->last_prefill = plan_steps_;
    }
    if (!any) break;
  }
  // KV: preempt until the plan fits, each time the newest running sequence of the group with the
  // most running sequences (one group: the newest).
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
    int most = 0;
    for (auto& s : running_) most = std::max(most, s->group->running);
    auto it = std::find_if(running_.rbegin(), running_.rend(), [&](const auto& s) { return s->group->running == most; });
    auto victim = std::move(*it);
    running_.erase(std::next(it).base());
    preempt(*victim);
    victim->planned = 0;
    Group* g = victim->group;
    --g->running;
    g->waiting.push_front(std::move(victim));
    ++n_waiting_;
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
      batch.add_output(s.tokens[pos], static_cast<int32_t>(pos), s.slot, output, s.req.adapter.get());
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
  stats_.waiting = static_cast<int>(n_waiting_ + static_cast<int64_t>(incoming_.size()));
  stats_.kv_blocks_used = kv.n_used_blocks();
  stats_.preemptions += preempted;
  stats_.steps += 1;
  stats_.prompt_tokens += prompt_tokens;
  stats_.generated_tokens += generated;
  return true;
}

}  // namespace nc::engine
