// ChatFormatter (chat_prompt.h): a model's chat template through the Jinja engine, or a built-in format.
#include "server/chat_prompt.h"

#include <fmt/format.h>

#include <atomic>

#include "core/log.h"

namespace nc::server {

ChatFormatter ChatFormatter::create(const engine::Vocab& vocab, const std::string& gguf_template) {
  ChatFormatter f;
  f.kind_ = f.family_ = chat_template_family(vocab, gguf_template);
  if (vocab.bos() != engine::kNoToken) f.bos_text_ = vocab.token_to_piece(vocab.bos(), true);
  if (vocab.eos() != engine::kNoToken) f.eos_text_ = vocab.token_to_piece(vocab.eos(), true);
  f.strip_bos_ = vocab.add_bos() && !f.bos_text_.empty();
  if (gguf_template.empty()) {
    f.fallback_reason_ = "the model has no tokenizer.chat_template";
    return f;
  }
  auto t = chat::ChatTemplate::parse(gguf_template);
  if (!t.is_ok()) {
    f.fallback_reason_ = t.status().message();
    return f;
  }
  f.template_ = std::move(*t);
  f.kind_ = "jinja";
  return f;
}

Result<std::string> ChatFormatter::render(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                                          const nlohmann::json& kwargs) const {
  if (!template_) return render_chat(kind_, messages, add_generation_prompt);
  nlohmann::ordered_json ctx = nlohmann::ordered_json::object();
  nlohmann::ordered_json msgs = nlohmann::ordered_json::array();
  for (const auto& m : messages) {
    nlohmann::ordered_json j = {{"role", m.role}, {"content", m.content}};
    if (!m.name.empty()) j["name"] = m.name;
    if (!m.tool_call_id.empty()) j["tool_call_id"] = m.tool_call_id;
    msgs.push_back(std::move(j));
  }
  ctx["messages"] = std::move(msgs);
  ctx["tools"] = nullptr;  // transformers and llama.cpp pass tools=None when a request has none
  ctx["add_generation_prompt"] = add_generation_prompt;
  ctx["bos_token"] = bos_text_;
  ctx["eos_token"] = eos_text_;
  if (kwargs.is_object()) {
    for (auto it = kwargs.begin(); it != kwargs.end(); ++it) {
      ctx[it.key()] = nlohmann::ordered_json::parse(
          it.value().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    }
  }
  auto out = template_->render(ctx);
  if (!out.is_ok()) {
    switch (out.status().code()) {
      case StatusCode::kInvalidArgument:
        return invalid_argument("the model's chat template rejected the messages: " + out.status().message());
      case StatusCode::kResourceExhausted:
        // The conversation is too large for the template's limits: the request's fault, not a rate limit.
        return invalid_argument("the conversation is too large to render with the model's chat template: " +
                                out.status().message());
      case StatusCode::kUnimplemented: {
        // The template reached a construct the engine lacks: serve with the built-in format rather than
        // failing every chat request to this model.
        static std::atomic<bool> warned{false};
        if (!warned.exchange(true))
          NC_LOG_WARN("chat template: {}; using the built-in {} format", out.status().message(), family_);
        return render_chat(family_, messages, add_generation_prompt);
      }
      default:
        return out.status().with_context("the model's chat template");
    }
  }
  std::string text = std::move(*out);
  // The tokenizer adds BOS itself: a template's leading BOS text would double it (llama.cpp does the same).
  if (strip_bos_ && text.compare(0, bos_text_.size(), bos_text_) == 0) text.erase(0, bos_text_.size());
  return text;
}

std::string chat_template_family(const engine::Vocab& vocab, const std::string& t) {
  if (t.find("<|start_header_id|>") != std::string::npos) return "llama3";
  if (t.find("<|im_start|>") != std::string::npos) return "chatml";
  if (t.find("[INST]") != std::string::npos) return "llama2";
  if (t.empty() && vocab.find("<|start_header_id|>") != engine::kNoToken) return "llama3";
  return "chatml";
}

std::string render_chat(const std::string& family, const std::vector<ChatMessage>& msgs, bool add_generation_prompt) {
  std::string out;
  if (family == "llama3") {
    for (const auto& m : msgs) out += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" + m.content + "<|eot_id|>";
    if (add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
  } else if (family == "llama2") {
    std::string system;
    bool first_user = true;
    for (const auto& m : msgs) {
      if (m.role == "system") {
        system += m.content;
      } else if (m.role == "user" || m.role == "tool") {
        out += "[INST] ";
        if (first_user && !system.empty()) out += "<<SYS>>\n" + system + "\n<</SYS>>\n\n";
        first_user = false;
        out += m.content + " [/INST]";
      } else {
        out += " " + m.content + " </s>";
      }
    }
  } else {
    for (const auto& m : msgs) out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
    if (add_generation_prompt) out += "<|im_start|>assistant\n";
  }
  return out;
}

}  // namespace nc::server
