// tighten(): a call's policy may only narrow the server's, field by field.
#include <gtest/gtest.h>

#include "policy/config.h"

namespace onemcp::policy {
namespace {

using nlohmann::json;

Policy server() {
  Policy p;
  p.network.allowed_domains = {"*.example.com", "api.github.com"};
  p.network.denied_domains = {"bad.example.com"};
  p.network.max_body_bytes = 1000;
  p.network.max_redirects = 3;
  p.filesystem.readonly = {"/usr", "/etc/ssl"};
  p.filesystem.writable = {"/tmp", "/out"};
  p.limits = {30000, 256, 4096};
  return p;
}

std::string err(const json& partial, const Policy& base = server()) {
  auto r = tighten(base, partial);
  return r ? "" : r.error().message;
}

Policy ok(const json& partial, const Policy& base = server()) {
  auto r = tighten(base, partial);
  EXPECT_TRUE(r) << r.error().message;
  return r ? *r : Policy{};
}

TEST(Tighten, EmptyKeepsTheServerPolicy) { EXPECT_EQ(ok(json::object()), server()); }

TEST(Tighten, LimitsTakeTheMinimumAndClampRequestsAbove) {
  Policy p = ok({{"limits", {{"timeoutMs", 5000}, {"memMb", 9999999}, {"stdoutBytes", 100}}}});
  EXPECT_EQ(p.limits, (Limits{5000, 256, 100}));
  Policy q = ok({{"limits", {{"timeoutMs", 99999999999ull}}}});
  EXPECT_EQ(q.limits.timeout_ms, 30000u);
}

TEST(Tighten, LimitsNeverExceedTheHardMaxima) {
  Policy wide;
  wide.limits = {UINT64_MAX, UINT64_MAX, UINT64_MAX};
  EXPECT_EQ(ok(json::object(), wide).limits, kMaxLimits);
}

TEST(Tighten, BadValuesAreErrorsNamingTheField) {
  EXPECT_EQ(err({{"limits", {{"timeoutMs", -5}}}}),
            "policy.limits.timeoutMs: must be an integer ≥ 1 (got -5)");
  EXPECT_EQ(err({{"limits", {{"timeoutMs", 1.5}}}}),
            "policy.limits.timeoutMs: must be an integer ≥ 1 (got 1.5)");
  EXPECT_EQ(err({{"limits", {{"memMb", "64"}}}}),
            "policy.limits.memMb: must be an integer ≥ 16 (got \"64\")");
  EXPECT_EQ(err({{"limits", {{"memMb", nullptr}}}}),
            "policy.limits.memMb: must be an integer ≥ 16 (got null)");
  EXPECT_EQ(err({{"limits", {{"stdoutBytes", 1e300}}}}),
            "policy.limits.stdoutBytes: must be an integer ≥ 1 (got 1e+300, out of range)");
  EXPECT_EQ(err({{"limits", {{"timeoutMS", 5}}}}),
            "policy.limits.timeoutMS: unknown field (did you mean \"timeoutMs\"?)");
  EXPECT_EQ(err(nullptr), "policy: must be an object (got null)");
  EXPECT_EQ(err({{"network", {{"maxRedirects", -1}}}}),
            "policy.network.maxRedirects: must be an integer ≥ 0 (got -1)");
}

TEST(Tighten, MaxBodyBytesAndRedirectsTakeTheMinimum) {
  Policy p = ok({{"network", {{"maxBodyBytes", 10}, {"maxRedirects", 100}}}});
  EXPECT_EQ(p.network.max_body_bytes, 10u);
  EXPECT_EQ(p.network.max_redirects, 3u);
  EXPECT_EQ(ok({{"network", {{"maxBodyBytes", json::parse("18446744073709551615")}}}})
                .network.max_body_bytes,
            1000u);
}

TEST(Tighten, AllowedDomainsMustBeCoveredByTheServer) {
  Policy p = ok({{"network", {{"allowedDomains", {"api.example.com", "API.GITHUB.COM"}}}}});
  EXPECT_EQ(p.network.allowed_domains,
            (std::vector<std::string>{"api.example.com", "api.github.com"}));
  EXPECT_EQ(ok({{"network", {{"allowedDomains", {"*.example.com"}}}}}).network.allowed_domains,
            std::vector<std::string>{"*.example.com"});
  EXPECT_EQ(ok({{"network", {{"allowedDomains", {"*.a.example.com", "x.y.example.com"}}}}})
                .network.allowed_domains.size(),
            2u);
  EXPECT_TRUE(
      ok({{"network", {{"allowedDomains", json::array()}}}}).network.allowed_domains.empty());

  EXPECT_EQ(err({{"network", {{"allowedDomains", {"evil.com"}}}}}),
            "policy.network.allowedDomains: cannot widen the server policy (evil.com is not "
            "allowed on this server)");
  // The apex is not a subdomain; a wildcard is not covered by an exact entry.
  EXPECT_NE(err({{"network", {{"allowedDomains", {"example.com"}}}}}), "");
  EXPECT_NE(err({{"network", {{"allowedDomains", {"*.github.com"}}}}}), "");
  EXPECT_NE(err({{"network", {{"allowedDomains", {"evil-example.com"}}}}}), "");
  EXPECT_NE(err({{"network", {{"allowedDomains", {"*.com"}}}}}), "");
  Policy none = server();
  none.network.allowed_domains.clear();
  EXPECT_NE(err({{"network", {{"allowedDomains", {"api.example.com"}}}}}, none), "");
}

TEST(Tighten, DeniedDomainsAreUnioned) {
  Policy p = ok({{"network", {{"deniedDomains", {"x.example.com", "bad.example.com"}}}}});
  EXPECT_EQ(p.network.denied_domains,
            (std::vector<std::string>{"bad.example.com", "x.example.com"}));
  EXPECT_EQ(p.network.allowed_domains, server().network.allowed_domains);
}

TEST(Tighten, IpLiteralsAndPrivateRangesCanOnlyBeTurnedOn) {
  EXPECT_EQ(err({{"network", {{"denyIpLiterals", false}}}}),
            "policy.network.denyIpLiterals: cannot widen the server policy (IP literals are denied "
            "on this server)");
  EXPECT_EQ(err({{"network", {{"blockPrivateRanges", false}}}}),
            "policy.network.blockPrivateRanges: cannot widen the server policy (private ranges are "
            "blocked on this server)");
  Policy lax = server();
  lax.network.deny_ip_literals = false;
  lax.network.block_private_ranges = false;
  Policy p = ok({{"network", {{"denyIpLiterals", true}, {"blockPrivateRanges", true}}}}, lax);
  EXPECT_TRUE(p.network.deny_ip_literals);
  EXPECT_TRUE(p.network.block_private_ranges);
  Policy q = ok({{"network", {{"denyIpLiterals", false}}}}, lax);
  EXPECT_FALSE(q.network.deny_ip_literals);
  EXPECT_TRUE(ok({{"network", {{"denyIpLiterals", true}}}}).network.deny_ip_literals);
}

TEST(Tighten, WritableMustBeInsideServerWritable) {
  EXPECT_EQ(ok({{"filesystem", {{"writable", {"/tmp/work"}}}}}).filesystem.writable,
            std::vector<std::string>{"/tmp/work"});
  EXPECT_TRUE(ok({{"filesystem", {{"writable", json::array()}}}}).filesystem.writable.empty());
  EXPECT_EQ(err({{"filesystem", {{"writable", {"/tmp", "/etc"}}}}}),
            "policy.filesystem.writable: cannot widen the server policy (/etc is not writable on "
            "this server)");
  EXPECT_NE(err({{"filesystem", {{"writable", {"/tmpx"}}}}}), "");  // segment boundary
  EXPECT_NE(err({{"filesystem", {{"writable", {"/"}}}}}), "");
  EXPECT_NE(err({{"filesystem", {{"writable", {"/usr"}}}}}), "");  // readable is not writable
  EXPECT_NE(err({{"filesystem", {{"writable", {"/tmp/../etc"}}}}}).find("normalized absolute path"),
            std::string::npos);
}

TEST(Tighten, ReadonlyMustBeReadableOnTheServer) {
  EXPECT_EQ(ok({{"filesystem", {{"readonly", {"/usr/lib", "/tmp"}}}}}).filesystem.readonly,
            (std::vector<std::string>{"/usr/lib", "/tmp"}));
  EXPECT_EQ(err({{"filesystem", {{"readonly", {"/"}}}}}),
            "policy.filesystem.readonly: cannot widen the server policy (/ is not readable on this "
            "server)");
  EXPECT_NE(err({{"filesystem", {{"readonly", {"/etc"}}}}}), "");
  EXPECT_NE(err({{"filesystem", {{"readonly", {"/etc/ssl/../shadow"}}}}}), "");
  EXPECT_EQ(err({{"filesystem", {{"readonly", {"relative"}}}}}),
            "policy.filesystem.readonly[0]: must match the pattern ^/ (got \"relative\")");
}

TEST(Tighten, ReportsEveryWideningAtOnce) {
  std::string e =
      err({{"network", {{"denyIpLiterals", false}}}, {"filesystem", {{"writable", {"/etc"}}}}});
  EXPECT_NE(e.find("denyIpLiterals"), std::string::npos);
  EXPECT_NE(e.find("/etc is not writable"), std::string::npos);
}

using Patterns = std::vector<std::string>;

Patterns mcps(const json& requested, const Patterns& base) {
  Policy p = server();
  p.mcps = base;
  return ok({{"mcps", requested}}, p).mcps;
}

TEST(Tighten, McpsOmittedKeepsTheServerList) {
  Policy p = server();
  p.mcps = {"fs", "web/search"};
  EXPECT_EQ(ok(json::object(), p).mcps, p.mcps);
  EXPECT_EQ(ok(json::object()).mcps, Patterns{"*"});
}

TEST(Tighten, McpsIsTheIntersection) {
  // Anything within "*".
  EXPECT_EQ(mcps({"fs", "web/search"}, {"*"}), (Patterns{"fs", "web/search"}));
  EXPECT_EQ(mcps({"*"}, {"*"}), Patterns{"*"});
  // "*" asks for no more than the server's list.
  EXPECT_EQ(mcps({"*"}, {"fs", "web/search"}), (Patterns{"fs", "web/search"}));
  // A tool within an allowed server; a whole server narrowed to the tools the server allows.
  EXPECT_EQ(mcps({"fs/read"}, {"fs"}), Patterns{"fs/read"});
  EXPECT_EQ(mcps({"fs"}, {"fs/read", "fs/list", "web"}), (Patterns{"fs/read", "fs/list"}));
  EXPECT_EQ(mcps({"fs/*"}, {"fs/read"}), Patterns{"fs/read"});
  // What the server does not allow is dropped, not an error.
  EXPECT_EQ(mcps({"fs/write", "web", "fs/read"}, {"fs/read"}), Patterns{"fs/read"});
  EXPECT_EQ(mcps({"github"}, {"fs"}), Patterns{});
  EXPECT_EQ(mcps({"fs"}, {}), Patterns{});
  EXPECT_EQ(mcps(json::array(), {"*"}), Patterns{});
  // No duplicates in the result.
  EXPECT_EQ(mcps({"fs/read", "fs"}, {"fs/read", "fs"}), (Patterns{"fs/read", "fs"}));
}

TEST(Tighten, McpsResultAllowsExactlyWhatBothAllow) {
  const std::vector<Patterns> lists = {{"*"},
                                       {},
                                       {"fs"},
                                       {"fs/read"},
                                       {"fs/read", "web"},
                                       {"web/search", "fs/list"},
                                       {"fs", "web/search"}};
  const std::vector<std::pair<std::string, std::string>> calls = {
      {"fs", "read"},    {"fs", "list"},   {"fs", "write"},
      {"web", "search"}, {"web", "fetch"}, {"git", "log"}};
  for (const auto& base : lists) {
    for (const auto& requested : lists) {
      Policy b = server(), r = server();
      b.mcps = base;
      r.mcps = requested;
      Policy got = ok({{"mcps", requested}}, b);
      for (const auto& [s, t] : calls) {
        EXPECT_EQ(mcp_allowed(got, s, t), mcp_allowed(b, s, t) && mcp_allowed(r, s, t))
            << json(base) << " ∩ " << json(requested) << " for " << s << "/" << t;
      }
    }
  }
}

TEST(Tighten, McpsBadValuesAreErrors) {
  EXPECT_EQ(err({{"mcps", "fs"}}), "policy.mcps: must be an array (got \"fs\")");
  EXPECT_NE(err({{"mcps", {"fs tool"}}}).find("policy.mcps[0]: must match the pattern"),
            std::string::npos);
}

TEST(McpAllowed, Patterns) {
  Policy p;
  EXPECT_TRUE(mcp_allowed(p, "anything", "at_all"));  // the default is "*"
  p.mcps = {};
  EXPECT_FALSE(mcp_allowed(p, "fs", "read"));
  p.mcps = {"fs", "web/search"};
  EXPECT_TRUE(mcp_allowed(p, "fs", "read"));
  EXPECT_TRUE(mcp_allowed(p, "fs", "write"));
  EXPECT_TRUE(mcp_allowed(p, "web", "search"));
  EXPECT_FALSE(mcp_allowed(p, "web", "fetch"));
  EXPECT_FALSE(mcp_allowed(p, "web", "search2"));
  EXPECT_FALSE(mcp_allowed(p, "FS", "read"));  // names are exact
  EXPECT_FALSE(mcp_allowed(p, "f", "read"));
  EXPECT_FALSE(mcp_allowed(p, "fs/read", ""));
  EXPECT_FALSE(mcp_allowed(p, "web/search", ""));
  EXPECT_FALSE(mcp_allowed(p, "web", ""));
  p.mcps = {"fs/a/b"};  // a tool name may itself hold a "/"
  EXPECT_TRUE(mcp_allowed(p, "fs", "a/b"));
  EXPECT_FALSE(mcp_allowed(p, "fs", "a"));
}

TEST(DomainMatching, LabelBoundariesAndCase) {
  EXPECT_TRUE(domain_matches("example.com", "EXAMPLE.com"));
  EXPECT_FALSE(domain_matches("example.com", "a.example.com"));
  EXPECT_TRUE(domain_matches("*.example.com", "a.example.com"));
  EXPECT_TRUE(domain_matches("*.example.com", "a.b.example.com"));
  EXPECT_FALSE(domain_matches("*.example.com", "example.com"));
  EXPECT_FALSE(domain_matches("*.example.com", "evil-example.com"));
  EXPECT_FALSE(domain_matches("*.example.com", ".example.com"));
  EXPECT_TRUE(domain_covers("*.example.com", "*.a.example.com"));
  EXPECT_TRUE(domain_covers("*.example.com", "*.example.com"));
  EXPECT_FALSE(domain_covers("*.a.example.com", "*.example.com"));
  EXPECT_FALSE(domain_covers("a.example.com", "*.a.example.com"));
}

TEST(PathWithin, SegmentBoundaries) {
  EXPECT_TRUE(path_within("/tmp", "/tmp"));
  EXPECT_TRUE(path_within("/tmp/a", "/tmp"));
  EXPECT_FALSE(path_within("/tmpa", "/tmp"));
  EXPECT_TRUE(path_within("/anything", "/"));
  EXPECT_FALSE(path_within("/", "/tmp"));
}

}  // namespace
}  // namespace onemcp::policy
