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

const std::string kRunId = "0123456789abcdef0123456789abcdef";
const std::string kPng = std::string("\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16);

sandbox::RunOutput with_files(std::vector<sandbox::OutFile> files) {
  auto o = output("", "", sandbox::Outcome::ok, 0);
  o.files = std::move(files);
  return o;
}

std::string uri_of(const std::string& path) { return "onemcp://runs/" + kRunId + "/out/" + path; }

TEST(ToolResult, OutFilesBecomeImagesLinksAndInlineText) {
  const std::string big_text(5000, 'y');
  auto j = tool_result(spec_of(Language::py),
                       with_files({{"plot.png", 16, kPng, false},
                                   {"x.png", 6, "hello\n", false},
                                   {"data.csv", 5000, big_text, false},
                                   {"raw.bin", 2, std::string("\0\xff", 2), false},
                                   {"pic.svg", 7, "<svg/>\n", false}}),
                       {kRunId, true, {}});
  const json& c = j["content"];
  ASSERT_EQ(c.size(), 6u) << c;  // text, image, 3 links (x.png, data.csv, raw.bin), image
  EXPECT_EQ(
      c[1],
      (json{{"type", "image"}, {"data", "iVBORw0KGgoAAAANSUhEUg=="}, {"mimeType", "image/png"}}));
  EXPECT_EQ(c[2], (json{{"type", "resource_link"},
                        {"uri", uri_of("x.png")},
                        {"name", "x.png"},
                        {"mimeType", "text/plain"},
                        {"size", 6}}));
  EXPECT_EQ(c[3]["uri"], uri_of("data.csv"));
  EXPECT_EQ(c[3]["mimeType"], "text/csv");
  EXPECT_EQ(c[3]["size"], 5000);
  EXPECT_EQ(c[4]["mimeType"], "application/octet-stream");
  EXPECT_EQ(c[5],
            (json{{"type", "image"}, {"data", "PHN2Zy8+Cg=="}, {"mimeType", "image/svg+xml"}}));
  EXPECT_EQ(c[0]["text"],
            "[files in /out]\n"
            "  plot.png (16 bytes, image/png): shown as an image\n"
            "  x.png (6 bytes, text/plain): " +
                uri_of("x.png") +
                ", shown below\n"
                "  data.csv (5000 bytes, text/csv): " +
                uri_of("data.csv") +
                "\n"
                "  raw.bin (2 bytes, application/octet-stream): " +
                uri_of("raw.bin") +
                "\n"
                "  pic.svg (7 bytes, image/svg+xml): shown as an image\n"
                "[/out/x.png]\nhello\n");
  const json& files = j["structuredContent"]["files"];
  ASSERT_EQ(files.size(), 5u);
  EXPECT_EQ(files[1], (json{{"path", "x.png"},
                            {"size", 6},
                            {"truncated", false},
                            {"mimeType", "text/plain"},
                            {"uri", uri_of("x.png")},
                            {"content", "hello\n"}}));
  for (int i : {0, 2, 3, 4}) EXPECT_FALSE(files[i].contains("content")) << files[i];
  EXPECT_EQ(files[4]["mimeType"], "image/svg+xml");
  EXPECT_TRUE(policy::validate(policy::run_output_schema(), j["structuredContent"]));
}

TEST(ToolResult, ImagesBeyondTheCapsAreLinkedWithANote) {
  OutFilesView view{kRunId, true, {}};
  view.limits.image_bytes = 100;
  view.limits.images_bytes = 150;
  const std::string a = kPng + std::string(64, 'a'), b = kPng + std::string(84, 'b');
  auto j = tool_result(spec_of(Language::js),
                       with_files({{"a.png", 80, a, false},
                                   {"huge.png", 101, kPng + std::string(85, 'h'), false},
                                   {"b.png", 100, b, false},
                                   {"cut.png", 5000000, a, true},
                                   {"c.png", 16, kPng, false}}),
                       view);
  const json& c = j["content"];
  const std::string text = c[0]["text"];
  EXPECT_NE(text.find("  huge.png (101 bytes, image/png): " + uri_of("huge.png") +
                      " (not shown as an image: over the cap of 100 bytes per image)\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("  b.png (100 bytes, image/png): " + uri_of("b.png") +
                      " (not shown as an image: the images of one result are capped at 150 bytes "
                      "in all)\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("  cut.png (5000000 bytes, image/png): " + uri_of("cut.png") +
                      " (not shown as an image: only its first 80 bytes were read back)\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("  c.png (16 bytes, image/png): shown as an image\n"), std::string::npos);
  std::vector<std::string> kinds;
  for (const auto& b : c) kinds.push_back(b["type"]);
  EXPECT_EQ(kinds, (std::vector<std::string>{"text", "image", "resource_link", "resource_link",
                                             "resource_link", "image"}));
  EXPECT_EQ(c[3]["uri"], uri_of("b.png"));
  EXPECT_EQ(c[4]["size"], 80);  // what is kept of it
  EXPECT_EQ(j["structuredContent"]["files"].size(), 5u);
  EXPECT_EQ(j["structuredContent"]["files"][2]["mimeType"], "image/png");
}

TEST(ToolResult, InlineTextIsBoundedAndLinksNeedTheirProtocol) {
  OutFilesView view{kRunId, false, {}};
  view.limits.inline_bytes = 10;
  view.limits.inline_total = 15;
  auto j = tool_result(spec_of(Language::py),
                       with_files({{"a.txt", 8, "12345678", false},
                                   {"b.txt", 8, "abcdefgh", false},      // over the total
                                   {"c.txt", 11, "12345678901", false},  // over the cap
                                   {"d.txt", 4, "wxyz", false},
                                   {"e.txt", 0, "", false},
                                   {"f.txt", 9000, "123", true}}),
                       view);
  ASSERT_EQ(j["content"].size(), 1u) << j["content"];  // no resource_link before 2025-06-18
  const std::string text = j["content"][0]["text"];
  EXPECT_NE(text.find("[/out/a.txt]\n12345678\n[/out/d.txt]\nwxyz\n"), std::string::npos) << text;
  EXPECT_NE(text.find("  f.txt (9000 bytes, text/plain): " + uri_of("f.txt") +
                      " (only its first 3 bytes were read back)\n"),
            std::string::npos)
      << text;
  for (const char* gone : {"[/out/b.txt]", "[/out/c.txt]", "[/out/e.txt]", "[/out/f.txt]"}) {
    EXPECT_EQ(text.find(gone), std::string::npos) << gone;
  }
  std::vector<bool> has_content;
  for (const auto& f : j["structuredContent"]["files"])
    has_content.push_back(f.contains("content"));
  EXPECT_EQ(has_content, (std::vector<bool>{true, false, false, true, false, false}));
}

TEST(ToolResult, AFileNameKeepsToItsLine) {
  auto j = tool_result(spec_of(Language::py), with_files({{"a\n[stderr]\nb\x7f", 2, "hi", false}}),
                       {kRunId, true, {}});
  EXPECT_EQ(j["content"][0]["text"], "[files in /out]\n  a?[stderr]?b? (2 bytes, text/plain): " +
                                         uri_of("a%0A%5Bstderr%5D%0Ab%7F") +
                                         ", shown below\n[/out/a?[stderr]?b?]\nhi\n");
  EXPECT_EQ(j["structuredContent"]["files"][0]["path"], "a\n[stderr]\nb\x7f");
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
