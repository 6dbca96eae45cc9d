// Sessions by handle (server/sessions.h) with real workspaces: handles, principals, caps, idle
// expiry, and the calls under way cancelled when a session ends.
#include "server/sessions.h"

#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <thread>

namespace onemcp::server {
namespace {

using namespace std::chrono_literals;

policy::SessionsConfig small() {
  policy::SessionsConfig c;
  c.max_per_principal = 2;
  c.max_total = 3;
  c.workspace_bytes = 1 << 20;
  c.workspace_inodes = 16;
  return c;
}

TEST(Sessions, HandlesAreLongRandomAndBoundToTheirPrincipal) {
  Sessions sessions(small());
  auto a = sessions.create("alice");
  ASSERT_TRUE(a) << a.error().message;
  auto b = sessions.create("alice");
  ASSERT_TRUE(b);
  const std::string& h = (*a)->handle();
  ASSERT_EQ(h.size(), 4u + 64u);  // "ses_" and 256 bits in hex
  EXPECT_EQ(h.rfind("ses_", 0), 0u);
  EXPECT_NE(h, (*b)->handle());
  EXPECT_EQ((*a)->log_name().size(), 12u);
  EXPECT_EQ(h.find((*a)->log_name()), std::string::npos) << "logs never show the handle";

  auto found = sessions.find(h, "alice");
  ASSERT_TRUE(found);
  EXPECT_EQ(found->get(), a->get());
  // Another principal, a guess and a prefix all get the same answer.
  for (auto [handle, who] : {std::pair{h, "bob"}, std::pair{h.substr(0, 20), "alice"},
                             std::pair{std::string("ses_") + std::string(64, '0'), "alice"}}) {
    auto r = sessions.find(handle, who);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("unknown session"), std::string::npos);
  }
  EXPECT_FALSE(sessions.close(h, "bob"));
  EXPECT_TRUE(sessions.find(h, "alice"));
  EXPECT_TRUE(sessions.close(h, "alice"));
  EXPECT_FALSE(sessions.find(h, "alice"));
  EXPECT_TRUE((*a)->ended());
  EXPECT_FALSE(sessions.close(h, "alice"));
}

TEST(Sessions, CapsPerPrincipalAndInAll) {
  Sessions sessions(small());
  ASSERT_TRUE(sessions.create("alice"));
  auto second = sessions.create("alice");
  ASSERT_TRUE(second);
  auto third = sessions.create("alice");
  ASSERT_FALSE(third);
  EXPECT_NE(third.error().message.find("sessions.maxPerPrincipal"), std::string::npos);
  ASSERT_TRUE(sessions.create("bob"));
  auto full = sessions.create("carol");
  ASSERT_FALSE(full);
  EXPECT_NE(full.error().message.find("sessions.maxTotal"), std::string::npos);
  EXPECT_EQ(sessions.open(), 3u);
  ASSERT_TRUE(sessions.close((*second)->handle(), "alice"));
  EXPECT_TRUE(sessions.create("carol"));
}

TEST(Sessions, IdleSessionsExpireButNotWhileACallRuns) {
  policy::SessionsConfig c = small();
  c.idle_ms = 300;
  Sessions sessions(c);
  auto idle = sessions.create("alice");
  auto busy = sessions.create("alice");
  ASSERT_TRUE(idle && busy);
  const auto expires = sessions.expires(**idle);
  EXPECT_GT(expires, std::chrono::system_clock::now() + 200ms);
  EXPECT_LT(expires, std::chrono::system_clock::now() + 400ms);
  sandbox::CancelToken call;
  ASSERT_TRUE((*busy)->begin_call(&call));
  std::this_thread::sleep_for(900ms);
  EXPECT_FALSE(sessions.find((*idle)->handle(), "alice"));
  EXPECT_TRUE((*idle)->ended());
  EXPECT_FALSE(call.cancelled());
  (*busy)->end_call(&call);
  EXPECT_TRUE(sessions.find((*busy)->handle(), "alice")) << "the idle clock restarts after a call";
}

TEST(Sessions, EndingASessionCancelsItsCallsAndRefusesNewOnes) {
  Sessions sessions(small());
  auto s = sessions.create("alice");
  ASSERT_TRUE(s);
  sandbox::CancelToken running;
  ASSERT_TRUE((*s)->begin_call(&running));
  ASSERT_TRUE(sessions.close((*s)->handle(), "alice"));
  EXPECT_TRUE(running.cancelled());
  sandbox::CancelToken late;
  EXPECT_FALSE((*s)->begin_call(&late));
  (*s)->end_call(&running);
}

}  // namespace
}  // namespace onemcp::server
