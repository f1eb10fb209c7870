// HttpServer (http_server.h): the route table and the dispatch in front of every handler.
#include "server/http_server.h"

#include <fmt/format.h>

#include "core/json_parse.h"
#include "server/api_context.h"
#include "server/inference_api.h"
#include "server/adapter_api.h"
#include "server/files_api.h"
#include "server/model_deploy_api.h"
#include "server/model_api.h"
#include "server/platform_api.h"

namespace nc::server {

using gateway::RouteAccess;

struct HttpServer::Impl {
  Impl(ModelRegistry& m, const HttpServer::Modules& mods, EdgeLimits l)
      : limits(l),
        transport(
            limits, [this](Exchange& ex) { return dispatch(ex); },
            [this](http::verb method, std::string_view path) -> std::optional<uint64_t> {
              const Route* r = router.match(method, path, nullptr);
              return r ? r->streamed_body_limit : std::nullopt;
            }),
        ctx{m,
            mods.gateway,
            mods.jobs,
            mods.files,
            mods.fine_tunes,
            mods.deployments,
            mods.deploy_dir,
            mods.tenant_models_per_org,
            work,
            transport.io().get_executor(),
            limits,
            [this] { return transport.active_connections(); }} {
    build_routes();
  }

  EdgeLimits limits;
  // CPU and database work of a request (template rendering, tokenizing, admin and jobs APIs): off the
  // I/O thread, so one large request does not stall every other connection and stream.
  asio::thread_pool work{2};
  Transport transport;
  ApiContext ctx;
  Router router;

  // The route table: method, path, who may call it, the endpoint scope API keys name, the handler.
  void build_routes() {
    using V = http::verb;
    const auto any = std::nullopt;
    auto h = [this](awaitable<bool> (*f)(ApiContext&, Call&)) {
      return [this, f](Call& c) { return f(ctx, c); };
    };
    auto& r = router;
    r.add(V::get, "/health", RouteAccess::kPublic, "", h(handle_health));
    r.add(V::get, "/metrics", RouteAccess::kPublic, "", h(handle_metrics));
    r.add(V::get, "/v1/models", RouteAccess::kInference, "models", h(handle_list_models));
    r.add(V::get, "/v1/models/{id*}", RouteAccess::kInference, "models", h(handle_get_model));
    r.add(V::post, "/v1/completions", RouteAccess::kInference, "completions", h(handle_completions));
    r.add(V::post, "/v1/chat/completions", RouteAccess::kInference, "chat.completions", h(handle_chat_completions));
    r.add(V::post, "/v1/embeddings", RouteAccess::kInference, "embeddings", h(handle_embeddings));
    r.add(V::post, "/tokenize", RouteAccess::kInference, "tokenize", h(handle_tokenize));
    r.add(V::post, "/detokenize", RouteAccess::kInference, "tokenize", h(handle_detokenize));
    r.add(V::post, "/apply-template", RouteAccess::kInference, "tokenize", h(handle_apply_template));
    if (ctx.jobs) {
      r.add(any, "/v1/jobs/*", RouteAccess::kInferenceOrAdmin, "jobs", h(handle_jobs));
      r.add(any, "/v1/reservations/*", RouteAccess::kInferenceOrAdmin, "jobs", h(handle_jobs));
      r.add(any, "/v1/admin/organizations/{org}/gpu_quota", RouteAccess::kOperator, "", h(handle_capacity_admin));
      r.add(any, "/v1/admin/nodes/*", RouteAccess::kOperator, "", h(handle_capacity_admin));
    }
    if (ctx.files) {
      r.add(V::post, "/v1/files", RouteAccess::kInference, "files", h(handle_file_upload), upload_body_limit(*ctx.files));
      r.add(V::get, "/v1/files", RouteAccess::kInference, "files", h(handle_list_files));
      r.add(V::get, "/v1/files/{id}", RouteAccess::kInference, "files", h(handle_get_file));
      r.add(V::get, "/v1/files/{id}/content", RouteAccess::kInference, "files", h(handle_file_content));
      r.add(V::delete_, "/v1/files/{id}", RouteAccess::kInference, "files", h(handle_delete_file));
    }
    if (ctx.fine_tunes) {
      r.add(any, "/v1/fine_tuning/jobs", RouteAccess::kInference, "fine_tuning", h(handle_fine_tuning));
      r.add(any, "/v1/fine_tuning/jobs/*", RouteAccess::kInference, "fine_tuning", h(handle_fine_tuning));
    }
    if (ctx.gw) {
      r.add(V::post, "/v1/models", RouteAccess::kInference, "models", h(handle_deploy_model));
      r.add(V::delete_, "/v1/models/{id*}", RouteAccess::kInference, "models", h(handle_delete_model));
      r.add(any, "/v1/admin/models", RouteAccess::kOperator, "", h(handle_admin_models));
      r.add(any, "/v1/admin/models/{id*}", RouteAccess::kOperator, "", h(handle_admin_models));
    }
    if (ctx.gw) {
      r.add(V::post, "/v1/usage/events", RouteAccess::kInferenceOrAdmin, "usage.events", h(handle_usage_events));
      r.add(any, "/v1/organization/*", RouteAccess::kAdmin, "", h(handle_admin));
      r.add(any, "/v1/admin/lora_adapters", RouteAccess::kOperator, "", h(handle_lora_adapters));
      r.add(any, "/v1/admin/lora_adapters/{id*}", RouteAccess::kOperator, "", h(handle_lora_adapters));
      r.add(any, "/v1/admin/*", RouteAccess::kOperator, "", h(handle_admin));
    }
  }

  // Authenticates (with a gateway), routes, checks the route's access and the body's JSON depth, and
  // runs the handler. Every refusal is an ApiError in OpenAI's shape.
  awaitable<bool> dispatch(Exchange& ex) {
    std::vector<std::string> params;
    const Route* route = router.match(ex.req.method(), ex.path, &params);
    std::shared_ptr<const gateway::Caller> caller;
    gateway::Gateway* gw = ctx.gw;
    const bool is_public = route ? route->access == RouteAccess::kPublic : router.public_path(ex.path);
    if (gw && !is_public) {
      // The tenant comes from the key: a cache hit costs a hash; a miss asks the database off this thread.
      const std::string authorization(ex.req[http::field::authorization]);
      caller = gw->cached(authorization);
      if (!caller) {
        std::optional<gateway::Denial> denied;
        co_await ctx.offload([&] {
          denied = gw->authenticate(authorization, &caller);
          return true;
        });
        if (denied) co_return co_await ex.reply(error_reply(*denied));
      }
    }
    if (!route) {
      co_return co_await ex.reply(error_reply(
          api_error(404, fmt::format("Invalid URL ({} {})", std::string(ex.req.method_string()), ex.path))));
    }
    if (caller) {
      if (auto d = gateway::authorize_route(*gw, *caller, route->access, route->scope))
        co_return co_await ex.reply(error_reply(*d));
    }
    // Hostile nesting is refused here, once, for every route, before any module parses the body.
    if (Status st = check_json_depth(ex.req.body()); !st.is_ok())
      co_return co_await ex.reply(error_reply(api_error(400, "We could not parse the JSON body of your request: " + st.message() + ".")));
    Call call{ex, std::move(caller), std::move(params)};
    co_return co_await route->handler(call);
  }
};

HttpServer::HttpServer(ModelRegistry& models, gateway::Gateway* gateway, capacity::JobController* jobs, EdgeLimits limits)
    : HttpServer(models, Modules{gateway, jobs}, limits) {}
HttpServer::HttpServer(ModelRegistry& models, const Modules& modules, EdgeLimits limits)
    : impl_(std::make_unique<Impl>(models, modules, limits)) {}
HttpServer::~HttpServer() = default;

Status HttpServer::listen(const std::string& host, uint16_t port) { return impl_->transport.listen(host, port); }
uint16_t HttpServer::port() const { return impl_->transport.port(); }

void HttpServer::run() {
  impl_->transport.run();
  // Requests' pool work borrows the models: finish it before anyone stops them.
  impl_->work.stop();
  impl_->work.join();
}

void HttpServer::stop() { impl_->transport.stop(); }

}  // namespace nc::server
