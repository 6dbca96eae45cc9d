// server/http_api.h — the seam between the transports (Beast HTTP, stdio) and the MCP server.
// Transports do I/O only; every protocol decision (status codes, sessions, headers) is made by
// the handler, so it is testable without sockets.
// Thread-safety: a Respond/Write callback may be invoked from any thread, exactly once per
// request (Respond) or once per line (Write); transports must marshal back to their own executor.
// EventStream methods may be called from any thread.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace onemcp::server {

struct HttpResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;  // e.g. Content-Type
  std::string body;
};

// The body of a response written piece by piece (Server-Sent Events). The transport frames the
// pieces; they reach the client in the order sent.
class EventStream {
 public:
  virtual ~EventStream() = default;
  // Queues `chunk` (e.g. one "data: ...\n\n" event) and returns at once. False, and nothing is
  // sent, once the stream is closed: by close(), because the client went away or fell too far
  // behind (the transport drops a stream whose unsent data passes its cap), or on server stop.
  virtual bool send(std::string chunk) = 0;
  // Ends the body once the queued chunks are written. Idempotent.
  virtual void close() = 0;
  // True once send() would return false.
  virtual bool closed() const = 0;
};

using StartStream = std::function<std::shared_ptr<EventStream>(HttpResponse head)>;

// Tells the handler that nobody will receive a request's answer: the client closed or reset its
// connection, stopped reading the response or the stream for too long, or the server stopped
// before the answer (or the whole stream) was written. The handler then cancels the work behind
// it. Fires at most once, never after the answer was completely written.
class Abandonment {
 public:
  // `fn` runs once when the request is abandoned: on the transport's thread, or at once on this
  // thread if it already was. Replaces an earlier callback; must not block.
  void on_abandon(std::function<void()> fn) {
    std::unique_lock lk(mu_);
    if (!abandoned_) {
      fn_ = std::move(fn);
      return;
    }
    lk.unlock();
    if (fn) fn();
  }
  // Transport side.
  void abandon() {
    std::function<void()> fn;
    {
      std::lock_guard lk(mu_);
      if (abandoned_ || delivered_) return;
      abandoned_ = true;
      fn = std::move(fn_);
    }
    if (fn) fn();
  }
  // Transport side: the answer was written; abandon() does nothing any more.
  void delivered() {
    std::lock_guard lk(mu_);
    delivered_ = true;
    fn_ = nullptr;
  }
  bool abandoned() const {
    std::lock_guard lk(mu_);
    return abandoned_;
  }

 private:
  mutable std::mutex mu_;
  std::function<void()> fn_;
  bool abandoned_ = false;
  bool delivered_ = false;
};

struct HttpRequest {
  std::string method;                          // "GET", "POST", ...
  std::string target;                          // path and query, as received
  std::map<std::string, std::string> headers;  // keys lower-cased; repeated headers joined by ", "
  std::string body;
  std::string peer;  // "ip:port" of the client
  // Who the request is authenticated as, set by the authentication step (server/auth.h):
  // "token:<name>" (a static token) or "oauth:<iss> <sub>" (a JWT access token). Empty when
  // authentication is off, and on the routes that need none (/health).
  std::string principal;
  // Set by the HTTP transport for every request (null from transports or tests that cannot tell).
  std::shared_ptr<Abandonment> abandonment;
  // Answers with `head` (its body ignored) and then a body sent through the returned stream,
  // instead of calling `respond`. Null when the transport cannot stream. May be called once,
  // from any thread; it never calls back into the handler.
  StartStream start_stream;
};

using Respond = std::function<void(HttpResponse)>;

class HttpHandler {
 public:
  virtual ~HttpHandler() = default;
  // Largest request body accepted; the transport answers 413 itself beyond it.
  virtual size_t max_body_bytes() const = 0;
  virtual void handle(HttpRequest request, Respond respond) = 0;
};

// stdio transport: one JSON-RPC message per line in, zero or more lines out.
using WriteLine = std::function<void(std::string line)>;  // line without the trailing '\n'

class LineHandler {
 public:
  virtual ~LineHandler() = default;
  virtual size_t max_line_bytes() const = 0;
  // `write` may be called later, from any thread, any number of times (responses and
  // notifications). `done` is called once when the message's work has finished.
  virtual void handle_line(std::string line, WriteLine write, std::function<void()> done) = 0;
  // A line longer than max_line_bytes() arrived; it has been discarded up to its newline.
  virtual void line_too_long(WriteLine write) = 0;
  // Input reached EOF and work is still in flight: stop it (each message still gets `done`).
  virtual void input_closed() {}
};

}  // namespace onemcp::server
