// The `mcp_tools` module of Python runs, end to end in the sandbox: the real 1mcp-py-worker is
// started through sandbox::Zygote, a run with RunRequest::mcp gets its relay, and the test plays
// the supervisor's broker handler: it answers "mcp" and "mcp_list" requests as scripted and
// checks the requests the run made exactly.
#include <gtest/gtest.h>

#include <chrono>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "sandbox/executor.h"

namespace onemcp::sandbox {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

class PyMcp : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto z =
        Zygote::start(LaunchSpec{ONEMCP_PY_WORKER, {}, {"PATH=/usr/bin:/bin", "LANG=C.UTF-8"}});
    ASSERT_TRUE(z) << z.error().message;
    zygote_ = z->release();
    auto ready = zygote_->wait_ready(std::chrono::seconds(30));
    ASSERT_TRUE(ready) << ready.error().message;
  }
  static void TearDownTestSuite() {
    delete zygote_;
    zygote_ = nullptr;
  }

  // Runs `code`; every broker request is recorded and answered by `answer` (its id added).
  RunOutput run(const std::string& code, bool mcp, std::function<json(const json&)> answer) {
    ipc::RunRequest req;
    req.code = code;
    req.timeout_ms = 20000;
    req.mem_mb = 256;
    req.stdout_bytes = 1 << 20;
    req.mcp = mcp;
    BrokerHandler handler = [&](const std::string& frame, Clock::time_point,
                                const std::atomic<bool>&) {
      json j = json::parse(frame);
      json out = answer(j);
      out["id"] = j["id"];
      std::lock_guard lk(mu_);
      seen_.push_back(std::move(j));
      return out.dump();
    };
    auto r = zygote_->run(req, "", nullptr, &handler);
    EXPECT_TRUE(r) << r.error().message;
    return r ? std::move(*r) : RunOutput{};
  }

  // The requests seen, without their ids.
  std::vector<json> seen() {
    std::lock_guard lk(mu_);
    std::vector<json> out = seen_;
    for (auto& j : out) j.erase("id");
    return out;
  }

  static json result(json value) { return {{"ok", true}, {"result", std::move(value)}}; }
  static json failure(const std::string& error, bool is_error) {
    return {{"ok", false}, {"error", error}, {"isError", is_error}};
  }

  static Zygote* zygote_;
  std::mutex mu_;
  std::vector<json> seen_;
};
Zygote* PyMcp::zygote_ = nullptr;

#define EXPECT_PY_OK(r) EXPECT_EQ((r).exit_code, 0) << "stderr: " << (r).err

TEST_F(PyMcp, CallsGoThroughTheRelayAsMcpRequests) {
  auto r = run(R"(
import json
from mcp_tools import filesystem
r = filesystem.read_text_file(path="/x", opts={"n": [1, "two", None, True]})
print(json.dumps(r, sort_keys=True))
)",
               true, [](const json&) {
                 return result({{"content", {{{"type", "text"}, {"text", "hello"}}}}});
               });
  EXPECT_PY_OK(r);
  EXPECT_EQ(r.out, "{\"content\": [{\"text\": \"hello\", \"type\": \"text\"}]}\n");
  ASSERT_EQ(seen().size(), 1u);
  EXPECT_EQ(seen()[0],
            json::parse(R"({"op": "mcp", "server": "filesystem", "tool": "read_text_file",
                                        "args": {"path": "/x", "opts": {"n": [1, "two", null, true]}}})"));
}

TEST_F(PyMcp, ArgumentFormsListAndCall) {
  auto r = run(R"(
import mcp_tools
from mcp_tools import web
print(web.search({"q": "a"}), web.search({"q": "b"}, limit=2), web.search(), mcp_tools.web.search.__name__)
print(mcp_tools.call("my-server", "tool.v2", {"x": 1}), getattr(mcp_tools, "my-server"))
print(mcp_tools.list())
)",
               true, [](const json& req) {
                 if (req["op"] == "mcp_list")
                   return result({{"web", {"search"}}, {"my_server", {"tool_v2"}}});
                 return result(req["args"].size());
               });
  EXPECT_PY_OK(r);
  EXPECT_EQ(r.out,
            "1 2 0 search\n"
            "1 <upstream MCP server my-server>\n"
            "{'my_server': ['tool_v2'], 'web': ['search']}\n");
  auto s = seen();
  ASSERT_EQ(s.size(), 5u);
  EXPECT_EQ(s[0],
            json::parse(R"({"op": "mcp", "server": "web", "tool": "search", "args": {"q": "a"}})"));
  EXPECT_EQ(
      s[1],
      json::parse(
          R"({"op": "mcp", "server": "web", "tool": "search", "args": {"q": "b", "limit": 2}})"));
  EXPECT_EQ(s[2], json::parse(R"({"op": "mcp", "server": "web", "tool": "search", "args": {}})"));
  EXPECT_EQ(
      s[3],
      json::parse(R"({"op": "mcp", "server": "my-server", "tool": "tool.v2", "args": {"x": 1}})"));
  EXPECT_EQ(s[4], json::parse(R"({"op": "mcp_list"})"));
}

TEST_F(PyMcp, FailuresRaiseMcpError) {
  auto r = run(R"(
import mcp_tools
for tool in ("create_issue", "delete_repo"):
    try:
        getattr(mcp_tools.github, tool)(title="t")
    except mcp_tools.McpError as e:
        print(type(e).__name__, e, e.is_error)
mcp_tools.github.create_issue()
)",
               true, [](const json& req) {
                 if (req["tool"] == "create_issue") return failure("repository not found", true);
                 return failure("blocked by policy.mcps: github/delete_repo is not allowed", false);
               });
  EXPECT_EQ(r.out,
            "McpError repository not found True\n"
            "McpError blocked by policy.mcps: github/delete_repo is not allowed False\n");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.report.error_kind.value_or(""), "exception");
  EXPECT_EQ(r.report.error_message.value_or(""), "mcp_tools.McpError: repository not found");
  // The traceback shows the module's own lines too.
  EXPECT_NE(r.err.find("File \"<mcp_tools>\""), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("raise McpError("), std::string::npos) << r.err;
}

TEST_F(PyMcp, BadArgumentsAreRefusedBeforeSending) {
  auto r = run(R"(
import mcp_tools
fs = mcp_tools.fs
for bad in ([1], "x", 5, (1,)):
    try:
        fs.read(bad)
    except TypeError as e:
        print(e)
for call in (lambda: fs.read({"a": 1}, {"b": 2}), lambda: fs.read({1: "v"}),
             lambda: fs.read(s={1, 2}), lambda: fs.read(x=float("nan"))):
    try:
        call()
    except (TypeError, ValueError) as e:
        print(type(e).__name__)
)",
               true, [](const json&) { return result(nullptr); });
  EXPECT_PY_OK(r);
  EXPECT_EQ(r.out,
            "fs.read: the arguments must be keyword arguments or one dict\n"
            "fs.read: the arguments must be keyword arguments or one dict\n"
            "fs.read: the arguments must be keyword arguments or one dict\n"
            "fs.read: the arguments must be keyword arguments or one dict\n"
            "TypeError\nTypeError\nTypeError\nValueError\n");
  EXPECT_TRUE(seen().empty()) << seen()[0];
}

TEST_F(PyMcp, ChainedCallsInOneRun) {
  auto r = run(R"(
from mcp_tools import fs, calc
files = fs.list_directory(path="/data")
total = sum(fs.stat(path=f)["size"] for f in files)
squares = [calc.square(n=i) for i in range(10)]
print(files, total, squares)
)",
               true, [](const json& req) {
                 const std::string tool = req["tool"];
                 if (tool == "list_directory") return result({"/data/a", "/data/b", "/data/c"});
                 if (tool == "stat")
                   return result({{"size", req["args"]["path"] == "/data/b" ? 20 : 1}});
                 int n = req["args"]["n"];
                 return result(n * n);
               });
  EXPECT_PY_OK(r);
  EXPECT_EQ(r.out, "['/data/a', '/data/b', '/data/c'] 22 [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]\n");
  EXPECT_EQ(seen().size(), 14u);
}

TEST_F(PyMcp, OnlyTheRelayHoldsTheBrokerAndNothingElseIsReachable) {
  auto r = run(R"(
import os, socket
try:
    os.fstat(4); print("fd 4 open")
except OSError:
    print("no fd 4")
try:
    socket.create_connection(("127.0.0.1", 3129), timeout=2); print("connected")
except OSError:
    print("refused")
print(sorted(k for k in os.environ if "proxy" in k.lower()))
import mcp_tools
print(mcp_tools.fs.read(path="/x"))
)",
               true, [](const json&) { return result("via the relay"); });
  EXPECT_PY_OK(r);
  EXPECT_EQ(r.out, "no fd 4\nrefused\n[]\nvia the relay\n");
}

TEST_F(PyMcp, WithoutTheFlagCallsFailClearly) {
  auto r = run(R"(
import mcp_tools
from mcp_tools import filesystem
try:
    filesystem.read_text_file(path="/x")
except mcp_tools.McpError as e:
    print(e, e.is_error)
mcp_tools.list()
)",
               false, [](const json&) { return result("never"); });
  EXPECT_EQ(r.out, "code mode is not enabled for this run False\n");
  EXPECT_EQ(r.report.error_message.value_or(""),
            "mcp_tools.McpError: code mode is not enabled for this run");
  EXPECT_TRUE(seen().empty());
}

TEST_F(PyMcp, ModuleBehavesLikeAModule) {
  auto r = run(R"(
import importlib, mcp_tools
print(importlib.import_module("mcp_tools") is mcp_tools, mcp_tools.__spec__.name, mcp_tools.__all__)
print(hasattr(mcp_tools, "__path__"), hasattr(mcp_tools, "_private"), hasattr(mcp_tools.fs, "__wrapped__"))
from mcp_tools import *
print(list, McpError.__module__)
print(repr(mcp_tools.fs), mcp_tools.fs.read.__qualname__)
)",
               false, [](const json&) { return result(nullptr); });
  EXPECT_PY_OK(r);
  EXPECT_EQ(r.out,
            "True mcp_tools ['McpError']\n"
            "False False False\n"
            "<class 'list'> mcp_tools\n"
            "<upstream MCP server fs> fs.read\n");
}

}  // namespace
}  // namespace onemcp::sandbox
