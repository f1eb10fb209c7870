// Continuous batching: results equal the single-sequence generate() loop (so batching changes nothing),
// preemption under KV pressure completes every request and returns every block, cancellation frees
// the sequence at the next step, bad requests are refused at submit.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "engine/generate/generate.h"
#include "engine/model/synth.h"
#include "engine/sched/scheduler.h"
#include "shared_model.h"
#include "test_util.h"

namespace nc::engine {
namespace {

class SchedulerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    SynthOptions o;
    o.vocab_path = test::vocab_path("llama-spm");
    o.shape = "micro";
    o.type = "q8_0";
    o.tied = 0;
    auto m = Model::load(test::shared_model(o));
    ASSERT_TRUE(m.is_ok());
    model_ = std::move(*m).release();
    auto v = Vocab::load(model_->gguf());
    ASSERT_TRUE(v.is_ok());
    vocab_ = std::move(*v).release();
  }
  static void TearDownTestSuite() {
    delete vocab_;
    delete model_;
  }
  std::unique_ptr<Context> context(int64_t n_ctx, int64_t n_ubatch = 512) {
    ContextParams cp;
    cp.n_ctx = n_ctx;
    cp.n_ubatch = n_ubatch;
    cp.n_threads = 2;
    auto c = Context::create(*model_, cp);
    EXPECT_TRUE(c.is_ok());
    return std::move(*c);
  }
  Request request(const std::string& text, int max_tokens, uint64_t seed, float temp = 0.9f) {
    Request r;
    r.prompt = vocab_->tokenize(text, true, true);
    r.gen.max_tokens = max_tokens;
    r.gen.ignore_eos = true;
    r.gen.sampling.temperature = temp;
    r.gen.sampling.seed = seed;
    return r;
  }
  std::vector<TokenId> solo(const Request& r) {
    auto ctx = context(256);
    GenerateParams gp = r.gen;
    auto res = generate(*ctx, *vocab_, r.prompt, gp);
    EXPECT_TRUE(res.is_ok());
    return res->tokens;
  }
  struct Collected {
    std::vector<TokenId> tokens;
    std::string text;
    bool done = false;
    FinishReason finish = FinishReason::kLength;
    Status error;
  };
  static Model* model_;
  static Vocab* vocab_;
};
Model* SchedulerTest::model_ = nullptr;
Vocab* SchedulerTest::vocab_ = nullptr;

TEST_F(SchedulerTest, ConcurrentRequestsEqualTheirSoloRuns) {
  const std::vector<std::string> prompts = {"Hello", "Once upon a time", "The quick brown fox jumps over the lazy dog",
                                            "1 2 3 4", "Bonjour le monde", "<s> special", "a", "Why is the sky blue?"};
  std::vector<Request> reqs;
  for (size_t i = 0; i < prompts.size(); ++i) reqs.push_back(request(prompts[i], 10 + 3 * static_cast<int>(i), 100 + i));
  auto ctx = context(512);
  SchedulerParams sp;
  sp.max_running = 4;
  sp.token_budget = 64;
  sp.prefill_chunk = 16;
  Scheduler sched(*ctx, *vocab_, sp);
  std::map<RequestId, Collected> got;
  std::map<RequestId, size_t> which;
  for (size_t i = 0; i < reqs.size(); ++i) {
    auto id = sched.submit(reqs[i], [&got](const SchedEvent& e) {
      Collected& c = got[e.id];
      if (e.kind == SchedEvent::Kind::kToken) {
        c.tokens.push_back(e.token.id);
        c.text += e.token.text;
      } else {
        c.done = true;
        c.finish = e.finish;
        c.error = e.error;
      }
    });
    ASSERT_TRUE(id.is_ok());
    which[*id] = i;
  }
  int steps = 0;
  while (sched.step()) ASSERT_LT(++steps, 10000);
  ASSERT_EQ(got.size(), reqs.size());
  for (auto& [id, c] : got) {
    const Request& r = reqs[which[id]];
    EXPECT_TRUE(c.done);
    EXPECT_TRUE(c.error.is_ok()) << c.error.to_string();
    EXPECT_EQ(c.finish, FinishReason::kLength);
    EXPECT_EQ(static_cast<int>(c.tokens.size()), r.gen.max_tokens);
    EXPECT_EQ(c.tokens, solo(r)) << "request " << which[id];
  }
  EXPECT_EQ(ctx->kv().n_used_blocks(), 0);
  const auto st = sched.stats();
  EXPECT_EQ(st.running, 0);
  EXPECT_EQ(st.waiting, 0);
  int total = 0;
  for (const auto& r : reqs) total += r.gen.max_tokens;
  EXPECT_EQ(st.generated_tokens, total);
  EXPECT_LT(st.steps, total / 2) << "sequences were not batched together";
}

// The reference embedding: every token's final-norm state from one Context::decode, pooled in double
// and L2-normalized — written out here, independent of the scheduler's chunked accumulation.
// `chunk`: decode in chunks of this many tokens (the scheduler's chunking, for prompts whose chunks
// reach kTiledMinTokens and so take the other numerics path).
std::vector<float> reference_embedding(Context& ctx, const std::vector<TokenId>& prompt, Pooling pooling,
                                       size_t chunk = SIZE_MAX) {
  std::vector<float> logits, embd;
  for (size_t begin = 0; begin < prompt.size(); begin += chunk) {
    Batch b;
    for (size_t i = begin; i < std::min(prompt.size(), begin + chunk); ++i)
      b.add_output(prompt[i], static_cast<int32_t>(i), 0, Batch::kEmbedding);
    EXPECT_TRUE(ctx.decode(b, logits, &embd).is_ok());
  }
  EXPECT_TRUE(logits.empty());
  ctx.kv().free_seq(0);
  const size_t E = embd.size() / prompt.size();
  std::vector<double> acc(E, 0.0);
  const size_t first = pooling == Pooling::kLast ? prompt.size() - 1 : 0;
  const size_t last = pooling == Pooling::kCls ? 1 : prompt.size();
  for (size_t t = first; t < last; ++t)
    for (size_t k = 0; k < E; ++k) acc[k] += embd[t * E + k];
  double norm = 0;
  for (auto& v : acc) norm += (v / (last - first)) * (v / (last - first));
  norm = std::sqrt(norm);
  std::vector<float> out(E);
  for (size_t k = 0; k < E; ++k) out[k] = static_cast<float>(acc[k] / (last - first) / norm);
  return out;
}

TEST_F(SchedulerTest, EmbeddingsPoolChunkedPromptsAndIgnoreTheirNeighbours) {
  // Short prompts (< 64 tokens per chunk, one numerics path): the embedding computed in chunks of 16,
  // next to generating sequences, equals one whole-prompt decode.
  std::string long_text;
  for (int i = 0; i < 4; ++i) long_text += "The quick brown fox jumps over the lazy dog. ";
  auto ctx = context(512);
  SchedulerParams sp;
  sp.max_running = 4;
  sp.token_budget = 48;
  sp.prefill_chunk = 16;
  Scheduler sched(*ctx, *vocab_, sp);
  struct Got {
    std::vector<float> embedding;
    int n_tokens = 0, n_prompt = 0;
    bool done = false;
    Status error;
  };
  std::map<RequestId, Got> got;
  auto cb = [&got](const SchedEvent& e) {
    Got& g = got[e.id];
    if (e.kind == SchedEvent::Kind::kToken) {
      ++g.n_tokens;
      return;
    }
    g.done = true;
    g.embedding = e.embedding;
    g.n_prompt = e.n_prompt;
    g.error = e.error;
  };
  std::vector<std::pair<RequestId, Request>> embeds;
  for (Pooling p : {Pooling::kMean, Pooling::kCls, Pooling::kLast}) {
    for (const std::string& text : {std::string("Hello world"), long_text}) {
      Request r;
      r.kind = RequestKind::kEmbed;
      r.pooling = p;
      r.prompt = vocab_->tokenize(text, true, true);
      auto id = sched.submit(r, cb);
      ASSERT_TRUE(id.is_ok());
      embeds.emplace_back(*id, r);
    }
  }
  ASSERT_GT(embeds[1].second.prompt.size(), 40u);  // three chunks
  ASSERT_LT(embeds[1].second.prompt.size(), static_cast<size_t>(kTiledMinTokens));
  auto gen_id = sched.submit(request("Once upon a time", 20, 5), cb);
  ASSERT_TRUE(gen_id.is_ok());
  int steps = 0;
  while (sched.step()) ASSERT_LT(++steps, 10000);
  EXPECT_EQ(got[*gen_id].n_tokens, 20);
  for (auto& [id, r] : embeds) {
    const Got& g = got[id];
    ASSERT_TRUE(g.done);
    ASSERT_TRUE(g.error.is_ok()) << g.error.to_string();
    EXPECT_EQ(g.n_tokens, 0);
    EXPECT_EQ(g.n_prompt, static_cast<int>(r.prompt.size()));
    auto ref_ctx = context(512);
    const auto ref = reference_embedding(*ref_ctx, r.prompt, r.pooling);
    ASSERT_EQ(g.embedding.size(), ref.size());
    double norm = 0, max_diff = 0;
    for (size_t k = 0; k < ref.size(); ++k) {
      norm += static_cast<double>(g.embedding[k]) * g.embedding[k];
      max_diff = std::max(max_diff, std::fabs(static_cast<double>(g.embedding[k]) - ref[k]));
    }
    EXPECT_NEAR(norm, 1.0, 1e-5);
    // Each token's state is computed with the same kernels either way; only the pooling sum's
    // order differs (double): far below float precision.
    EXPECT_LT(max_diff, 1e-6) << pooling_name(r.pooling) << " " << r.prompt.size() << " tokens";
  }
  EXPECT_EQ(ctx->kv().n_used_blocks(), 0);
  Request bad;
  bad.kind = RequestKind::kEmbed;
  bad.pooling = Pooling::kRank;
  bad.prompt = {1, 2};
  EXPECT_EQ(sched.submit(bad, {}).status().code(), StatusCode::kInvalidArgument);
  bad.pooling = Pooling::kMean;
  bad.prompt.assign(512, 1);  // an embedding may fill the whole sequence
  EXPECT_TRUE(sched.submit(bad, {}).is_ok());
  bad.prompt.assign(513, 1);
  EXPECT_EQ(sched.submit(bad, {}).status().code(), StatusCode::kOutOfRange);
}

// Embedding chunks of 64+ tokens next to decoding sequences (the reordered-ubatch path of
// Context::decode), and embeddings whose sequences are preempted and recomputed.
TEST_F(SchedulerTest, EmbeddingsWithLargeChunksAndPreemption) {
  std::string text;
  for (int i = 0; i < 9; ++i) text += "The quick brown fox jumps over the lazy dog. ";
  const auto long_prompt = vocab_->tokenize(text, true, true);
  ASSERT_GT(long_prompt.size(), 80u);
  double worst = 0;
  auto check = [&](const std::vector<float>& got, const std::vector<TokenId>& prompt, size_t chunk) {
    auto ref_ctx = context(512, 512);
    const auto ref = reference_embedding(*ref_ctx, prompt, Pooling::kMean, chunk);
    ASSERT_EQ(got.size(), ref.size());
    for (size_t k = 0; k < ref.size(); ++k) worst = std::max(worst, std::fabs(static_cast<double>(got[k]) - ref[k]));
  };
  {  // 64-token chunks next to a decoding sequence.
    auto ctx = context(512, 96);
    SchedulerParams sp;
    sp.max_running = 4;
    sp.token_budget = 96;
    sp.prefill_chunk = 64;
    Scheduler sched(*ctx, *vocab_, sp);
    std::vector<float> got;
    int n_tokens = 0;
    ASSERT_TRUE(sched.submit(request("Hello", 30, 1), [&](const SchedEvent& e) { n_tokens += e.kind == SchedEvent::Kind::kToken; }).is_ok());
    ASSERT_TRUE(sched.step());  // the generating sequence is decoding before the embedding arrives
    Request r;
    r.kind = RequestKind::kEmbed;
    r.prompt = long_prompt;
    ASSERT_TRUE(sched.submit(r, [&](const SchedEvent& e) { if (e.kind == SchedEvent::Kind::kDone) got = e.embedding; }).is_ok());
    int steps = 0;
    while (sched.step()) ASSERT_LT(++steps, 10000);
    EXPECT_EQ(n_tokens, 30);
    check(got, long_prompt, 64);
  }
  {  // KV pressure: 4 blocks of 16 cells. The generating sequence (admitted first) grows to 3 blocks
     // while the newer embedding needs 3 for its prompt: the embedding is preempted and recomputed.
    auto ctx = context(64, 64);
    SchedulerParams sp;
    sp.max_running = 2;
    sp.token_budget = 16;
    sp.prefill_chunk = 8;
    Scheduler sched(*ctx, *vocab_, sp);
    ASSERT_TRUE(sched.submit(request("Tell me a long story about the quick brown fox and the lazy dog", 40, 3, 0.0f), {}).is_ok());
    Request r;
    r.kind = RequestKind::kEmbed;
    r.prompt = vocab_->tokenize("An embedding of a sentence that is long enough to need three blocks of the cache, "
                                "and then some more words to be sure of it, with a few more here.", true, true);
    ASSERT_GT(r.prompt.size(), 32u);
    ASSERT_LE(r.prompt.size(), 48u);
    std::vector<float> got;
    ASSERT_TRUE(sched.submit(r, [&](const SchedEvent& e) {
      if (e.kind == SchedEvent::Kind::kDone) got = e.embedding;
    }).is_ok());
    int steps = 0;
    while (sched.step()) ASSERT_LT(++steps, 10000);
    EXPECT_GT(sched.stats().preemptions, 0);
    check(got, r.prompt, 8);
    EXPECT_EQ(ctx->kv().n_used_blocks(), 0);
  }
  EXPECT_LT(worst, 1e-6);
}

TEST_F(SchedulerTest, PreemptionUnderKvPressureCompletesEveryRequest) {
  // 96 cells = 6 blocks of 16; four sequences of up to ~45 tokens cannot all fit at once.
  auto ctx = context(96, 96);
  SchedulerParams sp;
  sp.max_running = 4;
  sp.token_budget = 96;
  sp.prefill_chunk = 32;
  Scheduler sched(*ctx, *vocab_, sp);
  std::vector<Request> reqs;
  for (int i = 0; i < 4; ++i) reqs.push_back(request("Tell me a story number " + std::to_string(i), 36, 7 + i, 0.0f));
  std::map<RequestId, Collected> got;
  std::map<RequestId, int> which;
  for (int i = 0; i < 4; ++i) {
    auto id = sched.submit(reqs[i], [&got](const SchedEvent& e) {
      Collected& c = got[e.id];
      if (e.kind == SchedEvent::Kind::kToken) c.tokens.push_back(e.token.id);
      else c.done = true, c.error = e.error;
    });
    ASSERT_TRUE(id.is_ok());
    which[*id] = i;
  }
  int steps = 0;
  while (sched.step()) ASSERT_LT(++steps, 10000);
  EXPECT_GT(sched.stats().preemptions, 0);
  for (auto& [id, c] : got) {
    EXPECT_TRUE(c.done);
    EXPECT_TRUE(c.error.is_ok()) << c.error.to_string();
    // Recomputed chunks stay under 64 tokens, so they use the same numerics as decode: identical.
    EXPECT_EQ(c.tokens, solo(reqs[which[id]])) << "request " << which[id];
  }
  EXPECT_EQ(ctx->kv().n_used_blocks(), 0);
}

TEST_F(SchedulerTest, CancelFreesTheSequenceAtTheNextStep) {
  auto ctx = context(256);
  Scheduler sched(*ctx, *vocab_, SchedulerParams{});
  Collected c;
  auto id = sched.submit(request("Hello", 200, 1), [&c](const SchedEvent& e) {
    if (e.kind == SchedEvent::Kind::kToken) c.tokens.push_back(e.token.id);
    else c.done = true, c.finish = e.finish;
  });
  ASSERT_TRUE(id.is_ok());
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(sched.step());
  EXPECT_GT(ctx->kv().n_used_blocks(), 0);
  sched.cancel(*id);
  sched.step();
  EXPECT_TRUE(c.done);
  EXPECT_EQ(c.finish, FinishReason::kCancelled);
  EXPECT_EQ(c.tokens.size(), 5u);
  EXPECT_EQ(ctx->kv().n_used_blocks(), 0);
  EXPECT_FALSE(sched.step());  // idle
}

TEST_F(SchedulerTest, BadRequestsAreRefusedAtSubmit) {
  auto ctx = context(64);
  Scheduler sched(*ctx, *vocab_, SchedulerParams{});
  Request r = request("Hello", 4, 1);
  r.prompt.clear();
  EXPECT_EQ(sched.submit(r, {}).status().code(), StatusCode::kInvalidArgument);
  r.prompt = {1, 1 << 30};
  EXPECT_EQ(sched.submit(r, {}).status().code(), StatusCode::kInvalidArgument);
  r.prompt.assign(64, 1);
  EXPECT_EQ(sched.submit(r, {}).status().code(), StatusCode::kOutOfRange);
  r.prompt = {1, 2};
  r.gen.sampling.top_p = 5;
  EXPECT_EQ(sched.submit(r, {}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(sched.step());
}

TEST_F(SchedulerTest, ContextFullFinishesWithLength) {
  auto ctx = context(32);
  Scheduler sched(*ctx, *vocab_, SchedulerParams{});
  Collected c;
  ASSERT_TRUE(sched.submit(request("Hello world", -1, 3), [&c](const SchedEvent& e) {
    if (e.kind == SchedEvent::Kind::kToken) c.tokens.push_back(e.token.id);
    else c.done = true, c.finish = e.finish;
  }).is_ok());
  int steps = 0;
  while (sched.step()) ASSERT_LT(++steps, 1000);
  EXPECT_TRUE(c.done);
  EXPECT_EQ(c.finish, FinishReason::kLength);
  EXPECT_EQ(static_cast<int64_t>(vocab_->tokenize("Hello world", true, true).size() + c.tokens.size()), 33);
  EXPECT_EQ(ctx->kv().n_used_blocks(), 0);
}

// --- Fairness across groups (Request::fairness_group) ---

// Records, per request, the engine steps at which its tokens arrived and when it ended.
struct StepLog {
  int step = 0;  // the step being run (1-based), set by the test's loop
  std::map<RequestId, std::vector<int>> token_steps;
  std::map<RequestId, int> done_step;
  std::map<RequestId, std::vector<TokenId>> tokens;
  std::vector<RequestId> first_token_order;
  SchedCallback cb() {
    return [this](const SchedEvent& e) {
      if (e.kind == SchedEvent::Kind::kToken) {
        if (token_steps[e.id].empty()) first_token_order.push_back(e.id);
        token_steps[e.id].push_back(step);
        tokens[e.id].push_back(e.token.id);
      } else {
        done_step[e.id] = step;
      }
    };
  }
  bool run(Scheduler& s) {
    ++step;
    return s.step();
  }
};

TEST_F(SchedulerTest, AnotherGroupIsAdmittedWithinAFewStepsOfAThousandsDeepQueue) {
  auto ctx = context(512);
  SchedulerParams sp;
  sp.max_running = 4;
  sp.token_budget = 20;
  sp.prefill_chunk = 16;
  Scheduler sched(*ctx, *vocab_, sp);
  StepLog log;
  constexpr int kA = 3000;
  std::vector<RequestId> a_ids;
  for (int i = 0; i < kA; ++i) {
    Request r = request("Hello number " + std::to_string(i % 10), 3, i, 0.0f);
    r.fairness_group = "org-a";
    auto id = sched.submit(std::move(r), log.cb());
    ASSERT_TRUE(id.is_ok());
    a_ids.push_back(*id);
  }
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(log.run(sched));
  EXPECT_EQ(sched.stats().running, 4);  // every slot is group A's
  Request b = request("Hi", 4, 9, 0.0f);
  b.fairness_group = "org-b";
  const int submitted_at = log.step;
  auto bid = sched.submit(std::move(b), log.cb());
  ASSERT_TRUE(bid.is_ok());
  while (!log.done_step.count(*bid)) ASSERT_TRUE(log.run(sched)) << "idle before B finished";
  // A's sequences generate 3 tokens each, so a slot frees every 3 steps: B takes the next free one
  // (FIFO would admit it after all of A's thousands of requests).
  ASSERT_FALSE(log.token_steps[*bid].empty());
  EXPECT_LE(log.token_steps[*bid].front() - submitted_at, 4);
  EXPECT_LE(log.done_step[*bid] - submitted_at, 8);
  EXPECT_EQ(log.tokens[*bid].size(), 4u);
  // Within group A the order stays FIFO.
  std::vector<RequestId> a_order;
  for (RequestId id : log.first_token_order)
    if (id != *bid) a_order.push_back(id);
  ASSERT_GE(a_order.size(), 4u);
  EXPECT_TRUE(std::is_sorted(a_order.begin(), a_order.end()));
  EXPECT_EQ(a_order.front(), a_ids.front());
  // stats().waiting counts every queued request, in any group.
  const auto st = sched.stats();
  EXPECT_EQ(st.waiting + st.running, kA + 1 - st.requests_finished);
  EXPECT_GT(st.waiting, kA - 100);
}

TEST_F(SchedulerTest, AdmissionIsRoundRobinAcrossGroupsAndFifoWithinOne) {
  auto ctx = context(256);
  SchedulerParams sp;
  sp.max_running = 1;
  Scheduler sched(*ctx, *vocab_, sp);
  StepLog log;
  std::map<RequestId, std::string> name;
  auto submit = [&](const std::string& group, const std::string& n) {
    Request r = request("Hello " + n, 2, 1, 0.0f);
    r.fairness_group = group;
    auto id = sched.submit(std::move(r), log.cb());
    ASSERT_TRUE(id.is_ok());
    name[*id] = n;
  };
  for (const char* n : {"a1", "a2", "a3", "a4"}) submit("a", n);
  for (const char* n : {"b1", "b2", "b3"}) submit("b", n);
  for (const char* n : {"d1", "d2"}) submit("", n);  // the default group is a group like the others
  int steps = 0;
  while (log.run(sched)) ASSERT_LT(++steps, 1000);
  std::vector<std::string> order;
  for (RequestId id : log.first_token_order) order.push_back(name[id]);
  EXPECT_EQ(order, (std::vector<std::string>{"a1", "b1", "d1", "a2", "b2", "d2", "a3", "b3", "a4"}));
  EXPECT_EQ(sched.stats().waiting, 0);
  EXPECT_EQ(ctx->kv().n_used_blocks(), 0);
}

TEST_F(SchedulerTest, CancellingAWaitingRequestEndsItAtTheNextStep) {
  auto ctx = context(256);
  SchedulerParams sp;
  sp.max_running = 1;
  Scheduler sched(*ctx, *vocab_, sp);
  StepLog log;
  std::map<RequestId, FinishReason> finish;
  auto cb = [&](const SchedEvent& e) {
    log.cb()(e);
    if (e.kind == SchedEvent::Kind::kDone) finish[e.id] = e.finish;
  };
  std::vector<RequestId> ids;
  for (int i = 0; i < 4; ++i) {
    Request r = request("Hello", 3, i, 0.0f);
    r.fairness_group = i % 2 ? "b" : "a";
    ids.push_back(*sched.submit(std::move(r), cb));
  }
  ASSERT_TRUE(log.run(sched));
  EXPECT_EQ(sched.stats().waiting, 3);
  sched.cancel(ids[1]);  // b's first request, waiting
  sched.cancel(ids[2]);  // a's second, waiting
  ASSERT_TRUE(log.run(sched));
  EXPECT_EQ(finish[ids[1]], FinishReason::kCancelled);
  EXPECT_EQ(finish[ids[2]], FinishReason::kCancelled);
  EXPECT_EQ(log.done_step[ids[1]], 2);
  EXPECT_EQ(sched.stats().waiting, 1);
  int steps = 0;
  while (log.run(sched)) ASSERT_LT(++steps, 1000);
  EXPECT_EQ(log.first_token_order, (std::vector<RequestId>{ids[0], ids[3]}));
  EXPECT_EQ(finish[ids[3]], FinishReason::kLength);
  EXPECT_EQ(sched.stats().waiting, 0);
  EXPECT_EQ(ctx->kv().n_used_blocks(), 0);
}

TEST_F(SchedulerTest, PrefillBudgetIsSharedRoundRobinAcrossGroups) {
  // The budget holds one prefill chunk (plus the decodes): A's long prompt, already prefilling, must
  // not take every step's chunk while B's prompt waits; and sharing changes neither one's tokens.
  std::string long_text;
  for (int i = 0; i < 30; ++i) long_text += "The quick brown fox jumps over the lazy dog. ";
  Request a = request(long_text, 4, 1, 0.0f);
  a.fairness_group = "org-a";
  std::string mid_text;
  for (int i = 0; i < 3; ++i) mid_text += "Once upon a time there was a fox. ";
  Request b = request(mid_text + "The end.", 4, 2, 0.0f);
  b.fairness_group = "org-b";
  ASSERT_GT(a.prompt.size(), 300u);
  ASSERT_GT(b.prompt.size(), 32u);
  ASSERT_LE(b.prompt.size(), 48u);  // 3 chunks
  SchedulerParams sp;
  sp.max_running = 4;
  sp.token_budget = 20;
  sp.prefill_chunk = 16;
  auto alone = [&](const Request& r) {
    auto ctx = context(512);
    Scheduler sched(*ctx, *vocab_, sp);
    StepLog log;
    auto id = sched.submit(r, log.cb());
    EXPECT_TRUE(id.is_ok());
    while (log.run(sched)) {
    }
    return log.tokens[*id];
  };
  auto ctx = context(512);
  Scheduler sched(*ctx, *vocab_, sp);
  StepLog log;
  auto aid = sched.submit(a, log.cb());
  ASSERT_TRUE(aid.is_ok());
  ASSERT_TRUE(log.run(sched));  // A's first chunk
  const int submitted_at = log.step;
  auto bid = sched.submit(b, log.cb());
  ASSERT_TRUE(bid.is_ok());
  int steps = 0;
  while (log.run(sched)) ASSERT_LT(++steps, 1000);
  // B's 3 chunks alternate with A's: its first token within 6 steps (A's prompt has 19+ chunks left).
  ASSERT_FALSE(log.token_steps[*bid].empty());
  EXPECT_LE(log.token_steps[*bid].front() - submitted_at, 6);
  EXPECT_LT(log.done_step[*bid], log.token_steps[*aid].front());
  EXPECT_EQ(log.tokens[*aid], alone(a));
  EXPECT_EQ(log.tokens[*bid], alone(b));
  EXPECT_EQ(ctx->kv().n_used_blocks(), 0);
}

TEST_F(SchedulerTest, PreemptionTakesFromTheGroupWithTheMostRunning) {
  // 96 cells = 6 blocks of 16; three sequences growing to ~44 tokens (3 blocks) cannot all fit.
  // B, admitted last, is the newest sequence; the victim is A's newest (A has two running), so B's
  // tokens come one per step without a gap.
  auto ctx = context(96, 96);
  SchedulerParams sp;
  sp.max_running = 3;
  sp.token_budget = 96;
  sp.prefill_chunk = 32;
  Scheduler sched(*ctx, *vocab_, sp);
  StepLog log;
  std::vector<Request> reqs;
  std::vector<RequestId> ids;
  for (int i = 0; i < 3; ++i) {
    reqs.push_back(request("Tell me a story number " + std::to_string(i), 36, 7 + i, 0.0f));
    reqs.back().fairness_group = i < 2 ? "org-a" : "org-b";
  }
  for (int i = 0; i < 2; ++i) ids.push_back(*sched.submit(reqs[i], log.cb()));
  ASSERT_TRUE(log.run(sched));
  ids.push_back(*sched.submit(reqs[2], log.cb()));
  int steps = 0;
  while (log.run(sched)) ASSERT_LT(++steps, 10000);
  EXPECT_GT(sched.stats().preemptions, 0);
  const auto& b_steps = log.token_steps[ids[2]];
  ASSERT_EQ(b_steps.size(), 36u);
  EXPECT_EQ(b_steps.back() - b_steps.front(), 35) << "B was preempted";
  for (int i = 0; i < 3; ++i) EXPECT_EQ(log.tokens[ids[i]], solo(reqs[i])) << "request " << i;
  EXPECT_EQ(ctx->kv().n_used_blocks(), 0);
}

}  // namespace
}  // namespace nc::engine
