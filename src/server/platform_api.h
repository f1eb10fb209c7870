// Adapters from the route table to the APIs that live in their own modules and know no HTTP: the admin
// API (gateway/admin_api.h), usage events (Gateway::parse_usage_events + ingest), and GPU jobs and the
// operator's capacity routes (capacity/jobs_api.h). Each runs its blocking work on the worker pool and
// writes the module's ApiResponse. Thread-safety: the I/O thread.
#pragma once

#include "server/api_context.h"

namespace nc::server {

awaitable<bool> handle_admin(ApiContext& ctx, Call& call);
awaitable<bool> handle_usage_events(ApiContext& ctx, Call& call);
// /v1/jobs..., /v1/reservations...: the caller's org and project come from its key ("local" without a
// gateway).
awaitable<bool> handle_jobs(ApiContext& ctx, Call& call);
awaitable<bool> handle_capacity_admin(ApiContext& ctx, Call& call);
// /v1/fine_tuning/jobs...: the caller's org, project and key from its key.
awaitable<bool> handle_fine_tuning(ApiContext& ctx, Call& call);


}  // namespace nc::server
