// transport/http_server.cc — the only translation unit that includes Beast (it compiles slowly).
// Callback style: every connection runs on its own strand. The acceptor is a single serial
// chain of callbacks on a strand of its own, so that stop_accepting() can close it there.
// A streamed response's chunks are queued by any thread in its BodyStream and written by the
// connection's strand.
#include "transport/http_server.h"

#include <sys/socket.h>

#include <array>
#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_suffix.hpp>
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
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <future>
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
// The registry tells the acceptor which connections are busy (a request with the handler, an
// answer being written, a stream open): the others may be closed to make room. A connection
// becomes busy only through mark(), which fails once it was taken out of the registry, so
// neither the acceptor nor stop_accepting() closes a connection whose request reached the
// handler: they take a connection out under the mutex, then post its close to its strand.
struct Core {
  Core(server::HttpHandler& h, HttpServerOptions o) : handler(h), options(std::move(o)) {}

  struct Entry {
    std::shared_ptr<Connection> conn;             // the owner
    std::string address;                          // the client's IP
    std::chrono::steady_clock::time_point since;  // when it last stopped being busy
    bool busy = false;
  };

  // Strand side: the connection starts (busy) or finished an answer. False when it must close
  // instead: it was taken out of the registry (to make room, drained, stopped), or it finished
  // an answer while the server drains.
  bool mark(Connection* c, bool busy) {
    std::lock_guard lock(mu);
    auto it = connections.find(c);
    if (it == connections.end()) return false;
    set_busy_locked(it->second, busy);
    if (!busy) it->second.since = std::chrono::steady_clock::now();
    return busy || !draining;
  }

  void set_busy_locked(Entry& e, bool busy) {
    if (e.busy == busy) return;
    e.busy = busy;
    busy ? ++busy_count : --busy_count;
    if (busy_count == 0) idle.notify_all();
  }

  // Takes a connection out of the registry; the caller closes it.
  std::shared_ptr<Connection> remove_locked(Connection* c) {
    auto it = connections.find(c);
    if (it == connections.end()) return nullptr;
    set_busy_locked(it->second, false);
    auto conn = std::move(it->second.conn);
    auto count = per_address.find(it->second.address);
    if (--count->second == 0) per_address.erase(count);
    connections.erase(it);
    return conn;
  }

  // The connection that has waited longest without being busy, of `address` if not empty.
  Connection* oldest_idle_locked(const std::string& address) {
    Connection* oldest = nullptr;
    std::chrono::steady_clock::time_point since;
    for (auto& [c, e] : connections) {
      if (e.busy || (!address.empty() && e.address != address)) continue;
      if (!oldest || e.since < since) oldest = c, since = e.since;
    }
    return oldest;
  }

  server::HttpHandler& handler;
  const HttpServerOptions options;
  const std::shared_ptr<Gate> gate = std::make_shared<Gate>();
  std::mutex mu;
  std::unordered_map<Connection*, Entry> connections;
  std::unordered_map<std::string, size_t> per_address;  // open connections per client IP
  size_t busy_count = 0;
  std::condition_variable idle;        // busy_count reached 0
  std::atomic<bool> draining = false;  // written under mu; read by write_response without it
};

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// A dual-stack listener on "::" sees IPv4 clients as ::ffff:a.b.c.d; they are IPv4 clients.
asio::ip::address unmapped(asio::ip::address a) {
  if (a.is_v6() && a.to_v6().is_v4_mapped()) {
    return asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
  }
  return a;
}

std::string endpoint_string(asio::ip::address a, uint16_t port) {
  a = unmapped(a);
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
    if (abandonment_) abandonment_->abandon();  // does nothing once the answer was written
  }

  // Runs on the strand: writes what the stream has queued, one write at a time.
  void flush_stream() {
    if (closed_ || !events_ || events_writing_ || events_last_) return;
    BodyStream::Taken t = events_->take();
    if (t.data.empty() && !t.last) return;
    events_last_ = t.last;
    if (t.data.empty()) return end_stream();
    events_writing_ = true;
    write_out(std::move(t.data), {}, &Connection::chunk_written);
  }

  // Runs on the strand: drops the connection (its stream fell too far behind).
  void abort() { finish(); }

 private:
  void read_request() {
    if (buffer_.size() > 0) return read_header();  // pipelined
    // Wait up to idle_timeout for the request's first byte; the rest then gets read_timeout,
    // so a slow sender cannot stretch one request to idle_timeout.
    stream_.expires_after(core_.options.idle_timeout);
    stream_.async_read_some(buffer_.prepare(kReadChunk),
                            [self = shared_from_this()](error_code ec, size_t n) {
                              if (ec) return self->finish();
                              self->buffer_.commit(n);
                              self->read_header();
                            });
  }

  void read_header() {
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(
        std::min<size_t>(core_.options.max_header_bytes, UINT32_MAX)));
    parser_->body_limit(core_.handler.max_body_bytes());
    // One deadline for the header, a 100 Continue and the body: the stream's timers keep it
    // across operations until the next expires_after.
    stream_.expires_after(core_.options.read_timeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = shared_from_this()](error_code ec, size_t) {
                              if (ec) return self->fail(ec);
                              self->on_header();
                            });
  }

  void on_header() {
    if (parser_->is_done()) return dispatch();
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
    finish();  // EOF, reset, read timeout (slowloris): nobody to answer
  }

  void dispatch() {
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
    if (!core_.mark(this, true)) return close();  // closed to make room while it was read
    abandonment_ = std::make_shared<server::Abandonment>();
    req.abandonment = abandonment_;

    const uint64_t seq = ++seq_;
    pending_ = seq;
    // Bytes already read are a pipelined request: the client is not gone, and nothing more is
    // read before this answer.
    if (buffer_.size() == 0) watch_for_hangup(seq);
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

  // While the handler has request `seq`, learn whether the client went away: EOF or reset
  // abandons it. Data is a pipelined request; it stays in the socket until this answer is
  // written, and the watch ends.
  void watch_for_hangup(uint64_t seq) {
    stream_.socket().async_wait(
        tcp::socket::wait_read, [self = shared_from_this(), seq](error_code ec) {
          if (ec || self->pending_ != seq || self->closed_) return;
          char c;
          const ssize_t n =
              ::recv(self->stream_.socket().native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
          if (n > 0) return;
          if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            return self->watch_for_hangup(seq);
          }
          self->finish();
        });
  }

  // The answer is starting: its writes see a client that went away from now on.
  void stop_watching() {
    error_code ec;
    stream_.socket().cancel(ec);  // only the watch is outstanding while the handler works
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
    stop_watching();
    if (core_.draining) keep_alive_ = false;  // say so to the client; answered() closes anyway
    std::string head;
    // RFC 9110: 1xx, 204 and 304 have neither a body nor a Content-Length.
    const bool has_body = r.status >= 200 && r.status != 204 && r.status != 304;
    try {
      auto res = head_of<http::empty_body>(r);
      if (has_body) res.content_length(r.body.size());
      res.keep_alive(keep_alive_);
      head = head_text(res);
    } catch (const std::exception& e) {
      log::error(std::string("cannot build http response: ") + e.what());
      return finish();
    }
    if (!has_body) r.body.clear();
    if (r.body.size() > static_cast<size_t>(core_.options.stream_send_buffer_bytes)) {
      limit_send_buffer();
    }
    write_out(std::move(head), std::move(r.body), &Connection::answered);
  }

  void answered() {
    if (abandonment_) abandonment_->delivered();
    if (!core_.mark(this, false) || !keep_alive_) return linger_close();
    read_request();
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

  static std::string head_text(const http::response<http::empty_body>& res) {
    std::ostringstream text;
    text << res.base();
    return text.str();
  }

  // The kernel's autotuned send buffer grows to MBs: a client that stops reading would show the
  // write timeout no stall (and the answer would count as delivered) until the kernel had
  // absorbed that much.
  void limit_send_buffer() {
    if (core_.options.stream_send_buffer_bytes <= 0 || send_buffer_limited_) return;
    send_buffer_limited_ = true;
    error_code ec;
    stream_.socket().set_option(
        asio::socket_base::send_buffer_size(core_.options.stream_send_buffer_bytes), ec);
  }

  // Writes `head` then `body` and runs `next` once all is written. Each write gets
  // write_timeout, so a client that reads slowly but steadily is served however large the
  // answer, and one that accepts no byte for write_timeout is dropped.
  void write_out(std::string head, std::string body, void (Connection::*next)()) {
    out_head_ = std::move(head);
    out_body_ = std::move(body);
    out_.emplace(std::array{asio::const_buffer(asio::buffer(out_head_)),
                            asio::const_buffer(asio::buffer(out_body_))});
    out_next_ = next;
    write_some();
  }

  void write_some() {
    stream_.expires_after(core_.options.write_timeout);  // only the write timer if a read waits
    stream_.async_write_some(*out_, [self = shared_from_this()](error_code ec, size_t n) {
      if (ec) return self->finish();  // reset, or the write timeout closed the socket
      self->out_->consume(n);
      if (beast::buffer_bytes(*self->out_) > 0) return self->write_some();
      self->out_.reset();
      std::string().swap(self->out_head_);
      std::string().swap(self->out_body_);
      (self.get()->*self->out_next_)();
    });
  }

  // Runs on the strand. Like write_response, but the body comes from `events` until it ends;
  // meanwhile the connection reads only to learn that the client went away.
  void begin_stream(uint64_t seq, server::HttpResponse head, std::shared_ptr<BodyStream> events) {
    if (seq != pending_ || closed_) return events->kill();
    pending_ = 0;
    stop_watching();
    keep_alive_ = false;
    events_ = std::move(events);
    limit_send_buffer();
    std::string text;
    try {
      auto res = head_of<http::empty_body>(head);
      if (version_ >= 11) res.chunked(true);
      res.keep_alive(false);
      text = head_text(res);
    } catch (const std::exception& e) {
      log::error(std::string("cannot build http response: ") + e.what());
      return finish();
    }
    events_writing_ = true;
    write_out(std::move(text), {}, &Connection::stream_began);
  }

  void stream_began() {
    events_writing_ = false;
    // The watch below waits indefinitely; each write of the stream sets its own timeout.
    stream_.expires_never();
    watch();
    keep_alive_tick();
    flush_stream();
  }

  void chunk_written() {
    events_writing_ = false;
    if (events_last_) return end_stream();
    flush_stream();
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
    if (abandonment_) abandonment_->delivered();
    core_.mark(this, false);
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
    core_.remove_locked(this);
  }

  Core& core_;
  beast::tcp_stream stream_;
  const std::string peer_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  bool keep_alive_ = true;
  unsigned version_ = 11;
  uint64_t seq_ = 0;
  uint64_t pending_ = 0;  // seq of the request with the handler, 0 if none
  // The last request's; abandoned when the connection closes before its answer was written.
  std::shared_ptr<server::Abandonment> abandonment_;
  bool closed_ = false;
  bool send_buffer_limited_ = false;
  // What write_out is writing: out_ is what remains of out_head_ and out_body_.
  std::string out_head_;
  std::string out_body_;
  std::optional<beast::buffers_suffix<std::array<asio::const_buffer, 2>>> out_;
  void (Connection::*out_next_)() = nullptr;
  // A streamed response, once begun: the connection ends with it.
  std::shared_ptr<BodyStream> events_;
  asio::steady_timer events_timer_{stream_.get_executor()};
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
    if (!acceptor.is_open()) return;  // stop_accepting() closed it
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
    const std::string address = unmapped(remote.address()).to_string();

    // Beyond a cap, the connection in its scope that has waited longest without being busy
    // makes room: a client holding many idle or half-sent requests cannot lock others out.
    std::shared_ptr<Connection> conn, evicted;
    const char* full = nullptr;
    {
      std::lock_guard lock(core.mu);
      Connection* victim = nullptr;
      auto count = core.per_address.find(address);
      if (count != core.per_address.end() &&
          count->second >= core.options.max_connections_per_address) {
        full = "max_connections_per_address";
        victim = core.oldest_idle_locked(address);
      } else if (core.connections.size() >= core.options.max_connections) {
        full = "max_connections";
        victim = core.oldest_idle_locked("");
      }
      if (victim) evicted = core.remove_locked(victim);
      if (!full || evicted) {
        conn = std::make_shared<Connection>(core, std::move(socket), peer);
        core.connections.emplace(conn.get(),
                                 Core::Entry{conn, address, std::chrono::steady_clock::now()});
        ++core.per_address[address];
      }
    }
    if (evicted) {
      log::debug(std::string(full) + " reached: closing an idle connection for " + peer);
      asio::post(evicted->executor(), [evicted] { evicted->close(); });
    }
    if (!conn) {
      // The socket is new and its send buffer empty, so this small write cannot block.
      static constexpr std::string_view k503 =
          "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
          "Content-Length: 32\r\nConnection: close\r\n\r\n{\"error\":\"too many connections\"}";
      ::send(socket.native_handle(), k503.data(), k503.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      log::warn("connection from " + peer + " refused: " + full + " reached, all busy");
      return;
    }
    conn->start();
  }

  void stop_accepting() {
    std::lock_guard stop_lock(stop_mu);
    if (stopped || core.draining) return;
    std::promise<void> closed;
    asio::post(accept_strand, [&] {
      error_code ec;
      acceptor.close(ec);
      backoff.cancel();
      closed.set_value();
    });
    closed.get_future().wait();  // from here on the kernel refuses new connections
    std::vector<std::shared_ptr<Connection>> idle;
    {
      std::lock_guard lock(core.mu);
      core.draining = true;
      for (auto& [ptr, e] : core.connections) {
        if (!e.busy) idle.push_back(e.conn);
      }
      for (auto& conn : idle) core.remove_locked(conn.get());
    }
    for (auto& conn : idle) asio::post(conn->executor(), [conn] { conn->close(); });
  }

  bool wait_idle(std::chrono::milliseconds timeout) {
    std::unique_lock lock(core.mu);
    return core.idle.wait_for(lock, timeout, [&] { return core.busy_count == 0; });
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
    // closed (or, if it was taken out of the registry and its close still queued, closes then).
    error_code ec;
    acceptor.close(ec);
    backoff.cancel();
    std::unordered_map<Connection*, Core::Entry> conns;
    {
      std::lock_guard lock(core.mu);
      conns.swap(core.connections);
      core.per_address.clear();
      core.busy_count = 0;
      core.idle.notify_all();
    }
    for (auto& [ptr, e] : conns) e.conn->close();
  }

  Core core;  // declared before ioc: queued callbacks reference it until ioc is destroyed
  asio::io_context ioc;
  asio::executor_work_guard<asio::io_context::executor_type> work{ioc.get_executor()};
  asio::strand<asio::io_context::executor_type> accept_strand = asio::make_strand(ioc);
  tcp::acceptor acceptor{accept_strand};
  asio::steady_timer backoff{accept_strand};
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
void HttpServer::stop_accepting() { impl_->stop_accepting(); }
bool HttpServer::wait_idle(std::chrono::milliseconds timeout) { return impl_->wait_idle(timeout); }
void HttpServer::stop() { impl_->stop(); }

}  // namespace onemcp::transport
