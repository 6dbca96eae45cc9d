// Integration tests of the in-sandbox proxy relay: the relay runs in a forked process on a real
// loopback listening socket, and the test plays both the Python client (plain TCP) and the broker
// (the other end of a socketpair, answering frames by script). Checks the frames the broker
// receives and the bytes the client gets back, exactly.
#include "worker/relay.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/base64.h"
#include "ipc/wire.h"

namespace onemcp::worker {
namespace {

using nlohmann::json;

class RelayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto l = relay_listen(0);
    ASSERT_TRUE(l) << l.error().message;
    sockaddr_in a{};
    socklen_t len = sizeof a;
    ASSERT_EQ(::getsockname(l->get(), reinterpret_cast<sockaddr*>(&a), &len), 0);
    port_ = ntohs(a.sin_port);
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    pid_ = ::fork();
    ASSERT_GE(pid_, 0);
    if (pid_ == 0) {
      ::close(sv[1]);
      relay_serve(l->get(), sv[0]);
      _exit(0);
    }
    ::close(sv[0]);
    broker_.reset(sv[1]);
  }

  void TearDown() override {
    broker_.reset();  // the relay ends when its broker channel closes
    if (pid_ <= 0) return;
    int status = 0;
    for (int i = 0; i < 200; ++i) {
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "relay status " << status;
        return;
      }
      ::usleep(10000);
    }
    ADD_FAILURE() << "the relay did not exit when the broker channel closed";
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status, 0);
  }

  UniqueFd client() {
    UniqueFd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port_);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    timeval tv{5, 0};
    ::setsockopt(s.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return s;
  }

  static void send_all(int fd, const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
      ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      ASSERT_GT(n, 0) << "send failed";
      off += size_t(n);
    }
  }

  // Everything up to EOF (bounded by the receive timeout).
  static std::string read_to_eof(int fd) {
    std::string out;
    char buf[65536];
    for (;;) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n <= 0) break;
      out.append(buf, size_t(n));
    }
    return out;
  }

  static std::string read_exact(int fd, size_t want) {
    std::string out;
    char buf[65536];
    while (out.size() < want) {
      ssize_t n = ::read(fd, buf, std::min(sizeof buf, want - out.size()));
      if (n <= 0) break;
      out.append(buf, size_t(n));
    }
    return out;
  }

  // The next frame the relay sent to the broker, or null after `ms` without one.
  json next_frame(int ms = 5000) {
    for (;;) {
      if (auto f = reader_.next()) return json::parse(*f);
      pollfd p{broker_.get(), POLLIN, 0};
      if (::poll(&p, 1, ms) <= 0) return nullptr;
      char buf[65536];
      ssize_t n = ::read(broker_.get(), buf, sizeof buf);
      if (n <= 0) return nullptr;
      EXPECT_TRUE(reader_.feed(buf, size_t(n)));
    }
  }

  void answer(const json& j) { send_all(broker_.get(), ipc::frame(j.dump())); }

  uint16_t port_ = 0;
  pid_t pid_ = -1;
  UniqueFd broker_;
  ipc::FrameReader reader_;
};

std::string b64(const std::string& s) { return base64_encode(s); }

// [[name, value], ...] as the wire has it (a braced list of pairs would become an object).
json pairs(const std::vector<std::pair<std::string, std::string>>& hs) {
  json a = json::array();
  for (const auto& [k, v] : hs) a.push_back(json::array({k, v}));
  return a;
}

TEST_F(RelayTest, ConnectTunnelsBytesBothWaysWithHalfClose) {
  auto c = client();
  send_all(c.get(), "CONNECT api.example.test:443 HTTP/1.1\r\nHost: api.example.test:443\r\n\r\nEARLY");
  json op = next_frame();
  EXPECT_EQ(op, (json{{"id", 1}, {"op", "connect"}, {"host", "api.example.test"}, {"port", 443}}));
  answer({{"id", 1}, {"ok", true}});
  const std::string established = "HTTP/1.1 200 Connection established\r\n\r\n";
  EXPECT_EQ(read_exact(c.get(), established.size()), established);
  // Bytes sent after the head went through once the tunnel opened.
  EXPECT_EQ(next_frame(), (json{{"id", 1}, {"stream", "data"}, {"data", b64("EARLY")}}));

  answer({{"id", 1}, {"stream", "data"}, {"data", b64("pong")}});
  EXPECT_EQ(read_exact(c.get(), 4), "pong");
  send_all(c.get(), std::string("pi\0ng", 5));
  EXPECT_EQ(next_frame(), (json{{"id", 1}, {"stream", "data"}, {"data", b64(std::string("pi\0ng", 5))}}));

  ::shutdown(c.get(), SHUT_WR);  // the client is done sending; it still reads
  EXPECT_EQ(next_frame(), (json{{"id", 1}, {"stream", "end"}}));
  answer({{"id", 1}, {"stream", "data"}, {"data", b64("last words")}});
  answer({{"id", 1}, {"stream", "end"}});
  EXPECT_EQ(read_to_eof(c.get()), "last words");
  EXPECT_TRUE(next_frame(200).is_null()) << "nothing more for the broker";
}

TEST_F(RelayTest, BrokerEndShutsTheClientWriteSideAndClientEofFinishes) {
  auto c = client();
  send_all(c.get(), "CONNECT api.example.test:8443 HTTP/1.1\r\n\r\n");
  EXPECT_EQ(next_frame()["port"], 8443);
  answer({{"id", 1}, {"ok", true}});
  answer({{"id", 1}, {"stream", "data"}, {"data", b64("bye")}});
  answer({{"id", 1}, {"stream", "end"}});
  EXPECT_EQ(read_to_eof(c.get()), "HTTP/1.1 200 Connection established\r\n\r\nbye");
  send_all(c.get(), "still talking");
  EXPECT_EQ(next_frame(), (json{{"id", 1}, {"stream", "data"}, {"data", b64("still talking")}}));
  c.reset();
  EXPECT_EQ(next_frame(), (json{{"id", 1}, {"stream", "end"}}));
}

TEST_F(RelayTest, ConnectRefusedAnswers403WithTheBrokersText) {
  auto c = client();
  send_all(c.get(), "CONNECT secret.example.test:443 HTTP/1.1\r\n\r\n");
  EXPECT_EQ(next_frame()["op"], "connect");
  answer({{"id", 1},
          {"ok", false},
          {"error", "blocked by network policy (deniedDomains: secret.example.test):\r\n secret.example.test"}});
  const std::string text = "blocked by network policy (deniedDomains: secret.example.test): secret.example.test";
  EXPECT_EQ(read_to_eof(c.get()), "HTTP/1.1 403 " + text + "\r\nContent-Length: " + std::to_string(text.size()) +
                                      "\r\nConnection: close\r\n\r\n" + text);

  // Failures other than policy are the upstream's: 502, and the text is cut to 200 bytes.
  auto d = client();
  send_all(d.get(), "CONNECT api.example.test:443 HTTP/1.1\r\n\r\n");
  EXPECT_EQ(next_frame()["id"], 2);
  answer({{"id", 2}, {"ok", false}, {"error", std::string(300, 'x')}});
  const std::string cut(200, 'x');
  EXPECT_EQ(read_to_eof(d.get()),
            "HTTP/1.1 502 " + cut + "\r\nContent-Length: 200\r\nConnection: close\r\n\r\n" + cut);
}

TEST_F(RelayTest, AbsoluteFormGetBecomesAFetch) {
  auto c = client();
  send_all(c.get(),
           "GET http://api.example.test/path?q=1 HTTP/1.1\r\nHost: api.example.test\r\nUser-Agent: t/1\r\n"
           "Proxy-Connection: keep-alive\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nAccept:  */* \r\n\r\n");
  json op = next_frame();
  EXPECT_EQ(op, (json{{"id", 1},
                      {"op", "fetch"},
                      {"method", "GET"},
                      {"url", "http://api.example.test/path?q=1"},
                      {"headers", pairs({{"User-Agent", "t/1"}, {"Accept", "*/*"}})}}));
  answer({{"id", 1},
          {"ok", true},
          {"status", 200},
          {"statusText", "OK"},
          {"headers",
           pairs({{"Content-Type", "text/plain"}, {"Content-Encoding", "gzip"}, {"Transfer-Encoding", "chunked"},
                  {"content-length", "99"}, {"Connection", "keep-alive"}, {"X-A", "b\r\nInjected: 1"}})},
          {"body", b64("hello")},
          {"url", "http://api.example.test/path?q=1"},
          {"redirected", false}});
  EXPECT_EQ(read_to_eof(c.get()),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-A: bInjected: 1\r\nContent-Length: 5\r\n"
            "Connection: close\r\n\r\nhello");
}

TEST_F(RelayTest, AbsoluteFormPostCarriesItsBody) {
  auto c = client();
  const std::string body("ab\0c\xff\r\n", 7);
  send_all(c.get(),
           "POST http://api.example.test/echo HTTP/1.1\r\nContent-Type: application/octet-stream\r\n"
           "Content-Length: 7\r\n\r\n" +
               body.substr(0, 2));
  EXPECT_TRUE(next_frame(200).is_null()) << "no fetch before the whole body is in";
  send_all(c.get(), body.substr(2));
  json op = next_frame();
  EXPECT_EQ(op, (json{{"id", 1},
                      {"op", "fetch"},
                      {"method", "POST"},
                      {"url", "http://api.example.test/echo"},
                      {"headers", pairs({{"Content-Type", "application/octet-stream"}})},
                      {"body", b64(body)}}));
  answer({{"id", 1}, {"ok", true}, {"status", 201}, {"statusText", "Created"}, {"headers", json::array()},
          {"body", b64(std::string("\0\1", 2))}});
  EXPECT_EQ(read_to_eof(c.get()),
            "HTTP/1.1 201 Created\r\nContent-Length: 2\r\nConnection: close\r\n\r\n" + std::string("\0\1", 2));
}

TEST_F(RelayTest, FetchRefusedAnswers403) {
  auto c = client();
  send_all(c.get(), "GET http://secret.example.test/ HTTP/1.1\r\n\r\n");
  EXPECT_EQ(next_frame()["url"], "http://secret.example.test/");
  const std::string text = "blocked by network policy (deniedDomains: secret.example.test)";
  answer({{"id", 1}, {"ok", false}, {"error", text}});
  EXPECT_EQ(read_to_eof(c.get()), "HTTP/1.1 403 " + text + "\r\nContent-Length: " + std::to_string(text.size()) +
                                      "\r\nConnection: close\r\n\r\n" + text);
}

TEST_F(RelayTest, MalformedRequestsGet400AndNeverReachTheBroker) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "400"},                          // origin-form
      {"garbage\r\n\r\n", "400"},                                            // no request line
      {"GET  http://a.test/ HTTP/1.1\r\n\r\n", "400"},                       // double space
      {"GET http://a.test/ HTTP/2\r\n\r\n", "400"},                          // version
      {"GET http://a.test/ HTTP/1.1\r\nX: a\nY: b\r\n\r\n", "400"},         // bare LF
      {"GET http://a.test/ HTTP/1.1\r\nX: a\r\n folded\r\n\r\n", "400"},     // obs-fold
      {"GET http://a.test/ HTTP/1.1\r\nBad Name: a\r\n\r\n", "400"},         // header name
      {"GET ftp://a.test/ HTTP/1.1\r\n\r\n", "400"},                         // scheme
      {"POST http://a.test/ HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", "400"},
      {"POST http://a.test/ HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", "400"},
      {"CONNECT a.test HTTP/1.1\r\n\r\n", "400"},                            // no port
      {"CONNECT a.test:0 HTTP/1.1\r\n\r\n", "400"},
      {"CONNECT a.test:70000 HTTP/1.1\r\n\r\n", "400"},
      {"CONNECT user@a.test:443 HTTP/1.1\r\n\r\n", "400"},
      {"POST http://a.test/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "411"},
      {"POST http://a.test/ HTTP/1.1\r\nContent-Length: 999999999\r\n\r\n", "413"},
  };
  for (const auto& [req, status] : cases) {
    auto c = client();
    send_all(c.get(), req);
    std::string got = read_to_eof(c.get());
    EXPECT_EQ(got.substr(0, 13), "HTTP/1.1 " + status + " ") << req << "\n-> " << got;
    EXPECT_NE(got.find("\r\nConnection: close\r\n\r\n"), std::string::npos) << got;
  }
  EXPECT_TRUE(next_frame(200).is_null()) << "a malformed request reached the broker";
}

TEST_F(RelayTest, OversizedHeadGets431) {
  auto c = client();
  std::string head = "GET http://a.test/ HTTP/1.1\r\nX-Big: " + std::string(70 << 10, 'a');
  send_all(c.get(), head);
  std::string got = read_to_eof(c.get());
  EXPECT_EQ(got.substr(0, 13), "HTTP/1.1 431 ") << got.substr(0, 100);
  EXPECT_TRUE(next_frame(200).is_null());
}

TEST_F(RelayTest, ManyClientsAtOnceQueueBeyondEightInFlight) {
  constexpr int kClients = 20;
  std::vector<UniqueFd> cs;
  for (int i = 0; i < kClients; ++i) {
    cs.push_back(client());
    send_all(cs.back().get(), "GET http://api.example.test/" + std::to_string(i) + " HTTP/1.1\r\n\r\n");
  }
  // Answer in reverse order of arrival; never more than eight open on the broker at once.
  std::map<uint64_t, std::string> open;  // id -> url
  int answered = 0;
  while (answered < kClients) {
    for (json f = next_frame(open.empty() ? 2000 : 100); !f.is_null(); f = next_frame(100)) {
      open[f["id"].get<uint64_t>()] = f["url"].get<std::string>();
      ASSERT_LE(open.size(), ipc::kMaxBrokerRequestsInFlight);
    }
    ASSERT_FALSE(open.empty()) << "requests stalled after " << answered << " answers";
    auto last = std::prev(open.end());
    std::string path = last->second.substr(last->second.rfind('/') + 1);
    answer({{"id", last->first}, {"ok", true}, {"status", 200}, {"statusText", "OK"}, {"headers", json::array()},
            {"body", b64("body " + path)}});
    open.erase(last);
    ++answered;
  }
  for (int i = 0; i < kClients; ++i) {
    std::string body = "body " + std::to_string(i);
    EXPECT_EQ(read_to_eof(cs[size_t(i)].get()),
              "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body);
  }
}

std::string mcp_post(const std::string& path, const std::string& body) {
  return "POST http://mcp.1mcp.invalid" + path + " HTTP/1.1\r\nHost: mcp.1mcp.invalid\r\n" +
         "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\n\r\n" + body;
}

std::string json_200(const json& body) {
  std::string text = body.dump();
  return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(text.size()) + "\r\nConnection: close\r\n\r\n" + text;
}

TEST_F(RelayTest, McpCallBecomesAnMcpRequestAndItsAnswerTheBody) {
  auto c = client();
  send_all(c.get(), mcp_post("/call", R"({"server": "filesystem", "tool": "read_text_file",
                                          "args": {"path": "/x", "n": [1, {"k": null}]}})"));
  EXPECT_EQ(next_frame(), json::parse(R"({"id": 1, "op": "mcp", "server": "filesystem",
                                          "tool": "read_text_file", "args": {"path": "/x", "n": [1, {"k": null}]}})"));
  json answer_frame = {
      {"id", 1}, {"ok", true}, {"result", {{"content", json::array()}, {"isError", false}}}};
  answer(answer_frame);
  EXPECT_EQ(read_to_eof(c.get()), json_200(answer_frame));

  // A failure is still a 200: the body says what failed.
  auto d = client();
  send_all(d.get(), mcp_post("/call", R"({"server": "github", "tool": "create_issue"})"));
  EXPECT_EQ(next_frame(),
            json::parse(R"({"id": 2, "op": "mcp", "server": "github", "tool": "create_issue",
                                          "args": {}})"));
  json refused = {{"id", 2}, {"ok", false}, {"error", "repository not found"}, {"isError", true}};
  answer(refused);
  EXPECT_EQ(read_to_eof(d.get()), json_200(refused));
}

TEST_F(RelayTest, McpListBecomesAnMcpListRequest) {
  auto c = client();
  send_all(c.get(), mcp_post("/list", "{}"));
  EXPECT_EQ(next_frame(), (json{{"id", 1}, {"op", "mcp_list"}}));
  json listing = {{"id", 1}, {"ok", true}, {"result", {{"filesystem", {"read_text_file"}}}}};
  answer(listing);
  EXPECT_EQ(read_to_eof(c.get()), json_200(listing));

  // Without a body too; the host is matched whatever its case.
  auto d = client();
  send_all(d.get(), "POST http://MCP.1mcp.Invalid/list HTTP/1.1\r\n\r\n");
  EXPECT_EQ(next_frame(), (json{{"id", 2}, {"op", "mcp_list"}}));
  answer({{"id", 2}, {"ok", false}, {"error", "code mode is off"}, {"isError", false}});
  EXPECT_NE(read_to_eof(d.get()).find("\r\n\r\n{\"error\":\"code mode is off\""),
            std::string::npos);
}

TEST_F(RelayTest, MalformedMcpRequestsNeverReachTheBroker) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"GET http://mcp.1mcp.invalid/list HTTP/1.1\r\n\r\n", "405"},
      {mcp_post("/tools", "{}"), "404"},
      {mcp_post("/call?x=1", "{}"), "404"},
      {mcp_post("", "{}"), "404"},
      {mcp_post("/call", "not json"), "400"},
      {mcp_post("/call", R"(["fs", "read"])"), "400"},
      {mcp_post("/call", R"({"server": "fs"})"), "400"},
      {mcp_post("/call", R"({"server": "fs", "tool": 5})"), "400"},
      {mcp_post("/call", R"({"server": "fs", "tool": "read", "args": [1]})"), "400"},
      {mcp_post("/call", R"({"server": "fs", "tool": "read", "args": )" + std::string(100, '[') +
                             std::string(100, ']') + "}"),
       "400"},
  };
  for (const auto& [req, status] : cases) {
    auto c = client();
    send_all(c.get(), req);
    std::string got = read_to_eof(c.get());
    EXPECT_EQ(got.substr(0, 13), "HTTP/1.1 " + status + " ") << req << "\n-> " << got;
  }
  EXPECT_TRUE(next_frame(200).is_null()) << "a malformed request reached the broker";
}

TEST_F(RelayTest, McpHostOnAnotherPortIsAnOrdinaryFetch) {
  auto c = client();
  send_all(c.get(),
           "POST http://mcp.1mcp.invalid:8080/call HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}");
  json op = next_frame();
  EXPECT_EQ(op["op"], "fetch");
  EXPECT_EQ(op["url"], "http://mcp.1mcp.invalid:8080/call");
}

TEST_F(RelayTest, ClientLeavingAnOpenTunnelAbortsItOnTheBroker) {
  auto c = client();
  send_all(c.get(), "CONNECT api.example.test:443 HTTP/1.1\r\n\r\n");
  EXPECT_EQ(next_frame()["op"], "connect");
  c.reset();  // gone before the broker answered
  answer({{"id", 1}, {"ok", true}});
  // The relay learns of the client only when it writes or reads: an end or an abort, either way
  // the tunnel is over on the broker.
  json f = next_frame();
  EXPECT_EQ(f["id"], 1);
  EXPECT_TRUE(f["stream"] == "error" || f["stream"] == "end") << f;
  // The slot is free again: a new request goes straight out (after at most a final abort).
  auto d = client();
  send_all(d.get(), "GET http://api.example.test/ HTTP/1.1\r\n\r\n");
  f = next_frame();
  if (f["id"] == 1) {
    EXPECT_EQ(f["stream"], "error") << f;
    f = next_frame();
  }
  EXPECT_EQ(f["id"], 2) << f;
}

}  // namespace
}  // namespace onemcp::worker
