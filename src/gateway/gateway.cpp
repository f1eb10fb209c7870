#include "gateway/gateway.h"

#include "core/json_parse.h"
#include "core/timer.h"
#include "gateway/schema.h"
#include "tenancy/schema.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cctype>

#include <nlohmann/json.hpp>

#include "core/log.h"
#include "storage/migrate.h"
#include "gateway/schema.h"
#include "tenancy/schema.h"
#include "tenancy/api_key.h"

namespace nc::gateway {

using nlohmann::json;

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// The key of "Bearer <key>" (scheme case-insensitive); "" when there is none.
std::string_view bearer(std::string_view h) {
  h = trim(h);
  if (h.size() < 7) return {};
  std::string scheme(h.substr(0, 7));
  std::transform(scheme.begin(), scheme.end(), scheme.begin(), [](unsigned char c) { return std::tolower(c); });
  if (scheme != "bearer ") return {};
  return trim(h.substr(7));
}

std::string digest_bytes(std::string_view key) {
  const tenancy::KeyDigest d = tenancy::digest_key(key);
  return std::string(reinterpret_cast<const char*>(d.data()), d.size());
}

Denial denial(int status, std::string type, std::string code, std::string message) {
  Denial d;
  d.status = status;
  d.type = std::move(type);
  d.code = std::move(code);
  d.message = std::move(message);
  return d;
}

Result<std::vector<std::string>> string_list(const json& j, const char* field) {
  std::vector<std::string> out;
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) return out;
  if (!it->is_array()) return invalid_argument(fmt::format("key scopes: '{}' must be an array of strings", field));
  for (const auto& x : *it) {
    if (!x.is_string()) return invalid_argument(fmt::format("key scopes: '{}' must be an array of strings", field));
    out.push_back(x.get<std::string>());
  }
  return out;
}

UsageRecord record_of(const Ticket& t) {
  UsageRecord r;
  r.id = t.request_id;
  r.org_id = t.caller->principal.org_id;
  r.project_id = t.caller->principal.project_id;
  r.api_key_id = t.caller->principal.key_id;
  r.model = t.model;
  r.endpoint = t.endpoint;
  r.started_at = t.started_at;
  r.prompt_tokens = t.prompt_tokens;
  return r;
}

// The open record of a ticket and the worst case it holds (the budgets to check are added by hold()
// when the ledger's transaction checks them).
HoldRequest hold_of(const Ticket& t) {
  HoldRequest h;
  h.record = record_of(t);
  h.held_micros = t.held_micros;
  return h;
}

}  // namespace

std::string format_micros(int64_t micros) {
  const char* sign = micros < 0 ? "-" : "";
  const uint64_t a = micros < 0 ? -static_cast<uint64_t>(micros) : static_cast<uint64_t>(micros);
  return fmt::format("{}{}.{:06}", sign, a / 1000000, a % 1000000);
}

bool Caller::allows_model(std::string_view model) const {
  return models.empty() || std::find(models.begin(), models.end(), model) != models.end();
}

bool Caller::allows_endpoint(std::string_view endpoint) const {
  return endpoints.empty() || std::find(endpoints.begin(), endpoints.end(), endpoint) != endpoints.end();
}

Gateway::Gateway(storage::Database& db, GatewayOptions options)
    : db_(db),
      options_(std::move(options)),
      tenants_(db),
      policy_(db),
      ledger_(db, options_.instance) {}

Gateway::~Gateway() { stop(); }

void Gateway::stop() {
  {
    std::lock_guard<std::mutex> lock(refresher_mu_);
    stopping_ = true;
  }
  refresher_cv_.notify_all();
  if (refresher_.joinable()) refresher_.join();
  ledger_.stop();
}

Result<std::optional<std::string>> Gateway::start() {
  if (options_.migrations.empty()) {
    NC_ASSIGN_OR_RETURN(options_.migrations, storage::compose_migrations({tenancy::migrations(), gateway::migrations()}));
  }
  NC_RETURN_IF_ERROR(storage::migrate(db_, options_.migrations));
  NC_ASSIGN_OR_RETURN(int64_t reconciled, ledger_.reconcile());
  if (reconciled > 0) {
    NC_LOG_WARN("gateway: {} request(s) of instance '{}' were in flight when the server stopped: settled as interrupted, "
                "holds released",
                reconciled, options_.instance);
  }
  NC_RETURN_IF_ERROR(policy_.refresh());
  budgets_in_process_ = options_.budgets == GatewayOptions::Budgets::kInProcess ||
                        (options_.budgets == GatewayOptions::Budgets::kAuto && db_.dialect() == storage::Dialect::kSqlite);
  if (budgets_in_process_) NC_RETURN_IF_ERROR(accountant_.load(db_, budget_period(nc::unix_us())));
  usage_holds_.set_in_process(budgets_in_process_);
  if (!refresher_.joinable()) {
    refresher_ = std::thread([this] {
      const int tick_ms = std::max(1, std::min({100, options_.policy_refresh_ms, options_.open_record_delay_ms}));
      int64_t next_refresh = steady_ms() + options_.policy_refresh_ms;
      std::unique_lock<std::mutex> lock(refresher_mu_);
      while (!refresher_cv_.wait_for(lock, std::chrono::milliseconds(tick_ms), [this] { return stopping_; })) {
        lock.unlock();
        write_due_open_records(steady_ms());
        if (steady_ms() >= next_refresh) {
          if (Status s = policy_.refresh(); !s.is_ok()) NC_LOG_WARN("gateway: reloading limits, prices and budgets: {}", s.to_string());
          next_refresh = steady_ms() + options_.policy_refresh_ms;
        }
        lock.lock();
      }
    });
  }
  NC_ASSIGN_OR_RETURN(auto boot, tenants_.bootstrap(tenancy::Actor{"bootstrap"}));
  if (!boot) return std::optional<std::string>();
  return std::optional<std::string>(boot->plaintext);
}

std::shared_ptr<const Caller> Gateway::cached(std::string_view authorization) const {
  const std::string_view key = bearer(authorization);
  if (key.empty()) return nullptr;
  const std::string digest = digest_bytes(key);
  std::lock_guard<std::mutex> lock(cache_mu_);
  auto it = cache_.find(digest);
  if (it == cache_.end() || it->second.until_ms <= steady_ms()) return nullptr;
  const auto& p = it->second.caller->principal;
  if (p.expires_at && *p.expires_at <= nc::unix_us()) return nullptr;
  return it->second.caller;
}

void Gateway::invalidate_auth_cache() {
  std::lock_guard<std::mutex> lock(cache_mu_);
  cache_.clear();
}

std::optional<Denial> Gateway::authenticate(std::string_view authorization, std::shared_ptr<const Caller>* out) {
  if (auto c = cached(authorization)) {
    *out = std::move(c);
    return std::nullopt;
  }
  const std::string_view key = bearer(authorization);
  if (key.empty()) {
    return denial(401, "invalid_request_error", "",
                  "You didn't provide an API key. You need to provide your API key in an Authorization header using "
                  "Bearer auth (i.e. Authorization: Bearer YOUR_KEY).");
  }
  auto p = tenants_.authenticate(key, nc::unix_us());
  if (!p.is_ok()) {
    if (p.status().code() != StatusCode::kUnauthenticated) {
      Denial d = denial(503, "server_error", "", "The API key could not be checked right now; try again shortly.");
      d.retry_after_s = 1;
      NC_LOG_WARN("gateway: authenticating a key: {}", p.status().to_string());
      return d;
    }
    return denial(401, "invalid_request_error", "invalid_api_key",
                  fmt::format("Incorrect API key provided: {}. {}", tenancy::redact_key(key), p.status().message()));
  }
  auto caller = std::make_shared<Caller>();
  caller->principal = std::move(*p);
  const json scopes = json::parse(caller->principal.scopes, nullptr, false);
  if (scopes.is_object()) {
    auto models = string_list(scopes, "models");
    auto endpoints = string_list(scopes, "endpoints");
    if (models.is_ok()) caller->models = std::move(*models);
    if (endpoints.is_ok()) caller->endpoints = std::move(*endpoints);
  }
  {
    std::lock_guard<std::mutex> lock(cache_mu_);
    if (cache_.size() >= 100000) cache_.clear();
    cache_[digest_bytes(key)] = CacheEntry{caller, steady_ms() + options_.auth_cache_ttl_ms};
  }
  *out = std::move(caller);
  return std::nullopt;
}

std::optional<Denial> Gateway::authorize_inference(const Caller& c, std::string_view endpoint, std::string_view model) const {
  if (c.principal.kind != tenancy::KeyKind::kInference) {
    return denial(403, "invalid_request_error", "insufficient_permissions",
                  "Admin keys manage the organization and cannot call models; use an inference key (nc-inf-...).");
  }
  if (!c.allows_endpoint(endpoint)) {
    return denial(403, "invalid_request_error", "insufficient_permissions",
                  fmt::format("This API key is not allowed to call the {} endpoint.", endpoint));
  }
  if (!model.empty() && !c.allows_model(model)) {
    Denial d = denial(403, "invalid_request_error", "model_not_allowed",
                      fmt::format("This API key is not allowed to use the model `{}`.", model));
    d.param = "model";
    return d;
  }
  return std::nullopt;
}

std::optional<Denial> Gateway::authorize_admin(const Caller& c) const {
  if (c.principal.kind != tenancy::KeyKind::kAdmin) {
    return denial(403, "invalid_request_error", "insufficient_permissions",
                  "This endpoint needs an admin key (nc-admin-...); inference keys can only call models.");
  }
  return std::nullopt;
}

std::vector<LimitedScope> Gateway::scopes_of(const Caller& c, const Snapshot& snap) const {
  std::vector<LimitedScope> out;
  auto add = [&](Scope s, const std::string& id) {
    if (id.empty()) return;
    LimitedScope ls;
    ls.key = fmt::format("{}:{}", scope_name(s), id);
    if (const Limits* l = snap.find_limits(s, id)) {
      ls.limits.rpm = l->rpm.value_or(0);
      ls.limits.tpm = l->tpm.value_or(0);
      ls.limits.max_concurrent = l->max_concurrent.value_or(0);
    }
    out.push_back(std::move(ls));
  };
  add(Scope::kKey, c.principal.key_id);
  add(Scope::kProject, c.principal.project_id);
  add(Scope::kOrg, c.principal.org_id);
  return out;
}

int64_t Gateway::max_tokens_cap(const Caller& c) {
  auto snap = policy_.snapshot();
  int64_t cap = 0;
  for (auto [s, id] : {std::pair{Scope::kKey, &c.principal.key_id}, std::pair{Scope::kProject, &c.principal.project_id},
                       std::pair{Scope::kOrg, &c.principal.org_id}}) {
    if (const Limits* l = snap->find_limits(s, *id); l && l->max_tokens) cap = cap == 0 ? *l->max_tokens : std::min(cap, *l->max_tokens);
  }
  return cap;
}

std::optional<Denial> Gateway::admit(std::shared_ptr<const Caller> c, const AdmitRequest& r, Ticket* t) {
  auto snap = policy_.snapshot();
  t->request_id = r.request_id;
  t->model = r.model;
  t->endpoint = r.endpoint;
  t->caller = c;
  t->started_at = nc::unix_us();
  t->scopes = scopes_of(*c, *snap);
  t->prompt_tokens = r.prompt_tokens;
  t->reserved_tokens = r.prompt_tokens + r.max_output_tokens;
  const Price* p = snap->price_at(r.model, t->started_at);
  if (!p && !r.price_model.empty()) p = snap->price_at(r.price_model, t->started_at);
  if (p) t->price = *p;
  const auto& pr = c->principal;
  for (auto [s, id] : {std::pair{Scope::kOrg, &pr.org_id}, std::pair{Scope::kProject, &pr.project_id},
                       std::pair{Scope::kKey, &pr.key_id}}) {
    if (id->empty()) continue;
    if (const Budget* b = snap->find_budget(s, *id)) t->budgets.push_back(*b);
  }
  if (!t->budgets.empty()) {
    t->held_micros = t->price ? token_cost_micros(*t->price, r.prompt_tokens, r.max_output_tokens, 0) : 0;
  }
  RateLimiter::Decision d = limiter_.acquire(t->scopes, t->reserved_tokens);
  t->headers = d.headers;
  if (d.admitted && !t->budgets.empty() && budgets_in_process_) {
    // The hold in memory (exact: this process is the ledger's only writer); the open record follows
    // in the background, so a crash still leaves a record to reconcile.
    if (auto refused = accountant_.try_hold(t->budgets, budget_period(t->started_at), t->held_micros)) {
      release(*t);
      Denial q = denial(429, "insufficient_quota", "insufficient_quota",
                        "You exceeded your current quota, please check your plan and billing details. " + *refused);
      q.should_retry = false;
      q.headers = t->headers;
      return q;
    }
    t->had_hold = true;
    t->open_record_pending = true;  // written by write_open_record() or defer_open_record()
  }
  if (d.admitted) return std::nullopt;
  t->released = true;
  const std::string where = fmt::format("{} in organization {}", r.model.empty() ? r.endpoint : r.model, pr.org_id);
  Denial out;
  out.status = 429;
  out.code = "rate_limit_exceeded";
  out.headers = d.headers;
  out.retry_after_s = d.retry_after_s;
  const std::string retry = RateLimiter::duration(d.retry_after_s);
  if (d.reason == "too_large") {
    out.type = "tokens";
    out.should_retry = false;
    out.retry_after_s = -1;
    out.message = fmt::format("Request too large for {} on tokens per min (TPM) of {}: Limit {}, Requested {}. The input or "
                              "output tokens must be reduced in order to run successfully.",
                              where, d.scope, d.limit, d.requested);
  } else if (d.reason == "concurrency") {
    out.type = "requests";
    out.message = fmt::format("Too many concurrent requests for {} ({}): Limit {}. Please try again when one finishes.", where,
                              d.scope, d.limit);
  } else {
    const bool req = d.reason == "requests";
    out.type = req ? "requests" : "tokens";
    out.message = fmt::format("Rate limit reached for {} on {} ({}): Limit {}, Used {}, Requested {}. Please try again in {}.",
                              where, req ? "requests per min (RPM)" : "tokens per min (TPM)", d.scope, d.limit, d.used,
                              d.requested, retry);
  }
  return out;
}

std::vector<std::pair<Scope, std::string>> Gateway::counter_scopes(const std::string& org, const std::string& project,
                                                                    const std::string& key) {
  std::vector<std::pair<Scope, std::string>> out{{Scope::kOrg, org}};
  if (!project.empty()) out.emplace_back(Scope::kProject, project);
  if (!key.empty()) out.emplace_back(Scope::kKey, key);
  return out;
}

void Gateway::hold(Ticket& t, std::function<void(std::optional<Denial>)> done) {
  HoldRequest h = hold_of(t);
  if (!budgets_in_process_) h.budgets = t.budgets;  // checked by the ledger's transaction
  t.had_hold = true;  // settle() updates the open record; when the hold fails nothing is settled
  ledger_.hold(std::move(h), [done = std::move(done)](Status s) {
    if (s.is_ok()) return done(std::nullopt);
    Denial d;
    if (s.code() == StatusCode::kResourceExhausted) {
      d = denial(429, "insufficient_quota", "insufficient_quota",
                 "You exceeded your current quota, please check your plan and billing details. " +
                     s.message().substr(s.message().find(':') + 2));
      d.should_retry = false;
    } else {
      NC_LOG_ERROR("gateway: budget hold: {}", s.to_string());
      d = denial(503, "server_error", "", "The usage ledger is unavailable; try again shortly.");
      d.retry_after_s = 1;
    }
    done(d);
  });
}

void Gateway::write_open_record(Ticket& t, std::function<void(Status)> done) {
  t.open_record_pending = false;
  hold(t, [id = t.request_id, done = std::move(done)](std::optional<Denial> failed) {
    if (failed) NC_LOG_ERROR("gateway: writing the open record of {}: {}", id, failed->message);
    done(failed ? unavailable(failed->message) : Status::ok());
  });
}

void Gateway::defer_open_record(Ticket& t) {
  t.open_record_pending = false;
  t.open_record_deferred = true;
  std::lock_guard<std::mutex> lock(opens_mu_);
  deferred_opens_[t.request_id] = DeferredOpen{hold_of(t), steady_ms() + options_.open_record_delay_ms};
}

void Gateway::write_due_open_records(int64_t now_ms) {
  std::lock_guard<std::mutex> lock(opens_mu_);
  for (auto it = deferred_opens_.begin(); it != deferred_opens_.end();) {
    if (it->second.due_ms > now_ms) {
      ++it;
      continue;
    }
    ledger_.hold(std::move(it->second.hold), [id = it->first](Status s) {
      if (!s.is_ok()) NC_LOG_ERROR("gateway: writing the open record of {}: {}", id, s.to_string());
    });
    it = deferred_opens_.erase(it);
  }
}

void Gateway::progress(Ticket& t, int64_t prompt_tokens, int64_t completion_tokens) {
  if (!t.had_hold || t.open_record_deferred) return;  // no open record to bring up to date
  const int64_t now = steady_ms();
  if (now - t.last_progress_ms < options_.progress_interval_ms) return;
  t.last_progress_ms = now;
  int64_t cost = t.price ? token_cost_micros(*t.price, prompt_tokens, completion_tokens, 0) : 0;
  if (!t.budgets.empty()) cost = std::min(cost, t.held_micros);  // as settle() bills it
  ledger_.progress(t.request_id, prompt_tokens, completion_tokens, cost);
}

void Gateway::release(Ticket& t) {
  if (t.released) return;
  t.released = true;
  limiter_.release(t.scopes, t.reserved_tokens);
}

void Gateway::settle(Ticket& t, const Usage& u, std::function<void(Status)> done) {
  const int64_t used = u.prompt_tokens + u.completion_tokens;
  if (!t.released) {
    t.released = true;
    limiter_.release(t.scopes, std::max<int64_t>(0, t.reserved_tokens - used));
  }
  UsageRecord r = record_of(t);
  r.status = u.status;
  r.prompt_tokens = u.prompt_tokens;
  r.completion_tokens = u.completion_tokens;
  r.cached_tokens = u.cached_tokens;
  r.cost_micros = t.price ? token_cost_micros(*t.price, u.prompt_tokens, u.completion_tokens, u.cached_tokens) : 0;
  if (t.had_hold && !t.budgets.empty()) r.cost_micros = std::min(r.cost_micros, t.held_micros);  // never above what was held
  if (u.status == "error") r.cost_micros = 0;                              // our failure is not billed
  r.held_micros = t.had_hold ? t.held_micros : 0;
  r.finished_at = nc::unix_us();
  if (!budgets_in_process_) return ledger_.settle(std::move(r), std::move(done));
  // A deferred open record still waiting is dropped: the final record is the only one.
  bool open_written = !t.open_record_deferred;
  if (t.open_record_deferred) {
    std::lock_guard<std::mutex> lock(opens_mu_);
    open_written = deferred_opens_.erase(t.request_id) == 0;
  }
  // After the commit, the in-memory hold becomes spend.
  auto scopes = counter_scopes(r.org_id, r.project_id, r.api_key_id);
  const int64_t cost = r.cost_micros;
  Ledger::Done then = [this, budgets = t.had_hold ? t.budgets : std::vector<Budget>{}, held = t.held_micros,
                       period = budget_period(t.started_at), scopes = std::move(scopes), cost,
                       done = std::move(done)](Status s) {
    if (s.is_ok()) accountant_.add_spent(scopes, period, cost);
    accountant_.release(budgets, period, held);
    done(std::move(s));
  };
  if (open_written) ledger_.settle(std::move(r), std::move(then));
  else ledger_.settle_without_hold(std::move(r), std::move(then));
}

void Gateway::ingest(const Caller& c, std::vector<UsageEvent> events,
                     std::function<void(Result<Ledger::IngestResult>)> done) {
  ingest(c.principal.org_id, std::move(events), std::move(done));
}

void Gateway::ingest(const std::string& org, std::vector<UsageEvent> events,
                     std::function<void(Result<Ledger::IngestResult>)> done) {
  if (!budgets_in_process_) return ledger_.ingest(org, std::move(events), std::move(done));
  // Keep what each event will add to the counters, to count it once its insert has committed.
  std::vector<std::tuple<std::vector<std::pair<Scope, std::string>>, std::string, int64_t>> costs;
  for (const auto& e : events) {
    costs.emplace_back(counter_scopes(org, e.project_id, e.api_key_id), budget_period(e.time), e.cost_micros);
  }
  ledger_.ingest(org, std::move(events),
                 [this, costs = std::move(costs), done = std::move(done)](Result<Ledger::IngestResult> r) {
                   if (r.is_ok()) {
                     for (size_t i = 0; i < costs.size(); ++i) {
                       if (r->inserted[i]) accountant_.add_spent(std::get<0>(costs[i]), std::get<1>(costs[i]), std::get<2>(costs[i]));
                     }
                   }
                   done(std::move(r));
                 });
}

}  // namespace nc::gateway
