// gateway_load: load generator for the gateway benchmarks (bench/gateway_bench.sh, docs/benchmarks.md).
//
//   gateway_load http --url http://127.0.0.1:8080/v1/completions [--key K] --rate R --seconds S
//                     [--warmup W] [--connections C] [--body JSON]
//       Open loop: request i is due at start + i/R whatever happened to the others. A due request
//       takes an idle keep-alive connection or waits in a queue for one, and its latency runs from the
//       time it was DUE (not the time it was written), so a server that falls behind is charged for
//       the queueing it causes (no coordinated omission; the same rule as wrk2). --rate 0: closed
//       loop, every connection sends its next request as soon as the previous one is answered (the
//       server's capacity). Prints one JSON object: sent/ok/errors/incomplete, achieved req/s,
//       latency percentiles (from due time) and service percentiles (from the write).
//   gateway_load ingest-http --url http://127.0.0.1:8080/v1/usage/events --key K [--batch 1000]
//                     [--connections 4] [--seconds S]
//       POSTs arrays of `batch` CloudEvents (unique ids) back to back on each connection; counts
//       the events acknowledged (200, "accepted") per second.
//   gateway_load ingest-direct --dir DIR [--events N] [--batch 100,1000] [--submitters K]
//                     [--baseline-events M] [--single-events N1 --single-submitters K1]
//       The usage ledger without HTTP: nc::gateway::Ledger::ingest (group commit, SQLite with
//       synchronous=FULL) from K threads, each with one batch in flight, events/s from the first
//       submit to the last durable callback; and, in the same run, the same INSERT one event per
//       transaction (db->transact, one commit + fsync per event): the "no group commit" baseline.
//       Each case gets a fresh database file in DIR (give a directory on a real disk: fsync on
//       tmpfs costs nothing).
//
// One thread drives all the HTTP connections (Boost.Asio, callbacks); times are steady_clock.
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <functional>
#include <future>
#include <latch>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/log.h"
#include "gateway/ledger.h"
#include "storage/database.h"
#include "storage/migrate.h"
#include "capacity/schema.h"
#include "gateway/schema.h"
#include "tenancy/schema.h"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

namespace {

// CPU seconds (user + system) this process has used so far.
double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

double ms_between(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double, std::milli>(b - a).count(); }

// Nearest-rank percentiles of a sample (milliseconds).
json percentiles(std::vector<double> v) {
  json j = json::object();
  if (v.empty()) return j;
  std::sort(v.begin(), v.end());
  auto at = [&](double q) {
    const size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
    return v[std::min(v.size() - 1, rank == 0 ? 0 : rank - 1)];
  };
  double sum = 0;
  for (double x : v) sum += x;
  j["n"] = v.size();
  j["mean"] = sum / static_cast<double>(v.size());
  j["p50"] = at(0.50);
  j["p90"] = at(0.90);
  j["p99"] = at(0.99);
  j["p999"] = at(0.999);
  j["max"] = v.back();
  return j;
}

struct Target {
  std::string host, port, path;
};

Target parse_url(const std::string& url) {
  std::string rest = url;
  if (rest.rfind("http://", 0) == 0) rest = rest.substr(7);
  else if (rest.find("://") != std::string::npos) throw std::runtime_error("only http:// URLs: " + url);
  Target t;
  const size_t slash = rest.find('/');
  const std::string hostport = rest.substr(0, slash);
  t.path = slash == std::string::npos ? "/" : rest.substr(slash);
  const size_t colon = hostport.rfind(':');
  t.host = hostport.substr(0, colon);
  t.port = colon == std::string::npos ? "80" : hostport.substr(colon + 1);
  return t;
}

std::string build_request(const Target& t, const std::string& key, const std::string& body) {
  std::string s;
  s.reserve(body.size() + 256);
  s += "POST ";
  s += t.path;
  s += " HTTP/1.1\r\nHost: ";
  s += t.host;
  s += ':';
  s += t.port;
  s += "\r\n";
  if (!key.empty()) {
    s += "Authorization: Bearer ";
    s += key;
    s += "\r\n";
  }
  s += "Content-Type: application/json\r\nContent-Length: ";
  s += std::to_string(body.size());
  s += "\r\n\r\n";
  s += body;
  return s;
}

// ---------------------------------------------------------------------------------------------------
// The HTTP driver: C keep-alive connections on one io_context thread, open or closed loop.

struct Response {
  int status = 0;  // 0: transport error
  std::string body;
  std::string error;
};

class Driver {
 public:
  struct Options {
    Target target;
    double rate = 0;  // req/s; 0 = closed loop
    double seconds = 10, warmup = 2, drain = 10;
    int connections = 64;
  };
  // The bytes of request number `seq`.
  using MakeRequest = std::function<std::shared_ptr<const std::string>(uint64_t seq)>;
  // Called for every response; `measured`: the request was due inside the measurement window.
  // Returns whether it counts as a success.
  using OnResponse = std::function<bool(const Response& r, bool measured)>;

  Driver(Options o, MakeRequest make, OnResponse on) : o_(std::move(o)), make_(std::move(make)), on_(std::move(on)) {}

  json run() {
    tcp::resolver resolver(ioc_);
    auto eps = resolver.resolve(o_.target.host, o_.target.port);
    ep_ = eps.begin()->endpoint();
    for (int i = 0; i < o_.connections; ++i) {
      auto c = std::make_unique<Conn>(ioc_);
      c->sock.connect(ep_);
      c->sock.set_option(tcp::no_delay(true));
      c->up = true;
      conns_.push_back(std::move(c));
    }
    t0_ = Clock::now() + std::chrono::milliseconds(20);
    measure_from_ = t0_ + std::chrono::microseconds(static_cast<int64_t>(o_.warmup * 1e6));
    send_until_ = measure_from_ + std::chrono::microseconds(static_cast<int64_t>(o_.seconds * 1e6));
    hard_stop_ = send_until_ + std::chrono::microseconds(static_cast<int64_t>(o_.drain * 1e6));
    last_done_ = measure_from_;
    if (o_.rate > 0) {
      period_ = std::chrono::duration<double>(1.0 / o_.rate);
      for (auto& c : conns_) idle_.push_back(c.get());
      sched_.expires_at(t0_);
      sched_.async_wait([this](boost::system::error_code ec) { tick(ec); });
    } else {
      stop_.expires_at(t0_);
      stop_.async_wait([this](boost::system::error_code) {
        for (auto& c : conns_) start(c.get(), Clock::now());
        arm_stop();
      });
    }
    if (o_.rate > 0) arm_stop();
    const double cpu0 = cpu_seconds();
    ioc_.run();
    const double client_cpu_s = cpu_seconds() - cpu0;
    const double window_s = std::chrono::duration<double>(send_until_ - measure_from_).count();
    const double busy_s = std::chrono::duration<double>(std::max(last_done_, send_until_) - measure_from_).count();
    json j;
    j["mode"] = o_.rate > 0 ? "open" : "closed";
    j["rate"] = o_.rate;
    j["seconds"] = window_s;
    j["connections"] = o_.connections;
    j["sent"] = measured_sent_;
    j["ok"] = ok_;
    j["errors"] = errors_;
    j["incomplete"] = measured_sent_ - ok_ - errors_;
    // Completions per second, over the window stretched to the last completion (a server that keeps
    // up: about the offered rate; one that falls behind: its capacity).
    j["achieved_rps"] = busy_s > 0 ? static_cast<double>(ok_) / busy_s : 0.0;
    j["client_cpu_s"] = client_cpu_s;  // the load generator's own CPU during the run
    j["total_sent"] = seq_;  // warm-up and drain included
    j["total_answered"] = answered_;
    j["max_queue"] = max_queue_;
    j["sched_lag_ms"] = percentiles(lag_);
    j["latency_ms"] = percentiles(lat_);
    j["service_ms"] = percentiles(svc_);
    if (!first_error_.empty()) j["first_error"] = first_error_;
    return j;
  }

 private:
  struct Conn {
    explicit Conn(asio::io_context& ioc) : sock(ioc) {}
    tcp::socket sock;
    beast::flat_buffer buf;
    std::optional<http::response_parser<http::string_body>> parser;
    std::shared_ptr<const std::string> out;
    Clock::time_point due, sent;
    bool up = false;
  };

  bool measured(Clock::time_point due) const { return due >= measure_from_ && due < send_until_; }

  void arm_stop() {
    stop_.expires_at(hard_stop_);
    stop_.async_wait([this](boost::system::error_code ec) {
      if (ec) return;
      stopping_ = true;
      ioc_.stop();
    });
  }

  // Open loop: hand every request that is due to a connection (or the queue), then sleep until the next.
  void tick(boost::system::error_code ec) {
    if (ec || stopping_) return;
    const auto now = Clock::now();
    for (;;) {
      const auto due = t0_ + std::chrono::duration_cast<Clock::duration>(period_ * static_cast<double>(next_));
      if (due >= send_until_) {
        sending_done_ = true;
        maybe_finish();
        return;
      }
      if (due > now) {
        sched_.expires_at(due);
        sched_.async_wait([this](boost::system::error_code e) { tick(e); });
        return;
      }
      ++next_;
      if (measured(due)) lag_.push_back(ms_between(due, now));
      if (!idle_.empty()) {
        Conn* c = idle_.back();
        idle_.pop_back();
        start(c, due);
      } else {
        queue_.push_back(due);
        max_queue_ = std::max<uint64_t>(max_queue_, queue_.size());
      }
    }
  }

  void start(Conn* c, Clock::time_point due) {
    if (o_.rate <= 0 && due >= send_until_) {  // closed loop: the window is over
      sending_done_ = true;
      maybe_finish();
      return;
    }
    if (measured(due)) ++measured_sent_;
    ++outstanding_;
    c->due = due;
    c->out = make_(seq_++);
    c->sent = Clock::now();
    asio::async_write(c->sock, asio::buffer(*c->out), [this, c](boost::system::error_code ec, size_t) {
      if (ec) return fail(c, "write: " + ec.message());
      c->parser.emplace();
      c->parser->body_limit(64u << 20);
      http::async_read(c->sock, c->buf, *c->parser, [this, c](boost::system::error_code ec2, size_t) {
        if (ec2) return fail(c, "read: " + ec2.message());
        Response r;
        r.status = static_cast<int>(c->parser->get().result_int());
        r.body = std::move(c->parser->get().body());
        const bool keep = c->parser->get().keep_alive();
        done(c, r);
        if (!keep) return reconnect(c);
        next(c);
      });
    });
  }

  void done(Conn* c, const Response& r) {
    --outstanding_;
    if (r.status) ++answered_;
    const auto now = Clock::now();
    const bool m = measured(c->due);
    const bool good = on_(r, m);
    if (!m) return;
    if (good) {
      ++ok_;
      lat_.push_back(ms_between(c->due, now));
      svc_.push_back(ms_between(c->sent, now));
      last_done_ = std::max(last_done_, now);
    } else {
      ++errors_;
      if (first_error_.empty()) first_error_ = r.status ? "HTTP " + std::to_string(r.status) + ": " + r.body.substr(0, 300) : r.error;
    }
  }

  void fail(Conn* c, const std::string& what) {
    if (stopping_) return;
    Response r;
    r.error = what;
    done(c, r);
    reconnect(c);
  }

  void reconnect(Conn* c) {
    boost::system::error_code ignore;
    c->sock.close(ignore);
    c->buf.clear();
    c->up = false;
    c->sock.async_connect(ep_, [this, c](boost::system::error_code ec) {
      if (stopping_) return;
      if (ec) {  // try again shortly
        auto t = std::make_shared<asio::steady_timer>(ioc_, std::chrono::milliseconds(10));
        t->async_wait([this, c, t](boost::system::error_code) { reconnect(c); });
        return;
      }
      boost::system::error_code ignore2;
      c->sock.set_option(tcp::no_delay(true), ignore2);
      c->up = true;
      next(c);
    });
  }

  // A connection is free: the next queued request (open loop), the next request (closed loop), or idle.
  void next(Conn* c) {
    if (o_.rate > 0) {
      if (!queue_.empty()) {
        const auto due = queue_.front();
        queue_.pop_front();
        start(c, due);
        return;
      }
      idle_.push_back(c);
      maybe_finish();
      return;
    }
    start(c, Clock::now());
  }

  void maybe_finish() {
    if (sending_done_ && outstanding_ == 0 && queue_.empty()) {
      stopping_ = true;
      ioc_.stop();
    }
  }

  Options o_;
  MakeRequest make_;
  OnResponse on_;
  asio::io_context ioc_{1};
  tcp::endpoint ep_;
  std::vector<std::unique_ptr<Conn>> conns_;
  std::vector<Conn*> idle_;
  std::deque<Clock::time_point> queue_;
  asio::steady_timer sched_{ioc_}, stop_{ioc_};
  std::chrono::duration<double> period_{0};
  Clock::time_point t0_, measure_from_, send_until_, hard_stop_, last_done_;
  uint64_t next_ = 0, seq_ = 0, answered_ = 0, outstanding_ = 0, measured_sent_ = 0, ok_ = 0, errors_ = 0, max_queue_ = 0;
  bool sending_done_ = false, stopping_ = false;
  std::vector<double> lat_, svc_, lag_;
  std::string first_error_;
};

// ---------------------------------------------------------------------------------------------------
// ingest-direct

const char* kInsertEvent =
    "INSERT INTO usage_events (org_id, source, id, type, project_id, api_key_id, time, item, quantity, "
    "input_tokens, output_tokens, cached_tokens, cost_micros, data, received_at) VALUES "
    "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) "
    "ON CONFLICT (org_id, source, id) DO NOTHING";

int64_t unix_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

nc::gateway::UsageEvent make_event(const std::string& source, uint64_t n, int64_t now) {
  nc::gateway::UsageEvent e;
  e.source = source;
  e.id = "evt-" + std::to_string(n);
  e.type = "com.example.gpu";
  e.time = now;
  e.item = "gpu_seconds:H100";
  e.quantity = 1;
  e.data = R"({"item":"gpu_seconds:H100","quantity":1})";
  return e;
}

std::unique_ptr<nc::storage::Database> fresh_db(const std::string& dir, const std::string& name) {
  const std::string path = dir + "/" + name + ".db";
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) std::filesystem::remove(path + suffix);
  auto db = nc::storage::Database::open("sqlite:" + path);
  if (!db.is_ok()) throw std::runtime_error("open " + path + ": " + db.status().to_string());
  auto schema = nc::storage::compose_migrations(
      {nc::tenancy::migrations(), nc::gateway::migrations(), nc::capacity::migrations()});
  if (auto s = schema.is_ok() ? nc::storage::migrate(**db, *schema) : schema.status(); !s.is_ok())
    throw std::runtime_error("migrate: " + s.to_string());
  auto s = (*db)->transact([&](nc::storage::Transaction& tx) {
    return tx.exec("INSERT INTO organizations (id, name, created_at) VALUES ($1, $2, $3)",
                   {std::string("org_bench"), std::string("bench"), unix_us()})
        .status();
  });
  if (!s.is_ok()) throw std::runtime_error("insert org: " + s.to_string());
  return std::move(*db);
}

int64_t count_events(nc::storage::Database& db) {
  auto n = db.read([](nc::storage::Transaction& tx) -> nc::Result<int64_t> {
    auto row = tx.query_one("SELECT count(*) FROM usage_events");
    if (!row.is_ok()) return row.status();
    return row->get_int(0);
  });
  return n.is_ok() ? *n : -1;
}

// One event per transaction, sequentially: a commit (and an fsync) per event.
json ingest_per_transaction(const std::string& dir, int64_t events) {
  auto db = fresh_db(dir, "per-transaction");
  const std::string source = "bench/per-txn";
  std::vector<double> lat;
  lat.reserve(events);
  const auto t0 = Clock::now();
  for (int64_t i = 0; i < events; ++i) {
    const auto e = make_event(source, static_cast<uint64_t>(i), unix_us());
    const auto s0 = Clock::now();
    auto s = db->transact([&](nc::storage::Transaction& tx) {
      return tx.exec(kInsertEvent, {std::string("org_bench"), e.source, e.id, e.type, nc::storage::SqlValue(),
                                    nc::storage::SqlValue(), e.time, e.item, e.quantity, e.input_tokens, e.output_tokens,
                                    e.cached_tokens, e.cost_micros, e.data, unix_us()})
          .status();
    });
    if (!s.is_ok()) throw std::runtime_error("insert: " + s.to_string());
    lat.push_back(ms_between(s0, Clock::now()));
  }
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  json j;
  j["case"] = "one event per transaction";
  j["batch"] = 1;
  j["submitters"] = 1;
  j["events"] = events;
  j["seconds"] = secs;
  j["events_per_s"] = static_cast<double>(events) / secs;
  j["ack_ms"] = percentiles(std::move(lat));
  j["stored"] = count_events(*db);
  return j;
}

// Ledger::ingest (group commit) from `submitters` threads, each with one batch in flight.
json ingest_ledger(const std::string& dir, int64_t events, int64_t batch, int submitters) {
  auto db = fresh_db(dir, "ledger-b" + std::to_string(batch) + "-k" + std::to_string(submitters));
  nc::gateway::Ledger ledger(*db, "bench");
  const int64_t batches = (events + batch - 1) / batch;
  const int64_t now = unix_us();
  std::latch built(submitters + 1), go(1);
  std::vector<std::vector<double>> lat(submitters);
  std::vector<Clock::time_point> last(submitters);
  std::atomic<int64_t> inserted{0}, failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < submitters; ++t) {
    threads.emplace_back([&, t] {
      // This thread's batches, built before the clock starts.
      std::vector<std::vector<nc::gateway::UsageEvent>> mine;
      for (int64_t b = t; b < batches; b += submitters) {
        std::vector<nc::gateway::UsageEvent> v;
        v.reserve(batch);
        for (int64_t i = b * batch; i < std::min(events, (b + 1) * batch); ++i)
          v.push_back(make_event("bench/ledger", static_cast<uint64_t>(i), now));
        mine.push_back(std::move(v));
      }
      built.count_down();
      go.wait();
      for (auto& v : mine) {
        std::promise<void> p;
        auto f = p.get_future();
        const auto s0 = Clock::now();
        ledger.ingest("org_bench", std::move(v), [&](nc::Result<nc::gateway::Ledger::IngestResult> r) {
          if (!r.is_ok()) {
            failed.fetch_add(1);
          } else {
            int64_t n = 0;
            for (bool x : r->inserted) n += x;
            inserted.fetch_add(n);
          }
          p.set_value();
        });
        f.wait();
        last[t] = Clock::now();
        lat[t].push_back(ms_between(s0, last[t]));
      }
    });
  }
  built.arrive_and_wait();
  const auto t0 = Clock::now();
  go.count_down();
  for (auto& th : threads) th.join();
  Clock::time_point end = t0;
  for (auto& x : last) end = std::max(end, x);
  const double secs = std::chrono::duration<double>(end - t0).count();
  const auto st = ledger.stats();
  ledger.stop();
  std::vector<double> all;
  for (auto& v : lat) all.insert(all.end(), v.begin(), v.end());
  json j;
  j["case"] = "Ledger::ingest (group commit)";
  j["batch"] = batch;
  j["submitters"] = submitters;
  j["events"] = events;
  j["inserted"] = inserted.load();
  j["failed_batches"] = failed.load();
  j["seconds"] = secs;
  j["events_per_s"] = static_cast<double>(inserted.load()) / secs;
  j["commits"] = st.groups;
  j["events_per_commit"] = st.groups ? static_cast<double>(events) / static_cast<double>(st.groups) : 0.0;
  j["ack_ms"] = percentiles(std::move(all));
  j["stored"] = count_events(*db);
  return j;
}

std::vector<int64_t> int_list(const std::string& s) {
  std::vector<int64_t> out;
  size_t i = 0;
  while (i < s.size()) {
    size_t j = s.find(',', i);
    if (j == std::string::npos) j = s.size();
    out.push_back(std::stoll(s.substr(i, j - i)));
    i = j + 1;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"gateway_load: load generator for the neocloud gateway benchmarks"};
  app.require_subcommand(1);

  // http
  std::string url, key, body = R"({"model":"micro","prompt":"Hi","max_tokens":1,"temperature":0})";
  double rate = 1000, seconds = 10, warmup = 2, drain = 10;
  int connections = 64;
  int expect = 200;
  auto* h = app.add_subcommand("http", "open-loop (or --rate 0: closed-loop) load on one POST route");
  h->add_option("--url", url, "http://HOST:PORT/PATH")->required();
  h->add_option("--key", key, "API key (Authorization: Bearer)");
  h->add_option("--rate", rate, "offered requests per second (0: closed loop)")->capture_default_str();
  h->add_option("--seconds", seconds, "measured window")->capture_default_str();
  h->add_option("--warmup", warmup, "seconds of load before the window (not measured)")->capture_default_str();
  h->add_option("--drain", drain, "seconds to wait for answers after the window")->capture_default_str();
  h->add_option("--connections", connections, "keep-alive connections")->capture_default_str();
  h->add_option("--body", body, "JSON body")->capture_default_str();
  h->add_option("--expect", expect, "the status that counts as success")->capture_default_str();

  // ingest-http
  int64_t batch = 1000;
  int ingest_conns = 4;
  double ingest_seconds = 10, ingest_warmup = 1;
  std::string iurl, ikey;
  auto* ih = app.add_subcommand("ingest-http", "POST /v1/usage/events with arrays of CloudEvents, closed loop");
  ih->add_option("--url", iurl, "http://HOST:PORT/v1/usage/events")->required();
  ih->add_option("--key", ikey, "API key")->required();
  ih->add_option("--batch", batch, "events per request")->capture_default_str();
  ih->add_option("--connections", ingest_conns, "connections, one request in flight each")->capture_default_str();
  ih->add_option("--seconds", ingest_seconds, "measured window")->capture_default_str();
  ih->add_option("--warmup", ingest_warmup, "seconds before the window")->capture_default_str();

  // ingest-direct
  std::string dir, batches = "100,1000";
  int64_t events = 400000, baseline_events = 2000, single_events = 20000;
  int submitters = 8, single_submitters = 64;
  auto* id = app.add_subcommand("ingest-direct", "Ledger::ingest with group commit vs one event per transaction");
  id->add_option("--dir", dir, "directory for the SQLite files (on a real disk)")->required();
  id->add_option("--events", events, "events per group-commit case")->capture_default_str();
  id->add_option("--batch", batches, "events per ingest() call, comma-separated cases")->capture_default_str();
  id->add_option("--submitters", submitters, "threads, one batch in flight each")->capture_default_str();
  id->add_option("--baseline-events", baseline_events, "events of the one-per-transaction baseline")->capture_default_str();
  id->add_option("--single-events", single_events, "events of the batch-1 group-commit case (0: skip)")->capture_default_str();
  id->add_option("--single-submitters", single_submitters, "threads of the batch-1 case")->capture_default_str();

  CLI11_PARSE(app, argc, argv);
  nc::log_set_level("warn");  // stdout carries the JSON result only

  try {
    if (*h) {
      Driver::Options o;
      o.target = parse_url(url);
      o.rate = rate;
      o.seconds = seconds;
      o.warmup = warmup;
      o.drain = drain;
      o.connections = connections;
      auto req = std::make_shared<const std::string>(build_request(o.target, key, body));
      Driver d(
          o, [req](uint64_t) { return req; }, [expect](const Response& r, bool) { return r.status == expect; });
      json j = d.run();
      std::printf("%s\n", j.dump().c_str());
      return 0;
    }
    if (*ih) {
      Driver::Options o;
      o.target = parse_url(iurl);
      o.rate = 0;
      o.seconds = ingest_seconds;
      o.warmup = ingest_warmup;
      o.drain = 30;
      o.connections = ingest_conns;
      const std::string source = "bench/http-" + std::to_string(unix_us());
      int64_t accepted = 0, duplicates = 0;
      const Target target = o.target;
      Driver d(
          o,
          [&](uint64_t seq) {
            std::string b;
            b.reserve(static_cast<size_t>(batch) * 110 + 16);
            b += '[';
            char num[32];
            for (int64_t i = 0; i < batch; ++i) {
              if (i) b += ',';
              b += R"({"id":"e)";
              b.append(num, std::to_chars(num, num + sizeof num, seq).ptr);
              b += '-';
              b.append(num, std::to_chars(num, num + sizeof num, i).ptr);
              b += R"(","source":")";
              b += source;
              b += R"(","type":"com.example.gpu","data":{"item":"gpu_seconds:H100","quantity":1}})";
            }
            b += ']';
            return std::make_shared<const std::string>(build_request(target, ikey, b));
          },
          [&](const Response& r, bool measured) {
            if (r.status != 200) return false;
            const json res = json::parse(r.body, nullptr, false);
            if (!res.is_object() || !res.contains("accepted")) return false;
            if (measured) {
              accepted += res["accepted"].get<int64_t>();
              duplicates += static_cast<int64_t>(res["duplicates"].size());
            }
            return true;
          });
      json j = d.run();
      const double busy = j["ok"].get<double>() / std::max(1e-9, j["achieved_rps"].get<double>());
      j["batch"] = batch;
      j["events_accepted"] = accepted;
      j["duplicates"] = duplicates;
      j["events_per_s"] = busy > 0 ? static_cast<double>(accepted) / busy : 0.0;
      std::printf("%s\n", j.dump().c_str());
      return 0;
    }
    if (*id) {
      std::filesystem::create_directories(dir);
      json out = json::object();
      out["baseline"] = ingest_per_transaction(dir, baseline_events);
      std::fprintf(stderr, "%s\n", out["baseline"].dump().c_str());
      out["ledger"] = json::array();
      for (int64_t b : int_list(batches)) {
        json r = ingest_ledger(dir, events, b, submitters);
        r["ratio_vs_baseline"] = r["events_per_s"].get<double>() / out["baseline"]["events_per_s"].get<double>();
        std::fprintf(stderr, "%s\n", r.dump().c_str());
        out["ledger"].push_back(r);
      }
      if (single_events > 0) {
        json r = ingest_ledger(dir, single_events, 1, single_submitters);
        r["ratio_vs_baseline"] = r["events_per_s"].get<double>() / out["baseline"]["events_per_s"].get<double>();
        std::fprintf(stderr, "%s\n", r.dump().c_str());
        out["ledger"].push_back(r);
      }
      std::printf("%s\n", out.dump().c_str());
      return 0;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gateway_load: %s\n", e.what());
    return 1;
  }
  return 0;
}
