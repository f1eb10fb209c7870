// `neocloud bench`: prompt-processing (pp) and generation (tg) throughput like llama-bench:
// pp evaluates n_prompt random tokens as one batch from an empty cache; tg decodes n_gen tokens one
// at a time from an empty cache. Each test runs once to warm up, then `reps` times; tokens/s are
// reported as mean ± standard deviation over the repetitions.
#include <fmt/format.h>

#include <cmath>
#include <memory>
#include <random>

#include "apps/neocloud/commands.h"
#include "core/timer.h"
#include "engine/kernels/kernels.h"
#include "engine/model/context.h"
#include "engine/model/model.h"

namespace nc::app {

namespace {
struct BenchOptions {
  std::string model;
  std::vector<int> n_prompt{512};
  std::vector<int> n_gen{128};
  int reps = 5;
  int threads = 2;
  int ubatch = 512;
  bool json = false;
};

struct Row {
  int n_prompt = 0, n_gen = 0;
  std::vector<double> ns;  // per repetition
  double avg_ts = 0, stddev_ts = 0, avg_ns = 0, stddev_ns = 0;
  std::vector<double> ts;
};

void stats(Row& r, int n_tokens) {
  const double n = static_cast<double>(r.ns.size());
  for (double v : r.ns) r.ts.push_back(1e9 * n_tokens / v);
  auto mean_sd = [n](const std::vector<double>& v, double& mean, double& sd) {
    mean = 0;
    for (double x : v) mean += x;
    mean /= n;
    double ss = 0;
    for (double x : v) ss += (x - mean) * (x - mean);
    sd = n > 1 ? std::sqrt(ss / (n - 1)) : 0.0;
  };
  mean_sd(r.ts, r.avg_ts, r.stddev_ts);
  mean_sd(r.ns, r.avg_ns, r.stddev_ns);
}

Status run_bench(const BenchOptions& o) {
  const double t0 = now_s();
  NC_ASSIGN_OR_RETURN(auto model, engine::Model::load(o.model));
  const double load_s = now_s() - t0;
  const auto& hp = model->hparams();
  int max_ctx = 16;
  for (int p : o.n_prompt) max_ctx = std::max(max_ctx, p);
  for (int g : o.n_gen) max_ctx = std::max(max_ctx, g);
  engine::ContextParams cp;
  cp.n_ctx = max_ctx;
  cp.n_ubatch = o.ubatch;
  cp.n_threads = o.threads;
  NC_ASSIGN_OR_RETURN(auto ctx, engine::Context::create(*model, cp));
  std::mt19937 rng(42);
  std::uniform_int_distribution<int32_t> tok(0, static_cast<int32_t>(hp.n_vocab - 1));
  std::vector<float> logits;
  auto clear = [&] { ctx->kv().free_seq(0); };
  auto prompt = [&](int n) -> Status {
    clear();
    engine::Batch b;
    for (int i = 0; i < n; ++i) b.add(tok(rng), i, 0, i == n - 1);
    logits.clear();
    return ctx->decode(b, logits);
  };
  auto gen = [&](int n) -> Status {
    clear();
    engine::Batch b;
    int32_t t = tok(rng);
    for (int i = 0; i < n; ++i) {
      b.clear();
      b.add(t, i, 0, true);
      logits.clear();
      NC_RETURN_IF_ERROR(ctx->decode(b, logits));
      t = tok(rng);
    }
    return Status::ok();
  };
  std::vector<Row> rows;
  auto measure = [&](int np, int ng) -> Status {
    Row r;
    r.n_prompt = np;
    r.n_gen = ng;
    auto once = [&]() -> Status { return np > 0 ? prompt(np) : gen(ng); };
    NC_RETURN_IF_ERROR(once());  // warm-up
    for (int i = 0; i < o.reps; ++i) {
      const int64_t s = now_ns();
      NC_RETURN_IF_ERROR(once());
      r.ns.push_back(static_cast<double>(now_ns() - s));
    }
    stats(r, np > 0 ? np : ng);
    rows.push_back(r);
    return Status::ok();
  };
  for (int p : o.n_prompt)
    if (p > 0) NC_RETURN_IF_ERROR(measure(p, 0));
  for (int g : o.n_gen)
    if (g > 0) NC_RETURN_IF_ERROR(measure(0, g));

  const size_t file_size = model->gguf().file_size();
  int64_t n_params = 0;
  for (const auto& t : model->gguf().tensors()) n_params += t.n_elements();
  if (o.json) {
    fmt::print("[\n");
    for (size_t i = 0; i < rows.size(); ++i) {
      const Row& r = rows[i];
      std::string samples_ns, samples_ts;
      for (size_t k = 0; k < r.ns.size(); ++k) {
        samples_ns += (k ? ", " : "") + fmt::format("{:.0f}", r.ns[k]);
        samples_ts += (k ? ", " : "") + fmt::format("{:.6f}", r.ts[k]);
      }
      fmt::print(
          "  {{\n    \"build_commit\": \"neocloud\",\n    \"cpu_info\": \"{}\",\n    \"model_filename\": \"{}\",\n"
          "    \"model_type\": \"{}\",\n    \"model_size\": {},\n    \"model_n_params\": {},\n    \"n_batch\": {},\n"
          "    \"n_ubatch\": {},\n    \"n_threads\": {},\n    \"n_prompt\": {},\n    \"n_gen\": {},\n"
          "    \"load_time_s\": {:.3f},\n    \"weight_bytes_per_token\": {},\n    \"avg_ns\": {:.0f},\n    \"stddev_ns\": {:.0f},\n    \"avg_ts\": {:.6f},\n"
          "    \"stddev_ts\": {:.6f},\n    \"samples_ns\": [ {} ],\n    \"samples_ts\": [ {} ]\n  }}{}\n",
          engine::kernel_level_name(engine::best_kernel_level()), o.model, hp.arch, file_size, n_params, o.ubatch,
          o.ubatch, o.threads, r.n_prompt, r.n_gen, load_s, model->weight_bytes_per_token(), r.avg_ns, r.stddev_ns, r.avg_ts, r.stddev_ts, samples_ns,
          samples_ts, i + 1 < rows.size() ? "," : "");
    }
    fmt::print("]\n");
  } else {
    fmt::print("| model | size | params | kernels | threads | test | t/s |\n");
    fmt::print("| --- | ---: | ---: | --- | ---: | ---: | ---: |\n");
    for (const Row& r : rows) {
      const std::string test = r.n_prompt > 0 ? fmt::format("pp{}", r.n_prompt) : fmt::format("tg{}", r.n_gen);
      fmt::print("| {} | {:.2f} GiB | {:.2f} B | {} | {} | {} | {:.2f} ± {:.2f} |\n", hp.name.empty() ? hp.arch : hp.name,
                 file_size / 1073741824.0, n_params / 1e9, engine::kernel_level_name(engine::best_kernel_level()),
                 o.threads, test, r.avg_ts, r.stddev_ts);
    }
    fmt::print("model load: {:.2f} s\n", load_s);
  }
  return Status::ok();
}
}  // namespace

void add_bench_command(CLI::App& app) {
  auto o = std::make_shared<BenchOptions>();
  auto* cmd = app.add_subcommand("bench", "Measure prompt (pp) and generation (tg) tokens/s, like llama-bench");
  cmd->add_option("-m,--model", o->model, "GGUF model")->required();
  cmd->add_option("-p,--n-prompt", o->n_prompt, "prompt lengths (0 to skip)")->delimiter(',')->capture_default_str();
  cmd->add_option("-n,--n-gen", o->n_gen, "generation lengths (0 to skip)")->delimiter(',')->capture_default_str();
  cmd->add_option("-r,--repetitions", o->reps, "repetitions per test")->capture_default_str();
  cmd->add_option("-t,--threads", o->threads, "threads")->capture_default_str();
  cmd->add_option("--ubatch-size", o->ubatch, "tokens per forward chunk")->capture_default_str();
  cmd->add_flag("--json", o->json, "print llama-bench style JSON rows");
  cmd->callback([o] { report(run_bench(*o)); });
}

}  // namespace nc::app
