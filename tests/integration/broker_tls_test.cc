// Integration tests of the broker's fetch engine over HTTPS: real libcurl and OpenSSL against a
// loopback HTTPS fixture whose certificate comes from a CA made when the test starts, trusted
// through FetchLimits::ca_file. Names resolve through a fake resolver to 127.0.0.x only.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "broker/fetcher.h"
#include "broker/resolver.h"
#include "fake_resolver.h"
#include "http_fixture.h"
#include "tls_fixture.h"

namespace onemcp::broker {
namespace {

using namespace std::chrono_literals;
using testing::Conn;
using testing::FixtureServer;
using testing::http_response;
using testing::FakeResolver;
using testing::ip_addr;
using testing::SeenRequest;
using testing::TestPki;
using testing::TlsServer;


policy::NetworkPolicy test_policy() {
  policy::NetworkPolicy p;
  p.allowed_domains = {"*.example.test"};
  p.denied_domains = {"secret.example.test"};
  p.deny_ip_literals = true;
  p.block_private_ranges = false;  // the fixtures are on loopback
  p.max_body_bytes = 1048576;
  p.max_redirects = 3;
  return p;
}

// Echoes what the fixture received: "METHOD target\nbody".
std::string echo(const SeenRequest& r) {
  return http_response(200, "OK", {}, r.method + " " + r.target + "\n" + r.body);
}

struct BrokerTlsTest : ::testing::Test {
  // The server certificate names api and www, not other: other.example.test is a name the
  // policy allows whose certificate does not match.
  TestPki pki{{"api.example.test", "www.example.test"}};
  FakeResolver resolver;

  void SetUp() override {
    ASSERT_TRUE(pki.ok());
    for (const char* name :
         {"api.example.test", "www.example.test", "other.example.test", "secret.example.test"})
      resolver.set(name, {"127.0.0.2"});
  }

  FetchLimits trusting(const std::string& ca_file) {
    FetchLimits l;
    l.ca_file = ca_file;
    return l;
  }
  Result<FetchResponse> fetch(FetchRequest r, FetchLimits limits) {
    Fetcher f(test_policy(), resolver, std::move(limits));
    return f.fetch(r);
  }
  Result<FetchResponse> get(const std::string& url, FetchLimits limits) {
    FetchRequest r;
    r.url = url;
    r.timeout_ms = 20000;
    return fetch(r, std::move(limits));
  }
  static std::string err(const Result<FetchResponse>& r) {
    return r.ok() ? "(ok: status " + std::to_string(r->status) + ")" : r.error().message;
  }
};

TEST_F(BrokerTlsTest, HttpsFetchSucceedsWithTheTestCa) {
  TlsServer https("127.0.0.2", pki.server, echo);
  ASSERT_TRUE(https.ok());
  FetchRequest req;
  req.method = "POST";
  req.url = https.url("api.example.test", "/submit?x=1");
  req.body = "over tls";
  auto r = fetch(req, trusting(pki.ca_file));
  ASSERT_TRUE(r.ok()) << err(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "POST /submit?x=1\nover tls");
  EXPECT_EQ(r->url, https.url("api.example.test", "/submit?x=1"));
  EXPECT_FALSE(r->redirected);
  ASSERT_EQ(https.requests().size(), 1u);
  EXPECT_EQ(https.requests()[0].header("host"), "api.example.test:" + std::to_string(https.port()));
  EXPECT_EQ(https.handshakes(), 1);
}

TEST_F(BrokerTlsTest, WithoutTheCaTheCertificateIsRefusedPromptly) {
  TlsServer https("127.0.0.2", pki.server, echo);
  ASSERT_TRUE(https.ok());
  const auto start = std::chrono::steady_clock::now();
  auto r = get(https.url("api.example.test"), FetchLimits{});  // the system store
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message,
            "fetch failed: SSL certificate problem: unable to get local issuer certificate");
  EXPECT_LT(took, 5s) << "a refused certificate must end the fetch, not wait for its timeout";
  EXPECT_EQ(https.accepts(), 1);
  EXPECT_EQ(https.handshakes(), 0);
  EXPECT_TRUE(https.requests().empty()) << "a request was sent over an unverified connection";
}

TEST_F(BrokerTlsTest, ACaFileOfAnotherCaDoesNotTrustTheServer) {
  TestPki other({"api.example.test"});
  ASSERT_TRUE(other.ok());
  TlsServer https("127.0.0.2", pki.server, echo);
  ASSERT_TRUE(https.ok());
  auto r = get(https.url("api.example.test"), trusting(other.ca_file));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message,
            "fetch failed: SSL certificate problem: unable to get local issuer certificate");
  EXPECT_TRUE(https.requests().empty());
}

TEST_F(BrokerTlsTest, HostnameMismatchIsRefused) {
  TlsServer https("127.0.0.2", pki.server, echo);
  ASSERT_TRUE(https.ok());
  auto r = get(https.url("other.example.test"), trusting(pki.ca_file));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message,
            "fetch failed: SSL: no alternative certificate subject name matches target host name "
            "'other.example.test'");
  EXPECT_TRUE(https.requests().empty());
  // The same server under a name its certificate holds is fine.
  auto ok = get(https.url("www.example.test"), trusting(pki.ca_file));
  ASSERT_TRUE(ok.ok()) << err(ok);
  EXPECT_EQ(ok->body, "GET /\n");
}

// Redirects follow the fetch standard whatever the schemes: an https → http hop is followed when
// the policy allows its host, as a hop to another origin (the script's Authorization and Cookie
// stay behind), and is vetted like every hop.
TEST_F(BrokerTlsTest, RedirectFromHttpsToHttpIsACrossOriginHop) {
  FixtureServer plain("127.0.0.2", [](Conn& c, const SeenRequest& r) {
    c.send(http_response(200, "OK", {}, "plain " + r.target));
  });
  ASSERT_TRUE(plain.ok());
  const std::string landing = plain.url("api.example.test", "/landing");
  TlsServer https("127.0.0.2", pki.server, [&](const SeenRequest&) {
    return http_response(302, "Found", {{"Location", landing}}, "");
  });
  ASSERT_TRUE(https.ok());
  FetchRequest req;
  req.url = https.url("api.example.test", "/start");
  req.headers = {{"Authorization", "Bearer t0ken"}, {"Cookie", "s=1"}, {"X-Kept", "yes"}};
  auto r = fetch(req, trusting(pki.ca_file));
  ASSERT_TRUE(r.ok()) << err(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "plain /landing");
  EXPECT_EQ(r->url, landing);
  EXPECT_TRUE(r->redirected);
  ASSERT_EQ(https.requests().size(), 1u);
  EXPECT_EQ(https.requests()[0].header("authorization"), "Bearer t0ken");
  ASSERT_EQ(plain.requests().size(), 1u);
  const SeenRequest& hop = plain.requests()[0];
  EXPECT_FALSE(hop.has_header("authorization"));
  EXPECT_FALSE(hop.has_header("cookie"));
  EXPECT_EQ(hop.header("x-kept"), "yes");
}

TEST_F(BrokerTlsTest, RedirectFromHttpsToADeniedHttpHostIsRefused) {
  FixtureServer plain("127.0.0.2", [](Conn& c, const SeenRequest&) {
    c.send(http_response(200, "OK", {}, "must not be reached"));
  });
  ASSERT_TRUE(plain.ok());
  const std::string target = plain.url("secret.example.test", "/");
  TlsServer https("127.0.0.2", pki.server, [&](const SeenRequest&) {
    return http_response(302, "Found", {{"Location", target}}, "");
  });
  ASSERT_TRUE(https.ok());
  auto r = get(https.url("api.example.test"), trusting(pki.ca_file));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message,
            "blocked by network policy (deniedDomains: secret.example.test): " + target);
  EXPECT_EQ(https.requests().size(), 1u);
  EXPECT_EQ(plain.accepts(), 0);
}

}  // namespace
}  // namespace onemcp::broker
