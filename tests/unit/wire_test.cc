// ipc/wire: RunRequest encoding, decoding and defaults.
#include "ipc/wire.h"

#include <gtest/gtest.h>

#include <algorithm>

#include <nlohmann/json.hpp>

namespace onemcp::ipc {
namespace {

using nlohmann::json;

TEST(Wire, RunRequestRoundTrips) {
  RunRequest r;
  r.code = "print(1)";
  r.args = {"a"};
  r.env = {{"K", "v"}};
  r.cwd = "/tmp";
  r.timeout_ms = 100;
  r.mem_mb = 64;
  r.stdout_bytes = 10;
  r.network_relay = true;
  r.mcp = true;
  r.readonly = {"/usr"};
  r.writable = {"/tmp"};
  r.pip_key = std::string(64, 'a');
  r.mcps_key = std::string(64, 'b');
  auto back = decode_request(encode(r));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->code, r.code);
  EXPECT_EQ(back->args, r.args);
  EXPECT_EQ(back->env, r.env);
  EXPECT_EQ(back->cwd, r.cwd);
  EXPECT_EQ(back->timeout_ms, r.timeout_ms);
  EXPECT_TRUE(back->network_relay);
  EXPECT_TRUE(back->mcp);
  EXPECT_EQ(back->readonly, r.readonly);
  EXPECT_EQ(back->writable, r.writable);
  EXPECT_EQ(back->pip_key, r.pip_key);
  EXPECT_EQ(back->mcps_key, r.mcps_key);
  EXPECT_EQ(encode(RunRequest{}).find("pipKey"), std::string::npos);
}

TEST(Wire, DependencyLayerTravelsRawAfterTheJson) {
  RunRequest r;
  r.code = "x";
  using namespace std::string_literals;
  r.deps_code = "globalThis.a = \"\\u0000\";\n\0\x01\xff tail"s;
  std::string wire = encode(r);
  EXPECT_EQ(wire.substr(wire.size() - r.deps_code.size()), r.deps_code) << "not escaped";
  EXPECT_EQ(wire.find('\0'), wire.size() - r.deps_code.size() - 1);
  auto back = decode_request(wire);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->deps_code, r.deps_code);
  EXPECT_EQ(back->code, "x");
  // Without a layer nothing follows the JSON; the JSON form is still read.
  EXPECT_EQ(encode(RunRequest{}).find('\0'), std::string::npos);
  auto in_json = decode_request(R"({"code": "1", "depsCode": "d"})");
  ASSERT_TRUE(in_json);
  EXPECT_EQ(in_json->deps_code, "d");
  EXPECT_FALSE(decode_request(std::string("{\"code\": \"1\"") + '\0' + "d"));
}

TEST(Wire, McpIsEncodedOnlyWhenSetAndDefaultsToOff) {
  RunRequest r;
  r.code = "x";
  EXPECT_FALSE(json::parse(encode(r)).contains("mcp"));
  auto off = decode_request(encode(r));
  ASSERT_TRUE(off);
  EXPECT_FALSE(off->mcp);
  EXPECT_FALSE(off->relay());

  r.mcp = true;
  EXPECT_EQ(json::parse(encode(r))["mcp"], true);
  auto on = decode_request(encode(r));
  ASSERT_TRUE(on);
  EXPECT_TRUE(on->mcp);
  EXPECT_FALSE(on->network_relay);
  EXPECT_TRUE(on->relay());
}

TEST(Wire, RelayIsWantedForNetworkOrUpstreamTools) {
  RunRequest r;
  EXPECT_FALSE(r.relay());
  r.network_relay = true;
  EXPECT_TRUE(r.relay());
  r.mcp = true;
  EXPECT_TRUE(r.relay());
  r.network_relay = false;
  EXPECT_TRUE(r.relay());
}

TEST(Wire, BadMcpValueIsAnError) {
  EXPECT_FALSE(decode_request(R"({"code": "x", "mcp": "yes"})"));
  EXPECT_FALSE(decode_request(R"({"mcp": true})"));  // code is required
  auto r = decode_request(R"({"code": "x", "mcp": false})");
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->mcp);
}

TEST(Wire, HeapModeAndHeapBytesTravelAndJunkIsRefused) {
  RunRequest req;
  req.code = "1";
  EXPECT_EQ(decode_request(encode(req))->heap, HeapMode::none);
  EXPECT_EQ(encode(req).find("heap"), std::string::npos);
  req.heap = HeapMode::make;
  EXPECT_EQ(decode_request(encode(req))->heap, HeapMode::make);
  req.heap = HeapMode::use;
  EXPECT_EQ(decode_request(encode(req))->heap, HeapMode::use);
  EXPECT_FALSE(decode_request(R"({"code": "x", "heap": "share"})"));
  EXPECT_FALSE(decode_request(R"({"code": "x", "heap": 1})"));

  ChildReport r;
  r.heap_bytes = 123 << 20;
  EXPECT_EQ(decode_report(encode(r)).heap_bytes, uint64_t(123) << 20);
  EXPECT_FALSE(decode_report(R"({"heapBytes": -4096})").heap_bytes);
  EXPECT_FALSE(decode_report(R"({"heapBytes": "4096"})").heap_bytes);
  EXPECT_FALSE(decode_report("{}").heap_bytes);
}

TEST(Wire, ReportCarriesExitCodeAndStepsAndDropsWhatIsMalformed) {
  ChildReport r;
  r.exit_code = 3;
  r.steps = {{"run: forked", 100, 28}, {"zygote: forking", 90, -1}};
  ChildReport back = decode_report(encode(r));
  EXPECT_EQ(back.exit_code, 3);
  ASSERT_EQ(back.steps.size(), 2u);
  EXPECT_EQ(back.steps[0].name, "run: forked");
  EXPECT_EQ(back.steps[0].ns, 100);
  EXPECT_EQ(back.steps[0].minflt, 28);
  EXPECT_EQ(back.steps[1].minflt, -1);
  // Written by the run: an exit code no process can exit with, or steps of another shape, are
  // left out; so are steps beyond kMaxRunSteps.
  EXPECT_FALSE(decode_report(R"({"exitCode": 256})").exit_code);
  EXPECT_FALSE(decode_report(R"({"exitCode": -1})").exit_code);
  EXPECT_FALSE(decode_report(R"({"exitCode": "0"})").exit_code);
  EXPECT_EQ(decode_report(R"({"steps": [["a", 1], ["b", "1", 2], "c", ["d", 1, 2]]})").steps.size(),
            1u);
  json many = json::array();
  for (int i = 0; i < 1000; ++i) many.push_back(json::array({"s", i, i}));
  EXPECT_EQ(decode_report(json{{"steps", many}}.dump()).steps.size(), kMaxRunSteps);
  EXPECT_FALSE(RunRequest().profile);
  RunRequest req;
  req.code = "1";
  req.profile = true;
  EXPECT_TRUE(decode_request(encode(req))->profile);
}

TEST(Wire, FrameReaderKeepsOnlyWhatIsUnreadOfALongStream) {
  // 4 MiB of 1 KiB frames fed in 1500-byte pieces: a read seldom ends on a frame boundary.
  std::string stream;
  for (int i = 0; i < 4096; ++i) stream += frame(std::string(1024, char('a' + i % 26)));
  FrameReader r;
  size_t frames = 0, most_held = 0;
  for (size_t off = 0; off < stream.size(); off += 1500) {
    ASSERT_TRUE(r.feed(stream.data() + off, std::min<size_t>(1500, stream.size() - off)));
    while (auto f = r.next()) {
      EXPECT_EQ(*f, std::string(1024, char('a' + frames % 26)));
      ++frames;
    }
    most_held = std::max(most_held, r.held());
  }
  EXPECT_EQ(frames, 4096u);
  EXPECT_LT(most_held, 8u * 1024);  // not the stream read so far
}

}  // namespace
}  // namespace onemcp::ipc

namespace onemcp::ipc {
namespace {

TEST(Wire, InputFilesRoundTripAsAnyBytes) {
  RunRequest r;
  r.code = "x";
  r.files = {{"data/in.csv", "a,b\n1,2\n"}, {"bin", std::string("\0\xff\x01", 3)}};
  auto back = decode_request(encode(r));
  ASSERT_TRUE(back) << back.error().message;
  ASSERT_EQ(back->files.size(), 2u);
  EXPECT_EQ(back->files[0].path, "data/in.csv");
  EXPECT_EQ(back->files[0].data, "a,b\n1,2\n");
  EXPECT_EQ(back->files[1].data, std::string("\0\xff\x01", 3));
  EXPECT_EQ(encode(RunRequest{}).find("files"), std::string::npos);
  auto bad = decode_request(R"({"code":"x","files":[{"path":"a","base64":"!!"}]})");
  EXPECT_FALSE(bad);
}

TEST(Wire, InputPathsAreRelativePlainComponents) {
  for (const char* ok : {"a", "a/b/c.txt", "..a", "a..", ".hidden", "x y/z"}) {
    EXPECT_TRUE(check_input_path(ok)) << ok;
  }
  for (const char* bad :
       {"", "/etc/passwd", "../x", "a/../b", "a/..", ".", "./a", "a/./b", "a//b", "a/", "/"}) {
    EXPECT_FALSE(check_input_path(bad)) << bad;
  }
  EXPECT_FALSE(check_input_path(std::string("a\0b", 3)));
  EXPECT_FALSE(check_input_path(std::string(256, 'a')));
  EXPECT_TRUE(check_input_path(std::string(255, 'a')));
  EXPECT_FALSE(check_input_path(std::string(4, 'a') + "/" + std::string(1020, 'b')));
}

}  // namespace
}  // namespace onemcp::ipc
