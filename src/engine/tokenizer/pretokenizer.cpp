#include "engine/tokenizer/pretokenizer.h"

#include <fmt/format.h>

#include <initializer_list>

namespace nc::engine {
namespace {

// The patterns, as regex source text.
constexpr const char* kContractionsCased = R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]))";
const std::string kLlama3 = std::string(kContractionsCased) +
    R"(|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const std::string kQwen2 = std::string(kContractionsCased) +
    R"(|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const std::string kQwen35 = std::string(kContractionsCased) +
    R"(|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const std::string kMinicpm5 = std::string(kContractionsCased) +
    R"(|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}+| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kGpt2 = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))";
constexpr const char* kDeepseekLlmLetters = R"~(\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-ώᾀ-ᾴᾶ-ᾼιῂ-ῄῆ-ῌῐ-ΐῖ-Ίῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤΩℨK-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+)~";
constexpr const char* kDeepseekLlmPunct = R"~(\s?[!-/:-~！-／：-～‘-‟　-。]+)~";
constexpr const char* kCjkHangul = R"~([一-龥ࠀ-一가-퟿]+)~";
constexpr const char* kDeepseek3 =
    R"([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const std::string kGpt4o = std::string(R"([^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+)") +
    kContractionsCased + R"(?|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*)" + kContractionsCased +
    R"(?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kTekken =
    R"([^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kPoro = R"~( ?[^(\s|.,!?…。，、।۔،)]+)~";
const std::string kSeedCoder = std::string(kContractionsCased) +
    R"(|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1}| ?[^\s\p{L}\p{N}\r\n]+|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kBailing =
    R"('(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+)";
constexpr const char* kNewlines = R"([^\n]+|[\n]+)";

bool in(std::string_view name, std::initializer_list<std::string_view> names) {
  for (auto n : names) {
    if (n == name) return true;
  }
  return false;
}

}  // namespace

Result<PreTokenizerSpec> pre_tokenizer_for(std::string_view name) {
  PreTokenizerSpec s;
  auto no_clean = [&] { s.clean_spaces = false; };
  if (name.empty() || name == "default") {
    s.type = "default";
    s.regexes = {R"([\p{P}\$\+<=>\^~\|]+)", kGpt2, R"(\p{N}+)", "[0-9][0-9][0-9]"};
  } else if (in(name, {"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2",
                       "jina-v5-nano"})) {
    s.type = "llama3";
    s.regexes = {kLlama3};
    s.ignore_merges = true;
    s.force_add_bos = true;
  } else if (in(name, {"dbrx", "smaug-bpe"})) {
    s.type = "llama3";
    s.regexes = {kLlama3};
  } else if (in(name, {"glm4", "chatglm-bpe"})) {
    s.type = "chatglm4";
    s.regexes = {kLlama3};
    s.no_bos = true;
  } else if (in(name, {"qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2"})) {
    s.type = "qwen2";
    s.regexes = {kQwen2};
    no_clean();
  } else if (name == "megrez" || name == "stablelm2") {
    s.type = "qwen2";
    s.regexes = {kQwen2};
  } else if (in(name, {"hunyuan", "solar-open", "grok-2"})) {
    s.type = "qwen2";
    s.regexes = {kQwen2};
    no_clean();
  } else if (name == "qwen35") {
    s.type = "qwen35";
    s.regexes = {kQwen35};
    no_clean();
  } else if (name == "minicpm5") {
    s.type = "minicpm5";
    s.regexes = {R"(\p{N}{1,3})", kMinicpm5};
    s.ignore_merges = true;
  } else if (in(name, {"gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0",
                       "mellum", "modern-bert", "exaone4", "mpt", "olmo", "jais"})) {
    s.type = "gpt2";
    s.regexes = {kGpt2};
  } else if (in(name, {"jina-v1-en", "jina-v2-code", "roberta-bpe"})) {
    s.type = "gpt2";
    s.regexes = {kGpt2};
    s.add_sep = true;
  } else if (in(name, {"trillion", "granite-docling"})) {
    s.type = "gpt2";
    s.regexes = {kGpt2};
    no_clean();
  } else if (in(name, {"starcoder", "refact", "codeshell", "exaone", "minerva-7b", "mellum2"})) {
    s.type = "starcoder";
    s.regexes = {R"(\p{N})", kGpt2};
  } else if (in(name, {"command-r", "smollm"})) {
    s.type = "starcoder";
    s.regexes = {R"(\p{N})", kGpt2};
    no_clean();
  } else if (name == "falcon") {
    s.type = "falcon";
    s.regexes = {R"([\p{P}\$\+<=>\^~\|`]+)", kGpt2, "[0-9][0-9][0-9]"};
  } else if (name == "deepseek-llm") {
    s.type = "deepseek-llm";
    s.regexes = {R"([\r\n])", kDeepseekLlmLetters, kDeepseekLlmPunct, R"(\s+$)", kCjkHangul, R"(\p{N}+)"};
    no_clean();
  } else if (name == "deepseek-coder") {
    s.type = "deepseek-coder";
    s.regexes = {R"([\r\n])", R"(\s?\p{L}+)", R"(\s?\p{P}+)", kCjkHangul, R"(\p{N})"};
    no_clean();
  } else if (in(name, {"deepseek-v3", "hunyuan-dense", "joyai-llm"})) {
    s.type = "deepseek-v3";
    s.regexes = {R"(\p{N}{1,3})", R"~([一-龥぀-ゟ゠-ヿ]+)~", kDeepseek3};
    no_clean();
  } else if (in(name, {"gpt-4o", "llama4", "kanana2", "talkie", "minimax-m2"})) {
    s.type = "gpt4o";
    s.regexes = {kGpt4o};
    no_clean();
  } else if (name == "tekken") {
    s.type = "tekken";
    s.regexes = {kTekken};
    no_clean();
    s.ignore_merges = true;
    s.force_add_bos = true;
  } else if (in(name, {"poro-chat", "bloom", "gpt3-finnish"})) {
    s.type = "poro";
    s.regexes = {kPoro};
    if (name == "poro-chat") no_clean();
  } else if (name == "viking") {
    s.type = "viking";
    s.regexes = {kPoro, R"(\p{N})"};
    no_clean();
  } else if (name == "seed-coder") {
    s.type = "seed-coder";
    s.regexes = {kSeedCoder};
    no_clean();
  } else if (in(name, {"bailingmoe", "bailingmoe2", "llada-moe"})) {
    s.type = "bailingmoe";
    s.regexes = {kBailing};
    no_clean();
  } else if (name == "laguna") {
    s.type = "laguna";
    s.regexes = {kNewlines, kQwen2};
    no_clean();
  } else if (in(name, {"gemma4", "granite-embed-multi-311m"})) {
    s.type = "gemma4";
    s.regexes = {kNewlines};
    s.escape_whitespaces = true;
    s.byte_encode = false;
    s.gemma4_newlines = true;
  } else if (name == "sarvam-moe") {
    s.type = "sarvam-moe";
    s.regexes = {kNewlines};
    s.escape_whitespaces = true;
    s.byte_encode = false;
    no_clean();
  } else if (name == "whitespace") {
    s.type = "whitespace";
    s.regexes = {R"(\S+)"};
    s.byte_encode = false;
  } else if (in(name, {"youtu", "jais-2", "chameleon", "granite-embed-multi-97m", "tiny_aya", "cohere2moe",
                       "superbpe", "kimi-k2", "afmoe", "exaone-moe"})) {
    return unimplemented(fmt::format("pre-tokenizer '{}' is not implemented yet", name));
  } else {
    return invalid_argument(fmt::format("unknown pre-tokenizer type (tokenizer.ggml.pre): '{}'", name));
  }
  return s;
}

}  // namespace nc::engine
