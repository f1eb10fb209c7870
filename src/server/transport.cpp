// Transport (transport.h): accept loop, per-connection sessions with the edge's limits, whole replies.
#include "server/transport.h"

#include <fmt/format.h>

#include <chrono>
#include <limits>

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
  return write_reply(stream, req.version(), keep_alive(), std::move(r), request_id, limits.write_timeout_ms);
}

awaitable<bool> Exchange::reply_file(const std::string& path, std::string content_type, Headers headers) {
  http::response<http::file_body> res{http::status::ok, req.version()};
  boost::system::error_code ec;
  res.body().open(path.c_str(), beast::file_mode::scan, ec);
  if (ec) co_return co_await reply(error_reply(api_error(404, "The file's content is no longer there.", "", "file_not_found")));
  answered = true;
  res.set(http::field::server, "neocloud");
  res.set(http::field::content_type, content_type);
  res.set("x-request-id", request_id);
  for (const auto& [k, v] : headers) res.set(k, v);
  const bool keep = keep_alive();
  res.keep_alive(keep);
  res.prepare_payload();
  // The deadline is per write: a large file is sent in many, each must make progress in time.
  http::response_serializer<http::file_body> sr{res};
  while (!sr.is_done()) {
    stream.expires_after(ms(limits.write_timeout_ms));
    co_await http::async_write_some(stream, sr, asio::redirect_error(use_awaitable, ec));
    if (ec) break;
  }
  stream.expires_never();
  co_return !ec && keep;
}

awaitable<Result<std::string_view>> BodyReader::next() {
  if (parser_.is_done()) co_return std::string_view();
  for (;;) {
    parser_.get().body().data = chunk_.data();
    parser_.get().body().size = chunk_.size();
    boost::system::error_code ec;
    stream_.expires_after(ms(timeout_ms_));
    co_await http::async_read_some(stream_, buf_, parser_, asio::redirect_error(use_awaitable, ec));
    stream_.expires_never();
    if (ec == http::error::need_buffer) ec = {};
    if (ec == http::error::body_limit)
      co_return resource_exhausted("the request body exceeds the route's limit");
    if (ec) co_return unavailable(fmt::format("reading the request body: {}", ec.message()));
    const size_t n = chunk_.size() - parser_.get().body().size;
    read_ += n;
    const auto elapsed_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started_).count();
    if (elapsed_ms > timeout_ms_ && read_ * 1000 < BodyReader::kMinUploadBytesPerSecond * static_cast<uint64_t>(elapsed_ms))
      co_return unavailable("the request body arrives too slowly");
    if (n > 0) co_return std::string_view(chunk_.data(), n);
    if (parser_.is_done()) co_return std::string_view();
  }
}

std::optional<uint64_t> BodyReader::content_length() const {
  const auto n = parser_.content_length();
  return n ? std::optional<uint64_t>(*n) : std::nullopt;
}

Transport::Transport(EdgeLimits limits, RequestHandler handler, StreamedRoute streamed)
    : limits_(limits), handler_(std::move(handler)), streamed_(std::move(streamed)) {}
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
    // The headers first (their own limit and deadline); then the body whole, or — on a streamed route —
    // as the handler reads it.
    http::request_parser<http::empty_body> head;
    // Checked below, once the route is known (not boost::none: Boost 1.74 compares a length > none as true).
    head.body_limit(std::numeric_limits<uint64_t>::max());
    head.header_limit(64 * 1024);
    stream.expires_after(ms(limits_.header_timeout_ms));
    co_await http::async_read_header(stream, buf, head, asio::redirect_error(use_awaitable, ec));
    stream.expires_never();
    if (ec) break;  // closed, timed out (slow client) or malformed: drop the connection
    const std::string target(head.get().target());
    const std::string path(QueryString::path_of(target));
    const std::optional<uint64_t> streamed = streamed_ ? streamed_(head.get().method(), path) : std::nullopt;
    const uint64_t body_limit = streamed ? *streamed : limits_.max_body_bytes;
    if (head.content_length() && *head.content_length() > body_limit) ec = http::error::body_limit;
    std::optional<http::request_parser<http::string_body>> whole;
    std::optional<http::request_parser<http::buffer_body>> chunks;
    if (!ec && streamed) {
      chunks.emplace(std::move(head));
      chunks->body_limit(body_limit);
    } else if (!ec) {
      whole.emplace(std::move(head));
      whole->body_limit(body_limit);
      if (!whole->is_done()) {
        stream.expires_after(ms(limits_.body_timeout_ms));
        co_await http::async_read(stream, buf, *whole, asio::redirect_error(use_awaitable, ec));
        stream.expires_never();
      }
    }
    if (ec == http::error::body_limit) {
      http::request<http::string_body> dummy;
      dummy.version(11);
      dummy.keep_alive(false);
      Exchange ex{stream, dummy, limits_, time_ordered_id("req_", 32), "", {}, ""};
      co_await ex.reply(error_reply(api_error(413, fmt::format("The request body exceeds {} bytes.", body_limit), "",
                                              "request_too_large")));
      break;
    }
    if (ec) break;  // closed, timed out (slow or idle client) or malformed: drop the connection
    http::request<http::string_body> req;
    std::optional<BodyReader> reader;
    if (whole) {
      req = whole->release();
    } else {
      static_cast<http::request_header<>&>(req) = chunks->get().base();
      reader.emplace(stream, buf, *chunks, limits_.body_timeout_ms);
    }
    Exchange ex{stream, req, limits_, time_ordered_id("req_", 32), path, QueryString(QueryString::query_of(target)),
                std::string(QueryString::query_of(target))};
    if (reader) ex.body = &*reader;
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
    if (!keep || threw || (reader && !reader->done())) break;
  }
  // Lingering close: after our FIN, read and drop what the client still sends (a refused upload's rest)
  // for a short while, so that it reads our answer instead of a reset. Bounded in time and bytes.
  boost::system::error_code ec;
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  stream.expires_after(ms(2000));
  size_t dropped = 0;
  while (!ec && dropped < (256u << 20)) {
    buf.consume(buf.size());
    dropped += co_await stream.async_read_some(buf.prepare(64 * 1024), asio::redirect_error(use_awaitable, ec));
  }
}

}  // namespace nc::server
