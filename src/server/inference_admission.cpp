// Admission and settlement of inference requests through the gateway (inference_admission.h).
#include "server/inference_admission.h"

namespace nc::server {

awaitable<Status> settle_request(gateway::Gateway& gw, asio::any_io_executor io, gateway::Ticket& ticket,
                                 int64_t prompt_tokens, int64_t completion_tokens, const char* status) {
  gateway::Usage u;
  u.prompt_tokens = prompt_tokens;
  u.completion_tokens = completion_tokens;
  u.status = status;
  auto done = std::make_shared<Handoff<Status>>(io);
  gw.settle(ticket, u, [done](Status st) { done->set(std::move(st)); });
  Status s = co_await done->get();
  co_return s;
}

Reply ledger_failed() {
  return error_reply(api_error(503, "The usage ledger is unavailable, so the result cannot be delivered; retry shortly.",
                               "", "", "server_error"));
}

awaitable<std::optional<Reply>> admit_request(gateway::Gateway& gw, asio::any_io_executor io,
                                              const std::shared_ptr<const gateway::Caller>& caller,
                                              const gateway::AdmitRequest& request, bool stream, gateway::Ticket* ticket) {
  if (auto d = gw.admit(caller, request, ticket)) co_return error_reply(*d);
  // Every stream has an open record before its first byte, budget or not: brought up to date as it
  // streams (Gateway::progress), it is what a crash bills.
  if (stream && !ticket->open_record_pending && !gw.needs_hold(*ticket)) ticket->open_record_pending = true;
  if (ticket->open_record_pending) {
    if (!stream) {
      gw.defer_open_record(*ticket);
      co_return std::nullopt;
    }
    auto written = std::make_shared<Handoff<Status>>(io);
    gw.write_open_record(*ticket, [written](Status st) { written->set(std::move(st)); });
    Status st = co_await written->get();
    if (st.is_ok()) co_return std::nullopt;
    co_await settle_request(gw, io, *ticket, 0, 0, "error");
    co_return ledger_failed();
  }
  if (!gw.needs_hold(*ticket)) co_return std::nullopt;
  auto done = std::make_shared<Handoff<std::optional<gateway::Denial>>>(io);
  gw.hold(*ticket, [done](std::optional<gateway::Denial> d) { done->set(std::move(d)); });
  std::optional<gateway::Denial> denied = co_await done->get();
  if (!denied) co_return std::nullopt;
  gw.release(*ticket);
  denied->headers = ticket->headers;
  co_return error_reply(*denied);
}

void EarlySettle::on_done(const engine::SchedEvent& e) {
  completion_tokens.fetch_add(e.n_generated);
  if (!e.error.is_ok()) failed.store(true);
  if (remaining.fetch_sub(1) != 1) return;
  gateway::Usage u;
  u.prompt_tokens = prompt_tokens;
  u.completion_tokens = completion_tokens.load();
  u.status = failed.load() ? "error" : "completed";
  gw->settle(ticket, u, [billed = billed](Status st) { billed->set(std::move(st)); });
}

}  // namespace nc::server
