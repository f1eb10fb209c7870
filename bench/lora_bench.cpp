// LoRA serving throughput in the engine: 16 concurrent streams on the base model alone, then the same
// 16 streams each with a different LoRA adapter (rank 16 on q/k/v/o and the MLP, f16 as
// convert_lora_to_gguf.py writes by default), batched together by the scheduler — side by side, rounds
// interleaved, same process and threads. Prints output tok/s of each round, the ratio (goal >= 0.90,
// floor 0.85: issue 16) and the adapters' load times (goal <= 1 s each).
//
//   build/release/bin/lora_bench [--model M.gguf] [--streams 16] [--prompt 128] [--gen 128] [--rank 16]
//                                [--rounds 3] [-t 2]
// Without --model it writes the synthetic tinyllama-1.1b Q4_0 of bench/serving_vs_llamacpp.sh to
// .cache/models (and the adapters to .cache/bench/lora).
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <memory>
#include <vector>

#include "engine/model/context.h"
#include "engine/model/lora.h"
#include "engine/model/model.h"
#include "engine/model/synth.h"
#include "engine/sched/scheduler.h"
#include "engine/tokenizer/vocab.h"

using namespace nc;
using namespace nc::engine;

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct RoundResult {
  double tok_s = 0;         // output tokens per second over the whole run (prefill included)
  double decode_tok_s = 0;  // output tokens per second once every stream has its first token
};

// Runs n streams to completion.
RoundResult run_round(Context& ctx, const Vocab& vocab, const std::vector<std::shared_ptr<const LoraAdapter>>& adapters,
                 int streams, int prompt, int gen, int64_t n_vocab) {
  SchedulerParams sp;
  sp.max_running = streams;
  sp.token_budget = 512;
  sp.prefill_chunk = 128;
  Scheduler sched(ctx, vocab, sp);
  int64_t generated = 0, generated_at_all_first = 0;
  int done = 0, started = 0;
  double t_all_first = 0;
  std::vector<bool> has_first(static_cast<size_t>(streams), false);
  uint64_t seed = 1;
  for (int s = 0; s < streams; ++s) {
    Request r;
    for (int i = 0; i < prompt; ++i) {
      seed = seed * 6364136223846793005ull + 1442695040888963407ull;
      r.prompt.push_back(static_cast<TokenId>(3 + (seed >> 33) % static_cast<uint64_t>(n_vocab - 3)));
    }
    r.gen.max_tokens = gen;
    r.gen.ignore_eos = true;
    r.adapter = adapters.empty() ? nullptr : adapters[static_cast<size_t>(s) % adapters.size()];
    auto id = sched.submit(std::move(r), [&, s](const SchedEvent& e) {
      if (e.kind == SchedEvent::Kind::kToken) {
        ++generated;
        if (!has_first[static_cast<size_t>(s)] && (has_first[static_cast<size_t>(s)] = true) && ++started == streams) {
          t_all_first = now_s();
          generated_at_all_first = generated;
        }
      }
      if (e.kind == SchedEvent::Kind::kDone) ++done;
    });
    if (!id.is_ok()) {
      fmt::print(stderr, "submit: {}\n", id.status().to_string());
      std::exit(1);
    }
  }
  const double t0 = now_s();
  while (done < streams) sched.step();
  const double t1 = now_s();
  return {static_cast<double>(generated) / (t1 - t0),
          static_cast<double>(generated - generated_at_all_first) / (t1 - t_all_first)};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"LoRA serving throughput: many adapters vs the base model alone"};
  std::string model_path, dir = ".cache/bench/lora";
  int streams = 16, prompt = 128, gen = 128, rank = 16, rounds = 3, threads = 2;
  app.add_option("--model", model_path, "base GGUF (default: synthetic tinyllama-1.1b Q4_0)");
  app.add_option("--streams", streams)->capture_default_str();
  app.add_option("--prompt", prompt)->capture_default_str();
  app.add_option("--gen", gen)->capture_default_str();
  app.add_option("--rank", rank)->capture_default_str();
  app.add_option("--rounds", rounds)->capture_default_str();
  app.add_option("-t,--threads", threads)->capture_default_str();
  app.add_option("--dir", dir, "where the adapters are written")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  std::filesystem::create_directories(dir);
  if (model_path.empty()) {
    model_path = ".cache/models/tinyllama-1.1b-q4_0.gguf";
    if (!std::filesystem::exists(model_path)) {
      std::filesystem::create_directories(".cache/models");
      SynthOptions o;
      o.vocab_path = std::string(NC_LLAMA_SRC) + "/models/ggml-vocab-llama-spm.gguf";
      o.shape = "tinyllama-1.1b";
      o.type = "q4_0";
      o.out_path = model_path;
      if (Status s = synth_model(o); !s.is_ok()) return fmt::print(stderr, "{}\n", s.to_string()), 1;
    }
  }
  auto model = Model::load(model_path);
  if (!model.is_ok()) return fmt::print(stderr, "{}\n", model.status().to_string()), 1;
  auto vocab = Vocab::load((*model)->gguf());
  if (!vocab.is_ok()) return fmt::print(stderr, "{}\n", vocab.status().to_string()), 1;
  std::vector<std::shared_ptr<const LoraAdapter>> adapters;
  std::vector<double> load_s;
  size_t adapter_bytes = 0;
  for (int i = 0; i < streams; ++i) {
    SynthLoraOptions lo;
    lo.base_path = model_path;
    lo.rank = rank;
    lo.type = "f16";
    lo.seed = static_cast<uint64_t>(i + 1);
    lo.out_path = fmt::format("{}/adapter-r{}-{}.gguf", dir, rank, i);
    if (!std::filesystem::exists(lo.out_path))
      if (Status s = synth_lora(lo); !s.is_ok()) return fmt::print(stderr, "{}\n", s.to_string()), 1;
    const double t0 = now_s();
    auto a = LoraAdapter::load(lo.out_path, **model);
    load_s.push_back(now_s() - t0);
    if (!a.is_ok()) return fmt::print(stderr, "{}\n", a.status().to_string()), 1;
    adapter_bytes += (*a)->bytes();
    adapters.push_back(*a);
  }
  ContextParams cp;
  cp.n_ctx = static_cast<int64_t>(streams) * (prompt + gen + 16);
  cp.n_ubatch = 512;
  cp.n_threads = threads;
  auto ctx = Context::create(**model, cp);
  if (!ctx.is_ok()) return fmt::print(stderr, "{}\n", ctx.status().to_string()), 1;
  const int64_t n_vocab = (*model)->hparams().n_vocab;
  std::vector<double> base, lora, base_dec, lora_dec;
  for (int r = 0; r < rounds; ++r) {  // interleaved: base, adapters, base, adapters, ...
    const RoundResult rb = run_round(**ctx, **vocab, {}, streams, prompt, gen, n_vocab);
    const RoundResult rl = run_round(**ctx, **vocab, adapters, streams, prompt, gen, n_vocab);
    base.push_back(rb.tok_s), base_dec.push_back(rb.decode_tok_s);
    lora.push_back(rl.tok_s), lora_dec.push_back(rl.decode_tok_s);
    fmt::print("round {}: base {:.1f} tok/s (decode {:.1f}), {} adapters {:.1f} tok/s (decode {:.1f})\n", r + 1, rb.tok_s,
               rb.decode_tok_s, streams, rl.tok_s, rl.decode_tok_s);
  }
  const double b = *std::max_element(base.begin(), base.end()), l = *std::max_element(lora.begin(), lora.end());
  const double bd = *std::max_element(base_dec.begin(), base_dec.end());
  const double ld = *std::max_element(lora_dec.begin(), lora_dec.end());
  std::sort(load_s.begin(), load_s.end());
  fmt::print("\n{} ({}), {} threads, {} streams x ({} prompt + {} generated tokens)\n", model_path,
             (*model)->hparams().name, threads, streams, prompt, gen);
  fmt::print("base model alone:          {:.1f} output tok/s (best of {})\n", b, rounds);
  fmt::print("{} different adapters:     {:.1f} output tok/s (rank {}, q/k/v/o + MLP, f16; {:.1f} MiB each in memory)\n",
             streams, l, rank, static_cast<double>(adapter_bytes) / streams / (1 << 20));
  double sum_b = 0, sum_l = 0;
  std::string per_round;
  for (size_t r = 0; r < base.size(); ++r) {
    sum_b += base[r], sum_l += lora[r];
    per_round += fmt::format("{}{:.3f}", r ? ", " : "", lora[r] / base[r]);
  }
  fmt::print("ratio adapters / base:     {:.3f} best / best, {:.3f} mean / mean (rounds: {}) (goal >= 0.90, floor 0.85)\n",
             l / b, sum_l / sum_b, per_round);
  fmt::print("decode phase alone:        {:.3f} ({:.1f} / {:.1f} tok/s)\n", ld / bd, ld, bd);
  fmt::print("adapter load:              median {:.3f} s, max {:.3f} s (goal <= 1 s)\n", load_s[load_s.size() / 2],
             load_s.back());
  return 0;
}
