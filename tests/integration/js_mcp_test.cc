// Integration tests of `mcp` (upstream MCP tools) in the JavaScript worker: the test plays the
// supervisor (see js_broker_run.h), answers "mcp" and "mcp_list" frames as scripted, and checks
// the frames the run sent exactly.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "js_broker_run.h"

namespace onemcp {
namespace {

using json = nlohmann::json;
using jstest::FetchRun;
using jstest::Peer;
using jstest::run_js;
using jstest::serve;

json ok_result(const json& req, json result) {
  return {{"id", req["id"]}, {"ok", true}, {"result", std::move(result)}};
}

json failed(const json& req, const std::string& error, bool is_error) {
  return {{"id", req["id"]}, {"ok", false}, {"error", error}, {"isError", is_error}};
}

// Answers every frame with `answer` and records what was asked.
std::function<void(Peer&)> recording(std::vector<json>& seen,
                                     std::function<json(const json&)> answer) {
  return [&seen, answer](Peer& peer) {
    while (auto req = peer.next()) {
      seen.push_back(*req);
      peer.send(answer(*req));
    }
  };
}

TEST(JsMcp, CallSendsTheIdentifiersAndArgsAndResolvesToTheResult) {
  std::vector<json> seen;
  FetchRun r =
      run_js(R"(
    const r = await mcp.filesystem.read_text_file({ path: '/x', opts: { n: [1, 'two', null, true] } });
    console.log(JSON.stringify(r));
    console.log(JSON.stringify(await mcp['my-server']['tool.v2']()));
  )",
             recording(seen, [](const json& req) {
               if (req["server"] == "filesystem")
                 return ok_result(req, {{"content", {{{"type", "text"}, {"text", "hello"}}}}});
               return ok_result(req, nullptr);
             }));
  EXPECT_RUN_OK(r);
  // The test side serialises objects with sorted keys.
  EXPECT_EQ(r.out, "{\"content\":[{\"text\":\"hello\",\"type\":\"text\"}]}\nnull\n");
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_TRUE(seen[0]["id"].is_number_unsigned());
  json first = seen[0];
  first.erase("id");
  EXPECT_EQ(first, json::parse(R"({"op": "mcp", "server": "filesystem", "tool": "read_text_file",
                                    "args": {"path": "/x", "opts": {"n": [1, "two", null, true]}}})"));
  json second = seen[1];
  second.erase("id");
  EXPECT_EQ(second,
            json::parse(R"({"op": "mcp", "server": "my-server", "tool": "tool.v2", "args": {}})"));
  EXPECT_NE(seen[0]["id"], seen[1]["id"]);
}

TEST(JsMcp, ToolErrorRejectsWithMcpErrorAndIsErrorTrue) {
  FetchRun r = run_js(
      R"(
    try {
      await mcp.github.create_issue({ title: 't' });
    } catch (e) {
      console.log(e instanceof Error, e.name, e.message, e.isError, String(e));
    }
    try {
      await mcp.github.delete_repo({});
    } catch (e) {
      console.log(e.name, e.message, e.isError);
    }
  )",
      serve([](const json& req) {
        if (req["tool"] == "create_issue") return failed(req, "repository not found", true);
        return failed(req, "blocked by policy.mcps: github/delete_repo is not allowed", false);
      }));
  EXPECT_RUN_OK(r);
  EXPECT_EQ(r.out,
            "true McpError repository not found true McpError: repository not found\n"
            "McpError blocked by policy.mcps: github/delete_repo is not allowed false\n");
}

TEST(JsMcp, UncaughtMcpErrorFailsTheRunNamingIt) {
  FetchRun r =
      run_js("await mcp.fs.read({});",
             serve([](const json& req) { return failed(req, "upstream fs is down", false); }));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.report.error_kind.value_or(""), "exception");
  EXPECT_EQ(r.report.error_message.value_or(""), "McpError: upstream fs is down");
  EXPECT_NE(r.err.find("isError: false"), std::string::npos) << r.err;
}

TEST(JsMcp, ArgumentsThatAreNotAPlainObjectAreRefusedBeforeSending) {
  std::vector<json> seen;
  FetchRun r = run_js(R"(
    for (const bad of [null, 5, 'x', [1], new Map(), new Date(0), () => 1]) {
      try {
        await mcp.fs.read(bad);
        console.log('sent');
      } catch (e) {
        console.log(e.name, e.message);
      }
    }
    const cyclic = {};
    cyclic.self = cyclic;
    await mcp.fs.read(cyclic).catch((e) => console.log(e.name));
    await mcp.fs.read({ big: 1n }).catch((e) => console.log(e.name));
    // A null-prototype object is a plain object.
    const bare = Object.create(null);
    bare.k = 'v';
    console.log(await mcp.fs.read(bare));
  )",
                      recording(seen, [](const json& req) { return ok_result(req, "fine"); }));
  EXPECT_RUN_OK(r);
  std::string refused = "TypeError mcp.fs.read: the arguments must be a plain object\n";
  std::string expected;
  for (int i = 0; i < 7; ++i) expected += refused;
  EXPECT_EQ(r.out, expected + "TypeError\nTypeError\nfine\n");
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0]["args"], json({{"k", "v"}}));
}

TEST(JsMcp, NamespacesAreNotThenableAndPrintSensibly) {
  std::vector<json> seen;
  FetchRun r = run_js(R"(
    const a = await mcp;
    const b = await mcp.fs;
    console.log(a === mcp, b === mcp.fs, mcp.then, mcp.fs.then, typeof mcp.fs.read, mcp.fs.read.name);
    console.log(mcp);
    console.log(mcp.fs);
    console.log(`${mcp.fs}`, JSON.stringify({ m: mcp }));
    console.log([mcp.fs]);
    console.log(Reflect.set(mcp, 'fs', 1), Reflect.defineProperty(mcp.fs, 'x', { value: 1 }),
                Reflect.deleteProperty(mcp, 'fs'));
  )",
                      recording(seen, [](const json& req) { return ok_result(req, nullptr); }));
  EXPECT_RUN_OK(r);
  EXPECT_EQ(r.out,
            "true true undefined undefined function read\n"
            "[mcp: upstream MCP servers; await mcp.$list() lists their tools]\n"
            "[mcp.fs: tools of an upstream MCP server]\n"
            "[mcp.fs: tools of an upstream MCP server] {\"m\":{}}\n"
            "[ [mcp.fs: tools of an upstream MCP server] ]\n"
            "false false false\n");
  EXPECT_TRUE(seen.empty()) << seen[0];
  EXPECT_LT(r.ms, 4000);
}

TEST(JsMcp, ListReturnsTheListing) {
  std::vector<json> seen;
  FetchRun r = run_js(R"(
    const tools = await mcp.$list();
    console.log(JSON.stringify(tools));
  )",
                      recording(seen, [](const json& req) {
                        return ok_result(req, {{"filesystem", {"read_text_file", "list_directory"}},
                                               {"web", json::array()}});
                      }));
  EXPECT_RUN_OK(r);
  EXPECT_EQ(r.out, "{\"filesystem\":[\"read_text_file\",\"list_directory\"],\"web\":[]}\n");
  ASSERT_EQ(seen.size(), 1u);
  json frame = seen[0];
  frame.erase("id");
  EXPECT_EQ(frame, json({{"op", "mcp_list"}}));
}

TEST(JsMcp, ChainedAndConcurrentCallsInOneRun) {
  std::vector<json> seen;
  FetchRun r =
      run_js(R"(
    const listing = await mcp.$list();
    const files = await mcp.fs.list_directory({ path: '/data' });
    let total = 0;
    for (const f of files) total += (await mcp.fs.stat({ path: f })).size;
    const many = await Promise.all(Array.from({ length: 12 }, (_, i) => mcp.calc.square({ n: i })));
    const fetched = await (await fetch('https://api.example.test/')).text();
    console.log(Object.keys(listing).join(), files.join(), total, many.join(), fetched);
  )",
             recording(seen, [](const json& req) -> json {
               if (req["op"] == "fetch") {
                 return {{"id", req["id"]},
                         {"ok", true},
                         {"status", 200},
                         {"statusText", "OK"},
                         {"headers", json::array()},
                         {"body", "b2s="},
                         {"url", req["url"]}};
               }
               if (req["op"] == "mcp_list")
                 return ok_result(req, {{"fs", {"stat"}}, {"calc", {"square"}}});
               const std::string tool = req["tool"];
               if (tool == "list_directory")
                 return ok_result(req, {"/data/a", "/data/b", "/data/c"});
               if (tool == "stat")
                 return ok_result(req, {{"size", req["args"]["path"] == "/data/b" ? 20 : 1}});
               int n = req["args"]["n"];
               return ok_result(req, n * n);
             }));
  EXPECT_RUN_OK(r);
  EXPECT_EQ(r.out, "calc,fs /data/a,/data/b,/data/c 22 0,1,4,9,16,25,36,49,64,81,100,121 ok\n");
  ASSERT_EQ(seen.size(), 1u + 1u + 3u + 12u + 1u);
  EXPECT_EQ(seen[2]["args"], json({{"path", "/data/a"}}));
  EXPECT_EQ(seen[4]["args"], json({{"path", "/data/c"}}));
}

TEST(JsMcp, AClosedChannelRejectsPendingCalls) {
  FetchRun r = run_js(R"(
    try {
      await mcp.fs.read({});
    } catch (e) {
      console.log(e.name, e.isError, e.message);
    }
  )",
                      [](Peer& peer) {
                        peer.next();
                        peer.close();
                      });
  EXPECT_RUN_OK(r);
  EXPECT_EQ(r.out,
            "McpError false upstream tools are not available: the network broker closed the "
            "connection\n");
}

TEST(JsMcp, WithoutABrokerChannelCallsFailAtOnce) {
  FetchRun r = run_js(R"(
    await mcp.$list().catch((e) => console.log(e.name, e.isError, e.message));
  )",
                      nullptr, 5000, /*with_channel=*/false);
  EXPECT_RUN_OK(r);
  EXPECT_EQ(r.out,
            "McpError false upstream tools are not available: network access is not available\n");
}

}  // namespace
}  // namespace onemcp
