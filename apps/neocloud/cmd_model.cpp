// `neocloud model synth` and `neocloud model info`.
#include <fmt/format.h>

#include <fstream>
#include <iterator>

#include <map>

#include "apps/neocloud/commands.h"
#include "core/timer.h"
#include "engine/gguf/gguf.h"
#include "engine/model/model.h"
#include "engine/model/lora_merge.h"
#include "engine/model/synth.h"

namespace nc::app {

int& exit_code() {
  static int code = 0;
  return code;
}

void report(const Status& s) {
  if (s.is_ok()) return;
  fmt::print(stderr, "error: {}\n", s.to_string());
  exit_code() = 1;
}

namespace {

void run_info(const std::string& path) {
  auto f = engine::GgufFile::open(path);
  if (!f) return report(f.status());
  const auto& g = **f;
  fmt::print("file: {}\nGGUF version: {}\nsize: {} bytes\nalignment: {}\ndata offset: {}\n", path, g.version(),
             g.file_size(), g.alignment(), g.data_offset());
  fmt::print("\nmetadata ({} keys):\n", g.kvs().size());
  for (const auto& kv : g.kvs())
    fmt::print("  {:<48} {:<8} {}\n", kv.key, engine::gguf_type_name(kv.value.type), kv.value.to_display_string());
  fmt::print("\ntensors ({}):\n", g.tensors().size());
  std::map<std::string, std::pair<int64_t, size_t>> by_type;
  int64_t n_params = 0;
  for (const auto& t : g.tensors()) {
    std::string shape;
    for (uint32_t d = 0; d < t.n_dims; ++d) shape += (d ? " x " : "") + std::to_string(t.ne[d]);
    fmt::print("  {:<32} {:<6} [{}] {} bytes\n", t.name, engine::ggml_type_name(t.type), shape, t.n_bytes);
    auto& bt = by_type[std::string(engine::ggml_type_name(t.type))];
    bt.first += 1;
    bt.second += t.n_bytes;
    n_params += t.n_elements();
  }
  fmt::print("\nby type:\n");
  for (const auto& [name, v] : by_type) fmt::print("  {:<6} {:>5} tensors {:>14} bytes\n", name, v.first, v.second);
  fmt::print("parameters: {}\n", n_params);
  auto m = engine::Model::from_gguf(std::move(*f), {.prefault = false, .repack = false});
  if (!m) {
    fmt::print("\nmodel: not loadable: {}\n", m.status().to_string());
    return;
  }
  const auto& hp = (*m)->hparams();
  fmt::print(
      "\nmodel: arch={} n_vocab={} n_ctx_train={} n_embd={} n_layer={} n_head={} n_head_kv={} head_dim={} n_ff={} "
      "rope_base={} rope_scale={} tied_output={} rope_freqs={}\n",
      hp.arch, hp.n_vocab, hp.n_ctx_train, hp.n_embd, hp.n_layer, hp.n_head, hp.n_head_kv, hp.head_dim, hp.n_ff,
      hp.rope_freq_base, hp.rope_freq_scale, (*m)->weights().tied_output, (*m)->weights().rope_freqs != nullptr);
}

}  // namespace

void add_model_commands(CLI::App& app) {
  auto* model = app.add_subcommand("model", "Inspect and create GGUF model files");
  model->require_subcommand(1);

  auto* synth = model->add_subcommand("synth", "Write a random-weight model with a real tokenizer");
  auto opts = std::make_shared<engine::SynthOptions>();
  synth->add_option("--vocab", opts->vocab_path, "vocab-only GGUF to copy the tokenizer from")->required();
  std::string shapes;
  for (const auto& s : engine::synth_shapes()) shapes += (shapes.empty() ? "" : "|") + s.name;
  synth->add_option("--shape", opts->shape, shapes)->capture_default_str();
  synth->add_option("--type", opts->type, "f32|f16|bf16|q8_0|q4_0|q4_k|q6_k|q4_k_m")->capture_default_str();
  synth->add_option("--arch", opts->arch, "llama|qwen2")->capture_default_str();
  synth->add_option("--seed", opts->seed, "random seed (same seed, same file)")->capture_default_str();
  synth->add_option("--ctx", opts->n_ctx, "context_length to record")->capture_default_str();
  synth->add_option("--tied", opts->tied, "1: no output.weight (tied to token_embd), 0: separate");
  synth->add_option("--llama3-rope", opts->llama3_rope, "1: write llama3 rope_freqs, 0: none");
  synth->add_option("--out", opts->out_path, "output GGUF path")->required();
  auto template_file = std::make_shared<std::string>();
  synth->add_option("--chat-template", *template_file, "file whose text becomes tokenizer.chat_template");
  synth->callback([opts, template_file] {
    const double t0 = now_s();
    if (!template_file->empty()) {
      std::ifstream in(*template_file, std::ios::binary);
      if (!in) return report(not_found("cannot read chat template file " + *template_file));
      opts->chat_template.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    Status s = engine::synth_model(*opts);
    if (!s.is_ok()) return report(s);
    fmt::print("wrote {} ({} {} {}) in {:.1f} s\n", opts->out_path, opts->arch, opts->shape, opts->type, now_s() - t0);
  });

  auto lo = std::make_shared<engine::SynthLoraOptions>();
  auto* sl = model->add_subcommand("synth-lora", "Write a random LoRA adapter (llama.cpp's GGUF format) for a model");
  sl->add_option("--base", lo->base_path, "the base model GGUF")->required();
  sl->add_option("--rank", lo->rank, "LoRA rank")->capture_default_str();
  sl->add_option("--alpha", lo->alpha, "LoRA alpha (scale = alpha / rank)")->capture_default_str();
  sl->add_option("--type", lo->type, "f32|f16|bf16|q8_0")->capture_default_str();
  sl->add_option("--targets", lo->targets, "comma list of qkvo, mlp, output")->capture_default_str();
  sl->add_option("--seed", lo->seed, "random seed (same seed, same file)")->capture_default_str();
  sl->add_option("--out", lo->out_path, "output GGUF path")->required();
  sl->callback([lo] {
    Status s = engine::synth_lora(*lo);
    if (!s.is_ok()) return report(s);
    fmt::print("wrote {} (rank {}, alpha {}, {})\n", lo->out_path, lo->rank, lo->alpha, lo->type);
  });

  auto mo = std::make_shared<engine::MergeLoraOptions>();
  auto* merge = model->add_subcommand("merge-lora", "Bake a LoRA adapter into its base model (a standalone GGUF)");
  merge->add_option("--base", mo->base_path, "the base model GGUF")->required();
  merge->add_option("--lora", mo->adapter_path, "the adapter GGUF (llama.cpp's format)")->required();
  merge->add_option("--scale", mo->scale, "adapter scale (llama.cpp's --lora-scaled)")->capture_default_str();
  merge->add_option("--out", mo->out_path, "output GGUF path")->required();
  merge->callback([mo] {
    const double t0 = now_s();
    Status s = engine::merge_lora(*mo);
    if (!s.is_ok()) return report(s);
    fmt::print("wrote {} in {:.1f} s\n", mo->out_path, now_s() - t0);
  });

  auto* info = model->add_subcommand("info", "Print a GGUF file's metadata, tensors and sizes");
  auto path = std::make_shared<std::string>();
  info->add_option("file", *path, "GGUF file")->required();
  info->callback([path] { run_info(*path); });
}

}  // namespace nc::app
