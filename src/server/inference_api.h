// The inference routes: POST /v1/completions, /v1/chat/completions (whole or streamed as server-sent
// events) and /v1/embeddings. Each request is parsed (server/openai.h), bounded (the edge's per-request
// work limit), admitted and metered through the gateway when one is on (server/inference_admission.h),
// and run on the model's engine as one engine request per choice, in its organization's fairness group.
// Thread-safety: the I/O thread; CPU-heavy preparation runs on the worker pool.
#pragma once

#include "server/api_context.h"

namespace nc::server {

awaitable<bool> handle_completions(ApiContext& ctx, Call& call);
awaitable<bool> handle_chat_completions(ApiContext& ctx, Call& call);
awaitable<bool> handle_embeddings(ApiContext& ctx, Call& call);

// The per-request work bound: `sequences` engine sequences and up to `tokens` tokens computed.
// InvalidArgument naming the limit (and the field to change) when over.
Status check_request_work(const EdgeLimits& limits, int64_t sequences, int64_t tokens, const std::string& field);

}  // namespace nc::server
