// Unit tests of the SSE parser of the upstream HTTP client: framing, fields, chunking.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "upstream/sse.h"

namespace onemcp::upstream {
namespace {

using namespace std::string_literals;

std::vector<SseEvent> parse_chunks(const std::vector<std::string>& chunks, size_t max = 1 << 20) {
  SseParser p(max);
  std::vector<SseEvent> out;
  for (const auto& c : chunks) {
    EXPECT_TRUE(p.feed(c, [&](const SseEvent& e) { out.push_back(e); }));
  }
  return out;
}

std::vector<SseEvent> parse(const std::string& s) { return parse_chunks({s}); }

// Every split of `s` into two chunks gives the same events as the whole.
void expect_split_invariant(const std::string& s) {
  const auto whole = parse(s);
  for (size_t i = 0; i <= s.size(); ++i) {
    const auto split = parse_chunks({s.substr(0, i), s.substr(i)});
    ASSERT_EQ(split.size(), whole.size()) << "split at " << i;
    for (size_t k = 0; k < whole.size(); ++k) {
      EXPECT_EQ(split[k].data, whole[k].data) << "split at " << i;
      EXPECT_EQ(split[k].type, whole[k].type) << "split at " << i;
      EXPECT_EQ(split[k].id, whole[k].id) << "split at " << i;
    }
  }
}

TEST(SseParser, OneEvent) {
  const auto ev = parse("event: message\ndata: {\"a\":1}\n\n");
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].type, "message");
  EXPECT_EQ(ev[0].data, "{\"a\":1}");
}

TEST(SseParser, DefaultTypeIsMessage) {
  const auto ev = parse("data: x\n\n");
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].type, "message");
}

TEST(SseParser, MultiLineDataJoinedWithNewline) {
  const auto ev = parse("data: {\"a\":\ndata: 1}\ndata:\n\n");
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].data, "{\"a\":\n1}\n");
}

TEST(SseParser, CommentsAndUnknownFieldsIgnored) {
  const auto ev = parse(": keep-alive\n\nfoo: bar\ndata: x\n: inside\n\n");
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].data, "x");
}

TEST(SseParser, OnlyOneLeadingSpaceRemoved) {
  const auto ev = parse("data:  two\ndata:none\n\n");
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].data, " two\nnone");
}

TEST(SseParser, FieldWithoutColon) {
  // "data" alone is a data line with an empty value.
  const auto ev = parse("data\ndata\n\n");
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].data, "\n");
}

TEST(SseParser, NoDataNoEvent) {
  EXPECT_TRUE(parse("event: ping\n\n").empty());
  EXPECT_TRUE(parse("id: 7\n\n").empty());
  EXPECT_TRUE(parse("\n\n\n").empty());
}

TEST(SseParser, EmptyDataIsAnEvent) {
  // What server-everything sends first on a stream: a priming event with an id and no payload.
  const auto ev = parse("id: abc\ndata: \n\n");
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].data, "");
  EXPECT_EQ(ev[0].id, "abc");
}

TEST(SseParser, IncompleteEventNotDispatched) {
  EXPECT_TRUE(parse("data: x\n").empty());
  EXPECT_TRUE(parse("data: x").empty());
}

TEST(SseParser, TypeResetsBetweenEvents) {
  const auto ev = parse("event: custom\ndata: 1\n\ndata: 2\n\n");
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0].type, "custom");
  EXPECT_EQ(ev[1].type, "message");
}

TEST(SseParser, IdPersistsAndNulIdIgnored) {
  SseParser p(1024);
  std::vector<SseEvent> out;
  auto sink = [&](const SseEvent& e) { out.push_back(e); };
  ASSERT_TRUE(p.feed("id: 1\ndata: a\n\ndata: b\n\n", sink));
  ASSERT_TRUE(p.feed("id: x\0y\ndata: c\n\n"s, sink));
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].id, "1");
  EXPECT_EQ(out[1].id, "1");
  EXPECT_EQ(out[2].id, "1");
  EXPECT_EQ(p.last_event_id(), "1");
  ASSERT_TRUE(p.feed("id\ndata: d\n\n", sink));
  EXPECT_EQ(out.back().id, "");
}

TEST(SseParser, Retry) {
  SseParser p(1024);
  auto sink = [](const SseEvent&) {};
  EXPECT_EQ(p.retry_ms(), -1);
  ASSERT_TRUE(p.feed("retry: 1500\n\n", sink));
  EXPECT_EQ(p.retry_ms(), 1500);
  ASSERT_TRUE(p.feed("retry: 1x\n\n", sink));
  EXPECT_EQ(p.retry_ms(), 1500);
}

TEST(SseParser, LineEndings) {
  for (const std::string s : {"data: a\r\n\r\ndata: b\r\n\r\n", "data: a\r\rdata: b\r\r",
                              "data: a\n\ndata: b\n\n", "data: a\r\n\ndata: b\n\r\n"}) {
    const auto ev = parse(s);
    ASSERT_EQ(ev.size(), 2u) << s;
    EXPECT_EQ(ev[0].data, "a");
    EXPECT_EQ(ev[1].data, "b");
  }
}

TEST(SseParser, CrThenLfAcrossChunksIsOneLineEnd) {
  const auto ev = parse_chunks({"data: a\r", "\n", "\r", "\ndata: b\r", "\n\r\n"});
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0].data, "a");
  EXPECT_EQ(ev[1].data, "b");
}

TEST(SseParser, AnyChunkingGivesTheSameEvents) {
  expect_split_invariant(
      "event: message\r\nid: 4\r\ndata: {\"x\":\r\ndata: 2}\r\n\r\n: c\r\rdata: y\n\n");
  expect_split_invariant(
      "\xEF\xBB\xBF"
      "data: bom\n\n");
}

TEST(SseParser, ByteByByte) {
  const std::string s = "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n";
  std::vector<std::string> bytes;
  for (char c : s) bytes.emplace_back(1, c);
  const auto ev = parse_chunks(bytes);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].data, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}");
}

TEST(SseParser, LeadingBomStrippedOnce) {
  const auto ev = parse(
      "\xEF\xBB\xBF"
      "data: x\n\n\xEF\xBB\xBF"
      "data: y\n\n");
  ASSERT_EQ(ev.size(), 1u);  // the second BOM makes an unknown field name
  EXPECT_EQ(ev[0].data, "x");
}

TEST(SseParser, OversizedEventBreaksTheStream) {
  SseParser p(16);
  int events = 0;
  auto sink = [&](const SseEvent&) { ++events; };
  EXPECT_TRUE(p.feed("data: 0123456789\n\n", sink));
  EXPECT_EQ(events, 1);
  EXPECT_FALSE(p.feed("data: 0123456789\ndata: 0123456789\n\n", sink));
  EXPECT_FALSE(p.feed("data: x\n\n", sink));  // broken for good
  EXPECT_EQ(events, 1);
}

TEST(SseParser, OversizedLineWithoutNewlineBreaksTheStream) {
  SseParser p(16);
  auto sink = [](const SseEvent&) {};
  EXPECT_TRUE(p.feed("data: 0123", sink));
  EXPECT_FALSE(p.feed(std::string(100, 'x'), sink));
}

}  // namespace
}  // namespace onemcp::upstream
