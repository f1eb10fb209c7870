// Transport (transport.h): accept loop, per-connection sessions with the edge's limits, whole replies.
#include "server/transport.h"

#include <fmt/format.h>

#include <chrono>

#include "core/ids.h"
#include "core/log.h"
#include "server/openai.h"

namespace nc::server {

namespace {
std::chrono::milliseconds ms(int v) { return std::chrono::milliseconds(v); }

// Counts a connection for the cap while it lives.
struct ConnectionSlot {
  explicit ConnectionSlot(std::atomic<int>& n) : n_(n) { n_.fetch_add(1); }
  ~ConnectionSlot() { n_.fetch_sub(1); }
  std::atomic<int>& n_;
};
}  // namespace

Reply json_reply(int status, const nlohmann::json& j) {
  Reply r;
  r.status = status;
  r.body = dump(j);
  return r;
}

Reply json_reply(int status, const nlohmann::ordered_json& j) {
  Reply r;
  r.status = status;
  r.body = dump(j);
  return r;
}

Reply error_reply(const ApiError& e) {
  Reply r = json_reply(e.status, error_body(e));
  r.headers = e.headers;
  if (e.retry_after_s >= 0) {
    r.headers.emplace_back("retry-after", std::to_string(static_cast<int64_t>(std::ceil(e.retry_after_s))));
    r.headers.emplace_back("retry-after-ms", std::to_string(static_cast<int64_t>(std::ceil(e.retry_after_s * 1000))));
  }
  if (!e.should_retry) r.headers.emplace_back("x-should-retry", "false");
  return r;
}

Reply error_reply(const Status& s, const std::string& param) { return error_reply(api_error_of(s, param)); }

Reply response_reply(const ApiResponse& res) {
  Reply r = json_reply(res.status, res.body);
  r.headers = res.headers;
  return r;
}

namespace {
awaitable<bool> write_reply(beast::tcp_stream& stream, unsigned version, bool keep_alive, Reply r,
                            std::string request_id, int write_timeout_ms) {
  http::response<http::string_body> res{static_cast<http::status>(r.status), version};
  res.set(http::field::server, "neocloud");
  res.set(http::field::content_type, r.content_type);
  res.set("x-request-id", request_id);
  for (const auto& [k, v] : r.headers) res.set(k, v);
  res.keep_alive(keep_alive);
  res.body() = r.body;
  res.prepare_payload();
  boost::system::error_code ec;
  stream.expires_after(ms(write_timeout_ms));
  co_await http::async_write(stream, res, asio::redirect_error(use_awaitable, ec));
  stream.expires_never();
  co_return !ec && keep_alive;
}
}  // namespace

awaitable<bool> Exchange::reply(Reply r) {
  answered = true;
  return write_reply(stream, req.version(), req.keep_alive(), std::move(r), request_id, limits.write_timeout_ms);
}

Transport::Transport(EdgeLimits limits, RequestHandler handler) : limits_(limits), handler_(std::move(handler)) {}
Transport::~Transport() = default;

Status Transport::listen(const std::string& host, uint16_t port) {
  boost::system::error_code ec;
  const auto addr = asio::ip::make_address(host, ec);
  if (ec) return invalid_argument(fmt::format("--host '{}' is not an IP address", host));
  tcp::endpoint ep(addr, port);
  acceptor_.open(ep.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(ep, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return unavailable(fmt::format("cannot listen on {}:{}: {}", host, port, ec.message()));
  asio::co_spawn(ioc_, accept_loop(), asio::detached);
  return Status::ok();
}

uint16_t Transport::port() const { return acceptor_.local_endpoint().port(); }

void Transport::run() {
  // SIGINT/SIGTERM end run() (handled on the I/O thread, not in a signal handler).
  asio::signal_set signals(ioc_, SIGINT, SIGTERM);
  signals.async_wait([this](const boost::system::error_code& ec, int) {
    if (!ec) stop();
  });
  ioc_.run();
}

void Transport::stop() {
  asio::post(ioc_, [this] {
    boost::system::error_code ec;
    acceptor_.close(ec);
    ioc_.stop();
  });
}

awaitable<void> Transport::accept_loop() {
  for (;;) {
    boost::system::error_code ec;
    tcp::socket sock = co_await acceptor_.async_accept(asio::redirect_error(use_awaitable, ec));
    if (ec) {
      if (!acceptor_.is_open()) co_return;
      if (ec == asio::error::no_descriptors) {  // out of file descriptors: let connections finish
        asio::steady_timer t(ioc_, ms(50));
        co_await t.async_wait(asio::redirect_error(use_awaitable, ec));
      }
      continue;
    }
    if (active_.load() >= limits_.max_connections) {
      asio::co_spawn(ioc_, refuse(std::move(sock)), asio::detached);
      continue;
    }
    asio::co_spawn(ioc_, session(std::move(sock)), asio::detached);
  }
}

// Over the connection cap: a short 503 (written with a deadline) and close.
awaitable<void> Transport::refuse(tcp::socket sock) {
  beast::tcp_stream stream(std::move(sock));
  const std::string body = dump(error_body(api_error(503, "The server has too many open connections; retry shortly.", "",
                                                     "too_many_connections", "server_error")));
  const std::string msg = fmt::format(
      "HTTP/1.1 503 Service Unavailable\r\nServer: neocloud\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
      "Connection: close\r\nContent-Length: {}\r\n\r\n{}",
      body.size(), body);
  boost::system::error_code ec;
  stream.expires_after(ms(1000));
  co_await asio::async_write(stream, asio::buffer(msg), asio::redirect_error(use_awaitable, ec));
  stream.socket().shutdown(tcp::socket::shutdown_both, ec);
}

awaitable<void> Transport::session(tcp::socket sock) {
  ConnectionSlot slot(active_);
  beast::tcp_stream stream(std::move(sock));
  beast::flat_buffer buf;
  bool first = true;
  for (;;) {
    boost::system::error_code ec;
    // A kept-alive connection may idle up to idle_timeout for its next request's first byte; from then
    // on (and on a new connection from its start) the headers must arrive within header_timeout.
    if (!first && buf.size() == 0) {
      stream.expires_after(ms(limits_.idle_timeout_ms));
      const size_t n = co_await stream.async_read_some(buf.prepare(4096), asio::redirect_error(use_awaitable, ec));
      if (ec) break;
      buf.commit(n);
    }
    first = false;
    http::request_parser<http::string_body> parser;
    parser.body_limit(limits_.max_body_bytes);
    parser.header_limit(64 * 1024);
    stream.expires_after(ms(limits_.header_timeout_ms));
    co_await http::async_read_header(stream, buf, parser, asio::redirect_error(use_awaitable, ec));
    if (!ec && !parser.is_done()) {
      stream.expires_after(ms(limits_.body_timeout_ms));
      co_await http::async_read(stream, buf, parser, asio::redirect_error(use_awaitable, ec));
    }
    stream.expires_never();
    if (ec == http::error::body_limit) {
      http::request<http::string_body> dummy;
      dummy.version(11);
      dummy.keep_alive(false);
      Exchange ex{stream, dummy, limits_, time_ordered_id("req_", 32), "", {}, ""};
      co_await ex.reply(error_reply(api_error(413, fmt::format("The request body exceeds {} bytes.", limits_.max_body_bytes),
                                              "", "request_too_large")));
      break;
    }
    if (ec) break;  // closed, timed out (slow or idle client) or malformed: drop the connection
    http::request<http::string_body> req = parser.release();
    const std::string target(req.target());
    Exchange ex{stream, req, limits_, time_ordered_id("req_", 32), std::string(QueryString::path_of(target)),
                QueryString(QueryString::query_of(target)), std::string(QueryString::query_of(target))};
    // A handler that throws (a bug: parsers return Result) costs its request, never the process: a 500
    // if nothing was sent yet, and the connection is closed.
    bool keep = false, threw = false;
    try {
      keep = co_await handler_(ex);
    } catch (const std::exception& e) {
      NC_LOG_ERROR("request {} {} {}: unhandled exception: {}", ex.request_id, std::string(req.method_string()), ex.path,
                   e.what());
      threw = true;
    }
    if (threw && !ex.answered) {
      req.keep_alive(false);
      co_await ex.reply(error_reply(internal_error("unhandled exception")));
    }
    if (!keep || threw) break;
  }
  boost::system::error_code ec;
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
}

}  // namespace nc::server
