// `neocloud logits -m MODEL --tokens 1,2,3 --out FILE [-t N] [--reference] [--lora ADAPTER]`: evaluates
// the tokens as one batch (sequence 0, positions 0..n-1), with the LoRA adapter if given (llama.cpp's
// --lora), and writes float32 logits [n_tokens][n_vocab].
#include <fmt/format.h>

#include <cstdio>
#include <memory>
#include <sstream>

#include "apps/neocloud/commands.h"
#include "engine/model/context.h"
#include "engine/model/forward_ref.h"
#include "engine/model/lora.h"
#include "engine/model/model.h"

namespace nc::app {

namespace {
struct LogitsOptions {
  std::string model, tokens, out, lora;
  int threads = 0;
  bool reference = false;
};

Status run_logits(const LogitsOptions& o) {
  std::vector<int32_t> ids;
  std::stringstream ss(o.tokens);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) continue;
    try {
      size_t used = 0;
      long v = std::stol(item, &used);
      if (used != item.size()) throw std::invalid_argument(item);
      ids.push_back(static_cast<int32_t>(v));
    } catch (const std::exception&) {
      return invalid_argument(fmt::format("--tokens: '{}' is not an integer", item));
    }
  }
  if (ids.empty()) return invalid_argument("--tokens: no token ids given");
  NC_ASSIGN_OR_RETURN(auto model, engine::Model::load(o.model));
  std::shared_ptr<const engine::LoraAdapter> adapter;
  if (!o.lora.empty()) {
    NC_ASSIGN_OR_RETURN(adapter, engine::LoraAdapter::load(o.lora, *model));
  }
  std::vector<float> logits;
  if (o.reference) {
    NC_ASSIGN_OR_RETURN(logits, engine::reference_forward(*model, ids, adapter.get()));
  } else {
    engine::ContextParams cp;
    cp.n_ctx = static_cast<int64_t>(ids.size());
    cp.n_ubatch = static_cast<int64_t>(ids.size());
    cp.n_threads = o.threads;
    NC_ASSIGN_OR_RETURN(auto ctx, engine::Context::create(*model, cp));
    engine::Batch b;
    for (size_t i = 0; i < ids.size(); ++i)
      b.add_output(ids[i], static_cast<int32_t>(i), 0, engine::Batch::kLogits, adapter.get());
    NC_RETURN_IF_ERROR(ctx->decode(b, logits));
  }
  const std::string tmp = o.out + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) return invalid_argument("cannot write " + tmp);
  const size_t n = std::fwrite(logits.data(), sizeof(float), logits.size(), f);
  if (std::fclose(f) != 0 || n != logits.size() || std::rename(tmp.c_str(), o.out.c_str()) != 0) {
    std::remove(tmp.c_str());
    return internal_error("failed writing " + o.out);
  }
  fmt::print("n_tokens={} n_vocab={}\n", ids.size(), model->hparams().n_vocab);
  return Status::ok();
}
}  // namespace

void add_logits_command(CLI::App& app) {
  auto o = std::make_shared<LogitsOptions>();
  auto* cmd = app.add_subcommand("logits", "Write float32 logits [n_tokens][n_vocab] for a token sequence");
  cmd->add_option("-m,--model", o->model, "GGUF model")->required();
  cmd->add_option("--tokens", o->tokens, "comma-separated token ids")->required();
  cmd->add_option("--out", o->out, "output file")->required();
  cmd->add_option("-t,--threads", o->threads, "threads (0: all)");
  cmd->add_flag("--reference", o->reference, "use the slow reference forward pass (the oracle)");
  cmd->add_option("--lora", o->lora, "a LoRA adapter GGUF (llama.cpp's format) applied with scale 1");
  cmd->callback([o] { report(run_logits(*o)); });
}

}  // namespace nc::app
