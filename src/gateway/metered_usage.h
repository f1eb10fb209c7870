// Metered usage from the platform's own modules (GPU-seconds of jobs, reservations' holds, fine-tuning's
// training tokens): one usage event priced from the policy at its time (quantity × the item's per-unit
// price, plus its tokens at the item's per-million-token prices; no price: cost 0)
// and stored in the usage ledger, synchronously, its cost counted against the budgets at once. The ledger keeps (source, id) once, so a retry never
// double-bills. Tenant-submitted events go through POST /v1/usage/events (Gateway::parse_usage_events).
// Thread-safety: any thread but the ledger's; blocks until the event is committed.
#pragma once

#include <string>

#include "core/status.h"
#include "gateway/gateway.h"

namespace nc::gateway {

Status record_metered_usage(Gateway& gw, const std::string& org, UsageEvent event);

}  // namespace nc::gateway
