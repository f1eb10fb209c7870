// `neocloud dataset tokenize -m MODEL --in DATA.jsonl --out TOKENS.jsonl`: a fine-tuning dataset (OpenAI's
// chat JSONL) to the token ids and loss masks the trainer reads (server/training_data.h), rendered with
// MODEL's own chat template and tokenizer. Only the tokenizer metadata of MODEL is read. The output is
// written atomically (nothing on an error, which names its line).
#include <fmt/format.h>

#include <cstdio>
#include <fstream>

#include "apps/neocloud/commands.h"
#include "engine/gguf/gguf.h"
#include "engine/tokenizer/vocab.h"
#include "server/training_data.h"

namespace nc::app {
namespace {

struct DatasetOptions {
  std::string model, in, out;
};

Status run_tokenize(const DatasetOptions& o) {
  NC_ASSIGN_OR_RETURN(auto gguf, engine::GgufFile::open(o.model));
  NC_ASSIGN_OR_RETURN(auto vocab, engine::Vocab::load(*gguf));
  std::string tmpl;
  if (const auto* v = gguf->find("tokenizer.chat_template"); v && v->type == engine::GgufType::kString) tmpl = std::string(v->str);
  const server::ChatFormatter chat = server::ChatFormatter::create(*vocab, tmpl);
  std::ifstream in(o.in, std::ios::binary);
  if (!in) return not_found("cannot open " + o.in);
  const std::string tmp = o.out + ".tmp";
  std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
  if (!out) return invalid_argument("cannot write " + tmp);
  server::DatasetStats stats;
  Status st = server::tokenize_dataset(in, out, chat, *vocab, &stats);
  out.close();
  if (st.is_ok() && (!out || std::rename(tmp.c_str(), o.out.c_str()) != 0)) st = internal_error("failed writing " + o.out);
  if (!st.is_ok()) {
    std::remove(tmp.c_str());
    return st;
  }
  fmt::print("{} examples, {} tokens, {} trained (chat format: {})\n", stats.examples, stats.tokens, stats.trained_tokens,
             chat.kind());
  return Status::ok();
}

}  // namespace

void add_dataset_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("dataset", "Fine-tuning datasets")->require_subcommand(1);
  auto o = std::make_shared<DatasetOptions>();
  auto* tok = cmd->add_subcommand("tokenize", "Chat JSONL to token ids and loss masks, with a model's chat template");
  tok->add_option("-m,--model", o->model, "the model GGUF (its tokenizer and chat template)")->required();
  tok->add_option("--in", o->in, "the dataset: one {\"messages\": [...]} per line")->required();
  tok->add_option("--out", o->out, "where to write {\"ids\": [...], \"mask\": [...]} per line")->required();
  tok->callback([o] { report(run_tokenize(*o)); });
}

}  // namespace nc::app
