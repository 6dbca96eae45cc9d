// The Host and Origin allow-list: exact names only, so DNS rebinding and look-alike names fail.
#include "server/host_check.h"

#include <gtest/gtest.h>

namespace onemcp::server {
namespace {

HostCheck loopback(std::vector<std::string> hosts = {}, std::vector<std::string> origins = {}) {
  HostCheckOptions o;
  o.allowed_hosts = std::move(hosts);
  o.allowed_origins = std::move(origins);
  o.port = 7800;
  return HostCheck(o);
}

TEST(HostCheck, LoopbackNamesWithTheListeningPort) {
  HostCheck c = loopback();
  for (const char* ok :
       {"localhost:7800", "127.0.0.1:7800", "[::1]:7800", "LOCALHOST:7800", "LocalHost:7800", ""}) {
    EXPECT_TRUE(c.host_allowed(ok)) << ok;
  }
  // Another port is another server (or a port forward the operator must list).
  for (const char* bad : {"localhost:7801", "127.0.0.1:80", "localhost", "127.0.0.1", "[::1]"}) {
    EXPECT_FALSE(c.host_allowed(bad)) << bad;
  }
}

TEST(HostCheck, EveryRebindingFormIsRefused) {
  HostCheck c = loopback();
  for (const char* bad : {"127.evil.com:7800",
                          "127.0.0.1.nip.io:7800",
                          "localhost.evil.com:7800",
                          "attacker.localhost:7800",
                          "127.EVIL.com:7800",
                          "LOCALHOST.Evil.COM:7800",
                          "localhost.:7800",
                          "127.0.0.1.:7800",
                          "evil.com.:7800",
                          "127.1:7800",
                          "2130706433:7800",
                          "0x7f000001:7800",
                          "0177.0.0.1:7800",
                          "127.0.0.2:7800",
                          "0.0.0.0:7800",
                          "[::ffff:127.0.0.1]:7800",
                          "[0:0:0:0:0:0:0:1]:7800",
                          "[::1%25lo]:7800",
                          "::1:7800",
                          "[::1]7800",
                          "[::1]:",
                          "localhost:",
                          "localhost:7800:7800",
                          "localhost:+7800",
                          "localhost:07800x",
                          "evil.com:7800",
                          "evil.com",
                          "localhost@evil.com:7800",
                          "localhost:7800@evil.com",
                          "localhost\t:7800",
                          " localhost:7800",
                          "localhost:7800 ",
                          "localhost:7800\r\nX: y",
                          "localhost%00:7800",
                          "xn--localhost-:7800"}) {
    EXPECT_FALSE(c.host_allowed(bad)) << bad;
  }
}

TEST(HostCheck, PortMustBeKnown) {
  HostCheckOptions o;  // port 0: not yet bound
  HostCheck c(o);
  EXPECT_FALSE(c.host_allowed("localhost:0"));
  EXPECT_FALSE(c.host_allowed("localhost"));
  c.set_port(80);
  EXPECT_TRUE(c.host_allowed("localhost"));  // HTTP's default port may be left out
  EXPECT_TRUE(c.host_allowed("localhost:80"));
}

TEST(HostCheck, ListedHosts) {
  HostCheck c = loopback({"mcp.example.com", "localhost:9000", "[2001:db8::1]", "10.0.0.5:8443"});
  for (const char* ok :
       {"mcp.example.com", "mcp.example.com:7800", "MCP.Example.COM", "localhost:9000",
        "[2001:db8::1]", "[2001:db8::1]:7800", "10.0.0.5:8443"}) {
    EXPECT_TRUE(c.host_allowed(ok)) << ok;
  }
  for (const char* bad : {"mcp.example.com:9999", "sub.mcp.example.com", "mcp.example.com.evil",
                          "evilmcp.example.com", "mcp.example.com.", "localhost:9001", "10.0.0.5",
                          "10.0.0.5:7800", "[2001:db8::1]:1"}) {
    EXPECT_FALSE(c.host_allowed(bad)) << bad;
  }
}

TEST(HostCheck, WithoutLoopbackNames) {
  HostCheckOptions o;
  o.loopback_names = false;
  o.bind_host = "192.0.2.7";
  o.port = 7800;
  HostCheck c(o);
  EXPECT_TRUE(c.host_allowed("192.0.2.7:7800"));
  EXPECT_FALSE(c.host_allowed("localhost:7800"));
  EXPECT_FALSE(c.host_allowed("127.0.0.1:7800"));
  EXPECT_FALSE(c.host_allowed("192.0.2.7:7801"));
}

TEST(HostCheck, Origins) {
  HostCheck c = loopback({"mcp.example.com"}, {"http://localhost:6274"});
  for (const char* ok : {"http://localhost:7800", "http://127.0.0.1:7800", "http://[::1]:7800",
                         "HTTP://LOCALHOST:7800", "http://localhost:6274",
                         "https://mcp.example.com", "http://mcp.example.com:7800"}) {
    EXPECT_TRUE(c.origin_allowed(ok)) << ok;
  }
  for (const char* bad :
       {"null", "http://localhost:3000", "http://127.evil.com:7800",
        "http://localhost.evil.com:7800", "http://attacker.localhost:7800",
        "http://127.0.0.1.nip.io:7800", "http://localhost.:7800", "http://localhost:7800/",
        "http://localhost:7800/x", "file://localhost:7800", "localhost:7800", "ws://localhost:7800",
        "http://", "https://mcp.example.com:9999", "http://localhost:6274/",
        "https://localhost:6274", "chrome-extension://abc"}) {
    EXPECT_FALSE(c.origin_allowed(bad)) << bad;
  }
}

}  // namespace
}  // namespace onemcp::server
