#include "engine/model/demo_vocab.h"

#include <fmt/format.h>

#include <set>
#include <string>
#include <vector>

namespace nc::engine {
namespace {

// Common English words; each becomes "▁word" with every prefix, so SPM's pairwise merges reach it.
constexpr const char* kWords[] = {
    "the", "of", "and", "to", "in", "is", "you", "that", "it", "he", "was", "for", "on", "are", "as", "with",
    "his", "they", "at", "be", "this", "have", "from", "or", "one", "had", "by", "word", "but", "not", "what",
    "all", "were", "we", "when", "your", "can", "said", "there", "use", "an", "each", "which", "she", "do",
    "how", "their", "if", "will", "up", "other", "about", "out", "many", "then", "them", "these", "so", "some",
    "her", "would", "make", "like", "him", "into", "time", "has", "look", "two", "more", "write", "go", "see",
    "number", "no", "way", "could", "people", "my", "than", "first", "water", "been", "call", "who", "oil",
    "its", "now", "find", "long", "down", "day", "did", "get", "come", "made", "may", "part", "hello", "world",
    "model", "token", "cloud", "answer", "question", "story", "tell", "me", "please", "thank", "why", "sky",
    "blue", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "once", "upon", "system", "user",
    "assistant", "help", "good", "new", "name", "code", "data", "test", "random", "weights", "demo"};

}  // namespace

int64_t add_demo_tokenizer(GgufWriter& w) {
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t> types;  // 1 normal, 2 unknown, 3 control, 5 unused, 6 byte
  auto add = [&](std::string text, float score, int32_t type) {
    tokens.push_back(std::move(text));
    scores.push_back(score);
    types.push_back(type);
  };
  add("<unk>", 0.0f, 2);
  add("<s>", 0.0f, 3);
  add("</s>", 0.0f, 3);
  for (int b = 0; b < 256; ++b) add(fmt::format("<0x{:02X}>", b), 0.0f, 6);
  // Single characters (printable ASCII and the space marker) and word pieces. A piece's score grows
  // with its length, so merges prefer longer pieces, as in a trained SentencePiece model.
  const std::string space = "\xE2\x96\x81";  // U+2581
  std::set<std::string> seen;
  auto piece = [&](const std::string& p, int n_chars) {
    if (seen.insert(p).second) add(p, -1000.0f + 10.0f * n_chars - static_cast<float>(tokens.size()) * 1e-3f, 1);
  };
  piece(space, 1);
  for (int c = 33; c < 127; ++c) piece(std::string(1, static_cast<char>(c)), 1);
  for (int c = 33; c < 127; ++c) piece(space + static_cast<char>(c), 2);
  for (const char* word : kWords) {
    const std::string s(word);
    for (size_t n = 1; n <= s.size(); ++n) {
      piece(space + s.substr(0, n), static_cast<int>(n) + 1);
      if (n >= 2) piece(s.substr(0, n), static_cast<int>(n));
    }
  }
  add("<|im_start|>", 0.0f, 3);
  const int32_t im_end = static_cast<int32_t>(tokens.size());
  add("<|im_end|>", 0.0f, 3);
  // Pad to a multiple of 64 (friendly to every kernel's row blocking).
  while (tokens.size() % 64 != 0) add(fmt::format("<pad{}>", tokens.size()), -1e9f, 5);  // 5: unused

  const int64_t n = static_cast<int64_t>(tokens.size());
  w.set_string("tokenizer.ggml.model", "llama");
  w.set_string("tokenizer.ggml.pre", "default");
  w.set_array_string("tokenizer.ggml.tokens", std::move(tokens));
  w.set_array_f32("tokenizer.ggml.scores", std::move(scores));
  w.set_array_i32("tokenizer.ggml.token_type", std::move(types));
  w.set_u32("tokenizer.ggml.bos_token_id", 1);
  w.set_u32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(im_end));
  w.set_u32("tokenizer.ggml.unknown_token_id", 0);
  w.set_bool("tokenizer.ggml.add_bos_token", true);
  w.set_bool("tokenizer.ggml.add_eos_token", false);
  w.set_string("tokenizer.chat_template",
               "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
               "'<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
               "{% endif %}");
  return n;
}

}  // namespace nc::engine
