// ChatFormatter: turns /v1/chat/completions messages into a model's prompt text. It renders the GGUF's
// tokenizer.chat_template with the Jinja engine (src/engine/chat) as transformers' apply_chat_template
// and llama.cpp's server do (bos_token/eos_token set, a leading BOS text dropped when the tokenizer adds
// BOS itself, extra chat_template_kwargs); a model without a template, or with one the engine cannot
// parse, gets a built-in format picked from the template's text (llama3, llama2 or chatml).
//
// Ownership: a value; copies share the parsed template. Thread-safety: render() is const and may be
// called from any thread.
#pragma once
#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "engine/chat/chat_template.h"
#include "engine/tokenizer/vocab.h"

namespace nc::server {

// One validated message: text content (text parts joined with "\n", as llama.cpp does) plus the
// optional fields templates read.
struct ChatMessage {
  std::string role, content;
  std::string name, tool_call_id;  // empty: absent
};

class ChatFormatter {
 public:
  // `gguf_template`: tokenizer.chat_template ("" if the file has none).
  static ChatFormatter create(const engine::Vocab& vocab, const std::string& gguf_template);

  // The prompt text. InvalidArgument when the template rejects the conversation (its raise_exception
  // message, e.g. roles that do not alternate) or the conversation exceeds its render limits; a template
  // that reaches a construct the engine lacks falls back to the built-in format. `kwargs`: extra
  // template variables (an object or null).
  Result<std::string> render(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                             const nlohmann::json& kwargs) const;

  // "jinja" or the built-in family ("llama3", "llama2", "chatml"), and why a template was not used.
  const std::string& kind() const { return kind_; }
  const std::string& fallback_reason() const { return fallback_reason_; }

 private:
  std::optional<chat::ChatTemplate> template_;
  std::string kind_ = "chatml", fallback_reason_;
  std::string family_ = "chatml";  // the built-in format used without (or instead of) the template
  std::string bos_text_, eos_text_;
  bool strip_bos_ = false;
};

// The built-in formats, used without a usable template.
std::string chat_template_family(const engine::Vocab& vocab, const std::string& gguf_template);
std::string render_chat(const std::string& family, const std::vector<ChatMessage>& messages, bool add_generation_prompt);

}  // namespace nc::server
