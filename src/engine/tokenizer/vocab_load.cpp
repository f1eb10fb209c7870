// Vocab::load: reads tokenizer.ggml.* and applies llama.cpp's defaults, per-family flags, special-token
// detection and attribute fix-ups (src/llama-vocab.cpp, llama_vocab::impl::load).
#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include "engine/gguf/gguf.h"
#include "engine/tokenizer/pretokenizer.h"
#include "engine/tokenizer/unicode.h"
#include "engine/tokenizer/vocab.h"

namespace nc::engine {
namespace {

constexpr std::string_view kPrefix = "tokenizer.ggml.";

std::string key(std::string_view k) { return std::string(kPrefix) + std::string(k); }

// Optional token id key: absent -> keep `id`; present -> must be an unsigned/int scalar in range.
Status read_token_id(const GgufFile& g, std::string_view k, size_t n_tokens, TokenId& id) {
  const GgufValue* v = g.find(key(k));
  if (!v) return Status::ok();
  int64_t x;
  switch (v->type) {
    case GgufType::kU8: case GgufType::kU16: case GgufType::kU32: case GgufType::kU64: x = static_cast<int64_t>(v->u); break;
    case GgufType::kI8: case GgufType::kI16: case GgufType::kI32: case GgufType::kI64: x = v->i; break;
    default:
      return invalid_argument(fmt::format("{} must be an integer, found {}", key(k), gguf_type_name(v->type)));
  }
  // As llama.cpp: an out-of-range id is ignored (with the default kept).
  if (x >= 0 && static_cast<size_t>(x) < n_tokens) id = static_cast<TokenId>(x);
  return Status::ok();
}

Status read_bool(const GgufFile& g, std::string_view k, bool& out) {
  const GgufValue* v = g.find(key(k));
  if (!v) return Status::ok();
  if (v->type != GgufType::kBool) {
    return invalid_argument(fmt::format("{} must be a bool, found {}", key(k), gguf_type_name(v->type)));
  }
  out = v->u != 0;
  return Status::ok();
}


}  // namespace

TokenId Vocab::find(std::string_view text) const {
  auto it = text_to_id_.find(text);
  return it == text_to_id_.end() ? kNoToken : it->second;
}

TokenId Vocab::find_byte_token(uint8_t b) const {
  static const char* hex = "0123456789ABCDEF";
  const char buf[6] = {'<', '0', 'x', hex[b >> 4], hex[b & 15], '>'};
  return find(std::string_view(buf, 6));
}

TokenId Vocab::byte_to_token(uint8_t b) const {
  const TokenId id = find_byte_token(b);
  if (id != kNoToken) return id;
  // Fallback: the byte as a 1-character token (as llama.cpp's byte_to_token).
  const char c = static_cast<char>(b);
  return find(std::string_view(&c, 1));
}

Result<std::unique_ptr<Vocab>> Vocab::load(const GgufFile& g) {
  std::unique_ptr<Vocab> v(new Vocab());
  NC_ASSIGN_OR_RETURN(std::string_view model, g.get_string(key("model")));
  std::string_view pre;
  if (const GgufValue* p = g.find(key("pre"))) {
    if (p->type != GgufType::kString) return invalid_argument(key("pre") + " must be a string");
    pre = p->str;
  }
  v->model_ = std::string(model);
  v->pre_ = std::string(pre);

  // ---- token list, scores, types ----
  const GgufValue* list = g.find(key("tokens"));
  if (!list) return invalid_argument("tokenizer has no token list (" + key("tokens") + ")");
  if (list->type != GgufType::kArray || list->elem_type != GgufType::kString) {
    return invalid_argument(key("tokens") + " must be an array of strings");
  }
  const size_t n = list->strings.size();
  if (n == 0) return invalid_argument(key("tokens") + " is empty");
  if (n > (size_t{1} << 31) - 1) return invalid_argument(key("tokens") + " has too many tokens");

  const GgufValue* scores = g.find(key("scores"));
  if (scores) {
    if (scores->type != GgufType::kArray ||
        (scores->elem_type != GgufType::kF32 && scores->elem_type != GgufType::kI32)) {
      return invalid_argument(key("scores") + " must be an array of f32 (or i32)");
    }
    if (scores->n_elems < n) {
      return invalid_argument(fmt::format("{} has {} entries for {} tokens", key("scores"), scores->n_elems, n));
    }
  }
  const GgufValue* types = g.find(key("token_type"));
  if (types) {
    if (types->type != GgufType::kArray || types->elem_type != GgufType::kI32) {
      return invalid_argument(key("token_type") + " must be an array of i32");
    }
    if (types->n_elems < n) {
      return invalid_argument(fmt::format("{} has {} entries for {} tokens", key("token_type"), types->n_elems, n));
    }
  }

  // ---- type and defaults ----
  PreTokenizerSpec spec;
  if (model == "llama") {
    v->type_ = VocabType::kSpm;
    v->bos_ = 1, v->eos_ = 2, v->unk_ = 0;
    v->add_space_prefix_ = true;
    v->escape_whitespaces_ = true;
    v->clean_spaces_ = false;
    v->add_bos_ = true;
    // SPM needs scores to choose merges: without them every merge would tie.
    if (!scores) return invalid_argument("SPM tokenizer (llama) without " + key("scores"));
  } else if (model == "bert") {
    v->type_ = VocabType::kWpm;
    v->bos_ = 101, v->unk_ = 100, v->sep_ = 102, v->pad_ = 0;
    v->add_sep_ = true;
    v->clean_spaces_ = true;
    v->add_bos_ = true;
  } else if (model == "gpt2" || model == "gemma4") {
    v->type_ = VocabType::kBpe;
    if (model == "gpt2") {
      v->bos_ = 11, v->eos_ = 11;
    }
    NC_ASSIGN_OR_RETURN(spec, pre_tokenizer_for(model == "gemma4" ? std::string_view("gemma4") : pre));
    v->add_space_prefix_ = false;
    v->escape_whitespaces_ = spec.escape_whitespaces;
    v->clean_spaces_ = spec.clean_spaces;
    v->ignore_merges_ = spec.ignore_merges;
    v->byte_encode_ = spec.byte_encode;
    v->gemma4_newlines_ = spec.gemma4_newlines;
    if (spec.force_add_bos) v->add_bos_ = true;
    if (spec.add_sep) v->add_sep_ = true;
    if (spec.no_bos) v->bos_ = kNoToken;
    for (const auto& r : spec.regexes) {
      NC_ASSIGN_OR_RETURN(Regex re, Regex::compile(r));
      v->pre_regexes_.push_back(std::move(re));
    }
  } else if (model == "t5" || model == "rwkv" || model == "plamo2" || model == "hybriddna" || model == "whitespace") {
    return unimplemented(fmt::format("tokenizer model '{}' is not implemented yet (SPM, BPE and WordPiece are)", model));
  } else {
    return invalid_argument(fmt::format("unknown tokenizer model ({}): '{}'", key("model"), model));
  }
  // Default ids must be in range.
  for (TokenId* id : {&v->bos_, &v->eos_, &v->unk_, &v->sep_, &v->pad_}) {
    if (*id >= 0 && static_cast<size_t>(*id) >= n) *id = kNoToken;
  }
  NC_RETURN_IF_ERROR(read_bool(g, "add_space_prefix", v->add_space_prefix_));

  v->tokens_.resize(n);
  for (size_t i = 0; i < n; ++i) {
    TokenData& t = v->tokens_[i];
    t.text = list->strings[i].empty() ? "[EMPTY_" + std::to_string(i) + "]" : std::string(list->strings[i]);
    if (scores) {
      t.score = scores->elem_type == GgufType::kF32 ? static_cast<float>(scores->elem_float(i))
                                                   : static_cast<float>(scores->elem_int(i));
    }
    if (types) {
      switch (types->elem_int(i)) {
        case 1: t.attr = kAttrNormal; break;
        case 2: t.attr = kAttrUnknown; break;
        case 3: t.attr = kAttrControl; break;
        case 4: t.attr = kAttrUserDefined; break;
        case 5: t.attr = kAttrUnused; break;
        case 6: t.attr = kAttrByte; break;
        case 0: t.attr = kAttrUndefined; break;
        default:
          return invalid_argument(fmt::format("{}[{}] = {} is not a token type (0-6)", key("token_type"), i,
                                              types->elem_int(i)));
      }
      if (t.attr == kAttrByte) {
        // A byte token must spell <0xNN>.
        const std::string& s = t.text;
        if (s.size() != 6 || s.compare(0, 3, "<0x") != 0 || s[5] != '>' || !std::isxdigit(static_cast<unsigned char>(s[3])) ||
            !std::isxdigit(static_cast<unsigned char>(s[4]))) {
          return invalid_argument(fmt::format("{}[{}] is a byte token but its text is not <0xNN>", key("token_type"), i));
        }
      }
    }
  }
  for (size_t i = 0; i < n; ++i) {
    v->text_to_id_[v->tokens_[i].text] = static_cast<TokenId>(i);  // later duplicates win, as llama.cpp
    v->max_token_len_ = std::max(v->max_token_len_, v->tokens_[i].text.size());
  }

  // ---- merges ----
  if (v->type_ == VocabType::kBpe) {
    const GgufValue* merges = g.find(key("merges"));
    if (!merges) return invalid_argument("BPE tokenizer without " + key("merges"));
    if (merges->type != GgufType::kArray || merges->elem_type != GgufType::kString) {
      return invalid_argument(key("merges") + " must be an array of strings");
    }
    v->merges_.reserve(merges->strings.size());
    std::string joined;
    for (size_t r = 0; r < merges->strings.size(); ++r) {
      std::string_view m = merges->strings[r];
      const size_t sp = m.size() > 1 ? m.find(' ', 1) : std::string_view::npos;
      if (sp == std::string_view::npos) {
        return invalid_argument(fmt::format("{}[{}] = '{}' is not two tokens separated by a space", key("merges"), r, m));
      }
      const std::string_view a = m.substr(0, sp), b = m.substr(sp + 1);
      joined.assign(a);
      joined.append(b);
      const TokenId ia = v->find(a), ib = v->find(b), ij = v->find(joined);
      if (ia == kNoToken || ib == kNoToken || ij == kNoToken) {
        return invalid_argument(fmt::format("{}[{}] = '{}' references a token that is not in the vocabulary ('{}')",
                                            key("merges"), r, m, ia == kNoToken ? a : ib == kNoToken ? b : std::string_view(joined)));
      }
      const uint64_t k = (static_cast<uint64_t>(static_cast<uint32_t>(ia)) << 32) | static_cast<uint32_t>(ib);
      v->merges_.emplace(k, std::make_pair(static_cast<int32_t>(r), ij));  // first (lowest) rank wins
    }
  }

  // ---- special ids and flags from metadata ----
  for (auto [k, id] : {std::pair<std::string_view, TokenId*>{"bos_token_id", &v->bos_}, {"eos_token_id", &v->eos_},
                       {"eot_token_id", &v->eot_}, {"eom_token_id", &v->eom_}, {"unknown_token_id", &v->unk_},
                       {"seperator_token_id", &v->sep_}, {"padding_token_id", &v->pad_}}) {
    NC_RETURN_IF_ERROR(read_token_id(g, k, n, *id));
  }
  NC_RETURN_IF_ERROR(read_bool(g, "add_bos_token", v->add_bos_));
  NC_RETURN_IF_ERROR(read_bool(g, "add_eos_token", v->add_eos_));
  NC_RETURN_IF_ERROR(read_bool(g, "add_sep_token", v->add_sep_));
  if (spec.type == "gemma4") v->add_bos_ = true;
  if (v->type_ == VocabType::kWpm) {
    NC_RETURN_IF_ERROR(read_bool(g, "lowercase", v->wpm_lowercase_));
    v->wpm_strip_accents_ = v->wpm_lowercase_;
    NC_RETURN_IF_ERROR(read_bool(g, "strip_accents", v->wpm_strip_accents_));
  }
  if (v->add_bos_ && v->bos_ == kNoToken && v->type_ != VocabType::kWpm) {
    return invalid_argument("the tokenizer adds a BOS token but has no valid " + key("bos_token_id"));
  }
  if (v->add_eos_ && v->eos_ == kNoToken) {
    return invalid_argument("the tokenizer adds an EOS token but has no valid " + key("eos_token_id"));
  }
  if (v->type_ == VocabType::kWpm && (v->bos_ == kNoToken || v->sep_ == kNoToken || v->unk_ == kNoToken)) {
    return invalid_argument("WordPiece tokenizer needs valid BOS ([CLS]), separator ([SEP]) and unknown token ids");
  }

  // ---- text-detected special tokens (end of turn, FIM), as llama.cpp: they become control tokens ----
  auto mark_control = [&](TokenId id) { v->tokens_[id].attr |= kAttrControl; };
  auto detect = [&](TokenId& slot, std::initializer_list<std::string_view> names) {
    if (slot != kNoToken) return;
    for (auto name : names) {
      TokenId id = v->find(name);
      if (id != kNoToken) {
        slot = id;
        mark_control(id);
        return;
      }
    }
  };
  detect(v->eot_, {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>", "<EOT>",
                   "_<EOT>", "[EOT]", "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>", "<end_of_utterance>"});
  detect(v->eom_, {"<|eom_id|>"});
  TokenId fim_pre = kNoToken, fim_suf = kNoToken, fim_mid = kNoToken, fim_pad = kNoToken, fim_rep = kNoToken,
          fim_sep = kNoToken;
  for (auto [k, id] : {std::pair<std::string_view, TokenId*>{"fim_pre_token_id", &fim_pre}, {"fim_suf_token_id", &fim_suf},
                       {"fim_mid_token_id", &fim_mid}, {"fim_pad_token_id", &fim_pad}, {"fim_rep_token_id", &fim_rep},
                       {"fim_sep_token_id", &fim_sep}, {"prefix_token_id", &fim_pre}, {"suffix_token_id", &fim_suf},
                       {"middle_token_id", &fim_mid}}) {
    NC_RETURN_IF_ERROR(read_token_id(g, k, n, *id));
  }
  detect(fim_pre, {"<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<\xef\xbd\x9c" "fim\xe2\x96\x81" "begin\xef\xbd\x9c>", "<PRE>",
                   "\xe2\x96\x81<PRE>", "<|code_prefix|>", "<|prefix|>"});
  detect(fim_suf, {"<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<\xef\xbd\x9c" "fim\xe2\x96\x81hole\xef\xbd\x9c>", "<SUF>",
                   "\xe2\x96\x81<SUF>", "<|code_suffix|>", "<|suffix|>"});
  detect(fim_mid, {"<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<\xef\xbd\x9c" "fim\xe2\x96\x81" "end\xef\xbd\x9c>", "<MID>",
                   "\xe2\x96\x81<MID>", "<|code_middle|>", "<|middle|>"});
  detect(fim_pad, {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"});
  detect(fim_rep, {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"});
  detect(fim_sep, {"<|file_sep|>"});
  for (TokenId id : {fim_pad, fim_rep, fim_sep}) {
    if (id != kNoToken) v->eog_.insert(id);
  }
  for (const char* name : {"<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
                           "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
                           "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
                           "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>", "[e~["}) {
    TokenId id = v->find(name);
    if (id != kNoToken) {
      v->eog_.insert(id);
      mark_control(id);
    }
  }
  for (const char* name : {"<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"}) {
    TokenId id = v->find(name);
    if (id != kNoToken) v->tokens_[id].attr = kAttrUserDefined;
  }
  for (TokenId id : {v->eos_, v->eot_, v->eom_}) {
    if (id != kNoToken) v->eog_.insert(id);
  }
  {  // <|end|> is not end-of-generation in harmony-style vocabularies.
    auto has = [&](const char* t) { TokenId id = v->find(t); return id != kNoToken && v->eog_.count(id); };
    TokenId end_id = v->find("<|end|>");
    if (end_id != kNoToken && v->eog_.count(end_id) &&
        ((has("<|return|>") && has("<|call|>")) || ((has("<|call|>") || has("<|calls|>")) && has("<|flush|>")))) {
      v->eog_.erase(end_id);
      v->tokens_[end_id].attr = kAttrUserDefined;
    }
    TokenId s_id = v->find("</s>");
    if (s_id != kNoToken && v->eog_.count(s_id) && has("<|tool_response>")) {
      v->eog_.erase(s_id);
      v->tokens_[s_id].attr = kAttrNormal;
    }
  }

  // ---- special-token partition candidates, longest first ----
  for (size_t i = 0; i < n; ++i) {
    if (v->tokens_[i].attr & (kAttrControl | kAttrUserDefined | kAttrUnknown)) v->special_tokens_.push_back(static_cast<TokenId>(i));
  }
  std::stable_sort(v->special_tokens_.begin(), v->special_tokens_.end(), [&](TokenId a, TokenId b) {
    return v->tokens_[a].text.size() > v->tokens_[b].text.size();
  });

  // ---- per-model strip attributes ----
  {
    std::string name;
    if (const GgufValue* gn = g.find("general.name"); gn && gn->type == GgufType::kString) name = std::string(gn->str);
    std::string arch;
    if (const GgufValue* ga = g.find("general.architecture"); ga && ga->type == GgufType::kString) arch = std::string(ga->str);
    std::transform(name.begin(), name.end(), name.begin(), [](char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); });
    auto contains = [](const std::string& s, std::initializer_list<std::string_view> subs) {
      for (auto x : subs) if (s.find(x) != std::string::npos) return true;
      return false;
    };
    auto set_attr = [&](const char* text, uint32_t a, bool on) {
      TokenId id = v->find(text);
      if (id == kNoToken) return;
      v->tokens_[id].attr = on ? (v->tokens_[id].attr | a) : (v->tokens_[id].attr & ~a);
    };
    if (contains(v->pre_, {"jina-v2-de", "jina-v2-es", "jina-v2-code"}) || contains(arch, {"nomic-bert-moe", "jina-bert-v3"})) {
      set_attr("<mask>", kAttrLstrip, true);
    } else if (contains(name, {"phi-3", "phi3"})) {
      for (TokenId id : v->special_tokens_) v->tokens_[id].attr |= kAttrRstrip;
      set_attr("</s>", kAttrRstrip, true);
      for (const char* t : {"<unk>", "<s>", "<|endoftext|>"}) set_attr(t, kAttrRstrip, false);
    } else if (contains(name, {"modern-bert"})) {
      set_attr("[MASK]", kAttrLstrip, true);
    }
  }

  v->piece_cache_.resize(n);
  for (size_t i = 0; i < n; ++i) v->piece_cache_[i] = v->piece_uncached(static_cast<TokenId>(i));
  return v;
}

}  // namespace nc::engine
