// SseWriter: one server-sent-events response (text/event-stream over HTTP/1.1 chunked encoding): the
// head with the request's headers, then `data: <json>` events, then the terminating chunk. Every write
// has the edge's write deadline, so a client that stops reading is dropped instead of holding its
// request's KV cache. A false return means the client is gone: the caller cancels its work.
// Ownership: borrows the Exchange. Thread-safety: the I/O thread, from the request's coroutine only.
#pragma once

#include <string>

#include "server/transport.h"

namespace nc::server {

class SseWriter {
 public:
  explicit SseWriter(Exchange& ex) : ex_(ex) {}
  // The response head (200, event-stream, chunked) with `headers`.
  awaitable<bool> start(const Headers& headers);
  // One event: "data: <json>\n\n".
  awaitable<bool> event(const nlohmann::json& j);
  awaitable<bool> event(const nlohmann::ordered_json& j);
  // "data: [DONE]\n\n" then the terminating chunk.
  awaitable<bool> done();
  // Whether the connection may carry another request after done().
  bool keep_alive() const { return alive_ && ex_.keep_alive(); }

 private:
  awaitable<bool> write(std::string bytes);
  awaitable<bool> chunk(const std::string& data);
  Exchange& ex_;
  bool alive_ = true;
};

}  // namespace nc::server
