// transport/http_server.h — HTTP/1.1 server (Boost.Beast) that hands each request to a
// server::HttpHandler and writes back whatever it answers; it makes no protocol decisions.
// Thread-safety: start/stop/port may be called from any thread, except that stop() must not be
// called from inside HttpHandler::handle (that runs on an io thread, which stop() joins).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "base/result.h"
#include "server/http_api.h"

namespace onemcp::transport {

struct HttpServerOptions {
  // An IPv4 or IPv6 literal, used as given. A host name (e.g. "localhost") is resolved once at
  // start and the first address returned is used.
  std::string bind = "127.0.0.1";
  uint16_t port = 7800;  // 0 picks a free port; see HttpServer::port()
  int io_threads = 2;
  size_t max_connections = 512;  // beyond it a new connection gets a 503 and is closed
  std::chrono::milliseconds header_timeout{10000};  // a request's header must arrive within it
  std::chrono::milliseconds idle_timeout{120000};   // keep-alive idle, body read, response write
  size_t max_header_bytes = 16384;                   // beyond it: 431
  // A streamed response is dropped when its client stops reading: when more is sent while the
  // data still waiting to be written exceeds this (so one large chunk is always accepted).
  size_t max_stream_backlog_bytes = 256u << 10;
  // SO_SNDBUF of a streaming connection (0: the kernel's autotuning, up to MBs), so that the
  // backlog, not the kernel, absorbs what a stalled client does not read.
  int stream_send_buffer_bytes = 64 << 10;
  std::chrono::milliseconds stream_keepalive{15000};  // an SSE comment this often on a stream
};

// Behaviour per connection: keep-alive as the client asks, one request at a time in order
// (nothing more is read while a request is with the handler). The handler's `respond` may be
// called from any thread, later; after the connection is gone or the server stopped it is a
// no-op. HttpHandler::handle runs on an io thread and must not block.
// A streamed response (HttpRequest::start_stream) is chunked (HTTP/1.1) or ends with the
// connection (HTTP/1.0); its connection closes when the stream ends. While it streams, the
// connection only watches for the client going away; stop() closes every stream.
class HttpServer {
 public:
  // Binds and listens before returning, so a client may connect as soon as this returns.
  // Error example: "cannot listen on 127.0.0.1:7800: Address already in use".
  static Result<std::unique_ptr<HttpServer>> start(HttpServerOptions options,
                                                   server::HttpHandler& handler);
  ~HttpServer();  // calls stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  uint16_t port() const;  // the bound port (useful when options.port was 0)
  // Closes the listener and every connection and joins the io threads; pending requests are
  // abandoned. Idempotent; returns promptly even if some respond() is never called.
  void stop();

 private:
  struct Impl;
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace onemcp::transport
