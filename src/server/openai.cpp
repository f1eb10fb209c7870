// The OpenAI request parsers (openai.h): request fields to engine parameters, each a Result.
#include "server/openai.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include <fmt/format.h>


namespace nc::server {

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }
std::string dump(const nlohmann::ordered_json& j) {
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

bool max_tokens_given(const json& b) {
  auto given = [&](const char* k) {
    auto it = b.find(k);
    return it != b.end() && !it->is_null();
  };
  return given("max_tokens") || given("max_completion_tokens");
}

namespace {

// An error about `param`: Unimplemented for a feature that does not exist yet, else InvalidArgument.
using ApiErr = Status;
bool bad(ApiErr* err, const std::string& param, const std::string& message, const std::string& code = "") {
  *err = (code == "unsupported_parameter" ? unimplemented(message) : invalid_argument(message)).with_field(param);
  return false;
}

// Reads an optional number field; null counts as absent.
bool get_number(const json& b, const char* key, double lo, double hi, double* out, ApiErr* err) {
  auto it = b.find(key);
  if (it == b.end() || it->is_null()) return true;
  if (!it->is_number()) return bad(err, key, fmt::format("'{}' must be a number", key));
  const double v = it->get<double>();
  if (!(v >= lo && v <= hi)) return bad(err, key, fmt::format("'{}' must be between {} and {}, got {}", key, lo, hi, v));
  *out = v;
  return true;
}

bool get_int(const json& b, const char* key, int64_t lo, int64_t hi, int64_t* out, ApiErr* err) {
  auto it = b.find(key);
  if (it == b.end() || it->is_null()) return true;
  if (!it->is_number_integer()) return bad(err, key, fmt::format("'{}' must be an integer", key));
  if (it->is_number_unsigned() && it->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
    return bad(err, key, fmt::format("'{}' must be between {} and {}", key, lo, hi));
  const int64_t v = it->get<int64_t>();
  if (v < lo || v > hi) return bad(err, key, fmt::format("'{}' must be between {} and {}, got {}", key, lo, hi, v));
  *out = v;
  return true;
}

}  // namespace

namespace {
bool completion_options(const json& b, const engine::Vocab& vocab, int max_tokens_default, bool chat,
                        CompletionOptions* o, ApiErr* err) {
  // Features that do not exist yet get a clear 400 rather than being ignored.
  for (const char* key : {"tools", "tool_choice", "functions", "function_call", "suffix", "audio", "modalities",
                          "prediction", "web_search_options"}) {
    auto it = b.find(key);
    if (it != b.end() && !it->is_null()) {
      return bad(err, key, fmt::format("'{}' is not supported yet", key), "unsupported_parameter");
    }
  }
  if (auto it = b.find("response_format"); it != b.end() && !it->is_null()) {
    const auto type = it->is_object() ? it->find("type") : it->end();
    if (!it->is_object() || type == it->end() || !type->is_string() || *type != "text") {
      return bad(err, "response_format", "'response_format' other than {\"type\": \"text\"} is not supported yet",
                 "unsupported_parameter");
    }
  }
  if (auto it = b.find("echo"); it != b.end() && it->is_boolean() && it->get<bool>()) {
    return bad(err, "echo", "'echo' is not supported yet", "unsupported_parameter");
  }
  auto& s = o->gen.sampling;
  // OpenAI defaults: temperature 1, top_p 1, no top-k/min-p.
  s.temperature = 1.0f;
  s.top_p = 1.0f;
  s.top_k = 0;
  s.min_p = 0.0f;
  s.penalty_last_n = -1;  // penalties look at everything generated so far
  double d;
  d = s.temperature;
  if (!get_number(b, "temperature", 0, 2, &d, err)) return false;
  s.temperature = static_cast<float>(d);
  d = s.top_p;
  if (!get_number(b, "top_p", 0, 1, &d, err)) return false;
  if (d <= 0) return bad(err, "top_p", "'top_p' must be greater than 0");
  s.top_p = static_cast<float>(d);
  d = s.min_p;
  if (!get_number(b, "min_p", 0, 1, &d, err)) return false;
  s.min_p = static_cast<float>(d);
  int64_t i64 = 0;
  if (!get_int(b, "top_k", -1, 1 << 30, &i64, err)) return false;
  s.top_k = static_cast<int32_t>(i64);
  d = 0;
  if (!get_number(b, "presence_penalty", -2, 2, &d, err)) return false;
  s.presence_penalty = static_cast<float>(d);
  d = 0;
  if (!get_number(b, "frequency_penalty", -2, 2, &d, err)) return false;
  s.frequency_penalty = static_cast<float>(d);
  d = 1;
  if (!get_number(b, "repetition_penalty", 0.01, 100, &d, err)) return false;
  s.repeat_penalty = static_cast<float>(d);
  if (auto it = b.find("seed"); it != b.end() && !it->is_null()) {
    if (!it->is_number_integer()) return bad(err, "seed", "'seed' must be an integer");
    s.seed = static_cast<uint64_t>(it->get<int64_t>());
  }
  if (auto it = b.find("logit_bias"); it != b.end() && !it->is_null()) {
    if (!it->is_object()) return bad(err, "logit_bias", "'logit_bias' must be an object of token id -> bias");
    for (auto& [k, v] : it->items()) {
      char* end = nullptr;
      const long id = std::strtol(k.c_str(), &end, 10);
      const bool digits = !k.empty() && k.size() <= 10 && k.find_first_not_of("0123456789") == std::string::npos;
      if (!digits || *end != '\0' || id < 0 || id >= vocab.n_tokens()) {
        return bad(err, "logit_bias", fmt::format("logit_bias: '{}' is not a token id of this model", k));
      }
      if (!v.is_number() || v.get<double>() < -100 || v.get<double>() > 100) {
        return bad(err, "logit_bias", "logit_bias values must be numbers between -100 and 100");
      }
      s.logit_bias.emplace_back(static_cast<int32_t>(id), v.get<float>());
    }
  }
  // max_completion_tokens wins over max_tokens (as vLLM).
  int64_t max_tokens = max_tokens_default;
  if (!get_int(b, "max_tokens", chat ? 1 : 0, 1 << 30, &max_tokens, err)) return false;
  if (!get_int(b, "max_completion_tokens", 0, 1 << 30, &max_tokens, err)) return false;
  o->gen.max_tokens = static_cast<int32_t>(max_tokens);
  int64_t n = 1;
  if (!get_int(b, "n", 1, 128, &n, err)) return false;
  o->n = static_cast<int>(n);
  if (auto it = b.find("best_of"); it != b.end() && !it->is_null()) {
    if (!it->is_number_integer() || it->get<int64_t>() != n) {
      return bad(err, "best_of", "'best_of' other than n is not supported yet", "unsupported_parameter");
    }
  }
  if (auto it = b.find("stop"); it != b.end() && !it->is_null()) {
    if (it->is_string()) {
      o->gen.stop.push_back(it->get<std::string>());
    } else if (it->is_array() && it->size() <= 4) {
      for (const auto& x : *it) {
        if (!x.is_string()) return bad(err, "stop", "'stop' must be a string or an array of up to 4 strings");
        o->gen.stop.push_back(x.get<std::string>());
      }
    } else {
      return bad(err, "stop", "'stop' must be a string or an array of up to 4 strings");
    }
  }
  if (auto it = b.find("stream"); it != b.end() && !it->is_null()) {
    if (!it->is_boolean()) return bad(err, "stream", "'stream' must be a boolean");
    o->stream = it->get<bool>();
  }
  if (auto it = b.find("stream_options"); it != b.end() && !it->is_null()) {
    if (!o->stream) return bad(err, "stream_options", "'stream_options' is only allowed with stream: true");
    if (!it->is_object()) return bad(err, "stream_options", "'stream_options' must be an object");
    if (auto u = it->find("include_usage"); u != it->end() && !u->is_null()) {
      if (!u->is_boolean()) return bad(err, "stream_options.include_usage", "'include_usage' must be a boolean");
      o->include_usage = u->get<bool>();
    }
  }
  if (chat) {
    bool want = false;
    if (auto it = b.find("logprobs"); it != b.end() && !it->is_null()) {
      if (!it->is_boolean()) return bad(err, "logprobs", "'logprobs' must be a boolean");
      want = it->get<bool>();
    }
    int64_t top = 0;
    if (!get_int(b, "top_logprobs", 0, 20, &top, err)) return false;
    if (b.contains("top_logprobs") && !b["top_logprobs"].is_null() && !want) {
      return bad(err, "top_logprobs", "'top_logprobs' needs 'logprobs': true");
    }
    if (want) {
      o->logprobs = static_cast<int>(top);
      s.n_logprobs = o->logprobs;
    }
  } else if (auto it = b.find("logprobs"); it != b.end() && !it->is_null()) {
    if (!it->is_number_integer() || it->get<int64_t>() < 0 || it->get<int64_t>() > 5) {
      return bad(err, "logprobs", "'logprobs' must be an integer between 0 and 5");
    }
    o->logprobs = static_cast<int>(it->get<int64_t>());
    s.n_logprobs = o->logprobs;
  }
  // vLLM / llama.cpp extension used by benchmarks: keep generating past end-of-generation tokens.
  if (auto it = b.find("ignore_eos"); it != b.end() && !it->is_null()) {
    if (!it->is_boolean()) return bad(err, "ignore_eos", "'ignore_eos' must be a boolean");
    o->gen.ignore_eos = it->get<bool>();
  }
  if (auto it = b.find("user"); it != b.end() && !it->is_null() && !it->is_string()) {
    return bad(err, "user", "'user' must be a string");
  }
  return true;
}

// A text-or-tokens input field: string | string[] | int[] | int[][], each tokenized as llama.cpp's
// server does (special tokens added and parsed). Empty inputs are an error.
// `allow_empty`: an empty string is a valid prompt (it becomes BOS alone) but not an embedding input.
bool parse_token_inputs(const json& v, const std::string& field, const engine::Vocab& vocab, bool allow_empty,
                        std::vector<std::vector<engine::TokenId>>* out, ApiErr* err) {
  auto tokenize = [&](const std::string& text) { return vocab.tokenize(text, true, true); };
  auto token_array = [&](const json& a, std::vector<engine::TokenId>* ids) {
    for (const auto& x : a) {
      if (!x.is_number_integer()) return false;
      const int64_t t = x.get<int64_t>();
      if (t < 0 || t >= vocab.n_tokens()) return false;
      ids->push_back(static_cast<engine::TokenId>(t));
    }
    return true;
  };
  const std::string bad_id = fmt::format("'{}' holds a token id outside the vocabulary", field);
  if (v.is_string()) {
    if (!allow_empty && v.get_ref<const std::string&>().empty())
      return bad(err, field, fmt::format("'{}' is an empty string", field));
    out->push_back(tokenize(v.get<std::string>()));
  } else if (v.is_array() && !v.empty() && v[0].is_string()) {
    for (const auto& x : v) {
      if (!x.is_string()) return bad(err, field, fmt::format("'{}' array must hold only strings", field));
      if (!allow_empty && x.get_ref<const std::string&>().empty())
        return bad(err, field, fmt::format("'{}' holds an empty string", field));
      out->push_back(tokenize(x.get<std::string>()));
    }
  } else if (v.is_array() && !v.empty() && v[0].is_number_integer()) {
    std::vector<engine::TokenId> ids;
    if (!token_array(v, &ids)) return bad(err, field, bad_id);
    out->push_back(std::move(ids));
  } else if (v.is_array() && !v.empty() && v[0].is_array()) {
    for (const auto& x : v) {
      std::vector<engine::TokenId> ids;
      if (!x.is_array() || !token_array(x, &ids)) return bad(err, field, bad_id);
      if (ids.empty()) return bad(err, field, fmt::format("'{}' holds an empty token array", field));
      out->push_back(std::move(ids));
    }
  } else {
    return bad(err, field, fmt::format("'{}' must be a non-empty string, array of strings, or token ids", field));
  }
  for (const auto& p : *out) {
    if (p.empty()) return bad(err, field, fmt::format("'{}' has no tokens", field));
  }
  return true;
}

bool prompts(const json& b, const engine::Vocab& vocab, std::vector<std::vector<engine::TokenId>>* out, ApiErr* err) {
  auto it = b.find("prompt");
  if (it == b.end() || it->is_null()) {
    out->push_back(vocab.tokenize("<|endoftext|>", true, true));
    return true;
  }
  return parse_token_inputs(*it, "prompt", vocab, /*allow_empty=*/true, out, err);
}

bool embedding_request(const json& b, const engine::Vocab& vocab, int64_t n_embd, EmbeddingOptions* out, ApiErr* err) {
  auto it = b.find("input");
  if (it == b.end() || it->is_null()) return bad(err, "input", "'input' is required");
  // Items are strings or token arrays; one flat token array is a single input (bounded by the context).
  if (it->is_array() && !it->empty() && !(*it)[0].is_number_integer() && it->size() > kMaxEmbeddingInputs)
    return bad(err, "input", fmt::format("'input' holds {} items; at most {} are allowed", it->size(), kMaxEmbeddingInputs));
  if (!parse_token_inputs(*it, "input", vocab, /*allow_empty=*/false, &out->inputs, err)) return false;
  size_t total = 0;
  for (const auto& in : out->inputs) total += in.size();
  if (total > kMaxEmbeddingTokens)
    return bad(err, "input", fmt::format("'input' holds {} tokens in all; at most {} per request", total, kMaxEmbeddingTokens));
  if (auto f = b.find("encoding_format"); f != b.end() && !f->is_null()) {
    if (!f->is_string() || (*f != "float" && *f != "base64"))
      return bad(err, "encoding_format", "'encoding_format' must be 'float' or 'base64'");
    out->base64 = *f == "base64";
  }
  if (auto d = b.find("dimensions"); d != b.end() && !d->is_null()) {
    if (!d->is_number_integer() || d->get<int64_t>() < 1)
      return bad(err, "dimensions", "'dimensions' must be a positive integer");
    if (d->get<int64_t>() != n_embd)
      return bad(err, "dimensions",
                 fmt::format("this model's embeddings have {} dimensions and cannot be shortened to {}", n_embd,
                             d->get<int64_t>()),
                 "unsupported_parameter");
  }
  if (auto u = b.find("user"); u != b.end() && !u->is_null() && !u->is_string())
    return bad(err, "user", "'user' must be a string");
  return true;
}

bool messages(const json& body, std::vector<ChatMessage>* out, ApiErr* err);

}  // namespace

Result<CompletionOptions> parse_completion_options(const json& body, const engine::Vocab& vocab, int max_tokens_default,
                                                   bool chat) {
  CompletionOptions o;
  Status err;
  if (!completion_options(body, vocab, max_tokens_default, chat, &o, &err)) return err;
  return o;
}

Result<std::vector<std::vector<engine::TokenId>>> parse_prompts(const json& body, const engine::Vocab& vocab) {
  std::vector<std::vector<engine::TokenId>> out;
  Status err;
  if (!prompts(body, vocab, &out, &err)) return err;
  return out;
}

Result<EmbeddingOptions> parse_embedding_request(const json& body, const engine::Vocab& vocab, int64_t n_embd) {
  EmbeddingOptions out;
  Status err;
  if (!embedding_request(body, vocab, n_embd, &out, &err)) return err;
  return out;
}

Result<std::vector<ChatMessage>> parse_messages(const json& body) {
  std::vector<ChatMessage> out;
  Status err;
  if (!messages(body, &out, &err)) return err;
  return out;
}

Result<std::string> render_chat_request(const ChatFormatter& chat, const json& body) {
  NC_ASSIGN_OR_RETURN(auto msgs, parse_messages(body));
  json kwargs = json::object();
  if (auto k = body.find("chat_template_kwargs"); k != body.end() && !k->is_null()) {
    if (!k->is_object()) return invalid_argument("'chat_template_kwargs' must be an object").with_field("chat_template_kwargs");
    kwargs = *k;
  }
  bool add_generation_prompt = true;
  if (auto a = body.find("add_generation_prompt"); a != body.end() && !a->is_null()) {
    if (!a->is_boolean())
      return invalid_argument("'add_generation_prompt' must be a boolean").with_field("add_generation_prompt");
    add_generation_prompt = a->get<bool>();
  }
  auto text = chat.render(msgs, add_generation_prompt, kwargs);
  if (!text.is_ok()) return text.status().with_field("messages");
  return text;
}

std::string base64_floats(const std::vector<float>& v) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string bytes(v.size() * sizeof(float), '\0');
  for (size_t i = 0; i < v.size(); ++i) {  // little-endian float32, as OpenAI and numpy's frombuffer read it
    uint32_t u;
    std::memcpy(&u, &v[i], 4);
    for (int k = 0; k < 4; ++k) bytes[i * 4 + k] = static_cast<char>((u >> (8 * k)) & 0xFF);
  }
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    const uint32_t b0 = static_cast<uint8_t>(bytes[i]);
    const uint32_t b1 = i + 1 < bytes.size() ? static_cast<uint8_t>(bytes[i + 1]) : 0;
    const uint32_t b2 = i + 2 < bytes.size() ? static_cast<uint8_t>(bytes[i + 2]) : 0;
    const uint32_t n = (b0 << 16) | (b1 << 8) | b2;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += i + 1 < bytes.size() ? kAlphabet[(n >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? kAlphabet[n & 63] : '=';
  }
  return out;
}

namespace {
bool messages(const json& body, std::vector<ChatMessage>* out, ApiErr* err) {
  auto it = body.find("messages");
  if (it == body.end() || !it->is_array() || it->empty()) {
    return bad(err, "messages", "'messages' must be a non-empty array of messages");
  }
  for (size_t i = 0; i < it->size(); ++i) {
    const json& m = (*it)[i];
    const std::string where = fmt::format("messages[{}]", i);
    if (!m.is_object()) return bad(err, where, where + " must be an object");
    auto role = m.find("role");
    if (role == m.end() || !role->is_string()) return bad(err, where + ".role", where + ".role must be a string");
    ChatMessage cm;
    cm.role = role->get<std::string>();
    if (cm.role == "developer") cm.role = "system";
    if (cm.role != "system" && cm.role != "user" && cm.role != "assistant" && cm.role != "tool") {
      return bad(err, where + ".role", fmt::format("{}.role '{}' is not one of system, developer, user, assistant, tool", where, cm.role));
    }
    if (auto tc = m.find("tool_calls"); tc != m.end() && !tc->is_null()) {
      return bad(err, where + ".tool_calls", "tool calls are not supported yet", "unsupported_parameter");
    }
    auto content = m.find("content");
    if (content == m.end() || content->is_null()) {
      if (cm.role != "assistant") return bad(err, where + ".content", where + ".content is required");
    } else if (content->is_string()) {
      cm.content = content->get<std::string>();
    } else if (content->is_array()) {
      bool first = true;
      for (const auto& part : *content) {
        const auto type = part.is_object() ? part.find("type") : part.end();
        if (!part.is_object() || type == part.end() || !type->is_string() || type->get<std::string>() != "text" ||
            !part.contains("text") || !part["text"].is_string()) {
          return bad(err, where + ".content", "only text content parts are supported", "unsupported_parameter");
        }
        if (!first) cm.content += "\n";  // as llama.cpp joins text parts for templates that take strings
        cm.content += part["text"].get<std::string>();
        first = false;
      }
    } else {
      return bad(err, where + ".content", where + ".content must be a string or an array of text parts");
    }
    for (auto [field, dst] : {std::pair<const char*, std::string*>{"name", &cm.name}, {"tool_call_id", &cm.tool_call_id}}) {
      auto f = m.find(field);
      if (f == m.end() || f->is_null()) continue;
      if (!f->is_string()) return bad(err, where + "." + field, fmt::format("{}.{} must be a string", where, field));
      *dst = f->get<std::string>();
    }
    out->push_back(std::move(cm));
  }
  return true;
}
}  // namespace

}  // namespace nc::server
