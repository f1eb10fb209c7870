// The HTTP transport of the API server: one listening socket, one coroutine per connection on one I/O
// thread (Boost.Beast, C++20 coroutines), and the limits that keep hostile clients from holding the
// server: a connection cap, a deadline for a request's headers and one for its body, an idle keep-alive
// timeout, a write timeout, and a body size limit (413). It knows no routes: each complete request goes
// to the handler, which answers through the Exchange (reply, or an SseWriter for a stream).
//
// Ownership: owns the io_context, the acceptor and the connections. Thread-safety: listen/run from one
// thread; stop from any thread; the handler and everything on an Exchange run on the I/O thread.
#pragma once

#include <utility>  // before Boost: asio/awaitable.hpp uses std::exchange

#include <boost/asio.hpp>
#include <boost/beast.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/api_error.h"
#include "core/query_string.h"
#include "core/status.h"

namespace nc::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using asio::awaitable;
using asio::use_awaitable;

// Limits on what one client may send or hold (serve's --max-* and --*-timeout-ms flags set them).
struct EdgeLimits {
  size_t max_body_bytes = 8 << 20;
  int max_connections = 1024;      // beyond: 503 and close
  int header_timeout_ms = 10'000;  // a request's headers, from its first byte (or the connection's start)
  int body_timeout_ms = 60'000;    // its body, after the headers
  int idle_timeout_ms = 60'000;    // a kept-alive connection waiting for its next request
  int write_timeout_ms = 60'000;   // each write (a client that stops reading is dropped)
  // A request's total work: the tokens it may make the engine compute (prompt tokens × n plus
  // max_tokens × choices; embedding input tokens) and its number of sequences (prompts × n, inputs).
  int64_t max_request_tokens = 4 << 20;
  int64_t max_request_sequences = 2048;  // OpenAI's limit on embedding inputs
};

// The body of a request whose route reads it itself (uploads: Transport's `streamed` says which): the
// handler pulls it chunk by chunk as it arrives, after it has authenticated the caller from the headers,
// so a large upload is never whole in memory and one refused before its body is never read. Each read
// waits at most the body timeout for the client's next bytes, and after the first body timeout the
// body must have come at kMinUploadBytesPerSecond on average (a client trickling bytes to hold a
// connection is dropped). Lives in the connection's coroutine; I/O thread only.
class BodyReader {
 public:
  BodyReader(beast::tcp_stream& stream, beast::flat_buffer& buf, http::request_parser<http::buffer_body>& parser,
             int timeout_ms)
      : stream_(stream), buf_(buf), parser_(parser), timeout_ms_(timeout_ms) {}
  // The next bytes of the body; an empty view once it is complete (done()). An error when the client
  // closes, stalls past the timeout, sends malformed chunking or more than the route's limit
  // (ResourceExhausted); the connection is then closed after the reply.
  awaitable<Result<std::string_view>> next();
  bool done() const { return parser_.is_done(); }
  // The Content-Length the client announced (none for a chunked body).
  std::optional<uint64_t> content_length() const;
  uint64_t bytes_read() const { return read_; }
  static constexpr uint64_t kMinUploadBytesPerSecond = 64 * 1024;

 private:
  beast::tcp_stream& stream_;
  beast::flat_buffer& buf_;
  http::request_parser<http::buffer_body>& parser_;
  int timeout_ms_;
  uint64_t read_ = 0;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  std::vector<char> chunk_ = std::vector<char>(64 * 1024);
};

// What a handler answers with when it answers whole.
struct Reply {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  Headers headers;
};
Reply json_reply(int status, const nlohmann::json& j);
Reply json_reply(int status, const nlohmann::ordered_json& j);
// OpenAI's error body, with the error's retry and rate-limit headers.
Reply error_reply(const ApiError& e);
Reply error_reply(const Status& s, const std::string& param = "");
Reply response_reply(const ApiResponse& r);

// One request being answered.
struct Exchange {
  beast::tcp_stream& stream;
  http::request<http::string_body>& req;
  const EdgeLimits& limits;
  std::string request_id;  // x-request-id: "req_" + time-ordered hex
  std::string path;        // the target up to '?'
  QueryString query;
  std::string query_text;  // the raw text after '?'
  bool answered = false;   // a response (or a stream's head) has been started
  BodyReader* body = nullptr;  // set on a streamed route: req.body() is then empty, read it from here
  // Writes a whole response; true when the connection stays open for the next request (never after a
  // streamed body the handler did not read to its end).
  awaitable<bool> reply(Reply r);
  // Writes the file at `path` as the response body (read from disk as it is sent, never whole in
  // memory); a file that cannot be opened is a 404 file_not_found.
  awaitable<bool> reply_file(const std::string& path, std::string content_type, Headers headers = {});
  bool keep_alive() const { return req.keep_alive() && (!body || body->done()); }
};

using RequestHandler = std::function<awaitable<bool>(Exchange&)>;
// For a request's method and path: the body limit of a streamed route (its handler reads the body
// through Exchange::body), or nullopt for a route whose body is read whole first (max_body_bytes).
using StreamedRoute = std::function<std::optional<uint64_t>(http::verb, std::string_view path)>;

class Transport {
 public:
  Transport(EdgeLimits limits, RequestHandler handler, StreamedRoute streamed = {});
  ~Transport();
  Status listen(const std::string& host, uint16_t port);
  uint16_t port() const;
  // Serves until stop() or SIGINT/SIGTERM.
  void run();
  void stop();
  asio::io_context& io() { return ioc_; }
  const EdgeLimits& limits() const { return limits_; }
  int active_connections() const { return active_.load(); }

 private:
  awaitable<void> accept_loop();
  awaitable<void> session(tcp::socket sock);
  awaitable<void> refuse(tcp::socket sock);

  EdgeLimits limits_;
  RequestHandler handler_;
  StreamedRoute streamed_;
  asio::io_context ioc_{1};
  tcp::acceptor acceptor_{ioc_};
  std::atomic<int> active_{0};
};

}  // namespace nc::server
