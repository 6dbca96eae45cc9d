#include "server/mcp_server.h"

#include <gtest/gtest.h>
#include <poll.h>

#include <future>
#include <thread>

namespace onemcp::server {
namespace {

using nlohmann::json;

// Echoes the code back; "block" waits until the run is cancelled.
class FakeBackend : public RunBackend {
 public:
  Result<sandbox::RunOutput> run(Language lang, const ipc::RunRequest& req, const std::string& in,
                                 const sandbox::CancelToken* cancel, const policy::NetworkPolicy&,
                                 const deps::Dependencies&) override {
    sandbox::RunOutput o;
    last = req;
    if (req.code == "block") {
      pollfd p{cancel->fd(), POLLIN, 0};
      ::poll(&p, 1, 10000);
      o.outcome = sandbox::Outcome::killed;
      o.exit_code = 137;
      return o;
    }
    o.out = std::string(lang == Language::js ? "js:" : "py:") + req.code + "|" + in;
    o.outcome = sandbox::Outcome::ok;
    o.exit_code = 0;
    o.duration_ms = 1.5;
    return o;
  }
  ipc::RunRequest last;
};

class McpServerTest : public ::testing::Test {
 protected:
  McpServerTest() : server_(make_opts(), policy::Config{}, backend_) {}

  ServerOptions make_opts() {
    ServerOptions o;
    o.now = [this] { return now_; };
    return o;
  }

  HttpResponse http(std::string method, std::string body, std::map<std::string, std::string> h = {},
                    std::string target = "/mcp") {
    HttpRequest r;
    r.method = method;
    r.target = target;
    r.body = std::move(body);
    if (method == "POST") {
      h.emplace("content-type", "application/json");
      h.emplace("accept", "application/json, text/event-stream");
    }
    h.emplace("host", "127.0.0.1:7800");
    r.headers = h;
    std::promise<HttpResponse> p;
    auto f = p.get_future();
    server_.handle(r, [&p](HttpResponse resp) { p.set_value(std::move(resp)); });
    return f.get();
  }

  static std::string header(const HttpResponse& r, const std::string& name) {
    for (auto& [k, v] : r.headers)
      if (k == name) return v;
    return "";
  }

  std::string initialize(const std::string& version = "2025-06-18") {
    auto r = http("POST", json{{"jsonrpc", "2.0"},
                               {"id", 1},
                               {"method", "initialize"},
                               {"params",
                                {{"protocolVersion", version},
                                 {"capabilities", json::object()},
                                 {"clientInfo", {{"name", "t"}, {"version", "1"}}}}}}
                              .dump());
    EXPECT_EQ(r.status, 200);
    return header(r, "Mcp-Session-Id");
  }

  json call(const std::string& sid, const json& msg) {
    auto r = http("POST", msg.dump(), {{"mcp-session-id", sid}});
    EXPECT_EQ(r.status, 200) << r.body;
    return json::parse(r.body);
  }

  std::chrono::steady_clock::time_point now_ = std::chrono::steady_clock::now();
  FakeBackend backend_;
  McpServer server_;
};

TEST_F(McpServerTest, InitializeNegotiatesVersionAndIssuesSession) {
  auto r = http("POST", R"({"jsonrpc":"2.0","id":"a","method":"initialize","params":{"protocolVersion":"2025-03-26","capabilities":{},"clientInfo":{"name":"x","version":"1"}}})");
  ASSERT_EQ(r.status, 200);
  auto j = json::parse(r.body);
  EXPECT_EQ(j["id"], "a");
  EXPECT_EQ(j["result"]["protocolVersion"], "2025-03-26");
  EXPECT_EQ(j["result"]["serverInfo"]["name"], "1mcp");
  EXPECT_TRUE(j["result"]["capabilities"].contains("tools"));
  EXPECT_EQ(header(r, "Mcp-Session-Id").size(), 32u);

  auto r2 = http("POST", R"({"jsonrpc":"2.0","id":2,"method":"initialize","params":{"protocolVersion":"1999-01-01"}})");
  EXPECT_EQ(json::parse(r2.body)["result"]["protocolVersion"], kLatestProtocol);
  EXPECT_NE(header(r2, "Mcp-Session-Id"), header(r, "Mcp-Session-Id"));
}

TEST_F(McpServerTest, SessionHeaderRequiredAndDeleteEndsSession) {
  std::string sid = initialize();
  auto missing = http("POST", R"({"jsonrpc":"2.0","id":5,"method":"ping"})");
  EXPECT_EQ(missing.status, 400);
  EXPECT_EQ(json::parse(missing.body)["id"], 5);
  auto unknown = http("POST", R"({"jsonrpc":"2.0","id":6,"method":"ping"})", {{"mcp-session-id", "nope"}});
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(call(sid, {{"jsonrpc", "2.0"}, {"id", 7}, {"method", "ping"}})["result"], json::object());
  EXPECT_EQ(http("DELETE", "", {{"mcp-session-id", sid}}).status, 200);
  EXPECT_EQ(http("POST", R"({"jsonrpc":"2.0","id":8,"method":"ping"})", {{"mcp-session-id", sid}}).status, 404);
  EXPECT_EQ(http("DELETE", "", {{"mcp-session-id", sid}}).status, 404);
}

TEST_F(McpServerTest, NotificationsGet202AndGetIs405) {
  std::string sid = initialize();
  auto r = http("POST", R"({"jsonrpc":"2.0","method":"notifications/initialized"})", {{"mcp-session-id", sid}});
  EXPECT_EQ(r.status, 202);
  EXPECT_TRUE(r.body.empty());
  auto g = http("GET", "", {{"mcp-session-id", sid}, {"accept", "text/event-stream"}});
  EXPECT_EQ(g.status, 405);
  EXPECT_EQ(header(g, "Allow"), "POST, DELETE");
}

TEST_F(McpServerTest, OriginAndHostValidation) {
  auto bad = http("POST", "{}", {{"origin", "https://evil.example"}});
  EXPECT_EQ(bad.status, 403);
  auto rebinding = http("POST", "{}", {{"origin", "http://evil.example:7800"}, {"host", "evil.example:7800"}});
  EXPECT_EQ(rebinding.status, 403);
  auto ok = http("POST", R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18"}})",
                 {{"origin", "http://localhost:3000"}});
  EXPECT_EQ(ok.status, 200);
}

TEST_F(McpServerTest, MalformedMessagesKeepIdsAndCodes) {
  std::string sid = initialize();
  auto parse = http("POST", "{not json", {{"mcp-session-id", sid}});
  EXPECT_EQ(parse.status, 400);
  auto pj = json::parse(parse.body);
  EXPECT_EQ(pj["error"]["code"], -32700);
  EXPECT_TRUE(pj["id"].is_null());
  auto batch = http("POST", R"([{"jsonrpc":"2.0","id":1,"method":"ping"}])", {{"mcp-session-id", sid}});
  EXPECT_EQ(batch.status, 400);
  EXPECT_EQ(json::parse(batch.body)["error"]["code"], -32600);
  auto badver = http("POST", R"({"jsonrpc":"1.0","id":42,"method":"ping"})", {{"mcp-session-id", sid}});
  EXPECT_EQ(json::parse(badver.body)["id"], 42);
  EXPECT_EQ(json::parse(badver.body)["error"]["code"], -32600);
  auto unknown = call(sid, {{"jsonrpc", "2.0"}, {"id", "x"}, {"method", "resources/list"}});
  EXPECT_EQ(unknown["error"]["code"], -32601);
  EXPECT_EQ(unknown["id"], "x");
  auto badparams = call(sid, {{"jsonrpc", "2.0"}, {"id", 3}, {"method", "tools/call"}, {"params", 5}});
  EXPECT_EQ(badparams["error"]["code"], -32602);
  auto wrongtype = http("POST", "{}", {{"mcp-session-id", sid}, {"content-type", "text/plain"}});
  EXPECT_EQ(wrongtype.status, 415);
  auto badproto = http("POST", R"({"jsonrpc":"2.0","id":1,"method":"ping"})",
                       {{"mcp-session-id", sid}, {"mcp-protocol-version", "2099-01-01"}});
  EXPECT_EQ(badproto.status, 400);
}

TEST_F(McpServerTest, ToolsListAdvertisesSchemas) {
  std::string sid = initialize();
  auto j = call(sid, {{"jsonrpc", "2.0"}, {"id", 1}, {"method", "tools/list"}});
  auto tools = j["result"]["tools"];
  ASSERT_EQ(tools.size(), 2u);
  EXPECT_EQ(tools[0]["name"], "run_js");
  EXPECT_EQ(tools[1]["name"], "run_py");
  for (auto& t : tools) {
    EXPECT_EQ(t["inputSchema"]["type"], "object");
    EXPECT_EQ(t["outputSchema"]["type"], "object");
    EXPECT_TRUE(t["inputSchema"]["required"].dump().find("code") != std::string::npos);
  }
}

TEST_F(McpServerTest, ToolCallRunsAndFormatsResult) {
  std::string sid = initialize();
  auto j = call(sid, {{"jsonrpc", "2.0"},
                      {"id", 9},
                      {"method", "tools/call"},
                      {"params", {{"name", "run_py"}, {"arguments", {{"code", "print(1)"}, {"stdin", "in"}}}}}});
  auto res = j["result"];
  EXPECT_EQ(res["isError"], false);
  EXPECT_EQ(res["content"][0]["text"], "py:print(1)|in");
  EXPECT_EQ(res["structuredContent"]["stdout"], "py:print(1)|in");
  EXPECT_EQ(res["structuredContent"]["outcome"], "ok");
  EXPECT_EQ(res["structuredContent"]["exitCode"], 0);
  // The server's limits apply when the call asks for none.
  EXPECT_EQ(backend_.last.timeout_ms, policy::Limits{}.timeout_ms);
}

TEST_F(McpServerTest, CallPolicyOnlyTightensLimits) {
  std::string sid = initialize();
  call(sid, {{"jsonrpc", "2.0"}, {"id", 1}, {"method", "tools/call"},
             {"params", {{"name", "run_js"}, {"arguments", {{"code", "1"}, {"policy", {{"limits", {{"timeoutMs", 1234}}}}}}}}}});
  EXPECT_EQ(backend_.last.timeout_ms, 1234u);
  call(sid, {{"jsonrpc", "2.0"}, {"id", 2}, {"method", "tools/call"},
             {"params", {{"name", "run_js"}, {"arguments", {{"code", "1"}, {"policy", {{"limits", {{"timeoutMs", 600000}}}}}}}}}});
  EXPECT_EQ(backend_.last.timeout_ms, policy::Limits{}.timeout_ms);
}

TEST_F(McpServerTest, BadArgumentsAreToolErrorsNotProtocolErrors) {
  std::string sid = initialize();
  auto noCode = call(sid, {{"jsonrpc", "2.0"}, {"id", 1}, {"method", "tools/call"},
                           {"params", {{"name", "run_js"}, {"arguments", {{"args", {1, 2}}}}}}});
  EXPECT_EQ(noCode["result"]["isError"], true);
  EXPECT_NE(noCode["result"]["content"][0]["text"].get<std::string>().find("code"), std::string::npos);
  auto negative = call(sid, {{"jsonrpc", "2.0"}, {"id", 2}, {"method", "tools/call"},
                             {"params", {{"name", "run_py"}, {"arguments", {{"code", "1"}, {"policy", {{"limits", {{"timeoutMs", -1}}}}}}}}}});
  EXPECT_EQ(negative["result"]["isError"], true);
  auto unknownTool = call(sid, {{"jsonrpc", "2.0"}, {"id", 3}, {"method", "tools/call"},
                                {"params", {{"name", "run_rb"}, {"arguments", {{"code", "1"}}}}}});
  EXPECT_EQ(unknownTool["error"]["code"], -32602);
}

TEST_F(McpServerTest, CancelledNotificationStopsTheRun) {
  std::string sid = initialize();
  auto fut = std::async(std::launch::async, [&] {
    return call(sid, {{"jsonrpc", "2.0"}, {"id", 77}, {"method", "tools/call"},
                      {"params", {{"name", "run_js"}, {"arguments", {{"code", "block"}}}}}});
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  auto t0 = std::chrono::steady_clock::now();
  auto r = http("POST", R"({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":77}})",
                {{"mcp-session-id", sid}});
  EXPECT_EQ(r.status, 202);
  auto j = fut.get();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
  EXPECT_EQ(j["result"]["structuredContent"]["outcome"], "killed");
}

TEST_F(McpServerTest, IdleSessionsExpire) {
  std::string sid = initialize();
  EXPECT_EQ(server_.session_count(), 1u);
  now_ += std::chrono::milliseconds(policy::Config{}.session_ttl_ms + 2000);
  auto r = http("POST", R"({"jsonrpc":"2.0","id":1,"method":"ping"})", {{"mcp-session-id", sid}});
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(server_.session_count(), 0u);
}

TEST_F(McpServerTest, StatusPageWithoutUi) {
  FakeBackend b;
  ServerOptions o;
  o.ui = false;
  McpServer s(o, policy::Config{}, b);
  std::promise<HttpResponse> p;
  s.handle(HttpRequest{"GET", "/", {}, "", ""}, [&](HttpResponse r) { p.set_value(r); });
  auto r = p.get_future().get();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(json::parse(r.body)["status"], "ok");
  auto ui = http("GET", "", {}, "/");
  EXPECT_NE(ui.body.find("<html"), std::string::npos);
  EXPECT_EQ(http("GET", "", {}, "/nope").status, 404);
}

TEST_F(McpServerTest, StdioSpeaksLinesAndReportsErrors) {
  std::vector<std::string> lines;
  std::mutex mu;
  auto run = [&](const std::string& line) {
    std::promise<void> done;
    server_.handle_line(line, [&](std::string l) { std::lock_guard lk(mu); lines.push_back(l); },
                        [&] { done.set_value(); });
    done.get_future().wait();
  };
  run("garbage");
  run(R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2024-11-05"}})");
  run(R"({"jsonrpc":"2.0","method":"notifications/initialized"})");
  run(R"({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"run_js","arguments":{"code":"x"}}})");
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(json::parse(lines[0])["error"]["code"], -32700);
  EXPECT_EQ(json::parse(lines[1])["result"]["protocolVersion"], "2024-11-05");
  EXPECT_EQ(json::parse(lines[2])["result"]["structuredContent"]["stdout"], "js:x|");
}

}  // namespace
}  // namespace onemcp::server

namespace onemcp::server {
namespace {
TEST_F(McpServerTest, HostileJsonNeverThrows) {
  std::string sid = initialize();
  for (const char* body : {"1e400", R"({"jsonrpc":"2.0","id":1e400,"method":"ping"})",
                           R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"run_js","arguments":{"code":"x","policy":{"limits":{"timeoutMs":1e400}}}}})",
                           R"({"jsonrpc":"2.0","id":[1],"method":"ping"})", R"({"jsonrpc":"2.0","id":null,"method":"ping"})",
                           R"({"jsonrpc":"2.0","id":1,"method":7})", "\"\xff\"", "", "null", "[]", R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"run_js","arguments":{"code":"x","policy":{"limits":{"timeoutMs":18446744073709551616}}}}})"}) {
    auto r = http("POST", body, {{"mcp-session-id", sid}});
    EXPECT_GE(r.status, 200) << body;
    EXPECT_NO_THROW(json::parse(r.body)) << body;
  }
}
}  // namespace
}  // namespace onemcp::server

namespace onemcp::server {
namespace {
TEST_F(McpServerTest, DeeplyNestedJsonIsRefusedNotRecursedInto) {
  std::string deep = std::string(400000, '[') + std::string(400000, ']');
  std::string line = R"({"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":)" + deep + "}}";
  std::vector<std::string> out;
  std::promise<void> done;
  server_.handle_line(line, [&](std::string l) { out.push_back(l); }, [&] { done.set_value(); });
  done.get_future().wait();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(json::parse(out[0])["error"]["code"], -32700);
  std::string sid = initialize();
  auto r = http("POST", R"({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":)" +
                            std::string(100000, '[') + std::string(100000, ']') + "}}",
                {{"mcp-session-id", sid}});
  EXPECT_EQ(r.status, 400);
  // 64 levels are fine.
  std::string ok = std::string(60, '[') + std::string(60, ']');
  EXPECT_EQ(call(sid, json::parse(R"({"jsonrpc":"2.0","id":2,"method":"ping","params":{"x":)" + ok + "}}"))["result"],
            json::object());
}
}  // namespace
}  // namespace onemcp::server
