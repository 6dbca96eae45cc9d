#include "server/tools.h"

#include <gtest/gtest.h>
#include <signal.h>

#include "policy/schema.h"
#include "policy/schemas.h"

namespace onemcp::server {
namespace {

using nlohmann::json;

sandbox::RunOutput output(std::string out, std::string err, sandbox::Outcome o, int code) {
  sandbox::RunOutput r;
  r.out = std::move(out);
  r.err = std::move(err);
  r.outcome = o;
  r.exit_code = code;
  return r;
}

TEST(ToolResult, PlainStdoutIsTheWholeText) {
  ipc::RunRequest req;
  auto j = tool_result(Language::py, output("a\nb\n", "", sandbox::Outcome::ok, 0), req);
  EXPECT_EQ(j["content"][0]["text"], "a\nb\n");
  EXPECT_EQ(j["isError"], false);
  EXPECT_EQ(j["structuredContent"]["stdout"], "a\nb\n");
  EXPECT_EQ(j["structuredContent"]["truncated"], false);
  EXPECT_FALSE(j["structuredContent"].contains("value"));
  EXPECT_FALSE(j["structuredContent"].contains("capsule"));
}

TEST(ToolResult, NamesTheCapsuleThatRan) {
  ipc::RunRequest req;
  auto out = output("", "", sandbox::Outcome::ok, 0);
  out.capsule = std::string(64, 'c');
  auto j = tool_result(Language::js, out, req);
  EXPECT_EQ(j["structuredContent"]["capsule"], std::string(64, 'c'));
  EXPECT_TRUE(policy::validate(policy::run_output_schema(), j["structuredContent"]));
}

TEST(ToolResult, ErrorsAreLabelled) {
  ipc::RunRequest req;
  auto j = tool_result(Language::py, output("partial", "Traceback\nZeroDivisionError\n", sandbox::Outcome::error, 1), req);
  EXPECT_EQ(j["isError"], true);
  EXPECT_EQ(j["content"][0]["text"], "partial\n[stderr]\nTraceback\nZeroDivisionError\n[error: exit code 1]\n");
  EXPECT_EQ(j["structuredContent"]["exitCode"], 1);
  EXPECT_EQ(j["structuredContent"]["outcome"], "error");
}

TEST(ToolResult, LimitsAreExplained) {
  ipc::RunRequest req;
  req.timeout_ms = 500;
  req.stdout_bytes = 3;
  auto t = tool_result(Language::js, output("", "", sandbox::Outcome::timeout, 137), req);
  EXPECT_EQ(t["content"][0]["text"], "[time limit exceeded: stopped after 500 ms]\n");
  auto o = output("xxx", "", sandbox::Outcome::output_limit, 137);
  o.truncated = true;
  auto j = tool_result(Language::js, o, req);
  EXPECT_EQ(j["structuredContent"]["truncated"], true);
  EXPECT_NE(j["content"][0]["text"].get<std::string>().find("[output truncated at 3 bytes]"), std::string::npos);
  auto c = output("", "", sandbox::Outcome::crashed, 128 + SIGSEGV);
  c.signal = SIGSEGV;
  EXPECT_EQ(tool_result(Language::py, c, req)["content"][0]["text"], "[crashed: signal SEGV]\n");
  c.signal = 40;  // real-time signals have no abbreviation
  EXPECT_EQ(tool_result(Language::py, c, req)["content"][0]["text"], "[crashed: signal 40]\n");
}

TEST(ToolResult, JsValueAndInvalidUtf8) {
  ipc::RunRequest req;
  auto o = output("a\xff", "", sandbox::Outcome::ok, 0);
  o.report.value = "{ x: 1 }";
  auto j = tool_result(Language::js, o, req);
  EXPECT_EQ(j["structuredContent"]["stdout"], "a\xEF\xBF\xBD");
  EXPECT_EQ(j["structuredContent"]["value"], "{ x: 1 }");
  EXPECT_EQ(j["content"][0]["text"], "a\xEF\xBF\xBD\n[value] { x: 1 }\n");
  EXPECT_NO_THROW(j.dump());
}

TEST(PrepareRun, MapsArgumentsAndRefusesBadOnes) {
  policy::Policy p;
  auto ok = prepare_run(Language::py,
                        json{{"code", "print(1)"}, {"stdin", "x"}, {"args", {"a"}}, {"env", {{"K", "V"}}}, {"cwd", "/tmp"}}, p);
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(ok->request.code, "print(1)");
  EXPECT_EQ(ok->stdin_data, "x");
  EXPECT_EQ(ok->request.args, std::vector<std::string>{"a"});
  EXPECT_EQ(ok->request.env.at("K"), "V");
  EXPECT_EQ(ok->request.cwd, "/tmp");
  EXPECT_EQ(ok->request.mem_mb, p.limits.mem_mb);

  EXPECT_FALSE(prepare_run(Language::py, json{{"code", 5}}, p).ok());
  EXPECT_FALSE(prepare_run(Language::py, json{{"code", "x"}, {"args", "notalist"}}, p).ok());
  EXPECT_FALSE(prepare_run(Language::js, json{{"code", "x"}, {"env", {{"K", 1}}}}, p).ok());
  EXPECT_FALSE(prepare_run(Language::js, json{{"code", "x"}, {"policy", {{"limits", {{"memMb", "lots"}}}}}}, p).ok());
  auto deps = prepare_run(Language::js, json{{"code", "x"}, {"npm", {{"dependencies", {{"lodash", "4"}}}}}}, p);
  ASSERT_TRUE(deps.ok()) << deps.error().message;
  EXPECT_EQ(deps->npm_dependencies, (deps::Dependencies{{"lodash", "4"}}));
  auto bad = prepare_run(
      Language::js, json{{"code", "x"}, {"npm", {{"dependencies", {{"x", "file:../../etc"}}}}}}, p);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("npm.dependencies: x: unsupported version"),
            std::string::npos);
  bad = prepare_run(Language::js,
                    json{{"code", "x"}, {"npm", {{"dependencies", {{"../evil", "1"}}}}}}, p);
  ASSERT_FALSE(bad.ok());
  bad = prepare_run(
      Language::js,
      json{{"code", "x"}, {"npm", {{"dependencies", {{"x", "git+https://h/r.git"}}}}}}, p);
  ASSERT_FALSE(bad.ok());
  auto pip = prepare_run(Language::py,
                         json{{"code", "x"}, {"pip", {{"requirements", {"requests==2.32.3"}}}}}, p);
  ASSERT_TRUE(pip.ok()) << pip.error().message;
  EXPECT_EQ(pip->pip.requirements, std::vector<std::string>{"requests==2.32.3"});
  auto bad_pip = prepare_run(
      Language::py, json{{"code", "x"}, {"pip", {{"requirements", {"x @ https://h/x.whl"}}}}}, p);
  ASSERT_FALSE(bad_pip.ok());
  EXPECT_NE(bad_pip.error().message.find("pip.requirements: unsupported requirement"),
            std::string::npos);
}

// A wheel URL is checked against the call's network policy before anything is downloaded.
TEST(PrepareRun, WheelUrlsMustBeAllowedByTheNetworkPolicy) {
  policy::Policy p;
  p.network.allowed_domains = {"wheels.example.test"};
  p.network.denied_domains = {"bad.example.test"};
  auto wheels = [](std::string url) {
    return json{{"code", "x"}, {"pip", {{"requirements", json::array()}, {"wheelUrls", {url}}}}};
  };
  auto ok = prepare_run(Language::py, wheels("https://wheels.example.test/a-1.0-py3-none-any.whl"), p);
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(ok->pip.wheel_urls.size(), 1u);
  for (auto [url, expect] : {
           std::pair{"https://other.test/a-1.0-py3-none-any.whl",
                     "pip.wheelUrls: blocked by network policy (allowedDomains: no entry matches other.test)"},
           std::pair{"https://127.0.0.1/a-1.0-py3-none-any.whl",
                     "pip.wheelUrls: blocked by network policy (denyIpLiterals)"},
           std::pair{"https://wheels.example.test/a.whl", "pip.wheelUrls: unsupported URL"},
           std::pair{"https://user@wheels.example.test/a-1.0-py3-none-any.whl", "pip.wheelUrls: "},
       }) {
    auto r = prepare_run(Language::py, wheels(url), p);
    ASSERT_FALSE(r.ok()) << url;
    EXPECT_NE(r.error().message.find(expect), std::string::npos) << r.error().message;
  }
  // A call may tighten the policy: then the same host is refused.
  auto tightened = wheels("https://wheels.example.test/a-1.0-py3-none-any.whl");
  tightened["policy"] = {{"network", {{"allowedDomains", json::array()}}}};
  EXPECT_FALSE(prepare_run(Language::py, tightened, p).ok());
}

}  // namespace
}  // namespace onemcp::server
