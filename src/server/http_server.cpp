#include "server/http_server.h"

#include <fmt/format.h>

#include <boost/asio.hpp>
#include <boost/beast.hpp>
#include <atomic>
#include <chrono>
#include <cctype>
#include <deque>
#include <optional>
#include <map>
#include <mutex>

#include "core/histogram.h"
#include "core/log.h"
#include "engine/gguf/gguf.h"
#include "capacity/jobs_api.h"
#include "gateway/admin_api.h"
#include "server/openai.h"

namespace nc::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using asio::awaitable;
using asio::use_awaitable;

namespace {

constexpr size_t kMaxBodyBytes = 8 << 20;

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Engine events for one HTTP request, handed from the engine thread to the I/O thread.
class EventQueue : public std::enable_shared_from_this<EventQueue> {
 public:
  explicit EventQueue(asio::any_io_executor ex) : timer_(ex) { timer_.expires_at(asio::steady_timer::time_point::max()); }
  void push(int choice, const engine::SchedEvent& e) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      q_.emplace_back(choice, e);
    }
    asio::post(timer_.get_executor(), [self = shared_from_this()] { self->timer_.cancel(); });
  }
  // What is queued now, without waiting.
  std::deque<std::pair<int, engine::SchedEvent>> drain() {
    std::lock_guard<std::mutex> lock(mu_);
    std::deque<std::pair<int, engine::SchedEvent>> out;
    out.swap(q_);
    return out;
  }
  awaitable<std::deque<std::pair<int, engine::SchedEvent>>> next() {
    for (;;) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (!q_.empty()) {
          std::deque<std::pair<int, engine::SchedEvent>> out;
          out.swap(q_);
          co_return out;
        }
      }
      boost::system::error_code ec;
      co_await timer_.async_wait(asio::redirect_error(use_awaitable, ec));
      timer_.expires_at(asio::steady_timer::time_point::max());
    }
  }

 private:
  asio::steady_timer timer_;
  std::mutex mu_;
  std::deque<std::pair<int, engine::SchedEvent>> q_;
};

struct Reply {
  http::status status = http::status::ok;
  std::string body;
  std::string content_type = "application/json";
  gateway::Headers headers;
};

Reply json_reply(int status, const json& j) {
  Reply r;
  r.status = static_cast<http::status>(status);
  r.body = dump(j);
  return r;
}
Reply error_reply(const ApiError& e) { return json_reply(e.status, error_body(e)); }

// Builds an error (a function, not braces: GCC 12 miscompiles aggregate temporaries in co_await).
Reply err_reply(int status, const std::string& message, const std::string& param = "", const std::string& code = "",
                const std::string& type = "invalid_request_error") {
  ApiError e;
  e.status = status;
  e.message = message;
  e.param = param;
  e.code = code;
  e.type = type;
  return error_reply(e);
}

// A gateway refusal: OpenAI's error body with the rate-limit and retry headers.
Reply denial_reply(const gateway::Denial& d) {
  Reply r = err_reply(d.status, d.message, d.param, d.code, d.type);
  r.headers = d.headers;
  if (d.retry_after_s >= 0) {
    r.headers.emplace_back("retry-after", std::to_string(static_cast<int64_t>(std::ceil(d.retry_after_s))));
    r.headers.emplace_back("retry-after-ms", std::to_string(static_cast<int64_t>(std::ceil(d.retry_after_s * 1000))));
  }
  if (!d.should_retry) r.headers.emplace_back("x-should-retry", "false");
  return r;
}

// The endpoint name key scopes use, for an inference route.
std::string endpoint_of(const std::string& path) {
  if (path == "/v1/completions") return "completions";
  if (path == "/v1/chat/completions") return "chat.completions";
  if (path == "/v1/embeddings") return "embeddings";
  if (path == "/v1/usage/events") return "usage.events";
  if (path == "/v1/models" || path.rfind("/v1/models/", 0) == 0) return "models";
  return "tokenize";  // /tokenize, /detokenize, /apply-template
}

// One value handed from another thread (the ledger's) to a coroutine on the I/O thread — the same
// timer hand-off as EventQueue (Boost 1.74's async_initiate with use_awaitable crashes under GCC 12).
template <typename T>
class Handoff : public std::enable_shared_from_this<Handoff<T>> {
 public:
  explicit Handoff(asio::any_io_executor ex) : timer_(ex) { timer_.expires_at(asio::steady_timer::time_point::max()); }
  void set(T v) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      value_.emplace(std::move(v));
    }
    asio::post(timer_.get_executor(), [self = this->shared_from_this()] { self->timer_.cancel(); });
  }
  awaitable<T> get() {
    for (;;) {
      std::optional<T> v;
      {
        std::lock_guard<std::mutex> lock(mu_);
        v.swap(value_);
      }
      if (v) {
        T out = std::move(*v);
        co_return out;
      }
      boost::system::error_code ec;
      co_await timer_.async_wait(asio::redirect_error(use_awaitable, ec));
    }
  }

 private:
  asio::steady_timer timer_;
  std::mutex mu_;
  std::optional<T> value_;
};

}  // namespace

struct HttpServer::Impl {
  Impl(ModelRegistry& m, gateway::Gateway* g, capacity::JobController* j) : models(m), gw(g), jobs(j) {}
  ModelRegistry& models;
  gateway::Gateway* gw;
  capacity::JobController* jobs;
  asio::io_context ioc{1};
  tcp::acceptor acceptor{ioc};
  // CPU work of a request before it reaches the engine (template rendering, tokenizing): off the I/O
  // thread, so one large request does not stall every other connection and stream.
  asio::thread_pool work{2};

  // Runs f() on the worker pool and resumes on the caller's executor with its result.
  template <typename F>
  awaitable<bool> offload(F f) {
    co_return co_await asio::co_spawn(work, [&f]() -> awaitable<bool> { co_return f(); }, use_awaitable);
  }
  // The same for request preparation, which runs inline when the body is small: two thread hand-offs
  // cost more than rendering and tokenizing a few KB.
  static constexpr size_t kInlinePrepBytes = 4096;
  template <typename F>
  awaitable<bool> prepare(size_t body_bytes, F f) {
    if (body_bytes <= kInlinePrepBytes) co_return f();
    co_return co_await offload(std::move(f));
  }

  // The ready model, or the error to answer: 404 unknown, 503 still loading (or gone).
  static EngineService* ready_or_error(const ModelRegistry::Lookup& l, const std::string& id, std::optional<Reply>* error) {
    switch (l.state) {
      case ModelRegistry::State::kReady: return l.service;
      case ModelRegistry::State::kLoading:
        *error = err_reply(503, fmt::format("The model `{}` is still loading; try again shortly.", id), "model",
                           "model_loading", "server_error");
        return nullptr;
      case ModelRegistry::State::kFailed:
        *error = err_reply(503, fmt::format("The model `{}` is not available.", id), "model", "model_unavailable",
                           "server_error");
        return nullptr;
      case ModelRegistry::State::kUnknown:
        *error = err_reply(404, fmt::format("The model `{}` does not exist.", id), "model", "model_not_found");
        return nullptr;
    }
    return nullptr;
  }
  EngineService* find_model(const std::string& id, std::optional<Reply>* error) {
    return ready_or_error(models.lookup(id), id, error);
  }

  awaitable<void> accept_loop() {
    for (;;) {
      boost::system::error_code ec;
      tcp::socket sock = co_await acceptor.async_accept(asio::redirect_error(use_awaitable, ec));
      if (ec) {
        if (!acceptor.is_open()) co_return;
        continue;
      }
      asio::co_spawn(ioc, session(std::move(sock)), asio::detached);
    }
  }

  awaitable<bool> write_reply(beast::tcp_stream& stream, const http::request<http::string_body>& req, const Reply& r,
                              const std::string& request_id) {
    http::response<http::string_body> res{r.status, req.version()};
    res.set(http::field::server, "neocloud");
    res.set(http::field::content_type, r.content_type);
    res.set("x-request-id", request_id);
    for (const auto& [k, v] : r.headers) res.set(k, v);
    res.keep_alive(req.keep_alive());
    res.body() = r.body;
    res.prepare_payload();
    boost::system::error_code ec;
    co_await http::async_write(stream, res, asio::redirect_error(use_awaitable, ec));
    co_return !ec && req.keep_alive();
  }

  awaitable<void> session(tcp::socket sock) {
    beast::tcp_stream stream(std::move(sock));
    beast::flat_buffer buf;
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(kMaxBodyBytes);
      boost::system::error_code ec;
      co_await http::async_read(stream, buf, parser, asio::redirect_error(use_awaitable, ec));
      if (ec == http::error::body_limit) {
        http::request<http::string_body> dummy;
        dummy.version(11);
        co_await write_reply(stream, dummy, err_reply(413, fmt::format("the request body exceeds {} bytes", kMaxBodyBytes)),
                             time_ordered_id("req_", 32));
        break;
      }
      if (ec) break;
      http::request<http::string_body> req = parser.release();
      const bool keep = co_await handle(stream, req);
      if (!keep) break;
    }
    boost::system::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  }

  // Answers every route but the streaming-capable ones; for those, sets *body and *model and
  // returns nothing. (Not a coroutine: GCC 12 miscompiles initializer lists inside coroutines.)
  std::optional<Reply> route(const http::request<http::string_body>& req, const gateway::Caller* caller, json* body,
                             EngineService** model) {
    const std::string target(req.target());
    const std::string path = target.substr(0, target.find('?'));
    const auto method = req.method();
    if (method == http::verb::get && path == "/health") {
      if (models.all_ready()) return json_reply(200, {{"status", "ok"}});
      return json_reply(503, {{"status", "loading"}});
    }
    if (caller && path.rfind("/v1/models", 0) == 0) {
      if (auto d = gw->authorize_inference(*caller, "models", "")) return denial_reply(*d);
    }
    if (method == http::verb::get && path == "/v1/models") return models_reply(caller);
    if (method == http::verb::get && path.rfind("/v1/models/", 0) == 0) {
      std::string id;
      for (size_t i = 11; i < path.size(); ++i) {  // percent-decode
        if (path[i] == '%' && i + 2 < path.size() && std::isxdigit(static_cast<unsigned char>(path[i + 1])) &&
            std::isxdigit(static_cast<unsigned char>(path[i + 2]))) {
          id += static_cast<char>(std::stoi(path.substr(i + 1, 2), nullptr, 16));
          i += 2;
        } else {
          id += path[i];
        }
      }
      std::optional<Reply> error;
      if (caller && !caller->allows_model(id)) return denial_reply(*gw->authorize_inference(*caller, "models", id));
      if (!find_model(id, &error)) return error;
      for (const auto& e : models.entries())
        if (e.spec.id == id) return json_reply(200, model_json(e));
      return err_reply(404, fmt::format("The model `{}` does not exist.", id), "model", "model_not_found");
    }
    if (method == http::verb::get && path == "/metrics") return metrics_reply();
    if (method == http::verb::post && (path == "/v1/completions" || path == "/v1/chat/completions" || path == "/tokenize" ||
                                       path == "/detokenize" || path == "/v1/embeddings" || path == "/apply-template")) {
      *body = json::parse(req.body(), nullptr, /*allow_exceptions=*/false);
      if (body->is_discarded() || !body->is_object()) {
        return err_reply(400, "We could not parse the JSON body of your request: it must be a JSON object.");
      }
      EngineService* m = nullptr;
      if (auto it = body->find("model"); it != body->end() && it->is_string()) {
        std::optional<Reply> error;
        if (caller) {
          if (auto d = gw->authorize_inference(*caller, endpoint_of(path), it->get<std::string>())) return denial_reply(*d);
        }
        m = find_model(it->get<std::string>(), &error);
        if (!m) return error;
      } else if (path.rfind("/v1/", 0) == 0) {
        return err_reply(400, "you must provide a model parameter", "model");
      } else {
        // Routes where "model" is optional use the first model of the command line.
        std::optional<Reply> error;
        const auto first = models.default_model();
        m = ready_or_error(first, first.state == ModelRegistry::State::kReady ? first.service->id() : "default", &error);
        if (!m) return error;
        if (caller) {
          if (auto d = gw->authorize_inference(*caller, endpoint_of(path), m->id())) return denial_reply(*d);
        }
      }
      if (path == "/tokenize") return tokenize_reply(*m, *body);
      if (path == "/detokenize") return detokenize_reply(*m, *body);
      if (path == "/apply-template") return apply_template_reply(*m, *body);
      *model = m;
      return std::nullopt;
    }
    return err_reply(404, fmt::format("Invalid URL ({} {})", std::string(req.method_string()), path));
  }

  awaitable<bool> handle(beast::tcp_stream& stream, http::request<http::string_body>& req) {
    const std::string request_id = time_ordered_id("req_", 32);
    const std::string target(req.target());
    const std::string path = target.substr(0, target.find('?'));
    std::shared_ptr<const gateway::Caller> caller;
    if (gw && path != "/health" && path != "/metrics") {
      // The tenant comes from the key: a cache hit costs a hash; a miss asks the database off this thread.
      const std::string authorization(req[http::field::authorization]);
      caller = gw->cached(authorization);
      if (!caller) {
        std::optional<gateway::Denial> denied;
        co_await offload([&] {
          denied = gw->authenticate(authorization, &caller);
          return true;
        });
        if (denied) co_return co_await write_reply(stream, req, denial_reply(*denied), request_id);
      }
      if (jobs && capacity::is_capacity_admin_path(path)) {
        // Operator only: GPU quotas (a tenant cannot change or read another org's) and the node list.
        if (auto d = gw->authorize_admin(*caller)) co_return co_await write_reply(stream, req, denial_reply(*d), request_id);
        if (!caller->principal.operator_org) {
          co_return co_await write_reply(stream, req, err_reply(403, "Only the operator's admin keys manage GPU quotas and nodes.", "", "insufficient_permissions"), request_id);
        }
        capacity::JobsResponse res;
        co_await offload([&] {
          res = capacity::handle_capacity_admin(*jobs, std::string(req.method_string()), path, req.body());
          return true;
        });
        Reply reply;
        reply.status = static_cast<http::status>(res.status);
        reply.body = res.body.dump(-1, ' ', false, json::error_handler_t::replace);
        co_return co_await write_reply(stream, req, reply, request_id);
      }
      if (gateway::is_admin_path(path)) co_return co_await admin(stream, req, *caller, path, target, request_id);
      if (jobs && capacity::is_jobs_path(path)) {
        // Inference keys need the "jobs" endpoint in their scopes (or no endpoint scopes); admin keys may.
        if (caller->principal.kind == tenancy::KeyKind::kInference) {
          if (auto d = gw->authorize_inference(*caller, "jobs", "")) co_return co_await write_reply(stream, req, denial_reply(*d), request_id);
        }
        co_return co_await jobs_route(stream, req, caller->principal.org_id, caller->principal.project_id, path, target,
                                      request_id);
      }
      if (path == "/v1/usage/events" && req.method() == http::verb::post)
        co_return co_await usage_events(stream, req, caller, request_id);
    }
    if (!gw && jobs && capacity::is_jobs_path(path)) {
      co_return co_await jobs_route(stream, req, "local", "", path, target, request_id);
    }
    json body;
    EngineService* m = nullptr;
    std::optional<Reply> simple = route(req, caller.get(), &body, &m);
    if (simple) co_return co_await write_reply(stream, req, *simple, request_id);
    if (target.rfind("/v1/embeddings", 0) == 0) co_return co_await embeddings(stream, req, *m, body, request_id, caller);
    const bool chat = target.rfind("/v1/chat/completions", 0) == 0;
    co_return co_await completions(stream, req, *m, body, request_id, chat, caller);
  }

  // The jobs API: the controller's lock and log reads, on the worker pool.
  awaitable<bool> jobs_route(beast::tcp_stream& stream, http::request<http::string_body>& req, const std::string& org,
                             const std::string& project, const std::string& path, const std::string& target,
                             const std::string& request_id) {
    const size_t q = target.find('?');
    const std::string query = q == std::string::npos ? "" : target.substr(q + 1);
    const std::string method(req.method_string());
    capacity::JobsResponse res;
    co_await offload([&] {
      res = capacity::handle_jobs(*jobs, org, project, method, path, query, req.body());
      return true;
    });
    Reply reply;
    reply.status = static_cast<http::status>(res.status);
    reply.body = res.body.dump(-1, ' ', false, json::error_handler_t::replace);
    co_return co_await write_reply(stream, req, reply, request_id);
  }

  // The admin API: database work on the worker pool.
  awaitable<bool> admin(beast::tcp_stream& stream, http::request<http::string_body>& req, const gateway::Caller& caller,
                        const std::string& path, const std::string& target, const std::string& request_id) {
    if (auto d = gw->authorize_admin(caller)) co_return co_await write_reply(stream, req, denial_reply(*d), request_id);
    const size_t q = target.find('?');
    const std::string query = q == std::string::npos ? "" : target.substr(q + 1);
    const std::string method(req.method_string());
    gateway::AdminResponse res;
    co_await offload([&] {
      res = gateway::handle_admin(*gw, caller, method, path, query, req.body());
      return true;
    });
    Reply reply;
    reply.status = static_cast<http::status>(res.status);
    reply.body = res.body.dump(-1, ' ', false, json::error_handler_t::replace);
    co_return co_await write_reply(stream, req, reply, request_id);
  }

  // POST /v1/usage/events: CloudEvents metered into the ledger; 200 only once they are durable.
  awaitable<bool> usage_events(beast::tcp_stream& stream, http::request<http::string_body>& req,
                               std::shared_ptr<const gateway::Caller> caller, const std::string& request_id) {
    if (caller->principal.kind == tenancy::KeyKind::kInference) {
      if (auto d = gw->authorize_inference(*caller, "usage.events", "")) co_return co_await write_reply(stream, req, denial_reply(*d), request_id);
    }
    Result<std::vector<gateway::UsageEvent>> events = invalid_argument("");
    co_await offload([&] {
      events = gw->parse_usage_events(*caller, req.body());
      return true;
    });
    if (!events.is_ok()) co_return co_await write_reply(stream, req, err_reply(400, events.status().message()), request_id);
    auto list = std::make_shared<std::vector<gateway::UsageEvent>>(std::move(*events));
    std::vector<std::pair<std::string, std::string>> keys;
    for (const auto& e : *list) keys.emplace_back(e.source, e.id);
    auto done = std::make_shared<Handoff<Result<gateway::Ledger::IngestResult>>>(acceptor.get_executor());
    gw->ingest(*caller, std::move(*list), [done](Result<gateway::Ledger::IngestResult> r) { done->set(std::move(r)); });
    Result<gateway::Ledger::IngestResult> stored = co_await done->get();
    if (!stored.is_ok()) {
      NC_LOG_ERROR("usage events: {}", stored.status().to_string());
      co_return co_await write_reply(stream, req, err_reply(503, "The usage ledger is unavailable; nothing was stored. Retry "
                                                                 "with the same ids.", "", "", "server_error"),
                                     request_id);
    }
    json dups = json::array();
    int64_t accepted = 0;
    for (size_t i = 0; i < keys.size(); ++i) {
      if (stored->inserted[i]) ++accepted;
      else dups.push_back(json::object({{"source", keys[i].first}, {"id", keys[i].second}}));
    }
    json res = json::object({{"object", "usage.events.result"}, {"accepted", accepted}, {"duplicates", dups}});
    co_return co_await write_reply(stream, req, json_reply(200, res), request_id);
  }

  // Admission of an inference request: rate limits (in memory), then a budget hold when one applies.
  // Returns the refusal to send, or nothing (the ticket is then live: settle or release it).
  awaitable<std::optional<Reply>> admit(const std::shared_ptr<const gateway::Caller>& caller, const std::string& request_id,
                                        const std::string& endpoint, const std::string& model, int64_t prompt_tokens,
                                        int64_t max_output_tokens, bool stream, gateway::Ticket* ticket) {
    gateway::AdmitRequest ar;
    ar.request_id = request_id;
    ar.endpoint = endpoint;
    ar.model = model;
    ar.prompt_tokens = prompt_tokens;
    ar.max_output_tokens = max_output_tokens;
    if (auto d = gw->admit(caller, ar, ticket)) co_return denial_reply(*d);
    if (ticket->open_record_pending) {
      if (!stream) {
        gw->defer_open_record(*ticket);
        co_return std::nullopt;
      }
      auto written = std::make_shared<Handoff<Status>>(acceptor.get_executor());
      gw->write_open_record(*ticket, [written](Status st) { written->set(std::move(st)); });
      Status st = co_await written->get();
      if (st.is_ok()) co_return std::nullopt;
      co_await settle(*ticket, 0, 0, "error");
      co_return ledger_failed();
    }
    if (!gw->needs_hold(*ticket)) co_return std::nullopt;
    auto done = std::make_shared<Handoff<std::optional<gateway::Denial>>>(acceptor.get_executor());
    gw->hold(*ticket, [done](std::optional<gateway::Denial> d) { done->set(std::move(d)); });
    std::optional<gateway::Denial> denied = co_await done->get();
    if (!denied) co_return std::nullopt;
    gw->release(*ticket);
    denied->headers = ticket->headers;
    co_return denial_reply(*denied);
  }

  // Gateway on, a response sent whole: the request's ledger record is written from the engine's thread
  // as soon as its last choice ends, so the commit runs while the I/O thread collects the tokens and
  // builds the answer (instead of after the I/O thread has woken up for the engine's result). Owns the
  // ticket from then on; the coroutine reads it only after `billed` is set.
  struct EarlySettle {
    gateway::Gateway* gw = nullptr;
    gateway::Ticket ticket;
    int64_t prompt_tokens = 0;
    std::atomic<int> remaining{0};
    std::atomic<int64_t> completion_tokens{0};
    std::atomic<bool> failed{false};
    std::shared_ptr<Handoff<Status>> billed;
    // Engine thread: one choice ended (kDone).
    void on_done(const engine::SchedEvent& e) {
      completion_tokens.fetch_add(e.n_generated);
      if (!e.error.is_ok()) failed.store(true);
      if (remaining.fetch_sub(1) != 1) return;
      gateway::Usage u;
      u.prompt_tokens = prompt_tokens;
      u.completion_tokens = completion_tokens.load();
      u.status = failed.load() ? "error" : "completed";
      gw->settle(ticket, u, [billed = billed](Status st) { billed->set(std::move(st)); });
    }
  };

  // Writes the request's ledger record and waits for the commit (the caller sends its last byte after).
  awaitable<Status> settle(gateway::Ticket& ticket, int64_t prompt_tokens, int64_t completion_tokens, const char* status) {
    gateway::Usage u;
    u.prompt_tokens = prompt_tokens;
    u.completion_tokens = completion_tokens;
    u.status = status;
    auto done = std::make_shared<Handoff<Status>>(acceptor.get_executor());
    gw->settle(ticket, u, [done](Status st) { done->set(std::move(st)); });
    Status s = co_await done->get();
    co_return s;
  }

  json model_json(const ModelRegistry::Entry& e) {
    const EngineService& m = *e.service;
    json j = {{"id", m.id()}, {"object", "model"}, {"created", m.created()}, {"owned_by", "neocloud"},
              {"max_model_len", m.n_ctx()}};
    if (e.spec.random_weights) {
      j["random_weights"] = true;
      j["description"] = "Demo model generated by neocloud with random weights: its output is meaningless text.";
    }
    return j;
  }

  Reply models_reply(const gateway::Caller* caller) {
    json data = json::array();
    for (const auto& e : models.entries())
      if (e.state == ModelRegistry::State::kReady && (!caller || caller->allows_model(e.spec.id))) data.push_back(model_json(e));
    return json_reply(200, {{"object", "list"}, {"data", data}});
  }

  // Prometheus text: each metric family once (# HELP, # TYPE, then one series per model).
  Reply metrics_reply() {
    std::string out;
    struct Served {
      std::string labels;
      engine::Scheduler::Stats stats;
    };
    std::vector<Served> served;
    for (auto* m : models.ready_services()) served.push_back({fmt::format("model_name=\"{}\"", m->id()), m->stats()});
    auto family = [&](const char* name, const char* type, const char* help, auto value) {
      out += prometheus_header(fmt::format("neocloud:{}", name), type, help);
      for (const Served& s : served) out += fmt::format("neocloud:{}{{{}}} {}\n", name, s.labels, value(s.stats));
    };
    using Stats = engine::Scheduler::Stats;
    family("num_requests_running", "gauge", "Requests generating.", [](const Stats& s) { return s.running; });
    family("num_requests_waiting", "gauge", "Requests waiting for a slot or KV blocks.", [](const Stats& s) { return s.waiting; });
    family("kv_blocks_used", "gauge", "KV cache blocks in use.", [](const Stats& s) { return s.kv_blocks_used; });
    family("kv_blocks_total", "gauge", "KV cache blocks in all.", [](const Stats& s) { return s.kv_blocks_total; });
    family("prompt_tokens_total", "counter", "Prompt tokens evaluated.", [](const Stats& s) { return s.prompt_tokens; });
    family("generation_tokens_total", "counter", "Tokens generated.", [](const Stats& s) { return s.generated_tokens; });
    family("num_preemptions_total", "counter", "Sequences preempted for KV blocks.", [](const Stats& s) { return s.preemptions; });
    family("request_success_total", "counter", "Requests finished.", [](const Stats& s) { return s.requests_finished; });
    auto histograms = [&](const char* name, const char* help, Histogram Stats::*h) {
      const std::string full = fmt::format("neocloud:{}", name);
      out += prometheus_header(full, "histogram", help);
      for (const Served& s : served) (s.stats.*h).append_prometheus(out, full, s.labels);
    };
    histograms("time_to_first_token_seconds", "Time from submission to the first token.", &Stats::time_to_first_token);
    histograms("inter_token_latency_seconds", "Time between consecutive tokens of a request.", &Stats::inter_token);
    histograms("e2e_request_latency_seconds", "Time from submission to the end of the request.", &Stats::e2e);
    if (gw) {
      // The usage ledger's writer: every request's record waits for this before its last byte.
      const storage::GroupCommit::Stats l = gw->ledger().stats();
      out += prometheus_header("neocloud:ledger_commits_total", "counter", "Ledger transactions committed (one fsync each).");
      out += fmt::format("neocloud:ledger_commits_total {}\n", l.groups);
      out += prometheus_header("neocloud:ledger_writes_total", "counter", "Ledger writes (records, holds, event batches).");
      out += fmt::format("neocloud:ledger_writes_total {}\n", l.units);
      out += prometheus_header("neocloud:ledger_write_seconds", "histogram",
                               "Time from a ledger write's submission to its durable commit.");
      l.write_seconds.append_prometheus(out, "neocloud:ledger_write_seconds");
    }
    Reply r;
    r.body = std::move(out);
    r.content_type = "text/plain; version=0.0.4";
    return r;
  }

  Reply tokenize_reply(const EngineService& m, const json& body) {
    std::string text;
    if (auto it = body.find("content"); it != body.end() && it->is_string()) text = it->get<std::string>();
    else if (auto p = body.find("prompt"); p != body.end() && p->is_string()) text = p->get<std::string>();
    else return err_reply(400, "'content' (a string) is required", "content");
    // A flag that is present must be a boolean (nlohmann's value() would throw on another type).
    auto flag = [&](const char* k, bool dflt, bool* out) {
      auto it = body.find(k);
      if (it == body.end() || it->is_null()) return *out = dflt, true;
      if (!it->is_boolean()) return false;
      return *out = it->get<bool>(), true;
    };
    bool add_special = true, parse_special = true, with_pieces = false;
    for (auto [k, dflt, out] : {std::tuple{"add_special", true, &add_special}, std::tuple{"parse_special", true, &parse_special},
                                std::tuple{"with_pieces", false, &with_pieces}}) {
      if (!flag(k, dflt, out)) return err_reply(400, fmt::format("'{}' must be a boolean", k), k);
    }
    const auto ids = m.vocab().tokenize(text, add_special, parse_special);
    json j = {{"tokens", ids}, {"count", ids.size()}, {"max_model_len", m.n_ctx()}};
    if (with_pieces) {
      json pieces = json::array();
      for (auto id : ids) pieces.push_back({{"id", id}, {"piece", m.vocab().token_to_piece(id, true)}});
      j["tokens"] = pieces;
    }
    return json_reply(200, j);
  }

  Reply detokenize_reply(const EngineService& m, const json& body) {
    auto it = body.find("tokens");
    if (it == body.end() || !it->is_array()) return err_reply(400, "'tokens' (an array of ids) is required", "tokens");
    std::vector<engine::TokenId> ids;
    for (const auto& x : *it) {
      if (!x.is_number_integer() || x.get<int64_t>() < 0 || x.get<int64_t>() >= m.vocab().n_tokens())
        return err_reply(400, "'tokens' holds an id outside the vocabulary", "tokens");
      ids.push_back(static_cast<engine::TokenId>(x.get<int64_t>()));
    }
    return json_reply(200, {{"content", m.vocab().detokenize(ids, false, false)}});
  }

  // POST /apply-template (as llama.cpp's server): the chat prompt text a request's messages become.
  Reply apply_template_reply(const EngineService& m, const json& body) {
    std::string text;
    ApiError err;
    if (!chat_text(m, body, &text, &err)) return error_reply(err);
    return json_reply(200, {{"prompt", text}, {"format", m.chat().kind()}});
  }

  // The chat prompt: messages rendered with the model's chat template (or built-in format), tokenized
  // as llama.cpp's server does (BOS as the model asks, special-token text parsed).
  bool chat_prompt(const EngineService& m, const json& body, std::vector<std::vector<engine::TokenId>>* prompts,
                   ApiError* err) {
    std::string text;
    if (!chat_text(m, body, &text, err)) return false;
    prompts->push_back(m.vocab().tokenize(text, true, true));
    return true;
  }

  bool chat_text(const EngineService& m, const json& body, std::string* out, ApiError* err) {
    std::vector<ChatMessage> msgs;
    if (!parse_messages(body, &msgs, err)) return false;
    json kwargs = json::object();
    if (auto k = body.find("chat_template_kwargs"); k != body.end() && !k->is_null()) {
      if (!k->is_object()) {
        err->message = "'chat_template_kwargs' must be an object";
        err->param = "chat_template_kwargs";
        return false;
      }
      kwargs = *k;
    }
    bool add_generation_prompt = true;
    if (auto a = body.find("add_generation_prompt"); a != body.end() && !a->is_null()) {
      if (!a->is_boolean()) {
        err->message = "'add_generation_prompt' must be a boolean";
        err->param = "add_generation_prompt";
        return false;
      }
      add_generation_prompt = a->get<bool>();
    }
    auto text = m.chat().render(msgs, add_generation_prompt, kwargs);
    if (!text.is_ok()) {
      *err = from_status(text.status(), "messages");
      return false;
    }
    *out = std::move(*text);
    return true;
  }

  // The ledger could not record a finished request: its result is not delivered (nothing unbilled leaves).
  static Reply ledger_failed() {
    return err_reply(503, "The usage ledger is unavailable, so the result cannot be delivered; retry shortly.", "", "",
                     "server_error");
  }

  // POST /v1/embeddings: one engine request per input, pooled as the model's GGUF says (mean when it
  // does not say), L2-normalized; "float" arrays or little-endian float32 in base64.
  awaitable<bool> embeddings(beast::tcp_stream& stream, http::request<http::string_body>& req, EngineService& m,
                             const json& body, const std::string& request_id, std::shared_ptr<const gateway::Caller> caller) {
    EmbeddingOptions opt;
    ApiError err;
    const int64_t n_embd = m.model().hparams().n_embd;
    // Tokenizing up to 8 MB of input runs on the worker pool, not on the I/O thread.
    const bool parsed =
        co_await prepare(req.body().size(), [&] { return parse_embedding_request(body, m.vocab(), n_embd, &opt, &err); });
    if (!parsed) co_return co_await write_reply(stream, req, error_reply(err), request_id);
    engine::Pooling pooling = m.model().hparams().pooling;
    if (pooling == engine::Pooling::kUnspecified || pooling == engine::Pooling::kNone) pooling = engine::Pooling::kMean;
    if (pooling == engine::Pooling::kRank) {
      co_return co_await write_reply(
          stream, req, err_reply(400, "this model is a reranker (pooling 'rank'); it does not make embeddings", "model"),
          request_id);
    }
    int64_t prompt_tokens = 0;
    for (size_t i = 0; i < opt.inputs.size(); ++i) {
      const int64_t n = static_cast<int64_t>(opt.inputs[i].size());
      prompt_tokens += n;
      if (n > m.n_ctx()) {
        co_return co_await write_reply(
            stream, req,
            err_reply(400,
                      fmt::format("This model's maximum context length is {} tokens, however you requested {} tokens "
                                  "in input {}. Please reduce your input.",
                                  m.n_ctx(), n, i),
                      "input", "context_length_exceeded"),
            request_id);
      }
    }
    gateway::Ticket ticket;
    if (caller) {
      std::optional<Reply> refused = co_await admit(caller, request_id, "embeddings", m.id(), prompt_tokens, 0, false, &ticket);
      if (refused) co_return co_await write_reply(stream, req, *refused, request_id);
    }
    auto queue = std::make_shared<EventQueue>(stream.get_executor());
    std::vector<engine::RequestId> ids;
    for (size_t i = 0; i < opt.inputs.size(); ++i) {
      engine::Request r;
      r.kind = engine::RequestKind::kEmbed;
      r.pooling = pooling;
      r.prompt = std::move(opt.inputs[i]);
      const int index = static_cast<int>(i);
      auto id = m.submit(std::move(r), [queue, index](const engine::SchedEvent& e) { queue->push(index, e); });
      if (!id.is_ok()) {
        for (auto x : ids) m.cancel(x);
        if (caller) co_await settle(ticket, 0, 0, "error");
        co_return co_await write_reply(stream, req, error_reply(from_status(id.status(), "input")), request_id);
      }
      ids.push_back(*id);
    }
    std::vector<std::vector<float>> vectors(ids.size());
    Status failure;
    size_t remaining = ids.size();
    while (remaining > 0) {
      auto events = co_await queue->next();
      for (auto& [index, e] : events) {
        if (e.kind != engine::SchedEvent::Kind::kDone) continue;
        --remaining;
        if (!e.error.is_ok()) failure = e.error;
        vectors[index] = std::move(e.embedding);
      }
    }
    if (caller) {
      const Status billed = co_await settle(ticket, failure.is_ok() ? prompt_tokens : 0, 0, failure.is_ok() ? "completed" : "error");
      if (!billed.is_ok() && failure.is_ok()) co_return co_await write_reply(stream, req, ledger_failed(), request_id);
    }
    if (!failure.is_ok()) co_return co_await write_reply(stream, req, error_reply(from_status(failure)), request_id);
    json data = json::array();
    for (size_t i = 0; i < vectors.size(); ++i) {
      json emb = opt.base64 ? json(base64_floats(vectors[i])) : json(vectors[i]);
      data.push_back({{"object", "embedding"}, {"index", i}, {"embedding", std::move(emb)}});
    }
    json res = {{"object", "list"}, {"data", std::move(data)}, {"model", m.id()},
                {"usage", {{"prompt_tokens", prompt_tokens}, {"total_tokens", prompt_tokens}}}};
    Reply ok = json_reply(200, res);
    ok.headers = ticket.headers;
    co_return co_await write_reply(stream, req, ok, request_id);
  }

  // POST /v1/completions and /v1/chat/completions.
  awaitable<bool> completions(beast::tcp_stream& stream, http::request<http::string_body>& req, EngineService& m,
                              const json& body, const std::string& request_id, bool chat,
                              std::shared_ptr<const gateway::Caller> caller) {
    CompletionOptions opt;
    ApiError err;
    std::vector<std::vector<engine::TokenId>> prompts;
    // Rendering the chat template and tokenizing run on the worker pool, not on the I/O thread.
    const bool ok = co_await prepare(req.body().size(), [&] {
      return parse_completion_options(body, m.vocab(), chat ? -1 : 16, chat, &opt, &err) &&
             (chat ? chat_prompt(m, body, &prompts, &err) : parse_prompts(body, m.vocab(), &prompts, &err));
    });
    if (!ok) co_return co_await write_reply(stream, req, error_reply(err), request_id);
    if (caller) {
      // The max_tokens cap of the key, project or org: a default when the request sets none, else a ceiling.
      if (const int64_t cap = gw->max_tokens_cap(*caller); cap > 0) {
        auto given = [&](const char* k) { return body.contains(k) && !body[k].is_null(); };
        if (!given("max_tokens") && !given("max_completion_tokens")) {
          // The endpoint's default (16 for completions, the context for chat) within the cap.
          opt.gen.max_tokens = opt.gen.max_tokens < 0 ? static_cast<int32_t>(cap)
                                                      : static_cast<int32_t>(std::min<int64_t>(opt.gen.max_tokens, cap));
        }
        if (opt.gen.max_tokens > cap) {
          co_return co_await write_reply(
              stream, req,
              err_reply(400, fmt::format("max_tokens is too large: {}. This API key may request at most {} completion tokens.",
                                         opt.gen.max_tokens, cap),
                        "max_tokens", "invalid_value"),
              request_id);
        }
      }
    }
    for (const auto& p : prompts) {
      const int64_t want = static_cast<int64_t>(p.size()) + std::max(opt.gen.max_tokens, 1);
      if (want > m.n_ctx()) {
        co_return co_await write_reply(
            stream, req,
            err_reply(400,
                      fmt::format("This model's maximum context length is {} tokens. However, you requested {} tokens "
                                  "({} in your prompt; {} for the completion). Please reduce your prompt; or completion length.",
                                  m.n_ctx(), want, p.size(), opt.gen.max_tokens),
                      "prompt", "context_length_exceeded"),
            request_id);
      }
    }
    const int n_choices = static_cast<int>(prompts.size()) * opt.n;
    gateway::Ticket ticket;
    if (caller) {
      int64_t prompt_total = 0, output_worst = 0;
      for (const auto& p : prompts) {
        prompt_total += static_cast<int64_t>(p.size());
        const int64_t most = opt.gen.max_tokens >= 0 ? opt.gen.max_tokens : m.n_ctx() - static_cast<int64_t>(p.size());
        output_worst += most * opt.n;
      }
      std::optional<Reply> refused = co_await admit(caller, request_id, chat ? "chat.completions" : "completions", m.id(),
                                                    prompt_total, output_worst, opt.stream, &ticket);
      if (refused) co_return co_await write_reply(stream, req, *refused, request_id);
    }
    auto queue = std::make_shared<EventQueue>(stream.get_executor());
    std::vector<engine::RequestId> ids;
    int64_t prompt_tokens = 0;
    for (const auto& p : prompts) prompt_tokens += static_cast<int64_t>(p.size());
    std::shared_ptr<EarlySettle> early;
    if (caller && !opt.stream) {
      early = std::make_shared<EarlySettle>();
      early->gw = gw;
      early->ticket = std::move(ticket);
      early->prompt_tokens = prompt_tokens;
      early->remaining = n_choices;
      early->billed = std::make_shared<Handoff<Status>>(acceptor.get_executor());
    }
    for (size_t pi = 0; pi < prompts.size(); ++pi) {
      for (int j = 0; j < opt.n; ++j) {
        engine::Request r;
        r.prompt = prompts[pi];
        r.gen = opt.gen;
        if (r.gen.sampling.seed && j > 0) r.gen.sampling.seed = *r.gen.sampling.seed + j;
        const int choice = static_cast<int>(pi) * opt.n + j;
        auto id = m.submit(std::move(r), [queue, choice, early](const engine::SchedEvent& e) {
          queue->push(choice, e);
          if (early && e.kind == engine::SchedEvent::Kind::kDone) early->on_done(e);
        });
        if (!id.is_ok()) {
          // The choices already submitted end cancelled; `remaining` never reaches 0, so the record
          // is written here, once.
          for (auto x : ids) m.cancel(x);
          if (caller) co_await settle(early ? early->ticket : ticket, 0, 0, "error");
          co_return co_await write_reply(stream, req, error_reply(from_status(id.status(), "prompt")), request_id);
        }
        ids.push_back(*id);
      }
    }
    auto cancel_all = [&] {
      for (auto x : ids) m.cancel(x);
    };
    const std::string cmpl_id = random_id(chat ? "chatcmpl-" : "cmpl-", 24);
    const char* object = chat ? "chat.completion" : "text_completion";
    const int64_t created = unix_now();
    struct Choice {
      std::string text;
      json chat_logprobs = json::array();
      int32_t n_generated = 0;
      bool done = false;
      std::string finish;
      json tokens = json::array(), token_logprobs = json::array(), top_logprobs = json::array(), text_offset = json::array();
      size_t offset = 0;
    };
    std::vector<Choice> choices(n_choices);
    auto chat_logprob = [&](const engine::GeneratedToken& g) {
      auto entry = [&](engine::TokenId id, float lp) {
        const std::string piece = m.vocab().token_to_piece(id, true);
        json bytes = json::array();
        for (unsigned char ch : piece) bytes.push_back(ch);
        return json{{"token", piece}, {"logprob", lp}, {"bytes", bytes}};
      };
      json e = entry(g.id, g.sample.logprob);
      json top = json::array();
      for (const auto& t : g.sample.top) top.push_back(entry(t.token, t.logprob));
      e["top_logprobs"] = top;
      return e;
    };
    auto add_logprobs = [&](Choice& c, const engine::GeneratedToken& g) {
      const std::string piece = m.vocab().token_to_piece(g.id, true);
      c.tokens.push_back(piece);
      c.token_logprobs.push_back(g.sample.logprob);
      json top = json::object();
      for (const auto& t : g.sample.top) top[m.vocab().token_to_piece(t.token, true)] = t.logprob;
      c.top_logprobs.push_back(top);
      c.text_offset.push_back(c.offset);
      c.offset += piece.size();
    };
    Status failure;
    if (!opt.stream) {
      int remaining = n_choices;
      while (remaining > 0) {
        auto events = co_await queue->next();
        for (auto& [ci, e] : events) {
          Choice& c = choices[ci];
          if (e.kind == engine::SchedEvent::Kind::kToken) {
            c.text += e.token.text;
            if (opt.logprobs >= 0) {
              if (chat) c.chat_logprobs.push_back(chat_logprob(e.token));
              else add_logprobs(c, e.token);
            }
          } else {
            c.done = true;
            c.n_generated = e.n_generated;
            c.finish = e.finish == engine::FinishReason::kStop ? "stop" : "length";
            if (!e.error.is_ok()) failure = e.error;
            --remaining;
          }
        }
      }
      int64_t completion_tokens = 0;
      for (const auto& c : choices) completion_tokens += c.n_generated;
      if (!failure.is_ok()) {
        if (early) co_await early->billed->get();
        co_return co_await write_reply(stream, req, error_reply(from_status(failure)), request_id);
      }
      json cs = json::array();
      for (int i = 0; i < n_choices; ++i) {
        json lp = nullptr;
        if (opt.logprobs >= 0 && chat) {
          lp = {{"content", choices[i].chat_logprobs}, {"refusal", nullptr}};
        } else if (opt.logprobs >= 0) {
          lp = {{"tokens", choices[i].tokens}, {"token_logprobs", choices[i].token_logprobs},
                {"top_logprobs", choices[i].top_logprobs}, {"text_offset", choices[i].text_offset}};
        }
        if (chat) {
          cs.push_back({{"index", i},
                        {"message", {{"role", "assistant"}, {"content", choices[i].text}, {"refusal", nullptr}}},
                        {"logprobs", lp},
                        {"finish_reason", choices[i].finish}});
        } else {
          cs.push_back({{"index", i}, {"text", choices[i].text}, {"logprobs", lp}, {"finish_reason", choices[i].finish}});
        }
      }
      json res = {{"id", cmpl_id}, {"object", object}, {"created", created}, {"model", m.id()},
                  {"choices", cs},
                  {"usage", {{"prompt_tokens", prompt_tokens}, {"completion_tokens", completion_tokens},
                             {"total_tokens", prompt_tokens + completion_tokens}}}};
      Reply ok_reply = json_reply(200, res);
      if (early) {
        // The record commits before the answer leaves (it was submitted when the last choice ended).
        const Status billed = co_await early->billed->get();
        if (!billed.is_ok()) co_return co_await write_reply(stream, req, ledger_failed(), request_id);
        ok_reply.headers = early->ticket.headers;
      }
      co_return co_await write_reply(stream, req, ok_reply, request_id);
    }

    // Streaming: headers, then one SSE event per token with new text, a final chunk per choice,
    // the usage chunk if asked, and [DONE]. A failed write means the client left: cancel.
    std::string extra;
    for (const auto& [k, v] : ticket.headers) extra += fmt::format("{}: {}\r\n", k, v);
    std::string head = fmt::format(
        "HTTP/1.1 200 OK\r\nServer: neocloud\r\nContent-Type: text/event-stream; charset=utf-8\r\nCache-Control: no-cache\r\n"
        "x-request-id: {}\r\n{}Transfer-Encoding: chunked\r\nConnection: {}\r\n\r\n",
        request_id, extra, req.keep_alive() ? "keep-alive" : "close");
    boost::system::error_code ec;
    co_await asio::async_write(stream.socket(), asio::buffer(head), asio::redirect_error(use_awaitable, ec));
    auto send = [&](const std::string& data) -> awaitable<bool> {
      const std::string chunk = fmt::format("{:x}\r\n{}\r\n", data.size(), data);
      boost::system::error_code wec;
      co_await asio::async_write(stream.socket(), asio::buffer(chunk), asio::redirect_error(use_awaitable, wec));
      co_return !wec;
    };
    auto event = [&](const json& j) { return "data: " + dump(j) + "\n\n"; };
    // Chat chunks carry a delta (role first, then content, then {} with the finish reason).
    auto chunk_json = [&](int index, const std::string& text, const json& lp, const json& finish, bool role = false) {
      json choice;
      if (chat) {
        json delta = json::object();
        if (role) delta = {{"role", "assistant"}, {"content", ""}, {"refusal", nullptr}};
        else if (finish.is_null()) delta = {{"content", text}};
        choice = {{"index", index}, {"delta", delta}, {"logprobs", lp}, {"finish_reason", finish}};
      } else {
        choice = {{"index", index}, {"text", text}, {"logprobs", lp}, {"finish_reason", finish}};
      }
      json c = {{"id", cmpl_id}, {"object", chat ? "chat.completion.chunk" : "text_completion"}, {"created", created},
                {"model", m.id()}, {"choices", json::array({choice})}};
      if (opt.include_usage) c["usage"] = nullptr;
      return c;
    };
    bool alive = !ec;
    int remaining = n_choices;
    int64_t completion_tokens = 0;
    if (chat) {
      for (int i = 0; i < n_choices && alive; ++i) alive = co_await send(event(chunk_json(i, "", nullptr, nullptr, true)));
    }
    while (alive && remaining > 0) {
      auto events = co_await queue->next();
      for (auto& [ci, e] : events) {
        if (!alive) break;
        if (e.kind == engine::SchedEvent::Kind::kToken) {
          choices[ci].n_generated += 1;
          json lp = nullptr;
          if (opt.logprobs >= 0 && chat) {
            lp = {{"content", json::array({chat_logprob(e.token)})}, {"refusal", nullptr}};
          } else if (opt.logprobs >= 0) {
            Choice tmp;
            tmp.offset = choices[ci].offset;
            add_logprobs(tmp, e.token);
            choices[ci].offset = tmp.offset;
            lp = {{"tokens", tmp.tokens}, {"token_logprobs", tmp.token_logprobs}, {"top_logprobs", tmp.top_logprobs},
                  {"text_offset", tmp.text_offset}};
          }
          if (!e.token.text.empty() || opt.logprobs >= 0) alive = co_await send(event(chunk_json(ci, e.token.text, lp, nullptr)));
        } else {
          --remaining;
          completion_tokens += e.n_generated;
          choices[ci].n_generated = e.n_generated;
          choices[ci].done = true;
          if (!e.error.is_ok()) {
            failure = e.error;
            ApiError ae = from_status(e.error);
            ae.type = "server_error";
            alive = co_await send(event(error_body(ae)));
            continue;
          }
          alive = co_await send(event(chunk_json(ci, "", nullptr, e.finish == engine::FinishReason::kStop ? "stop" : "length")));
        }
      }
    }
    if (!alive) {
      cancel_all();
      if (caller) {
        // The client left: bill what was generated for it (tokens already queued for it included).
        for (auto& [ci, e] : queue->drain()) {
          if (choices[ci].done) continue;
          if (e.kind == engine::SchedEvent::Kind::kToken) choices[ci].n_generated += 1;
          else choices[ci].n_generated = e.n_generated;
        }
        int64_t generated = 0;
        for (const auto& c : choices) generated += c.n_generated;
        const Status billed = co_await settle(ticket, prompt_tokens, generated, "client_disconnected");
        if (!billed.is_ok()) NC_LOG_ERROR("ledger: request {}: {}", request_id, billed.to_string());
      }
      co_return false;
    }
    if (caller) {
      // Durable before the last bytes: the usage chunk, [DONE] and the end of the chunked body.
      const Status billed = co_await settle(ticket, prompt_tokens, completion_tokens, failure.is_ok() ? "completed" : "error");
      if (!billed.is_ok()) {
        NC_LOG_ERROR("ledger: request {}: {}", request_id, billed.to_string());
        ApiError ae = from_status(billed);
        ae.status = 503;
        ae.type = "server_error";
        ae.message = "The usage ledger is unavailable; this response is incomplete.";
        co_await send(event(error_body(ae)));
        co_return false;
      }
    }
    if (opt.include_usage) {
      json u = {{"id", cmpl_id}, {"object", chat ? "chat.completion.chunk" : "text_completion"}, {"created", created},
                {"model", m.id()},
                {"choices", json::array()},
                {"usage", {{"prompt_tokens", prompt_tokens}, {"completion_tokens", completion_tokens},
                           {"total_tokens", prompt_tokens + completion_tokens}}}};
      alive = co_await send(event(u));
    }
    if (alive) alive = co_await send("data: [DONE]\n\n");
    if (alive) {
      boost::system::error_code wec;
      co_await asio::async_write(stream.socket(), asio::buffer(std::string("0\r\n\r\n")), asio::redirect_error(use_awaitable, wec));
      alive = !wec;
    }
    co_return alive && req.keep_alive();
  }
};

HttpServer::HttpServer(ModelRegistry& models, gateway::Gateway* gateway, capacity::JobController* jobs)
    : impl_(std::make_unique<Impl>(models, gateway, jobs)) {}
HttpServer::~HttpServer() = default;

Status HttpServer::listen(const std::string& host, uint16_t port) {
  boost::system::error_code ec;
  const auto addr = asio::ip::make_address(host, ec);
  if (ec) return invalid_argument(fmt::format("--host '{}' is not an IP address", host));
  tcp::endpoint ep(addr, port);
  impl_->acceptor.open(ep.protocol(), ec);
  if (!ec) impl_->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl_->acceptor.bind(ep, ec);
  if (!ec) impl_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return unavailable(fmt::format("cannot listen on {}:{}: {}", host, port, ec.message()));
  asio::co_spawn(impl_->ioc, impl_->accept_loop(), asio::detached);
  return Status::ok();
}

uint16_t HttpServer::port() const { return impl_->acceptor.local_endpoint().port(); }

void HttpServer::run() {
  // SIGINT/SIGTERM end run() (handled on the I/O thread, not in a signal handler).
  asio::signal_set signals(impl_->ioc, SIGINT, SIGTERM);
  signals.async_wait([this](const boost::system::error_code& ec, int) {
    if (!ec) stop();
  });
  impl_->ioc.run();
  // Requests' pool work borrows the models: finish it before anyone stops them.
  impl_->work.stop();
  impl_->work.join();
}

void HttpServer::stop() {
  asio::post(impl_->ioc, [this] {
    boost::system::error_code ec;
    impl_->acceptor.close(ec);
    impl_->ioc.stop();
  });
}

}  // namespace nc::server
