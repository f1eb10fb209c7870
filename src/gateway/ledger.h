// Ledger: the usage ledger — one record per request, budget holds, and metered usage events — written
// through storage::GroupCommit (one transaction and one fsync per group of requests).
//
// A request's life in the ledger:
//   - hold() (only when a budget applies to it): checks every budget of the request's org, project
//     and key against spent + held + this request's worst-case cost, in the same transaction adds the
//     hold to the `spend` counters of the period and inserts the request's record in state 'open'.
//     Concurrent requests are serialized by the transaction, so they can never overspend together.
//   - settle(): writes the final record (state 'settled', status, tokens, cost) — an UPDATE of the
//     open record (moving its hold to spent on the counters) or an INSERT when there is none. A
//     request settles once: settling it again is AlreadyExists.
//     The callback fires after COMMIT: the HTTP layer sends the last byte only then.
//   - progress(): a streaming request's open record brought up to date with what was delivered so far
//     (tokens and cost), batched with the group commit.
//   - reconcile() at start: records this instance left 'open' (the process died mid-request) are
//     settled as status 'interrupted' with the tokens and cost of their last progress() (0 if none), and
//     their holds released.
// Usage events (POST /v1/usage/events): inserted with ON CONFLICT DO NOTHING on (org, source, id),
// so a replayed event is stored once; the caller learns which were new and which duplicates, and
// only after the commit (the dedupe key is claimed by the durable write itself).
//
// Threads: every method may be called from any thread; callbacks run on the ledger's writer thread.
// Ownership: borrows the Database; owns its GroupCommit.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "gateway/policy.h"
#include "storage/group_commit.h"

namespace nc::gateway {

struct UsageRecord {
  std::string id;  // the request id
  std::string org_id, project_id, api_key_id, model, endpoint;
  std::string status;  // completed | client_disconnected | error | interrupted
  int64_t prompt_tokens = 0, completion_tokens = 0, cached_tokens = 0;
  int64_t cost_micros = 0;
  int64_t held_micros = 0;  // the worst case held at admission (0: no budget applied)
  int64_t started_at = 0, finished_at = 0;  // unix microseconds
};

struct HoldRequest {
  UsageRecord record;  // ids, model, endpoint, started_at, prompt_tokens
  int64_t held_micros = 0;
  std::vector<Budget> budgets;  // the budgets that apply (from the policy snapshot)
};

struct UsageEvent {
  std::string source, id, type;
  std::string project_id, api_key_id;
  int64_t time = 0;  // unix microseconds
  std::string item;  // model id or meter name
  int64_t quantity = 0, input_tokens = 0, output_tokens = 0, cached_tokens = 0;
  int64_t cost_micros = 0;
  std::string data;  // the event's data as JSON text
};

class Ledger {
 public:
  using Done = std::function<void(Status)>;

  Ledger(storage::Database& db, std::string instance);
  ~Ledger();

  // Settles this instance's open records (see above); returns how many. Call before serving.
  Result<int64_t> reconcile();

  // ResourceExhausted with "insufficient_quota: ..." when a budget in h.budgets would be exceeded
  // (none given: the open record and the hold are written without a check).
  void hold(HoldRequest h, Done done);
  void settle(UsageRecord r, Done done);
  // Updates an open record (no-op once settled); fire and forget (a failure is logged).
  void progress(const std::string& id, int64_t prompt_tokens, int64_t completion_tokens, int64_t cost_micros);
  // settle() for a request that wrote no open record (hold() was never called for it): the final
  // record is inserted at once, without looking for an open one first.
  void settle_without_hold(UsageRecord r, Done done);

  struct IngestResult {
    std::vector<bool> inserted;  // per event: false = a duplicate of a stored event
  };
  void ingest(std::string org_id, std::vector<UsageEvent> events,
              std::function<void(Result<IngestResult>)> done);

  void stop();
  storage::GroupCommit::Stats stats() const;
  const std::string& instance() const { return instance_; }

 private:
  storage::Database& db_;
  std::string instance_;
  std::unique_ptr<storage::GroupCommit> writer_;
};

}  // namespace nc::gateway
