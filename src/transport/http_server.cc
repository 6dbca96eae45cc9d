// transport/http_server.cc — the only translation unit that includes Beast (it compiles slowly).
// Callback style: every connection runs on its own strand; the acceptor is a single serial
// chain of callbacks, so it needs no strand. A streamed response's chunks are queued by any
// thread in its BodyStream and written by the connection's strand.
#include "transport/http_server.h"

#include <sys/socket.h>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>
#include <unordered_map>
#include <vector>

#include "base/log.h"

namespace onemcp::transport {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {

constexpr size_t kReadChunk = 4096;
// After a response that closes the connection we keep reading (and discarding) for a moment
// before closing: closing with unread input sends a RST, which can destroy the response
// before the client reads it (e.g. a 413 sent while the client is still uploading).
constexpr std::chrono::seconds kLingerTime{2};

// Once stop() closes the gate no respond() may post to the io_context any more. respond()
// holds the mutex while it posts, so stop() cannot tear the context down underneath it.
struct Gate {
  std::mutex mu;
  bool open = true;
};

class Connection;

// The handler's side of a streamed response. Chunks wait here, framed, until the connection's
// strand takes them; `flush_posted_` keeps exactly one flush queued on the strand while there is
// something to take. Lock order: mu_, then the gate's.
class BodyStream final : public server::EventStream {
 public:
  BodyStream(std::shared_ptr<Gate> gate, std::weak_ptr<Connection> conn, bool chunked, size_t cap)
      : gate_(std::move(gate)), conn_(std::move(conn)), chunked_(chunked), cap_(cap) {}

  bool send(std::string chunk) override;
  void close() override;
  bool closed() const override {
    std::lock_guard lock(mu_);
    return ended_ || dead_;
  }

  // Strand side: what is queued; `last` once, after close(), with the end of the body appended.
  struct Taken {
    std::string data;
    bool last = false;
  };
  Taken take();
  void kill();  // the connection is gone

 private:
  bool post_locked(void (Connection::*fn)());

  const std::shared_ptr<Gate> gate_;
  const std::weak_ptr<Connection> conn_;
  const bool chunked_;
  const size_t cap_;
  mutable std::mutex mu_;
  std::string queued_;
  bool flush_posted_ = false;
  bool ended_ = false;      // close() was called
  bool end_taken_ = false;  // the strand has the end of the body
  bool dead_ = false;       // the transport closed it
};

// Shared by the acceptor and every connection. Owned by HttpServer::Impl, which outlives every
// io-thread callback: stop() joins the io threads before anything is destroyed.
struct Core {
  Core(server::HttpHandler& h, HttpServerOptions o) : handler(h), options(std::move(o)) {}
  server::HttpHandler& handler;
  const HttpServerOptions options;
  const std::shared_ptr<Gate> gate = std::make_shared<Gate>();
  std::mutex mu;
  std::unordered_map<Connection*, std::shared_ptr<Connection>> connections;  // the owners
};

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string endpoint_string(asio::ip::address a, uint16_t port) {
  // A dual-stack listener on "::" sees IPv4 clients as ::ffff:a.b.c.d; report them as IPv4.
  if (a.is_v6() && a.to_v6().is_v4_mapped()) {
    a = asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
  }
  const std::string host = a.is_v6() ? "[" + a.to_string() + "]" : a.to_string();
  return host + ":" + std::to_string(port);
}

server::HttpResponse error_response(int status, const std::string& message) {
  return {status, {{"Content-Type", "application/json"}}, "{\"error\":\"" + message + "\"}"};
}

// A header the handler gives must not be able to split the response.
bool header_safe(std::string_view name, std::string_view value) {
  return !name.empty() && name.find_first_of(":\r\n") == std::string_view::npos &&
         value.find_first_of("\r\n") == std::string_view::npos &&
         name.find('\0') == std::string_view::npos && value.find('\0') == std::string_view::npos;
}

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Core& core, tcp::socket socket, std::string peer)
      : core_(core), stream_(std::move(socket)), peer_(std::move(peer)) {}

  void start() {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->read_request(); });
  }

  auto executor() { return stream_.get_executor(); }

  // Only from the connection's strand, or from stop() once the io threads are joined.
  void close() {
    if (closed_) return;
    closed_ = true;
    error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.socket().close(ec);
    events_timer_.cancel();
    if (events_) events_->kill();
  }

  // Runs on the strand: writes what the stream has queued, one write at a time.
  void flush_stream() {
    if (closed_ || !events_ || events_writing_ || events_last_) return;
    BodyStream::Taken t = events_->take();
    if (t.data.empty() && !t.last) return;
    events_last_ = t.last;
    if (t.data.empty()) return end_stream();
    events_out_ = std::move(t.data);
    events_writing_ = true;
    stream_.expires_after(core_.options.idle_timeout);  // a client that stopped reading
    asio::async_write(stream_, asio::buffer(events_out_),
                      [self = shared_from_this()](error_code ec, size_t) {
                        self->events_writing_ = false;
                        std::string().swap(self->events_out_);
                        if (ec) return self->finish();
                        if (self->events_last_) return self->end_stream();
                        self->flush_stream();
                      });
  }

  // Runs on the strand: drops the connection (its stream fell too far behind).
  void abort() { finish(); }

 private:
  void read_request() {
    if (buffer_.size() == 0 && served_ > 0) {
      // Keep-alive: wait up to idle_timeout for the next request's first byte; its header
      // then gets header_timeout, so a slow sender cannot stretch one request to idle_timeout.
      stream_.expires_after(core_.options.idle_timeout);
      stream_.async_read_some(buffer_.prepare(kReadChunk),
                              [self = shared_from_this()](error_code ec, size_t n) {
                                if (ec) return self->finish();
                                self->buffer_.commit(n);
                                self->read_header();
                              });
      return;
    }
    read_header();
  }

  void read_header() {
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(
        std::min<size_t>(core_.options.max_header_bytes, UINT32_MAX)));
    parser_->body_limit(core_.handler.max_body_bytes());
    stream_.expires_after(core_.options.header_timeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = shared_from_this()](error_code ec, size_t) {
                              if (ec) return self->fail(ec);
                              self->on_header();
                            });
  }

  void on_header() {
    if (parser_->is_done()) return dispatch();
    stream_.expires_after(core_.options.idle_timeout);
    if (beast::iequals(parser_->get()[http::field::expect], "100-continue")) {
      // curl and others hold back a large body until they see this (or a 1 s delay).
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      asio::async_write(stream_, asio::buffer(kContinue.data(), kContinue.size()),
                        [self = shared_from_this()](error_code ec, size_t) {
                          if (ec) return self->finish();
                          self->read_body();
                        });
      return;
    }
    read_body();
  }

  void read_body() {
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](error_code ec, size_t) {
                       if (ec) return self->fail(ec);
                       self->dispatch();
                     });
  }

  // A read ended without a complete request: answer what deserves an answer, then close.
  void fail(error_code ec) {
    if (ec == http::error::body_limit) {
      return reply_and_close(error_response(413, "request body too large"));
    }
    if (ec == http::error::header_limit) {
      return reply_and_close(error_response(431, "request header too large"));
    }
    if (ec.category() == beast::http::make_error_code(http::error::bad_target).category() &&
        ec != http::error::end_of_stream && ec != http::error::partial_message) {
      return reply_and_close(error_response(400, "bad request"));
    }
    finish();  // EOF, reset, header timeout (slowloris): nobody to answer
  }

  void dispatch() {
    stream_.expires_never();  // the handler may take as long as it needs
    auto msg = parser_->release();
    parser_.reset();
    keep_alive_ = msg.keep_alive();
    version_ = msg.version();

    server::HttpRequest req;
    req.method = std::string(msg.method_string());
    req.target = std::string(msg.target());
    for (const auto& field : msg) {
      auto [it, fresh] = req.headers.try_emplace(lower(field.name_string()), field.value());
      if (!fresh) (it->second += ", ").append(field.value());
    }
    req.body = std::move(msg.body());
    req.peer = peer_;

    const uint64_t seq = ++seq_;
    pending_ = seq;
    server::Respond respond = [gate = core_.gate, weak = weak_from_this(),
                               seq](server::HttpResponse r) {
      std::lock_guard lock(gate->mu);
      if (!gate->open) return;
      if (auto self = weak.lock()) {
        asio::post(self->stream_.get_executor(), [self, seq, r = std::move(r)]() mutable {
          self->write_response(seq, std::move(r));
        });
      }
    };
    req.start_stream = [gate = core_.gate, weak = weak_from_this(), seq, chunked = version_ >= 11,
                        cap = core_.options.max_stream_backlog_bytes](server::HttpResponse head) {
      auto events = std::make_shared<BodyStream>(gate, weak, chunked, cap);
      std::lock_guard lock(gate->mu);
      auto self = weak.lock();
      if (!gate->open || !self) {
        events->kill();
        return std::shared_ptr<server::EventStream>(events);
      }
      asio::post(self->stream_.get_executor(), [self, seq, events, h = std::move(head)]() mutable {
        self->begin_stream(seq, std::move(h), events);
      });
      return std::shared_ptr<server::EventStream>(events);
    };
    try {
      core_.handler.handle(std::move(req), std::move(respond));
    } catch (const std::exception& e) {
      log::error(std::string("http handler threw: ") + e.what());
      write_response(seq, error_response(500, "internal error"));
    } catch (...) {
      log::error("http handler threw a non-standard exception");
      write_response(seq, error_response(500, "internal error"));
    }
  }

  void reply_and_close(server::HttpResponse r) {
    keep_alive_ = false;
    pending_ = ++seq_;
    write_response(seq_, std::move(r));
  }

  // Runs on the strand. A stale or repeated respond() carries an old seq and is ignored.
  void write_response(uint64_t seq, server::HttpResponse r) {
    if (seq != pending_ || closed_) return;
    pending_ = 0;
    ++served_;
    try {
      res_.emplace(build(std::move(r)));
    } catch (const std::exception& e) {
      log::error(std::string("cannot build http response: ") + e.what());
      return finish();
    }
    stream_.expires_after(core_.options.idle_timeout);  // a client that never reads
    http::async_write(stream_, *res_, [self = shared_from_this()](error_code ec, size_t) {
      self->res_.reset();
      if (ec) return self->finish();
      if (!self->keep_alive_) return self->linger_close();
      self->read_request();
    });
  }

  // Status line and the handler's headers; the body and its framing are left to the caller.
  template <class Body>
  http::response<Body> head_of(const server::HttpResponse& r) {
    http::response<Body> res;
    const bool valid = r.status >= 100 && r.status <= 599;
    if (!valid) log::error("http handler gave status " + std::to_string(r.status));
    res.result(valid ? static_cast<unsigned>(r.status) : 500u);
    res.version(version_);
    for (auto& [name, value] : r.headers) {
      if (!header_safe(name, value)) {
        log::warn("dropping a response header with a control character: " + name);
      } else if (beast::iequals(name, "connection")) {
        if (beast::iequals(value, "close")) keep_alive_ = false;
      } else if (!beast::iequals(name, "content-length") &&
                 !beast::iequals(name, "transfer-encoding")) {  // framing is ours
        res.insert(name, value);
      }
    }
    return res;
  }

  http::response<http::string_body> build(server::HttpResponse r) {
    auto res = head_of<http::string_body>(r);
    // RFC 9110: 1xx, 204 and 304 have neither a body nor a Content-Length.
    if (r.status >= 200 && r.status != 204 && r.status != 304) {
      res.body() = std::move(r.body);
      res.content_length(res.body().size());
    }
    res.keep_alive(keep_alive_);
    return res;
  }

  // Runs on the strand. Like write_response, but the body comes from `events` until it ends;
  // meanwhile the connection reads only to learn that the client went away.
  void begin_stream(uint64_t seq, server::HttpResponse head, std::shared_ptr<BodyStream> events) {
    if (seq != pending_ || closed_) return events->kill();
    pending_ = 0;
    ++served_;
    keep_alive_ = false;
    events_ = std::move(events);
    if (core_.options.stream_send_buffer_bytes > 0) {
      error_code ec;
      stream_.socket().set_option(
          asio::socket_base::send_buffer_size(core_.options.stream_send_buffer_bytes), ec);
    }
    try {
      auto res = head_of<http::empty_body>(head);
      if (version_ >= 11) res.chunked(true);
      res.keep_alive(false);
      std::ostringstream text;
      text << res.base();
      events_out_ = text.str();
    } catch (const std::exception& e) {
      log::error(std::string("cannot build http response: ") + e.what());
      return finish();
    }
    events_writing_ = true;
    stream_.expires_after(core_.options.idle_timeout);
    asio::async_write(stream_, asio::buffer(events_out_),
                      [self = shared_from_this()](error_code ec, size_t) {
                        self->events_writing_ = false;
                        std::string().swap(self->events_out_);
                        if (ec) return self->finish();
                        self->stream_.expires_never();  // the watch below waits indefinitely
                        self->watch();
                        self->keep_alive_tick();
                        self->flush_stream();
                      });
  }

  // Reads and discards until the client closes (or the stream ended and the linger is over).
  void watch() {
    buffer_.clear();
    stream_.async_read_some(buffer_.prepare(kReadChunk),
                            [self = shared_from_this()](error_code ec, size_t) {
                              if (ec) return self->finish();
                              self->watch();
                            });
  }

  // An SSE comment now and then keeps proxies from timing the stream out and shows a dead
  // client to the write timeout.
  void keep_alive_tick() {
    events_timer_.expires_after(core_.options.stream_keepalive);
    events_timer_.async_wait([self = shared_from_this()](error_code ec) {
      if (ec || self->closed_ || !self->events_) return;
      if (self->events_->send(": keep-alive\n\n")) self->keep_alive_tick();
    });
  }

  // The whole body is written: let the client read it, then close (watch() sees its EOF).
  void end_stream() {
    error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    events_timer_.expires_after(kLingerTime);
    events_timer_.async_wait([self = shared_from_this()](error_code ec) {
      if (!ec) self->finish();
    });
  }

  void linger_close() {
    error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.expires_after(kLingerTime);
    drain();
  }

  void drain() {
    buffer_.clear();
    stream_.async_read_some(buffer_.prepare(kReadChunk),
                            [self = shared_from_this()](error_code ec, size_t) {
                              if (ec) return self->finish();  // EOF or linger time over
                              self->drain();
                            });
  }

  // Closes and drops the registry's reference; the running callback still holds one.
  void finish() {
    close();
    std::lock_guard lock(core_.mu);
    core_.connections.erase(this);
  }

  Core& core_;
  beast::tcp_stream stream_;
  const std::string peer_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::response<http::string_body>> res_;
  bool keep_alive_ = true;
  unsigned version_ = 11;
  uint64_t seq_ = 0;
  uint64_t pending_ = 0;  // seq of the request with the handler, 0 if none
  uint64_t served_ = 0;
  bool closed_ = false;
  // A streamed response, once begun: the connection ends with it.
  std::shared_ptr<BodyStream> events_;
  asio::steady_timer events_timer_{stream_.get_executor()};
  std::string events_out_;  // the bytes being written
  bool events_writing_ = false;
  bool events_last_ = false;  // the end of the body is written or being written
};

bool BodyStream::post_locked(void (Connection::*fn)()) {
  std::lock_guard lock(gate_->mu);
  auto conn = gate_->open ? conn_.lock() : nullptr;
  if (!conn) return false;
  asio::post(conn->executor(), [conn, fn] { (conn.get()->*fn)(); });
  return true;
}

bool BodyStream::send(std::string chunk) {
  std::lock_guard lock(mu_);
  if (ended_ || dead_) return false;
  if (chunk.empty()) return true;  // an empty chunk would end a chunked body
  if (queued_.size() > cap_) {
    log::warn("dropping an event stream: its client is not reading");
    dead_ = true;
    std::string().swap(queued_);
    post_locked(&Connection::abort);
    return false;
  }
  if (chunked_) {
    char size[24];
    std::snprintf(size, sizeof size, "%zx\r\n", chunk.size());
    queued_ += size;
    queued_ += chunk;
    queued_ += "\r\n";
  } else {
    queued_ += chunk;
  }
  if (!flush_posted_) flush_posted_ = post_locked(&Connection::flush_stream);
  if (!flush_posted_) dead_ = true;  // the connection is gone
  return !dead_;
}

void BodyStream::close() {
  std::lock_guard lock(mu_);
  if (ended_ || dead_) return;
  ended_ = true;
  if (!flush_posted_) flush_posted_ = post_locked(&Connection::flush_stream);
  if (!flush_posted_) dead_ = true;
}

BodyStream::Taken BodyStream::take() {
  std::lock_guard lock(mu_);
  Taken t{std::move(queued_)};
  queued_.clear();
  if (ended_ && !end_taken_) {
    end_taken_ = true;
    t.last = true;
    if (chunked_) t.data += "0\r\n\r\n";
  }
  if (t.data.empty() && !t.last) flush_posted_ = false;
  return t;
}

void BodyStream::kill() {
  std::lock_guard lock(mu_);
  dead_ = true;
  std::string().swap(queued_);
}

// getaddrinfo() only for names; a literal is parsed so it is never rewritten.
Result<asio::ip::address> resolve(const std::string& bind) {
  error_code ec;
  auto addr = asio::ip::make_address(bind, ec);
  if (!ec) return addr;
  asio::io_context ioc;
  tcp::resolver resolver(ioc);
  auto results = resolver.resolve(bind, "", ec);
  if (ec || results.empty()) {
    return make_error("cannot resolve bind address " + bind + ": " +
                      (ec ? ec.message() : "no address"));
  }
  addr = results.begin()->endpoint().address();
  log::info("bind address " + bind + " resolved to " + addr.to_string());
  return addr;
}

}  // namespace

struct HttpServer::Impl {
  Impl(server::HttpHandler& handler, HttpServerOptions options)
      : core(handler, std::move(options)), ioc(std::max(1, core.options.io_threads)) {}

  Status listen() {
    auto addr = resolve(core.options.bind);
    if (!addr) return addr.error();
    const tcp::endpoint ep(*addr, core.options.port);
    const std::string where = endpoint_string(*addr, core.options.port);
    auto fail = [&](int err) {
      return make_error("cannot listen on " + where + ": " + std::strerror(err));
    };
    // Our own socket() so the listener is close-on-exec from birth; workers are forked.
    const int fd = ::socket(ep.protocol().family(), SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return fail(errno);
    error_code ec;
    acceptor.assign(ep.protocol(), fd, ec);
    if (ec) {
      ::close(fd);
      return fail(ec.value());
    }
    acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor.bind(ep, ec);
    if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return fail(ec.value());
    port = acceptor.local_endpoint(ec).port();
    log::debug("listening on http://" + endpoint_string(*addr, port));
    return {};
  }

  void run() {
    accept_next();
    const int n = std::max(1, core.options.io_threads);
    for (int i = 0; i < n; ++i) {
      threads.emplace_back([this] {
        for (;;) {
          try {
            ioc.run();
            return;  // stopped
          } catch (const std::exception& e) {  // a bug, but one connection must not end all
            log::error(std::string("http io thread: ") + e.what());
          }
        }
      });
    }
  }

  void accept_next() {
    acceptor.async_wait(tcp::acceptor::wait_read, [this](error_code ec) {
      if (ec == asio::error::operation_aborted) return;
      if (ec) return retry_later("accept wait: " + ec.message());
      accept_ready();
    });
  }

  void accept_ready() {
    for (;;) {
      sockaddr_storage sa{};
      socklen_t len = sizeof sa;
      // accept4 so the connection is close-on-exec from birth (Asio's accept is not).
      const int fd = ::accept4(acceptor.native_handle(), reinterpret_cast<sockaddr*>(&sa), &len,
                               SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (fd >= 0) {
        adopt(fd, sa.ss_family == AF_INET6 ? tcp::v6() : tcp::v4());
        continue;
      }
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return accept_next();
      // EMFILE and the like: the connection stays queued; retrying at once would spin.
      return retry_later(std::string("accept: ") + std::strerror(errno));
    }
  }

  void retry_later(const std::string& why) {
    log::warn(why);
    backoff.expires_after(std::chrono::milliseconds(100));
    backoff.async_wait([this](error_code ec) {
      if (!ec) accept_next();
    });
  }

  void adopt(int fd, tcp protocol) {
    tcp::socket socket(asio::make_strand(ioc));
    error_code ec;
    socket.assign(protocol, fd, ec);
    if (ec) {
      ::close(fd);
      return log::warn("cannot adopt connection: " + ec.message());
    }
    socket.set_option(tcp::no_delay(true), ec);  // Nagle + delayed ACK adds ~40 ms per reply
    auto remote = socket.remote_endpoint(ec);
    if (ec) return;  // already gone; the socket closes here
    const std::string peer = endpoint_string(remote.address(), remote.port());

    std::shared_ptr<Connection> conn;
    {
      std::lock_guard lock(core.mu);
      if (core.connections.size() < core.options.max_connections) {
        conn = std::make_shared<Connection>(core, std::move(socket), peer);
        core.connections.emplace(conn.get(), conn);
      }
    }
    if (!conn) {
      // The socket is new and its send buffer empty, so this small write cannot block.
      static constexpr std::string_view k503 =
          "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
          "Content-Length: 32\r\nConnection: close\r\n\r\n{\"error\":\"too many connections\"}";
      ::send(socket.native_handle(), k503.data(), k503.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      log::warn("connection from " + peer + " refused: max_connections reached");
      return;
    }
    conn->start();
  }

  void stop() {
    std::lock_guard stop_lock(stop_mu);
    if (stopped) return;
    stopped = true;
    {
      std::lock_guard lock(core.gate->mu);
      core.gate->open = false;
    }
    work.reset();
    ioc.stop();
    for (auto& t : threads) t.join();
    threads.clear();
    // The io threads are gone, so nothing else touches the sockets now. Callbacks still queued
    // in ioc keep their Connection alive until ioc is destroyed; that is fine, its socket is
    // closed.
    error_code ec;
    acceptor.close(ec);
    backoff.cancel();
    std::unordered_map<Connection*, std::shared_ptr<Connection>> conns;
    {
      std::lock_guard lock(core.mu);
      conns.swap(core.connections);
    }
    for (auto& [ptr, conn] : conns) conn->close();
  }

  Core core;  // declared before ioc: queued callbacks reference it until ioc is destroyed
  asio::io_context ioc;
  asio::executor_work_guard<asio::io_context::executor_type> work{ioc.get_executor()};
  tcp::acceptor acceptor{ioc};
  asio::steady_timer backoff{ioc};
  std::vector<std::thread> threads;
  std::mutex stop_mu;
  bool stopped = false;
  uint16_t port = 0;
};

Result<std::unique_ptr<HttpServer>> HttpServer::start(HttpServerOptions options,
                                                      server::HttpHandler& handler) {
  auto impl = std::make_unique<Impl>(handler, std::move(options));
  if (auto st = impl->listen(); !st) return st.error();
  impl->run();
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpServer::~HttpServer() { stop(); }
uint16_t HttpServer::port() const { return impl_->port; }
void HttpServer::stop() { impl_->stop(); }

}  // namespace onemcp::transport
