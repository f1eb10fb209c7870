// Gateway: the multi-tenant front door of the inference API, without any HTTP — the HTTP server asks it
// who is calling (API key), whether the call is in the key's scopes, whether rate limits and budgets
// admit it, and tells it what the request used so it is billed exactly once.
//
//   authenticate  "Authorization: Bearer nc-inf-..." -> Caller (tenant from the key, never from the
//                 request). Cached per key digest for auth_cache_ttl_ms; a key revoked or rotated
//                 through this process is dropped from the cache at once (invalidate_auth_cache).
//   authorize     inference keys call models, admin keys call admin routes; key scopes
//                 {"models": [...], "endpoints": [...]} narrow further (403).
//   admit         max_tokens cap, RPM / TPM (prompt + max_tokens reserved) / concurrency per key,
//                 project and org, all in memory; fills the x-ratelimit-* headers (429 when refused).
//   budgets       when a budget applies, the worst-case cost is held: in this process's memory when
//                 it is the ledger's only writer (SQLite; the open record is written in the
//                 background — for a response sent whole only if it runs past
//                 open_record_delay_ms), else in the ledger's transaction (PostgreSQL: hold(), awaited).
//                 429 insufficient_quota when over.
//   settle        the ledger record, committed before the HTTP layer sends the last byte; returns the
//                 unused reserved tokens to the limiter.
//
// Errors for clients are Denial (= nc::ApiError) values with OpenAI's status / type / code / message and headers.
// Threads: every method is thread-safe. authenticate() on a cache miss and the admin/policy calls do
// database work (run them off the I/O thread); cached(), authorize(), admit(), release() do not;
// hold() and settle() return at once and call back on the ledger thread.
// Ownership: borrows the Database (outlives the Gateway); owns its TenantStore, Policy and Ledger.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "gateway/budget_accountant.h"
#include "gateway/ledger.h"
#include "gateway/policy.h"
#include "gateway/rate_limiter.h"
#include "gateway/usage_holds.h"
#include "storage/database.h"
#include "storage/migrate.h"
#include "tenancy/tenant_store.h"

namespace nc::gateway {

struct GatewayOptions {
  std::string instance = "local";  // names this process's open ledger records (reconciled at start)
  // Budgets checked in memory (exact for the ledger's only writer: the SQLite default) or in the
  // database's transaction (several processes on PostgreSQL). Default: by the database's dialect.
  enum class Budgets { kAuto, kInProcess, kDatabase } budgets = Budgets::kAuto;
  int auth_cache_ttl_ms = 5000;
  int policy_refresh_ms = 2000;
  // In-process budgets, a response sent whole (not streamed): its open record is written only if it is
  // still running after this long. Nothing of it reaches the client before its final record commits,
  // so a short request needs no other record; a long one leaves a record to reconcile after a crash.
  int open_record_delay_ms = 1000;
  // A streamed response's open record is brought up to date with what was delivered at most this often
  // (progress()): what a crash can leave unbilled.
  int progress_interval_ms = 1000;
  // The deployment's schema, composed by the app from its modules (storage::compose_migrations), run by
  // start(). Empty: tenancy's and the gateway's own.
  std::vector<storage::Migration> migrations;
};

// A refusal for the client: the one API error type (core/api_error.h), with retry hints and headers.
using Denial = ApiError;

// An authenticated caller: the key's tenant and its scopes, parsed.
struct Caller {
  tenancy::Principal principal;
  std::vector<std::string> models, endpoints;  // empty: any
  bool allows_model(std::string_view model) const;
  bool allows_endpoint(std::string_view endpoint) const;
};

// One admitted inference request, from admit() to settle().
struct Ticket {
  std::string request_id, model, endpoint;
  std::shared_ptr<const Caller> caller;
  std::vector<LimitedScope> scopes;
  int64_t prompt_tokens = 0, reserved_tokens = 0;
  std::optional<Price> price;
  std::vector<Budget> budgets;
  int64_t held_micros = 0;
  bool had_hold = false, released = false;
  bool open_record_pending = false;   // in-process budgets: write_open_record() not called yet
  bool open_record_deferred = false;  // defer_open_record() was called
  int64_t started_at = 0;  // unix microseconds
  int64_t last_progress_ms = 0;  // progress(): when the open record was last brought up to date
  Headers headers;         // x-ratelimit-* to send with the response
};

struct AdmitRequest {
  std::string request_id, endpoint, model;
  // Priced as this model when `model` has no price of its own ("": none): a LoRA adapter's base.
  std::string price_model;
  int64_t prompt_tokens = 0;
  int64_t max_output_tokens = 0;  // over all choices
};

struct Usage {
  int64_t prompt_tokens = 0, completion_tokens = 0, cached_tokens = 0;
  std::string status = "completed";  // completed | client_disconnected | error
};

class Gateway {
 public:
  Gateway(storage::Database& db, GatewayOptions options = {});
  ~Gateway();

  // Migrates the schema, settles records a crash left open, loads the policy; on the first start
  // creates the operator organization and its admin key and returns the key (print it once).
  Result<std::optional<std::string>> start();
  void stop();

  std::shared_ptr<const Caller> cached(std::string_view authorization) const;
  std::optional<Denial> authenticate(std::string_view authorization, std::shared_ptr<const Caller>* out);
  void invalidate_auth_cache();

  // Inference endpoints: "completions", "chat.completions", "embeddings", "models", "tokenize",
  // "usage.events". `model` empty when the route has none.
  std::optional<Denial> authorize_inference(const Caller& c, std::string_view endpoint, std::string_view model) const;
  std::optional<Denial> authorize_admin(const Caller& c) const;

  // The smallest max_tokens cap of the caller's key, project and org (0: none).
  int64_t max_tokens_cap(const Caller& c);
  std::optional<Denial> admit(std::shared_ptr<const Caller> c, const AdmitRequest& r, Ticket* t);
  // Whether admit() left the budget hold to hold() (database mode).
  bool needs_hold(const Ticket& t) const { return !t.budgets.empty() && !budgets_in_process_; }
  void hold(Ticket& t, std::function<void(std::optional<Denial>)> done);
  // In-process budgets (admit() held the budget in memory): writes the request's open record, so a
  // crash leaves a record to reconcile. A streaming response awaits it before its first byte (every
  // request a client saw has a record).
  void write_open_record(Ticket& t, std::function<void(Status)> done);
  // The same for a response sent whole: its final record precedes any byte, so the open record is
  // written only if the request is still running after options.open_record_delay_ms.
  void defer_open_record(Ticket& t);
  // A streaming response with an open record: what was delivered so far, written to the record at most
  // every options.progress_interval_ms (a crash then bills it, Ledger::reconcile). Cheap otherwise.
  void progress(Ticket& t, int64_t prompt_tokens, int64_t completion_tokens);
  // Returns the rate-limit reservation of a ticket that will not run (idempotent).
  void release(Ticket& t);
  // Releases the reservation (unused tokens back) and writes the ledger record; done after COMMIT.
  void settle(Ticket& t, const Usage& u, std::function<void(Status)> done);

  // POST /v1/usage/events body (one CloudEvent object, or an array) -> events priced from the
  // policy; InvalidArgument naming the bad event/field (a `subject` that is not a project of the
  // caller's org included). Reads the database (projects): call it off the I/O thread.
  Result<std::vector<UsageEvent>> parse_usage_events(const Caller& c, const std::string& body);

  // Stores usage events (Ledger::ingest) and counts their cost against budgets at once (admission sees
  // it with no restart). The second form is for the platform's own meters (metered_usage.h).
  void ingest(const Caller& c, std::vector<UsageEvent> events, std::function<void(Result<Ledger::IngestResult>)> done);
  void ingest(const std::string& org, std::vector<UsageEvent> events,
              std::function<void(Result<Ledger::IngestResult>)> done);

  tenancy::TenantStore& tenants() { return tenants_; }
  Policy& policy() { return policy_; }
  Ledger& ledger() { return ledger_; }
  // Budget holds for long-running metered usage (GPU jobs), usage_holds.h.
  UsageHolds& usage_holds() { return usage_holds_; }
  storage::Database& db() { return db_; }

 private:
  std::vector<LimitedScope> scopes_of(const Caller& c, const Snapshot& snap) const;
  // Writes the deferred open records that are due (housekeeping thread).
  void write_due_open_records(int64_t now_ms);
  static std::vector<std::pair<Scope, std::string>> counter_scopes(const std::string& org, const std::string& project,
                                                                   const std::string& key);

  storage::Database& db_;
  GatewayOptions options_;
  tenancy::TenantStore tenants_;
  Policy policy_;
  Ledger ledger_;
  RateLimiter limiter_;
  BudgetAccountant accountant_;
  bool budgets_in_process_ = false;
  UsageHolds usage_holds_{policy_, accountant_};
  struct CacheEntry {
    std::shared_ptr<const Caller> caller;
    int64_t until_ms = 0;
  };
  mutable std::mutex cache_mu_;
  std::unordered_map<std::string, CacheEntry> cache_;  // by key digest
  // Deferred open records by request id: the record and when it is due (steady ms). settle() takes
  // its own out; the housekeeping thread writes the due ones (submitting under the mutex, so a
  // settle() that finds its entry gone is queued after the open record in the ledger).
  struct DeferredOpen {
    HoldRequest hold;
    int64_t due_ms = 0;
  };
  std::mutex opens_mu_;
  std::unordered_map<std::string, DeferredOpen> deferred_opens_;
  // Housekeeping: reloads the policy every policy_refresh_ms, writes due open records.
  std::thread refresher_;
  std::mutex refresher_mu_;
  std::condition_variable refresher_cv_;
  bool stopping_ = false;
};

// Money for people: micro-units as a decimal string ("1.234567").
std::string format_micros(int64_t micros);

}  // namespace nc::gateway
