// The `files` argument of run_py: shape, paths, limits, and what reaches the worker's request.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "server/run_spec.h"
#include "server/tools.h"

namespace onemcp::server {
namespace {

using nlohmann::json;

TEST(InputFiles, TextAndBase64ReachTheRequest) {
  policy::Policy p;
  auto spec = prepare_run(
      Language::py,
      json{{"code", "x"}, {"files", {{"in/data.csv", "a,b\n"}, {"raw.bin", {{"base64", "AP8B"}}}}}},
      p);
  ASSERT_TRUE(spec.ok()) << spec.error().message;
  const ipc::RunRequest req = spec->request();
  ASSERT_EQ(req.files.size(), 2u);
  EXPECT_EQ(req.files[0].path, "in/data.csv");
  EXPECT_EQ(req.files[0].data, "a,b\n");
  EXPECT_EQ(req.files[1].path, "raw.bin");
  EXPECT_EQ(req.files[1].data, std::string("\0\xff\x01", 3));
}

TEST(InputFiles, BadPathsContentsAndSizesAreRefusedBeforeAnythingRuns) {
  policy::Policy p;
  auto refused = [&](const json& files) {
    auto r = prepare_run(Language::py, json{{"code", "x"}, {"files", files}}, p);
    return r.ok() ? std::string() : r.error().message;
  };
  EXPECT_NE(refused({{"../etc/passwd", "x"}}).find("\"..\""), std::string::npos);
  EXPECT_NE(refused({{"/etc/passwd", "x"}}).find("relative"), std::string::npos);
  EXPECT_NE(refused({{"a//b", "x"}}).find("empty"), std::string::npos);
  EXPECT_NE(refused({{"a", {{"base64", "***"}}}}).find("not valid base64"), std::string::npos);
  EXPECT_NE(refused({{"a", 5}}).find("invalid arguments"), std::string::npos);
  EXPECT_NE(refused({{"a", {{"text", "x"}}}}).find("invalid arguments"), std::string::npos);
  EXPECT_NE(refused(json::array({"a"})).find("invalid arguments"), std::string::npos);
  json many = json::object();
  for (int i = 0; i <= 64; ++i) many["f" + std::to_string(i)] = "x";
  EXPECT_NE(refused(many).find("invalid arguments"), std::string::npos);  // maxProperties 64
  const std::string two_mib(2u << 20, 'x');
  EXPECT_NE(refused({{"a", two_mib}, {"b", two_mib}, {"c", "y"}}).find("4 MiB"), std::string::npos);
  EXPECT_EQ(refused({{"a", two_mib}, {"b", two_mib}}), "");  // exactly the limit
  // run_js takes files too, checked the same way.
  auto js = prepare_run(Language::js, json{{"code", "x"}, {"files", {{"a", "b"}}}}, p);
  ASSERT_TRUE(js.ok());
  ASSERT_EQ(js->files.size(), 1u);
  EXPECT_FALSE(prepare_run(Language::js, json{{"code", "x"}, {"files", {{"../a", "b"}}}}, p).ok());
}

TEST(InputFiles, ParseCountsEveryFileAgainstTheLimits) {
  json many = json::object();
  for (size_t i = 0; i <= ipc::kMaxInputFiles; ++i) many["f" + std::to_string(i)] = "x";
  auto r = parse_input_files(many);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("more than the 64"), std::string::npos);
  EXPECT_FALSE(parse_input_files(json::array()));
}

}  // namespace
}  // namespace onemcp::server
