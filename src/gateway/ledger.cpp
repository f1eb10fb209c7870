#include "gateway/ledger.h"
#include "core/log.h"
#include "core/timer.h"

#include <fmt/format.h>

#include "tenancy/tenant_store.h"

namespace nc::gateway {

using storage::Row;
using storage::SqlValue;
using storage::Transaction;

namespace {

SqlValue text_or_null(const std::string& s) { return s.empty() ? SqlValue() : SqlValue(s); }

// The (scope, id) counters a record touches: its org, project and key.
std::vector<std::pair<const char*, std::string>> counter_scopes(const UsageRecord& r) {
  std::vector<std::pair<const char*, std::string>> out;
  out.emplace_back("org", r.org_id);
  if (!r.project_id.empty()) out.emplace_back("project", r.project_id);
  if (!r.api_key_id.empty()) out.emplace_back("key", r.api_key_id);
  return out;
}

Status add_to_counters(Transaction& tx, const UsageRecord& r, const std::string& period, int64_t spent, int64_t held) {
  for (const auto& [scope, id] : counter_scopes(r)) {
    NC_RETURN_IF_ERROR(tx.exec("INSERT INTO spend (scope, scope_id, period, spent_micros, held_micros) VALUES ($1, $2, $3, $4, $5) "
                               "ON CONFLICT (scope, scope_id, period) DO UPDATE SET "
                               "spent_micros = spend.spent_micros + $4, held_micros = spend.held_micros + $5",
                               {scope, id, period, spent, held})
                           .status());
  }
  return Status::ok();
}

}  // namespace

Ledger::Ledger(storage::Database& db, std::string instance)
    : db_(db), instance_(std::move(instance)), writer_(std::make_unique<storage::GroupCommit>(db)) {}

Ledger::~Ledger() { stop(); }

void Ledger::stop() { writer_->stop(); }

storage::GroupCommit::Stats Ledger::stats() const { return writer_->stats(); }

Result<int64_t> Ledger::reconcile() {
  return db_.transact([&](Transaction& tx) -> Result<int64_t> {
    NC_ASSIGN_OR_RETURN(auto rows, tx.query("SELECT id, org_id, project_id, api_key_id, held_micros, period, cost_micros "
                                            "FROM usage_records WHERE state = 'open' AND instance = $1",
                                            {instance_}));
    const int64_t now = nc::unix_us();
    for (const Row& row : rows) {
      UsageRecord r;
      NC_ASSIGN_OR_RETURN(r.id, row.get_text(0));
      NC_ASSIGN_OR_RETURN(r.org_id, row.get_text(1));
      if (!row.is_null(2)) {
        NC_ASSIGN_OR_RETURN(r.project_id, row.get_text(2));
      }
      if (!row.is_null(3)) {
        NC_ASSIGN_OR_RETURN(r.api_key_id, row.get_text(3));
      }
      NC_ASSIGN_OR_RETURN(int64_t held, row.get_int(4));
      NC_ASSIGN_OR_RETURN(std::string period, row.get_text(5));
      // What was delivered up to its last progress() stays billed (tokens and cost as last written).
      NC_ASSIGN_OR_RETURN(int64_t cost, row.get_int(6));
      NC_RETURN_IF_ERROR(tx.exec("UPDATE usage_records SET state = 'settled', status = 'interrupted', finished_at = $2 "
                                 "WHERE id = $1",
                                 {r.id, now})
                             .status());
      NC_RETURN_IF_ERROR(add_to_counters(tx, r, period, cost, -held));
    }
    return static_cast<int64_t>(rows.size());
  });
}

void Ledger::progress(const std::string& id, int64_t prompt_tokens, int64_t completion_tokens, int64_t cost_micros) {
  writer_->submit(
      [id, prompt_tokens, completion_tokens, cost_micros](Transaction& tx) -> Status {
        return tx
            .exec("UPDATE usage_records SET prompt_tokens = $2, completion_tokens = $3, cost_micros = $4 "
                  "WHERE id = $1 AND state = 'open'",
                  {id, prompt_tokens, completion_tokens, cost_micros})
            .status();
      },
      [id](Status s) {
        if (!s.is_ok()) NC_LOG_WARN("ledger: progress of {}: {}", id, s.to_string());
      });
}

void Ledger::hold(HoldRequest h, Done done) {
  auto req = std::make_shared<HoldRequest>(std::move(h));
  writer_->submit(
      [this, req](Transaction& tx) -> Status {
        const UsageRecord& r = req->record;
        const std::string period = budget_period(r.started_at);
        for (const Budget& b : req->budgets) {
          NC_ASSIGN_OR_RETURN(auto row, tx.query_optional("SELECT spent_micros, held_micros FROM spend WHERE scope = $1 AND "
                                                          "scope_id = $2 AND period = $3",
                                                          {scope_name(b.scope), b.scope_id, period}));
          int64_t spent = 0, held = 0;
          if (row) {
            NC_ASSIGN_OR_RETURN(spent, row->get_int(0));
            NC_ASSIGN_OR_RETURN(held, row->get_int(1));
          }
          if (spent + held + req->held_micros > b.monthly_limit_micros) {
            return Status(StatusCode::kResourceExhausted,
                          fmt::format("insufficient_quota: the monthly budget of {} {} is {:.6f} USD; {:.6f} spent, "
                                      "{:.6f} held by requests in flight, this request may cost up to {:.6f}",
                                      scope_name(b.scope), b.scope_id, b.monthly_limit_micros / 1e6, spent / 1e6,
                                      held / 1e6, req->held_micros / 1e6));
          }
        }
        NC_RETURN_IF_ERROR(add_to_counters(tx, r, period, 0, req->held_micros));
        return tx
            .exec("INSERT INTO usage_records (id, org_id, project_id, api_key_id, model, endpoint, state, prompt_tokens, "
                  "held_micros, period, instance, started_at) VALUES ($1, $2, $3, $4, $5, $6, 'open', $7, $8, $9, $10, $11)",
                  {r.id, r.org_id, text_or_null(r.project_id), text_or_null(r.api_key_id), r.model, r.endpoint, r.prompt_tokens,
                   req->held_micros, period, instance_, r.started_at})
            .status();
      },
      std::move(done));
}

namespace {

Status insert_settled(Transaction& tx, const UsageRecord& r, const std::string& period, const std::string& instance) {
  return tx
      .exec("INSERT INTO usage_records (id, org_id, project_id, api_key_id, model, endpoint, state, status, prompt_tokens, "
            "completion_tokens, cached_tokens, cost_micros, period, instance, started_at, finished_at, held_micros) VALUES "
            "($1, $2, $3, $4, $5, $6, 'settled', $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
            {r.id, r.org_id, text_or_null(r.project_id), text_or_null(r.api_key_id), r.model, r.endpoint, r.status,
             r.prompt_tokens, r.completion_tokens, r.cached_tokens, r.cost_micros, period, instance, r.started_at,
             r.finished_at, r.held_micros})
      .status();
}

}  // namespace

void Ledger::settle(UsageRecord rec, Done done) {
  auto r = std::make_shared<UsageRecord>(std::move(rec));
  writer_->submit(
      [this, r](Transaction& tx) -> Status {
        const std::string period = budget_period(r->started_at);
        NC_ASSIGN_OR_RETURN(auto open, tx.query("UPDATE usage_records SET state = 'settled', status = $2, prompt_tokens = $3, "
                                                "completion_tokens = $4, cached_tokens = $5, cost_micros = $6, finished_at = $7 "
                                                "WHERE id = $1 AND state = 'open' RETURNING held_micros",
                                                {r->id, r->status, r->prompt_tokens, r->completion_tokens, r->cached_tokens,
                                                 r->cost_micros, r->finished_at}));
        int64_t held = 0;
        if (!open.empty()) {
          NC_ASSIGN_OR_RETURN(held, open[0].get_int(0));
        } else {
          NC_RETURN_IF_ERROR(insert_settled(tx, *r, period, instance_));
        }
        return add_to_counters(tx, *r, period, r->cost_micros, -held);
      },
      std::move(done));
}

void Ledger::settle_without_hold(UsageRecord rec, Done done) {
  auto r = std::make_shared<UsageRecord>(std::move(rec));
  writer_->submit(
      [this, r](Transaction& tx) -> Status {
        const std::string period = budget_period(r->started_at);
        NC_RETURN_IF_ERROR(insert_settled(tx, *r, period, instance_));
        return add_to_counters(tx, *r, period, r->cost_micros, 0);
      },
      std::move(done));
}

void Ledger::ingest(std::string org_id, std::vector<UsageEvent> events, std::function<void(Result<IngestResult>)> done) {
  struct State {
    std::string org_id;
    std::vector<UsageEvent> events;
    IngestResult result;
    std::function<void(Result<IngestResult>)> done;
  };
  auto st = std::make_shared<State>();
  st->org_id = std::move(org_id);
  st->events = std::move(events);
  st->done = std::move(done);
  writer_->submit(
      [st](Transaction& tx) -> Status {
        st->result.inserted.assign(st->events.size(), false);
        const int64_t now = nc::unix_us();
        for (size_t i = 0; i < st->events.size(); ++i) {
          const UsageEvent& e = st->events[i];
          NC_ASSIGN_OR_RETURN(
              int64_t n,
              tx.exec("INSERT INTO usage_events (org_id, source, id, type, project_id, api_key_id, time, item, quantity, "
                      "input_tokens, output_tokens, cached_tokens, cost_micros, data, received_at) VALUES "
                      "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) "
                      "ON CONFLICT (org_id, source, id) DO NOTHING",
                      {st->org_id, e.source, e.id, e.type, text_or_null(e.project_id), text_or_null(e.api_key_id), e.time,
                       e.item, e.quantity, e.input_tokens, e.output_tokens, e.cached_tokens, e.cost_micros,
                       text_or_null(e.data), now}));
          st->result.inserted[i] = n == 1;
          if (n == 1 && e.cost_micros != 0) {
            UsageRecord r;
            r.org_id = st->org_id;
            r.project_id = e.project_id;
            r.api_key_id = e.api_key_id;
            NC_RETURN_IF_ERROR(add_to_counters(tx, r, budget_period(e.time), e.cost_micros, 0));
          }
        }
        return Status::ok();
      },
      [st](Status s) {
        if (!s.is_ok()) st->done(s);
        else st->done(std::move(st->result));
      });
}

}  // namespace nc::gateway
