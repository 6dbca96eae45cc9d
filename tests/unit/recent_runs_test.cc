#include "server/recent_runs.h"

#include <gtest/gtest.h>

namespace onemcp::server {
namespace {

using nlohmann::json;

const json kResult = {{"stdout", "out\n"}, {"stderr", ""},      {"exitCode", 0},
                      {"outcome", "ok"},   {"durationMs", 3.5}, {"truncated", false},
                      {"value", "42"},     {"capsule", "ab12"}};

TEST(RecentRuns, AnEntryKeepsWhatRunsItAgainButNoEnvironmentValueSessionOrWheelUrl) {
  json args = {{"code", "print(1)"},
               {"stdin", "in"},
               {"args", {"a"}},
               {"env", {{"API_KEY", "s3cr3t"}}},
               {"session", "ses_handle"},
               {"pip", {{"requirements", {"six"}}, {"wheelUrls", {"https://u:p@h/x.whl"}}}},
               {"policy", {{"limits", {{"timeoutMs", 100}}}}}};
  json e = recent_run_entry("run_py", args, kResult, 1000);
  EXPECT_EQ(e["tool"], "run_py");
  EXPECT_EQ(e["at"], 1000);
  EXPECT_EQ(e["arguments"], (json{{"code", "print(1)"},
                                  {"stdin", "in"},
                                  {"args", {"a"}},
                                  {"pip", {{"requirements", {"six"}}}},
                                  {"policy", {{"limits", {{"timeoutMs", 100}}}}}}));
  EXPECT_EQ(e["envNames"], json({"API_KEY"}));
  EXPECT_EQ(e["inSession"], true);
  for (const char* k :
       {"outcome", "exitCode", "durationMs", "truncated", "capsule", "stdout", "value"})
    EXPECT_EQ(e[k], kResult[k]) << k;
  const std::string text = e.dump();
  EXPECT_EQ(text.find("s3cr3t"), std::string::npos);
  EXPECT_EQ(text.find("ses_handle"), std::string::npos);
  EXPECT_EQ(text.find("u:p@"), std::string::npos);
}

TEST(RecentRuns, OutputIsCutAtACharacterAndLongCodeIsLeftOut) {
  RecentRunsLimits l;
  l.output_bytes = 4;
  l.argument_bytes = 8;
  json result = kResult;
  result["stdout"] = "ab\xc3\xa9\xc3\xa9";  // "abéé": 4 bytes end inside the second é
  json e = recent_run_entry("run_js", {{"code", std::string(9, 'x')}}, result, 0, l);
  EXPECT_EQ(e["stdout"], "ab\xc3\xa9");
  EXPECT_EQ(e["outputCut"], true);
  EXPECT_FALSE(e["arguments"].contains("code"));
  EXPECT_EQ(e["argumentsLeftOut"], true);
}

TEST(RecentRuns, NewestFirstPerPrincipalBoundedInCountBytesAndPrincipals) {
  RecentRunsLimits l;
  l.runs = 3;
  l.principals = 2;
  RecentRuns runs(l);
  for (int i = 0; i < 5; ++i) runs.add("token:a", json{{"at", i}});
  json a = runs.list("token:a");
  ASSERT_EQ(a.size(), 3u);
  EXPECT_EQ(a[0]["at"], 4);
  EXPECT_EQ(a[2]["at"], 2);
  EXPECT_TRUE(runs.list("token:b").empty());
  runs.add("token:b", json{{"at", 9}});
  runs.add("token:a", json{{"at", 5}});  // a is the most recently active now
  runs.add("token:c", json{{"at", 7}});  // forgets b
  EXPECT_TRUE(runs.list("token:b").empty());
  EXPECT_EQ(runs.list("token:a").size(), 3u);
  EXPECT_EQ(runs.list("token:c").size(), 1u);

  RecentRunsLimits small;
  small.bytes = 100;
  RecentRuns bytes(small);
  for (int i = 0; i < 10; ++i) bytes.add("p", json{{"s", std::string(30, 'x')}});
  EXPECT_EQ(bytes.list("p").size(), 2u);               // 3 × 39 bytes would be over 100
  bytes.add("p", json{{"s", std::string(200, 'x')}});  // larger than the bound alone: not kept
  EXPECT_EQ(bytes.list("p").size(), 2u);
}

}  // namespace
}  // namespace onemcp::server
