// 1mcp.config.json: defaults, every field's error message, files on disk.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "policy/config.h"
#include "policy/schema.h"
#include "policy/schemas.h"

namespace onemcp::policy {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

// "" when valid, else the error.
std::string err(const json& j) {
  auto c = parse_config(j);
  return c ? "" : c.error().message;
}

// A config with `value` at JSON pointer `ptr`.
json with(const std::string& ptr, json value) {
  json j = json::object();
  j[json::json_pointer(ptr)] = std::move(value);
  return j;
}

class TempDir : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/onemcp-policy-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string file(const std::string& name, const std::string& content) {
    std::string p = dir_ + "/" + name;
    std::ofstream(p, std::ios::binary) << content;
    return p;
  }
  std::string dir_;
};

TEST(Config, MountsStayOutOfTheSandboxsOwnPaths) {
  // /mcps holds a run's upstream tool declarations (server/mcps_tree.h).
  for (const char* path : {"/mcps", "/mcps/x", "/etc/x"}) {
    json m = {{"host", "/srv/data"}, {"path", path}};
    EXPECT_NE(err(with("/mounts", json::array({m}))).find("is reserved for the sandbox itself"),
              std::string::npos)
        << path;
  }
  EXPECT_EQ(err(with("/mounts", json::array({{{"host", "/srv/data"}, {"path", "/data"}}}))), "");
}

TEST(Config, EmptyObjectGivesTheDefaults) {
  auto c = parse_config(json::object());
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(*c, Config{});
  EXPECT_EQ(c->policy.limits.timeout_ms, 60000u);
  EXPECT_EQ(c->policy.filesystem.readonly, std::vector<std::string>{"/"});
  EXPECT_TRUE(c->policy.network.allowed_domains.empty());
}

TEST(Config, TheReadmeExampleParses) {
  json j = json::parse(R"({
    "language": "js",
    "npm": {"dependencies": {}, "lockfile": ""},
    "policy": {
      "network": {"allowedDomains": ["api.github.com", "*.npmjs.org", "api.context7.com"],
                  "deniedDomains": [], "denyIpLiterals": true, "blockPrivateRanges": true,
                  "maxBodyBytes": 5242880, "maxRedirects": 5},
      "filesystem": {"readonly": ["/"], "writable": ["/tmp", "/out"]},
      "limits": {"timeoutMs": 60000, "memMb": 256, "stdoutBytes": 1048576}
    },
    "mcps": [
      {"name": "filesystem", "transport": "stdio", "command": "npx",
       "args": ["-y", "@modelcontextprotocol/server-filesystem", "/private/tmp"]},
      {"name": "sentry", "transport": "http", "endpoint": "https://mcp.sentry.dev/mcp"},
      {"name": "context7", "transport": "http", "endpoint": "https://api.context7.com/mcp"}
    ],
    "sessionTtlMs": 300000, "signingKeyPath": ".1mcp/keys/", "cacheDir": ".1mcp/capsules/"
  })");
  auto c = parse_config(j);
  ASSERT_TRUE(c) << c.error().message;
  ASSERT_EQ(c->mcps.size(), 3u);
  EXPECT_EQ(c->mcps[0].command, "npx");
  EXPECT_EQ(c->mcps[0].args.size(), 3u);
  EXPECT_EQ(c->mcps[1].endpoint, "https://mcp.sentry.dev/mcp");
  EXPECT_EQ(c->policy.network.allowed_domains[1], "*.npmjs.org");
  EXPECT_EQ(c->npm["lockfile"], "");
}

TEST(Config, FullRoundTrip) {
  Config c;
  c.language = "py";
  c.pip = {{"requirements", {"requests==2.32.3"}}, {"indexUrl", "https://pypi.org/simple"}};
  c.policy.network.allowed_domains = {"example.com", "*.example.org"};
  c.policy.network.denied_domains = {"bad.example.org"};
  c.policy.network.deny_ip_literals = false;
  c.policy.network.max_redirects = 0;
  c.policy.filesystem.writable = {"/tmp"};
  c.policy.limits = {1000, 64, 4096};
  c.mcps.push_back({"fs", "stdio", "npx", {"-y", "x"}, {{"HOME", "/tmp"}}, "", {}});
  c.mcps.push_back(
      {"web", "http", "", {}, {}, "http://localhost:1/mcp", {{"Authorization", "Bearer t"}}});
  c.session_ttl_ms = 1000;
  c.python.preload = {"pandas", "matplotlib.pyplot"};
  c.capsules = {65536, 1000, 2000, 0};
  auto back = parse_config(to_json(c));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(*back, c);
}

TEST(Config, ServerSection) {
  auto c = parse_config(json::object());
  ASSERT_TRUE(c);
  EXPECT_EQ(c->server, ServerConfig{});
  EXPECT_EQ(c->server.max_runs_per_client, 4u);  // a quarter of the 16 slots
  c = parse_config(json{{"server", {{"runSlots", 2}}}});
  ASSERT_TRUE(c);
  EXPECT_EQ(c->server.max_runs_per_client, 1u);  // never 0
  c = parse_config(json{{"server", {{"runSlots", 40}, {"maxRunsPerClient", 40}}}});
  ASSERT_TRUE(c);
  EXPECT_EQ(c->server.max_runs_per_client, 40u);
  c = parse_config(json{{"server",
                         {{"allowedHosts", {"MCP.Example.com", "[::1]:9000"}},
                          {"allowedOrigins", {"http://LocalHost:6274"}}}}});
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->server.allowed_hosts, (std::vector<std::string>{"mcp.example.com", "[::1]:9000"}));
  EXPECT_EQ(c->server.allowed_origins, std::vector<std::string>{"http://localhost:6274"});

  auto bad = parse_config(json{{"server", {{"runSlots", 4}, {"maxRunsPerClient", 5}}}});
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("server.maxRunsPerClient"), std::string::npos);
  for (const char* host : {"*.example.com", "evil.com/path", "a b", "", "http://x", "x:"}) {
    EXPECT_FALSE(parse_config(json{{"server", {{"allowedHosts", {host}}}}})) << host;
  }
  for (const char* origin : {"localhost:6274", "http://x/", "http://x/path", "ftp://x", "null"}) {
    EXPECT_FALSE(parse_config(json{{"server", {{"allowedOrigins", {origin}}}}})) << origin;
  }
  EXPECT_FALSE(parse_config(json{{"server", {{"readTimeoutMs", 0}}}}));
  EXPECT_FALSE(parse_config(json{{"server", {{"shutdownGrace", 0}}}}));
}

TEST(Config, DomainsAreLowerCased) {
  auto c = parse_config(with("/policy/network/allowedDomains", {"API.Example.COM"}));
  ASSERT_TRUE(c);
  EXPECT_EQ(c->policy.network.allowed_domains[0], "api.example.com");
}

TEST(Config, UnknownFieldsAreErrorsEverywhere) {
  EXPECT_EQ(err({{"langauge", "js"}}), "langauge: unknown field (did you mean \"language\"?)");
  EXPECT_EQ(err(with("/policy/network/allowdDomains", json::array())),
            "policy.network.allowdDomains: unknown field (did you mean \"allowedDomains\"?)");
  EXPECT_EQ(err(with("/policy/limit", json::object())),
            "policy.limit: unknown field (did you mean \"limits\"?)");
  EXPECT_EQ(err(with("/policy/limits/timeout", 5)),
            "policy.limits.timeout: unknown field (did you mean \"timeoutMs\"?)");
  EXPECT_EQ(err(with("/policy/limits/cpu", 5)), "policy.limits.cpu: unknown field");
  EXPECT_EQ(err(with("/policy/filesystem/writeable", json::array())),
            "policy.filesystem.writeable: unknown field (did you mean \"writable\"?)");
  EXPECT_EQ(err(with("/npm/deps", json::object())), "npm.deps: unknown field");
  EXPECT_EQ(err(with("/pip/index", "x")), "pip.index: unknown field");
  EXPECT_EQ(
      err({{"mcps", {{{"name", "a"}, {"transport", "stdio"}, {"command", "x"}, {"cmd", "y"}}}}}),
      "mcps[0].cmd: unknown field");
}

TEST(Config, TopLevelFieldErrors) {
  EXPECT_EQ(err(json::array()), "(root): must be an object (got an array)");
  EXPECT_EQ(err({{"language", "ts"}}), "language: must be one of \"js\", \"py\" (got \"ts\")");
  EXPECT_EQ(err({{"sessionTtlMs", 10}}), "sessionTtlMs: must be an integer ≥ 1000 (got 10)");
  EXPECT_EQ(err({{"sessionTtlMs", "5000"}}),
            "sessionTtlMs: must be an integer ≥ 1000 (got \"5000\")");
  EXPECT_EQ(err({{"sessionTtlMs", 1e300}}),
            "sessionTtlMs: must be an integer ≥ 1000 (got 1e+300, out of range)");
  EXPECT_EQ(err({{"signingKeyPath", ""}}), "signingKeyPath: must not be empty");
  EXPECT_EQ(err({{"cacheDir", 1}}), "cacheDir: must be a string (got 1)");
  EXPECT_EQ(err({{"capsules", {{"maxTotalBytes", 1}}}}),
            "capsules.maxTotalBytes: must be an integer from 65536 to 1099511627776 (got 1)");
  EXPECT_EQ(err({{"capsules", {{"gcIntervalMs", 0}}}}),
            "capsules.gcIntervalMs: must be an integer from 1000 to 86400000 (got 0)");
  EXPECT_EQ(err({{"capsules", {{"maxAge", 5}}}}),
            "capsules.maxAge: unknown field (did you mean \"maxAgeMs\"?)");
  EXPECT_EQ(err({{"$schema", 1}}), "$schema: must be a string (got 1)");
  EXPECT_EQ(err({{"npm", {{"dependencies", {{"lodash", 4}}}}}}),
            "npm.dependencies.lodash: must be a string (got 4)");
  EXPECT_EQ(err({{"npm", {{"lockfile", nullptr}}}}), "npm.lockfile: must be a string (got null)");
  EXPECT_EQ(err({{"pip", {{"requirements", "requests"}}}}),
            "pip.requirements: must be an array (got \"requests\")");
  EXPECT_EQ(err({{"pip", {{"wheelUrls", {"file:///x.whl"}}}}}),
            "pip.wheelUrls[0]: must match the pattern ^https?:// (got \"file:///x.whl\")");
  EXPECT_EQ(err({{"pip", {{"indexUrl", "ftp://x"}}}}),
            "pip.indexUrl: must match the pattern ^https?:// (got \"ftp://x\")");
  EXPECT_EQ(err({{"mcps", json::object()}}), "mcps: must be an array (got an object)");
}

TEST(Config, LimitErrors) {
  EXPECT_EQ(err(with("/policy/limits/timeoutMs", -5)),
            "policy.limits.timeoutMs: must be an integer from 1 to 600000 (got -5)");
  EXPECT_EQ(err(with("/policy/limits/timeoutMs", 0)),
            "policy.limits.timeoutMs: must be an integer from 1 to 600000 (got 0)");
  EXPECT_EQ(err(with("/policy/limits/timeoutMs", 600001)),
            "policy.limits.timeoutMs: must be an integer from 1 to 600000 (got 600001)");
  EXPECT_EQ(err(with("/policy/limits/timeoutMs", 1.5)),
            "policy.limits.timeoutMs: must be an integer from 1 to 600000 (got 1.5)");
  EXPECT_EQ(err(with("/policy/limits/timeoutMs", "1000")),
            "policy.limits.timeoutMs: must be an integer from 1 to 600000 (got \"1000\")");
  EXPECT_EQ(err(with("/policy/limits/timeoutMs", nullptr)),
            "policy.limits.timeoutMs: must be an integer from 1 to 600000 (got null)");
  EXPECT_EQ(err(with("/policy/limits/memMb", 8)),
            "policy.limits.memMb: must be an integer from 16 to 16384 (got 8)");
  EXPECT_EQ(err(with("/policy/limits/memMb", json::parse("18446744073709551616"))),
            "policy.limits.memMb: must be an integer from 16 to 16384 (got 1.8446744073709552e+19, "
            "out of range)");
  EXPECT_EQ(err(with("/policy/limits/memMb", json::parse("18446744073709551615"))),
            "policy.limits.memMb: must be an integer from 16 to 16384 (got 18446744073709551615)");
  EXPECT_EQ(err(with("/policy/limits/stdoutBytes", (64u << 20) + 1)),
            "policy.limits.stdoutBytes: must be an integer from 1 to 67108864 (got 67108865)");
  EXPECT_EQ(err(with("/policy/limits", 5)), "policy.limits: must be an object (got 5)");
  // Integral floats are integers.
  auto c = parse_config(with("/policy/limits/timeoutMs", 1000.0));
  ASSERT_TRUE(c);
  EXPECT_EQ(c->policy.limits.timeout_ms, 1000u);
}

TEST(Config, NetworkErrors) {
  EXPECT_EQ(err(with("/policy/network/allowedDomains", "example.com")),
            "policy.network.allowedDomains: must be an array (got \"example.com\")");
  EXPECT_NE(err(with("/policy/network/allowedDomains", {"http://example.com"}))
                .find("policy.network.allowedDomains[0]: must match the pattern"),
            std::string::npos);
  EXPECT_NE(
      err(with("/policy/network/allowedDomains", {"*"})).find("allowedDomains[0]: must match"),
      std::string::npos);
  EXPECT_NE(
      err(with("/policy/network/deniedDomains", {"a..b"})).find("deniedDomains[0]: must match"),
      std::string::npos);
  EXPECT_EQ(err(with("/policy/network/allowedDomains", {"a.com", "a.com"})),
            "policy.network.allowedDomains[1]: duplicate of policy.network.allowedDomains[0] (got "
            "\"a.com\")");
  EXPECT_EQ(err(with("/policy/network/denyIpLiterals", "yes")),
            "policy.network.denyIpLiterals: must be true or false (got \"yes\")");
  EXPECT_EQ(err(with("/policy/network/blockPrivateRanges", 1)),
            "policy.network.blockPrivateRanges: must be true or false (got 1)");
  EXPECT_EQ(err(with("/policy/network/maxBodyBytes", -1)),
            "policy.network.maxBodyBytes: must be an integer ≥ 0 (got -1)");
  EXPECT_EQ(err(with("/policy/network/maxRedirects", 21)),
            "policy.network.maxRedirects: must be an integer from 0 to 20 (got 21)");
  auto big =
      parse_config(with("/policy/network/maxBodyBytes", json::parse("18446744073709551615")));
  ASSERT_TRUE(big);
  EXPECT_EQ(big->policy.network.max_body_bytes, UINT64_MAX);
}

TEST(Config, FilesystemErrors) {
  EXPECT_EQ(err(with("/policy/filesystem/writable", {"tmp"})),
            "policy.filesystem.writable[0]: must match the pattern ^/ (got \"tmp\")");
  for (const char* bad : {"/tmp/../etc", "/tmp/./x", "//tmp", "/tmp/", "/a//b", "/.."}) {
    EXPECT_EQ(
        err(with("/policy/filesystem/readonly", {"/", bad})),
        std::string("policy.filesystem.readonly[1]: must be a normalized absolute path (no \".\", "
                    "\"..\" or empty segments, no trailing \"/\") (got \"") +
            bad + "\")")
        << bad;
  }
  EXPECT_EQ(err(with("/policy/filesystem/readonly", {"/", "/a..b/.x"})), "");
}

TEST(Config, McpErrors) {
  auto mcp = [](json m) { return json{{"mcps", json::array({std::move(m)})}}; };
  EXPECT_EQ(err(mcp({{"transport", "stdio"}, {"command", "x"}})), "mcps[0].name: required");
  EXPECT_EQ(err(mcp({{"name", "a"}})), "mcps[0].transport: required");
  EXPECT_EQ(err(mcp({{"name", "a"}, {"transport", "ftp"}})),
            "mcps[0].transport: must be one of \"stdio\", \"http\" (got \"ftp\")");
  EXPECT_EQ(err(mcp({{"name", "a"}, {"transport", "stdio"}})), "mcps[0].command: required");
  EXPECT_EQ(err(mcp({{"name", "a"}, {"transport", "http"}})), "mcps[0].endpoint: required");
  EXPECT_EQ(
      err(mcp({{"name", "a"}, {"transport", "stdio"}, {"command", "x"}, {"endpoint", "http://h"}})),
      "mcps[0].endpoint: not allowed (only for transport \"http\")");
  EXPECT_EQ(
      err(mcp({{"name", "a"}, {"transport", "http"}, {"endpoint", "http://h"}, {"args", {"x"}}})),
      "mcps[0].args: not allowed (only for transport \"stdio\")");
  EXPECT_EQ(err(mcp({{"name", "1a"}, {"transport", "stdio"}, {"command", "x"}})),
            "mcps[0].name: must match the pattern ^[A-Za-z][A-Za-z0-9_-]*$ (got \"1a\")");
  EXPECT_EQ(err(mcp({{"name", std::string(65, 'a')}, {"transport", "stdio"}, {"command", "x"}})),
            "mcps[0].name: must be at most 64 characters long (got 65)");
  EXPECT_EQ(err(mcp({{"name", "a"}, {"transport", "stdio"}, {"command", ""}})),
            "mcps[0].command: must not be empty");
  EXPECT_EQ(err(mcp({{"name", "a"}, {"transport", "stdio"}, {"command", "x"}, {"args", "-y"}})),
            "mcps[0].args: must be an array (got \"-y\")");
  EXPECT_EQ(
      err(mcp({{"name", "a"}, {"transport", "stdio"}, {"command", "x"}, {"env", {{"A", 1}}}})),
      "mcps[0].env.A: must be a string (got 1)");
  EXPECT_EQ(
      err(mcp({{"name", "a"}, {"transport", "stdio"}, {"command", "x"}, {"env", {{"A=B", "1"}}}})),
      "mcps[0].env[\"A=B\"]: invalid field name: must match the pattern ^[A-Za-z_][A-Za-z0-9_]*$ "
      "(got \"A=B\")");
  EXPECT_EQ(
      err(mcp({{"name", "a"}, {"transport", "http"}, {"endpoint", "mcp.example.com"}})),
      "mcps[0].endpoint: must match the pattern ^https?://[^/?#\\s] (got \"mcp.example.com\")");
  EXPECT_EQ(err(mcp({{"name", "a"},
                     {"transport", "http"},
                     {"endpoint", "https://h"},
                     {"headers", {{"X", 1}}}})),
            "mcps[0].headers.X: must be a string (got 1)");
  EXPECT_EQ(err(mcp({{"name", "a"},
                     {"transport", "http"},
                     {"endpoint", "https://h"},
                     {"headers", {{"X", "a\r\nEvil: 1"}}}})),
            "mcps[0].headers.X: must not contain line breaks");
  EXPECT_EQ(err(mcp({{"name", "a"},
                     {"transport", "http"},
                     {"endpoint", "https://h"},
                     {"headers", {{"Bad Name", "v"}}}}))
                .substr(0, 47),
            "mcps[0].headers[\"Bad Name\"]: invalid field name");
  EXPECT_EQ(err(mcp("fs")), "mcps[0]: must be an object (got \"fs\")");
}

TEST(Config, McpNamesAreUnique) {
  json j = {{"mcps",
             {{{"name", "fs"}, {"transport", "stdio"}, {"command", "a"}},
              {{"name", "web"}, {"transport", "http"}, {"endpoint", "https://h"}},
              {{"name", "FS"}, {"transport", "stdio"}, {"command", "b"}}}}};
  EXPECT_EQ(err(j), "mcps[2].name: duplicate name \"FS\" (already used by mcps[0])");
}

TEST(Config, AuthTokens) {
  const std::string a(64, 'a'), b(64, 'b');
  auto c = parse_config(with(
      "/auth/tokens", {{{"name", "ci"}, {"sha256", a}}, {{"name", "laptop.1"}, {"sha256", b}}}));
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->auth.tokens, (std::vector<TokenConfig>{{"ci", a}, {"laptop.1", b}}));
  EXPECT_TRUE(c->auth.enabled());
  EXPECT_FALSE(Config{}.auth.enabled());
  EXPECT_EQ(json::parse(default_config_text())["auth"], (json{{"tokens", json::array()}}));

  EXPECT_EQ(
      err(with("/auth/tokens", {{{"name", "ci"}, {"sha256", a}}, {{"name", "CI"}, {"sha256", b}}})),
      "auth.tokens[1].name: duplicate name \"CI\" (already used by auth.tokens[0])");
  EXPECT_EQ(err(with("/auth/tokens",
                     {{{"name", "ci"}, {"sha256", a}}, {{"name", "other"}, {"sha256", a}}})),
            "auth.tokens[1].sha256: the same token as auth.tokens[0]");
  for (const json& bad : {json{{"name", "ci"}, {"sha256", std::string(64, 'A')}},
                          json{{"name", "ci"}, {"sha256", std::string(63, 'a')}},
                          json{{"name", "-ci"}, {"sha256", a}}, json{{"name", "ci"}},
                          json{{"name", "ci"}, {"sha256", a}, {"token", "x"}}}) {
    EXPECT_NE(err(with("/auth/tokens", json::array({bad}))), "") << bad.dump();
  }
}

TEST(Config, AuthOAuth) {
  json oauth = {{"issuer", "https://auth.example.com"},
                {"resource", "https://mcp.example.com/mcp"},
                {"jwksUrl", "https://auth.example.com/jwks"}};
  auto c = parse_config(with("/auth/oauth", oauth));
  ASSERT_TRUE(c) << c.error().message;
  ASSERT_TRUE(c->auth.oauth);
  EXPECT_EQ(c->auth.oauth->leeway_seconds, 60u);
  EXPECT_TRUE(c->auth.enabled());

  auto edit = [&](const char* key, json value) {
    json o = oauth;
    if (value.is_null()) {
      o.erase(key);
    } else {
      o[key] = value;
    }
    return err(with("/auth/oauth", o));
  };
  EXPECT_EQ(edit("issuer", "http://127.0.0.1:8080/issuer"), "") << "http to loopback";
  EXPECT_EQ(edit("jwksUrl", "http://localhost:8080/jwks"), "");
  EXPECT_EQ(edit("jwksUrl", "http://[::1]:8080/jwks"), "");
  EXPECT_EQ(edit("resource", "http://mcp.example.com/mcp"), "") << "the resource may be http";
  EXPECT_EQ(edit("issuer", "http://auth.example.com"),
            "auth.oauth.issuer: must be an https URL (http only for a loopback host) (got "
            "\"http://auth.example.com\")");
  EXPECT_EQ(edit("jwksUrl", "http://10.0.0.1/jwks"),
            "auth.oauth.jwksUrl: must be an https URL (http only for a loopback host) (got "
            "\"http://10.0.0.1/jwks\")");
  EXPECT_EQ(edit("authorizationServers", {"http://auth.example.com"}),
            "auth.oauth.authorizationServers[0]: must be an https URL (http only for a loopback "
            "host) (got \"http://auth.example.com\")");
  EXPECT_EQ(edit("resource", "https://mcp.example.com/mcp#x"),
            "auth.oauth.resource: must be an absolute http(s) URL without a fragment (got "
            "\"https://mcp.example.com/mcp#x\")");
  EXPECT_EQ(edit("resource", "https://user@mcp.example.com/mcp"),
            "auth.oauth.resource: must be an absolute http(s) URL without a fragment (got "
            "\"https://user@mcp.example.com/mcp\")");
  EXPECT_EQ(edit("jwksFile", "keys.json"),
            "auth.oauth: exactly one of jwksFile and jwksUrl is required");
  EXPECT_EQ(edit("jwksUrl", nullptr),
            "auth.oauth: exactly one of jwksFile and jwksUrl is required");
  EXPECT_NE(edit("issuer", nullptr), "");
  EXPECT_NE(edit("resource", "/mcp"), "");
  EXPECT_NE(edit("leewaySeconds", 601), "");
  EXPECT_NE(edit("requiredScopes", {"a b"}), "") << "a scope has no spaces";
  EXPECT_NE(edit("requiredScopes", {"a\"b"}), "") << "nor quotes";
  EXPECT_NE(edit("audience", "x"), "") << "unknown field";
}

TEST(Config, PythonPreloadTakesModuleNamesOnly) {
  auto ok = parse_config(json{{"python", {{"preload", {"pandas", "matplotlib.pyplot", "_x.y2"}}}}});
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(ok->python.preload, (std::vector<std::string>{"pandas", "matplotlib.pyplot", "_x.y2"}));
  EXPECT_TRUE(parse_config(json::object())->python.preload.empty());
  for (const char* bad : {"os; import x", "a..b", ".a", "a.", "1abc", "a-b", "", "a,b"}) {
    EXPECT_FALSE(parse_config(json{{"python", {{"preload", {bad}}}}})) << bad;
  }
  EXPECT_FALSE(parse_config(json{{"python", {{"preload", {"a", "a"}}}}}));  // unique
  EXPECT_FALSE(parse_config(json{{"python", {{"other", 1}}}}));
}

TEST(Config, PolicyMcpsDefaultsToEveryUpstream) {
  auto c = parse_config(json::object());
  ASSERT_TRUE(c);
  EXPECT_EQ(c->policy.mcps, std::vector<std::string>{"*"});
  EXPECT_EQ(to_json(Policy{})["mcps"], json::array({"*"}));
  EXPECT_EQ(json::parse(default_config_text())["policy"]["mcps"], json::array({"*"}));
}

TEST(Config, PolicyMcpsPatterns) {
  json j = {{"mcps",
             {{{"name", "fs"}, {"transport", "stdio"}, {"command", "a"}},
              {{"name", "web-1"}, {"transport", "http"}, {"endpoint", "https://h"}}}},
            {"policy", {{"mcps", {"fs/read_text_file", "web-1", "fs/*", "fs/a.b-c"}}}}};
  auto c = parse_config(j);
  ASSERT_TRUE(c) << c.error().message;
  // "server/*" is read as "server".
  EXPECT_EQ(c->policy.mcps,
            (std::vector<std::string>{"fs/read_text_file", "web-1", "fs", "fs/a.b-c"}));
  auto back = parse_config(to_json(*c));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(*back, *c);

  j["policy"]["mcps"] = json::array();
  c = parse_config(j);
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->policy.mcps.empty());
  // Both spellings of one rule collapse into one entry.
  j["policy"]["mcps"] = {"fs", "fs/*"};
  c = parse_config(j);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->policy.mcps, std::vector<std::string>{"fs"});
}

TEST(Config, PolicyMcpsErrors) {
  json fs = {{"name", "fs"}, {"transport", "stdio"}, {"command", "a"}};
  auto with_mcps = [&](json patterns) {
    return json{{"mcps", json::array({fs})}, {"policy", {{"mcps", std::move(patterns)}}}};
  };
  EXPECT_EQ(err(with_mcps({"fs", "github/create_issue", "*"})),
            "policy.mcps[1]: no upstream named \"github\" in mcps");
  EXPECT_EQ(err(with_mcps({"FS"})), "policy.mcps[0]: no upstream named \"FS\" in mcps");
  EXPECT_EQ(err(with_mcps({"fs", "fs"})),
            "policy.mcps[1]: duplicate of policy.mcps[0] (got \"fs\")");
  for (const char* bad : {"", "fs/", "/tool", "fs tool", "fs/a b", "**", "1fs", "*/x"}) {
    EXPECT_NE(err(with_mcps({bad})).find("policy.mcps[0]: must match the pattern"),
              std::string::npos)
        << bad;
  }
  EXPECT_EQ(err(with_mcps("fs")), "policy.mcps: must be an array (got \"fs\")");
  EXPECT_EQ(err(with_mcps({"fs/" + std::string(300, 'x')})),
            "policy.mcps[0]: must be at most 256 characters long (got 303)");
}

TEST(Config, ReportsSeveralErrorsAtOnce) {
  json j = {{"language", "rb"}, {"policy", {{"limits", {{"memMb", 1}}}}}};
  EXPECT_EQ(err(j),
            "language: must be one of \"js\", \"py\" (got \"rb\"); "
            "policy.limits.memMb: must be an integer from 16 to 16384 (got 1)");
}

TEST(Config, DefaultTextParsesValidatesAndRoundTrips) {
  json j = json::parse(default_config_text());
  EXPECT_TRUE(validate(config_schema(), j));
  EXPECT_EQ(j["$schema"], "./" + std::string(kConfigSchemaFileName));
  EXPECT_EQ(j["policy"], to_json(Policy{}));
  auto c = parse_config(j);
  ASSERT_TRUE(c) << c.error().message;
  Config expected;
  expected.npm = {{"dependencies", json::object()}};
  expected.pip = {{"requirements", json::array()}};
  EXPECT_EQ(*c, expected);
}

TEST(Config, HelloWorldExampleIsValid) {
  auto c = load_config(std::string(ONEMCP_SOURCE_DIR) + "/examples/hello-world/1mcp.config.json");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->policy.limits, (Limits{30000, 256, 1048576}));
  EXPECT_TRUE(c->mcps.empty());
}

TEST(Config, ToJsonOfPolicy) {
  json j = to_json(Policy{});
  EXPECT_EQ(j["limits"]["timeoutMs"], 60000);
  EXPECT_EQ(j["network"]["maxRedirects"], 5);
  EXPECT_EQ(j["filesystem"]["writable"], json({"/tmp", "/out"}));
  EXPECT_TRUE(validate(config_schema()["properties"]["policy"], j));
}

using ConfigFile = TempDir;

TEST_F(ConfigFile, LoadPrefixesErrorsWithThePath) {
  std::string p = file("1mcp.config.json", R"({"policy": {"limits": {"memMb": 1}}})");
  auto c = load_config(p);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().message,
            p + ": policy.limits.memMb: must be an integer from 16 to 16384 (got 1)");
}

TEST_F(ConfigFile, SyntaxErrorsGiveLineAndColumn) {
  std::string p = file("c.json", "{\n  \"language\": \"js\",\n  x\n}\n");
  auto c = load_config(p);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().message.rfind(p + ": line 3, column 3: invalid JSON (", 0), 0u)
      << c.error().message;
  auto trailing = load_config(file("t.json", "{\"language\": \"js\",}"));
  ASSERT_FALSE(trailing);
  EXPECT_NE(trailing.error().message.find("line 1, column 19: invalid JSON"), std::string::npos)
      << trailing.error().message;
  auto empty = load_config(file("e.json", ""));
  ASSERT_FALSE(empty);
  EXPECT_NE(empty.error().message.find("invalid JSON"), std::string::npos);
}

TEST_F(ConfigFile, HugeNumbersAreRejectedWithTheirPosition) {
  std::string p = file("n.json", "{\n  \"sessionTtlMs\": 1e400\n}");
  auto c = load_config(p);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().message.rfind(p + ": line 2, column 19: invalid JSON (number overflow", 0),
            0u)
      << c.error().message;
}

TEST_F(ConfigFile, MissingAndUnreadable) {
  auto c = load_config(dir_ + "/nope.json");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().message, dir_ + "/nope.json: cannot read: No such file or directory");
  auto d = load_config(dir_);
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().message, dir_ + ": cannot read: not a regular file");
}

TEST_F(ConfigFile, WriteDefaultCreatesAndRefusesToOverwrite) {
  std::string p = dir_ + "/1mcp.config.json";
  ASSERT_TRUE(write_default_config(p));
  auto c = load_config(p);
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->policy, Policy{});

  std::ofstream(p) << "{\"language\": \"py\"}";
  auto again = write_default_config(p);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().message, p + ": already exists; not overwriting it");
  EXPECT_EQ(load_config(p)->language, "py");  // untouched

  auto nodir = write_default_config(dir_ + "/missing/1mcp.config.json");
  ASSERT_FALSE(nodir);
  EXPECT_EQ(nodir.error().message,
            dir_ + "/missing/1mcp.config.json: cannot create: the parent directory does not exist");
}

TEST_F(ConfigFile, WriteConfigSchema) {
  std::string p = dir_ + "/" + std::string(kConfigSchemaFileName);
  ASSERT_TRUE(write_config_schema(p));
  ASSERT_TRUE(write_config_schema(p));  // replaces its own output
  std::ifstream in(p);
  EXPECT_EQ(json::parse(in), config_schema());
  EXPECT_FALSE(fs::exists(p + ".tmp"));
}

}  // namespace
}  // namespace onemcp::policy
