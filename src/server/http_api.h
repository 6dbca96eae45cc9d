// server/http_api.h — the seam between the transports (Beast HTTP, stdio) and the MCP server.
// Transports do I/O only; every protocol decision (status codes, sessions, headers) is made by
// the handler, so it is testable without sockets.
// Thread-safety: a Respond/Write callback may be invoked from any thread, exactly once per
// request (Respond) or once per line (Write); transports must marshal back to their own executor.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace onemcp::server {

struct HttpRequest {
  std::string method;                          // "GET", "POST", ...
  std::string target;                          // path and query, as received
  std::map<std::string, std::string> headers;  // keys lower-cased; repeated headers joined by ", "
  std::string body;
  std::string peer;  // "ip:port" of the client
};

struct HttpResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;  // e.g. Content-Type
  std::string body;
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
