// SseWriter (sse_writer.h): server-sent events over chunked HTTP/1.1 with write deadlines.
#include "server/sse_writer.h"

#include <fmt/format.h>

#include <chrono>

#include "server/openai.h"

namespace nc::server {

awaitable<bool> SseWriter::write(std::string bytes) {
  if (!alive_) co_return false;
  boost::system::error_code ec;
  ex_.stream.expires_after(std::chrono::milliseconds(ex_.limits.write_timeout_ms));
  co_await asio::async_write(ex_.stream, asio::buffer(bytes), asio::redirect_error(use_awaitable, ec));
  ex_.stream.expires_never();
  alive_ = !ec;
  co_return alive_;
}

awaitable<bool> SseWriter::chunk(const std::string& data) {
  return write(fmt::format("{:x}\r\n{}\r\n", data.size(), data));
}

awaitable<bool> SseWriter::start(const Headers& headers) {
  ex_.answered = true;
  std::string extra;
  for (const auto& [k, v] : headers) extra += fmt::format("{}: {}\r\n", k, v);
  return write(fmt::format(
      "HTTP/1.1 200 OK\r\nServer: neocloud\r\nContent-Type: text/event-stream; charset=utf-8\r\nCache-Control: no-cache\r\n"
      "x-request-id: {}\r\n{}Transfer-Encoding: chunked\r\nConnection: {}\r\n\r\n",
      ex_.request_id, extra, ex_.keep_alive() ? "keep-alive" : "close"));
}

awaitable<bool> SseWriter::event(const nlohmann::json& j) { return chunk("data: " + dump(j) + "\n\n"); }
awaitable<bool> SseWriter::event(const nlohmann::ordered_json& j) { return chunk("data: " + dump(j) + "\n\n"); }

awaitable<bool> SseWriter::done() {
  // One write for the last event and the terminating chunk (GCC 12 miscompiled this as two awaits
  // under an `if`: the coroutine fell into a trap instruction).
  const std::string last = "data: [DONE]\n\n";
  std::string bytes = fmt::format("{:x}\r\n{}\r\n0\r\n\r\n", last.size(), last);
  const bool ok = co_await write(std::move(bytes));
  co_return ok;
}

}  // namespace nc::server
