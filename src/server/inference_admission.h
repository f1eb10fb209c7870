// The I/O-thread side of an inference request's admission and billing: awaits the gateway's decisions
// (rate limits, budget holds, open records) and its ledger commits through hand-offs, so the coroutine
// writes nothing the ledger has not recorded. EarlySettle bills a response sent whole from the engine
// thread the moment its last choice ends.
// Ownership: the Ticket belongs to the request's coroutine (or to its EarlySettle once made).
// Thread-safety: admit/settle on the I/O thread; EarlySettle::on_done on the engine thread.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>

#include "gateway/gateway.h"
#include "server/handoff.h"
#include "server/transport.h"

namespace nc::server {

// Rate limits (in memory), then a budget hold when one applies. Returns the refusal to send, or nothing
// (the ticket is then live: settle or release it).
awaitable<std::optional<Reply>> admit_request(gateway::Gateway& gw, asio::any_io_executor io,
                                              const std::shared_ptr<const gateway::Caller>& caller,
                                              const gateway::AdmitRequest& request, bool stream, gateway::Ticket* ticket);

// Writes the request's ledger record and waits for the commit (the caller sends its last byte after).
awaitable<Status> settle_request(gateway::Gateway& gw, asio::any_io_executor io, gateway::Ticket& ticket,
                                 int64_t prompt_tokens, int64_t completion_tokens, const char* status);

// The ledger could not record a finished request: its result is not delivered (nothing unbilled leaves).
Reply ledger_failed();

// Gateway on, a response sent whole: the ledger record is written from the engine's thread as soon as
// the last choice ends, so the commit runs while the I/O thread builds the answer. Owns the ticket from
// then on; the coroutine reads it only after `billed` is set.
struct EarlySettle {
  gateway::Gateway* gw = nullptr;
  gateway::Ticket ticket;
  int64_t prompt_tokens = 0;
  std::atomic<int> remaining{0};
  std::atomic<int64_t> completion_tokens{0};
  std::atomic<bool> failed{false};
  std::shared_ptr<Handoff<Status>> billed;
  // Engine thread: one choice ended (kDone).
  void on_done(const engine::SchedEvent& e);
};

}  // namespace nc::server
