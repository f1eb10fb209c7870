// The server's own routes around the models: GET /health (503 while models load), GET /metrics
// (Prometheus text), GET /v1/models and /v1/models/{id}, and llama.cpp's POST /tokenize, /detokenize and
// /apply-template (the chat prompt text). Handlers for the route table (server/router.h).
// Thread-safety: the I/O thread (they are quick; nothing here waits on the database or the engine).
#pragma once

#include "server/api_context.h"

namespace nc::server {

awaitable<bool> handle_health(ApiContext& ctx, Call& call);
awaitable<bool> handle_metrics(ApiContext& ctx, Call& call);
awaitable<bool> handle_list_models(ApiContext& ctx, Call& call);
awaitable<bool> handle_get_model(ApiContext& ctx, Call& call);
awaitable<bool> handle_tokenize(ApiContext& ctx, Call& call);
awaitable<bool> handle_detokenize(ApiContext& ctx, Call& call);
awaitable<bool> handle_apply_template(ApiContext& ctx, Call& call);

// The request body as a JSON object (depth-bounded), or the 400 to answer.
Result<nlohmann::json> parse_body_object(const Exchange& ex);
// The one answer for a model the caller cannot see: 404 model_not_found.
ApiError model_not_found(const std::string& id);

}  // namespace nc::server
