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

RunSpec spec_of(Language lang) {
  RunSpec s;
  s.language = lang;
  return s;
}

TEST(ToolResult, PlainStdoutIsTheWholeText) {
  auto j = tool_result(spec_of(Language::py), output("a\nb\n", "", sandbox::Outcome::ok, 0));
  EXPECT_EQ(j["content"][0]["text"], "a\nb\n");
  EXPECT_EQ(j["isError"], false);
  EXPECT_EQ(j["structuredContent"]["stdout"], "a\nb\n");
  EXPECT_EQ(j["structuredContent"]["truncated"], false);
  EXPECT_FALSE(j["structuredContent"].contains("value"));
  EXPECT_FALSE(j["structuredContent"].contains("capsule"));
}

TEST(ToolResult, NamesTheCapsuleThatRan) {
  auto out = output("", "", sandbox::Outcome::ok, 0);
  out.capsule = std::string(64, 'c');
  auto j = tool_result(spec_of(Language::js), out);
  EXPECT_EQ(j["structuredContent"]["capsule"], std::string(64, 'c'));
  EXPECT_TRUE(policy::validate(policy::run_output_schema(), j["structuredContent"]));
}

TEST(ToolResult, ErrorsAreLabelled) {
  auto j = tool_result(spec_of(Language::py), output("partial", "Traceback\nZeroDivisionError\n",
                                                     sandbox::Outcome::error, 1));
  EXPECT_EQ(j["isError"], true);
  EXPECT_EQ(j["content"][0]["text"], "partial\n[stderr]\nTraceback\nZeroDivisionError\n[error: exit code 1]\n");
  EXPECT_EQ(j["structuredContent"]["exitCode"], 1);
  EXPECT_EQ(j["structuredContent"]["outcome"], "error");
}

TEST(ToolResult, LimitsAreExplained) {
  RunSpec js = spec_of(Language::js), py = spec_of(Language::py);
  js.policy.limits.timeout_ms = 500;
  js.policy.limits.stdout_bytes = 3;
  auto t = tool_result(js, output("", "", sandbox::Outcome::timeout, 137));
  EXPECT_EQ(t["content"][0]["text"], "[time limit exceeded: stopped after 500 ms]\n");
  auto o = output("xxx", "", sandbox::Outcome::output_limit, 137);
  o.truncated = true;
  auto j = tool_result(js, o);
  EXPECT_EQ(j["structuredContent"]["truncated"], true);
  EXPECT_NE(j["content"][0]["text"].get<std::string>().find("[output truncated at 3 bytes]"), std::string::npos);
  auto c = output("", "", sandbox::Outcome::crashed, 128 + SIGSEGV);
  c.signal = SIGSEGV;
  EXPECT_EQ(tool_result(py, c)["content"][0]["text"], "[crashed: signal SEGV]\n");
  c.signal = 40;  // real-time signals have no abbreviation
  EXPECT_EQ(tool_result(py, c)["content"][0]["text"], "[crashed: signal 40]\n");
}

TEST(ToolResult, JsValueAndInvalidUtf8) {
  auto o = output("a\xff", "", sandbox::Outcome::ok, 0);
  o.report.value = "{ x: 1 }";
  auto j = tool_result(spec_of(Language::js), o);
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
  EXPECT_EQ(ok->language, Language::py);
  EXPECT_EQ(ok->stdin_data, "x");
  // The worker's request comes from the spec: entry, limits and filesystem policy.
  const ipc::RunRequest req = ok->request();
  EXPECT_EQ(req.code, "print(1)");
  EXPECT_EQ(req.args, std::vector<std::string>{"a"});
  EXPECT_EQ(req.env.at("K"), "V");
  EXPECT_EQ(req.cwd, "/tmp");
  EXPECT_EQ(req.mem_mb, p.limits.mem_mb);
  EXPECT_EQ(req.timeout_ms, p.limits.timeout_ms);
  EXPECT_EQ(req.stdout_bytes, p.limits.stdout_bytes);
  EXPECT_EQ(req.readonly, p.filesystem.readonly);
  EXPECT_EQ(req.writable, p.filesystem.writable);
  EXPECT_FALSE(req.network_relay);
  EXPECT_FALSE(req.mcp);
  // A tightened call policy is what the request carries.
  auto tight = prepare_run(
      Language::js,
      json{
          {"code", "1"},
          {"policy", {{"limits", {{"timeoutMs", 700}}}, {"filesystem", {{"writable", {"/tmp"}}}}}}},
      p);
  ASSERT_TRUE(tight.ok()) << tight.error().message;
  EXPECT_EQ(tight->request().timeout_ms, 700u);
  EXPECT_EQ(tight->request().writable, std::vector<std::string>{"/tmp"});

  EXPECT_FALSE(prepare_run(Language::py, json{{"code", 5}}, p).ok());
  EXPECT_FALSE(prepare_run(Language::py, json{{"code", "x"}, {"args", "notalist"}}, p).ok());
  EXPECT_FALSE(prepare_run(Language::js, json{{"code", "x"}, {"env", {{"K", 1}}}}, p).ok());
  EXPECT_FALSE(prepare_run(Language::js, json{{"code", "x"}, {"policy", {{"limits", {{"memMb", "lots"}}}}}}, p).ok());
  auto deps = prepare_run(Language::js, json{{"code", "x"}, {"npm", {{"dependencies", {{"lodash", "4"}}}}}}, p);
  ASSERT_TRUE(deps.ok()) << deps.error().message;
  EXPECT_EQ(deps->npm, (deps::Dependencies{{"lodash", "4"}}));
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
  // Python with allowed domains: its relay's proxy, in the entry's env and the request.
  EXPECT_TRUE(ok->request().network_relay);
  EXPECT_EQ(ok->env.at("HTTPS_PROXY"), "http://127.0.0.1:" + std::to_string(ipc::kProxyPort));
  EXPECT_FALSE(prepare_run(Language::js, json{{"code", "1"}}, p)->request().network_relay);
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
