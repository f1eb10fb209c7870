#include "engine/model/synth.h"
#include "engine/model/demo_vocab.h"

#include <fmt/format.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>

#include "engine/gguf/gguf.h"
#include "engine/gguf/gguf_writer.h"
#include "engine/kernels/fp16.h"
#include "engine/kernels/quant_blocks.h"

namespace nc::engine {

const std::vector<SynthShape>& synth_shapes() {
  static const std::vector<SynthShape> kShapes = {
      {"micro", 32, 1, 2, 1, 64, 10000.0f, false},
      {"tiny", 256, 2, 4, 2, 768, 10000.0f, false},
      {"tinyllama-1.1b", 2048, 22, 32, 4, 5632, 10000.0f, false},
      {"llama3.2-1b", 2048, 16, 32, 8, 8192, 500000.0f, true},
      {"llama3.2-3b", 3072, 28, 24, 8, 8192, 500000.0f, true},
      {"qwen2-0.5b", 896, 24, 14, 2, 4864, 1000000.0f, false},
  };
  return kShapes;
}

namespace {

// splitmix64: deterministic everywhere (std:: distributions are not specified bit-exactly).
struct Rng {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  float uniform(float a) {  // [-a, a)
    return (static_cast<float>(next() >> 40) * (1.0f / 16777216.0f) * 2.0f - 1.0f) * a;
  }
  int range(int lo, int hi) { return lo + static_cast<int>(next() % static_cast<uint64_t>(hi - lo + 1)); }
};

uint64_t name_seed(uint64_t seed, const std::string& name) {
  uint64_t h = 1469598103934665603ull ^ seed;
  for (unsigned char c : name) h = (h ^ c) * 1099511628211ull;
  return h;
}

// Fills n_bytes of `type` data with random values of magnitude ~amp.
void fill_random(GgmlType type, uint8_t* dst, size_t n_bytes, Rng& rng, float amp) {
  switch (type) {
    case GgmlType::kF32: {
      auto* p = reinterpret_cast<float*>(dst);
      for (size_t i = 0; i < n_bytes / 4; ++i) p[i] = rng.uniform(amp);
      break;
    }
    case GgmlType::kF16: {
      auto* p = reinterpret_cast<uint16_t*>(dst);
      for (size_t i = 0; i < n_bytes / 2; ++i) p[i] = fp32_to_fp16(rng.uniform(amp));
      break;
    }
    case GgmlType::kBF16: {
      auto* p = reinterpret_cast<uint16_t*>(dst);
      for (size_t i = 0; i < n_bytes / 2; ++i) p[i] = fp32_to_bf16(rng.uniform(amp));
      break;
    }
    case GgmlType::kQ8_0: {
      auto* b = reinterpret_cast<BlockQ8_0*>(dst);
      for (size_t i = 0; i < n_bytes / sizeof(BlockQ8_0); ++i) {
        b[i].d = fp32_to_fp16(amp / 127.0f * (0.75f + 0.25f * std::fabs(rng.uniform(1.0f))));
        for (auto& q : b[i].qs) q = static_cast<int8_t>(rng.range(-127, 127));
      }
      break;
    }
    case GgmlType::kQ4_0: {
      auto* b = reinterpret_cast<BlockQ4_0*>(dst);
      for (size_t i = 0; i < n_bytes / sizeof(BlockQ4_0); ++i) {
        b[i].d = fp32_to_fp16(amp / 8.0f * (0.75f + 0.25f * std::fabs(rng.uniform(1.0f))));
        for (auto& q : b[i].qs) q = static_cast<uint8_t>(rng.next());
      }
      break;
    }
    case GgmlType::kQ4_K: {
      // value = d*sc*q - dmin*m with m ~ sc*7.5/8 and dmin = 8d: centred, |value| <~ amp.
      auto* b = reinterpret_cast<BlockQ4K*>(dst);
      for (size_t i = 0; i < n_bytes / sizeof(BlockQ4K); ++i) {
        const float d = amp / (7.5f * 48.0f);
        b[i].d = fp32_to_fp16(d);
        b[i].dmin = fp32_to_fp16(8.0f * d);
        uint8_t sc[8], mn[8];
        for (int s = 0; s < 8; ++s) {
          sc[s] = static_cast<uint8_t>(rng.range(40, 56));
          mn[s] = static_cast<uint8_t>(std::lround(sc[s] * 7.5f / 8.0f));
        }
        std::memset(b[i].scales, 0, 12);
        for (int s = 0; s < 4; ++s) {
          b[i].scales[s] = static_cast<uint8_t>((sc[s] & 63) | ((sc[s + 4] >> 4) << 6));
          b[i].scales[s + 4] = static_cast<uint8_t>((mn[s] & 63) | ((mn[s + 4] >> 4) << 6));
          b[i].scales[s + 8] = static_cast<uint8_t>((sc[s + 4] & 0xF) | ((mn[s + 4] & 0xF) << 4));
        }
        for (auto& q : b[i].qs) q = static_cast<uint8_t>(rng.next());
      }
      break;
    }
    case GgmlType::kQ6_K: {
      auto* b = reinterpret_cast<BlockQ6K*>(dst);
      for (size_t i = 0; i < n_bytes / sizeof(BlockQ6K); ++i) {
        for (auto& q : b[i].ql) q = static_cast<uint8_t>(rng.next());
        for (auto& q : b[i].qh) q = static_cast<uint8_t>(rng.next());
        for (auto& s : b[i].scales) s = static_cast<int8_t>(rng.range(16, 32));
        b[i].d = fp32_to_fp16(amp / (32.0f * 24.0f));
      }
      break;
    }
    default: std::memset(dst, 0, n_bytes); break;
  }
}

struct TypeChoice {
  GgmlType main;
  GgmlType strong;  // for output, attn_v, ffn_down in mixes
  uint32_t file_type;
};

Result<TypeChoice> parse_type(const std::string& t) {
  if (t == "f32") return TypeChoice{GgmlType::kF32, GgmlType::kF32, 0};
  if (t == "f16") return TypeChoice{GgmlType::kF16, GgmlType::kF16, 1};
  if (t == "bf16") return TypeChoice{GgmlType::kBF16, GgmlType::kBF16, 32};
  if (t == "q8_0") return TypeChoice{GgmlType::kQ8_0, GgmlType::kQ8_0, 7};
  if (t == "q4_0") return TypeChoice{GgmlType::kQ4_0, GgmlType::kQ4_0, 2};
  if (t == "q4_k") return TypeChoice{GgmlType::kQ4_K, GgmlType::kQ4_K, 14};
  if (t == "q6_k") return TypeChoice{GgmlType::kQ6_K, GgmlType::kQ6_K, 18};
  if (t == "q4_k_m") return TypeChoice{GgmlType::kQ4_K, GgmlType::kQ6_K, 15};
  return invalid_argument(fmt::format("unknown type '{}' (f32 f16 bf16 q8_0 q4_0 q4_k q6_k q4_k_m)", t));
}

// llama3 rope frequency factors (convert_hf_to_gguf.py, LlamaModel.generate_extra_tensors).
std::vector<float> llama3_rope_freqs(int64_t n_rot, float base) {
  const double factor = 32.0, low_f = 1.0, high_f = 4.0, old_ctx = 8192.0;
  const double low_wavelen = old_ctx / low_f, high_wavelen = old_ctx / high_f;
  std::vector<float> ff;
  for (int64_t i = 0; i < n_rot; i += 2) {
    const double freq = 1.0 / std::pow(static_cast<double>(base), static_cast<double>(i) / static_cast<double>(n_rot));
    const double wavelen = 2 * M_PI / freq;
    if (wavelen < high_wavelen) ff.push_back(1.0f);
    else if (wavelen > low_wavelen) ff.push_back(static_cast<float>(factor));
    else {
      const double smooth = (old_ctx / wavelen - low_f) / (high_f - low_f);
      ff.push_back(static_cast<float>(1.0 / ((1 - smooth) / factor + smooth)));
    }
  }
  return ff;
}

}  // namespace

Status synth_model(const SynthOptions& o) {
  const SynthShape* shape = nullptr;
  for (const auto& s : synth_shapes())
    if (s.name == o.shape) shape = &s;
  if (!shape) {
    std::string names;
    for (const auto& s : synth_shapes()) names += (names.empty() ? "" : ", ") + s.name;
    return invalid_argument(fmt::format("unknown shape '{}' (known: {})", o.shape, names));
  }
  if (o.arch != "llama" && o.arch != "qwen2")
    return invalid_argument(fmt::format("unknown arch '{}' (llama, qwen2)", o.arch));
  NC_ASSIGN_OR_RETURN(TypeChoice tc, parse_type(o.type));
  const auto& mt = ggml_traits(tc.main);
  if (shape->n_embd % mt.block_elems != 0 || shape->n_ff % mt.block_elems != 0)
    return invalid_argument(fmt::format("shape {} (n_embd {}, n_ff {}) is not a multiple of {}'s block size {}",
                                        shape->name, shape->n_embd, shape->n_ff, o.type, mt.block_elems));
  // "builtin:N" makes a placeholder vocabulary of N tokens (for fuzz seeds and tests of the loader).
  std::unique_ptr<GgufFile> vocab;
  int64_t n_vocab = 0;
  const bool demo_vocab = o.vocab_path == "demo";
  if (demo_vocab) {
    n_vocab = 0;  // set when written
  } else if (o.vocab_path.rfind("builtin:", 0) == 0) {
    n_vocab = std::atoll(o.vocab_path.c_str() + 8);
    if (n_vocab <= 0 || n_vocab > (1 << 20)) return invalid_argument("builtin:N needs 0 < N <= 2^20");
  } else {
    NC_ASSIGN_OR_RETURN(vocab, GgufFile::open(o.vocab_path));
    const GgufValue* tokens = vocab->find("tokenizer.ggml.tokens");
    if (!tokens || tokens->type != GgufType::kArray || tokens->elem_type != GgufType::kString || tokens->n_elems == 0)
      return invalid_argument(o.vocab_path + ": no tokenizer.ggml.tokens string array");
    n_vocab = static_cast<int64_t>(tokens->n_elems);
  }

  const std::string a = o.arch;
  const int64_t E = shape->n_embd, L = shape->n_layer, H = shape->n_head, Hkv = shape->n_head_kv, F = shape->n_ff;
  const int64_t D = E / H, Ekv = D * Hkv;
  const bool tied = o.tied >= 0 ? o.tied == 1 : o.arch == "qwen2";
  const bool l3rope = o.llama3_rope >= 0 ? o.llama3_rope == 1 : shape->llama3_rope;

  GgufWriter w;
  w.set_string("general.architecture", a);
  w.set_string("general.name", fmt::format("synthetic-{}-{}-{} (random weights)", a, shape->name, o.type));
  w.set_u32("general.file_type", tc.file_type);
  w.set_u32("general.quantization_version", 2);
  w.set_u32(a + ".context_length", static_cast<uint32_t>(o.n_ctx));
  w.set_u32(a + ".embedding_length", static_cast<uint32_t>(E));
  w.set_u32(a + ".block_count", static_cast<uint32_t>(L));
  w.set_u32(a + ".feed_forward_length", static_cast<uint32_t>(F));
  w.set_u32(a + ".attention.head_count", static_cast<uint32_t>(H));
  w.set_u32(a + ".attention.head_count_kv", static_cast<uint32_t>(Hkv));
  w.set_u32(a + ".rope.dimension_count", static_cast<uint32_t>(D));
  w.set_f32(a + ".attention.layer_norm_rms_epsilon", 1e-5f);
  w.set_f32(a + ".rope.freq_base", shape->rope_base);
  if (demo_vocab) n_vocab = add_demo_tokenizer(w);
  w.set_u32(a + ".vocab_size", static_cast<uint32_t>(n_vocab));
  if (demo_vocab) {
  } else if (vocab) {
    for (const auto& kv : vocab->kvs())
      if (kv.key.substr(0, 10) == "tokenizer.") w.set_value(std::string(kv.key), kv.value);
  } else {
    std::vector<std::string> toks;
    for (int64_t i = 0; i < n_vocab; ++i) toks.push_back(fmt::format("<t{}>", i));
    w.set_string("tokenizer.ggml.model", "none");
    w.set_array_string("tokenizer.ggml.tokens", std::move(toks));
  }
  if (!o.chat_template.empty()) w.set_string("tokenizer.chat_template", o.chat_template);

  // Magnitudes chosen so activations stay O(1): a row of E uniform weights of amplitude amp
  // dotted with a unit-rms vector gives ~amp*sqrt(E/3).
  const float amp = 1.7f / std::sqrt(static_cast<float>(E));
  const float amp_ff = 1.7f / std::sqrt(static_cast<float>(F));
  const uint64_t seed = o.seed;
  auto add = [&](const std::string& name, GgmlType type, int64_t cols, int64_t rows, float a_) {
    w.add_tensor(name, type, {cols, rows}, [=](uint8_t* dst, size_t n) {
      Rng rng{name_seed(seed, name)};
      fill_random(type, dst, n, rng, a_);
    });
  };
  auto vec = [&](const std::string& name, int64_t n, float centre, float spread) {
    w.add_tensor(name, GgmlType::kF32, {n}, [=](uint8_t* dst, size_t) {
      Rng rng{name_seed(seed, name)};
      auto* p = reinterpret_cast<float*>(dst);
      for (int64_t i = 0; i < n; ++i) p[i] = centre + rng.uniform(spread);
    });
  };
  add("token_embd.weight", tc.main, E, n_vocab, 1.0f);
  if (l3rope) {
    auto ff = llama3_rope_freqs(D, shape->rope_base);
    w.add_tensor("rope_freqs.weight", GgmlType::kF32, {static_cast<int64_t>(ff.size())},
                 [ff](uint8_t* dst, size_t n) { std::memcpy(dst, ff.data(), n); });
  }
  for (int64_t il = 0; il < L; ++il) {
    const std::string p = fmt::format("blk.{}.", il);
    vec(p + "attn_norm.weight", E, 1.0f, 0.1f);
    add(p + "attn_q.weight", tc.main, E, E, amp);
    add(p + "attn_k.weight", tc.main, E, Ekv, amp);
    add(p + "attn_v.weight", tc.strong, E, Ekv, amp);
    if (a == "qwen2") {
      vec(p + "attn_q.bias", E, 0.0f, 0.3f);
      vec(p + "attn_k.bias", Ekv, 0.0f, 0.3f);
      vec(p + "attn_v.bias", Ekv, 0.0f, 0.1f);
    }
    add(p + "attn_output.weight", tc.main, E, E, amp);
    vec(p + "ffn_norm.weight", E, 1.0f, 0.1f);
    add(p + "ffn_gate.weight", tc.main, E, F, amp);
    add(p + "ffn_up.weight", tc.main, E, F, amp);
    add(p + "ffn_down.weight", tc.strong, F, E, amp_ff);
  }
  vec("output_norm.weight", E, 1.0f, 0.1f);
  if (!tied) add("output.weight", tc.strong, E, n_vocab, 3.0f * amp);
  return w.write(o.out_path);
}

Status synth_lora(const SynthLoraOptions& o) {
  NC_ASSIGN_OR_RETURN(auto base, GgufFile::open(o.base_path));
  NC_ASSIGN_OR_RETURN(std::string_view arch, base->get_string("general.architecture"));
  if (o.rank <= 0 || o.rank > 1024) return invalid_argument("rank must be in 1..1024");
  GgmlType a_type = GgmlType::kF32, b_type = GgmlType::kF32;
  if (o.type == "f16") a_type = b_type = GgmlType::kF16;
  else if (o.type == "bf16") a_type = b_type = GgmlType::kBF16;
  else if (o.type == "q8_0") a_type = GgmlType::kQ8_0, b_type = o.rank % 32 == 0 ? GgmlType::kQ8_0 : GgmlType::kF16;
  else if (o.type != "f32") return invalid_argument(fmt::format("unknown adapter type '{}' (f32 f16 bf16 q8_0)", o.type));
  std::vector<std::string> suffixes;
  for (size_t at = 0; at <= o.targets.size();) {
    const size_t comma = std::min(o.targets.find(',', at), o.targets.size());
    const std::string t = o.targets.substr(at, comma - at);
    if (t == "qkvo") suffixes.insert(suffixes.end(), {"attn_q.weight", "attn_k.weight", "attn_v.weight", "attn_output.weight"});
    else if (t == "mlp") suffixes.insert(suffixes.end(), {"ffn_gate.weight", "ffn_up.weight", "ffn_down.weight"});
    else if (t == "output") suffixes.push_back("output.weight");
    else return invalid_argument(fmt::format("unknown adapter target '{}' (qkvo, mlp, output)", t));
    at = comma + 1;
  }
  GgufWriter w;
  w.set_string("general.architecture", std::string(arch));
  w.set_string("general.type", "adapter");
  w.set_string("general.name", "neocloud synthetic LoRA");
  w.set_string("adapter.type", "lora");
  w.set_f32("adapter.lora.alpha", o.alpha);
  int n = 0;
  for (const GgufTensorInfo& t : base->tensors()) {
    const std::string name(t.name);
    bool wanted = false;
    for (const std::string& sfx : suffixes) wanted |= name == sfx || (name.starts_with("blk.") && name.ends_with("." + sfx));
    if (!wanted || t.ne[2] != 1 || t.ne[3] != 1) continue;
    const int64_t n_in = t.ne[0], n_out = t.ne[1], r = o.rank;
    // |A x| ~ 0.5 |x| per rank row and B's rows of amplitude 0.4/sqrt(r): with alpha/r the adapter adds
    // an output of roughly the base's own size to each matrix: clearly visible, still O(1).
    const float amp_a = 0.9f / std::sqrt(static_cast<float>(n_in)), amp_b = 0.15f / std::sqrt(static_cast<float>(r));
    w.add_tensor(name + ".lora_a", a_type, {n_in, r}, [=, seed = name_seed(o.seed, name + ".lora_a")](uint8_t* dst, size_t nb) {
      Rng rng{seed};
      fill_random(a_type, dst, nb, rng, amp_a);
    });
    w.add_tensor(name + ".lora_b", b_type, {r, n_out}, [=, seed = name_seed(o.seed, name + ".lora_b")](uint8_t* dst, size_t nb) {
      Rng rng{seed};
      fill_random(b_type, dst, nb, rng, amp_b);
    });
    ++n;
  }
  if (n == 0) return invalid_argument(fmt::format("the base model has none of the targeted matrices ({})", o.targets));
  return w.write(o.out_path);
}

}  // namespace nc::engine
