// The operator's LoRA adapter API (adapter_api.h).
#include "server/adapter_api.h"

#include <fmt/format.h>

#include "server/model_api.h"

namespace nc::server {
namespace {

using json = nlohmann::json;

json info_json(const AdapterRegistry::Info& a) {
  return {{"id", a.spec.id},
          {"object", "lora_adapter"},
          {"base", a.spec.base},
          {"path", a.spec.path},
          {"organization_id", a.spec.org.empty() ? json() : json(a.spec.org)},
          {"resident", a.resident},
          {"bytes", a.bytes},
          {"created", a.created}};
}

// The body of POST /v1/admin/lora_adapters; InvalidArgument naming the field.
Result<AdapterSpec> parse_spec(const json& body) {
  AdapterSpec spec;
  const std::pair<const char*, std::string*> fields[] = {
      {"id", &spec.id}, {"base", &spec.base}, {"path", &spec.path}, {"organization_id", &spec.org}};
  for (const auto& [field, out] : fields) {
    auto it = body.find(field);
    if (it == body.end() || it->is_null()) continue;
    if (!it->is_string()) return invalid_argument(fmt::format("'{}' must be a string", field)).with_field(field);
    *out = it->get<std::string>();
  }
  for (const char* required : {"id", "base", "path"})
    if (!body.contains(required) || body[required].is_null())
      return invalid_argument(fmt::format("'{}' is required", required)).with_field(required);
  return spec;
}

json list_json(const AdapterRegistry& reg) {
  json data = json::array();
  for (const auto& a : reg.list("")) data.push_back(info_json(a));
  return {{"object", "list"}, {"data", data}, {"resident_bytes", reg.resident_bytes()}, {"budget_bytes", reg.budget()}};
}

json deleted_json(const std::string& id) { return {{"id", id}, {"object", "lora_adapter"}, {"deleted", true}}; }

// A refused POST: the status's field, else "path" (what a load failure is about).
Reply add_error_reply(const Status& st) {
  const std::string param = st.field().empty() ? std::string("path") : st.field();
  return error_reply(st, param);
}

Reply not_found_reply(const std::string& id) {
  return error_reply(api_error(404, fmt::format("The adapter `{}` does not exist.", id), "id", "not_found"));
}

}  // namespace

awaitable<bool> handle_lora_adapters(ApiContext& ctx, Call& call) {
  AdapterRegistry& reg = ctx.models.adapters();
  const auto method = call.ex.req.method();
  const std::string id = call.params.empty() ? "" : call.params.at(0);
  if (id.empty() && method == http::verb::get) {
    co_return co_await call.ex.reply(json_reply(200, list_json(reg)));
  }
  if (!id.empty() && method == http::verb::get) {
    for (const auto& a : reg.list(""))
      if (a.spec.id == id) co_return co_await call.ex.reply(json_reply(200, info_json(a)));
    co_return co_await call.ex.reply(not_found_reply(id));
  }
  if (!id.empty() && method == http::verb::delete_) {
    if (Status st = reg.remove(id); !st.is_ok()) co_return co_await call.ex.reply(not_found_reply(id));
    co_return co_await call.ex.reply(json_reply(200, deleted_json(id)));
  }
  if (id.empty() && method == http::verb::post) {
    auto body = parse_body_object(call.ex);
    if (!body.is_ok()) co_return co_await call.ex.reply(error_reply(body.status()));
    auto parsed = parse_spec(*body);
    if (!parsed.is_ok()) {
      Reply refused = add_error_reply(parsed.status());
      co_return co_await call.ex.reply(refused);
    }
    const AdapterSpec spec = *parsed;
    Status st;
    co_await ctx.offload([&] {  // reads and converts the file
      st = ctx.models.add_adapter(spec);
      return true;
    });
    if (!st.is_ok()) {
      // (The reply is built before co_await: GCC 12 mishandles some temporaries in co_await expressions.)
      Reply refused = add_error_reply(st);
      co_return co_await call.ex.reply(refused);
    }
    for (const auto& a : reg.list(""))
      if (a.spec.id == spec.id) co_return co_await call.ex.reply(json_reply(201, info_json(a)));
    co_return co_await call.ex.reply(not_found_reply(spec.id));  // removed meanwhile
  }
  co_return co_await call.ex.reply(error_reply(api_error(405, "Method not allowed.", "", "method_not_allowed")));
}

}  // namespace nc::server
