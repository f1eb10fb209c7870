// libFuzzer target: arbitrary bytes as a chat template — lexed, parsed and, when it parses, rendered
// against a fixed chat context (messages with text parts and tool calls, tools, kwargs) under small
// limits. Must never crash, hang or leak; every failure must be a Status; a successful render of a
// valid UTF-8 template must be valid UTF-8.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/chat/chat_template.h"

namespace {

const nlohmann::ordered_json& context() {
  static const nlohmann::ordered_json ctx = nlohmann::ordered_json::parse(R"({
    "messages": [
      {"role": "system", "content": "You are helpful. é 日本 🚀"},
      {"role": "user", "content": [{"type": "text", "text": "Hi \"there\"\n"}, {"type": "image"}]},
      {"role": "assistant", "content": null, "reasoning_content": "think",
       "tool_calls": [{"id": "call_1", "type": "function",
                       "function": {"name": "get_weather", "arguments": {"city": "Paris", "n": [1, 2.5, true, null]}}}]},
      {"role": "tool", "tool_call_id": "call_1", "name": "get_weather", "content": "{\"t\": 18}"},
      {"role": "assistant", "content": "<think>x</think>It is 18C."}
    ],
    "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather.",
               "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}],
    "add_generation_prompt": true, "bos_token": "<s>", "eos_token": "</s>", "enable_thinking": false,
    "documents": null, "n": 3, "f": 0.5, "s": "str"
  })");
  return ctx;
}

bool valid_utf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    int len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (len == 0 || i + len > s.size()) return false;
    for (int k = 1; k < len; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += len;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 16384) return 0;
  const std::string source(reinterpret_cast<const char*>(data), size);
  auto t = nc::chat::ChatTemplate::parse(source);
  if (!t.is_ok()) {
    if (t.status().message().empty()) std::abort();
    return 0;
  }
  nc::chat::RenderOptions options;
  options.max_steps = 200000;
  options.max_output_bytes = 1 << 20;
  std::tm now{};
  now.tm_year = 125;
  now.tm_mday = 15;
  options.now = now;
  auto r = t->render(context(), options);
  if (r.is_ok()) {
    if (r->size() > options.max_output_bytes) std::abort();
    if (!valid_utf8(*r)) std::abort();
  } else if (r.status().message().empty()) {
    std::abort();
  }
  return 0;
}
