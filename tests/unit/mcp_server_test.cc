#include "server/mcp_server.h"

#include <gtest/gtest.h>
#include <poll.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include "policy/schema.h"
#include "policy/schemas.h"
#include "server/sessions.h"

namespace onemcp::server {
namespace {

using nlohmann::json;

// Echoes the code back; "block" waits until the run is cancelled; "progress" reports 0.5, 0.3
// and 0.7; "files" leaves a text and a binary file in /out.
class FakeBackend : public RunBackend {
 public:
  Result<sandbox::RunOutput> run(const RunSpec& spec, const sandbox::CancelToken* cancel,
                                 const ProgressFn& progress) override {
    const Language lang = spec.language;
    const ipc::RunRequest req = spec.request();
    const std::string& in = spec.stdin_data;
    sandbox::RunOutput o;
    last = req;
    if (req.code == "progress") {
      progress(0.5, "half");
      progress(0.3, "back");
      progress(0.7, "");
    }
    if (req.code == "slow") std::this_thread::sleep_for(std::chrono::milliseconds(120));
    if (req.code == "block") {
      ++blocked;
      pollfd p{cancel->fd(), POLLIN, 0};
      ::poll(&p, 1, 10000);
      o.outcome = sandbox::Outcome::killed;
      o.exit_code = 137;
      return o;
    }
    if (req.code == "files") {
      o.files = {{"a.txt", 5, "hello", false}, {"b.bin", 2, std::string("\0\xff", 2), false}};
    }
    o.out = std::string(lang == Language::js ? "js:" : "py:") + req.code + "|" + in;
    o.outcome = sandbox::Outcome::ok;
    o.exit_code = 0;
    o.duration_ms = 1.5;
    return o;
  }
  ipc::RunRequest last;
  std::atomic<int> blocked{0};  // "block" runs started
};

// Records what a handler streams; `gone` plays a client that went away.
class FakeStream : public EventStream {
 public:
  explicit FakeStream(HttpResponse h) : head(std::move(h)) {}
  bool send(std::string chunk) override {
    std::lock_guard lk(mu_);
    if (ended_ || gone_) return false;
    chunks_.push_back(std::move(chunk));
    return true;
  }
  void close() override {
    std::lock_guard lk(mu_);
    ended_ = true;
    cv_.notify_all();
  }
  bool closed() const override {
    std::lock_guard lk(mu_);
    return ended_ || gone_;
  }
  void disconnect() {
    std::lock_guard lk(mu_);
    gone_ = true;
  }
  bool wait_closed() {
    std::unique_lock lk(mu_);
    return cv_.wait_for(lk, std::chrono::seconds(5), [&] { return ended_; });
  }
  // The JSON of every "data:" line, in order (keep-alives and other chunks have none).
  std::vector<json> events() {
    std::lock_guard lk(mu_);
    std::vector<json> out;
    for (auto c : chunks_) {
      if (c.starts_with("id: ")) c.erase(0, c.find('\n') + 1);
      EXPECT_EQ(c.rfind("event: message\ndata: ", 0), 0u) << c;
      EXPECT_TRUE(c.ends_with("\n\n")) << c;
      auto data = c.find("data: ");
      out.push_back(json::parse(c.substr(data + 6)));
    }
    return out;
  }
  // The "id:" of every event, in order ("" for one without).
  std::vector<std::string> ids() {
    std::lock_guard lk(mu_);
    std::vector<std::string> out;
    for (const auto& c : chunks_)
      out.push_back(c.starts_with("id: ") ? c.substr(4, c.find('\n') - 4) : "");
    return out;
  }
  const HttpResponse head;

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> chunks_;
  bool ended_ = false;
  bool gone_ = false;
};

// The handler's answer over a transport that can stream: a response or a stream.
struct Answer {
  std::optional<HttpResponse> response;
  std::shared_ptr<FakeStream> stream;
};

class McpServerTest : public ::testing::Test {
 protected:
  McpServerTest() : server_(make_opts(), policy::Config{}, backend_) {}

  ServerOptions make_opts() {
    ServerOptions o;
    o.now = [this] { return now_; };
    o.hosts.port = 7800;
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

  // Like http(), over a transport that can stream.
  Answer exchange(std::string method, std::string body, std::map<std::string, std::string> h) {
    HttpRequest r;
    r.method = method;
    r.target = "/mcp";
    r.body = std::move(body);
    if (method == "POST") h.emplace("content-type", "application/json");
    h.emplace("host", "127.0.0.1:7800");
    r.headers = h;
    auto answer = std::make_shared<Answer>();
    auto answered = std::make_shared<std::promise<void>>();
    r.start_stream = [answer, answered](HttpResponse head) {
      answer->stream = std::make_shared<FakeStream>(std::move(head));
      answered->set_value();
      return answer->stream;
    };
    server_.handle(r, [answer, answered](HttpResponse resp) {
      answer->response = std::move(resp);
      answered->set_value();
    });
    answered->get_future().wait();
    return *answer;
  }

  // An initialized session with its GET stream open.
  std::pair<std::string, std::shared_ptr<FakeStream>> listening_session() {
    std::string sid = initialize();
    EXPECT_EQ(http("POST", R"({"jsonrpc":"2.0","method":"notifications/initialized"})",
                   {{"mcp-session-id", sid}})
                  .status,
              202);
    auto a = exchange("GET", "", {{"mcp-session-id", sid}, {"accept", "text/event-stream"}});
    EXPECT_TRUE(a.stream);
    return {sid, a.stream};
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
  // A notification needs its session; a request without one runs on its own (next test).
  auto missing = http("POST", R"({"jsonrpc":"2.0","method":"notifications/initialized"})");
  EXPECT_EQ(missing.status, 400);
  EXPECT_NE(missing.body.find("Mcp-Session-Id header is required"), std::string::npos);
  EXPECT_EQ(http("DELETE", "").status, 400);
  auto unknown = http("POST", R"({"jsonrpc":"2.0","id":6,"method":"ping"})", {{"mcp-session-id", "nope"}});
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(call(sid, {{"jsonrpc", "2.0"}, {"id", 7}, {"method", "ping"}})["result"], json::object());
  EXPECT_EQ(http("DELETE", "", {{"mcp-session-id", sid}}).status, 200);
  EXPECT_EQ(http("POST", R"({"jsonrpc":"2.0","id":8,"method":"ping"})", {{"mcp-session-id", sid}}).status, 404);
  EXPECT_EQ(http("DELETE", "", {{"mcp-session-id", sid}}).status, 404);
}

// The original 1mcp's interface: a tools/call POSTed alone, with Content-Type only, no
// initialize and no session, is answered with its result as plain JSON.
TEST_F(McpServerTest, RequestsWithoutASessionAreAnsweredOnTheirOwn) {
  const size_t sessions_before = server_.session_count();
  auto r = http(
      "POST",
      R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"run_js","arguments":{"code":"hi"}}})",
      {{"accept", "*/*"}});
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(header(r, "Content-Type"), "application/json");
  EXPECT_TRUE(header(r, "Mcp-Session-Id").empty());
  json body = json::parse(r.body);
  EXPECT_EQ(body["id"], 1);
  EXPECT_EQ(body["result"]["structuredContent"]["stdout"], "js:hi|");
  auto list = json::parse(http("POST", R"({"jsonrpc":"2.0","id":"a","method":"tools/list"})").body);
  EXPECT_EQ(list["result"]["tools"].size(), 4u);  // run_js, run_py, session_create, session_close
  EXPECT_EQ(json::parse(http("POST", R"({"jsonrpc":"2.0","id":5,"method":"ping"})").body)["result"],
            json::object());
  // Nothing stays behind.
  EXPECT_EQ(server_.session_count(), sessions_before);
  // The same checks as any request: a bad envelope, an unknown tool.
  EXPECT_EQ(http("POST", R"({"id":2,"method":"tools/list"})").status, 400);
  auto unknown = json::parse(
      http("POST", R"({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"nope"}})")
          .body);
  EXPECT_EQ(unknown["error"]["code"], -32602);
}

TEST_F(McpServerTest, NotificationsGet202AndGetIs405) {
  std::string sid = initialize();
  auto r = http("POST", R"({"jsonrpc":"2.0","method":"notifications/initialized"})", {{"mcp-session-id", sid}});
  EXPECT_EQ(r.status, 202);
  EXPECT_TRUE(r.body.empty());
  // A transport that cannot stream offers no GET stream.
  auto g = http("GET", "", {{"mcp-session-id", sid}, {"accept", "text/event-stream"}});
  EXPECT_EQ(g.status, 405);
  EXPECT_EQ(header(g, "Allow"), "POST, DELETE");
  auto put = http("PUT", "", {{"mcp-session-id", sid}});
  EXPECT_EQ(put.status, 405);
  EXPECT_EQ(header(put, "Allow"), "GET, POST, DELETE");
}

TEST_F(McpServerTest, OriginAndHostValidation) {
  auto bad = http("POST", "{}", {{"origin", "https://evil.example"}});
  EXPECT_EQ(bad.status, 403);
  auto rebinding = http("POST", "{}", {{"origin", "http://evil.example:7800"}, {"host", "evil.example:7800"}});
  EXPECT_EQ(rebinding.status, 403);
  auto ok = http(
      "POST",
      R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18"}})",
      {{"origin", "http://localhost:7800"}});
  EXPECT_EQ(ok.status, 200);
  // Another local web app is another origin.
  auto other = http("POST", "{}", {{"origin", "http://localhost:3000"}});
  EXPECT_EQ(other.status, 403);
}

TEST_F(McpServerTest, TypesAreServedReadOnlyFromTheEmbeddedFiles) {
  auto list = http("GET", "", {}, "/types");
  ASSERT_EQ(list.status, 200);
  auto files = json::parse(list.body)["files"];
  EXPECT_NE(std::find(files.begin(), files.end(), "index.d.ts"), files.end());
  EXPECT_EQ(files.size(), policy::schema_file_names().size());

  auto dts = http("GET", "", {}, "/types/index.d.ts");
  ASSERT_EQ(dts.status, 200);
  EXPECT_EQ(dts.body, *policy::schema_text("index.d.ts"));
  EXPECT_EQ(header(dts, "Content-Type"), "application/typescript; charset=utf-8");
  EXPECT_EQ(header(dts, "X-Content-Type-Options"), "nosniff");
  auto schema = http("GET", "", {}, "/types/run.output.schema.json?x=1");
  ASSERT_EQ(schema.status, 200);
  EXPECT_EQ(json::parse(schema.body), policy::run_output_schema());
  EXPECT_EQ(header(schema, "Content-Type"), "application/json; charset=utf-8");
  EXPECT_EQ(header(schema, "X-Content-Type-Options"), "nosniff");

  for (const char* bad : {"/types/nope.d.ts", "/types/../README.md", "/types/%2e%2e/x",
                          "/types/index.d.ts/", "/types//index.d.ts"}) {
    EXPECT_EQ(http("GET", "", {}, bad).status, 404) << bad;
  }
  EXPECT_EQ(http("POST", "{}", {}, "/types/index.d.ts").status, 405);
  // The same Origin and Host checks as /mcp: no other web page may read them.
  EXPECT_EQ(http("GET", "", {{"origin", "https://evil.example"}}, "/types/index.d.ts").status, 403);
  EXPECT_EQ(http("GET", "", {{"host", "evil.example:7800"}}, "/types/index.d.ts").status, 403);
  EXPECT_EQ(http("GET", "", {{"origin", "http://localhost:7800"}}, "/types/index.d.ts").status,
            200);
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
  auto unknown = call(sid, {{"jsonrpc", "2.0"}, {"id", "x"}, {"method", "prompts/list"}});
  EXPECT_EQ(unknown["error"]["code"], -32601);
  EXPECT_EQ(unknown["id"], "x");
  auto badparams = call(sid, {{"jsonrpc", "2.0"}, {"id", 3}, {"method", "tools/call"}, {"params", 5}});
  EXPECT_EQ(badparams["error"]["code"], -32602);
  auto wrongtype = http("POST", "{}", {{"mcp-session-id", sid}, {"content-type", "text/plain"}});
  EXPECT_EQ(wrongtype.status, 415);
  auto badproto = http("POST", R"({"jsonrpc":"2.0","id":1,"method":"ping"})",
                       {{"mcp-session-id", sid}, {"mcp-protocol-version", "2099-01-01"}});
  EXPECT_EQ(badproto.status, 400);
  // Supported, but newer than this session negotiated (2025-06-18); an older one is accepted.
  auto other = http("POST", R"({"jsonrpc":"2.0","id":1,"method":"ping"})",
                    {{"mcp-session-id", sid}, {"mcp-protocol-version", "2025-11-25"}});
  EXPECT_EQ(other.status, 400);
  EXPECT_NE(json::parse(other.body)["error"]["message"].get<std::string>().find("negotiated (2025-06-18)"),
            std::string::npos);
  auto older = http("POST", R"({"jsonrpc":"2.0","id":1,"method":"ping"})",
                    {{"mcp-session-id", sid}, {"mcp-protocol-version", "2025-03-26"}});
  EXPECT_EQ(older.status, 200);
  auto same = http("POST", R"({"jsonrpc":"2.0","id":1,"method":"ping"})",
                   {{"mcp-session-id", sid}, {"mcp-protocol-version", "2025-06-18"}});
  EXPECT_EQ(same.status, 200);
  auto none = http("POST", R"({"jsonrpc":"2.0","id":1,"method":"ping"})", {{"mcp-session-id", sid}});
  EXPECT_EQ(none.status, 200);
}

TEST_F(McpServerTest, ToolsListAdvertisesSchemas) {
  std::string sid = initialize();
  auto j = call(sid, {{"jsonrpc", "2.0"}, {"id", 1}, {"method", "tools/list"}});
  auto tools = j["result"]["tools"];
  ASSERT_EQ(tools.size(), 4u);
  EXPECT_EQ(tools[0]["name"], "run_js");
  EXPECT_EQ(tools[1]["name"], "run_py");
  EXPECT_EQ(tools[2]["name"], "session_create");
  EXPECT_EQ(tools[3]["name"], "session_close");
  tools.erase(tools.begin() + 2, tools.end());
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
  EXPECT_TRUE(policy::validate(policy::run_output_schema(), res["structuredContent"]));
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
  // A client that cannot take a stream (this one) still needs an answer to its POST: no result.
  EXPECT_FALSE(j.contains("result")) << j;
  EXPECT_EQ(j["error"]["message"], "Request cancelled");

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
  EXPECT_EQ(json::parse(r.body)["types"], "/types/index.d.ts");
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
  // A batch in a 2024-11-05 session: refused as a whole (2025-03-26 only)...
  run(R"([{"jsonrpc":"2.0","id":3,"method":"ping"}])");
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(json::parse(lines[3])["error"]["code"], -32600);
  // ... answered with one line in a 2025-03-26 session.
  run(R"({"jsonrpc":"2.0","id":4,"method":"initialize","params":{"protocolVersion":"2025-03-26"}})");
  run(R"([{"jsonrpc":"2.0","id":5,"method":"ping"},{"jsonrpc":"2.0","method":"notifications/initialized"},)"
      R"({"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"run_py","arguments":{"code":"y"}}}])");
  ASSERT_EQ(lines.size(), 6u);
  auto batch = json::parse(lines[5]);
  ASSERT_TRUE(batch.is_array() && batch.size() == 2) << batch;
  for (auto& m : batch) {
    if (m["id"] == 5)
      EXPECT_EQ(m["result"], json::object());
    else
      EXPECT_EQ(m["result"]["structuredContent"]["stdout"], "py:y|") << m;
  }
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

namespace onemcp::server {
namespace {

const char* kSse = "text/event-stream";
const char* kBoth = "application/json, text/event-stream";
const char* kInitialize =
    R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18"}})";
const char* kInitialized = R"({"jsonrpc":"2.0","method":"notifications/initialized"})";

json tools_call(const json& id, const std::string& code, const json& token = nullptr) {
  json params{{"name", "run_js"}, {"arguments", {{"code", code}}}};
  if (!token.is_null()) params["_meta"] = {{"progressToken", token}};
  return {{"jsonrpc", "2.0"}, {"id", id}, {"method", "tools/call"}, {"params", params}};
}

// {progress, total, message} of notifications/progress for `token`, in order, and whatever
// else was sent.
std::vector<json> progress_of(const std::vector<json>& events, const json& token) {
  std::vector<json> out;
  for (const auto& e : events) {
    if (!e.contains("method")) continue;
    auto s = policy::validate(policy::events_schema(), e);  // types/events.schema.json
    EXPECT_TRUE(s) << e.dump() << ": " << (s ? "" : s.error().message);
    if (e.value("method", "") != "notifications/progress") continue;
    EXPECT_EQ(e["params"]["progressToken"], token);
    json p = e["params"];
    p.erase("progressToken");
    out.push_back(p);
  }
  return out;
}

const json kRunning = {{"progress", 0}, {"total", 1}, {"message", "running"}};
const json kDone = {{"progress", 1}, {"total", 1}, {"message", "done"}};

TEST_F(McpServerTest, GetStreamNeedsAcceptAndAKnownSession) {
  std::string sid = initialize();
  auto no_accept = exchange("GET", "", {{"mcp-session-id", sid}});
  ASSERT_TRUE(no_accept.response);
  EXPECT_EQ(no_accept.response->status, 405);
  auto json_only = exchange("GET", "", {{"mcp-session-id", sid}, {"accept", "application/json"}});
  EXPECT_EQ(json_only.response->status, 405);
  auto no_session = exchange("GET", "", {{"accept", kSse}});
  ASSERT_TRUE(no_session.response);
  EXPECT_EQ(no_session.response->status, 400);
  auto unknown = exchange("GET", "", {{"mcp-session-id", "nope"}, {"accept", kSse}});
  EXPECT_EQ(unknown.response->status, 404);
  auto bad_version =
      exchange("GET", "",
               {{"mcp-session-id", sid}, {"accept", kSse}, {"mcp-protocol-version", "1999-01-01"}});
  EXPECT_EQ(bad_version.response->status, 400);

  auto ok = exchange("GET", "", {{"mcp-session-id", sid}, {"accept", kSse}});
  ASSERT_TRUE(ok.stream);
  EXPECT_EQ(ok.stream->head.status, 200);
  EXPECT_EQ(header(ok.stream->head, "Content-Type"), "text/event-stream");
  EXPECT_EQ(header(ok.stream->head, "Cache-Control"), "no-cache");
}

TEST_F(McpServerTest, SecondGetStreamIsAConflictUntilTheFirstIsGone) {
  std::string sid = initialize();
  auto first = exchange("GET", "", {{"mcp-session-id", sid}, {"accept", kSse}});
  ASSERT_TRUE(first.stream);
  auto second = exchange("GET", "", {{"mcp-session-id", sid}, {"accept", kSse}});
  ASSERT_TRUE(second.response);
  EXPECT_EQ(second.response->status, 409);
  EXPECT_FALSE(first.stream->closed());
  first.stream->disconnect();
  auto third = exchange("GET", "", {{"mcp-session-id", sid}, {"accept", kSse}});
  EXPECT_TRUE(third.stream);
  // Another session has its own.
  auto other = exchange("GET", "", {{"mcp-session-id", initialize()}, {"accept", kSse}});
  EXPECT_TRUE(other.stream);
}

TEST_F(McpServerTest, DeleteAndShutdownCloseTheGetStream) {
  auto [sid, stream] = listening_session();
  EXPECT_FALSE(stream->closed());
  EXPECT_EQ(http("DELETE", "", {{"mcp-session-id", sid}}).status, 200);
  EXPECT_TRUE(stream->closed());

  std::shared_ptr<FakeStream> kept;
  {
    McpServer other(make_opts(), policy::Config{}, backend_);
    std::promise<void> p;
    HttpRequest init{"POST", "/mcp", {{"content-type", "application/json"}}, kInitialize, ""};
    std::string other_sid;
    other.handle(init, [&](HttpResponse r) {
      other_sid = header(r, "Mcp-Session-Id");
      p.set_value();
    });
    p.get_future().wait();
    HttpRequest get{"GET", "/mcp", {{"mcp-session-id", other_sid}, {"accept", kSse}}, "", ""};
    get.start_stream = [&](HttpResponse head) { return kept = std::make_shared<FakeStream>(head); };
    other.handle(get, [](HttpResponse r) { ADD_FAILURE() << r.status; });
    ASSERT_TRUE(kept);
    EXPECT_FALSE(kept->closed());
  }
  EXPECT_TRUE(kept->closed());
}

TEST_F(McpServerTest, ListeningSessionDoesNotExpireWhileItsStreamIsOpen) {
  auto [sid, stream] = listening_session();
  std::string other = initialize();
  auto ping = [&](const std::string& s) {
    return http("POST", R"({"jsonrpc":"2.0","id":1,"method":"ping"})", {{"mcp-session-id", s}});
  };
  now_ += std::chrono::milliseconds(policy::Config{}.session_ttl_ms + 2000);
  EXPECT_EQ(ping(other).status, 404);
  EXPECT_EQ(ping(sid).status, 200);
  stream->disconnect();
  now_ += std::chrono::milliseconds(policy::Config{}.session_ttl_ms + 2000);
  EXPECT_EQ(ping(sid).status, 404);
}

// The GET stream's events carry ids; a client that lost the stream gets, on reconnecting with
// Last-Event-ID, what was sent after that event, also while it had no stream open.
TEST_F(McpServerTest, TheGetStreamResumesFromLastEventId) {
  auto [sid, stream] = listening_session();
  server_.notify_tools_changed();
  server_.notify_tools_changed();
  EXPECT_EQ(stream->ids(), (std::vector<std::string>{"1", "2"}));
  stream->disconnect();
  server_.notify_tools_changed();  // nobody listening: kept
  auto get = [&](std::map<std::string, std::string> h) {
    h.emplace("mcp-session-id", sid);
    h.emplace("accept", "text/event-stream");
    auto a = exchange("GET", "", h);
    EXPECT_TRUE(a.stream) << (a.response ? a.response->body : "");
    return a.stream;
  };
  auto resumed = get({{"last-event-id", "1"}});
  EXPECT_EQ(resumed->ids(), (std::vector<std::string>{"2", "3"}));
  for (auto& e : resumed->events()) EXPECT_EQ(e["method"], "notifications/tools/list_changed");
  resumed->disconnect();
  for (auto [last, why] : {std::pair<const char*, const char*>{nullptr, "no Last-Event-ID"},
                           {"junk", "not an id"},
                           {"99", "an id this stream never sent"}}) {
    auto s = last ? get({{"last-event-id", last}}) : get({});
    EXPECT_TRUE(s->ids().empty()) << "replayed with " << why;
    s->disconnect();
  }
  auto all = get({{"last-event-id", "0"}});
  EXPECT_EQ(all->ids(), (std::vector<std::string>{"1", "2", "3"}));
  server_.notify_tools_changed();
  EXPECT_EQ(all->ids(), (std::vector<std::string>{"1", "2", "3", "4"}));
}

TEST_F(McpServerTest, ToolsListChangedReachesEveryInitializedSession) {
  auto init = http("POST", kInitialize);
  EXPECT_EQ(json::parse(init.body)["result"]["capabilities"]["tools"]["listChanged"], true);

  auto [a, a_stream] = listening_session();
  auto [b, b_stream] = listening_session();
  std::string silent = initialize();  // initialized, no GET stream: nothing to send on
  EXPECT_EQ(http("POST", kInitialized, {{"mcp-session-id", silent}}).status, 202);
  std::string fresh = initialize();  // not initialized yet: not told
  auto fresh_stream = exchange("GET", "", {{"mcp-session-id", fresh}, {"accept", kSse}}).stream;
  ASSERT_TRUE(fresh_stream);
  b_stream->disconnect();

  std::vector<std::string> lines;
  std::mutex mu;
  auto write = [&](std::string l) {
    std::lock_guard lk(mu);
    lines.push_back(l);
  };
  auto stdio = [&](const std::string& line) {
    std::promise<void> done;
    server_.handle_line(line, write, [&] { done.set_value(); });
    done.get_future().wait();
  };
  stdio(kInitialize);
  stdio(kInitialized);

  server_.notify_tools_changed();
  const json changed = {{"jsonrpc", "2.0"}, {"method", "notifications/tools/list_changed"}};
  EXPECT_TRUE(policy::validate(policy::events_schema(), changed));
  EXPECT_EQ(a_stream->events(), std::vector<json>{changed});
  EXPECT_TRUE(b_stream->events().empty());
  EXPECT_TRUE(fresh_stream->events().empty());
  std::lock_guard lk(mu);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(json::parse(lines[1]), changed);
}

TEST_F(McpServerTest, ProgressTokenTurnsTheResponseIntoAnSseStream) {
  std::string sid = initialize();
  auto a = exchange("POST", tools_call(5, "x", "tok").dump(),
                    {{"mcp-session-id", sid}, {"accept", kBoth}});
  ASSERT_TRUE(a.stream);
  EXPECT_EQ(header(a.stream->head, "Content-Type"), "text/event-stream");
  ASSERT_TRUE(a.stream->wait_closed());
  auto events = a.stream->events();
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(progress_of(events, "tok"), (std::vector<json>{kRunning, kDone}));
  EXPECT_EQ(events[2]["id"], 5);
  EXPECT_EQ(events[2]["result"]["structuredContent"]["stdout"], "js:x|");

  // An integer token; a backend's own reports in between, never decreasing.
  auto b = exchange("POST", tools_call("b", "progress", 42).dump(),
                    {{"mcp-session-id", sid}, {"accept", kBoth}});
  ASSERT_TRUE(b.stream && b.stream->wait_closed());
  auto half = json{{"progress", 0.5}, {"total", 1}, {"message", "half"}};
  auto more = json{{"progress", 0.7}, {"total", 1}};
  EXPECT_EQ(progress_of(b.stream->events(), 42), (std::vector<json>{kRunning, half, more, kDone}));
  EXPECT_EQ(b.stream->events().back()["id"], "b");
}

TEST_F(McpServerTest, WithoutProgressTokenOrSseTheResponseIsPlainJson) {
  std::string sid = initialize();
  for (auto [msg, accept] : {std::pair{tools_call(1, "x"), kBoth},
                             std::pair{tools_call(2, "x", "tok"), "application/json"},
                             std::pair{tools_call(3, "x", json::array({1})), kBoth}}) {
    auto a = exchange("POST", msg.dump(), {{"mcp-session-id", sid}, {"accept", accept}});
    ASSERT_TRUE(a.response) << msg;
    EXPECT_EQ(a.response->status, 200);
    EXPECT_EQ(json::parse(a.response->body)["result"]["structuredContent"]["stdout"], "js:x|");
  }
}

// The last report is left to the response there: see call_tool.
TEST_F(McpServerTest, StdioWritesProgressLinesBeforeTheResponse) {
  std::mutex mu;
  std::vector<std::pair<json, std::chrono::steady_clock::time_point>> lines;
  auto write = [&](std::string l) {
    std::lock_guard lk(mu);
    lines.emplace_back(json::parse(l), std::chrono::steady_clock::now());
  };
  auto call = [&](int id, const std::string& code, const std::string& token) {
    lines.clear();
    std::promise<void> done;
    server_.handle_line(tools_call(id, code, token).dump(), write, [&] { done.set_value(); });
    done.get_future().wait();
    std::vector<json> out;
    for (auto& [line, at] : lines) out.push_back(line);
    return out;
  };
  // A quick run: no start report, the response alone (a client reading both at once would
  // handle the report after the response).
  auto quick = call(9, "x", "p");
  ASSERT_EQ(quick.size(), 1u);
  EXPECT_EQ(quick[0]["id"], 9);

  // A run still going after 50 ms reports its start, and its answer comes 20 ms or more later.
  auto slow = call(10, "slow", "s");
  ASSERT_EQ(slow.size(), 2u);
  EXPECT_EQ(progress_of(slow, "s"), std::vector<json>{kRunning});
  EXPECT_EQ(slow[1]["id"], 10);
  EXPECT_GE(lines[1].second - lines[0].second, std::chrono::milliseconds(20));

  // Dependency progress goes out as it comes.
  auto deps = call(11, "progress", "q");
  auto half = json{{"progress", 0.5}, {"total", 1}, {"message", "half"}};
  auto more = json{{"progress", 0.7}, {"total", 1}};
  EXPECT_EQ(progress_of(deps, "q"), (std::vector<json>{half, more}));
  EXPECT_EQ(deps.back()["id"], 11);
}

TEST_F(McpServerTest, ToolsComeFromTheProviderAndTheCurrentConfig) {
  FakeBackend b;
  ServerOptions o = make_opts();
  o.tools = [](const policy::Policy& p) {
    return json::array({{{"name", "t" + std::to_string(p.limits.timeout_ms)}}});
  };
  McpServer s(o, policy::Config{}, b);
  auto list = [&] {
    std::promise<json> p;
    s.handle_line(R"({"jsonrpc":"2.0","id":1,"method":"tools/list"})",
                  [&](std::string l) { p.set_value(json::parse(l)); }, [] {});
    return p.get_future().get()["result"]["tools"][0]["name"];
  };
  EXPECT_EQ(list(), "t60000");
  policy::Config c;
  c.policy.limits.timeout_ms = 5000;
  s.set_config(c);
  EXPECT_EQ(list(), "t5000");
  std::promise<void> ran;
  auto ignore = [](std::string) {};
  s.handle_line(tools_call(2, "x").dump(), ignore, [&] { ran.set_value(); });
  ran.get_future().wait();
  EXPECT_EQ(b.last.timeout_ms, 5000u);
}

// ---- the front door: sessions, fair admission, abandonment, shutdown ----

// One POST to `s`, answered through a future (the handler may answer from another thread).
std::future<HttpResponse> post(McpServer& s, const json& body, const std::string& sid = "",
                               const std::string& principal = "",
                               std::shared_ptr<Abandonment> abandonment = nullptr) {
  HttpRequest r;
  r.method = "POST";
  r.target = "/mcp";
  r.body = body.dump();
  r.headers = {{"content-type", "application/json"}, {"host", "127.0.0.1:7800"}};
  if (!sid.empty()) r.headers["mcp-session-id"] = sid;
  r.principal = principal;
  r.abandonment = std::move(abandonment);
  auto p = std::make_shared<std::promise<HttpResponse>>();
  auto f = p->get_future();
  s.handle(r, [p](HttpResponse resp) { p->set_value(std::move(resp)); });
  return f;
}

const json kInit = {{"jsonrpc", "2.0"},
                    {"id", 1},
                    {"method", "initialize"},
                    {"params", {{"protocolVersion", "2025-06-18"}}}};

json run_call(int id, const std::string& code) {
  return {{"jsonrpc", "2.0"},
          {"id", id},
          {"method", "tools/call"},
          {"params", {{"name", "run_js"}, {"arguments", {{"code", code}}}}}};
}

std::string session_of(const HttpResponse& r) {
  for (auto& [k, v] : r.headers)
    if (k == "Mcp-Session-Id") return v;
  return "";
}

bool ready(std::future<HttpResponse>& f,
           std::chrono::milliseconds wait = std::chrono::milliseconds(0)) {
  return f.wait_for(wait) == std::future_status::ready;
}

// Until `cond` holds (5 s at most).
template <class F>
bool eventually(F cond) {
  for (int i = 0; i < 500; ++i) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return cond();
}

TEST_F(McpServerTest, SessionCapEvictsTheLeastRecentlyUsedIdleSession) {
  ServerOptions o = make_opts();
  o.max_sessions = 2;
  McpServer s(o, policy::Config{}, backend_);
  const json ping = {{"jsonrpc", "2.0"}, {"id", 9}, {"method", "ping"}};
  std::string a = session_of(post(s, kInit).get());
  now_ += std::chrono::seconds(1);
  std::string b = session_of(post(s, kInit).get());
  now_ += std::chrono::seconds(1);
  EXPECT_EQ(post(s, ping, a).get().status, 200);  // a is now the most recently used
  now_ += std::chrono::seconds(1);
  std::string c = session_of(post(s, kInit).get());
  ASSERT_FALSE(c.empty());
  EXPECT_EQ(s.session_count(), 2u);
  EXPECT_EQ(post(s, ping, b).get().status, 404);  // evicted
  EXPECT_EQ(post(s, ping, a).get().status, 200);

  // A session with a call in flight is never evicted, however old.
  now_ += std::chrono::seconds(1);
  auto blocked = post(s, run_call(2, "block"), c);
  ASSERT_TRUE(eventually([&] { return s.session_count() == 2 && !ready(blocked); }));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  std::string d = session_of(post(s, kInit).get());
  ASSERT_FALSE(d.empty());
  EXPECT_EQ(post(s, ping, a).get().status, 404);  // a was idle, c was not
  // Every session busy: a new one is refused as retryable, nothing is evicted.
  auto blocked2 = post(s, run_call(3, "block"), d);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  auto refused = post(s, kInit).get();
  EXPECT_EQ(refused.status, 429);
  EXPECT_EQ(json::parse(refused.body)["error"]["code"], -32000);
  EXPECT_EQ(header(refused, "Retry-After"), "1");
  s.cancel_all();
  EXPECT_EQ(blocked.get().status, 200);
  EXPECT_EQ(blocked2.get().status, 200);
}

TEST_F(McpServerTest, OneClientCannotTakeEveryRunSlot) {
  ServerOptions o = make_opts();
  o.runs = {2, 1, 10, 2};  // 2 slots, 1 per client, 2 waiting per client
  McpServer s(o, policy::Config{}, backend_);
  std::string a = session_of(post(s, kInit).get());
  std::string b = session_of(post(s, kInit).get());
  std::vector<std::future<HttpResponse>> flood;
  flood.push_back(post(s, run_call(10, "block"), a));
  ASSERT_TRUE(eventually([&] { return backend_.blocked == 1; }));  // running, not queued
  for (int i = 1; i < 3; ++i) flood.push_back(post(s, run_call(10 + i, "block"), a));
  // a's fourth call finds its queue full: a retryable JSON-RPC error, HTTP 429, never a result
  // that looks like the user's code failing.
  auto refused = post(s, run_call(20, "x"), a).get();
  EXPECT_EQ(refused.status, 429);
  EXPECT_EQ(header(refused, "Retry-After"), "1");
  json e = json::parse(refused.body);
  EXPECT_EQ(e["id"], 20);
  EXPECT_EQ(e["error"]["code"], -32000);
  EXPECT_EQ(e["error"]["data"]["retryable"], true);
  EXPECT_NE(e["error"]["message"].get<std::string>().find("busy"), std::string::npos);
  // b's call runs at once in the slot a may not take.
  auto t0 = std::chrono::steady_clock::now();
  auto other = post(s, run_call(30, "quick"), b);
  ASSERT_TRUE(ready(other, std::chrono::seconds(5)));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(1));
  EXPECT_EQ(json::parse(other.get().body)["result"]["structuredContent"]["stdout"], "js:quick|");
  for (auto& f : flood) EXPECT_FALSE(ready(f));
  s.cancel_all();
  for (auto& f : flood) EXPECT_EQ(f.get().status, 200);
}

TEST_F(McpServerTest, ASessionBelongsToThePrincipalThatCreatedIt) {
  const json ping = {{"jsonrpc", "2.0"}, {"id", 9}, {"method", "ping"}};
  std::string sid = session_of(post(server_, kInit, "", "token:alice").get());
  ASSERT_FALSE(sid.empty());
  EXPECT_EQ(post(server_, ping, sid, "token:alice").get().status, 200);
  EXPECT_EQ(post(server_, ping, sid, "token:bob").get().status, 404);
  EXPECT_EQ(post(server_, ping, sid, "").get().status, 404);
  HttpRequest del{"DELETE", "/mcp", {{"mcp-session-id", sid}, {"host", "127.0.0.1:7800"}}, "", ""};
  del.principal = "token:bob";
  std::promise<int> p;
  server_.handle(del, [&](HttpResponse r) { p.set_value(r.status); });
  EXPECT_EQ(p.get_future().get(), 404);
  EXPECT_EQ(post(server_, ping, sid, "token:alice").get().status, 200);
}

// JSON-RPC batches exist in protocol version 2025-03-26 only (2025-06-18 removed them).
TEST_F(McpServerTest, BatchesIn2025_03_26Sessions) {
  std::string sid = initialize("2025-03-26");
  auto r = http(
      "POST",
      json::array(
          {{{"jsonrpc", "2.0"}, {"id", 1}, {"method", "ping"}},
           {{"jsonrpc", "2.0"}, {"method", "notifications/initialized"}},
           run_call(2, "print-me"),
           {{"jsonrpc", "2.0"}, {"id", 3}, {"method", "nope"}},
           5,
           {{"jsonrpc", "2.0"}, {"id", 4}, {"method", "initialize"}, {"params", json::object()}}})
          .dump(),
      {{"mcp-session-id", sid}});
  ASSERT_EQ(r.status, 200) << r.body;
  auto all = json::parse(r.body);
  ASSERT_TRUE(all.is_array()) << all;
  ASSERT_EQ(all.size(), 5u) << all;  // every element but the notification
  std::map<std::string, json> by_id;
  for (auto& m : all) by_id[m["id"].dump()] = m;
  EXPECT_EQ(by_id["1"]["result"], json::object());
  EXPECT_EQ(by_id["2"]["result"]["structuredContent"]["stdout"], "js:print-me|");
  EXPECT_EQ(by_id["3"]["error"]["code"], -32601);
  EXPECT_EQ(by_id["null"]["error"]["code"], -32600);  // 5 is no message
  EXPECT_EQ(by_id["4"]["error"]["code"], -32600);     // initialize cannot be batched

  // Only notifications: accepted, nothing to answer.
  auto n = http("POST", R"([{"jsonrpc":"2.0","method":"notifications/initialized"}])",
                {{"mcp-session-id", sid}});
  EXPECT_EQ(n.status, 202);
  EXPECT_EQ(http("POST", "[]", {{"mcp-session-id", sid}}).status, 400);
  // No session, or a session of another version: refused as a whole.
  EXPECT_EQ(http("POST", R"([{"jsonrpc":"2.0","id":1,"method":"ping"}])").status, 400);
  std::string newer = initialize("2025-06-18");
  auto refused =
      http("POST", R"([{"jsonrpc":"2.0","id":1,"method":"ping"}])", {{"mcp-session-id", newer}});
  EXPECT_EQ(refused.status, 400);
  EXPECT_NE(refused.body.find("2025-03-26 only"), std::string::npos) << refused.body;
}

TEST_F(McpServerTest, ACallTheClientCancelledEndsItsStreamWithoutAResponse) {
  std::string sid = initialize();
  const int before = backend_.blocked;
  auto streamed = std::async(std::launch::async, [&] {
    return exchange("POST", tools_call(78, "block").dump(),
                    {{"mcp-session-id", sid}, {"accept", "application/json, text/event-stream"}});
  });
  ASSERT_TRUE(eventually([&] { return backend_.blocked == before + 1; }));
  EXPECT_EQ(http("POST", R"({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":78}})",
                 {{"mcp-session-id", sid}})
                .status,
            202);
  auto a = streamed.get();
  ASSERT_TRUE(a.stream) << "answered with " << (a.response ? a.response->body : "");
  EXPECT_TRUE(a.stream->wait_closed());
  EXPECT_TRUE(a.stream->events().empty());
  // The session goes on.
  EXPECT_EQ(call(sid, {{"jsonrpc", "2.0"}, {"id", 79}, {"method", "ping"}})["result"], json::object());
}

TEST_F(McpServerTest, AnAbandonedCallIsCancelled) {
  std::string sid = initialize();
  auto gone = std::make_shared<Abandonment>();
  auto f = post(server_, run_call(5, "block"), sid, "", gone);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(ready(f));
  auto t0 = std::chrono::steady_clock::now();
  gone->abandon();  // the client closed its connection
  ASSERT_TRUE(ready(f, std::chrono::seconds(5)));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
  EXPECT_EQ(json::parse(f.get().body)["result"]["structuredContent"]["outcome"], "killed");

  // Abandoned while it waited for a slot: it never runs.
  ServerOptions o = make_opts();
  o.runs = {1, 1, 10, 10};
  McpServer s(o, policy::Config{}, backend_);
  std::string a = session_of(post(s, kInit).get());
  const int before = backend_.blocked;
  auto running = post(s, run_call(1, "block"), a);
  ASSERT_TRUE(eventually([&] { return backend_.blocked == before + 1; }));
  auto queued_gone = std::make_shared<Abandonment>();
  auto queued = post(s, run_call(2, "never-runs"), a, "", queued_gone);
  queued_gone->abandon();
  s.cancel_all();
  running.get();
  EXPECT_EQ(json::parse(queued.get().body)["error"]["message"], "Request cancelled");
  EXPECT_NE(backend_.last.code, "never-runs");
}

TEST_F(McpServerTest, ShutdownLetsCallsFinishThenAnswersTheRestWithAnError) {
  ServerOptions o = make_opts();
  o.runs = {1, 1, 10, 10};
  McpServer s(o, policy::Config{}, backend_);
  std::string a = session_of(post(s, kInit).get());
  auto running = post(s, run_call(1, "block"), a);
  auto queued = post(s, run_call(2, "block"), a);
  EXPECT_TRUE(s.wait_calls(std::chrono::milliseconds(0)) == false);
  s.begin_shutdown();
  // New calls and sessions are refused; the ones in flight go on.
  auto late = post(s, run_call(3, "x"), a).get();
  EXPECT_EQ(late.status, 503);
  EXPECT_EQ(json::parse(late.body)["error"]["code"], -32003);
  EXPECT_EQ(post(s, kInit).get().status, 503);
  EXPECT_FALSE(s.wait_calls(std::chrono::milliseconds(100)));
  EXPECT_FALSE(ready(running));
  s.abort_calls();
  EXPECT_TRUE(s.wait_calls(std::chrono::seconds(5)));
  for (auto* f : {&running, &queued}) {
    ASSERT_TRUE(ready(*f));
    auto r = f->get();
    EXPECT_EQ(r.status, 503);
    json e = json::parse(r.body);
    EXPECT_EQ(e["error"]["code"], -32003);
    EXPECT_NE(e["error"]["message"].get<std::string>().find("shutting down"), std::string::npos);
  }
}

TEST_F(McpServerTest, ShutdownWaitsForCallsThatFinishThenEndsTheStreams) {
  auto [sid, stream] = listening_session();
  auto f = post(server_, run_call(1, "x"), sid);
  server_.begin_shutdown();
  EXPECT_TRUE(server_.wait_calls(std::chrono::seconds(5)));
  EXPECT_EQ(json::parse(f.get().body)["result"]["structuredContent"]["stdout"], "js:x|");
  EXPECT_FALSE(stream->closed());
  server_.close_streams();
  EXPECT_TRUE(stream->closed());
}

}  // namespace
}  // namespace onemcp::server

namespace onemcp::server {
namespace {

// The stateless era (2026-07-28): every request carries its version and the client's
// capabilities in _meta, and over HTTP the headers that repeat them.
json modern_meta(const std::string& version = "2026-07-28") {
  return {{"io.modelcontextprotocol/protocolVersion", version},
          {"io.modelcontextprotocol/clientCapabilities", json::object()},
          {"io.modelcontextprotocol/clientInfo", {{"name", "t"}, {"version", "1"}}}};
}

json modern_request(const json& id, const std::string& method, json params = json::object(),
                    const json& meta = modern_meta()) {
  params["_meta"] = meta;
  return {{"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", params}};
}

std::map<std::string, std::string> modern_headers(const json& msg) {
  std::map<std::string, std::string> h{{"mcp-protocol-version", "2026-07-28"},
                                       {"mcp-method", msg["method"].get<std::string>()}};
  if (msg["method"] == "tools/call") h["mcp-name"] = msg["params"]["name"].get<std::string>();
  return h;
}

TEST_F(McpServerTest, ModernDiscoverAndListsAreStatelessAndComplete) {
  const json discover = modern_request("d1", "server/discover");
  auto h = modern_headers(discover);
  h["mcp-session-id"] = "not-a-session";  // ignored in this era
  auto r = http("POST", discover.dump(), h);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(header(r, "Mcp-Session-Id"), "") << "a session minted for a stateless request";
  auto d = json::parse(r.body)["result"];
  EXPECT_EQ(d["resultType"], "complete");
  EXPECT_EQ(d["supportedVersions"], json::array({"2026-07-28"}));
  EXPECT_EQ(d["capabilities"]["tools"]["listChanged"], true);
  EXPECT_TRUE(d["ttlMs"].is_number_integer());
  EXPECT_EQ(d["cacheScope"], "public");
  EXPECT_FALSE(d["_meta"]["io.modelcontextprotocol/serverInfo"]["name"].get<std::string>().empty());
  EXPECT_EQ(server_.session_count(), 0u);

  const json list = modern_request(2, "tools/list");
  auto l = http("POST", list.dump(), modern_headers(list));
  ASSERT_EQ(l.status, 200) << l.body;
  auto lr = json::parse(l.body)["result"];
  EXPECT_EQ(lr["resultType"], "complete");
  EXPECT_FALSE(lr["tools"].empty());
  EXPECT_TRUE(lr.contains("ttlMs") && lr.contains("cacheScope"));

  const json call =
      modern_request(3, "tools/call", {{"name", "run_py"}, {"arguments", {{"code", "x"}}}});
  auto c = http("POST", call.dump(), modern_headers(call));
  ASSERT_EQ(c.status, 200) << c.body;
  auto cr = json::parse(c.body)["result"];
  EXPECT_EQ(cr["resultType"], "complete");
  EXPECT_EQ(cr["structuredContent"]["stdout"], "py:x|");

  // clientInfo is optional.
  json no_info = modern_meta();
  no_info.erase("io.modelcontextprotocol/clientInfo");
  const json d2 = modern_request(4, "server/discover", json::object(), no_info);
  EXPECT_EQ(http("POST", d2.dump(), modern_headers(d2)).status, 200);
}

TEST_F(McpServerTest, ModernRequestsAreCheckedInTheSpecsOrder) {
  auto expect = [&](const json& msg, std::map<std::string, std::string> h, int status, int code) {
    auto r = http("POST", msg.dump(), h);
    EXPECT_EQ(r.status, status) << msg << " " << r.body;
    auto j = json::parse(r.body, nullptr, false);
    EXPECT_EQ(j["error"]["code"], code) << r.body;
    EXPECT_EQ(j["id"], msg["id"]) << "the request's id is echoed";
    return j;
  };
  // A modern header without _meta: a stateless request missing its _meta.
  json bare{
      {"jsonrpc", "2.0"}, {"id", 1}, {"method", "server/discover"}, {"params", json::object()}};
  expect(bare, modern_headers(bare), 400, -32602);
  json no_caps = modern_meta();
  no_caps.erase("io.modelcontextprotocol/clientCapabilities");
  const json m1 = modern_request(2, "server/discover", json::object(), no_caps);
  expect(m1, modern_headers(m1), 400, -32602);
  // Header and body disagree, before the version is looked at.
  const json v999 = modern_request(3, "server/discover", json::object(), modern_meta("v999.0.0"));
  expect(v999, modern_headers(v999), 400, -32020);
  auto h = modern_headers(v999);
  h["mcp-protocol-version"] = "v999.0.0";
  auto unsupported = expect(v999, h, 400, -32022);
  EXPECT_EQ(unsupported["error"]["data"]["requested"], "v999.0.0");
  EXPECT_EQ(unsupported["error"]["data"]["supported"], json::array({"2026-07-28"}));
  // Mcp-Method and Mcp-Name must be there and repeat the body.
  const json call =
      modern_request(4, "tools/call", {{"name", "run_js"}, {"arguments", {{"code", "1"}}}});
  auto no_method = modern_headers(call);
  no_method.erase("mcp-method");
  expect(call, no_method, 400, -32020);
  auto wrong_name = modern_headers(call);
  wrong_name["mcp-name"] = "run_py";
  auto mismatch = expect(call, wrong_name, 400, -32020);
  EXPECT_NE(mismatch["error"]["message"].get<std::string>().find("run_py"), std::string::npos);
  auto encoded = modern_headers(call);
  encoded["mcp-name"] = "=?base64?cnVuX2pz?=";  // "run_js"
  EXPECT_EQ(http("POST", call.dump(), encoded).status, 200);
  // What this era removed, and what never existed: 404, -32601.
  for (const char* gone :
       {"initialize", "ping", "logging/setLevel", "resources/subscribe", "unknown/method"}) {
    const json m = modern_request(5, gone, {{"protocolVersion", "2026-07-28"}});
    expect(m, modern_headers(m), 404, -32601);
  }
  // A legacy initialize asking for this era is offered the newest legacy version.
  auto init = http(
      "POST",
      R"({"jsonrpc":"2.0","id":6,"method":"initialize","params":{"protocolVersion":"2026-07-28"}})");
  ASSERT_EQ(init.status, 200);
  EXPECT_EQ(json::parse(init.body)["result"]["protocolVersion"], "2025-11-25");
}

TEST_F(McpServerTest, ModernCallsRepeatTheirSessionInMcpParamSession) {
  // `session` is mirrored into Mcp-Param-Session (x-mcp-header), so a balancer can route on it.
  const json list = modern_request(1, "tools/list");
  const json tools = json::parse(http("POST", list.dump(), modern_headers(list)).body)["result"];
  for (const auto& t : tools["tools"]) {
    if (t["name"] == "session_create") continue;
    EXPECT_EQ(t["inputSchema"]["properties"]["session"]["x-mcp-header"], "Session") << t["name"];
  }
  auto expect = [&](const json& msg, std::map<std::string, std::string> h, int status,
                    const std::string& says) {
    auto r = http("POST", msg.dump(), h);
    EXPECT_EQ(r.status, status) << r.body;
    EXPECT_NE(r.body.find(says), std::string::npos) << r.body;
  };
  const std::string handle = "ses_r9.0123abcd";
  const json call = modern_request(
      2, "tools/call", {{"name", "run_js"}, {"arguments", {{"code", "1"}, {"session", handle}}}});
  auto h = modern_headers(call);
  expect(call, h, 400, "Mcp-Param-Session is required");
  h["mcp-param-session"] = "ses_r9.other";
  expect(call, h, 400, "does not match");
  h["mcp-param-session"] = "=?base64?c2Vz?";  // not the sentinel's end: taken literally
  expect(call, h, 400, "does not match");
  h["mcp-param-session"] = "=?base64?c2V!?=";
  expect(call, h, 400, "not valid =?base64?...?= encoding");
  const json plain =
      modern_request(3, "tools/call", {{"name", "run_js"}, {"arguments", {{"code", "1"}}}});
  auto extra = modern_headers(plain);
  extra["mcp-param-session"] = handle;
  expect(plain, extra, 400, "was sent but the argument session was not");
  // Plain or base64, matching: served. The handle names replica r9, and this server has no name.
  h["mcp-param-session"] = handle;
  expect(call, h, 200, "unknown session: replica 'r9' made it and this is a server without a");
  h["mcp-param-session"] = "=?base64?c2VzX3I5LjAxMjNhYmNk?=";
  expect(call, h, 200, "unknown session: replica 'r9' made it");
}

TEST_F(McpServerTest, AReplicaPutsItsNameInTheIdsItMakes) {
  ServerOptions o = make_opts();
  o.replica = "r1";
  McpServer named(o, policy::Config{}, backend_);
  HttpRequest r;
  r.method = "POST";
  r.target = "/mcp";
  r.body = R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":)"
           R"("2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}})";
  r.headers = {{"content-type", "application/json"},
               {"accept", "application/json, text/event-stream"},
               {"host", "127.0.0.1:7800"}};
  std::promise<HttpResponse> p;
  named.handle(r, [&p](HttpResponse resp) { p.set_value(std::move(resp)); });
  const HttpResponse resp = p.get_future().get();
  const std::string sid = header(resp, "Mcp-Session-Id");
  EXPECT_TRUE(sid.starts_with("r1.")) << sid;
  EXPECT_EQ(sid.size(), 3u + 32u) << sid;

  Sessions sessions(policy::SessionsConfig{}, "r1");
  auto other = sessions.find("ses_r2.00ff", "p");
  ASSERT_FALSE(other);
  EXPECT_NE(other.error().message.find("replica 'r2' made it and this is replica 'r1'"),
            std::string::npos)
      << other.error().message;
  // Its own name, or no name at all: the usual answer, which tells nothing.
  for (const char* h : {"ses_r1.00ff", "ses_00ff", "ses_R2.00ff"}) {
    auto mine = sessions.find(h, "p");
    ASSERT_FALSE(mine);
    EXPECT_EQ(mine.error().message.find("replica"), std::string::npos) << h;
  }
  EXPECT_TRUE(is_replica_name("r1"));
  EXPECT_TRUE(is_replica_name("1mcp-7c9d8f6b5-x2x9q"));
  for (const char* bad : {"", "-r", "R1", "r.1", "r_1", "r 1"}) EXPECT_FALSE(is_replica_name(bad));
  EXPECT_FALSE(is_replica_name(std::string(64, 'a')));
  EXPECT_EQ(replica_of("ses_r1.abc"), "r1");
  EXPECT_EQ(replica_of("ses_abc"), "");
}

TEST_F(McpServerTest, ModernSubscriptionsListenOverHttpAndStdio) {
  const json listen = modern_request(
      7, "subscriptions/listen",
      {{"notifications", {{"toolsListChanged", true}, {"promptsListChanged", true}}}});
  auto h = modern_headers(listen);
  h["accept"] = "application/json, text/event-stream";
  auto a = exchange("POST", listen.dump(), h);
  ASSERT_TRUE(a.stream) << (a.response ? a.response->body : "");
  auto events = a.stream->events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["method"], "notifications/subscriptions/acknowledged");
  EXPECT_EQ(events[0]["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], 7);
  // Only what this server sends is honoured.
  EXPECT_EQ(events[0]["params"]["notifications"], json({{"toolsListChanged", true}}));

  std::vector<std::string> lines;
  std::mutex mu;
  auto stdio = [&](const json& msg) {
    std::promise<void> done;
    server_.handle_line(
        msg.dump(),
        [&](std::string l) {
          std::lock_guard lk(mu);
          lines.push_back(l);
        },
        [&] { done.set_value(); });
    done.get_future().wait();
  };
  json on_stdio = listen;
  on_stdio["id"] = "s";
  stdio(on_stdio);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(json::parse(lines[0])["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
            "s");

  server_.notify_tools_changed();
  events = a.stream->events();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1]["method"], "notifications/tools/list_changed");
  EXPECT_EQ(events[1]["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], 7);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(json::parse(lines[1])["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
            "s");

  // stdio: the client cancels its subscription, and hears nothing more of it.
  stdio({{"jsonrpc", "2.0"},
         {"method", "notifications/cancelled"},
         {"params", {{"requestId", "s"}, {"_meta", modern_meta()}}}});
  server_.notify_tools_changed();
  EXPECT_EQ(lines.size(), 2u);
  EXPECT_EQ(a.stream->events().size(), 3u);

  // The server ends what is left with the listen request's completion result.
  server_.close_streams();
  events = a.stream->events();
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[3]["id"], 7);
  EXPECT_EQ(events[3]["result"]["resultType"], "complete");
  EXPECT_TRUE(a.stream->wait_closed());

  // Over stdio the stateless era needs no headers: discover and a call answer as over HTTP.
  stdio(modern_request(8, "server/discover"));
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(json::parse(lines[2])["result"]["supportedVersions"], json::array({"2026-07-28"}));
  stdio(modern_request(9, "ping"));
  EXPECT_EQ(json::parse(lines[3])["error"]["code"], -32601);
  json bare = modern_request(10, "tools/list");
  bare["params"]["_meta"].erase("io.modelcontextprotocol/clientCapabilities");
  stdio(bare);
  EXPECT_EQ(json::parse(lines[4])["error"]["code"], -32602);
}

}  // namespace
}  // namespace onemcp::server

namespace onemcp::server {
namespace {

TEST_F(McpServerTest, ResourcesListTheTypesAndReadThem) {
  std::string sid = initialize();
  auto caps = json::parse(http("POST", json{{"jsonrpc", "2.0"},
                                            {"id", 1},
                                            {"method", "initialize"},
                                            {"params", {{"protocolVersion", "2025-11-25"}}}}
                                           .dump())
                              .body);
  EXPECT_TRUE(caps["result"]["capabilities"].contains("resources"));
  auto list = call(sid, {{"jsonrpc", "2.0"}, {"id", 2}, {"method", "resources/list"}});
  std::vector<std::string> uris;
  for (auto& r : list["result"]["resources"]) uris.push_back(r["uri"]);
  EXPECT_NE(std::find(uris.begin(), uris.end(), "onemcp://types/index.d.ts"), uris.end()) << list;
  EXPECT_NE(std::find(uris.begin(), uris.end(), "onemcp://types/config.schema.json"), uris.end())
      << list;
  auto read = call(sid, {{"jsonrpc", "2.0"},
                         {"id", 3},
                         {"method", "resources/read"},
                         {"params", {{"uri", "onemcp://types/config.schema.json"}}}});
  auto contents = read["result"]["contents"];
  ASSERT_EQ(contents.size(), 1u) << read;
  EXPECT_EQ(contents[0]["uri"], "onemcp://types/config.schema.json");
  EXPECT_EQ(contents[0]["mimeType"], "application/schema+json");
  EXPECT_TRUE(json::parse(contents[0]["text"].get<std::string>()).is_object());
  // Unknown: legacy "resource not found" with the uri; nothing outside the exact names.
  for (const char* uri : {"onemcp://types/../../etc/passwd", "onemcp://types/nope.json",
                          "file:///etc/passwd", "onemcp://capsules/abc/manifest.json"}) {
    auto missing = call(
        sid,
        {{"jsonrpc", "2.0"}, {"id", 4}, {"method", "resources/read"}, {"params", {{"uri", uri}}}});
    EXPECT_EQ(missing["error"]["code"], -32002) << missing;
    EXPECT_EQ(missing["error"]["data"]["uri"], uri);
  }
  auto templates =
      call(sid, {{"jsonrpc", "2.0"}, {"id", 5}, {"method", "resources/templates/list"}});
  EXPECT_TRUE(templates["result"]["resourceTemplates"].is_array()) << templates;

  // The stateless era: caching hints, resultType, and -32602 for what is not there.
  json ml{{"jsonrpc", "2.0"},
          {"id", 6},
          {"method", "resources/list"},
          {"params",
           {{"_meta",
             {{"io.modelcontextprotocol/protocolVersion", "2026-07-28"},
              {"io.modelcontextprotocol/clientCapabilities", json::object()}}}}}};
  auto m =
      json::parse(http("POST", ml.dump(),
                       {{"mcp-protocol-version", "2026-07-28"}, {"mcp-method", "resources/list"}})
                      .body);
  EXPECT_EQ(m["result"]["resultType"], "complete");
  EXPECT_TRUE(m["result"].contains("ttlMs") && m["result"].contains("cacheScope")) << m;
  json mr = ml;
  mr["method"] = "resources/read";
  mr["params"]["uri"] = "onemcp://types/nope.json";
  auto r = http("POST", mr.dump(),
                {{"mcp-protocol-version", "2026-07-28"},
                 {"mcp-method", "resources/read"},
                 {"mcp-name", "onemcp://types/nope.json"}});
  auto rj = json::parse(r.body);
  EXPECT_EQ(rj["error"]["code"], -32602) << r.body;
  EXPECT_EQ(rj["error"]["data"]["uri"], "onemcp://types/nope.json");
}

TEST_F(McpServerTest, ARunsFilesAreResourcesOfThePrincipalThatRanIt) {
  const json run{{"jsonrpc", "2.0"},
                 {"id", 1},
                 {"method", "tools/call"},
                 {"params", {{"name", "run_py"}, {"arguments", {{"code", "files"}}}}}};
  auto read = [](const std::string& uri) {
    return json{
        {"jsonrpc", "2.0"}, {"id", 2}, {"method", "resources/read"}, {"params", {{"uri", uri}}}};
  };
  const std::string mine = initialize(), theirs = initialize();
  const json result = call(mine, run)["result"];
  const json& files = result["structuredContent"]["files"];
  ASSERT_EQ(files.size(), 2u) << result;
  const std::string text_uri = files[0]["uri"], bin_uri = files[1]["uri"];
  EXPECT_EQ(text_uri.rfind("onemcp://runs/", 0), 0u) << text_uri;
  std::vector<std::string> kinds;
  for (const auto& b : result["content"]) kinds.push_back(b["type"]);
  EXPECT_EQ(kinds, (std::vector<std::string>{"text", "resource_link", "resource_link"}));

  auto text = call(mine, read(text_uri));
  EXPECT_EQ(text["result"]["contents"],
            (json::array({{{"uri", text_uri}, {"mimeType", "text/plain"}, {"text", "hello"}}})));
  auto bin = call(mine, read(bin_uri));
  EXPECT_EQ(bin["result"]["contents"][0]["blob"], "AP8=") << bin;
  EXPECT_EQ(bin["result"]["contents"][0]["mimeType"], "application/octet-stream");
  // Another session: the very answer of a URI that names nothing.
  for (const std::string& uri :
       {text_uri, text_uri + "x", text_uri.substr(0, text_uri.size() - 5) + "../a.txt"}) {
    auto other = call(theirs, read(uri));
    EXPECT_EQ(other["error"],
              (json{{"code", -32002}, {"message", "Resource not found"}, {"data", {{"uri", uri}}}}))
        << uri;
  }
  auto templates =
      call(mine, {{"jsonrpc", "2.0"}, {"id", 3}, {"method", "resources/templates/list"}});
  EXPECT_EQ(templates["result"]["resourceTemplates"][0]["uriTemplate"],
            "onemcp://runs/{run}/out/{+path}");

  // Before 2025-06-18 there were no resource_link blocks.
  const json old = call(initialize("2025-03-26"), run)["result"];
  EXPECT_EQ(old["content"].size(), 1u) << old;
  EXPECT_EQ(old["structuredContent"]["files"].size(), 2u);

  // The stateless era: another principal again (-32602), and its own runs read privately.
  auto modern_read = [&](const std::string& uri) {
    const json m = modern_request(4, "resources/read", {{"uri", uri}});
    auto h = modern_headers(m);
    h["mcp-name"] = uri;
    return json::parse(http("POST", m.dump(), h).body);
  };
  EXPECT_EQ(modern_read(text_uri)["error"]["code"], -32602);
  const json mcall =
      modern_request(5, "tools/call", {{"name", "run_js"}, {"arguments", {{"code", "files"}}}});
  const json mres = json::parse(http("POST", mcall.dump(), modern_headers(mcall)).body)["result"];
  const std::string muri = mres["structuredContent"]["files"][0]["uri"];
  auto mine_now = modern_read(muri);
  EXPECT_EQ(mine_now["result"]["contents"][0]["text"], "hello") << mine_now;
  EXPECT_EQ(mine_now["result"]["cacheScope"], "private");
  EXPECT_EQ(call(mine, read(muri))["error"]["code"], -32002);
}

}  // namespace
}  // namespace onemcp::server

namespace onemcp::server {
namespace {

TEST_F(McpServerTest, LogMessagesReachSessionsThatAskedForThem) {
  auto [sid, stream] = listening_session();
  auto [quiet_sid, quiet_stream] = listening_session();  // never calls logging/setLevel
  auto bad = call(sid, {{"jsonrpc", "2.0"},
                        {"id", 1},
                        {"method", "logging/setLevel"},
                        {"params", {{"level", "loud"}}}});
  EXPECT_EQ(bad["error"]["code"], -32602);
  auto ok = call(sid, {{"jsonrpc", "2.0"},
                       {"id", 2},
                       {"method", "logging/setLevel"},
                       {"params", {{"level", "warning"}}}});
  EXPECT_EQ(ok["result"], json::object());
  server_.log_event("info", "upstream", {{"upstream", "a"}, {"state", "ready"}});
  server_.log_event("error", "upstream", {{"upstream", "a"}, {"state", "backoff"}});
  auto events = stream->events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["method"], "notifications/message");
  EXPECT_EQ(events[0]["params"]["level"], "error");
  EXPECT_EQ(events[0]["params"]["logger"], "upstream");
  EXPECT_EQ(events[0]["params"]["data"]["state"], "backoff");
  EXPECT_TRUE(quiet_stream->events().empty());
}

}  // namespace
}  // namespace onemcp::server

namespace onemcp::server {
namespace {

// An extension's tools are listed beside 1mcp's own in both eras.
class OneToolExtension final : public McpExtension {
 public:
  json tools() const override {
    return json::array(
        {{{"name", "extra"}, {"description", "d"}, {"inputSchema", {{"type", "object"}}}}});
  }
  std::optional<json> call(const std::string&, const json&, const CallContext&) override {
    return std::nullopt;
  }
  json resources() const override { return json::array(); }
  json resource_templates() const override { return json::array(); }
  std::optional<json> read(const std::string&) override { return std::nullopt; }
  json prompts() const override { return json::array(); }
  std::optional<json> get_prompt(const std::string&, const json&) override { return std::nullopt; }
  json complete(const json&) override { return json::object(); }
};

TEST_F(McpServerTest, AnExtensionsToolsAreListedInBothEras) {
  OneToolExtension ext;
  ServerOptions o = make_opts();
  o.extension = &ext;
  McpServer s(o, policy::Config{}, backend_);
  auto names = [](const json& tools) {
    std::vector<std::string> out;
    for (auto& t : tools) out.push_back(t["name"]);
    return out;
  };
  const std::vector<std::string> want{"run_js", "run_py", "session_create", "session_close",
                                      "extra"};
  auto legacy =
      json::parse(post(s, {{"jsonrpc", "2.0"}, {"id", 1}, {"method", "tools/list"}}).get().body);
  EXPECT_EQ(names(legacy["result"]["tools"]), want) << legacy;
  HttpRequest r;
  r.method = "POST";
  r.target = "/mcp";
  r.body = json{{"jsonrpc", "2.0"},
                {"id", 2},
                {"method", "tools/list"},
                {"params",
                 {{"_meta",
                   {{"io.modelcontextprotocol/protocolVersion", "2026-07-28"},
                    {"io.modelcontextprotocol/clientCapabilities", json::object()}}}}}}
               .dump();
  r.headers = {{"content-type", "application/json"},
               {"host", "127.0.0.1:7800"},
               {"mcp-protocol-version", "2026-07-28"},
               {"mcp-method", "tools/list"}};
  std::promise<HttpResponse> p;
  s.handle(r, [&](HttpResponse resp) { p.set_value(std::move(resp)); });
  auto modern = json::parse(p.get_future().get().body);
  EXPECT_EQ(names(modern["result"]["tools"]), want) << modern;
  EXPECT_TRUE(modern["result"].contains("ttlMs") && modern["result"].contains("cacheScope"));
}

}  // namespace
}  // namespace onemcp::server
