// The egress decision procedure: URL parsing, host verdicts, address verdicts. Every row states
// the exact outcome and rule, because a changed rule text is a changed audit log.
#include "policy/egress.h"

#include <gtest/gtest.h>
#include <sys/un.h>

#include <string>
#include <vector>

namespace onemcp::policy {
namespace {

// --- parse_url on absolute URLs ---------------------------------------------------------------

struct UrlCase {
  std::string input;
  std::string want;  // serialize() on success, else the exact error message
  bool ok = true;
  std::string ip = "";  // the canonical address when the host is an IP literal
};

UrlCase ok(std::string in, std::string out, std::string ip = "") {
  return {std::move(in), std::move(out), true, std::move(ip)};
}
UrlCase fails(std::string in, std::string err) {
  return {std::move(in), std::move(err), false, ""};
}

void PrintTo(const UrlCase& c, std::ostream* os) { *os << testing::PrintToString(c.input); }

class EgressParseUrl : public testing::TestWithParam<UrlCase> {};

TEST_P(EgressParseUrl, ExactOutcome) {
  const UrlCase& c = GetParam();
  auto r = parse_url(c.input);
  if (!c.ok) {
    ASSERT_FALSE(r) << r->serialize();
    EXPECT_EQ(r.error().message, c.want);
    return;
  }
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->serialize(), c.want);
  EXPECT_EQ(r->host_is_ip, !c.ip.empty());
  EXPECT_EQ(r->ip, c.ip);
  if (r->host_is_ip) {
    EXPECT_EQ(r->host, r->ip);
  }
  // What is vetted is what is fetched: the serialized form parses back to the same URL.
  auto again = parse_url(r->serialize());
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(*again, *r);
}

const std::string kLong = "http://a.test/" + std::string(8192, 'a');

INSTANTIATE_TEST_SUITE_P(
    Egress, EgressParseUrl,
    testing::Values(
        // Normalization.
        ok("http://example.test", "http://example.test/"),
        ok("HTTP://EXAMPLE.Test/Path", "http://example.test/Path"),
        ok("http://good.test.", "http://good.test/"),
        ok("http://good.test.:8080/", "http://good.test:8080/"),
        ok("https://a.test:443/", "https://a.test/"),
        ok("http://a.test:443/", "http://a.test:443/"),
        ok("https://a.test:8443/x", "https://a.test:8443/x"),
        ok("http://a.test:/", "http://a.test/"), ok("http://a.test:0080/", "http://a.test/"),
        ok("http://a.test?x=1", "http://a.test/?x=1"),
        ok("http://a.test/x#frag", "http://a.test/x"),
        ok("http://good.test#@evil.test/", "http://good.test/"),
        ok("http://good.test?@evil.test/", "http://good.test/?@evil.test/"),
        ok("  http://a.test/x \n", "http://a.test/x"),
        ok("http://a.test/a/./b/../c", "http://a.test/a/c"),
        ok("http://a.test/a/%2e%2E/c/%2e", "http://a.test/c/"),
        ok("http://a.test/../../x", "http://a.test/x"),
        ok("http://a.test/\xC3\xBC?q=\xC3\xBC'", "http://a.test/%C3%BC?q=%C3%BC%27"),
        ok("http://a.test/<s>{`}", "http://a.test/%3Cs%3E%7B%60%7D"),
        ok("http://a.test/p@x?u=a@b", "http://a.test/p@x?u=a@b"),
        ok("http://r3---sn-abc.video.test/", "http://r3---sn-abc.video.test/"),
        ok("http://a_b.test/", "http://a_b.test/"),
        // IDNA (UTS #46, non-transitional).
        ok("http://b\xC3\xBC"
           "cher.example",
           "http://xn--bcher-kva.example/"),
        ok("http://xn--bcher-kva.example/", "http://xn--bcher-kva.example/"),
        ok("http://XN--BCHER-KVA.example/", "http://xn--bcher-kva.example/"),
        ok("http://"
           "\xEF\xBD\x85\xEF\xBD\x98\xEF\xBD\x81\xEF\xBD\x8D\xEF\xBD\x90\xEF\xBD\x8C\xEF\xBD\x85"
           "\xEF\xBC\x8E\xEF\xBD\x83\xEF\xBD\x8F\xEF\xBD\x8D/",  // ｅｘａｍｐｌｅ．ｃｏｍ
           "http://example.com/"),
        ok("http://a\xE3\x80\x82test/", "http://a.test/"),         // ideographic full stop
        ok("http://fa\xC3\x9F.test/", "http://xn--fa-hia.test/"),  // ß kept (non-transitional)
        // IPv4 literals, every notation.
        ok("http://127.0.0.1/", "http://127.0.0.1/", "127.0.0.1"),
        ok("http://2130706433", "http://127.0.0.1/", "127.0.0.1"),
        ok("http://0x7f000001", "http://127.0.0.1/", "127.0.0.1"),
        ok("http://0x7f.1", "http://127.0.0.1/", "127.0.0.1"),
        ok("http://0X7F.0.0.1", "http://127.0.0.1/", "127.0.0.1"),
        ok("http://0177.0.0.1", "http://127.0.0.1/", "127.0.0.1"),
        ok("http://017700000001", "http://127.0.0.1/", "127.0.0.1"),
        ok("http://127.1", "http://127.0.0.1/", "127.0.0.1"),
        ok("http://127.0.1", "http://127.0.0.1/", "127.0.0.1"),
        ok("http://0x7f.0x0.00.1", "http://127.0.0.1/", "127.0.0.1"),
        ok("http://127.0.0.1.:81", "http://127.0.0.1:81/", "127.0.0.1"),
        ok("http://0/", "http://0.0.0.0/", "0.0.0.0"),
        ok("http://0x/", "http://0.0.0.0/", "0.0.0.0"),
        ok("http://4294967295", "http://255.255.255.255/", "255.255.255.255"),
        ok("http://169.254.43518", "http://169.254.169.254/", "169.254.169.254"),
        ok("http://\xEF\xBC\x91\xEF\xBC\x92\xEF\xBC\x97.0.0.1/", "http://127.0.0.1/", "127.0.0.1"),
        // IPv6 literals.
        ok("http://[::1]", "http://[::1]/", "::1"),
        ok("http://[::ffff:127.0.0.1]", "http://[::ffff:127.0.0.1]/", "::ffff:127.0.0.1"),
        ok("http://[::FFFF:7F00:1]:8080/", "http://[::ffff:127.0.0.1]:8080/", "::ffff:127.0.0.1"),
        ok("https://[2606:4700:0:0::1111]/", "https://[2606:4700::1111]/", "2606:4700::1111"),
        // Refused.
        fails("http://a@evil.test", "invalid URL: credentials (user@host) are not allowed"),
        fails("http://user:pass@good.test/",
              "invalid URL: credentials (user@host) are not allowed"),
        fails("http://good.test:80@evil.test/",
              "invalid URL: credentials (user@host) are not allowed"),
        fails("http://evil.test\\@good.test", "invalid URL: backslash"),
        fails("http://good.test\\path", "invalid URL: backslash"),
        fails("http:\\\\evil.test\\", "invalid URL: backslash"),
        fails("http://a.test/\tx", "invalid URL: control character or space"),
        fails("http://evil.\ntest/", "invalid URL: control character or space"),
        fails("http://a.test/a b", "invalid URL: control character or space"),
        fails(std::string("http://a.test\0.evil.test/", 25),
              "invalid URL: control character or space"),
        fails("http://a.test/\x7fx", "invalid URL: control character or space"),
        fails("http://a.test/x\x7f", "invalid URL: control character or space"),
        fails("http://[fe80::1%25eth0]/", "invalid URL: IPv6 zone ids are not allowed"),
        fails("http://[::1", "invalid URL: invalid IPv6 address"),
        fails("http://[::1]x/", "invalid URL: invalid IPv6 address"),
        fails("http://[1.2.3.4]/", "invalid URL: invalid IPv6 address"),
        fails("http://[::ffff:127.0.0.01]/", "invalid URL: invalid IPv6 address"),
        fails("http://1.2.3.4.5", "invalid URL: invalid IPv4 address"),
        fails("http://256.0.0.1", "invalid URL: invalid IPv4 address"),
        fails("http://1.2.3.256", "invalid URL: invalid IPv4 address"),
        fails("http://1.2.65536", "invalid URL: invalid IPv4 address"),
        fails("http://4294967296", "invalid URL: invalid IPv4 address"),
        fails("http://0x100000000", "invalid URL: invalid IPv4 address"),
        fails("http://09.0.0.1", "invalid URL: invalid IPv4 address"),
        fails("http://example.123", "invalid URL: invalid IPv4 address"),
        fails("http://good.test.0x1", "invalid URL: invalid IPv4 address"),
        fails("http://a.test:0/", "invalid URL: port 0 is outside 1..65535"),
        fails("http://a.test:99999/", "invalid URL: port 99999 is outside 1..65535"),
        fails("http://a.test:65536/", "invalid URL: port 65536 is outside 1..65535"),
        fails("http://a.test:8o/", "invalid URL: invalid port 8o"),
        fails("http://a.test:80:80/", "invalid URL: invalid port 80:80"),
        fails("javascript:alert(1)", "scheme: javascript is not allowed"),
        fails("file:///etc/passwd", "scheme: file is not allowed"),
        fails("FTP://a.test/", "scheme: ftp is not allowed"),
        fails("data:text/plain,hi", "scheme: data is not allowed"),
        fails("gopher://a.test:25/", "scheme: gopher is not allowed"),
        fails("http:evil.test", "invalid URL: missing \"//\" after the scheme"),
        fails("//a.test/", "invalid URL: relative URL without a base"),
        fails("http://", "invalid URL: empty host"),
        fails("http://:80/", "invalid URL: empty host"),
        fails("http:///evil.test/", "invalid URL: empty host"),
        fails("http://./", "invalid URL: empty host"),
        fails("http://a..test/", "invalid URL: host has an empty label"),
        fails("http://good.test../", "invalid URL: host has an empty label"),
        fails("http://%2e/", "invalid URL: percent-encoded host"),
        fails("http://ex%61mple.test/", "invalid URL: percent-encoded host"),
        fails("http://127.0.0.%31/", "invalid URL: percent-encoded host"),
        fails("http://a*b.test/",
              "invalid URL: host contains a character not allowed in a domain name"),
        fails("http://good.test\xEF\xBC\xA0"
              "evil.test/",  // fullwidth '@' maps to '@'
              "invalid URL: host contains a character not allowed in a domain name"),
        fails("http://good.test\xEF\xBC\x8F"
              "evil.test/",  // fullwidth '/' maps to '/'
              "invalid URL: host contains a character not allowed in a domain name"),
        fails(
            "http://xn--zz.test/",
            "invalid URL: host is not a valid domain name (string contains invalid punycode data)"),
        fails("http://" + std::string(64, 'a') + ".test/",
              "invalid URL: host has a label longer than 63 characters"),
        fails(kLong, "invalid URL: longer than 8192 bytes")));

// --- parse_url on redirect Locations, resolved against the previous hop ----------------------

struct RedirectCase {
  std::string location;
  std::string want;  // serialize() or the exact error
  bool ok = true;
};

void PrintTo(const RedirectCase& c, std::ostream* os) { *os << testing::PrintToString(c.location); }

class EgressRedirect : public testing::TestWithParam<RedirectCase> {};

TEST_P(EgressRedirect, ResolvesAgainstTheBase) {
  auto base = parse_url("https://api.good.test/a/b/c?x=1");
  ASSERT_TRUE(base);
  const RedirectCase& c = GetParam();
  auto r = parse_url(c.location, &*base);
  if (!c.ok) {
    ASSERT_FALSE(r) << r->serialize();
    EXPECT_EQ(r.error().message, c.want);
    return;
  }
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->serialize(), c.want);
}

INSTANTIATE_TEST_SUITE_P(
    Egress, EgressRedirect,
    testing::Values(RedirectCase{"/x", "https://api.good.test/x"},
                    RedirectCase{"//other.test/", "https://other.test/"},
                    RedirectCase{"//other.test:8443", "https://other.test:8443/"},
                    RedirectCase{"../y", "https://api.good.test/a/y"},
                    RedirectCase{"?q", "https://api.good.test/a/b/c?q"},
                    RedirectCase{"d?e=f", "https://api.good.test/a/b/d?e=f"},
                    RedirectCase{"./", "https://api.good.test/a/b/"},
                    RedirectCase{"../../../../z", "https://api.good.test/z"},
                    RedirectCase{"", "https://api.good.test/a/b/c?x=1"},
                    RedirectCase{"#top", "https://api.good.test/a/b/c?x=1"},
                    RedirectCase{"https:/x", "https://api.good.test/x"},
                    RedirectCase{"http://plain.test/", "http://plain.test/"},
                    RedirectCase{"http:/x", "invalid URL: missing \"//\" after the scheme", false},
                    RedirectCase{"//user@evil.test/",
                                 "invalid URL: credentials (user@host) are not allowed", false},
                    RedirectCase{"\\\\evil.test/", "invalid URL: backslash", false},
                    RedirectCase{"/\\evil.test/", "invalid URL: backslash", false},
                    RedirectCase{"//[::1%251]/", "invalid URL: IPv6 zone ids are not allowed",
                                 false},
                    RedirectCase{"file:///etc/passwd", "scheme: file is not allowed", false}));

// --- decide_host ------------------------------------------------------------------------------

NetworkPolicy policy() {
  NetworkPolicy p;
  p.allowed_domains = {"*.example.test", "api.good.test", "xn--bcher-kva.example", "10.0.0.5"};
  p.denied_domains = {"*.evil.test", "bad.example.test"};
  return p;
}

NetworkPolicy literals_allowed() {
  NetworkPolicy p = policy();
  p.deny_ip_literals = false;
  return p;
}

struct HostCase {
  std::string url;
  Verdict verdict;
  std::string rule;
  NetworkPolicy policy = onemcp::policy::policy();
};

void PrintTo(const HostCase& c, std::ostream* os) { *os << testing::PrintToString(c.url); }

class EgressHost : public testing::TestWithParam<HostCase> {};

TEST_P(EgressHost, ExactVerdictAndRule) {
  const HostCase& c = GetParam();
  auto u = parse_url(c.url);
  ASSERT_TRUE(u) << u.error().message;
  Decision d = decide_host(c.policy, *u);
  EXPECT_EQ(d.verdict, c.verdict) << d.rule;
  EXPECT_EQ(d.rule, c.rule);
}

constexpr Verdict kAllow = Verdict::allow;
constexpr Verdict kDeny = Verdict::deny;

NetworkPolicy with(std::vector<std::string> allowed, std::vector<std::string> denied = {},
                   bool deny_ip = true) {
  NetworkPolicy p;
  p.allowed_domains = std::move(allowed);
  p.denied_domains = std::move(denied);
  p.deny_ip_literals = deny_ip;
  return p;
}

INSTANTIATE_TEST_SUITE_P(
    Egress, EgressHost,
    testing::Values(
        HostCase{"https://a.example.test/", kAllow, "allowedDomains: *.example.test"},
        HostCase{"https://a.b.example.test/", kAllow, "allowedDomains: *.example.test"},
        // The apex is not a subdomain: it must be listed on its own.
        HostCase{"https://example.test/", kDeny, "allowedDomains: no entry matches example.test"},
        HostCase{"https://evil-example.test/", kDeny,
                 "allowedDomains: no entry matches evil-example.test"},
        HostCase{"https://aexample.test/", kDeny, "allowedDomains: no entry matches aexample.test"},
        HostCase{"https://exampletest/", kDeny, "allowedDomains: no entry matches exampletest"},
        HostCase{"https://example.test.evil.test/", kDeny, "deniedDomains: *.evil.test"},
        HostCase{"https://a.example.test.other.test/", kDeny,
                 "allowedDomains: no entry matches a.example.test.other.test"},
        // deniedDomains wins over a matching allowedDomains entry.
        HostCase{"https://bad.example.test/", kDeny, "deniedDomains: bad.example.test"},
        HostCase{"https://BAD.Example.TEST./x", kDeny, "deniedDomains: bad.example.test"},
        HostCase{"https://x.bad.example.test/", kAllow, "allowedDomains: *.example.test"},
        HostCase{"https://API.GOOD.TEST./", kAllow, "allowedDomains: api.good.test"},
        HostCase{"https://xapi.good.test/", kDeny,
                 "allowedDomains: no entry matches xapi.good.test"},
        HostCase{"https://v1.api.good.test/", kDeny,
                 "allowedDomains: no entry matches v1.api.good.test"},
        HostCase{"https://b\xC3\xBC"
                 "cher.example/",
                 kAllow, "allowedDomains: xn--bcher-kva.example"},
        HostCase{"https://anything.test/", kDeny, "allowedDomains: no entry matches anything.test",
                 with({})},
        HostCase{"https://example.test/", kAllow, "allowedDomains: Example.TEST.",
                 with({"Example.TEST."})},
        HostCase{"https://a.b.example.test/", kDeny, "deniedDomains: *.B.example.test",
                 with({"*.example.test"}, {"*.B.example.test"})},
        HostCase{"https://a.good.test/", kAllow, "allowedDomains: *.good.test",
                 with({"bogus..entry", "*.good.test"})},
        // IP literals in any notation.
        HostCase{"http://127.0.0.1/", kDeny, "denyIpLiterals"},
        HostCase{"http://2130706433/", kDeny, "denyIpLiterals"},
        HostCase{"http://0x7f.1/", kDeny, "denyIpLiterals"},
        HostCase{"http://10.0.0.5/", kDeny, "denyIpLiterals"},
        HostCase{"http://[::1]/", kDeny, "denyIpLiterals"},
        HostCase{"http://[::ffff:127.0.0.1]/", kDeny, "denyIpLiterals"},
        // With literals allowed they still need an exact entry, compared by address.
        HostCase{"http://10.0.0.5/", kAllow, "allowedDomains: 10.0.0.5", literals_allowed()},
        HostCase{"http://0xa000005/", kAllow, "allowedDomains: 10.0.0.5", literals_allowed()},
        HostCase{"http://10.0.0.6/", kDeny, "allowedDomains: no entry matches 10.0.0.6",
                 literals_allowed()},
        HostCase{"http://[::1]/", kDeny, "allowedDomains: no entry matches ::1",
                 literals_allowed()},
        HostCase{"http://127.0.0.1/", kDeny, "allowedDomains: no entry matches 127.0.0.1",
                 with({"*.0.0.1"}, {}, false)},
        HostCase{"http://2130706433/", kDeny, "deniedDomains: 127.0.0.1",
                 with({"127.0.0.1"}, {"127.0.0.1"}, false)},
        HostCase{"http://127.0.0.1/", kDeny, "deniedDomains: 0x7f.1",
                 with({"127.0.0.1"}, {"0x7f.1"}, false)}));

TEST(EgressHostScheme, OnlyHttpAndHttpsEvenForAHandMadeUrl) {
  Url u;
  u.scheme = "ftp";
  u.host = "a.example.test";
  u.port = 21;
  u.path_and_query = "/";
  Decision d = decide_host(policy(), u);
  EXPECT_EQ(d.verdict, kDeny);
  EXPECT_EQ(d.rule, "scheme: ftp is not allowed");
}

TEST(EgressHostScheme, ScriptRelativeRedirectToADeniedHost) {
  auto first = parse_url("https://a.example.test/start");
  ASSERT_TRUE(first);
  ASSERT_TRUE(decide_host(policy(), *first).allowed());
  auto hop = parse_url("//x.evil.test/next", &*first);
  ASSERT_TRUE(hop);
  EXPECT_EQ(hop->serialize(), "https://x.evil.test/next");
  Decision d = decide_host(policy(), *hop);
  EXPECT_EQ(d.verdict, kDeny);
  EXPECT_EQ(d.rule, "deniedDomains: *.evil.test");
}

// --- decide_address ---------------------------------------------------------------------------

sockaddr_storage addr(const std::string& text) {
  auto a = parse_ip_address(text);
  EXPECT_TRUE(a) << text;
  return a ? *a : sockaddr_storage{};
}

struct AddrCase {
  std::string address;
  std::string rule;  // "" = public: allowed with "blockPrivateRanges: <address> is public"
};

AddrCase pub(std::string a) { return {std::move(a), ""}; }
AddrCase in(std::string a, std::string range) {
  std::string rule = "blockPrivateRanges: " + a + " is in " + range;
  return {std::move(a), std::move(rule)};
}
AddrCase embeds(std::string a, std::string v4, std::string how, std::string range) {
  std::string rule = "blockPrivateRanges: " + a + " embeds " + v4 + " (" + how + "), in " + range;
  return {std::move(a), std::move(rule)};
}

void PrintTo(const AddrCase& c, std::ostream* os) { *os << c.address; }

class EgressAddress : public testing::TestWithParam<AddrCase> {};

TEST_P(EgressAddress, ExactVerdictAndRule) {
  const AddrCase& c = GetParam();
  NetworkPolicy p;
  sockaddr_storage a = addr(c.address);
  Decision d = decide_address(p, a);
  if (c.rule.empty()) {
    EXPECT_EQ(d.verdict, kAllow) << d.rule;
    EXPECT_EQ(d.rule, "blockPrivateRanges: " + c.address + " is public");
    EXPECT_FALSE(is_private_or_special(a));
  } else {
    EXPECT_EQ(d.verdict, kDeny) << d.rule;
    EXPECT_EQ(d.rule, c.rule);
    EXPECT_TRUE(is_private_or_special(a));
  }
  // Off means off, for every address.
  p.block_private_ranges = false;
  Decision off = decide_address(p, a);
  EXPECT_EQ(off.verdict, kAllow);
  EXPECT_EQ(off.rule, "blockPrivateRanges: off");
}

const std::string kThis = "0.0.0.0/8 (this network)", kTen = "10.0.0.0/8 (private)",
                  kCgn = "100.64.0.0/10 (shared address space)", kLo = "127.0.0.0/8 (loopback)",
                  kLink = "169.254.0.0/16 (link-local, cloud metadata)",
                  k172 = "172.16.0.0/12 (private)",
                  kIetf = "192.0.0.0/24 (IETF protocol assignments)",
                  kTest1 = "192.0.2.0/24 (documentation)", k192 = "192.168.0.0/16 (private)",
                  kBench = "198.18.0.0/15 (benchmarking)",
                  kTest2 = "198.51.100.0/24 (documentation)",
                  kTest3 = "203.0.113.0/24 (documentation)", kMcast = "224.0.0.0/4 (multicast)",
                  kRes = "240.0.0.0/4 (reserved)", kBcast = "255.255.255.255/32 (broadcast)";

INSTANTIATE_TEST_SUITE_P(
    Egress, EgressAddress,
    testing::Values(
        // Every IPv4 range: first and last address in, and the neighbours just outside.
        in("0.0.0.0", kThis), in("0.255.255.255", kThis), pub("1.0.0.0"), pub("9.255.255.255"),
        in("10.0.0.0", kTen), in("10.255.255.255", kTen), pub("11.0.0.0"), pub("100.63.255.255"),
        in("100.64.0.0", kCgn), in("100.127.255.255", kCgn), pub("100.128.0.0"),
        pub("126.255.255.255"), in("127.0.0.0", kLo), in("127.0.0.1", kLo),
        in("127.255.255.255", kLo), pub("128.0.0.0"), pub("169.253.255.255"),
        in("169.254.0.0", kLink), in("169.254.169.254", kLink), in("169.254.255.255", kLink),
        pub("169.255.0.0"), pub("172.15.255.255"), in("172.16.0.0", k172),
        in("172.31.255.255", k172), pub("172.32.0.0"), pub("191.255.255.255"),
        in("192.0.0.0", kIetf), in("192.0.0.255", kIetf), pub("192.0.1.0"), pub("192.0.1.255"),
        in("192.0.2.0", kTest1), in("192.0.2.255", kTest1), pub("192.0.3.0"),
        pub("192.167.255.255"), in("192.168.0.0", k192), in("192.168.255.255", k192),
        pub("192.169.0.0"), pub("198.17.255.255"), in("198.18.0.0", kBench),
        in("198.19.255.255", kBench), pub("198.20.0.0"), pub("198.51.99.255"),
        in("198.51.100.0", kTest2), in("198.51.100.255", kTest2), pub("198.51.101.0"),
        pub("203.0.112.255"), in("203.0.113.0", kTest3), in("203.0.113.255", kTest3),
        pub("203.0.114.0"), pub("223.255.255.255"), in("224.0.0.0", kMcast),
        in("239.255.255.255", kMcast), in("240.0.0.0", kRes), in("255.255.255.254", kRes),
        in("255.255.255.255", kBcast), pub("8.8.8.8"), pub("1.1.1.1"),
        // IPv6 ranges and their edges.
        in("::", "::/128 (unspecified)"), in("::1", "::1/128 (loopback)"),
        embeds("::2", "0.0.0.2", "IPv4-compatible", kThis),
        pub("fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), in("fc00::", "fc00::/7 (unique local)"),
        in("fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "fc00::/7 (unique local)"), pub("fe00::"),
        pub("fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), in("fe80::", "fe80::/10 (link-local)"),
        in("fe80::1", "fe80::/10 (link-local)"),
        in("febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "fe80::/10 (link-local)"),
        in("fec0::", "fec0::/10 (site-local)"),
        in("feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "fec0::/10 (site-local)"),
        in("ff00::", "ff00::/8 (multicast)"), in("ff02::1", "ff00::/8 (multicast)"),
        in("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ff00::/8 (multicast)"),
        pub("2001:db7:ffff:ffff:ffff:ffff:ffff:ffff"),
        in("2001:db8::", "2001:db8::/32 (documentation)"),
        in("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "2001:db8::/32 (documentation)"),
        pub("2001:db9::"), in("64:ff9b:1::", "64:ff9b:1::/48 (local-use NAT64)"),
        in("64:ff9b:1::808:808", "64:ff9b:1::/48 (local-use NAT64)"),
        in("64:ff9b:1:ffff:ffff:ffff:ffff:ffff", "64:ff9b:1::/48 (local-use NAT64)"),
        pub("64:ff9b:2::808:808"), pub("2606:4700::1111"), pub("2a00:1450:4001:80b::200e"),
        // IPv4 embedded in IPv6: loopback and cloud metadata through every encoding.
        embeds("::ffff:127.0.0.1", "127.0.0.1", "IPv4-mapped", kLo),
        embeds("::ffff:169.254.169.254", "169.254.169.254", "IPv4-mapped", kLink),
        embeds("::ffff:10.1.2.3", "10.1.2.3", "IPv4-mapped", kTen), pub("::ffff:8.8.8.8"),
        embeds("::ffff:0:7f00:1", "127.0.0.1", "IPv4-translated", kLo),
        embeds("::127.0.0.1", "127.0.0.1", "IPv4-compatible", kLo),
        embeds("::169.254.169.254", "169.254.169.254", "IPv4-compatible", kLink),
        embeds("64:ff9b::7f00:1", "127.0.0.1", "NAT64", kLo),
        embeds("64:ff9b::a9fe:a9fe", "169.254.169.254", "NAT64", kLink), pub("64:ff9b::808:808"),
        embeds("2002:7f00:1::", "127.0.0.1", "6to4", kLo),
        embeds("2002:a9fe:a9fe:1:2:3:4:5", "169.254.169.254", "6to4", kLink),
        pub("2002:808:808::1"),
        embeds("2001:0:4136:e378:8000:63bf:80ff:fffe", "127.0.0.1", "Teredo", kLo),
        embeds("2001:0:4136:e378:8000:63bf:5601:5601", "169.254.169.254", "Teredo", kLink),
        pub("2001:0:4136:e378:8000:63bf:f7f7:f7f7")));

TEST(EgressAddressFamily, NonIpAddressesAreAlwaysDenied) {
  sockaddr_storage ss{};
  ss.ss_family = AF_UNIX;
  NetworkPolicy p;
  p.block_private_ranges = false;
  Decision d = decide_address(p, ss);
  EXPECT_EQ(d.verdict, kDeny);
  EXPECT_EQ(d.rule, "address: family 1 is not IP");
  EXPECT_TRUE(is_private_or_special(ss));
}

TEST(EgressAddressFamily, ParseIpAddressIsStrict) {
  EXPECT_FALSE(parse_ip_address("127.1"));
  EXPECT_FALSE(parse_ip_address("[::1]"));
  EXPECT_FALSE(parse_ip_address("fe80::1%eth0"));
  EXPECT_EQ(parse_ip_address("::1")->ss_family, AF_INET6);
  EXPECT_EQ(parse_ip_address("10.0.0.1")->ss_family, AF_INET);
}

// --- The whole procedure, as the broker runs it ------------------------------------------------

// Host verdict, then, for an allowed IP literal, the address verdict.
std::string run(const NetworkPolicy& p, const std::string& url) {
  auto u = parse_url(url);
  if (!u) return u.error().message;
  Decision h = decide_host(p, *u);
  if (!h.allowed() || !u->host_is_ip) return h.rule;
  auto a = literal_address(*u);
  if (!a) return a.error().message;
  return decide_address(p, *a).rule;
}

TEST(EgressPipeline, BlockPrivateRangesOffStillDeniesLiterals) {
  NetworkPolicy p = with({"127.0.0.1", "10.0.0.5"});
  p.block_private_ranges = false;
  EXPECT_EQ(run(p, "http://127.0.0.1/"), "denyIpLiterals");
  EXPECT_EQ(run(p, "http://0x7f.1/"), "denyIpLiterals");
  EXPECT_EQ(decide_address(p, addr("127.0.0.1")).rule, "blockPrivateRanges: off");
  p.deny_ip_literals = false;
  EXPECT_EQ(run(p, "http://0x7f.1/"), "blockPrivateRanges: off");
}

TEST(EgressPipeline, AnAllowedLiteralStillMeetsTheRangeCheck) {
  NetworkPolicy p = literals_allowed();
  EXPECT_EQ(run(p, "http://0xa000005/"), "blockPrivateRanges: 10.0.0.5 is in 10.0.0.0/8 (private)");
  p.allowed_domains.push_back("8.8.8.8");
  EXPECT_EQ(run(p, "http://134744072/"), "blockPrivateRanges: 8.8.8.8 is public");
}

TEST(EgressPipeline, LiteralAddressNeedsALiteral) {
  auto u = parse_url("http://a.example.test/");
  ASSERT_TRUE(u);
  auto a = literal_address(*u);
  ASSERT_FALSE(a);
  EXPECT_EQ(a.error().message, "not an IP literal: a.example.test");
  auto v6 = parse_url("http://[::ffff:169.254.169.254]/");
  ASSERT_TRUE(v6);
  EXPECT_EQ(decide_address(NetworkPolicy{}, *literal_address(*v6)).rule,
            "blockPrivateRanges: ::ffff:169.254.169.254 embeds 169.254.169.254 (IPv4-mapped), in "
            "169.254.0.0/16 (link-local, cloud metadata)");
}

}  // namespace
}  // namespace onemcp::policy
