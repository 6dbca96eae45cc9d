// Integration tests of the upstream MCP client against real servers: the npm reference servers
// (server-filesystem over stdio, server-everything over Streamable HTTP), SDK-built fixtures of
// the legacy (SDK v1, sessions) and stateless 2026-07-28 (SDK v2) eras, and a hand-written stdio
// fixture that crashes, hangs, or sends garbage on request; and the server's code-mode calls
// through them. Network traffic stays on 127.0.0.1.
#include "upstream/upstream.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "server/upstreams.h"

extern char** environ;

namespace onemcp::upstream {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

const std::string kNode = ONEMCP_NODE;
const std::string kFixtures = ONEMCP_UPSTREAM_FIXTURES;
const std::string kModules = ONEMCP_NODE_MODULES;
const std::string kStdioFixture = kFixtures + "/stdio_server.mjs";

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/onemcp-upstream-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

policy::UpstreamConfig stdio_upstream(const std::string& name, std::vector<std::string> args,
                                      std::map<std::string, std::string> env = {}) {
  policy::UpstreamConfig c;
  c.name = name;
  c.transport = "stdio";
  c.command = kNode;
  c.args = std::move(args);
  c.env = std::move(env);
  return c;
}

policy::UpstreamConfig http_upstream(const std::string& name, const std::string& endpoint,
                                     std::map<std::string, std::string> headers = {}) {
  policy::UpstreamConfig c;
  c.name = name;
  c.transport = "http";
  c.endpoint = endpoint;
  c.headers = std::move(headers);
  return c;
}

// Stops the manager before what its tools-changed callback uses (declared after it) is destroyed.
struct StopFirst {
  Manager& m;
  ~StopFirst() { m.stop(); }
};

ManagerOptions test_options() {
  ManagerOptions o;
  o.connect_timeout = 20s;
  o.request_timeout = 10s;
  o.backoff_min = 50ms;
  o.backoff_max = 400ms;
  o.stop_grace = 500ms;
  return o;
}

template <class F>
bool eventually(F ready, std::chrono::milliseconds limit = 20s) {
  const auto deadline = Clock::now() + limit;
  while (Clock::now() < deadline) {
    if (ready()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return ready();
}

UpstreamStatus status_of(const Manager& m, const std::string& name) {
  for (auto& s : m.status()) {
    if (s.name == name) return s;
  }
  ADD_FAILURE() << "no upstream " << name;
  return {};
}

std::string first_text(const json& result) {
  if (!result.contains("content") || result["content"].empty()) return "";
  return result["content"][0].value("text", "");
}

bool has_tool(const std::vector<json>& tools, const std::string& name) {
  for (const auto& t : tools) {
    if (t["name"] == name) return true;
  }
  return false;
}

std::chrono::milliseconds since(Clock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
}

// Whether `pid` is gone (or only a zombie waiting for its reaper).
bool process_gone(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return true;
  const size_t close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() && line[close + 2] == 'Z';
}

// Live (non-zombie) children of this test process.
std::vector<pid_t> live_children() {
  std::vector<pid_t> out;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    const std::string name = e.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(e.path() / "stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    const size_t close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 2));
    char state = 0;
    pid_t ppid = 0;
    rest >> state >> ppid;
    if (ppid == ::getpid() && state != 'Z') out.push_back(std::stoi(name));
  }
  return out;
}

// A loopback HTTP MCP server run by the test: started with node, it writes the port it got to
// a file; stopped (SIGTERM, then SIGKILL) at the end of the test.
class ServerProcess {
 public:
  ServerProcess(std::vector<std::string> args, const std::string& port_file,
                std::map<std::string, std::string> extra_env = {}) {
    std::vector<std::string> env_strings;
    for (char** e = environ; *e; ++e) env_strings.emplace_back(*e);
    for (const auto& [k, v] : extra_env) env_strings.push_back(k + "=" + v);
    std::vector<char*> envp;
    for (auto& s : env_strings) envp.push_back(s.data());
    envp.push_back(nullptr);
    args.insert(args.begin(), kNode);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);  // per-request chatter
    const int rc = ::posix_spawn(&pid_, kNode.c_str(), &fa, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
      ADD_FAILURE() << "cannot start " << args[1];
      return;
    }
    const bool up = eventually([&] { return std::filesystem::exists(port_file); }, 30s);
    if (!up) {
      ADD_FAILURE() << args[1] << " did not start listening";
      return;
    }
    std::ifstream f(port_file);
    f >> port_;
  }
  ~ServerProcess() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 100; ++i) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) return;
      std::this_thread::sleep_for(20ms);
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_) + "/mcp"; }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
};

std::unique_ptr<ServerProcess> start_everything(const TempDir& dir) {
  const std::string port_file = dir.path + "/everything.port";
  return std::make_unique<ServerProcess>(
      std::vector<std::string>{"--require", kFixtures + "/loopback_listen.cjs",
                               kModules + "/@modelcontextprotocol/server-everything/dist/index.js",
                               "streamableHttp"},
      port_file, std::map<std::string, std::string>{{"ONEMCP_PORT_FILE", port_file}});
}

// ---------- stdio ----------

TEST(UpstreamStdio, FilesystemServerWritesAndReadsBack) {
  TempDir dir;
  Manager m(
      {stdio_upstream(
          "fs", {kModules + "/@modelcontextprotocol/server-filesystem/dist/index.js", dir.path})},
      test_options());
  m.start();
  ASSERT_TRUE(m.wait_settled(30s));
  const auto st = status_of(m, "fs");
  ASSERT_EQ(st.state, State::kReady) << st.error;
  EXPECT_EQ(st.transport, "stdio");
  EXPECT_EQ(st.protocol_version, "2025-11-25");
  EXPECT_EQ(st.server_info.value("name", ""), "secure-filesystem-server");
  auto tools = m.tools("fs");
  ASSERT_TRUE(tools.ok()) << tools.error().message;
  EXPECT_EQ(tools->size(), st.tool_count);
  EXPECT_GE(tools->size(), 10u);
  EXPECT_TRUE(has_tool(*tools, "write_file"));
  EXPECT_TRUE(has_tool(*tools, "read_text_file"));
  for (const auto& t : *tools) EXPECT_TRUE(t.contains("inputSchema")) << t.dump();

  const std::string file = dir.path + "/hello.txt";
  const std::string content = "héllo from 1mcp\nline 2\n";
  auto w = m.call_tool("fs", "write_file", {{"path", file}, {"content", content}});
  ASSERT_TRUE(w.ok()) << w.error().message;
  EXPECT_FALSE(w->value("isError", false)) << w->dump();
  std::ifstream in(file);
  std::stringstream on_disk;
  on_disk << in.rdbuf();
  EXPECT_EQ(on_disk.str(), content);
  auto r = m.call_tool("fs", "read_text_file", {{"path", file}});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(first_text(*r), content);

  // A tool error is a result (isError), not a failure of the call.
  auto outside = m.call_tool("fs", "read_text_file", {{"path", "/etc/hostname"}});
  ASSERT_TRUE(outside.ok()) << outside.error().message;
  EXPECT_TRUE(outside->value("isError", false));
  EXPECT_FALSE(m.tools("nope").ok());
  EXPECT_FALSE(m.call_tool("nope", "x", json::object()).ok());
}

TEST(UpstreamStdio, ToolsListedAcrossPages) {
  Manager m({stdio_upstream("fx", {kStdioFixture})}, test_options());
  m.start();
  ASSERT_TRUE(m.wait_settled(30s));
  ASSERT_EQ(status_of(m, "fx").state, State::kReady) << status_of(m, "fx").error;
  auto tools = m.tools("fx");
  ASSERT_TRUE(tools.ok());
  // Eleven tools, two per page: six pages followed to the end.
  EXPECT_EQ(tools->size(), 11u);
  EXPECT_TRUE(has_tool(*tools, "echo"));
  EXPECT_TRUE(has_tool(*tools, "grandchild"));
  EXPECT_EQ(status_of(m, "fx").server_info.value("name", ""), "stdio-fixture");
  // A JSON-RPC error is an error, with the upstream's message and code.
  auto unknown = m.call_tool("fx", "no_such_tool", json::object());
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().message,
            "upstream 'fx': tools/call failed: Unknown tool: no_such_tool (JSON-RPC error -32602)");
}

TEST(UpstreamStdio, CrashMidCallFailsPromptlyThenRestarts) {
  Manager m({stdio_upstream("fx", {kStdioFixture})}, test_options());
  std::atomic<int> changes{0};
  m.on_tools_changed([&] { ++changes; });
  m.start();
  ASSERT_TRUE(m.wait_settled(30s));
  ASSERT_EQ(status_of(m, "fx").state, State::kReady);
  const int changes_before = changes;

  CallOptions slow;
  slow.timeout = 30s;
  const auto t0 = Clock::now();
  auto crash = m.call_tool("fx", "crash", json::object(), slow);
  ASSERT_FALSE(crash.ok());
  EXPECT_LT(since(t0), 2s);
  EXPECT_NE(crash.error().message.find("exited with status 3"), std::string::npos)
      << crash.error().message;
  EXPECT_NE(crash.error().message.find("crashing on purpose"), std::string::npos)
      << crash.error().message;

  ASSERT_TRUE(eventually([&] {
    const auto s = status_of(m, "fx");
    return s.state == State::kReady && s.restarts >= 1;
  })) << status_of(m, "fx").error;
  EXPECT_GT(changes.load(), changes_before);  // the death and the new connection were announced
  auto echo = m.call_tool("fx", "echo", {{"text", "again"}});
  ASSERT_TRUE(echo.ok()) << echo.error().message;
  EXPECT_EQ(first_text(*echo), "again");
}

TEST(UpstreamStdio, HungUpstreamsBlockNobodyElse) {
  auto opts = test_options();
  opts.connect_timeout = 3s;
  Manager m(
      {stdio_upstream("hung", {kStdioFixture}), stdio_upstream("silent", {kStdioFixture, "silent"}),
       stdio_upstream("ok", {kStdioFixture})},
      opts);
  m.start();
  ASSERT_TRUE(eventually([&] {
    return status_of(m, "hung").state == State::kReady && status_of(m, "ok").state == State::kReady;
  }));

  // A call that is never answered times out, while calls to another upstream and status() go on.
  std::atomic<bool> hung_done{false};
  Result<json> hung = make_error("not run");
  std::thread t([&] {
    CallOptions o;
    o.timeout = 1500ms;
    const auto t0 = Clock::now();
    hung = m.call_tool("hung", "hang", json::object(), o);
    EXPECT_GE(since(t0), 1400ms);
    EXPECT_LT(since(t0), 3s);
    hung_done = true;
  });
  std::this_thread::sleep_for(100ms);
  for (int i = 0; i < 5; ++i) {
    const auto t0 = Clock::now();
    auto r = m.call_tool("ok", "echo", {{"text", std::to_string(i)}});
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_LT(since(t0), 1s);
    EXPECT_EQ(status_of(m, "ok").state, State::kReady);
  }
  EXPECT_FALSE(hung_done);
  t.join();
  ASSERT_FALSE(hung.ok());
  EXPECT_NE(hung.error().message.find("timed out"), std::string::npos) << hung.error().message;
  // The upstream was told, and is still usable.
  auto ids = m.call_tool("hung", "cancelled", json::object());
  ASSERT_TRUE(ids.ok()) << ids.error().message;
  EXPECT_EQ(json::parse(first_text(*ids)).size(), 1u) << first_text(*ids);

  // The upstream that never answers anything never gets ready: backoff, with the reason.
  ASSERT_TRUE(eventually([&] { return status_of(m, "silent").state == State::kBackoff; }));
  EXPECT_NE(status_of(m, "silent").error.find("timed out"), std::string::npos)
      << status_of(m, "silent").error;
  auto not_ready = m.call_tool("silent", "echo", json::object());
  ASSERT_FALSE(not_ready.ok());
  EXPECT_NE(not_ready.error().message.find("not ready"), std::string::npos)
      << not_ready.error().message;
  EXPECT_FALSE(m.tools("silent").ok());

  const auto t0 = Clock::now();
  m.stop();
  EXPECT_LT(since(t0), 3s);
  for (const auto& s : m.status()) EXPECT_EQ(s.state, State::kStopped) << s.name;
}

TEST(UpstreamStdio, ProgressAndCancellation) {
  Manager m({stdio_upstream("fx", {kStdioFixture})}, test_options());
  m.start();
  ASSERT_TRUE(m.wait_settled(30s));

  std::mutex mu;
  std::vector<json> progress;
  CallOptions o;
  o.on_progress = [&](const json& p) {
    std::lock_guard lock(mu);
    progress.push_back(p);
  };
  auto r = m.call_tool("fx", "slow", {{"ms", 200}}, o);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(progress.size(), 4u);
  EXPECT_EQ(progress[3]["progress"], 4);
  EXPECT_EQ(progress[3]["total"], 4);

  std::atomic<bool> cancel{false};
  CallOptions c;
  c.cancel = &cancel;
  c.timeout = 30s;
  std::thread t([&] {
    std::this_thread::sleep_for(150ms);
    cancel = true;
  });
  const auto t0 = Clock::now();
  auto cancelled = m.call_tool("fx", "slow", {{"ms", 10000}}, c);
  t.join();
  ASSERT_FALSE(cancelled.ok());
  EXPECT_LT(since(t0), 1s);
  EXPECT_NE(cancelled.error().message.find("cancelled"), std::string::npos)
      << cancelled.error().message;
  ASSERT_TRUE(eventually([&] {
    auto ids = m.call_tool("fx", "cancelled", json::object());
    return ids.ok() && json::parse(first_text(*ids)).size() == 1;
  }));
}

TEST(UpstreamStdio, BadCommandBacksOffWithAClearError) {
  auto missing = stdio_upstream("missing", {});
  missing.command = "/nonexistent/definitely-not-a-server";
  auto unknown = stdio_upstream("unknown", {});
  unknown.command = "onemcp-no-such-command";
  Manager m({missing, unknown, stdio_upstream("fine", {kStdioFixture})}, test_options());
  m.start();
  ASSERT_TRUE(m.wait_settled(30s));
  for (const char* name : {"missing", "unknown"}) {
    // Between two attempts (a retry is "connecting" for a moment).
    ASSERT_TRUE(eventually([&] { return status_of(m, name).state == State::kBackoff; })) << name;
    const auto s = status_of(m, name);
    EXPECT_NE(s.error.find("No such file or directory"), std::string::npos) << s.error;
    EXPECT_NE(s.error.find(name), std::string::npos) << s.error;
    // The status reaches HTTP clients (GET /mcps): it never shows the server's PATH.
    EXPECT_EQ(s.error.find("PATH="), std::string::npos) << s.error;
    if (const char* path = std::getenv("PATH")) {
      EXPECT_EQ(s.error.find(path), std::string::npos) << s.error;
    }
  }
  EXPECT_EQ(status_of(m, "fine").state, State::kReady);
  // It keeps retrying: each attempt is "connecting" again, and fails the same way.
  std::this_thread::sleep_for(300ms);
  ASSERT_TRUE(eventually([&] { return status_of(m, "missing").state == State::kBackoff; }));
  EXPECT_NE(status_of(m, "missing").error.find("No such file or directory"), std::string::npos);
  EXPECT_EQ(status_of(m, "missing").restarts, 0u);
}

TEST(UpstreamStdio, GarbageFromTheUpstreamIsSkipped) {
  Manager m({stdio_upstream("fx", {kStdioFixture})}, test_options());
  m.start();
  ASSERT_TRUE(m.wait_settled(30s));
  CallOptions o;
  o.timeout = 30s;
  auto r = m.call_tool("fx", "garbage", json::object(), o);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(first_text(*r), "after garbage");
  auto echo = m.call_tool("fx", "echo", {{"text", "still fine"}});
  ASSERT_TRUE(echo.ok()) << echo.error().message;
  EXPECT_EQ(first_text(*echo), "still fine");
  EXPECT_EQ(status_of(m, "fx").restarts, 0u);
}

TEST(UpstreamStdio, UpstreamRequestsAnswered) {
  Manager m({stdio_upstream("fx", {kStdioFixture})}, test_options());
  m.start();
  ASSERT_TRUE(m.wait_settled(30s));
  auto r = m.call_tool("fx", "ask_client", json::object());
  ASSERT_TRUE(r.ok()) << r.error().message;
  const json answers = json::parse(first_text(*r));
  EXPECT_EQ(answers["ping"], json({{"result", json::object()}}));
  EXPECT_EQ(answers["sampling"]["error"]["code"], -32601);
}

TEST(UpstreamStdio, ToolListChangeIsRelisted) {
  Manager m({stdio_upstream("fx", {kStdioFixture})}, test_options());
  std::atomic<int> changes{0};
  m.on_tools_changed([&] { ++changes; });
  m.start();
  ASSERT_TRUE(m.wait_settled(30s));
  ASSERT_TRUE(eventually([&] { return changes >= 1; }));
  const int before = changes;
  ASSERT_TRUE(m.call_tool("fx", "add_tool", json::object()).ok());
  ASSERT_TRUE(eventually([&] { return has_tool(m.tools("fx").value(), "extra"); }));
  EXPECT_GT(changes.load(), before);
  EXPECT_EQ(status_of(m, "fx").tool_count, 12u);
}

TEST(UpstreamStdio, ExplicitEnvironmentOnly) {
  ::setenv("ONEMCP_TEST_SERVER_SECRET", "do-not-leak", 1);
  Manager m({stdio_upstream("fx", {kStdioFixture},
                            {{"FIXTURE_SETTING", "from-config"}, {"LANG", "C.UTF-8"}})},
            test_options());
  m.start();
  ASSERT_TRUE(m.wait_settled(30s));
  auto r = m.call_tool("fx", "env", json::object());
  ::unsetenv("ONEMCP_TEST_SERVER_SECRET");
  ASSERT_TRUE(r.ok()) << r.error().message;
  const json env = json::parse(first_text(*r));
  EXPECT_EQ(env.value("FIXTURE_SETTING", ""), "from-config");
  EXPECT_EQ(env.value("LANG", ""), "C.UTF-8");
  EXPECT_FALSE(env.contains("ONEMCP_TEST_SERVER_SECRET"));
  EXPECT_TRUE(env.contains("PATH"));
  for (const auto& [k, v] : env.items()) {
    EXPECT_TRUE(k == "FIXTURE_SETTING" || k == "PATH" || k == "HOME" || k == "USER" ||
                k == "LANG" || k == "LC_ALL" || k == "TZ" || k == "TMPDIR")
        << "unexpected variable " << k;
  }
}

TEST(UpstreamStdio, StopLeavesNoProcesses) {
  auto opts = test_options();
  opts.stop_grace = 300ms;
  Manager m(
      {stdio_upstream("a", {kStdioFixture}),
       stdio_upstream("stubborn", {kStdioFixture, "stubborn"}),
       stdio_upstream(
           "fs", {kModules + "/@modelcontextprotocol/server-filesystem/dist/index.js", "/tmp"})},
      opts);
  m.start();
  ASSERT_TRUE(m.wait_settled(30s));
  std::vector<pid_t> pids;
  for (const char* name : {"a", "stubborn"}) {
    ASSERT_EQ(status_of(m, name).state, State::kReady) << name;
    auto pid = m.call_tool(name, "pid", json::object());
    auto grandchild = m.call_tool(name, "grandchild", json::object());
    ASSERT_TRUE(pid.ok() && grandchild.ok());
    pids.push_back(std::stoi(first_text(*pid)));
    pids.push_back(std::stoi(first_text(*grandchild)));
  }
  ASSERT_EQ(status_of(m, "fs").state, State::kReady);
  EXPECT_EQ(live_children().size(), 3u);

  const auto t0 = Clock::now();
  m.stop();
  // The stubborn one ignores stdin EOF and SIGTERM: two graces, then SIGKILL.
  EXPECT_LT(since(t0), 2s);
  EXPECT_TRUE(live_children().empty());
  for (pid_t p : pids) EXPECT_TRUE(eventually([&] { return process_gone(p); }, 2s)) << p;
  m.stop();  // idempotent
}

TEST(UpstreamStdio, ModernEraOverStdio) {
  Manager m({stdio_upstream("modern", {kFixtures + "/modern_server.mjs", "stdio"}),
             stdio_upstream("legacy", {kStdioFixture})},
            test_options());
  m.start();
  ASSERT_TRUE(m.wait_settled(30s));
  const auto s = status_of(m, "modern");
  ASSERT_EQ(s.state, State::kReady) << s.error;
  EXPECT_EQ(s.protocol_version, "2026-07-28");
  EXPECT_EQ(s.server_info.value("name", ""), "modern-fixture");
  EXPECT_EQ(status_of(m, "legacy").protocol_version, "2025-11-25");
  auto who = m.call_tool("modern", "whoami", json::object());
  ASSERT_TRUE(who.ok()) << who.error().message;
  const json w = json::parse(first_text(*who));
  EXPECT_EQ(w["era"], "modern");
  EXPECT_EQ(w["envelope"]["io.modelcontextprotocol/protocolVersion"], "2026-07-28");
  EXPECT_EQ(w["envelope"]["io.modelcontextprotocol/clientInfo"]["name"], "1mcp");
  auto sum = m.call_tool("modern", "add", {{"a", 2}, {"b", 40}});
  ASSERT_TRUE(sum.ok()) << sum.error().message;
  EXPECT_EQ((*sum)["structuredContent"]["sum"], 42);
  EXPECT_FALSE(sum->contains("resultType"));
}

// ---------- Streamable HTTP ----------

TEST(UpstreamHttp, EverythingServer) {
  TempDir dir;
  auto server = start_everything(dir);
  Manager m({http_upstream("every", server->endpoint())}, test_options());
  m.start();
  ASSERT_TRUE(m.wait_settled(30s));
  const auto s = status_of(m, "every");
  ASSERT_EQ(s.state, State::kReady) << s.error;
  EXPECT_EQ(s.transport, "http");
  EXPECT_EQ(s.protocol_version, "2025-11-25");
  EXPECT_EQ(s.server_info.value("name", ""), "mcp-servers/everything");
  auto tools = m.tools("every");
  ASSERT_TRUE(tools.ok());
  for (const char* t :
       {"echo", "get-structured-content", "get-tiny-image", "trigger-long-running-operation"}) {
    EXPECT_TRUE(has_tool(*tools, t)) << t;
  }

  auto echo = m.call_tool("every", "echo", {{"message", "hi over HTTP"}});
  ASSERT_TRUE(echo.ok()) << echo.error().message;
  EXPECT_NE(first_text(*echo).find("hi over HTTP"), std::string::npos) << echo->dump();

  auto weather = m.call_tool("every", "get-structured-content", {{"location", "Chicago"}});
  ASSERT_TRUE(weather.ok()) << weather.error().message;
  ASSERT_TRUE((*weather)["structuredContent"].is_object()) << weather->dump();
  EXPECT_EQ((*weather)["structuredContent"]["temperature"], 36);

  auto image = m.call_tool("every", "get-tiny-image", json::object());
  ASSERT_TRUE(image.ok()) << image.error().message;
  bool found = false;
  for (const auto& c : (*image)["content"]) {
    if (c["type"] == "image") {
      found = true;
      EXPECT_EQ(c["mimeType"], "image/png");
      EXPECT_GT(c["data"].get<std::string>().size(), 50u);
    }
  }
  EXPECT_TRUE(found) << image->dump();

  std::mutex mu;
  std::vector<json> progress;
  CallOptions o;
  o.on_progress = [&](const json& p) {
    std::lock_guard lock(mu);
    progress.push_back(p);
  };
  auto op =
      m.call_tool("every", "trigger-long-running-operation", {{"duration", 1}, {"steps", 4}}, o);
  ASSERT_TRUE(op.ok()) << op.error().message;
  EXPECT_NE(first_text(*op).find("completed"), std::string::npos) << op->dump();
  ASSERT_EQ(progress.size(), 4u);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(progress[i]["progress"], i + 1);
    EXPECT_EQ(progress[i]["total"], 4);
  }

  // Concurrent calls on one session each get their own response.
  std::vector<std::thread> threads;
  std::atomic<int> right{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      auto r = m.call_tool("every", "get-sum", {{"a", i}, {"b", 100}});
      if (r.ok() && first_text(*r).find(std::to_string(100 + i)) != std::string::npos) ++right;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(right, 8);
}

TEST(UpstreamHttp, EverythingServerCancelAndTimeout) {
  TempDir dir;
  auto server = start_everything(dir);
  Manager m({http_upstream("every", server->endpoint())}, test_options());
  m.start();
  ASSERT_TRUE(m.wait_settled(30s));
  ASSERT_EQ(status_of(m, "every").state, State::kReady) << status_of(m, "every").error;

  std::atomic<bool> cancel{false};
  CallOptions c;
  c.cancel = &cancel;
  std::thread t([&] {
    std::this_thread::sleep_for(200ms);
    cancel = true;
  });
  auto t0 = Clock::now();
  auto cancelled =
      m.call_tool("every", "trigger-long-running-operation", {{"duration", 10}, {"steps", 10}}, c);
  t.join();
  ASSERT_FALSE(cancelled.ok());
  EXPECT_LT(since(t0), 1s);
  EXPECT_NE(cancelled.error().message.find("cancelled"), std::string::npos)
      << cancelled.error().message;

  CallOptions quick;
  quick.timeout = 300ms;
  t0 = Clock::now();
  auto timed_out = m.call_tool("every", "trigger-long-running-operation",
                               {{"duration", 5}, {"steps", 5}}, quick);
  ASSERT_FALSE(timed_out.ok());
  EXPECT_LT(since(t0), 1500ms);
  EXPECT_NE(timed_out.error().message.find("timed out after 300 ms"), std::string::npos)
      << timed_out.error().message;

  auto echo = m.call_tool("every", "echo", {{"message", "after"}});
  ASSERT_TRUE(echo.ok()) << echo.error().message;
}

TEST(UpstreamHttp, SessionHeadersExpiryListChangedAndDelete) {
  TempDir dir;
  const std::string port_file = dir.path + "/legacy.port";
  ServerProcess server({kFixtures + "/legacy_http_server.mjs", port_file}, port_file);
  const std::map<std::string, std::string> auth{{"Authorization", "Bearer fixture-token"}};

  // Without the configured token the server refuses, and the status says how.
  {
    Manager m({http_upstream("noauth", server.endpoint())}, test_options());
    m.start();
    ASSERT_TRUE(m.wait_settled(30s));
    ASSERT_TRUE(eventually([&] { return status_of(m, "noauth").state == State::kBackoff; }));
    const auto s = status_of(m, "noauth");
    EXPECT_NE(s.error.find("HTTP 401"), std::string::npos) << s.error;
  }

  Manager m({http_upstream("legacy", server.endpoint(), auth)}, test_options());
  std::atomic<int> changes{0};
  m.on_tools_changed([&] { ++changes; });
  m.start();
  ASSERT_TRUE(m.wait_settled(30s));
  ASSERT_EQ(status_of(m, "legacy").state, State::kReady) << status_of(m, "legacy").error;
  EXPECT_EQ(status_of(m, "legacy").protocol_version, "2025-11-25");

  auto stats = [&] {
    auto r = m.call_tool("legacy", "stats", json::object());
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    return r.ok() ? json::parse(first_text(*r)) : json::object();
  };
  json st = stats();
  EXPECT_EQ(st["initializations"], 1);
  EXPECT_EQ(st["lastHeaders"]["mcp-protocol-version"], "2025-11-25");
  EXPECT_TRUE(st["lastHeaders"].contains("mcp-session-id"));
  EXPECT_EQ(st["lastHeaders"]["accept"], "application/json, text/event-stream");

  // A tool added on the server is announced on the session's GET stream and re-listed.
  ASSERT_TRUE(eventually([&] { return stats()["gets"] >= 1; }));
  std::this_thread::sleep_for(100ms);  // the stream is registered just after the GET arrives
  ASSERT_TRUE(eventually([&] { return changes >= 1; }));
  const int before = changes;
  ASSERT_TRUE(m.call_tool("legacy", "add_tool", json::object()).ok());
  ASSERT_TRUE(eventually([&] { return has_tool(m.tools("legacy").value(), "extra"); }));
  EXPECT_GT(changes.load(), before);

  // The server forgets the session: the next request sees 404, a new session is made once,
  // the request goes through, and the GET stream follows the new session.
  ASSERT_TRUE(m.call_tool("legacy", "expire", json::object()).ok());
  std::this_thread::sleep_for(200ms);
  auto echo = m.call_tool("legacy", "echo", {{"text", "new session"}});
  ASSERT_TRUE(echo.ok()) << echo.error().message;
  EXPECT_EQ(first_text(*echo), "new session");
  EXPECT_EQ(stats()["initializations"], 2);
  EXPECT_EQ(status_of(m, "legacy").restarts, 0u);
  EXPECT_TRUE(eventually([&] { return stats()["gets"] >= 2; }));

  // Stopping DELETEs the session.
  const int deletes_before = stats()["deletes"];
  m.stop();
  Manager probe({http_upstream("legacy", server.endpoint(), auth)}, test_options());
  probe.start();
  ASSERT_TRUE(probe.wait_settled(30s));
  auto r = probe.call_tool("legacy", "stats", json::object());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(json::parse(first_text(*r))["deletes"], deletes_before + 1);
}

TEST(UpstreamHttp, ModernEraPeer) {
  TempDir dir;
  const std::string port_file = dir.path + "/modern.port";
  ServerProcess server({kFixtures + "/modern_server.mjs", "http", port_file}, port_file);
  Manager m({http_upstream("modern", server.endpoint())}, test_options());
  m.start();
  ASSERT_TRUE(m.wait_settled(30s));
  const auto s = status_of(m, "modern");
  ASSERT_EQ(s.state, State::kReady) << s.error;
  EXPECT_EQ(s.protocol_version, "2026-07-28");
  EXPECT_EQ(s.server_info.value("name", ""), "modern-fixture");
  EXPECT_EQ(s.tool_count, 3u);

  auto sum = m.call_tool("modern", "add", {{"a", 1.5}, {"b", 2}});
  ASSERT_TRUE(sum.ok()) << sum.error().message;
  EXPECT_EQ((*sum)["structuredContent"]["sum"], 3.5);

  std::mutex mu;
  std::vector<json> progress;
  CallOptions o;
  o.on_progress = [&](const json& p) {
    std::lock_guard lock(mu);
    progress.push_back(p);
  };
  auto slow = m.call_tool("modern", "slow", {{"steps", 3}}, o);
  ASSERT_TRUE(slow.ok()) << slow.error().message;
  EXPECT_EQ(first_text(*slow), "done 3");
  EXPECT_EQ(progress.size(), 3u);

  auto who = m.call_tool("modern", "whoami", json::object());
  ASSERT_TRUE(who.ok()) << who.error().message;
  const json w = json::parse(first_text(*who));
  EXPECT_EQ(w["era"], "modern");
  EXPECT_EQ(w["envelope"]["io.modelcontextprotocol/clientInfo"]["name"], "1mcp");

  std::atomic<bool> cancel{false};
  CallOptions c;
  c.cancel = &cancel;
  std::thread t([&] {
    std::this_thread::sleep_for(150ms);
    cancel = true;
  });
  const auto t0 = Clock::now();
  auto cancelled = m.call_tool("modern", "slow", {{"steps", 200}}, c);
  t.join();
  ASSERT_FALSE(cancelled.ok());
  EXPECT_LT(since(t0), 1s);
}

TEST(UpstreamHttp, UnreachableEndpointBacksOff) {
  Manager m({http_upstream("down", "http://127.0.0.1:1/mcp")}, test_options());
  m.start();
  ASSERT_TRUE(m.wait_settled(30s));
  ASSERT_TRUE(eventually([&] { return status_of(m, "down").state == State::kBackoff; }));
  const auto s = status_of(m, "down");
  EXPECT_NE(s.error.find("unreachable"), std::string::npos) << s.error;
  const auto t0 = Clock::now();
  m.stop();
  EXPECT_LT(since(t0), 1s);
  EXPECT_EQ(status_of(m, "down").state, State::kStopped);
}


// ---------- the server's code-mode calls ----------

// A run's upstream call ends when the run does (its kill at the deadline cancels the call), never
// by a timeout of its own just before: that would fail the script before its deadline, turning
// the run's outcome from "timeout" into an uncaught McpError.
TEST(UpstreamCodeMode, RunCallEndsWithTheRunNotBeforeItsDeadline) {
  Manager m({stdio_upstream("fx", {kStdioFixture})}, test_options());
  m.start();
  ASSERT_TRUE(m.wait_settled(30s));
  ASSERT_EQ(status_of(m, "fx").state, State::kReady) << status_of(m, "fx").error;
  onemcp::server::Upstreams upstreams(m);
  const json frame = {{"op", "mcp"}, {"id", 7}, {"server", "fx"}, {"tool", "hang"}};
  std::atomic<bool> cancelled{false}, answered{false};
  std::string answer;
  const auto deadline = Clock::now() + 300ms;
  std::thread call([&] {
    answer = upstreams.answer(frame, policy::Policy{}, deadline, cancelled);
    answered = true;
  });
  std::this_thread::sleep_for(800ms);  // well past the deadline: the run would be dead by now
  EXPECT_FALSE(answered);
  const auto t0 = Clock::now();
  cancelled = true;  // the run is over
  call.join();
  EXPECT_LT(since(t0), 500ms);
  const json a = json::parse(answer);
  EXPECT_EQ(a["ok"], false);
  EXPECT_NE(a["error"].get<std::string>().find("fx.hang: "), std::string::npos) << answer;

  // The backstop: a run that outlives its deadline is not waited for forever.
  std::atomic<bool> never{false};
  const auto t1 = Clock::now();
  const json late = json::parse(upstreams.answer(frame, policy::Policy{}, Clock::now() + 100ms, never));
  EXPECT_GE(since(t1), 2s);
  EXPECT_LT(since(t1), 4s);
  EXPECT_NE(late["error"].get<std::string>().find("timed out"), std::string::npos) << late.dump();
}

// POST /mcps-rpc obeys the server's policy.mcps like a run does: a tool it leaves out is refused
// with 403 before the upstream sees the call.
TEST(UpstreamCodeMode, RpcEndpointObeysTheServerPolicy) {
  Manager m({stdio_upstream("fx", {kStdioFixture})}, test_options());
  m.start();
  ASSERT_TRUE(m.wait_settled(30s));
  ASSERT_EQ(status_of(m, "fx").state, State::kReady) << status_of(m, "fx").error;
  onemcp::server::Upstreams upstreams(m);
  policy::Policy only_echo;
  only_echo.mcps = {"fx/echo"};
  const std::string echo = R"({"mcp": "fx", "tool": "echo", "params": {"text": "hi"}})";
  const std::string crash = R"({"mcp": "fx", "tool": "crash"})";
  auto ok = upstreams.rpc(echo, only_echo, nullptr, 5s);
  EXPECT_EQ(ok.status, 200) << ok.body;
  auto refused = upstreams.rpc(crash, only_echo, nullptr, 5s);
  EXPECT_EQ(refused.status, 403) << refused.body;
  EXPECT_NE(refused.body.find("fx.crash is not allowed by policy.mcps"), std::string::npos) << refused.body;
  policy::Policy none;
  none.mcps = {};
  EXPECT_EQ(upstreams.rpc(echo, none, nullptr, 5s).status, 403);
  EXPECT_EQ(status_of(m, "fx").restarts, 0);  // the refused crash never reached the upstream
}

// A run's /mcps tree is made once per tool list and policy.mcps, not per run; the trees the memo
// keeps for narrowed policies are bounded.
TEST(UpstreamCodeMode, McpsTreesAreMadeOncePerListAndPolicy) {
  Manager m({stdio_upstream("fx", {kStdioFixture})}, test_options());
  m.start();
  ASSERT_TRUE(m.wait_settled(30s));
  ASSERT_EQ(status_of(m, "fx").state, State::kReady) << status_of(m, "fx").error;
  onemcp::server::Upstreams upstreams(m);
  EXPECT_EQ(upstreams.mcps_tree(policy::Policy{}), nullptr);  // no trees root: no /mcps
  const std::filesystem::path root =
      std::filesystem::temp_directory_path() / ("mcps_memo_" + std::to_string(::getpid()));
  auto trees = onemcp::server::McpsTrees::open(root.string());
  ASSERT_TRUE(trees) << trees.error().message;
  const onemcp::server::McpsTrees& t = **trees;
  upstreams.set_trees(std::move(*trees));
  auto all = upstreams.mcps_tree(policy::Policy{});
  ASSERT_NE(all, nullptr);
  EXPECT_EQ(upstreams.mcps_tree(policy::Policy{}), all);  // from memory
  EXPECT_EQ(t.writes(), 1u);
  policy::Policy only_echo;
  only_echo.mcps = {"fx/echo"};
  auto echo = upstreams.mcps_tree(only_echo);
  ASSERT_NE(echo, nullptr);
  EXPECT_NE(echo->key, all->key);
  EXPECT_EQ(t.writes(), 2u);
  EXPECT_FALSE(upstreams.refresh());  // the same list again: the trees in memory stay
  EXPECT_EQ(upstreams.mcps_tree(policy::Policy{})->key, all->key);
  EXPECT_EQ(t.writes(), 2u);
  // Many narrowed policies: the memo forgets, and unused trees leave the disk.
  all.reset();
  echo.reset();
  const std::vector<std::string> tools = {"echo",    "crash",    "hang",       "slow",
                                          "garbage", "add_tool", "ask_client", "cancelled",
                                          "env",     "pid",      "grandchild"};
  for (size_t i = 0; i < tools.size(); ++i) {
    for (size_t k = i + 1; k < tools.size(); ++k) {
      policy::Policy p;
      p.mcps = {"fx/" + tools[i], "fx/" + tools[k]};
      ASSERT_NE(upstreams.mcps_tree(p), nullptr);
    }
  }
  size_t on_disk = 0;
  for ([[maybe_unused]] auto& e : std::filesystem::directory_iterator(root)) ++on_disk;
  EXPECT_LE(on_disk, 33u);
  std::filesystem::remove_all(root);
}

// Gateway exposure across an upstream's restart. Its tools are in place (gateway, catalog) before
// anyone sees it ready; while it restarts they stay listed and a call to one says so at once, in
// words (a tool error for clients, an McpError in runs); a new list replaces them, and they go
// when the upstream stops.
TEST(UpstreamCodeMode, GatewayToolsAreReadyFirstAndKeptWhileRestarting) {
  TempDir dir;
  const std::string hold = dir.path + "/hold";
  Manager m({stdio_upstream("fx", {kStdioFixture}, {{"ONEMCP_HOLD_FILE", hold}})}, test_options());
  onemcp::server::Upstreams upstreams(m, {"fx"});
  StopFirst stop_first{m};  // the callback uses `upstreams`
  const policy::Policy all;
  auto listed = [&](const std::string& name) {
    return upstreams.gateway_target(name, all).has_value();
  };
  std::atomic<int> ready_without_tools{0}, list_changes{0};
  m.on_tools_changed([&] {
    // What a client can see before the gateway is refreshed: an upstream shown ready has its tools.
    const json mcps = json::parse(upstreams.get("/mcps").body)["mcps"];
    if (mcps[0]["status"] == "ready" && !listed("fx__echo")) ++ready_without_tools;
    if (upstreams.refresh()) ++list_changes;
  });
  m.start();
  ASSERT_TRUE(m.wait_settled(30s));
  ASSERT_EQ(status_of(m, "fx").state, State::kReady) << status_of(m, "fx").error;
  EXPECT_EQ(list_changes, 1);
  ASSERT_TRUE(m.call_tool("fx", "add_tool", json::object()).ok());
  ASSERT_TRUE(eventually([&] { return listed("fx__extra"); }));
  EXPECT_EQ(list_changes, 2);

  auto crash = m.call_tool("fx", "crash", {{"hold", true}});
  ASSERT_FALSE(crash.ok());
  EXPECT_NE(crash.error().message.find("exited with status 3"), std::string::npos)
      << crash.error().message;
  // Restarting (its next start held): the last tools stay, a call is told why it is not served.
  EXPECT_TRUE(listed("fx__echo"));
  EXPECT_TRUE(listed("fx__extra"));
  EXPECT_TRUE(has_tool(m.tools("fx").value(), "extra"));
  auto during = m.call_tool("fx", "echo", {{"text", "x"}});
  ASSERT_FALSE(during.ok());
  EXPECT_EQ(during.error().message, "upstream 'fx' is restarting (attempt 1); try again");
  const json frame = {
      {"op", "mcp"}, {"id", 1}, {"server", "fx"}, {"tool", "echo"}, {"args", {{"text", "x"}}}};
  std::atomic<bool> never{false};
  const json in_run = json::parse(upstreams.answer(frame, all, Clock::now() + 5s, never));
  EXPECT_EQ(in_run["error"], "fx.echo: upstream 'fx' is restarting (attempt 1); try again")
      << in_run;
  EXPECT_TRUE(eventually([&] { return status_of(m, "fx").state == State::kConnecting; }));
  auto again = m.call_tool("fx", "echo", json::object());  // with the held attempt under way
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().message, during.error().message);
  EXPECT_EQ(list_changes, 2);

  // Back: the new list (without the added tool) replaces the last one before the state is ready.
  std::filesystem::remove(hold);
  ASSERT_TRUE(eventually([&] {
    const auto s = status_of(m, "fx");
    return s.state == State::kReady && s.restarts == 1;
  })) << status_of(m, "fx").error;
  EXPECT_FALSE(listed("fx__extra"));
  EXPECT_TRUE(listed("fx__echo"));
  EXPECT_EQ(list_changes, 3);
  auto echo = m.call_tool("fx", "echo", {{"text", "back"}});
  ASSERT_TRUE(echo.ok()) << echo.error().message;
  EXPECT_EQ(first_text(*echo), "back");
  EXPECT_EQ(ready_without_tools, 0);

  // Stopped: given up on, its tools go.
  m.stop();
  EXPECT_FALSE(m.tools("fx").ok());
  EXPECT_FALSE(listed("fx__echo"));
  EXPECT_EQ(list_changes, 4);
}

// An upstream that does not come back within ManagerOptions::keep_tools_for loses its last tools
// (the gateway withdraws them, a call says it is not ready) until it is ready again.
TEST(UpstreamCodeMode, LastToolsAreWithdrawnWhenTheUpstreamDoesNotComeBack) {
  TempDir dir;
  const std::string hold = dir.path + "/hold";
  ManagerOptions o = test_options();
  o.connect_timeout = 1500ms;  // a held restart fails after this
  o.keep_tools_for = 500ms;
  Manager m({stdio_upstream("fx", {kStdioFixture}, {{"ONEMCP_HOLD_FILE", hold}})}, o);
  onemcp::server::Upstreams upstreams(m, {"fx"});
  StopFirst stop_first{m};  // the callback uses `upstreams`
  const policy::Policy all;
  auto listed = [&] { return upstreams.gateway_target("fx__echo", all).has_value(); };
  std::atomic<int> list_changes{0};
  m.on_tools_changed([&] {
    if (upstreams.refresh()) ++list_changes;
  });
  m.start();
  ASSERT_TRUE(m.wait_settled(30s));
  ASSERT_EQ(status_of(m, "fx").state, State::kReady) << status_of(m, "fx").error;
  EXPECT_EQ(list_changes, 1);

  ASSERT_FALSE(m.call_tool("fx", "crash", {{"hold", true}}).ok());
  EXPECT_TRUE(listed()) << "withdrawn before its first restart attempt failed";
  // Its restarts keep failing (held until the connect timeout): withdrawn once 500 ms have passed.
  ASSERT_TRUE(eventually([&] { return !listed(); }, 15s));
  EXPECT_FALSE(m.tools("fx").ok());
  auto call = m.call_tool("fx", "echo", {{"text", "x"}});
  ASSERT_FALSE(call.ok());
  EXPECT_EQ(call.error().message.rfind("upstream 'fx' is not ready", 0), 0u)
      << call.error().message;
  EXPECT_EQ(list_changes, 2);

  // Back: listed again.
  std::filesystem::remove(hold);
  ASSERT_TRUE(eventually([&] { return status_of(m, "fx").state == State::kReady && listed(); }))
      << status_of(m, "fx").error;
  EXPECT_EQ(list_changes, 3);
  auto echo = m.call_tool("fx", "echo", {{"text", "back"}});
  ASSERT_TRUE(echo.ok()) << echo.error().message;
}

}  // namespace
}  // namespace onemcp::upstream
