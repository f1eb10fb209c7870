// Run-time model deployment (model_deploy_api.h).
#include "server/model_deploy_api.h"

#include <unistd.h>

#include <fmt/format.h>

#include <filesystem>
#include <mutex>

#include "core/log.h"
#include "core/timer.h"
#include "server/model_api.h"

namespace nc::server {

namespace {

using json = nlohmann::json;

const char* state_name(ModelRegistry::State s) {
  switch (s) {
    case ModelRegistry::State::kLoading: return "loading";
    case ModelRegistry::State::kReady: return "ready";
    case ModelRegistry::State::kFailed: return "failed";
    default: return "unknown";
  }
}

json entry_json(const ModelRegistry::Entry& e) {
  return {{"id", e.spec.id},
          {"object", "model"},
          {"path", e.spec.path},
          {"organization_id", e.spec.org.empty() ? json() : json(e.spec.org)},
          {"file_id", e.spec.file_id.empty() ? json() : json(e.spec.file_id)},
          {"state", state_name(e.state)},
          {"max_model_len", e.service ? json(e.service->n_ctx()) : json()}};
}

Reply entry_reply(ApiContext& ctx, const std::string& id, int status) {
  for (const auto& e : ctx.models.entries())
    if (e.spec.id == id) return json_reply(status, entry_json(e));
  return error_reply(model_not_found(id));
}

bool valid_name(const std::string& s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') return false;
  return s != "." && s != "..";
}

Result<std::string> string_field(const json& body, const char* name, bool required) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) {
    if (required) return invalid_argument(fmt::format("'{}' is required", name)).with_field(name);
    return std::string();
  }
  if (!it->is_string()) return invalid_argument(fmt::format("'{}' must be a string", name)).with_field(name);
  return it->get<std::string>();
}

Reply list_reply(ApiContext& ctx) {
  json data = json::array();
  for (const auto& e : ctx.models.entries()) data.push_back(entry_json(e));
  return json_reply(200, json{{"object", "list"}, {"data", data}});
}

Reply removed_reply(const Status& st, const std::string& id) {
  if (st.code() == StatusCode::kNotFound)
    return error_reply(model_not_found(id));
  if (!st.is_ok()) return error_reply(st);
  return json_reply(200, json{{"id", id}, {"object", "model"}, {"deleted", true}});
}

// The body of POST /v1/admin/models (outside the coroutine: GCC 12 mishandles initializer lists there).
Result<ModelSpec> admin_spec(const json& body) {
  ModelSpec spec;
  for (const auto& [field, out, required] : {std::tuple{"id", &spec.id, true}, std::tuple{"path", &spec.path, true},
                                             std::tuple{"organization_id", &spec.org, false}}) {
    NC_ASSIGN_OR_RETURN(*out, string_field(body, field, required));
  }
  return spec;
}

// Loads and records a deployment; the record is removed again if the load fails.
Status deploy(ApiContext& ctx, const ModelSpec& spec) {
  training::Deployment d{spec.id, spec.org, spec.path, spec.file_id, unix_s()};
  if (ctx.deployments) NC_RETURN_IF_ERROR(ctx.deployments->save(d));
  Status st = ctx.models.add_model(spec);
  if (!st.is_ok() && ctx.deployments) (void)ctx.deployments->remove(spec.id);
  return st;
}

Reply deploy_error(const Status& st) {
  if (st.code() == StatusCode::kNotFound && st.field() == "file_id")
    return error_reply(api_error(404, st.message(), "file_id", "file_not_found"));
  if (st.code() == StatusCode::kResourceExhausted && st.field() == "model_limit") {
    ApiError e = api_error(429, st.message(), "", "model_limit_reached", "insufficient_quota");
    e.should_retry = false;
    return error_reply(e);
  }
  const std::string param = st.field().empty() ? std::string("path") : st.field();
  if (st.code() == StatusCode::kAlreadyExists) return error_reply(api_error(409, st.message(), param, "already_exists"));
  if (st.code() == StatusCode::kInvalidArgument || st.code() == StatusCode::kDataLoss || st.code() == StatusCode::kNotFound ||
      st.code() == StatusCode::kUnimplemented)
    return error_reply(api_error(400, "The model cannot be loaded: " + st.message(), param));
  return error_reply(st, param);
}

// The file a tenant's model is served from: its own link to the upload's bytes (deleting the upload
// does not touch it), named after the model (ids are "<org>/<name>": one path component here).
std::string tenant_model_path(const ApiContext& ctx, const std::string& id) {
  std::string name = id;
  for (size_t at = name.find('/'); at != std::string::npos; at = name.find('/')) name.replace(at, 1, "__");
  return ctx.deploy_dir + "/" + name + ".gguf";
}

// Deploys an organization's upload as spec.id, within its model limit. Serialized: the count and the
// load happen under one lock, so concurrent deploys cannot pass the limit together.
Status deploy_tenant_model(ApiContext& ctx, ModelSpec& spec) {
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  int mine = 0;
  for (const auto& e : ctx.models.entries()) mine += e.spec.org == spec.org;
  if (mine >= ctx.tenant_models_per_org)
    return resource_exhausted(fmt::format("The organization already has {} models deployed (the limit); delete one first.", mine))
        .with_field("model_limit");
  auto found = ctx.files->get(spec.org, spec.file_id);
  if (!found.is_ok()) return found.status().with_field("file_id");
  const files::FileRecord& f = *found;
  if (f.purpose != "model")
    return invalid_argument(fmt::format("file {} has purpose '{}', not 'model'", f.id, f.purpose)).with_field("file_id");
  if (ctx.models.lookup(spec.id).state != ModelRegistry::State::kUnknown)
    return Status(StatusCode::kAlreadyExists, fmt::format("the model `{}` exists", spec.id)).with_field("name");
  std::error_code ec;
  std::filesystem::create_directories(ctx.deploy_dir, ec);
  spec.path = tenant_model_path(ctx, spec.id);
  ::unlink(spec.path.c_str());  // a leftover of a crash between the link and the record
  if (::link(ctx.files->path_of(f.id).c_str(), spec.path.c_str()) != 0) {
    std::filesystem::copy_file(ctx.files->path_of(f.id), spec.path, ec);
    if (ec) return unavailable("cannot keep the model's file: " + ec.message());
  }
  Status st = deploy(ctx, spec);
  if (!st.is_ok()) std::filesystem::remove(spec.path, ec);  // this call made it
  return st;
}

// A deployment's answer: the model (201), or why it could not be loaded.
Reply deployed_reply(ApiContext& ctx, const Status& st, const std::string& id) {
  return st.is_ok() ? entry_reply(ctx, id, 201) : deploy_error(st);
}

}  // namespace

awaitable<bool> handle_admin_models(ApiContext& ctx, Call& call) {
  const auto method = call.ex.req.method();
  const std::string id = call.params.empty() ? "" : call.params.at(0);
  if (id.empty() && method == http::verb::get) {
    Reply list = list_reply(ctx);
    co_return co_await call.ex.reply(list);
  }
  if (!id.empty() && method == http::verb::get) co_return co_await call.ex.reply(entry_reply(ctx, id, 200));
  if (id.empty() && method == http::verb::post) {
    auto body = parse_body_object(call.ex);
    if (!body.is_ok()) co_return co_await call.ex.reply(error_reply(body.status()));
    auto parsed = admin_spec(*body);
    if (!parsed.is_ok()) co_return co_await call.ex.reply(error_reply(parsed.status()));
    const ModelSpec spec = *parsed;
    Status st;
    co_await ctx.offload([&] {  // reads the file, starts an engine
      st = deploy(ctx, spec);
      return true;
    });
    Reply answer = deployed_reply(ctx, st, spec.id);
    co_return co_await call.ex.reply(answer);
  }
  if (!id.empty() && method == http::verb::delete_) {
    Status st;
    co_await ctx.offload([&] {
      st = ctx.models.remove_model(id);
      if (st.is_ok() && ctx.deployments) (void)ctx.deployments->remove(id);
      return true;
    });
    Reply answer = removed_reply(st, id);
    co_return co_await call.ex.reply(answer);
  }
  co_return co_await call.ex.reply(error_reply(api_error(405, "Method not allowed.", "", "method_not_allowed")));
}

awaitable<bool> handle_deploy_model(ApiContext& ctx, Call& call) {
  const std::string org = call.caller ? call.caller->principal.org_id : "local";
  if (!ctx.files || ctx.deploy_dir.empty() || ctx.tenant_models_per_org <= 0) {
    co_return co_await call.ex.reply(error_reply(api_error(400, "This cloud does not let organizations deploy their own models.")));
  }
  auto body = parse_body_object(call.ex);
  if (!body.is_ok()) co_return co_await call.ex.reply(error_reply(body.status()));
  auto file_id = string_field(*body, "file_id", true);
  auto name = string_field(*body, "name", true);
  if (!file_id.is_ok()) co_return co_await call.ex.reply(error_reply(file_id.status()));
  if (!name.is_ok()) co_return co_await call.ex.reply(error_reply(name.status()));
  if (!valid_name(*name)) {
    co_return co_await call.ex.reply(
        error_reply(api_error(400, "'name' may have 1 to 64 letters, digits, '-', '_' and '.'", "name")));
  }
  ModelSpec spec;
  spec.id = org + "/" + *name;
  spec.org = org;
  spec.file_id = *file_id;
  Status st;
  co_await ctx.offload([&] {
    st = deploy_tenant_model(ctx, spec);
    return true;
  });
  Reply answer = deployed_reply(ctx, st, spec.id);
  co_return co_await call.ex.reply(answer);
}

awaitable<bool> handle_delete_model(ApiContext& ctx, Call& call) {
  const std::string org = call.caller ? call.caller->principal.org_id : "local";
  const std::string id = call.params.at(0);
  Status st = not_found("");
  co_await ctx.offload([&] {
    const auto l = ctx.models.lookup(id);
    if (l.state != ModelRegistry::State::kUnknown && !l.org.empty() && l.org == org) {  // the org's own model
      bool uploaded = false;  // deployed from an upload (its file is ours), not placed by the operator
      for (const auto& e : ctx.models.entries())
        if (e.spec.id == id) uploaded = !e.spec.file_id.empty() && e.spec.path == tenant_model_path(ctx, id);
      st = ctx.models.remove_model(id);
      if (st.is_ok() && ctx.deployments) (void)ctx.deployments->remove(id);
      // The engine keeps its mapping of the file until it stops.
      if (st.is_ok() && uploaded) ::unlink(tenant_model_path(ctx, id).c_str());
    } else if (ctx.fine_tunes) {
      st = ctx.fine_tunes->delete_model(org, id);
    }
    return true;
  });
  Reply answer = removed_reply(st.is_ok() ? st : not_found(""), id);
  co_return co_await call.ex.reply(answer);
}

void restore_deployments(ModelRegistry& models, training::DeploymentStore& store) {
  auto all = store.load_all();
  if (!all.is_ok()) {
    NC_LOG_ERROR("deployed models: {}", all.status().to_string());
    return;
  }
  for (const auto& d : *all) {
    ModelSpec spec;
    spec.id = d.id;
    spec.path = d.path;
    spec.org = d.org;
    spec.file_id = d.file_id;
    if (Status st = models.add_model(spec); !st.is_ok())
      NC_LOG_ERROR("deployed model '{}' ({}): not served: {}", d.id, d.path, st.to_string());
  }
}

}  // namespace nc::server
