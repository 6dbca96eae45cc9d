// The server's tunnel opener: caps derived from the policy, and decisions made before any socket
// is opened (every case here is refused, so nothing touches the network).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>

#include "broker/resolver.h"
#include "policy/egress.h"
#include "server/egress.h"

namespace onemcp::server {
namespace {

TEST(BrokerTunnels, CapsAndDecisionsFollowThePolicy) {
  auto r = MapResolver::parse({"api.example.test=127.0.0.1", "mixed.example.test=127.0.0.2,127.0.0.3"});
  ASSERT_TRUE(r.ok());
  policy::NetworkPolicy p;
  p.allowed_domains = {"*.example.test"};
  p.denied_domains = {"*.evil.example.test"};
  p.max_body_bytes = 1000;
  broker::FetchLimits limits;
  auto reserved = policy::parse_ip_address("127.0.0.3");
  ASSERT_TRUE(reserved.ok());
  limits.denied_addresses.push_back(*reserved);
  auto t = make_broker_tunnels(p, **r, limits);
  EXPECT_EQ(t.max_body_bytes, 1000u);
  EXPECT_EQ(t.max_bytes, 1000u + 64 * 1024);
  ASSERT_TRUE(t.open);

  const auto later = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  std::atomic<bool> no{false};
  auto denied = t.open("x.evil.example.test", 443, later, no);
  ASSERT_FALSE(denied.ok());
  EXPECT_EQ(denied.error().message,
            "blocked by network policy (deniedDomains: *.evil.example.test): x.evil.example.test:443");
  auto private_addr = t.open("API.example.test.", 8443, later, no);
  ASSERT_FALSE(private_addr.ok());
  EXPECT_EQ(private_addr.error().message,
            "blocked by network policy (blockPrivateRanges: 127.0.0.1 is in 127.0.0.0/8 (loopback)): "
            "api.example.test:8443");
  auto literal = t.open("::1", 443, later, no);
  ASSERT_FALSE(literal.ok());
  EXPECT_EQ(literal.error().message, "blocked by network policy (denyIpLiterals): [::1]:443");

  p.block_private_ranges = false;
  auto open2 = make_broker_tunnels(p, **r, limits);
  auto mixed = open2.open("mixed.example.test", 443, later, no);
  ASSERT_FALSE(mixed.ok());
  EXPECT_EQ(mixed.error().message, "blocked by network policy (127.0.0.3 is reserved): mixed.example.test:443");

  auto late = t.open("api.example.test", 443, std::chrono::steady_clock::now(), no);
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.error().message, "the run is out of time");
}

}  // namespace
}  // namespace onemcp::server
