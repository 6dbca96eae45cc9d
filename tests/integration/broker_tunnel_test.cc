// Integration tests of CONNECT-style tunnels over the broker channel: the test plays the run on
// one end of a socketpair, a sandbox::BrokerChannel serves the other end with tunnels opened by
// broker::Fetcher::connect, and raw TCP fixtures on loopback (127.0.0.x) stand for remotes. A
// fake resolver maps test names to loopback: never real DNS, never an address off loopback.
// Every denial also checks that the fixture standing for the denied target saw no connection.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/base64.h"
#include "broker/fetcher.h"
#include "broker/resolver.h"
#include "fake_resolver.h"
#include "http_fixture.h"
#include "ipc/wire.h"
#include "sandbox/broker_channel.h"

namespace onemcp::sandbox {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

using testing::FakeResolver;
using testing::ip_addr;

// A raw TCP server on one loopback address: each connection is served by `serve` on a thread of
// its own. Counts connections, and those that saw the peer close (EOF or reset).
class TcpFixture {
 public:
  using Serve = std::function<void(int fd, TcpFixture& self)>;
  // `rcvbuf` > 0: accepted sockets get that small a receive buffer (a remote slow to drain).
  TcpFixture(const std::string& ip, Serve serve, int rcvbuf = 0) : serve_(std::move(serve)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (rcvbuf > 0) ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    sockaddr_storage s = ip_addr(ip, 0);
    socklen_t len = sizeof(sockaddr_in);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&s), len) != 0 || ::listen(fd_, 64) != 0) return;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&s), &len);
    port_ = ntohs(reinterpret_cast<sockaddr_in&>(s).sin_port);
    acceptor_ = std::thread([this] {
      for (;;) {
        int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) {
          if (stop_) return;
          continue;
        }
        ++accepted_;
        std::lock_guard lk(mu_);
        conns_.push_back(c);
        workers_.emplace_back([this, c] { serve_(c, *this); });
      }
    });
  }
  ~TcpFixture() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    if (acceptor_.joinable()) acceptor_.join();
    {
      std::lock_guard lk(mu_);
      for (int c : conns_) ::shutdown(c, SHUT_RDWR);
    }
    for (auto& t : workers_) t.join();
    for (int c : conns_) ::close(c);
    ::close(fd_);
  }
  uint16_t port() const { return port_; }
  int accepted() const { return accepted_; }
  int peer_closed() const { return peer_closed_; }
  bool stopping() const { return stop_; }
  void note_peer_closed() { ++peer_closed_; }

  // Reads up to `n` bytes with a bounded wait; 0 on EOF, -1 on error or stop.
  ssize_t read_some(int fd, char* buf, size_t n) {
    for (;;) {
      if (stop_) return -1;
      pollfd p{fd, POLLIN, 0};
      int r = ::poll(&p, 1, 50);
      if (r == 0) continue;
      if (r < 0) return -1;
      ssize_t got = ::recv(fd, buf, n, 0);
      if (got < 0 && errno == EINTR) continue;
      return got;
    }
  }
  bool write_all(int fd, const char* data, size_t n) {
    while (n) {
      if (stop_) return false;
      ssize_t w = ::send(fd, data, n, MSG_NOSIGNAL);
      if (w <= 0) return false;
      data += w;
      n -= size_t(w);
    }
    return true;
  }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
  Serve serve_;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0}, peer_closed_{0};
  std::mutex mu_;
  std::vector<int> conns_;
  std::vector<std::thread> workers_;
  std::thread acceptor_;
};

// Echoes until the peer's EOF, then closes its side.
void echo(int fd, TcpFixture& f) {
  char buf[65536];
  for (;;) {
    ssize_t n = f.read_some(fd, buf, sizeof buf);
    if (n <= 0) {
      if (n == 0 || errno == ECONNRESET) f.note_peer_closed();
      ::shutdown(fd, SHUT_WR);
      return;
    }
    if (!f.write_all(fd, buf, size_t(n))) return;
  }
}

// Waits up to a second for `cond` (a connection is accepted a little after connect() returns).
template <typename F>
bool eventually(F cond) {
  for (int i = 0; i < 100 && !cond(); ++i) std::this_thread::sleep_for(10ms);
  return cond();
}

// The decision procedure and caps of the server's make_broker_tunnels, over a test Fetcher.
BrokerTunnels tunnels_for(std::shared_ptr<broker::Fetcher> fetcher, uint64_t max_body) {
  BrokerTunnels t;
  t.max_body_bytes = max_body;
  t.max_bytes = max_body + 64 * 1024;
  t.open = [fetcher](const std::string& host, uint16_t port, Clock::time_point deadline,
                     const std::atomic<bool>& cancelled) -> Result<UniqueFd> {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return make_error("the run is out of time");
    return fetcher->connect(host, port, uint32_t(std::min<long long>(left, 600000)), &cancelled);
  };
  return t;
}

// The run's side: a socketpair whose other end a BrokerChannel serves, driven by a thread that
// does what Zygote::run does (poll, on_readable, and close() at the end).
class FakeRun {
 public:
  FakeRun(const BrokerHandler* handler, const BrokerTunnels* tunnels, Clock::duration budget = 60s) {
    int sv[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    ours_ = UniqueFd(sv[0]);
    channel_ = std::make_unique<BrokerChannel>(UniqueFd(sv[1]), handler, Clock::now() + budget, tunnels);
    driver_ = std::thread([this] {
      while (!stop_ && channel_->open()) {
        pollfd p{channel_->fd(), POLLIN, 0};
        if (::poll(&p, 1, 20) > 0) channel_->on_readable();
      }
      channel_->close();
    });
  }
  ~FakeRun() { end(); }

  // Ends the run the way Zygote::run does; returns how long close() took.
  Clock::duration end() {
    auto t0 = Clock::now();
    stop_ = true;
    if (driver_.joinable()) driver_.join();
    return Clock::now() - t0;
  }

  void send(const json& j) {
    std::string f = ipc::frame(j.dump());
    ASSERT_EQ(::send(ours_.get(), f.data(), f.size(), MSG_NOSIGNAL), ssize_t(f.size()));
  }
  void send_data(uint64_t id, const std::string& bytes) {
    send({{"id", id}, {"stream", "data"}, {"data", base64_encode(bytes)}});
  }

  // The next frame for `id` (others are kept for later), or nullopt after `timeout`.
  std::optional<json> next(uint64_t id, Clock::duration timeout = 5s) {
    auto end = Clock::now() + timeout;
    for (;;) {
      for (auto it = pending_.begin(); it != pending_.end(); ++it) {
        if ((*it).value("id", json()) == json(id)) {
          json j = std::move(*it);
          pending_.erase(it);
          return j;
        }
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now()).count();
      if (left <= 0) return std::nullopt;
      pollfd p{ours_.get(), POLLIN, 0};
      if (::poll(&p, 1, int(left)) <= 0) continue;
      char buf[65536];
      ssize_t n = ::recv(ours_.get(), buf, sizeof buf, MSG_DONTWAIT);
      if (n <= 0) return std::nullopt;
      reader_.feed(buf, size_t(n));
      while (auto f = reader_.next()) pending_.push_back(json::parse(*f));
    }
  }

  // Connects stream `id` to host:port; the answer frame.
  json connect(uint64_t id, const std::string& host, uint16_t port) {
    send({{"id", id}, {"op", "connect"}, {"host", host}, {"port", port}});
    auto j = next(id);
    return j ? *j : json{{"error", "no answer"}};
  }

  // Stream bytes for `id` until `want` bytes arrived, an end, an error or the timeout.
  struct Received {
    std::string data;
    bool ended = false;
    std::string error;
  };
  Received read_stream(uint64_t id, size_t want = SIZE_MAX, Clock::duration timeout = 5s) {
    Received r;
    auto end = Clock::now() + timeout;
    while (r.data.size() < want && Clock::now() < end) {
      auto j = next(id, end - Clock::now());
      if (!j) break;
      std::string kind = j->value("stream", "");
      if (kind == "data") {
        r.data += *base64_decode(j->value("data", ""));
      } else if (kind == "end") {
        r.ended = true;
        break;
      } else if (kind == "error") {
        r.error = j->value("error", "");
        break;
      }
    }
    return r;
  }

 private:
  UniqueFd ours_;
  std::unique_ptr<BrokerChannel> channel_;
  std::thread driver_;
  std::atomic<bool> stop_{false};
  ipc::FrameReader reader_;
  std::deque<json> pending_;
};

class BrokerTunnelTest : public ::testing::Test {
 protected:
  policy::NetworkPolicy policy() {
    policy::NetworkPolicy p;
    p.allowed_domains = {"*.example.test", "*.evil.test", "rebind.test"};
    p.denied_domains = {"*.evil.test"};
    p.block_private_ranges = false;  // fixtures live on loopback
    p.deny_ip_literals = true;
    p.max_body_bytes = 256 * 1024;
    return p;
  }
  BrokerTunnels make(const policy::NetworkPolicy& p, broker::FetchLimits limits = {}) {
    limits.connect_timeout_ms = 2000;
    fetcher_ = std::make_shared<broker::Fetcher>(p, resolver_, limits);
    return tunnels_for(fetcher_, p.max_body_bytes);
  }
  FakeResolver resolver_;
  std::shared_ptr<broker::Fetcher> fetcher_;
};

TEST_F(BrokerTunnelTest, EchoesDataAndHalfClosesBothWays) {
  TcpFixture fx("127.0.0.2", echo);
  resolver_.sequence("api.example.test", {{"127.0.0.2"}});
  auto tunnels = make(policy());
  FakeRun run(nullptr, &tunnels);
  json ok = run.connect(1, "api.example.test", fx.port());
  ASSERT_EQ(ok, (json{{"id", 1}, {"ok", true}})) << ok.dump();

  run.send_data(1, "hello ");
  run.send_data(1, "tunnel");
  auto got = run.read_stream(1, 12);
  EXPECT_EQ(got.data, "hello tunnel");
  EXPECT_FALSE(got.ended);

  // The run's end → the remote sees EOF → it closes → the run gets end.
  run.send({{"id", 1}, {"stream", "end"}});
  auto rest = run.read_stream(1);
  EXPECT_TRUE(rest.ended);
  EXPECT_EQ(rest.data, "");
  EXPECT_EQ(rest.error, "");
  EXPECT_EQ(fx.accepted(), 1);
  EXPECT_TRUE(eventually([&] { return fx.peer_closed() == 1; }));
}

TEST_F(BrokerTunnelTest, LargeTransferWithinTheCapArrivesInBoundedChunks) {
  TcpFixture fx("127.0.0.2", echo);
  resolver_.sequence("api.example.test", {{"127.0.0.2"}});
  auto tunnels = make(policy());
  FakeRun run(nullptr, &tunnels);
  ASSERT_EQ(run.connect(7, "api.example.test", fx.port()).value("ok", false), true);
  std::string payload(200 * 1024, '\0');
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = char(i * 31 + 7);
  for (size_t off = 0; off < payload.size(); off += 64 * 1024) run.send_data(7, payload.substr(off, 64 * 1024));
  run.send({{"id", 7}, {"stream", "end"}});
  std::string got;
  bool ended = false;
  for (;;) {
    auto j = run.next(7);
    ASSERT_TRUE(j);
    if (j->value("stream", "") == "end") {
      ended = true;
      break;
    }
    ASSERT_EQ(j->value("stream", ""), "data") << j->dump();
    auto bytes = base64_decode(j->value("data", ""));
    ASSERT_TRUE(bytes);
    EXPECT_LE(bytes->size(), 64u * 1024);
    got += *bytes;
  }
  EXPECT_TRUE(ended);
  EXPECT_EQ(got, payload);
}

TEST_F(BrokerTunnelTest, DeniedDomainIsRefusedWithTheRuleAndNoConnection) {
  TcpFixture fx("127.0.0.3", echo);
  resolver_.sequence("api.evil.test", {{"127.0.0.3"}});
  auto tunnels = make(policy());
  FakeRun run(nullptr, &tunnels);
  json a = run.connect(2, "api.evil.test", fx.port());
  EXPECT_EQ(a.value("ok", true), false);
  EXPECT_EQ(a.value("error", ""), "blocked by network policy (deniedDomains: *.evil.test): api.evil.test:" +
                                       std::to_string(fx.port()));
  json b = run.connect(3, "not-listed.test", fx.port());
  EXPECT_EQ(b.value("ok", true), false);
  EXPECT_NE(b.value("error", "").find("allowedDomains: no entry matches not-listed.test"), std::string::npos) << b;
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(fx.accepted(), 0);
}

TEST_F(BrokerTunnelTest, IpLiteralsAreDeniedInEveryForm) {
  TcpFixture fx("127.0.0.2", echo);
  auto tunnels = make(policy());
  FakeRun run(nullptr, &tunnels);
  uint64_t id = 10;
  for (std::string host : {"127.0.0.2", "0x7f000002", "2130706434", "::ffff:127.0.0.2"}) {
    json a = run.connect(id++, host, fx.port());
    EXPECT_EQ(a.value("ok", true), false) << host;
    EXPECT_NE(a.value("error", "").find("denyIpLiterals"), std::string::npos) << host << ": " << a;
  }
  // Whatever could make the host name another one is refused before any decision.
  for (std::string host : {"api.example.test/x", "a@api.example.test", "[::1]", "api.example.test:80", ""}) {
    json a = run.connect(id++, host, fx.port());
    EXPECT_EQ(a.value("ok", true), false) << host;
  }
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(fx.accepted(), 0);
}

TEST_F(BrokerTunnelTest, AllowedIpLiteralStillGoesThroughTheAddressCheck) {
  TcpFixture fx("127.0.0.2", echo);
  auto p = policy();
  p.deny_ip_literals = false;
  p.allowed_domains.push_back("127.0.0.2");
  p.block_private_ranges = true;
  auto tunnels = make(p);
  FakeRun run(nullptr, &tunnels);
  json a = run.connect(1, "127.0.0.2", fx.port());
  EXPECT_EQ(a.value("ok", true), false);
  EXPECT_NE(a.value("error", "").find("blockPrivateRanges: 127.0.0.2 is in 127.0.0.0/8"), std::string::npos) << a;
  EXPECT_EQ(fx.accepted(), 0);
}

TEST_F(BrokerTunnelTest, PrivateAddressIsDeniedWithBlockPrivateRanges) {
  TcpFixture fx("127.0.0.2", echo);
  resolver_.sequence("api.example.test", {{"127.0.0.2"}});
  auto p = policy();
  p.block_private_ranges = true;
  auto tunnels = make(p);
  FakeRun run(nullptr, &tunnels);
  json a = run.connect(1, "api.example.test", fx.port());
  EXPECT_EQ(a.value("ok", true), false);
  EXPECT_EQ(a.value("error", ""), "blocked by network policy (blockPrivateRanges: 127.0.0.2 is in 127.0.0.0/8 "
                                  "(loopback)): api.example.test:" + std::to_string(fx.port()));
  EXPECT_EQ(fx.accepted(), 0);
}

TEST_F(BrokerTunnelTest, RebindingAnswerWithOneDeniedAddressIsRefused) {
  TcpFixture good("127.0.0.2", echo);
  // The first lookup is harmless; the second mixes in an address the server reserves.
  resolver_.sequence("rebind.test", {{"127.0.0.2"}, {"127.0.0.2", "127.0.0.9"}});
  broker::FetchLimits limits;
  limits.denied_addresses.push_back(ip_addr("127.0.0.9", 0));
  auto tunnels = make(policy(), limits);
  FakeRun run(nullptr, &tunnels);
  ASSERT_EQ(run.connect(1, "rebind.test", good.port()).value("ok", false), true);
  json b = run.connect(2, "rebind.test", good.port());
  EXPECT_EQ(b.value("ok", true), false);
  EXPECT_EQ(b.value("error", ""), "blocked by network policy (127.0.0.9 is reserved): rebind.test:" +
                                       std::to_string(good.port()));
  EXPECT_TRUE(eventually([&] { return good.accepted() == 1; }));
}

TEST_F(BrokerTunnelTest, BytesFromTheRemoteOverTheCapAbortTheStream) {
  TcpFixture fx("127.0.0.2", [](int fd, TcpFixture& f) {
    std::string chunk(64 * 1024, 'x');
    while (f.write_all(fd, chunk.data(), chunk.size())) {
    }
  });
  resolver_.sequence("api.example.test", {{"127.0.0.2"}});
  auto p = policy();
  p.max_body_bytes = 100 * 1024;
  auto tunnels = make(p);
  FakeRun run(nullptr, &tunnels);
  ASSERT_EQ(run.connect(1, "api.example.test", fx.port()).value("ok", false), true);
  auto got = run.read_stream(1);
  EXPECT_EQ(got.error, "tunnel exceeds maxBodyBytes (102400)");
  EXPECT_LE(got.data.size(), 100u * 1024 + 64 * 1024);
  EXPECT_FALSE(got.ended);
}

TEST_F(BrokerTunnelTest, BytesToTheRemoteOverTheCapAbortTheStream) {
  TcpFixture fx("127.0.0.2", echo);
  resolver_.sequence("api.example.test", {{"127.0.0.2"}});
  auto p = policy();
  p.max_body_bytes = 16 * 1024;
  auto tunnels = make(p);
  FakeRun run(nullptr, &tunnels);
  ASSERT_EQ(run.connect(1, "api.example.test", fx.port()).value("ok", false), true);
  std::string chunk(64 * 1024, 'y');
  run.send_data(1, chunk);
  run.send_data(1, chunk);
  auto got = run.read_stream(1, SIZE_MAX, 5s);
  EXPECT_EQ(got.error, "tunnel exceeds maxBodyBytes (16384)");
  EXPECT_TRUE(eventually([&] { return fx.peer_closed() == 1; }));
}

TEST_F(BrokerTunnelTest, RemoteThatStopsReadingAbortsTheStream) {
  // Accepts, then never reads: the tunnel's writes back up.
  TcpFixture fx("127.0.0.2", [](int fd, TcpFixture& f) {
    while (!f.stopping()) std::this_thread::sleep_for(10ms);
    (void)fd;
  }, 4096);
  resolver_.sequence("api.example.test", {{"127.0.0.2"}});
  auto p = policy();
  p.max_body_bytes = 8 << 20;
  auto tunnels = make(p);
  FakeRun run(nullptr, &tunnels);
  ASSERT_EQ(run.connect(1, "api.example.test", fx.port()).value("ok", false), true);
  std::string chunk(64 * 1024, 'z');
  for (int i = 0; i < 64; ++i) run.send_data(1, chunk);
  auto t0 = Clock::now();
  auto got = run.read_stream(1, SIZE_MAX, 15s);
  EXPECT_EQ(got.error, "tunnel stalled: the remote is not reading");
  EXPECT_LT(Clock::now() - t0, 10s);
}

TEST_F(BrokerTunnelTest, RunErrorClosesTheRemoteConnection) {
  TcpFixture fx("127.0.0.2", echo);
  resolver_.sequence("api.example.test", {{"127.0.0.2"}});
  auto tunnels = make(policy());
  FakeRun run(nullptr, &tunnels);
  ASSERT_EQ(run.connect(1, "api.example.test", fx.port()).value("ok", false), true);
  run.send({{"id", 1}, {"stream", "error"}, {"error", "client went away"}});
  EXPECT_TRUE(eventually([&] { return fx.peer_closed() == 1; }));
  // The slot is free again and the id reusable.
  EXPECT_EQ(run.connect(1, "api.example.test", fx.port()).value("ok", false), true);
}

TEST_F(BrokerTunnelTest, OpenTunnelsCountTowardTheConcurrencyCap) {
  TcpFixture fx("127.0.0.2", echo);
  resolver_.sequence("api.example.test", {{"127.0.0.2"}});
  auto tunnels = make(policy());
  FakeRun run(nullptr, &tunnels);
  for (uint64_t id = 1; id <= ipc::kMaxBrokerRequestsInFlight; ++id)
    ASSERT_EQ(run.connect(id, "api.example.test", fx.port()).value("ok", false), true) << id;
  json ninth = run.connect(99, "api.example.test", fx.port());
  EXPECT_EQ(ninth.value("ok", true), false);
  EXPECT_EQ(ninth.value("error", ""), "too many concurrent requests (8)");
  EXPECT_TRUE(eventually([&] { return fx.accepted() == int(ipc::kMaxBrokerRequestsInFlight); }));
  // One ends (the run's side first) → its slot is free by the time the run reads the end, and
  // its id may be used again.
  run.send({{"id", 3}, {"stream", "end"}});
  EXPECT_TRUE(run.read_stream(3).ended);
  EXPECT_EQ(run.connect(3, "api.example.test", fx.port()).value("ok", false), true);
  // Another aborted by the run → free as soon as the run has said so.
  run.send({{"id", 4}, {"stream", "error"}, {"error", "the client closed the connection"}});
  EXPECT_EQ(run.connect(100, "api.example.test", fx.port()).value("ok", false), true);
  EXPECT_EQ(run.connect(101, "api.example.test", fx.port()).value("error", ""),
            "too many concurrent requests (8)");
}

TEST_F(BrokerTunnelTest, ARemoteThatEndsFirstFreesTheSlotWithTheRunsEnd) {
  // Sends a greeting and closes its side at once; then waits for the run's end.
  TcpFixture fx("127.0.0.2", [](int fd, TcpFixture& f) {
    f.write_all(fd, "hi", 2);
    ::shutdown(fd, SHUT_WR);
    char buf[256];
    while (f.read_some(fd, buf, sizeof buf) > 0) {
    }
    f.note_peer_closed();
  });
  resolver_.sequence("api.example.test", {{"127.0.0.2"}});
  auto tunnels = make(policy());
  FakeRun run(nullptr, &tunnels);
  for (uint64_t id = 1; id <= ipc::kMaxBrokerRequestsInFlight; ++id) {
    ASSERT_EQ(run.connect(id, "api.example.test", fx.port()).value("ok", false), true) << id;
    auto got = run.read_stream(id);
    EXPECT_EQ(got.data, "hi");
    EXPECT_TRUE(got.ended);
  }
  // The run ends its side of one and opens the next in the same breath: no refusal.
  for (uint64_t id = 1; id <= 20; ++id) {
    run.send({{"id", id}, {"stream", "end"}});
    uint64_t next = ipc::kMaxBrokerRequestsInFlight + id;
    ASSERT_EQ(run.connect(next, "api.example.test", fx.port()).value("ok", false), true) << next;
    auto got = run.read_stream(next);
    EXPECT_EQ(got.data, "hi");
    EXPECT_TRUE(got.ended);
  }
  EXPECT_TRUE(eventually([&] { return fx.peer_closed() == 20; }));
}

TEST_F(BrokerTunnelTest, CloseWithOpenTunnelsIsPromptAndClosesRemotes) {
  TcpFixture fx("127.0.0.2", echo);
  resolver_.sequence("api.example.test", {{"127.0.0.2"}});
  auto tunnels = make(policy());
  auto run = std::make_unique<FakeRun>(nullptr, &tunnels);
  for (uint64_t id = 1; id <= 5; ++id)
    ASSERT_EQ(run->connect(id, "api.example.test", fx.port()).value("ok", false), true);
  run->send_data(2, "pending");
  auto took = run->end();
  EXPECT_LT(took, 500ms);
  EXPECT_TRUE(eventually([&] { return fx.peer_closed() == 5; }));
}

TEST_F(BrokerTunnelTest, RunDeadlineEndsTheTunnel) {
  TcpFixture fx("127.0.0.2", echo);
  resolver_.sequence("api.example.test", {{"127.0.0.2"}});
  auto tunnels = make(policy());
  FakeRun run(nullptr, &tunnels, 700ms);
  ASSERT_EQ(run.connect(1, "api.example.test", fx.port()).value("ok", false), true);
  auto got = run.read_stream(1, SIZE_MAX, 3s);
  EXPECT_EQ(got.error, "tunnel closed: the run is out of time");
  EXPECT_TRUE(eventually([&] { return fx.peer_closed() == 1; }));
}

TEST_F(BrokerTunnelTest, ConnectionRefusedIsReported) {
  resolver_.sequence("api.example.test", {{"127.0.0.2"}});
  // A port held bound but not listening: refused, and no other test can take it meanwhile.
  UniqueFd held(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_storage s = ip_addr("127.0.0.2", 0);
  socklen_t len = sizeof(sockaddr_in);
  ASSERT_EQ(::bind(held.get(), reinterpret_cast<sockaddr*>(&s), len), 0);
  ASSERT_EQ(::getsockname(held.get(), reinterpret_cast<sockaddr*>(&s), &len), 0);
  const uint16_t port = ntohs(reinterpret_cast<sockaddr_in&>(s).sin_port);
  auto tunnels = make(policy());
  FakeRun run(nullptr, &tunnels);
  json a = run.connect(1, "api.example.test", port);
  EXPECT_EQ(a.value("ok", true), false);
  EXPECT_NE(a.value("error", "").find("connect failed: api.example.test:" + std::to_string(port)),
            std::string::npos)
      << a;
}

TEST_F(BrokerTunnelTest, FetchRequestsStillWorkAlongsideTunnels) {
  TcpFixture fx("127.0.0.2", echo);
  onemcp::testing::FixtureServer http("127.0.0.4", [](onemcp::testing::Conn& c, const onemcp::testing::SeenRequest&) {
    c.send(onemcp::testing::http_response(200, "OK", {{"Content-Type", "text/plain"}}, "fetched"));
  });
  resolver_.sequence("api.example.test", {{"127.0.0.2"}});
  resolver_.sequence("www.example.test", {{"127.0.0.4"}});
  auto p = policy();
  auto tunnels = make(p);
  auto fetcher = std::make_shared<broker::Fetcher>(p, resolver_);
  BrokerHandler handler = [fetcher](const std::string& frame, Clock::time_point, const std::atomic<bool>& cancelled) {
    json j = json::parse(frame);
    broker::FetchRequest req;
    req.url = j.at("url").get<std::string>();
    req.cancel = &cancelled;
    auto res = fetcher->fetch(req);
    if (!res) return json{{"id", j["id"]}, {"ok", false}, {"error", res.error().message}}.dump();
    return json{{"id", j["id"]}, {"ok", true}, {"status", res->status}, {"body", base64_encode(res->body)}}.dump();
  };
  FakeRun run(&handler, &tunnels);
  ASSERT_EQ(run.connect(1, "api.example.test", fx.port()).value("ok", false), true);
  run.send_data(1, "ping");
  run.send({{"id", 2}, {"op", "fetch"}, {"url", "http://www.example.test:" + std::to_string(http.port()) + "/"}});
  auto f = run.next(2);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->value("ok", false), true) << f->dump();
  EXPECT_EQ(*base64_decode(f->value("body", "")), "fetched");
  EXPECT_EQ(run.read_stream(1, 4).data, "ping");
}

TEST_F(BrokerTunnelTest, WithoutTunnelsConnectIsRefused) {
  FakeRun run(nullptr, nullptr);
  json a = run.connect(1, "api.example.test", 443);
  EXPECT_EQ(a, (json{{"id", 1}, {"ok", false}, {"error", "network access is not available"}}));
}

}  // namespace
}  // namespace onemcp::sandbox
