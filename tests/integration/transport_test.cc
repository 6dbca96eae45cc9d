// Integration tests of the transports over real loopback sockets and pipes, with fake handlers.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "transport/http_server.h"
#include "transport/stdio.h"

namespace onemcp::transport {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// ---------- HTTP ----------

// Behaviour chosen by path: /delay answers from another thread 50 ms later, /never keeps the
// respond() without calling it, /throw throws, /stream starts a stream for the test to feed
// (/stream-and-respond also calls respond(), which must be ignored), /big/N answers N bytes,
// anything else echoes at once. Every abandoned request is counted.
class FakeHttpHandler : public server::HttpHandler {
 public:
  ~FakeHttpHandler() override {
    for (auto& t : threads_) t.join();
  }
  size_t max_body_bytes() const override { return 1024; }
  void handle(server::HttpRequest req, server::Respond respond) override {
    ++handled;
    if (req.abandonment) req.abandonment->on_abandon([this] { ++abandoned; });
    server::HttpResponse r;
    r.headers = {{"Content-Type", "text/plain"}, {"X-Peer", req.peer}};
    auto foo = req.headers.find("x-foo");
    if (foo != req.headers.end()) r.headers.emplace_back("X-Foo", foo->second);
    r.body = req.method + " " + req.target + "\n" + req.body;
    if (req.target == "/delay") {
      std::lock_guard lock(mu_);
      threads_.emplace_back([respond, r] {
        std::this_thread::sleep_for(50ms);
        respond(r);
      });
    } else if (req.target == "/never") {
      std::lock_guard lock(mu_);
      kept_.push_back(respond);
    } else if (req.target == "/throw") {
      throw std::runtime_error("boom");
    } else if (req.target.starts_with("/big/")) {
      r.body.assign(std::stoul(req.target.substr(5)), 'b');
      respond(std::move(r));
    } else if (req.target.starts_with("/stream")) {
      auto s = req.start_stream({200, {{"Content-Type", "text/event-stream"}}, "not sent"});
      if (req.target == "/stream-and-respond") respond(r);
      std::lock_guard lock(mu_);
      streams_.push_back(std::move(s));
    } else {
      respond(std::move(r));
    }
  }
  std::atomic<int> handled{0};
  std::atomic<int> abandoned{0};

  // Answers the i-th /never request.
  void respond_kept(size_t i, server::HttpResponse r) {
    server::Respond respond;
    {
      std::lock_guard lock(mu_);
      respond = kept_.at(i);
    }
    respond(std::move(r));
  }

  // The next stream a request started (waits up to 5 s).
  std::shared_ptr<server::EventStream> next_stream() {
    for (int i = 0; i < 500; ++i) {
      {
        std::lock_guard lock(mu_);
        if (taken_ < streams_.size()) return streams_[taken_++];
      }
      std::this_thread::sleep_for(10ms);
    }
    return nullptr;
  }

 private:
  std::mutex mu_;
  std::vector<std::thread> threads_;
  std::vector<server::Respond> kept_;
  std::vector<std::shared_ptr<server::EventStream>> streams_;
  size_t taken_ = 0;
};

struct Reply {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case keys
  std::string body;
};

// A deliberately tiny HTTP/1.1 client on POSIX sockets: enough for Content-Length replies.
class Client {
 public:
  // `rcvbuf`: a small receive buffer (0: the default), for a client that stops reading.
  // `from`: the IPv4 loopback address to connect from (any of 127.0.0.0/8), instead of the
  // kernel's choice.
  explicit Client(uint16_t port, bool v6 = false, int rcvbuf = 0, const char* from = nullptr) {
    fd_ = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (rcvbuf) ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    if (from) {
      sockaddr_in a{};
      a.sin_family = AF_INET;
      ::inet_pton(AF_INET, from, &a.sin_addr);
      if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return;
    }
    timeval tv{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (v6) {
      sockaddr_in6 a{};
      a.sin6_family = AF_INET6;
      a.sin6_port = htons(port);
      a.sin6_addr = in6addr_loopback;
      ok_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    } else {
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(port);
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      ok_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    }
  }
  ~Client() { close(); }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  bool connected() const { return ok_; }
  int fd() const { return fd_; }

  bool send(std::string_view s) {
    while (!s.empty()) {
      const ssize_t n = ::send(fd_, s.data(), s.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      s.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  std::optional<Reply> read_reply() {
    size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
      if (!fill()) return std::nullopt;
    }
    Reply r;
    std::string head = buf_.substr(0, end + 2);
    buf_.erase(0, end + 4);
    r.status = std::stoi(head.substr(9, 3));
    for (size_t pos = head.find("\r\n") + 2; pos < head.size();) {
      const size_t eol = head.find("\r\n", pos);
      const std::string line = head.substr(pos, eol - pos);
      const size_t colon = line.find(':');
      std::string key = line.substr(0, colon);
      std::transform(key.begin(), key.end(), key.begin(), ::tolower);
      r.headers[key] = line.substr(colon + 2);
      pos = eol + 2;
    }
    const size_t len = r.headers.count("content-length") ? std::stoul(r.headers["content-length"]) : 0;
    while (buf_.size() < len) {
      if (!fill()) return std::nullopt;
    }
    r.body = buf_.substr(0, len);
    buf_.erase(0, len);
    return r;
  }

  // Everything up to the server's close (what read_reply() left included); nullopt on a timeout.
  std::optional<std::string> read_to_end() {
    while (fill()) {
    }
    if (errno == EAGAIN) return std::nullopt;
    return std::exchange(buf_, {});
  }

  // True when the server closed the connection (EOF or reset) within the receive timeout.
  bool closed_by_peer() {
    char c;
    const ssize_t n = ::recv(fd_, &c, 1, 0);
    return n == 0 || (n < 0 && errno == ECONNRESET);
  }

  // True when nothing arrives, not even the connection's end, for `d`.
  bool quiet_for(std::chrono::milliseconds d) {
    pollfd p{fd_, POLLIN | POLLRDHUP, 0};
    return ::poll(&p, 1, static_cast<int>(d.count())) == 0;
  }

 private:
  bool fill() {
    char tmp[16384];
    const ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
    if (n == 0) errno = 0;
    if (n <= 0) return false;
    buf_.append(tmp, static_cast<size_t>(n));
    return true;
  }
  int fd_ = -1;
  bool ok_ = false;
  std::string buf_;
};

std::string get(const std::string& target, const std::string& extra = "") {
  return "GET " + target + " HTTP/1.1\r\nHost: t\r\n" + extra + "\r\n";
}

// The payload of a chunked body, or "<bad chunking>".
std::string dechunk(std::string_view raw) {
  std::string out;
  for (;;) {
    const size_t eol = raw.find("\r\n");
    if (eol == std::string_view::npos) return "<bad chunking>";
    const size_t n = std::stoul(std::string(raw.substr(0, eol)), nullptr, 16);
    raw.remove_prefix(eol + 2);
    if (raw.size() < n + 2 || raw.substr(n, 2) != "\r\n") return "<bad chunking>";
    if (n == 0) return raw.size() == 2 ? out : "<bad chunking>";
    out.append(raw.substr(0, n));
    raw.remove_prefix(n + 2);
  }
}

// Polls `done` for up to 5 s.
bool eventually(const std::function<bool()>& done) {
  for (int i = 0; i < 500; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return done();
}

class TransportHttp : public ::testing::Test {
 protected:
  void start(HttpServerOptions o = {}) {
    o.bind = "127.0.0.1";
    o.port = 0;
    auto s = HttpServer::start(o, handler_);
    ASSERT_TRUE(s.ok()) << s.error().message;
    server_ = std::move(s.value());
  }
  FakeHttpHandler handler_;  // declared first: outlives the server
  std::unique_ptr<HttpServer> server_;
};

TEST_F(TransportHttp, GetAndPostRoundTrip) {
  start();
  Client c(server_->port());
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.send(get("/hello?x=1", "X-Foo: a\r\nx-foo: b\r\n")));
  auto r = c.read_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "GET /hello?x=1\n");
  EXPECT_EQ(r->headers["content-type"], "text/plain");
  EXPECT_EQ(r->headers["x-foo"], "a, b");  // repeated headers joined
  EXPECT_EQ(r->headers["x-peer"].rfind("127.0.0.1:", 0), 0u);

  ASSERT_TRUE(c.send("POST /rpc HTTP/1.1\r\nHost: t\r\nContent-Length: 7\r\n\r\n{\"a\":1}"));
  r = c.read_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "POST /rpc\n{\"a\":1}");

  // Chunked upload is decoded before the handler sees it.
  ASSERT_TRUE(c.send("POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"));
  r = c.read_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "POST /c\nabcde");
}

TEST_F(TransportHttp, ExpectContinueIsAnswered) {
  start();
  Client c(server_->port());
  ASSERT_TRUE(c.send("POST /e HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"));
  auto r = c.read_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 100);
  ASSERT_TRUE(c.send("abc"));
  r = c.read_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "POST /e\nabc");
}

TEST_F(TransportHttp, KeepAliveHundredSequentialRequests) {
  start();
  Client c(server_->port());
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(c.send(get("/k" + std::to_string(i))));
    auto r = c.read_reply();
    ASSERT_TRUE(r) << i;
    EXPECT_EQ(r->body, "GET /k" + std::to_string(i) + "\n");
    EXPECT_EQ(r->headers.count("connection"), 0u);  // HTTP/1.1 keep-alive is implicit
  }
  EXPECT_EQ(handler_.handled, 100);
}

TEST_F(TransportHttp, EverySocketIsCloseOnExec) {  // workers are forked: no socket may leak
  start();
  Client c(server_->port());
  ASSERT_TRUE(c.send(get("/x")));
  ASSERT_TRUE(c.read_reply());
  int sockets = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    const auto target = std::filesystem::read_symlink(e.path(), ec).string();
    if (ec || target.rfind("socket:", 0) != 0) continue;
    const int fd = std::stoi(e.path().filename().string());
    EXPECT_TRUE(::fcntl(fd, F_GETFD) & FD_CLOEXEC) << "fd " << fd;
    ++sockets;
  }
  EXPECT_GE(sockets, 3);  // listener, accepted connection, our client
}

TEST_F(TransportHttp, PipelinedRequestsAnsweredInOrder) {
  start();
  Client c(server_->port());
  ASSERT_TRUE(c.send(get("/delay") + get("/second") + get("/delay")));
  for (const char* want : {"GET /delay\n", "GET /second\n", "GET /delay\n"}) {
    auto r = c.read_reply();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->body, want);
  }
}

TEST_F(TransportHttp, RespondFromAnotherThreadLater) {
  start();
  Client c(server_->port());
  const auto t0 = Clock::now();
  ASSERT_TRUE(c.send(get("/delay")));
  auto r = c.read_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "GET /delay\n");
  EXPECT_GE(Clock::now() - t0, 45ms);
  ASSERT_TRUE(c.send(get("/after")));  // the connection is still usable
  r = c.read_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "GET /after\n");
}

TEST_F(TransportHttp, ConcurrentClients) {
  start();
  std::atomic<int> good{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      Client c(server_->port());
      for (int i = 0; i < 50; ++i) {
        const std::string target = "/t" + std::to_string(t) + "/" + std::to_string(i);
        if (!c.send(get(target))) return;
        auto r = c.read_reply();
        if (r && r->status == 200 && r->body == "GET " + target + "\n") ++good;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(good, 400);
}

TEST_F(TransportHttp, BodyOverLimitIs413) {
  start();
  Client c(server_->port());
  ASSERT_TRUE(c.send("POST /big HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n" +
                     std::string(5000, 'x')));
  auto r = c.read_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_EQ(r->body, "{\"error\":\"request body too large\"}");
  EXPECT_EQ(r->headers["content-type"], "application/json");
  EXPECT_TRUE(c.closed_by_peer());

  // Without a Content-Length the limit is enforced while the chunks arrive.
  Client d(server_->port());
  ASSERT_TRUE(d.send("POST /big HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "800\r\n" + std::string(0x800, 'y') + "\r\n0\r\n\r\n"));
  r = d.read_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_EQ(handler_.handled, 0);
}

TEST_F(TransportHttp, MalformedRequestIs400AndClosed) {
  start();
  Client c(server_->port());
  ASSERT_TRUE(c.send("THIS IS NOT HTTP\r\n\r\n"));
  auto r = c.read_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(r->headers["connection"], "close");
  EXPECT_TRUE(c.closed_by_peer());
  EXPECT_EQ(handler_.handled, 0);
}

TEST_F(TransportHttp, HeaderOverLimitIs431) {
  HttpServerOptions o;
  o.max_header_bytes = 1024;
  start(o);
  Client c(server_->port());
  ASSERT_TRUE(c.send(get("/", "X-Big: " + std::string(4000, 'h') + "\r\n")));
  auto r = c.read_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 431);
  EXPECT_TRUE(c.closed_by_peer());
}

TEST_F(TransportHttp, SlowHeaderIsClosed) {
  HttpServerOptions o;
  o.read_timeout = 200ms;
  start(o);
  Client c(server_->port());
  ASSERT_TRUE(c.send("GET / HTTP/1.1\r\nHost: t\r\n"));  // never finishes the header
  const auto t0 = Clock::now();
  EXPECT_TRUE(c.closed_by_peer());
  EXPECT_LT(Clock::now() - t0, 3s);
}

TEST_F(TransportHttp, SlowBodyIsClosed) {
  HttpServerOptions o;
  o.read_timeout = 300ms;
  start(o);
  Client c(server_->port());
  // The header is complete at once; the body never comes.
  ASSERT_TRUE(c.send("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nabc"));
  const auto t0 = Clock::now();
  EXPECT_TRUE(c.closed_by_peer());
  EXPECT_LT(Clock::now() - t0, 3s);
  EXPECT_EQ(handler_.handled, 0);
}

TEST_F(TransportHttp, ReadTimeoutCountsFromTheRequestsFirstByte) {
  HttpServerOptions o;
  o.read_timeout = 200ms;
  start(o);
  Client c(server_->port());
  std::this_thread::sleep_for(400ms);  // idle before the first request: idle_timeout applies
  ASSERT_TRUE(c.send(get("/first")));
  ASSERT_TRUE(c.read_reply());
  std::this_thread::sleep_for(400ms);  // keep-alive idle
  ASSERT_TRUE(c.send(get("/second")));
  auto r = c.read_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "GET /second\n");
}

TEST_F(TransportHttp, ResponseToAClientThatNeverReadsIsDropped) {
  HttpServerOptions o;
  o.write_timeout = 300ms;
  start(o);
  Client c(server_->port(), false, /*rcvbuf=*/4096);
  const size_t size = 8u << 20;
  const auto t0 = Clock::now();
  ASSERT_TRUE(c.send(get("/big/" + std::to_string(size))));
  EXPECT_TRUE(eventually([&] { return handler_.abandoned == 1; }));  // the server gave up
  EXPECT_GT(Clock::now() - t0, 250ms);
  // What the socket buffers held, then the end: far from the whole answer.
  auto got = c.read_to_end();
  ASSERT_TRUE(got);
  EXPECT_LT(got->size(), 2u << 20);
}

TEST_F(TransportHttp, SlowSteadyReaderGetsALargeResponse) {
  HttpServerOptions o;
  o.write_timeout = 1s;
  start(o);
  Client c(server_->port(), false, /*rcvbuf=*/32768);
  const size_t size = 4u << 20;
  ASSERT_TRUE(c.send(get("/big/" + std::to_string(size))));
  // At most 32 KiB per 25 ms: the answer takes some 3 s, several write timeouts.
  std::string got;
  size_t want = SIZE_MAX;  // head and body, once the head is in
  char buf[32768];
  const auto t0 = Clock::now();
  while (got.size() < want) {
    ASSERT_LT(Clock::now() - t0, 60s);
    const ssize_t n = ::recv(c.fd(), buf, sizeof buf, 0);
    ASSERT_GT(n, 0) << "closed after " << got.size() << " bytes";
    got.append(buf, static_cast<size_t>(n));
    if (const size_t end = got.find("\r\n\r\n"); want == SIZE_MAX && end != std::string::npos) {
      want = end + 4 + size;
    }
    std::this_thread::sleep_for(25ms);
  }
  EXPECT_EQ(got.size(), want);
  EXPECT_GT(Clock::now() - t0, o.write_timeout);
}

TEST_F(TransportHttp, Http10AndConnectionCloseAreHonoured) {
  start();
  Client c(server_->port());
  ASSERT_TRUE(c.send("GET /old HTTP/1.0\r\n\r\n"));
  auto r = c.read_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "GET /old\n");
  EXPECT_TRUE(c.closed_by_peer());

  Client d(server_->port());
  ASSERT_TRUE(d.send("GET /ka HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
  r = d.read_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->headers["connection"], "keep-alive");
  ASSERT_TRUE(d.send(get("/bye", "Connection: close\r\n")));
  r = d.read_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->headers["connection"], "close");
  EXPECT_TRUE(d.closed_by_peer());
}

TEST_F(TransportHttp, HandlerExceptionIs500) {
  start();
  Client c(server_->port());
  ASSERT_TRUE(c.send(get("/throw")));
  auto r = c.read_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 500);
}

TEST_F(TransportHttp, ClientGoneBeforeDelayedRespond) {
  start();
  {
    Client c(server_->port());
    ASSERT_TRUE(c.send(get("/delay")));
    while (handler_.handled == 0) std::this_thread::sleep_for(1ms);
  }  // closed while the answer is pending
  std::this_thread::sleep_for(150ms);  // the late respond() runs against a dead peer
  Client d(server_->port());
  ASSERT_TRUE(d.send(get("/still")));
  auto r = d.read_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "GET /still\n");
}

TEST_F(TransportHttp, ClientLeavingWhileTheHandlerWorksAbandonsTheRequest) {
  start();
  Client c(server_->port());
  ASSERT_TRUE(c.send(get("/never")));
  ASSERT_TRUE(eventually([&] { return handler_.handled == 1; }));
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(handler_.abandoned, 0);
  const auto t0 = Clock::now();
  c.close();
  EXPECT_TRUE(eventually([&] { return handler_.abandoned == 1; }));
  EXPECT_LT(Clock::now() - t0, 1s);  // about at once; generous for a loaded machine
}

TEST_F(TransportHttp, AnsweredRequestsAreNeverAbandoned) {
  start();
  {
    Client c(server_->port());
    ASSERT_TRUE(c.send(get("/now") + get("/delay") + get("/pipelined")));
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(c.read_reply());
    ASSERT_TRUE(c.send(get("/delay")));
    ASSERT_TRUE(c.read_reply());
  }  // closed once answered
  {
    Client c(server_->port());
    ASSERT_TRUE(c.send(get("/stream")));
    auto s = handler_.next_stream();
    ASSERT_TRUE(s);
    ASSERT_TRUE(s->send("data: 1\n\n"));
    s->close();
    ASSERT_TRUE(c.read_reply());
    ASSERT_TRUE(c.read_to_end());
  }
  {
    Client c(server_->port(), false, /*rcvbuf=*/4096);
    ASSERT_TRUE(c.send(get("/big/3000000")));  // larger than the send buffers: written in pieces
    auto r = c.read_reply();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->body.size(), 3000000u);
  }
  EXPECT_EQ(handler_.handled, 6);
  std::this_thread::sleep_for(200ms);
  server_->stop();
  EXPECT_EQ(handler_.abandoned, 0);
}

TEST_F(TransportHttp, StopWithUnansweredRequestIsPrompt) {
  start();
  Client c(server_->port());
  ASSERT_TRUE(c.send(get("/never")));
  while (handler_.handled == 0) std::this_thread::sleep_for(1ms);
  const auto t0 = Clock::now();
  server_->stop();
  EXPECT_LT(Clock::now() - t0, 1s);
  EXPECT_EQ(handler_.abandoned, 1);
  EXPECT_TRUE(c.closed_by_peer());
  server_->stop();  // idempotent
}

TEST_F(TransportHttp, ConnectionCapAnswers503WhenAllAreBusy) {
  HttpServerOptions o;
  o.max_connections = 2;
  start(o);
  Client a(server_->port()), b(server_->port());
  for (Client* c : {&a, &b}) ASSERT_TRUE(c->send(get("/never")));
  ASSERT_TRUE(eventually([&] { return handler_.handled == 2; }));
  Client c(server_->port());
  auto r = c.read_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_TRUE(c.closed_by_peer());
  EXPECT_TRUE(a.quiet_for(100ms));
  EXPECT_TRUE(b.quiet_for(100ms));
}

// A header that promises a body which never comes: the connection stays "being read".
constexpr std::string_view kStalled = "POST /s HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n";

TEST_F(TransportHttp, StalledRequestsDoNotLockOutNewClients) {
  HttpServerOptions o;
  o.max_connections = 8;
  o.max_connections_per_address = 6;
  start(o);
  std::vector<std::unique_ptr<Client>> stalled;  // from two addresses, up to the global cap
  for (int i = 0; i < 8; ++i) {
    stalled.push_back(
        std::make_unique<Client>(server_->port(), false, 0, i % 2 ? "127.0.0.1" : "127.0.0.2"));
    ASSERT_TRUE(stalled.back()->connected());
    ASSERT_TRUE(stalled.back()->send(kStalled));
  }
  Client c(server_->port());
  const auto t0 = Clock::now();
  ASSERT_TRUE(c.send(get("/x")));
  auto r = c.read_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_LT(Clock::now() - t0, 2s);
  // The one that waited longest made room, though it came from another address.
  EXPECT_TRUE(stalled[0]->closed_by_peer());
  EXPECT_TRUE(stalled[1]->quiet_for(100ms));
  EXPECT_EQ(handler_.handled, 1);
}

TEST_F(TransportHttp, PerAddressCapClosesOnlyThatAddresssIdleConnections) {
  HttpServerOptions o;
  o.max_connections = 100;
  o.max_connections_per_address = 2;
  start(o);
  Client a(server_->port()), b(server_->port());  // 127.0.0.1, both busy
  for (Client* c : {&a, &b}) ASSERT_TRUE(c->send(get("/never")));
  ASSERT_TRUE(eventually([&] { return handler_.handled == 2; }));
  std::vector<std::unique_ptr<Client>> stalled;  // 127.0.0.2, twice its cap
  for (int i = 0; i < 4; ++i) {
    stalled.push_back(std::make_unique<Client>(server_->port(), false, 0, "127.0.0.2"));
    ASSERT_TRUE(stalled.back()->connected());
    ASSERT_TRUE(stalled.back()->send(kStalled));
  }
  EXPECT_TRUE(stalled[0]->closed_by_peer());
  EXPECT_TRUE(stalled[1]->closed_by_peer());
  EXPECT_TRUE(stalled[2]->quiet_for(100ms));
  EXPECT_TRUE(stalled[3]->quiet_for(100ms));
  EXPECT_TRUE(a.quiet_for(100ms));
  EXPECT_TRUE(b.quiet_for(100ms));
  Client c(server_->port());  // 127.0.0.1 has only busy connections
  auto r = c.read_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(handler_.abandoned, 0);
}

TEST_F(TransportHttp, StopAcceptingFinishesAnswersAndClosesTheRest) {
  start();
  Client busy(server_->port());
  ASSERT_TRUE(busy.send(get("/never")));
  ASSERT_TRUE(eventually([&] { return handler_.handled == 1; }));
  Client idle(server_->port());
  ASSERT_TRUE(idle.send(get("/x")));
  ASSERT_TRUE(idle.read_reply());  // now waiting for its next request
  Client partial(server_->port());
  ASSERT_TRUE(partial.send("GET /p HTTP/1.1\r\n"));

  server_->stop_accepting();
  EXPECT_FALSE(Client(server_->port()).connected());  // refused by the kernel
  EXPECT_TRUE(idle.closed_by_peer());
  EXPECT_TRUE(partial.closed_by_peer());
  EXPECT_TRUE(busy.quiet_for(100ms));

  const std::string body(1u << 20, 'z');
  handler_.respond_kept(0, {200, {}, body});
  auto r = busy.read_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, body);
  EXPECT_EQ(r->headers["connection"], "close");
  EXPECT_TRUE(busy.closed_by_peer());
  EXPECT_TRUE(server_->wait_idle(5s));
  EXPECT_EQ(handler_.abandoned, 0);
  server_->stop_accepting();  // idempotent
}

TEST_F(TransportHttp, WaitIdleReturnsOnceTheLastAnswerIsWritten) {
  start();
  EXPECT_TRUE(server_->wait_idle(0ms));
  Client c(server_->port());
  ASSERT_TRUE(c.send(get("/never")));
  ASSERT_TRUE(eventually([&] { return handler_.handled == 1; }));
  auto t0 = Clock::now();
  EXPECT_FALSE(server_->wait_idle(300ms));  // the handler holds the request
  EXPECT_GE(Clock::now() - t0, 250ms);
  server_->stop_accepting();
  std::thread later([&] {
    std::this_thread::sleep_for(100ms);
    handler_.respond_kept(0, {200, {}, "done"});
  });
  t0 = Clock::now();
  EXPECT_TRUE(server_->wait_idle(10s));
  EXPECT_LT(Clock::now() - t0, 3s);
  later.join();
  auto r = c.read_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "done");
}

TEST_F(TransportHttp, WaitIdleWaitsForAnOpenStream) {
  start();
  Client c(server_->port());
  ASSERT_TRUE(c.send(get("/stream")));
  auto s = handler_.next_stream();
  ASSERT_TRUE(s);
  server_->stop_accepting();
  EXPECT_FALSE(server_->wait_idle(200ms));
  ASSERT_TRUE(s->send("data: last\n\n"));
  s->close();
  EXPECT_TRUE(server_->wait_idle(5s));
  ASSERT_TRUE(c.read_reply());
  EXPECT_EQ(dechunk(c.read_to_end().value_or("")), "data: last\n\n");
}

TEST_F(TransportHttp, StreamIsChunkedInOrderFromAnyThreadThenCloses) {
  start();
  Client c(server_->port());
  ASSERT_TRUE(c.send(get("/stream-and-respond")));
  auto s = handler_.next_stream();
  ASSERT_TRUE(s);
  std::thread other([s] {
    for (int i = 0; i < 100; ++i) EXPECT_TRUE(s->send("data: " + std::to_string(i) + "\n\n"));
  });
  other.join();
  EXPECT_TRUE(s->send(""));  // nothing to frame; not the end of the body
  s->close();
  EXPECT_TRUE(s->closed());
  EXPECT_FALSE(s->send("late"));
  auto head = c.read_reply();
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->headers["content-type"], "text/event-stream");
  EXPECT_EQ(head->headers["transfer-encoding"], "chunked");
  EXPECT_EQ(head->headers["connection"], "close");
  auto rest = c.read_to_end();
  ASSERT_TRUE(rest);
  std::string want;
  for (int i = 0; i < 100; ++i) want += "data: " + std::to_string(i) + "\n\n";
  EXPECT_EQ(dechunk(*rest), want);
}

TEST_F(TransportHttp, Http10StreamEndsWithTheConnection) {
  start();
  Client c(server_->port());
  ASSERT_TRUE(c.send("GET /stream HTTP/1.0\r\n\r\n"));
  auto s = handler_.next_stream();
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->send("data: 1\n\n"));
  s->close();
  auto head = c.read_reply();
  ASSERT_TRUE(head);
  EXPECT_EQ(head->headers.count("transfer-encoding"), 0u);
  EXPECT_EQ(c.read_to_end(), "data: 1\n\n");
}

TEST_F(TransportHttp, StreamKeepAliveComments) {
  HttpServerOptions o;
  o.stream_keepalive = 50ms;
  start(o);
  Client c(server_->port());
  ASSERT_TRUE(c.send(get("/stream")));
  auto s = handler_.next_stream();
  ASSERT_TRUE(s);
  std::this_thread::sleep_for(300ms);
  s->close();
  ASSERT_TRUE(c.read_reply());
  auto body = dechunk(c.read_to_end().value_or(""));
  EXPECT_NE(body.find(": keep-alive\n\n: keep-alive\n\n"), std::string::npos) << body;
}

TEST_F(TransportHttp, StreamClosesWhenTheClientLeaves) {
  start();
  Client c(server_->port());
  ASSERT_TRUE(c.send(get("/stream")));
  auto s = handler_.next_stream();
  ASSERT_TRUE(s);
  ASSERT_TRUE(c.read_reply());  // the head is out
  EXPECT_FALSE(s->closed());
  c.close();
  EXPECT_TRUE(eventually([&] { return s->closed(); }));
  EXPECT_FALSE(s->send("data: x\n\n"));
  EXPECT_TRUE(eventually([&] { return handler_.abandoned == 1; }));
}

TEST_F(TransportHttp, StreamOfAClientThatNeverReadsIsDropped) {
  HttpServerOptions o;
  o.max_stream_backlog_bytes = 256 * 1024;
  start(o);
  Client c(server_->port(), false, /*rcvbuf=*/4096);
  ASSERT_TRUE(c.send(get("/stream")));
  auto s = handler_.next_stream();
  ASSERT_TRUE(s);
  const std::string chunk(16 * 1024, 'x');
  size_t sent = 0;
  const auto t0 = Clock::now();
  while (sent < (512u << 20) && Clock::now() - t0 < 20s && s->send(chunk)) {
    sent += chunk.size();
    if (sent % (1u << 20) == 0) std::this_thread::sleep_for(1ms);  // let the writer block
  }
  EXPECT_TRUE(s->closed());
  // The socket buffers plus the cap, far below what was offered.
  EXPECT_LT(sent, 64u << 20);
  EXPECT_TRUE(eventually([&] { return handler_.abandoned == 1; }));
}

TEST_F(TransportHttp, StreamToAClientThatStopsReadingTimesOut) {
  HttpServerOptions o;
  o.write_timeout = 300ms;
  start(o);
  Client c(server_->port(), false, /*rcvbuf=*/4096);
  ASSERT_TRUE(c.send(get("/stream")));
  auto s = handler_.next_stream();
  ASSERT_TRUE(s);
  const auto t0 = Clock::now();
  ASSERT_TRUE(s->send(std::string(4u << 20, 'x')));  // within the backlog cap: one chunk
  EXPECT_TRUE(eventually([&] { return s->closed(); }));
  EXPECT_GT(Clock::now() - t0, 250ms);
  EXPECT_EQ(handler_.abandoned, 1);
}

TEST_F(TransportHttp, StreamTakesOneLargeChunkBehindASmallBacklog) {
  HttpServerOptions o;
  o.max_stream_backlog_bytes = 1024;
  start(o);
  Client c(server_->port());
  ASSERT_TRUE(c.send(get("/stream")));
  auto s = handler_.next_stream();
  ASSERT_TRUE(s);
  const std::string big(4u << 20, 'b');
  EXPECT_TRUE(s->send("data: first\n\n"));
  EXPECT_TRUE(s->send(big));  // e.g. a large result right after a progress event
  s->close();
  ASSERT_TRUE(c.read_reply());
  EXPECT_EQ(dechunk(c.read_to_end().value_or("")), "data: first\n\n" + big);
}

TEST_F(TransportHttp, StopClosesStreams) {
  start();
  Client c(server_->port());
  ASSERT_TRUE(c.send(get("/stream")));
  auto s = handler_.next_stream();
  ASSERT_TRUE(s);
  ASSERT_TRUE(c.read_reply());
  server_->stop();
  EXPECT_TRUE(s->closed());
  EXPECT_FALSE(s->send("data: x\n\n"));
  EXPECT_TRUE(c.read_to_end());  // EOF
}

TEST_F(TransportHttp, Ipv6Loopback) {
  const int probe = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_loopback;
  const bool have_v6 = probe >= 0 && ::bind(probe, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  if (probe >= 0) ::close(probe);
  if (!have_v6) GTEST_SKIP() << "no IPv6 loopback on this host";

  HttpServerOptions o;
  o.bind = "::1";
  o.port = 0;
  auto s = HttpServer::start(o, handler_);
  ASSERT_TRUE(s.ok()) << s.error().message;
  Client c((*s)->port(), /*v6=*/true);
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.send(get("/six")));
  auto r = c.read_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "GET /six\n");
  EXPECT_EQ(r->headers["x-peer"].rfind("[::1]:", 0), 0u);
}

TEST_F(TransportHttp, PortInUseIsAClearError) {
  start();
  HttpServerOptions o;
  o.bind = "127.0.0.1";
  o.port = server_->port();
  auto s = HttpServer::start(o, handler_);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message, "cannot listen on 127.0.0.1:" + std::to_string(o.port) +
                                   ": Address already in use");
}

TEST_F(TransportHttp, LoopbackLatency) {
  start();
  Client c(server_->port());
  const std::string req = get("/p");
  std::vector<double> us;
  for (int i = 0; i < 2200; ++i) {
    const auto t0 = Clock::now();
    ASSERT_TRUE(c.send(req));
    ASSERT_TRUE(c.read_reply());
    if (i >= 200) us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  std::sort(us.begin(), us.end());
  const double p50 = us[us.size() / 2], p99 = us[us.size() * 99 / 100];
  std::printf("keep-alive round trip over loopback: p50 %.0f us, p99 %.0f us\n", p50, p99);
  EXPECT_LT(p50, 20000);  // only catches a stall such as Nagle + delayed ACK (40 ms)
}

// ---------- stdio ----------

// Writes `input` into a pipe from a thread (pipes hold only 64 KiB), runs serve_stdio, and
// collects everything written to the output pipe.
struct StdioRun {
  int rc = -1;
  std::string out;
};

StdioRun run_stdio(server::LineHandler& handler, const std::string& input) {
  int in[2], out[2];
  EXPECT_EQ(::pipe2(in, O_CLOEXEC), 0);
  EXPECT_EQ(::pipe2(out, O_CLOEXEC), 0);
  std::thread writer([&] {
    for (size_t off = 0; off < input.size();) {
      const ssize_t n = ::write(in[1], input.data() + off, std::min<size_t>(input.size() - off, 7000));
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    ::close(in[1]);
  });
  StdioRun run;
  std::thread reader([&] {
    char buf[65536];
    ssize_t n;
    while ((n = ::read(out[0], buf, sizeof buf)) > 0) run.out.append(buf, static_cast<size_t>(n));
  });
  run.rc = serve_stdio(handler, in[0], out[1]);
  writer.join();
  ::close(out[1]);
  reader.join();
  ::close(in[0]);
  ::close(out[0]);
  return run;
}

std::vector<std::string> split_lines(const std::string& s) {
  std::vector<std::string> lines;
  size_t pos = 0, nl;
  while ((nl = s.find('\n', pos)) != std::string::npos) {
    lines.push_back(s.substr(pos, nl - pos));
    pos = nl + 1;
  }
  EXPECT_EQ(pos, s.size()) << "output does not end with a newline";
  return lines;
}

// Echoes each line; with `async`, from its own thread after a random delay, out of order.
class EchoLineHandler : public server::LineHandler {
 public:
  explicit EchoLineHandler(bool async = false, size_t max = 1 << 20) : async_(async), max_(max) {}
  ~EchoLineHandler() override { join(); }
  void join() {
    std::lock_guard lock(mu_);
    for (auto& t : threads_) t.join();
    threads_.clear();
  }
  size_t max_line_bytes() const override { return max_; }
  void handle_line(std::string line, server::WriteLine write, std::function<void()> done) override {
    if (!async_) {
      write("echo:" + line);
      return done();
    }
    std::lock_guard lock(mu_);
    const int delay_us = static_cast<int>(rng_() % 3000);
    threads_.emplace_back([this, line = std::move(line), write, done, delay_us] {
      std::this_thread::sleep_for(std::chrono::microseconds(delay_us));
      write("echo:" + line);
      write("note:" + line.substr(0, 8));  // several writes per message
      ++completed;
      done();
    });
  }
  void line_too_long(server::WriteLine write) override {
    ++too_long;
    write("too long");
  }
  std::atomic<int> too_long{0};
  std::atomic<int> completed{0};

 private:
  bool async_;
  size_t max_;
  std::mutex mu_;
  std::vector<std::thread> threads_;
  std::mt19937 rng_{42};
};

TEST(StdioTransport, EchoesLinesAndHandlesCrLf) {
  EchoLineHandler h;
  auto run = run_stdio(h, "a\nb\r\n\n\r\nc\r\nlast without newline");
  EXPECT_EQ(run.rc, 0);
  EXPECT_EQ(split_lines(run.out),
            (std::vector<std::string>{"echo:a", "echo:b", "echo:c", "echo:last without newline"}));
}

TEST(StdioTransport, ConcurrentOutOfOrderWritesNeverInterleave) {
  EchoLineHandler h(/*async=*/true);
  std::string input;
  std::set<std::string> want;
  for (int i = 0; i < 200; ++i) {
    // Longer than PIPE_BUF, so an unserialised write could be split and interleaved.
    const std::string line = "id" + std::to_string(i) + ":" + std::string(9000, static_cast<char>('a' + i % 26));
    input += line + "\n";
    want.insert("echo:" + line);
    want.insert("note:" + line.substr(0, 8));
  }
  auto run = run_stdio(h, input);
  EXPECT_EQ(run.rc, 0);
  EXPECT_EQ(h.completed, 200);  // serve_stdio returned only after every done()
  const auto lines = split_lines(run.out);
  EXPECT_EQ(lines.size(), 400u);
  EXPECT_EQ(std::set<std::string>(lines.begin(), lines.end()), want);
}

TEST(StdioTransport, OverlongLineIsDiscardedAndNextLineHandled) {
  EchoLineHandler h(false, /*max=*/100);
  // 200 KiB spans several reads; the 101-byte line is just over the limit.
  auto run = run_stdio(h, "short1\n" + std::string(200 * 1024, 'x') + "\nshort2\n" +
                              std::string(101, 'y') + "\r\n" + std::string(100, 'z') + "\r\n");
  EXPECT_EQ(run.rc, 0);
  EXPECT_EQ(h.too_long, 2);
  EXPECT_EQ(split_lines(run.out), (std::vector<std::string>{"echo:short1", "too long", "echo:short2",
                                                            "too long", "echo:" + std::string(100, 'z')}));
}

TEST(StdioTransport, EofWaitsForInFlightWork) {
  class Slow : public server::LineHandler {
   public:
    size_t max_line_bytes() const override { return 1024; }
    void handle_line(std::string line, server::WriteLine write, std::function<void()> done) override {
      worker = std::thread([=, this] {
        std::this_thread::sleep_for(200ms);
        write("late:" + line);
        finished = true;
        done();
      });
    }
    void line_too_long(server::WriteLine) override {}
    std::thread worker;
    std::atomic<bool> finished{false};
  } h;
  const auto t0 = Clock::now();
  auto run = run_stdio(h, "x\n");
  EXPECT_TRUE(h.finished);
  EXPECT_GE(Clock::now() - t0, 190ms);
  EXPECT_EQ(run.out, "late:x\n");
  h.worker.join();
}

TEST(StdioTransport, BrokenOutputPipeStopsWritesSilently) {
  int in[2], out[2];
  ASSERT_EQ(::pipe2(in, O_CLOEXEC), 0);
  ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
  ::close(out[0]);  // nobody reads: writes get EPIPE (and SIGPIPE, which must not kill us)
  const std::string input = "a\nb\nc\n";
  ASSERT_EQ(::write(in[1], input.data(), input.size()), static_cast<ssize_t>(input.size()));
  ::close(in[1]);
  EchoLineHandler h;
  EXPECT_EQ(serve_stdio(h, in[0], out[1]), 0);
  ::close(in[0]);
  ::close(out[1]);
}

TEST(StdioTransport, ReadErrorIsNonZero) {
  EchoLineHandler h;
  const int dir = ::open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);  // read() fails with EISDIR
  int out[2];
  ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
  EXPECT_NE(serve_stdio(h, dir, out[1]), 0);
  ::close(dir);
  ::close(out[0]);
  ::close(out[1]);
}

}  // namespace
}  // namespace onemcp::transport
