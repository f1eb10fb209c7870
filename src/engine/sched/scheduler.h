// Scheduler: continuous batching over one Context (vLLM V1 style). Requests join and leave at step
// boundaries; every step builds one batch under a token budget that mixes the decode tokens of
// running sequences with chunks of prompts being prefilled; when KV blocks run out a newest running
// sequence (see Fairness) is preempted (its cache freed) and recomputed later instead of failing; a cancelled
// request leaves at the next step. Embedding requests (RequestKind::kEmbed) only prefill: their
// tokens' final-norm states are pooled across chunks and the request ends with one kDone event.
//
// Fairness: every request carries an opaque `Request::fairness_group` (the engine does not know what
// it stands for; the server passes the organization). Requests queue FIFO per group, and three choices
// are fair by group rather than by arrival, so one group's large batch cannot starve another's small
// request (max-min fair sharing of the running slots):
//  - Admission: a free slot goes to the waiting group with the fewest running sequences; ties go to
//    the group admitted least recently (round-robin), then to the older group. A group that has
//    nothing running gets the next free slot whatever the other groups have queued. Within a group,
//    order stays FIFO, and a preempted sequence goes back to the front of its group's queue. If the
//    chosen sequence's first chunk does not fit the free KV blocks, admission stops for this step
//    (no overtaking, so large prompts are not starved). O(groups) per admission.
//  - Prefill budget: after the decode tokens (one per running sequence, always first), prefill chunks
//    are planned group by group, round-robin: the group whose chunk was planned least recently picks
//    first, then one chunk per group per round (within a group, oldest sequence first), so a long
//    prefill of one group cannot take every step's budget while another group's prefill waits.
//  - Preemption: the victim is the newest running sequence of the group with the most running
//    sequences (with one group: the newest running sequence).
//
// Determinism: a prompt is cut into chunks at fixed multiples of `prefill_chunk` (a chunk waits for a
// step with room rather than being cut differently), and kernels never mix sequences, so a request's
// tokens do not depend on what else runs with it (preemption excepted: a recomputed sequence re-reads
// its own tokens in prefill chunks, which can change later tokens slightly, as in vLLM).
//
// Ownership: borrows the Context and Vocab (both must outlive it); owns the requests' state.
// Thread-safety: `submit`, `cancel` and `stats` may be called from any thread; `step` only from the
// one engine thread that owns the Context. Callbacks run on the engine thread, inside `step`.
#pragma once
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/histogram.h"
#include "core/status.h"
#include "engine/generate/generate.h"
#include "engine/model/context.h"
#include "engine/model/lora.h"
#include "engine/tokenizer/vocab.h"

namespace nc::engine {

struct SchedulerParams {
  int max_running = 16;          // sequences generating at once
  int64_t token_budget = 512;    // tokens per step; must not exceed the Context's n_ubatch
  int64_t prefill_chunk = 512;   // prompt chunk size; <= token_budget
  int64_t max_seq_len = 0;       // 0: the Context's n_ctx
};

using RequestId = uint64_t;

enum class RequestKind { kGenerate, kEmbed };

struct Request {
  std::vector<TokenId> prompt;
  GenerateParams gen;  // kGenerate: sampling, max_tokens, stop, ignore_eos (seq and keep_logits are ignored)
  RequestKind kind = RequestKind::kGenerate;
  // kEmbed: how the prompt's final-norm states are pooled (kMean, kCls or kLast); the result is
  // L2-normalized. An embedding request only prefills; it ends with one kDone event.
  Pooling pooling = Pooling::kMean;
  // Opaque fairness key: requests with equal keys form one group; groups share the scheduler fairly
  // (see the policy at the top of this file), requests within a group are served FIFO. Empty: the
  // default group, a group like any other (all requests without a key share it).
  std::string fairness_group;
  // The LoRA adapter (lora.h) this request runs with; null: the base model. Held by the request until
  // it ends, so an adapter unloaded elsewhere stays valid for the requests already using it.
  std::shared_ptr<const LoraAdapter> adapter;
};

struct SchedEvent {
  enum class Kind { kToken, kDone };
  Kind kind = Kind::kToken;
  RequestId id = 0;
  GeneratedToken token;                      // kToken: the token, its released text and logprobs
  FinishReason finish = FinishReason::kLength;  // kDone
  bool context_full = false;
  std::string stop_matched;
  Status error;                              // kDone: non-OK if the request failed
  int32_t n_prompt = 0, n_generated = 0;
  std::vector<float> embedding;              // kDone of a successful kEmbed request: [n_embd]
};

using SchedCallback = std::function<void(const SchedEvent&)>;

class Scheduler {
 public:
  Scheduler(Context& ctx, const Vocab& vocab, const SchedulerParams& params);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Validates and queues a request. InvalidArgument for bad tokens, sampling parameters or pooling,
  // OutOfRange if the prompt cannot fit one sequence (a generating one needs room for one more token).
  Result<RequestId> submit(Request request, SchedCallback callback);
  // The request stops at the next step and gets a kDone event with FinishReason::kCancelled.
  void cancel(RequestId id);

  // One engine step. Returns true if it did any work (false: idle). A failed forward pass ends the
  // requests of that step with the error.
  bool step();

  // Bounds of the latency histograms in seconds: vLLM's buckets.
  static constexpr double kLatencyBounds[] = {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5,
                                              0.75,  1.0,   2.5,  5.0,  7.5,  10.0, 20.0, 40.0, 80.0};
  struct Stats {
    int running = 0, waiting = 0;
    int64_t kv_blocks_used = 0, kv_blocks_total = 0;
    int64_t preemptions = 0, steps = 0;
    int64_t prompt_tokens = 0, generated_tokens = 0;
    int64_t requests_finished = 0;
    // Measured from submit, on the engine thread.
    Histogram time_to_first_token{kLatencyBounds}, inter_token{kLatencyBounds}, e2e{kLatencyBounds};
  };
  Stats stats() const;

 private:
  struct Seq;
  struct Group;
  void admit_incoming();
  Group* pick_group();
  void release_if_idle(Group* g);
  void finish(Seq& s, FinishReason reason, const Status& error = Status::ok(), std::vector<float> embedding = {});
  void preempt(Seq& s);
  void finish_embedding(Seq& s);
  int64_t blocks_for(const Seq& s, int64_t extra) const;

  Context& ctx_;
  const Vocab& vocab_;
  SchedulerParams p_;
  int32_t n_vocab_;

  mutable std::mutex mu_;  // guards incoming_, cancelled_, next_id_ and stats_
  std::deque<std::unique_ptr<Seq>> incoming_;
  std::unordered_set<RequestId> cancelled_;
  RequestId next_id_ = 1;
  Stats stats_;

  // Engine thread only.
  // Groups with waiting or running sequences (an idle group is erased); each holds its FIFO of
  // waiting sequences (preempted ones go back to the front). Cancelled waiting sequences stay queued,
  // done and emptied, until they reach the front.
  std::unordered_map<std::string, std::unique_ptr<Group>> groups_;
  uint64_t next_group_serial_ = 0, admissions_ = 0, plan_steps_ = 0;
  int64_t n_waiting_ = 0;                     // live waiting sequences, all groups
  std::unordered_map<RequestId, Seq*> live_;  // waiting and running, for cancel
  std::vector<std::unique_ptr<Seq>> running_;  // in admission order
  std::vector<int32_t> free_slots_;           // KV sequence ids
};

}  // namespace nc::engine
