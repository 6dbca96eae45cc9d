#include <arpa/inet.h>
#include <gtest/gtest.h>

#include "broker/resolver.h"
#include "server/egress.h"

namespace onemcp::server {
namespace {

TEST(MapResolver, ExactAndWildcardEntriesInOrder) {
  auto r = MapResolver::parse({"self.example.test=127.0.0.1", "*.example.test=127.0.0.2,::1"});
  ASSERT_TRUE(r.ok()) << r.error().message;
  auto self = (*r)->resolve("self.example.test", 80);
  ASSERT_TRUE(self.ok());
  ASSERT_EQ(self->size(), 1u);
  EXPECT_EQ(broker::address_text((*self)[0]), "127.0.0.1");
  auto api = (*r)->resolve("a.b.example.test", 443);
  ASSERT_TRUE(api.ok());
  ASSERT_EQ(api->size(), 2u);
  EXPECT_EQ(broker::address_text((*api)[1]), "::1");
  EXPECT_EQ(ntohs(reinterpret_cast<const sockaddr_in*>(&(*api)[0])->sin_port), 443);
  // Label boundary, no apex, nothing outside the table.
  EXPECT_FALSE((*r)->resolve("evil-example.test", 80).ok());
  EXPECT_FALSE((*r)->resolve("example.test", 80).ok());
  EXPECT_FALSE((*r)->resolve("example.com", 80).ok());
}

TEST(MapResolver, BadEntriesAreNamed) {
  auto bad = MapResolver::parse({"x.test=not-an-ip"});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message, "--resolve x.test=not-an-ip: not-an-ip is not an IP address");
  EXPECT_FALSE(MapResolver::parse({"=127.0.0.1"}).ok());
  EXPECT_FALSE(MapResolver::parse({"x.test="}).ok());
  EXPECT_FALSE(MapResolver::parse({"x.test"}).ok());
}

TEST(BrokerHandler, MalformedFramesGetClearAnswers) {
  auto r = MapResolver::parse({});
  ASSERT_TRUE(r.ok());
  policy::NetworkPolicy p;
  auto handler = make_broker_handler(p, **r, {});
  auto later = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  std::atomic<bool> no{false};
  auto j = nlohmann::json::parse(handler("not json", later, no));
  EXPECT_EQ(j["ok"], false);
  EXPECT_EQ(j["error"], "malformed request");
  j = nlohmann::json::parse(handler(R"({"id":7,"op":"exec"})", later, no));
  EXPECT_EQ(j["id"], 7);
  EXPECT_EQ(j["error"], "unknown operation");
  j = nlohmann::json::parse(handler(R"({"id":8,"op":"fetch","url":"http://a.test/","body":"%%%"})", later, no));
  EXPECT_EQ(j["error"], "malformed request body");
  // Nothing allowed by default: the policy's rule is in the answer.
  j = nlohmann::json::parse(handler(R"({"id":9,"op":"fetch","url":"http://a.test/"})", later, no));
  EXPECT_EQ(j["id"], 9);
  EXPECT_NE(j["error"].get<std::string>().find("allowedDomains"), std::string::npos) << j.dump();
  j = nlohmann::json::parse(handler(R"({"id":10,"op":"fetch","url":"http://a.test/"})",
                                    std::chrono::steady_clock::now(), no));
  EXPECT_EQ(j["error"], "the run is out of time");
  // Any JSON number as timeoutMs (a float too large for an integer is never converted to one,
  // which UBSan would report); anything else is malformed.
  for (const char* t : {"2e20", "-2e20", "1e-9", "-5", "18446744073709551615", "1500.5", "null"}) {
    j = nlohmann::json::parse(handler(
        std::string(R"({"id":11,"op":"fetch","url":"http://a.test/","timeoutMs":)") + t + "}", later, no));
    EXPECT_NE(j["error"].get<std::string>().find("allowedDomains"), std::string::npos) << t << j.dump();
  }
  j = nlohmann::json::parse(
      handler(R"({"id":12,"op":"fetch","url":"http://a.test/","timeoutMs":"5"})", later, no));
  EXPECT_EQ(j["error"], "malformed request: timeoutMs must be a number");
}

}  // namespace
}  // namespace onemcp::server

namespace onemcp::server {
namespace {
TEST(BrokerHandler, HostileFramesNeverThrow) {
  auto r = MapResolver::parse({});
  ASSERT_TRUE(r.ok());
  auto handler = make_broker_handler(policy::NetworkPolicy{}, **r, {});
  std::atomic<bool> no{false};
  auto later = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  for (std::string frame : {std::string(R"({"op":1})"), std::string(R"({"op":null,"id":3})"),
                            std::string(R"({"op":"fetch","url":5})"), std::string(R"({"op":"fetch","headers":7})"),
                            std::string(100000, '[') + std::string(100000, ']')}) {
    std::string answer;
    EXPECT_NO_THROW(answer = handler(frame, later, no)) << frame.substr(0, 40);
    auto j = nlohmann::json::parse(answer);
    EXPECT_EQ(j["ok"], false);
  }
}
}  // namespace
}  // namespace onemcp::server
