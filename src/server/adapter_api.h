// The operator's LoRA adapter API (adapter_registry.h), routes for the route table (server/router.h):
//   POST   /v1/admin/lora_adapters        {"id", "base", "path", "organization_id"?}  -> 201 the adapter
//   GET    /v1/admin/lora_adapters        every adapter (resident or evicted, bytes, budget)
//   GET    /v1/admin/lora_adapters/{id}
//   DELETE /v1/admin/lora_adapters/{id}   requests already using it finish with it
// An adapter with an organization_id is that organization's model only (404 for the others).
// Thread-safety: the I/O thread hands the registry's work (reading a file) to the worker pool.
#pragma once

#include "server/api_context.h"

namespace nc::server {

awaitable<bool> handle_lora_adapters(ApiContext& ctx, Call& call);

}  // namespace nc::server
