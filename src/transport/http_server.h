// transport/http_server.h — HTTP/1.1 server (Boost.Beast) that hands each request to a
// server::HttpHandler and writes back whatever it answers; it makes no protocol decisions.
// Thread-safety: every method may be called from any thread, except that stop() and
// stop_accepting() must not be called from inside HttpHandler::handle (that runs on an io
// thread, which they wait for).
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
  // Connections open at once, in all and per client address (IPv4-mapped IPv6 counted as
  // IPv4). A new connection beyond either cap closes the connection (of that address, for the
  // per-address cap) that has waited longest without being busy: busy is a request with the
  // handler, an answer being written or a stream open; so idle keep-alive connections and
  // requests still being read make room. Only when all are busy is the new one answered 503.
  size_t max_connections = 512;
  size_t max_connections_per_address = 128;
  // A request's header and body must have arrived within this time of its first byte; past it
  // the connection is closed without an answer.
  std::chrono::milliseconds read_timeout{5000};
  std::chrono::milliseconds idle_timeout{120000};  // wait for a request's first byte
  // An answer (response or stream) whose client accepts no byte of it for this long is dropped:
  // the connection closed, the request abandoned (server::Abandonment). A client that reads
  // slowly but steadily gets all of it.
  std::chrono::milliseconds write_timeout{10000};
  size_t max_header_bytes = 16384;  // beyond it: 431
  // A streamed response is dropped when its client stops reading: when more is sent while the
  // data still waiting to be written exceeds this (so one large chunk is always accepted).
  size_t max_stream_backlog_bytes = 256u << 10;
  // SO_SNDBUF of a connection that streams or answers with a body larger than this (0: the
  // kernel's autotuning, up to MBs), so that the backlog or the response, not the kernel, holds
  // what a stalled client does not read, and the write timeout sees the stall.
  int stream_send_buffer_bytes = 64 << 10;
  std::chrono::milliseconds stream_keepalive{15000};  // an SSE comment this often on a stream
};

// Behaviour per connection: keep-alive as the client asks, one request at a time in order
// (nothing more is read while a request is with the handler). The handler's `respond` may be
// called from any thread, later; after the connection is gone or the server stopped it is a
// no-op. HttpHandler::handle runs on an io thread and must not block.
// Every request carries an Abandonment (HttpRequest::abandonment). It fires when the
// connection closes before the answer was completely written: the client closed or reset it
// while the handler worked (a client that half-closes after its request counts as gone; one
// that pipelined its next request is not watched), a write failed or timed out, a stream was
// dropped, or stop() came first (then on the thread calling stop()).
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
  // Graceful shutdown, first step: closes the listener (the kernel then refuses new
  // connections) and every connection that is not busy (see max_connections): idle keep-alive
  // ones and those whose request is still being read, which has not reached the handler (its
  // client sees the connection close unanswered, as if it had come a moment later). Busy ones
  // finish their current answer, then close: keep-alive is off from now on. Idempotent; like
  // stop(), not from inside HttpHandler::handle.
  void stop_accepting();
  // Waits until no connection has a request with the handler, an answer being written or a
  // stream open, or until `timeout` passed. True when idle.
  bool wait_idle(std::chrono::milliseconds timeout);
  // Closes the listener and every connection and joins the io threads; pending requests are
  // abandoned. Idempotent; returns promptly even if some respond() is never called.
  void stop();

 private:
  struct Impl;
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace onemcp::transport
