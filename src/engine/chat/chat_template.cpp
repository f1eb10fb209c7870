#include "engine/chat/chat_template.h"

#include <new>
#include <stdexcept>

#include "engine/chat/ast.h"
#include "engine/chat/error.h"
#include "engine/chat/interpreter.h"
#include "engine/chat/parser.h"
#include "engine/chat/utf8.h"

namespace nc::chat {

namespace {

constexpr int kMaxContextDepth = 256;

using detail::Value;

template <typename Json>
Value from_json(const Json& j, int depth) {
  if (depth > kMaxContextDepth) detail::fail(StatusCode::kInvalidArgument, "context JSON nested too deeply");
  switch (j.type()) {
    case nlohmann::json::value_t::null:
      return Value::none();
    case nlohmann::json::value_t::boolean:
      return Value::boolean(j.template get<bool>());
    case nlohmann::json::value_t::number_integer:
      return Value::integer(j.template get<int64_t>());
    case nlohmann::json::value_t::number_unsigned: {
      const uint64_t u = j.template get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) return Value::number(static_cast<double>(u));
      return Value::integer(static_cast<int64_t>(u));
    }
    case nlohmann::json::value_t::number_float:
      return Value::number(j.template get<double>());
    case nlohmann::json::value_t::string: {
      const std::string& s = j.template get_ref<const std::string&>();
      if (!detail::utf8_valid(s)) detail::fail(StatusCode::kInvalidArgument, "context string is not valid UTF-8");
      return Value::string(s);
    }
    case nlohmann::json::value_t::array: {
      detail::List items;
      items.reserve(j.size());
      for (const auto& e : j) items.push_back(from_json(e, depth + 1));
      return Value::list(std::move(items));
    }
    case nlohmann::json::value_t::object: {
      detail::Dict d;
      for (auto it = j.begin(); it != j.end(); ++it) {
        if (!detail::utf8_valid(it.key())) detail::fail(StatusCode::kInvalidArgument, "context key is not valid UTF-8");
        d.set(Value::string(it.key()), from_json(it.value(), depth + 1));
      }
      return Value::dict(std::move(d));
    }
    case nlohmann::json::value_t::binary:
    case nlohmann::json::value_t::discarded:
      break;
  }
  detail::fail(StatusCode::kInvalidArgument, "context holds a JSON value templates cannot use");
}

}  // namespace

Result<ChatTemplate> ChatTemplate::parse(std::string_view source) {
  try {
    auto ast = std::make_shared<detail::TemplateAst>(detail::parse_template(source));
    return ChatTemplate(std::move(ast));
  } catch (const detail::TemplateError& e) {
    return e.status;
  } catch (const std::bad_alloc&) {
    return resource_exhausted("out of memory parsing the chat template");
  } catch (const std::length_error&) {
    return resource_exhausted("chat template too large");
  } catch (const std::exception& e) {
    return internal_error(std::string("chat template parser: ") + e.what());
  }
}

template <typename Json>
Result<std::string> ChatTemplate::render_json(const Json& context, const RenderOptions& options) const {
  try {
    if (!context.is_object()) return invalid_argument("chat template context must be a JSON object");
    detail::Limits limits;
    limits.max_output_bytes = options.max_output_bytes;
    limits.max_steps = options.max_steps;
    limits.max_call_depth = options.max_call_depth;
    limits.now = options.now;
    const Value ctx = from_json(context, 0);
    detail::Interpreter interpreter(*ast_, limits);
    return interpreter.render(ctx);
  } catch (const detail::TemplateError& e) {
    return e.status;
  } catch (const std::bad_alloc&) {
    return resource_exhausted("out of memory rendering the chat template");
  } catch (const std::length_error&) {
    return resource_exhausted("chat template output too large");
  } catch (const std::exception& e) {
    return internal_error(std::string("chat template render: ") + e.what());
  }
}

Result<std::string> ChatTemplate::render(const nlohmann::ordered_json& context, const RenderOptions& options) const {
  return render_json(context, options);
}

Result<std::string> ChatTemplate::render(const nlohmann::json& context, const RenderOptions& options) const {
  return render_json(context, options);
}

}  // namespace nc::chat
