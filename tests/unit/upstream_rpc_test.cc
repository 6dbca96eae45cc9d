// Unit tests of the upstream client's JSON-RPC core: matching responses to calls by id,
// progress routing, the upstream's own requests, refusal of garbage, closing, line splitting.
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "upstream/rpc.h"

namespace onemcp::upstream {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

struct Recorder {
  std::vector<json> replies;
  std::vector<std::pair<std::string, json>> notifications;
  std::vector<std::string> refused;
  RpcCore::Handlers handlers() {
    return {[this](json r) { replies.push_back(std::move(r)); },
            [this](const std::string& m, const json& p) { notifications.emplace_back(m, p); },
            [this](const std::string& why) { refused.push_back(why); }};
  }
};

const auto kSoon = [] { return RpcCore::Clock::now() + 2s; };

TEST(UpstreamRpc, ResponsesMatchedByIdInAnyOrder) {
  Recorder rec;
  RpcCore core(rec.handlers());
  const int64_t a = core.next_id(), b = core.next_id();
  EXPECT_NE(a, b);
  auto ca = core.begin(a), cb = core.begin(b);
  core.on_text(R"({"jsonrpc":"2.0","id":)" + std::to_string(b) + R"(,"result":{"v":"b"}})");
  EXPECT_FALSE(core.done(*ca));
  EXPECT_TRUE(core.done(*cb));
  core.on_text(R"({"jsonrpc":"2.0","id":)" + std::to_string(a) + R"(,"result":{"v":"a"}})");
  ASSERT_EQ(core.wait(*ca, kSoon(), nullptr), RpcCore::Wait::kDone);
  EXPECT_EQ(core.outcome(*ca)->at("v"), "a");
  EXPECT_EQ(core.outcome(*cb)->at("v"), "b");
  core.end(ca);
  core.end(cb);
  EXPECT_TRUE(rec.refused.empty());
}

TEST(UpstreamRpc, ErrorResponseCarriesMessageAndCode) {
  Recorder rec;
  RpcCore core(rec.handlers());
  auto c = core.begin(core.next_id());
  core.on_message({{"jsonrpc", "2.0"},
                   {"id", c->id()},
                   {"error", {{"code", -32602}, {"message", "Unknown tool: x"}}}});
  auto out = core.outcome(*c);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.error().message, "Unknown tool: x (JSON-RPC error -32602)");
}

TEST(UpstreamRpc, LateAndUnknownResponsesAreDropped) {
  Recorder rec;
  RpcCore core(rec.handlers());
  auto c = core.begin(core.next_id());
  core.end(c);  // timed out
  core.on_message({{"jsonrpc", "2.0"}, {"id", c->id()}, {"result", json::object()}});
  core.on_message({{"jsonrpc", "2.0"}, {"id", 999}, {"result", json::object()}});
  EXPECT_FALSE(core.done(*c));
  EXPECT_TRUE(rec.refused.empty());
  core.on_message({{"jsonrpc", "2.0"}, {"id", "abc"}, {"result", json::object()}});
  EXPECT_EQ(rec.refused.size(), 1u);  // string ids are never ours
}

TEST(UpstreamRpc, SecondResponseForSameIdIgnored) {
  Recorder rec;
  RpcCore core(rec.handlers());
  auto c = core.begin(core.next_id());
  core.on_message({{"jsonrpc", "2.0"}, {"id", c->id()}, {"result", {{"n", 1}}}});
  core.on_message({{"jsonrpc", "2.0"}, {"id", c->id()}, {"result", {{"n", 2}}}});
  EXPECT_EQ(core.outcome(*c)->at("n"), 1);
}

TEST(UpstreamRpc, ProgressRoutedByToken) {
  Recorder rec;
  RpcCore core(rec.handlers());
  std::vector<json> got_a, got_b;
  auto a = core.begin(core.next_id(), [&](const json& p) { got_a.push_back(p); });
  auto b = core.begin(core.next_id(), [&](const json& p) { got_b.push_back(p); });
  auto progress = [](int64_t token, int n) {
    return json{{"jsonrpc", "2.0"},
                {"method", "notifications/progress"},
                {"params", {{"progressToken", token}, {"progress", n}}}};
  };
  core.on_message(progress(a->id(), 1));
  core.on_message(progress(b->id(), 7));
  core.on_message(progress(a->id(), 2));
  core.on_message(progress(12345, 3));  // nobody's
  ASSERT_EQ(got_a.size(), 2u);
  EXPECT_EQ(got_a[1]["progress"], 2);
  ASSERT_EQ(got_b.size(), 1u);
  core.end(a);
  core.on_message(progress(a->id(), 3));  // after end(): never delivered
  EXPECT_EQ(got_a.size(), 2u);
  EXPECT_TRUE(rec.notifications.empty());
}

TEST(UpstreamRpc, UpstreamRequestsAnswered) {
  Recorder rec;
  RpcCore core(rec.handlers());
  core.on_text(R"({"jsonrpc":"2.0","id":"p1","method":"ping"})");
  core.on_text(R"({"jsonrpc":"2.0","id":5,"method":"sampling/createMessage","params":{}})");
  ASSERT_EQ(rec.replies.size(), 2u);
  EXPECT_EQ(rec.replies[0], json({{"jsonrpc", "2.0"}, {"id", "p1"}, {"result", json::object()}}));
  EXPECT_EQ(rec.replies[1]["id"], 5);
  EXPECT_EQ(rec.replies[1]["error"]["code"], kMethodNotFound);
}

TEST(UpstreamRpc, NotificationsPassedOn) {
  Recorder rec;
  RpcCore core(rec.handlers());
  core.on_text(R"({"jsonrpc":"2.0","method":"notifications/tools/list_changed"})");
  ASSERT_EQ(rec.notifications.size(), 1u);
  EXPECT_EQ(rec.notifications[0].first, "notifications/tools/list_changed");
  EXPECT_TRUE(rec.notifications[0].second.is_object());
}

TEST(UpstreamRpc, GarbageRefusedNeverThrows) {
  Recorder rec;
  RpcCore core(rec.handlers());
  const std::string deep = std::string(10000, '[') + std::string(10000, ']');
  for (const std::string& bad :
       {std::string("not json"), std::string("{\"jsonrpc\":"), std::string("[1,2]"),
        std::string("42"), std::string("{\"id\":1}"), std::string("{\"method\":7}"),
        std::string("\xff\xfe{}"), deep,
        std::string("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"\xc3\"}")}) {
    EXPECT_NO_THROW(core.on_text(bad));
  }
  EXPECT_EQ(rec.refused.size(), 9u);
  EXPECT_TRUE(rec.replies.empty());
}

TEST(UpstreamRpc, HugeMessageRefusedBeforeParsing) {
  Recorder rec;
  RpcCore core(rec.handlers());
  auto c = core.begin(core.next_id());
  std::string big = R"({"jsonrpc":"2.0","id":)" + std::to_string(c->id()) + R"(,"result":{"s":")";
  big += std::string(kMaxMessageBytes, 'x') + "\"}}";
  core.on_text(big);
  EXPECT_FALSE(core.done(*c));
  ASSERT_EQ(rec.refused.size(), 1u);
}

TEST(UpstreamRpc, WaitTimesOutAndCancels) {
  Recorder rec;
  RpcCore core(rec.handlers());
  auto c = core.begin(core.next_id());
  const auto t0 = RpcCore::Clock::now();
  EXPECT_EQ(core.wait(*c, t0 + 50ms, nullptr), RpcCore::Wait::kTimeout);
  EXPECT_GE(RpcCore::Clock::now() - t0, 50ms);
  std::atomic<bool> cancel{false};
  std::thread t([&] {
    std::this_thread::sleep_for(30ms);
    cancel = true;
  });
  EXPECT_EQ(core.wait(*c, RpcCore::Clock::now() + 10s, &cancel), RpcCore::Wait::kCancelled);
  t.join();
}

TEST(UpstreamRpc, CloseFailsWaitersAndLaterCalls) {
  Recorder rec;
  RpcCore core(rec.handlers());
  auto c = core.begin(core.next_id());
  std::thread t([&] {
    std::this_thread::sleep_for(20ms);
    core.close("upstream 'x' exited with status 1");
  });
  EXPECT_EQ(core.wait(*c, RpcCore::Clock::now() + 10s, nullptr), RpcCore::Wait::kDone);
  t.join();
  EXPECT_EQ(core.outcome(*c).error().message, "upstream 'x' exited with status 1");
  core.close("second reason");
  auto later = core.begin(core.next_id());
  EXPECT_TRUE(core.done(*later));
  EXPECT_EQ(core.outcome(*later).error().message, "upstream 'x' exited with status 1");
}

TEST(UpstreamRpc, ConcurrentCallsEachGetTheirOwnResponse) {
  Recorder rec;
  RpcCore core(rec.handlers());
  constexpr int kCalls = 64;
  std::vector<std::shared_ptr<RpcCore::Call>> calls;
  for (int i = 0; i < kCalls; ++i) calls.push_back(core.begin(core.next_id()));
  std::vector<std::thread> waiters;
  std::atomic<int> right{0};
  for (int i = 0; i < kCalls; ++i) {
    waiters.emplace_back([&, i] {
      if (core.wait(*calls[i], RpcCore::Clock::now() + 10s, nullptr) == RpcCore::Wait::kDone &&
          core.outcome(*calls[i])->at("i") == i) {
        ++right;
      }
    });
  }
  for (int i = kCalls - 1; i >= 0; --i) {
    core.on_message({{"jsonrpc", "2.0"}, {"id", calls[i]->id()}, {"result", {{"i", i}}}});
  }
  for (auto& w : waiters) w.join();
  EXPECT_EQ(right, kCalls);
}

TEST(UpstreamLineSplitter, SplitsAndDropsOverlongLines) {
  LineSplitter s(8);
  std::vector<std::string> lines;
  std::vector<size_t> overflows;
  auto on_line = [&](std::string_view l) { lines.emplace_back(l); };
  auto on_overflow = [&](size_t n) { overflows.push_back(n); };
  s.feed("ab\r\ncd", on_line, on_overflow);
  s.feed("e\n\n  \n0123456789", on_line, on_overflow);
  s.feed("abc\nok\n", on_line, on_overflow);
  EXPECT_EQ(lines, (std::vector<std::string>{"ab", "cde", "ok"}));
  EXPECT_EQ(overflows, (std::vector<size_t>{13}));
  s.feed("rest", on_line, on_overflow);
  EXPECT_EQ(s.take_rest(), "rest");
}

}  // namespace
}  // namespace onemcp::upstream
