// `neocloud generate -m MODEL -p PROMPT [-n N] [--temp T] [--top-k K] [--top-p P] [--min-p P] [--seed S]
// [-t N] ...`: tokenizes the prompt (BOS as the model asks, special-token text parsed, as llama.cpp's
// CLI), streams the generated text to stdout as it is produced, and ends with a stats line on stderr
// (prompt and generation tokens and tokens/s, finish reason).
#include <fmt/format.h>

#include <cstdio>

#include "apps/neocloud/commands.h"
#include "engine/generate/generate.h"
#include "engine/model/context.h"
#include "engine/model/model.h"
#include "engine/tokenizer/vocab.h"

namespace nc::app {
namespace {

struct GenerateOptions {
  std::string model, prompt;
  int32_t n_predict = 128;
  int threads = 0;
  int64_t ctx = 4096;
  float temp = 0.8f, top_p = 0.95f, min_p = 0.05f, repeat = 1.0f, presence = 0.0f, frequency = 0.0f;
  int32_t top_k = 40, repeat_last_n = 64;
  int64_t seed = -1;
  std::vector<std::string> stop;
  bool ignore_eos = false, show_tokens = false;
  std::string dump_logits;
};

Status run_generate(const GenerateOptions& o) {
  NC_ASSIGN_OR_RETURN(auto model, engine::Model::load(o.model));
  NC_ASSIGN_OR_RETURN(auto vocab, engine::Vocab::load(model->gguf()));
  if (vocab->n_tokens() != model->hparams().n_vocab) {
    return invalid_argument(fmt::format("the tokenizer has {} tokens but the model's output has {}", vocab->n_tokens(),
                                        model->hparams().n_vocab));
  }
  const auto prompt = vocab->tokenize(o.prompt, /*add_special=*/true, /*parse_special=*/true);
  engine::ContextParams cp;
  cp.n_ctx = o.ctx;
  cp.n_threads = o.threads;
  NC_ASSIGN_OR_RETURN(auto ctx, engine::Context::create(*model, cp));
  engine::GenerateParams gp;
  gp.max_tokens = o.n_predict;
  gp.stop = o.stop;
  gp.ignore_eos = o.ignore_eos;
  gp.keep_logits = !o.dump_logits.empty();
  auto& s = gp.sampling;
  s.temperature = o.temp;
  s.top_k = o.top_k;
  s.top_p = o.top_p;
  s.min_p = o.min_p;
  s.repeat_penalty = o.repeat;
  s.presence_penalty = o.presence;
  s.frequency_penalty = o.frequency;
  s.penalty_last_n = o.repeat_last_n;
  if (o.seed >= 0) s.seed = static_cast<uint64_t>(o.seed);
  std::string ids;
  NC_ASSIGN_OR_RETURN(auto res, engine::generate(*ctx, *vocab, prompt, gp, [&](const engine::GeneratedToken& g) {
    if (o.show_tokens) ids += fmt::format("{}{}", ids.empty() ? "" : ",", g.id);
    std::fwrite(g.text.data(), 1, g.text.size(), stdout);
    std::fflush(stdout);
    return true;
  }));
  std::fputc('\n', stdout);
  if (!o.dump_logits.empty()) {
    FILE* f = std::fopen(o.dump_logits.c_str(), "wb");
    if (!f) return invalid_argument("cannot write " + o.dump_logits);
    const size_t n = std::fwrite(res.step_logits.data(), sizeof(float), res.step_logits.size(), f);
    if (std::fclose(f) != 0 || n != res.step_logits.size()) return internal_error("failed writing " + o.dump_logits);
  }
  if (o.show_tokens) fmt::print("tokens: {}\n", ids);
  std::fflush(stdout);
  const size_t n_gen = res.tokens.size();
  // Generation speed counts the tokens decoded after the prompt (the first is sampled from the
  // prompt's logits).
  const double gen_tps = n_gen > 1 && res.generate_seconds > 0 ? (n_gen - 1) / res.generate_seconds : 0;
  fmt::print(stderr, "prompt: {} tokens, {:.2f} t/s | generation: {} tokens, {:.2f} t/s | finish: {}{}\n",
             res.n_prompt, res.prompt_seconds > 0 ? res.n_prompt / res.prompt_seconds : 0.0, n_gen, gen_tps,
             engine::finish_reason_name(res.finish), res.context_full ? " (context full)" : "");
  return Status::ok();
}

}  // namespace

void add_generate_command(CLI::App& app) {
  auto o = std::make_shared<GenerateOptions>();
  auto* cmd = app.add_subcommand("generate", "Generate text from a prompt (streams to stdout)");
  cmd->add_option("-m,--model", o->model, "GGUF model file")->required();
  cmd->add_option("-p,--prompt", o->prompt, "prompt text (special-token text such as <|eot_id|> is parsed)")->required();
  cmd->add_option("-n,--n-predict", o->n_predict, "tokens to generate (-1: until end of generation)")->capture_default_str();
  cmd->add_option("--temp", o->temp, "temperature (0: greedy)")->capture_default_str();
  cmd->add_option("--top-k", o->top_k, "top-k (<= 0: off)")->capture_default_str();
  cmd->add_option("--top-p", o->top_p, "top-p (1: off)")->capture_default_str();
  cmd->add_option("--min-p", o->min_p, "min-p (0: off)")->capture_default_str();
  cmd->add_option("--repeat-penalty", o->repeat, "repetition penalty (1: off)")->capture_default_str();
  cmd->add_option("--repeat-last-n", o->repeat_last_n, "tokens the penalties look back (-1: all)")->capture_default_str();
  cmd->add_option("--presence-penalty", o->presence, "presence penalty")->capture_default_str();
  cmd->add_option("--frequency-penalty", o->frequency, "frequency penalty")->capture_default_str();
  cmd->add_option("--seed", o->seed, "RNG seed (-1: random)")->capture_default_str();
  cmd->add_option("--stop", o->stop, "stop string (repeatable; not printed)");
  cmd->add_option("-c,--ctx", o->ctx, "context size in tokens")->capture_default_str();
  cmd->add_option("-t,--threads", o->threads, "threads (0: all cores)")->capture_default_str();
  cmd->add_flag("--ignore-eos", o->ignore_eos, "keep generating past end-of-generation tokens");
  cmd->add_flag("--show-tokens", o->show_tokens, "after the text, print the generated token ids");
  cmd->add_option("--dump-logits", o->dump_logits, "write every step's logits (float32 [steps][n_vocab]) to this file");
  cmd->callback([o] { report(run_generate(*o)); });
}

}  // namespace nc::app
