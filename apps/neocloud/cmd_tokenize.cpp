// `neocloud tokenize -m MODEL (--text S | --file F) [--no-bos] [--special] [--pieces]`: prints the token
// ids comma-separated on one line (or one "id 'piece'" line per token with --pieces). Only the
// tokenizer metadata of MODEL is read, so vocab-only GGUF files work too.
#include <fmt/format.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "apps/neocloud/commands.h"
#include "core/timer.h"
#include "engine/gguf/gguf.h"
#include "engine/tokenizer/vocab.h"

namespace nc::app {
namespace {

struct TokenizeOptions {
  std::string model, text, file;
  bool no_bos = false, special = false, pieces = false;
  int bench = 0;
};

Result<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return not_found("cannot open " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return data_loss("error reading " + path);
  return ss.str();
}

Status run_tokenize(const TokenizeOptions& o) {
  std::string text = o.text;
  if (!o.file.empty()) {
    NC_ASSIGN_OR_RETURN(text, read_file(o.file));
  }
  NC_ASSIGN_OR_RETURN(auto gguf, engine::GgufFile::open(o.model));
  NC_ASSIGN_OR_RETURN(auto vocab, engine::Vocab::load(*gguf));
  const bool add_special = vocab->add_bos() && !o.no_bos;
  if (o.bench > 0) {
    double best = 1e30;
    size_t n = 0;
    for (int r = 0; r < o.bench; ++r) {
      const double t0 = now_s();
      n = vocab->tokenize(text, add_special, o.special).size();
      best = std::min(best, now_s() - t0);
    }
    fmt::print("tokens={} best_s={:.6f}\n", n, best);
    return Status::ok();
  }
  const auto ids = vocab->tokenize(text, add_special, o.special);
  std::string out;
  if (o.pieces) {
    for (auto id : ids) out += fmt::format("{} '{}'\n", id, vocab->token_to_piece(id, true));
  } else {
    for (size_t i = 0; i < ids.size(); ++i) out += fmt::format("{}{}", i ? "," : "", ids[i]);
    out += '\n';
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  return Status::ok();
}

}  // namespace

void add_tokenize_command(CLI::App& app) {
  auto o = std::make_shared<TokenizeOptions>();
  auto* cmd = app.add_subcommand("tokenize", "Print the token ids of a text");
  cmd->add_option("-m,--model", o->model, "GGUF file (a vocab-only file is enough)")->required();
  auto* t = cmd->add_option("--text", o->text, "text to tokenize");
  auto* f = cmd->add_option("--file", o->file, "read the text from this file (bytes as they are)");
  t->excludes(f);
  cmd->add_flag("--no-bos", o->no_bos, "do not add BOS/EOS even if the model asks for them");
  cmd->add_flag("--special", o->special, "parse special-token text such as <|eot_id|> into that token");
  cmd->add_flag("--pieces", o->pieces, "print one 'id piece' line per token");
  cmd->add_option("--bench", o->bench, "time R runs and print the token count and the best time instead of ids");
  cmd->callback([o, t, f] {
    if (t->count() == 0 && f->count() == 0) {
      report(invalid_argument("tokenize: give --text or --file"));
      return;
    }
    report(run_tokenize(*o));
  });
}

}  // namespace nc::app
