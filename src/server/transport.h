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
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

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
  // Writes a whole response; true when the connection stays open for the next request.
  awaitable<bool> reply(Reply r);
  bool keep_alive() const { return req.keep_alive(); }
};

using RequestHandler = std::function<awaitable<bool>(Exchange&)>;

class Transport {
 public:
  Transport(EdgeLimits limits, RequestHandler handler);
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
  asio::io_context ioc_{1};
  tcp::acceptor acceptor_{ioc_};
  std::atomic<int> active_{0};
};

}  // namespace nc::server
