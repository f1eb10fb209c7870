#include "gateway/metered_usage.h"

#include <future>

namespace nc::gateway {

Status record_metered_usage(Gateway& gw, const std::string& org, UsageEvent e) {
  if (const Price* p = gw.policy().snapshot()->price_at(e.item, e.time)) {
    const __int128 cost = static_cast<__int128>(e.quantity) * p->per_unit +
                          token_cost_micros(*p, e.input_tokens, e.output_tokens, e.cached_tokens);
    if (cost > INT64_MAX / 2) return invalid_argument("metered usage: quantity × price overflows");
    e.cost_micros = static_cast<int64_t>(cost);
  }
  std::promise<Status> done;
  // Through the gateway, not the ledger alone: the spend counts against the org's and project's budgets
  // at once, so inference admission sees a job's GPU spend without a restart.
  gw.ingest(org, {std::move(e)}, [&](Result<Ledger::IngestResult> r) { done.set_value(r.status()); });
  return done.get_future().get();
}

}  // namespace nc::gateway
