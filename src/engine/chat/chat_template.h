// ChatTemplate: a HuggingFace chat template (a Jinja2 template from tokenizer_config.json or a GGUF's
// tokenizer.chat_template) parsed once and rendered many times, with the semantics transformers'
// apply_chat_template gives it: Python Jinja2 in an ImmutableSandboxedEnvironment with
// trim_blocks=True, lstrip_blocks=True, the loopcontrols extension and {% generation %}, the globals
// raise_exception(msg) and strftime_now(fmt), and `tojson` as json.dumps(ensure_ascii=False, ...).
// Output is byte-identical to Jinja2's for the templates in llama.cpp's models/templates (see
// tests/chat/jinja_diff.py).
//
// Errors: parse() returns InvalidArgument "line L, column C: ..." for syntax errors and Unimplemented
// "unsupported construct: ..." for Jinja2 features this engine does not have ({% include %},
// {% extends %}, ...). render() returns InvalidArgument for everything Jinja2 raises at run time —
// raise_exception('msg') gives exactly "msg"; others are "line L, column C: TypeError: ..." etc. —
// Unimplemented when a template reaches an unsupported builtin (e.g. "unsupported construct: filter
// 'xmlattr'"), and ResourceExhausted past the limits in RenderOptions. No exception leaves this API.
//
// Ownership and threads: a ChatTemplate is an immutable value sharing its syntax tree; copies are
// cheap. render() is const and thread-safe: each call builds its own state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace nc::chat {

namespace detail {
struct TemplateAst;
}

struct RenderOptions {
  // What strftime_now() formats: a naive local time, like Python's datetime.now(). Unset: the local
  // time at render. Set it for reproducible prompts (tests, the differential suite).
  std::optional<std::tm> now;
  size_t max_output_bytes = 16u << 20;  // the rendered prompt, and any macro output
  uint64_t max_steps = 10'000'000;      // statements, iterations, calls (+ bytes built / 256)
  int max_call_depth = 64;              // nested macro calls (recursive macros)
};

class ChatTemplate {
 public:
  static Result<ChatTemplate> parse(std::string_view source);

  // `context` is a JSON object whose members become template variables: messages, tools,
  // add_generation_prompt, bos_token, eos_token and any extra kwargs. Object key order matters
  // (tools | tojson prints keys in order, as Python dicts do): pass an ordered_json built from the
  // request. The nlohmann::json overload sees keys sorted, as that type stores them.
  Result<std::string> render(const nlohmann::ordered_json& context, const RenderOptions& options = {}) const;
  Result<std::string> render(const nlohmann::json& context, const RenderOptions& options = {}) const;

 private:
  explicit ChatTemplate(std::shared_ptr<const detail::TemplateAst> ast) : ast_(std::move(ast)) {}
  template <typename Json>
  Result<std::string> render_json(const Json& context, const RenderOptions& options) const;

  std::shared_ptr<const detail::TemplateAst> ast_;
};

}  // namespace nc::chat
