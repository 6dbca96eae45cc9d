// base/log.h's line formats: ISO 8601 UTC timestamps with milliseconds, text fields quoted when
// needed, JSON lines that parse whatever bytes the message holds.
#include <gtest/gtest.h>

#include <limits>
#include <nlohmann/json.hpp>

#include "base/log.h"

namespace onemcp::log {
namespace {

// 2026-01-02T03:04:05.678Z
const auto kWhen = std::chrono::system_clock::time_point(std::chrono::milliseconds(1767323045678));

TEST(LogFormat, TextHasAnIsoUtcTimestampWithMilliseconds) {
  EXPECT_EQ(format_line(Format::text, Level::info, kWhen, "hello", {}),
            "2026-01-02T03:04:05.678Z [info] hello");
  EXPECT_EQ(
      format_line(Format::text, Level::warn,
                  std::chrono::system_clock::time_point(std::chrono::milliseconds(7)), "x", {}),
      "1970-01-01T00:00:00.007Z [warn] x");
}

TEST(LogFormat, TextFieldsAreBareOrQuoted) {
  std::vector<Field> fields{{"principal", std::string("token:ci")},
                            {"tool", std::string("run_py")},
                            {"duration_ms", 12.5},
                            {"n", int64_t(3)},
                            {"who", std::string("oauth:https://i.example alice")},
                            {"odd", std::string("a\"b\\c\nd=")},
                            {"empty", std::string()}};
  EXPECT_EQ(format_line(Format::text, Level::info, kWhen, "call ended", fields),
            "2026-01-02T03:04:05.678Z [info] call ended principal=token:ci tool=run_py "
            "duration_ms=12.5 n=3 who=\"oauth:https://i.example alice\" odd=\"a\\\"b\\\\c\\nd=\" "
            "empty=\"\"");
}

TEST(LogFormat, JsonIsOneObjectWithTsLevelMsgAndFields) {
  std::vector<Field> fields{{"tool", std::string("run_js")},
                            {"duration_ms", 1.5},
                            {"calls", int64_t(-2)},
                            {"inf", std::numeric_limits<double>::infinity()}};
  const std::string line = format_line(Format::json, Level::error, kWhen, "call \"ended\"", fields);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j["ts"], "2026-01-02T03:04:05.678Z");
  EXPECT_EQ(j["level"], "error");
  EXPECT_EQ(j["msg"], "call \"ended\"");
  EXPECT_EQ(j["tool"], "run_js");
  EXPECT_EQ(j["duration_ms"], 1.5);
  EXPECT_EQ(j["calls"], -2);
  EXPECT_TRUE(j["inf"].is_null());
  EXPECT_EQ(line.rfind("{\"ts\":\"2026-01-02T03:04:05.678Z\",\"level\":\"error\",\"msg\":", 0), 0u);
}

TEST(LogFormat, JsonEscapesControlBytesAndRepairsInvalidUtf8) {
  const std::string msg = std::string("line1\nline2\ttab\x01 \xff\xfe end \xc3\xa9", 26);
  const std::string line = format_line(Format::json, Level::info, kWhen, msg, {});
  EXPECT_EQ(line.find('\n'), std::string::npos);
  auto j = nlohmann::json::parse(line);  // throws on invalid UTF-8
  const std::string got = j["msg"];
  EXPECT_EQ(got.substr(0, 17), "line1\nline2\ttab\x01 ");
  EXPECT_NE(got.find("\xef\xbf\xbd"), std::string::npos);  // U+FFFD
  EXPECT_NE(got.find(" end \xc3\xa9"), std::string::npos);
}

}  // namespace
}  // namespace onemcp::log
