// Integration tests of the broker's fetch engine against in-process HTTP fixtures on loopback
// (127.0.0.x and ::1 only) with a fake resolver: real sockets and real libcurl, never real DNS
// and never an address outside loopback. Every denial also checks that the fixture standing for
// the denied target accepted no connection at all.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "broker/fetcher.h"
#include "broker/resolver.h"
#include "fake_resolver.h"
#include "http_fixture.h"

namespace onemcp::broker {
namespace {

using namespace std::chrono_literals;
using testing::Conn;
using testing::FixtureServer;
using testing::SeenRequest;
using testing::http_response;

using testing::FakeResolver;
using testing::ip_addr;

// Names → loopback addresses. Each name has a sequence of answers: lookup n gets answer n (the
// last one repeats), so a test can make a name "rebind" between hops. "*.suffix" entries answer
// for every subdomain not listed exactly.

// Loopback fixtures are reachable (blockPrivateRanges off) but only for listed names; 127.0.0.9
// stands for 169.254.169.254 and is denied by address (FetchLimits::denied_addresses) and by
// name (metadata.example.test in deniedDomains).
policy::NetworkPolicy test_policy() {
  policy::NetworkPolicy p;
  p.allowed_domains = {"*.example.test", "example.test"};
  p.denied_domains = {"metadata.example.test", "*.evil.example.test"};
  p.deny_ip_literals = true;
  p.block_private_ranges = false;
  p.max_body_bytes = 1048576;
  p.max_redirects = 5;
  return p;
}

FetchLimits test_limits() {
  FetchLimits l;
  l.denied_addresses = {ip_addr("127.0.0.9")};
  return l;
}

FixtureServer::Handler serve(int status, std::string reason, std::string body,
                             std::vector<std::pair<std::string, std::string>> headers = {}) {
  return [=](Conn& c, const SeenRequest&) { c.send(http_response(status, reason, headers, body)); };
}

FixtureServer::Handler redirect(int status, std::string location) {
  return serve(status, "Redirect", "", {{"Location", location}});
}

// Echoes what the fixture received: "METHOD target\nbody".
FixtureServer::Handler echo() {
  return [](Conn& c, const SeenRequest& r) { c.send(http_response(200, "OK", {}, r.method + " " + r.target + "\n" + r.body)); };
}

struct BrokerTest : ::testing::Test {
  FakeResolver resolver;
  // The metadata stand-in: every test that could reach it checks it was never contacted.
  FixtureServer metadata{"127.0.0.9", serve(200, "OK", "secret-credentials")};

  void SetUp() override {
    ASSERT_TRUE(metadata.ok());
    resolver.set("metadata.example.test", {"127.0.0.9"});
    resolver.set("internal.example.test", {"127.0.0.9"});
  }
  Result<FetchResponse> get(const std::string& url, policy::NetworkPolicy p = test_policy(), FetchLimits l = test_limits()) {
    Fetcher f(std::move(p), resolver, std::move(l));
    FetchRequest r;
    r.url = url;
    return f.fetch(r);
  }
  static std::string err(const Result<FetchResponse>& r) { return r.ok() ? "(ok: status " + std::to_string(r->status) + ")" : r.error().message; }
};

// --- plain requests -------------------------------------------------------------------------

TEST_F(BrokerTest, GetServesBodyStatusAndFinalUrl) {
  FixtureServer api("127.0.0.2", serve(200, "OK", "hello"));
  resolver.set("api.example.test", {"127.0.0.2"});
  auto r = get(api.url("api.example.test", "/v1/items?q=1"));
  ASSERT_TRUE(r.ok()) << err(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->status_text, "OK");
  EXPECT_EQ(r->body, "hello");
  EXPECT_EQ(r->url, api.url("api.example.test", "/v1/items?q=1"));
  EXPECT_FALSE(r->redirected);
  EXPECT_EQ(resolver.lookups("api.example.test"), 1);  // resolved once, by the broker; curl never did
  ASSERT_EQ(api.requests().size(), 1u);
  EXPECT_EQ(api.requests()[0].target, "/v1/items?q=1");
  EXPECT_EQ(api.requests()[0].header("host"), "api.example.test:" + std::to_string(api.port()));
  EXPECT_EQ(api.requests()[0].header("user-agent"), "1mcp-broker");
}

TEST_F(BrokerTest, ResponseHeadersLowerCasedInOrderWithStatusText) {
  FixtureServer api("127.0.0.2", serve(418, "I'm a teapot", "short and stout",
                                       {{"X-First", "1"}, {"Set-Cookie", "a=1"}, {"set-cookie", "b=2"}, {"X-Spaces", "  v  "}}));
  resolver.set("api.example.test", {"127.0.0.2"});
  auto r = get(api.url("api.example.test"));
  ASSERT_TRUE(r.ok()) << err(r);
  EXPECT_EQ(r->status, 418);
  EXPECT_EQ(r->status_text, "I'm a teapot");
  std::vector<std::pair<std::string, std::string>> want = {
      {"x-first", "1"}, {"set-cookie", "a=1"}, {"set-cookie", "b=2"}, {"x-spaces", "v"}, {"content-length", "15"}, {"connection", "close"}};
  EXPECT_EQ(r->headers, want);
}

TEST_F(BrokerTest, ForbiddenRequestHeadersDroppedHostCannotBeOverridden) {
  FixtureServer api("127.0.0.2", echo());
  resolver.set("api.example.test", {"127.0.0.2"});
  Fetcher f(test_policy(), resolver, test_limits());
  FetchRequest req;
  req.method = "POST";
  req.url = api.url("api.example.test", "/h");
  req.body = "abc";
  req.headers = {{"Host", "internal.example.test"}, {"Content-Length", "100"}, {"Transfer-Encoding", "chunked"},
                 {"Connection", "keep-alive, X-Secret"}, {"Proxy-Authorization", "Basic eA=="}, {"X-Ok", "yes"},
                 {"User-Agent", "script/1.0"}};
  auto r = f.fetch(req);
  ASSERT_TRUE(r.ok()) << err(r);
  EXPECT_EQ(r->body, "POST /h\nabc");
  const SeenRequest seen = api.requests().at(0);
  EXPECT_EQ(seen.header("host"), "api.example.test:" + std::to_string(api.port()));
  EXPECT_EQ(seen.header("content-length"), "3");
  EXPECT_FALSE(seen.has_header("transfer-encoding"));
  EXPECT_FALSE(seen.has_header("proxy-authorization"));
  EXPECT_FALSE(seen.has_header("expect"));
  EXPECT_EQ(seen.header("x-ok"), "yes");
  EXPECT_EQ(seen.header("user-agent"), "script/1.0");
}

TEST_F(BrokerTest, HeaderInjectionRefusedBeforeConnecting) {
  FixtureServer api("127.0.0.2", echo());
  resolver.set("api.example.test", {"127.0.0.2"});
  Fetcher f(test_policy(), resolver, test_limits());
  FetchRequest req;
  req.url = api.url("api.example.test");
  req.headers = {{"X-A", "1\r\nHost: internal.example.test"}};
  auto r = f.fetch(req);
  EXPECT_EQ(err(r), "invalid value for request header X-A");
  req.headers = {{"Bad Name", "1"}};
  EXPECT_EQ(err(f.fetch(req)), "invalid request header name: Bad Name");
  req.headers = {};
  req.method = "CONNECT";
  EXPECT_EQ(err(f.fetch(req)), "request method CONNECT is not allowed");
  EXPECT_EQ(api.accepts(), 0);
}

TEST_F(BrokerTest, OversizedRequestHeadersAndGetWithBodyRefused) {
  FixtureServer api("127.0.0.2", echo());
  resolver.set("api.example.test", {"127.0.0.2"});
  Fetcher f(test_policy(), resolver, test_limits());
  FetchRequest req;
  req.url = api.url("api.example.test");
  req.headers = {{"X-Big", std::string(70000, 'h')}};
  EXPECT_EQ(err(f.fetch(req)), "request headers exceed 65536 bytes");
  req.headers = {};
  req.body = "not for a GET";
  EXPECT_EQ(err(f.fetch(req)), "a GET request cannot have a body");
  EXPECT_EQ(api.accepts(), 0);
}

TEST_F(BrokerTest, ProxyEnvironmentIgnored) {
  // A proxy in the environment would see (and could answer) every request: it must never be used.
  FixtureServer proxy("127.0.0.5", serve(200, "OK", "from the proxy"));
  FixtureServer api("127.0.0.2", serve(200, "OK", "direct"));
  resolver.set("api.example.test", {"127.0.0.2"});
  const std::string proxy_url = proxy.url("127.0.0.5");
  for (const char* var : {"http_proxy", "HTTPS_PROXY", "ALL_PROXY", "all_proxy"}) setenv(var, proxy_url.c_str(), 1);
  auto r = get(api.url("api.example.test"));
  for (const char* var : {"http_proxy", "HTTPS_PROXY", "ALL_PROXY", "all_proxy"}) unsetenv(var);
  ASSERT_TRUE(r.ok()) << err(r);
  EXPECT_EQ(r->body, "direct");
  EXPECT_EQ(proxy.accepts(), 0);
}

TEST_F(BrokerTest, HeadAndPutAndDelete) {
  FixtureServer api("127.0.0.2", echo());
  resolver.set("api.example.test", {"127.0.0.2"});
  Fetcher f(test_policy(), resolver, test_limits());
  FetchRequest req;
  req.url = api.url("api.example.test", "/r");
  req.method = "put";
  req.body = "data";
  auto r = f.fetch(req);
  ASSERT_TRUE(r.ok()) << err(r);
  EXPECT_EQ(r->body, "PUT /r\ndata");
  req.method = "DELETE";
  req.body.clear();
  r = f.fetch(req);
  ASSERT_TRUE(r.ok()) << err(r);
  EXPECT_EQ(r->body, "DELETE /r\n");
  req.method = "HEAD";
  r = f.fetch(req);
  ASSERT_TRUE(r.ok()) << err(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "");
  EXPECT_EQ(api.requests().at(2).method, "HEAD");
}

TEST_F(BrokerTest, Ipv6LoopbackFixtureThroughPinnedName) {
  FixtureServer api("::1", serve(200, "OK", "over v6"));
  if (!api.ok()) GTEST_SKIP() << "no IPv6 loopback here";
  resolver.set("v6.example.test", {"::1"});
  auto r = get(api.url("v6.example.test"));
  ASSERT_TRUE(r.ok()) << err(r);
  EXPECT_EQ(r->body, "over v6");
  EXPECT_EQ(api.accepts(), 1);
}

TEST_F(BrokerTest, UnresolvableNameIsAnError) {
  auto r = get("http://nowhere.example.test/");
  EXPECT_EQ(err(r), "could not resolve host nowhere.example.test: not in the test map");
}

TEST_F(BrokerTest, ConnectionRefusedIsAnError) {
  uint16_t port;
  {
    FixtureServer gone("127.0.0.2", echo());  // take an ephemeral port, then close it
    port = gone.port();
  }
  resolver.set("api.example.test", {"127.0.0.2"});
  const std::string url = "http://api.example.test:" + std::to_string(port) + "/";
  auto r = get(url);
  const std::string want = "fetch failed: Failed to connect to api.example.test port " + std::to_string(port);
  EXPECT_EQ(err(r).substr(0, want.size()), want);  // curl appends "after N ms: ...", N varies
  EXPECT_NE(err(r).find("Couldn't connect to server"), std::string::npos) << err(r);
}

// --- host and address policy ----------------------------------------------------------------

TEST_F(BrokerTest, DeniedDomainNeverContacted) {
  FixtureServer evil("127.0.0.3", serve(200, "OK", "evil"));
  resolver.set("x.evil.example.test", {"127.0.0.3"});
  auto r = get(evil.url("x.evil.example.test"));
  EXPECT_EQ(err(r), "blocked by network policy (deniedDomains: *.evil.example.test): " + evil.url("x.evil.example.test"));
  EXPECT_EQ(evil.accepts(), 0);
  EXPECT_EQ(resolver.lookups("x.evil.example.test"), 0);  // denied before resolving
}

TEST_F(BrokerTest, MetadataNameDenied) {
  auto r = get(metadata.url("metadata.example.test", "/latest/meta-data/"));
  EXPECT_EQ(err(r), "blocked by network policy (deniedDomains: metadata.example.test): " +
                        metadata.url("metadata.example.test", "/latest/meta-data/"));
  EXPECT_EQ(metadata.accepts(), 0);
}

TEST_F(BrokerTest, WildcardConfusionNotAllowed) {
  FixtureServer evil("127.0.0.3", serve(200, "OK", "evil"));
  resolver.set("evil-example.test", {"127.0.0.3"});
  resolver.set("example.test.attacker.test", {"127.0.0.3"});
  auto r = get(evil.url("evil-example.test"));
  EXPECT_EQ(err(r), "blocked by network policy (allowedDomains: no entry matches evil-example.test): " + evil.url("evil-example.test"));
  r = get(evil.url("example.test.attacker.test"));
  EXPECT_EQ(err(r), "blocked by network policy (allowedDomains: no entry matches example.test.attacker.test): " +
                        evil.url("example.test.attacker.test"));
  EXPECT_EQ(evil.accepts(), 0);
}

TEST_F(BrokerTest, IpLiteralsDenied) {
  FixtureServer local("127.0.0.1", serve(200, "OK", "local"));
  const std::string port = std::to_string(local.port());
  EXPECT_EQ(err(get("http://127.0.0.1:" + port + "/")), "blocked by network policy (denyIpLiterals): http://127.0.0.1:" + port + "/");
  // Decimal, hex and short forms are the same literal, normalised by the parser.
  EXPECT_EQ(err(get("http://2130706433:" + port + "/")), "blocked by network policy (denyIpLiterals): http://127.0.0.1:" + port + "/");
  EXPECT_EQ(err(get("http://0x7f.1:" + port + "/")), "blocked by network policy (denyIpLiterals): http://127.0.0.1:" + port + "/");
  EXPECT_EQ(err(get("http://[::ffff:127.0.0.1]:" + port + "/")),
            "blocked by network policy (denyIpLiterals): http://[::ffff:127.0.0.1]:" + port + "/");
  EXPECT_EQ(local.accepts(), 0);
}

TEST_F(BrokerTest, IpLiteralAllowedByExactEntryWhenLiteralsOn) {
  FixtureServer local("127.0.0.2", serve(200, "OK", "by address"));
  auto p = test_policy();
  p.deny_ip_literals = false;
  p.allowed_domains.push_back("127.0.0.2");
  auto r = get("http://2130706434:" + std::to_string(local.port()) + "/", p);  // 127.0.0.2 in decimal
  ASSERT_TRUE(r.ok()) << err(r);
  EXPECT_EQ(r->body, "by address");
  EXPECT_EQ(r->url, "http://127.0.0.2:" + std::to_string(local.port()) + "/");
  // The denied address stays denied even when the list would let a literal through.
  p.allowed_domains.push_back("127.0.0.9");
  r = get(metadata.url("127.0.0.9"), p);
  EXPECT_EQ(err(r), "blocked by network policy (127.0.0.9 is reserved): " + metadata.url("127.0.0.9"));
  EXPECT_EQ(metadata.accepts(), 0);
}

TEST_F(BrokerTest, BlockPrivateRangesRefusesLoopbackName) {
  FixtureServer api("127.0.0.2", serve(200, "OK", "private"));
  resolver.set("api.example.test", {"127.0.0.2"});
  auto p = test_policy();
  p.block_private_ranges = true;
  auto r = get(api.url("api.example.test"), p);
  EXPECT_EQ(err(r), "blocked by network policy (blockPrivateRanges: 127.0.0.2 is in 127.0.0.0/8 (loopback)): " +
                        api.url("api.example.test"));
  EXPECT_EQ(api.accepts(), 0);
}

TEST_F(BrokerTest, BlockPrivateRangesRefusesMappedAndV6Loopback) {
  FixtureServer api("127.0.0.2", serve(200, "OK", "private"));
  resolver.set("mapped.example.test", {"::ffff:127.0.0.2"});
  resolver.set("v6.example.test", {"::1"});
  auto p = test_policy();
  p.block_private_ranges = true;
  EXPECT_EQ(err(get(api.url("mapped.example.test"), p)),
            "blocked by network policy (blockPrivateRanges: ::ffff:127.0.0.2 embeds 127.0.0.2 (IPv4-mapped), in "
            "127.0.0.0/8 (loopback)): " + api.url("mapped.example.test"));
  EXPECT_EQ(err(get(api.url("v6.example.test"), p)),
            "blocked by network policy (blockPrivateRanges: ::1 is in ::1/128 (loopback)): " + api.url("v6.example.test"));
  EXPECT_EQ(api.accepts(), 0);
}

TEST_F(BrokerTest, MappedFormOfDeniedAddressDenied) {
  resolver.set("sneaky.example.test", {"::ffff:127.0.0.9"});
  auto r = get(metadata.url("sneaky.example.test"));
  EXPECT_EQ(err(r), "blocked by network policy (::ffff:127.0.0.9 is reserved): " + metadata.url("sneaky.example.test"));
  EXPECT_EQ(metadata.accepts(), 0);
}

TEST_F(BrokerTest, UserinfoAndBackslashRefusedByParser) {
  FixtureServer api("127.0.0.2", serve(200, "OK", "x"));
  resolver.set("api.example.test", {"127.0.0.2"});
  const std::string port = std::to_string(api.port());
  auto a = get("http://user:pass@api.example.test:" + port + "/");
  auto b = get("http://api.example.test:" + port + "\\@metadata.example.test/");
  auto c = get("http://metadata.example.test\\.api.example.test:" + port + "/");
  EXPECT_EQ(err(a), "invalid URL: credentials (user@host) are not allowed");
  EXPECT_EQ(err(b), "invalid URL: backslash");
  EXPECT_EQ(err(c), "invalid URL: backslash");
  EXPECT_EQ(err(get("http://api.example.test:" + port + "/a b")), "invalid URL: control character or space");
  EXPECT_EQ(api.accepts(), 0);
  EXPECT_EQ(metadata.accepts(), 0);
}

TEST_F(BrokerTest, NonHttpSchemesRefused) {
  EXPECT_EQ(err(get("file:///etc/passwd")), "scheme: file is not allowed");
  EXPECT_EQ(err(get("ftp://api.example.test/")), "scheme: ftp is not allowed");
  EXPECT_EQ(err(get("gopher://api.example.test/")), "scheme: gopher is not allowed");
  EXPECT_EQ(resolver.lookups("api.example.test"), 0);
}

// --- DNS rebinding --------------------------------------------------------------------------

TEST_F(BrokerTest, MixedAnswerAllowedAndDeniedIsRefused) {
  FixtureServer api("127.0.0.2", serve(200, "OK", "fine"));
  resolver.set("rebind.example.test", {"127.0.0.2", "127.0.0.9"});
  auto r = get(api.url("rebind.example.test"));
  EXPECT_EQ(err(r), "blocked by network policy (127.0.0.9 is reserved): " + api.url("rebind.example.test"));
  EXPECT_EQ(api.accepts(), 0);
  EXPECT_EQ(metadata.accepts(), 0);
}

TEST_F(BrokerTest, RebindOnSecondLookupIsCaughtOnTheRedirectHop) {
  // The fixture on 127.0.0.2 redirects to the same name on the metadata stand-in's port; the
  // name answers 127.0.0.2 first, then 127.0.0.9: the second hop re-resolves and is refused.
  FixtureServer api("127.0.0.2", redirect(302, metadata.url("rebind.example.test", "/latest")));
  resolver.sequence("rebind.example.test", {{"127.0.0.2"}, {"127.0.0.9"}});
  auto r = get(api.url("rebind.example.test"));
  EXPECT_EQ(err(r), "blocked by network policy (127.0.0.9 is reserved): " + metadata.url("rebind.example.test", "/latest"));
  EXPECT_EQ(api.accepts(), 1);
  EXPECT_EQ(metadata.accepts(), 0);
  EXPECT_EQ(resolver.lookups("rebind.example.test"), 2);
}

TEST_F(BrokerTest, RebindToPrivateRangeWithBlockPrivateRanges) {
  // With blockPrivateRanges on, a later lookup answering a loopback address is refused the same way.
  FixtureServer api("127.0.0.2", serve(200, "OK", "x"));
  resolver.sequence("rebind.example.test", {{"127.0.0.2"}});
  auto p = test_policy();
  p.block_private_ranges = true;
  auto r = get(api.url("rebind.example.test"), p);
  EXPECT_EQ(err(r), "blocked by network policy (blockPrivateRanges: 127.0.0.2 is in 127.0.0.0/8 (loopback)): " +
                        api.url("rebind.example.test"));
  EXPECT_EQ(api.accepts(), 0);
}

// --- redirects ------------------------------------------------------------------------------

TEST_F(BrokerTest, RedirectRelativeAbsoluteAndSchemeRelative) {
  FixtureServer b("127.0.0.3", [](Conn& c, const SeenRequest& r) {
    if (r.target == "/final") c.send(http_response(200, "OK", {}, "B final"));
    else c.send(http_response(404, "Not Found", {}, ""));
  });
  FixtureServer a("127.0.0.2", [&](Conn& c, const SeenRequest& r) {
    if (r.target == "/relative") c.send(http_response(302, "Found", {{"Location", "/absolute"}}, ""));
    else if (r.target == "/absolute") c.send(http_response(301, "Moved", {{"Location", a.url("api.example.test", "/scheme-relative")}}, ""));
    else if (r.target == "/scheme-relative") c.send(http_response(308, "Permanent", {{"Location", "//other.example.test:" + std::to_string(b.port()) + "/final"}}, ""));
    else c.send(http_response(404, "Not Found", {}, ""));
  });
  resolver.set("api.example.test", {"127.0.0.2"});
  resolver.set("other.example.test", {"127.0.0.3"});
  auto r = get(a.url("api.example.test", "/relative"));
  ASSERT_TRUE(r.ok()) << err(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "B final");
  EXPECT_TRUE(r->redirected);
  EXPECT_EQ(r->url, b.url("other.example.test", "/final"));
  EXPECT_EQ(a.accepts(), 3);
  EXPECT_EQ(b.accepts(), 1);
  EXPECT_EQ(resolver.lookups("api.example.test"), 3);  // every hop resolves and is vetted again
}

TEST_F(BrokerTest, RedirectToDeniedNameNeverContacted) {
  FixtureServer api("127.0.0.2", redirect(302, metadata.url("metadata.example.test", "/latest/meta-data/iam")));
  resolver.set("api.example.test", {"127.0.0.2"});
  auto r = get(api.url("api.example.test"));
  EXPECT_EQ(err(r), "blocked by network policy (deniedDomains: metadata.example.test): " +
                        metadata.url("metadata.example.test", "/latest/meta-data/iam"));
  EXPECT_EQ(metadata.accepts(), 0);
}

TEST_F(BrokerTest, RedirectToPrivateAddressLiteralRefused) {
  FixtureServer api("127.0.0.2", redirect(307, "http://2130706441:" + std::to_string(metadata.port()) + "/"));  // 127.0.0.9
  resolver.set("api.example.test", {"127.0.0.2"});
  EXPECT_EQ(err(get(api.url("api.example.test"))),
            "blocked by network policy (denyIpLiterals): " + metadata.url("127.0.0.9"));
  // With literals allowed and the address listed, the address rule still refuses it.
  auto p = test_policy();
  p.deny_ip_literals = false;
  p.allowed_domains.push_back("127.0.0.9");
  EXPECT_EQ(err(get(api.url("api.example.test"), p)), "blocked by network policy (127.0.0.9 is reserved): " + metadata.url("127.0.0.9"));
  EXPECT_EQ(metadata.accepts(), 0);
}

TEST_F(BrokerTest, RedirectToInternalNameResolvingToDeniedAddress) {
  FixtureServer api("127.0.0.2", redirect(302, metadata.url("internal.example.test")));
  resolver.set("api.example.test", {"127.0.0.2"});
  EXPECT_EQ(err(get(api.url("api.example.test"))), "blocked by network policy (127.0.0.9 is reserved): " + metadata.url("internal.example.test"));
  EXPECT_EQ(metadata.accepts(), 0);
}

TEST_F(BrokerTest, RedirectLoopStopsAtMaxRedirects) {
  FixtureServer api("127.0.0.2", redirect(302, "/again"));
  resolver.set("api.example.test", {"127.0.0.2"});
  EXPECT_EQ(err(get(api.url("api.example.test"))), "too many redirects (maxRedirects 5)");
  EXPECT_EQ(api.accepts(), 6);  // the request and 5 followed hops; the 6th redirect is refused
  auto p = test_policy();
  p.max_redirects = 0;
  EXPECT_EQ(err(get(api.url("api.example.test"), p)), "too many redirects (maxRedirects 0)");
  EXPECT_EQ(api.accepts(), 7);
}

TEST_F(BrokerTest, RedirectToFileAndFtpRefused) {
  for (std::string location : {"file:///etc/passwd", "ftp://api.example.test/x", "FILE:/etc/passwd", " \tjavascript:alert(1)", "gopher://x/"}) {
    FixtureServer api("127.0.0.2", redirect(302, location));
    resolver.set("api.example.test", {"127.0.0.2"});
    EXPECT_EQ(err(get(api.url("api.example.test"))), "redirect to a non-http(s) URL is not allowed") << location;
    EXPECT_EQ(api.accepts(), 1);
  }
}

TEST_F(BrokerTest, RedirectWithoutLocationIsReturnedAsIs) {
  FixtureServer api("127.0.0.2", serve(302, "Found", "no location"));
  resolver.set("api.example.test", {"127.0.0.2"});
  auto r = get(api.url("api.example.test"));
  ASSERT_TRUE(r.ok()) << err(r);
  EXPECT_EQ(r->status, 302);
  EXPECT_EQ(r->body, "no location");
  EXPECT_FALSE(r->redirected);
}

TEST_F(BrokerTest, PostThrough303BecomesGetWithoutBody) {
  FixtureServer api("127.0.0.2", [](Conn& c, const SeenRequest& r) {
    if (r.target == "/submit") c.send(http_response(303, "See Other", {{"Location", "/result"}}, ""));
    else c.send(http_response(200, "OK", {}, r.method + " " + r.target + " [" + r.body + "] ct=" + r.header("content-type")));
  });
  resolver.set("api.example.test", {"127.0.0.2"});
  Fetcher f(test_policy(), resolver, test_limits());
  FetchRequest req;
  req.method = "POST";
  req.url = api.url("api.example.test", "/submit");
  req.body = "payload";
  req.headers = {{"Content-Type", "text/plain"}, {"X-Keep", "1"}};
  auto r = f.fetch(req);
  ASSERT_TRUE(r.ok()) << err(r);
  EXPECT_EQ(r->body, "GET /result [] ct=");
  EXPECT_EQ(api.requests().at(1).header("x-keep"), "1");
  EXPECT_FALSE(api.requests().at(1).has_header("content-length"));
}

TEST_F(BrokerTest, PostThrough307And308KeepsMethodAndBody) {
  for (int status : {307, 308}) {
    FixtureServer api("127.0.0.2", [status](Conn& c, const SeenRequest& r) {
      if (r.target == "/submit") c.send(http_response(status, "Redirect", {{"Location", "/result"}}, ""));
      else c.send(http_response(200, "OK", {}, r.method + " " + r.target + " [" + r.body + "] ct=" + r.header("content-type")));
    });
    resolver.set("api.example.test", {"127.0.0.2"});
    Fetcher f(test_policy(), resolver, test_limits());
    FetchRequest req;
    req.method = "POST";
    req.url = api.url("api.example.test", "/submit");
    req.body = "payload";
    req.headers = {{"Content-Type", "text/plain"}};
    auto r = f.fetch(req);
    ASSERT_TRUE(r.ok()) << err(r);
    EXPECT_EQ(r->body, "POST /result [payload] ct=text/plain") << status;
  }
}

TEST_F(BrokerTest, PostThrough301BecomesGet) {
  FixtureServer api("127.0.0.2", [](Conn& c, const SeenRequest& r) {
    if (r.target == "/old") c.send(http_response(301, "Moved", {{"Location", "/new"}}, ""));
    else c.send(http_response(200, "OK", {}, r.method + " " + r.target + " [" + r.body + "]"));
  });
  resolver.set("api.example.test", {"127.0.0.2"});
  Fetcher f(test_policy(), resolver, test_limits());
  FetchRequest req;
  req.method = "POST";
  req.url = api.url("api.example.test", "/old");
  req.body = "payload";
  auto r = f.fetch(req);
  ASSERT_TRUE(r.ok()) << err(r);
  EXPECT_EQ(r->body, "GET /new []");
}

TEST_F(BrokerTest, CrossOriginRedirectDropsCredentials) {
  FixtureServer b("127.0.0.3", [](Conn& c, const SeenRequest& r) {
    c.send(http_response(200, "OK", {}, "auth=[" + r.header("authorization") + "] cookie=[" + r.header("cookie") + "] x=[" + r.header("x-other") + "]"));
  });
  FixtureServer a("127.0.0.2", redirect(302, b.url("other.example.test", "/")));
  resolver.set("api.example.test", {"127.0.0.2"});
  resolver.set("other.example.test", {"127.0.0.3"});
  Fetcher f(test_policy(), resolver, test_limits());
  FetchRequest req;
  req.url = a.url("api.example.test");
  req.headers = {{"Authorization", "Bearer s3cret"}, {"Cookie", "sid=1"}, {"X-Other", "kept"}};
  auto r = f.fetch(req);
  ASSERT_TRUE(r.ok()) << err(r);
  EXPECT_EQ(r->body, "auth=[] cookie=[] x=[kept]");
  EXPECT_EQ(a.requests().at(0).header("authorization"), "Bearer s3cret");
}

// --- bodies, sizes and time -----------------------------------------------------------------

TEST_F(BrokerTest, GzipDecodedBody) {
  FixtureServer api("127.0.0.2", serve(200, "OK", testing::gzip("hello, decoded world"), {{"Content-Encoding", "gzip"}}));
  resolver.set("api.example.test", {"127.0.0.2"});
  auto r = get(api.url("api.example.test"));
  ASSERT_TRUE(r.ok()) << err(r);
  EXPECT_EQ(r->body, "hello, decoded world");
  EXPECT_NE(api.requests().at(0).header("accept-encoding").find("gzip"), std::string::npos);
}

TEST_F(BrokerTest, GzipBombStopsAtMaxBodyBytesOfDecodedBytes) {
  const std::string bomb = testing::gzip(std::string(10u << 20, '\0'));  // 10 MiB of zeros, ~66 KB on the wire
  ASSERT_LT(bomb.size(), 100000u);
  FixtureServer api("127.0.0.2", serve(200, "OK", bomb, {{"Content-Encoding", "gzip"}}));
  resolver.set("api.example.test", {"127.0.0.2"});
  auto r = get(api.url("api.example.test"));
  EXPECT_EQ(err(r), "response body exceeds maxBodyBytes (1048576)");
}

TEST_F(BrokerTest, BodyExactlyAtLimitIsFine) {
  auto p = test_policy();
  p.max_body_bytes = 1000;
  FixtureServer api("127.0.0.2", serve(200, "OK", std::string(1000, 'x')));
  resolver.set("api.example.test", {"127.0.0.2"});
  auto r = get(api.url("api.example.test"), p);
  ASSERT_TRUE(r.ok()) << err(r);
  EXPECT_EQ(r->body.size(), 1000u);
  FixtureServer big("127.0.0.3", serve(200, "OK", std::string(1001, 'x')));
  resolver.set("big.example.test", {"127.0.0.3"});
  EXPECT_EQ(err(get(big.url("big.example.test"), p)), "response body exceeds maxBodyBytes (1000)");
}

TEST_F(BrokerTest, LyingContentLengthIsAnError) {
  FixtureServer api("127.0.0.2", [](Conn& c, const SeenRequest&) {
    c.send("HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\n0123456789");
  });
  resolver.set("api.example.test", {"127.0.0.2"});
  EXPECT_EQ(err(get(api.url("api.example.test"))), "fetch failed: transfer closed with 90 bytes remaining to read");
}

TEST_F(BrokerTest, EndlessChunkedBodyStopsAtMaxBodyBytes) {
  FixtureServer api("127.0.0.2", [](Conn& c, const SeenRequest&) {
    if (!c.send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")) return;
    const std::string chunk = "4000\r\n" + std::string(0x4000, 'z') + "\r\n";
    while (c.send(chunk)) {
    }
  });
  resolver.set("api.example.test", {"127.0.0.2"});
  EXPECT_EQ(err(get(api.url("api.example.test"))), "response body exceeds maxBodyBytes (1048576)");
}

TEST_F(BrokerTest, SlowServerTimesOutOnTime) {
  FixtureServer api("127.0.0.2", [](Conn& c, const SeenRequest&) {
    if (c.sleep_for(10s)) c.send(http_response(200, "OK", {}, "too late"));
  });
  resolver.set("api.example.test", {"127.0.0.2"});
  Fetcher f(test_policy(), resolver, test_limits());
  FetchRequest req;
  req.url = api.url("api.example.test");
  req.timeout_ms = 1000;
  auto start = std::chrono::steady_clock::now();
  auto r = f.fetch(req);
  auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(err(r), "timed out after 1000 ms");
  EXPECT_GE(elapsed, 950ms);
  EXPECT_LE(elapsed, 1500ms);
}

TEST_F(BrokerTest, TimeoutCoversAllHops) {
  // Each hop takes ~400 ms; the 1000 ms budget is for the whole chain, not per hop.
  FixtureServer api("127.0.0.2", [](Conn& c, const SeenRequest&) {
    if (c.sleep_for(400ms)) c.send(http_response(302, "Found", {{"Location", "/next"}}, ""));
  });
  resolver.set("api.example.test", {"127.0.0.2"});
  Fetcher f(test_policy(), resolver, test_limits());
  FetchRequest req;
  req.url = api.url("api.example.test");
  req.timeout_ms = 1000;
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(err(f.fetch(req)), "timed out after 1000 ms");
  EXPECT_LE(std::chrono::steady_clock::now() - start, 1500ms);
  EXPECT_EQ(api.accepts(), 3);
}

TEST_F(BrokerTest, UploadLargerThanMaxBodyBytesRefusedWithoutConnecting) {
  FixtureServer api("127.0.0.2", echo());
  resolver.set("api.example.test", {"127.0.0.2"});
  Fetcher f(test_policy(), resolver, test_limits());
  FetchRequest req;
  req.method = "POST";
  req.url = api.url("api.example.test");
  req.body = std::string(1048577, 'u');
  EXPECT_EQ(err(f.fetch(req)), "request body exceeds maxBodyBytes (1048576)");
  EXPECT_EQ(api.accepts(), 0);
  EXPECT_EQ(resolver.lookups("api.example.test"), 0);
}

TEST_F(BrokerTest, OversizedResponseHeadersRefused) {
  FixtureServer api("127.0.0.2", serve(200, "OK", "x", {{"X-Big", std::string(70000, 'h')}}));
  resolver.set("api.example.test", {"127.0.0.2"});
  EXPECT_EQ(err(get(api.url("api.example.test"))), "response headers exceed 65536 bytes");
}

TEST_F(BrokerTest, ConcurrencyCapRefusesBeyondMax) {
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  FixtureServer api("127.0.0.2", [&](Conn& c, const SeenRequest&) {
    {
      std::unique_lock lock(mu);
      cv.wait_for(lock, 10s, [&] { return release; });
    }
    c.send(http_response(200, "OK", {}, "done"));
  });
  resolver.set("api.example.test", {"127.0.0.2"});
  FetchLimits limits = test_limits();
  limits.max_concurrent = 2;
  Fetcher f(test_policy(), resolver, limits);
  FetchRequest req;
  req.url = api.url("api.example.test");
  std::vector<std::string> results(2);
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i)
    threads.emplace_back([&, i] {
      auto r = f.fetch(req);
      results[static_cast<size_t>(i)] = r.ok() ? r->body : r.error().message;
    });
  for (int i = 0; i < 500 && api.requests().size() < 2; ++i) std::this_thread::sleep_for(10ms);
  ASSERT_EQ(api.requests().size(), 2u);
  EXPECT_EQ(err(f.fetch(req)), "too many concurrent requests (2)");
  {
    std::lock_guard lock(mu);
    release = true;
  }
  cv.notify_all();
  for (auto& t : threads) t.join();
  EXPECT_EQ(results, (std::vector<std::string>{"done", "done"}));
  EXPECT_EQ(api.accepts(), 2);
  // The slots are released: the next request goes through.
  auto r = f.fetch(req);
  ASSERT_TRUE(r.ok()) << err(r);
  EXPECT_EQ(r->body, "done");
}

}  // namespace
}  // namespace onemcp::broker
