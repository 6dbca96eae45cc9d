// protocol::parse and classify: every kind of message, and every malformed one refused with the
// code and id it is answered with (or dropped in silence).
#include <gtest/gtest.h>

#include "protocol/jsonrpc.h"

namespace onemcp::protocol {
namespace {

using nlohmann::json;

Message message(std::string_view text) {
  Parsed p = parse(text);
  EXPECT_FALSE(p.batch);
  EXPECT_EQ(p.items.size(), 1u);
  const auto* m = std::get_if<Message>(&p.items.at(0));
  EXPECT_NE(m, nullptr) << text;
  return m ? *m : Message{};
}

Refusal refusal(std::string_view text) {
  Parsed p = parse(text);
  EXPECT_EQ(p.items.size(), 1u);
  const auto* r = std::get_if<Refusal>(&p.items.at(0));
  EXPECT_NE(r, nullptr) << text;
  return r ? *r : Refusal{};
}

TEST(Protocol, EveryKindOfMessage) {
  Message r = message(R"({"jsonrpc":"2.0","id":7,"method":"tools/list"})");
  EXPECT_TRUE(r.is_request());
  EXPECT_EQ(r.id, 7);
  EXPECT_EQ(r.method, "tools/list");
  EXPECT_EQ(r.params, json::object());
  EXPECT_EQ(method_of(r.method), Method::tools_list);

  Message n =
      message(R"({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"a"}})");
  EXPECT_TRUE(n.is_notification());
  EXPECT_EQ(n.params["requestId"], "a");
  EXPECT_EQ(method_of(n.method), Method::cancelled);

  Message ok = message(R"({"jsonrpc":"2.0","id":"x","result":{"a":1}})");
  EXPECT_EQ(ok.kind, Message::Kind::response);
  EXPECT_EQ(ok.result["a"], 1);
  Message err = message(R"({"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"m"}})");
  EXPECT_EQ(err.kind, Message::Kind::error);
  EXPECT_EQ(err.error["code"], -32600);

  EXPECT_EQ(method_of("nope/nope"), Method::unknown);
  EXPECT_EQ(name_of(Method::tools_call), "tools/call");
}

TEST(Protocol, MalformedMessagesAreRefusedWithTheirCodeAndId) {
  Refusal parse_error = refusal("{not json");
  EXPECT_EQ(parse_error.code, kParseError);
  EXPECT_TRUE(parse_error.id.is_null());
  EXPECT_EQ(refusal(std::string(100, '[') + std::string(100, ']')).code, kParseError);  // too deep
  EXPECT_EQ(refusal("42").code, kInvalidRequest);

  Refusal version = refusal(R"({"jsonrpc":"1.0","id":42,"method":"ping"})");
  EXPECT_EQ(version.code, kInvalidRequest);
  EXPECT_EQ(version.id, 42);  // the id is kept when it can be read
  Refusal bad_id = refusal(R"({"jsonrpc":"2.0","id":1.5,"method":"ping"})");
  EXPECT_EQ(bad_id.code, kInvalidRequest);
  EXPECT_TRUE(bad_id.id.is_null());
  EXPECT_EQ(refusal(R"({"jsonrpc":"2.0","id":{},"method":"ping"})").code, kInvalidRequest);
  Refusal method = refusal(R"({"jsonrpc":"2.0","id":3,"method":5})");
  EXPECT_EQ(method.code, kInvalidRequest);
  EXPECT_EQ(method.id, 3);
  Refusal params = refusal(R"({"jsonrpc":"2.0","id":4,"method":"ping","params":[1]})");
  EXPECT_EQ(params.code, kInvalidParams);
  EXPECT_EQ(params.id, 4);
  EXPECT_EQ(refusal(R"({"jsonrpc":"2.0","id":5})").code, kInvalidRequest);

  // Malformed notifications and responses are dropped, never answered.
  EXPECT_FALSE(refusal(R"({"jsonrpc":"2.0","method":5})").answer);
  EXPECT_FALSE(refusal(R"({"jsonrpc":"2.0","method":"x","params":"y"})").answer);
  EXPECT_FALSE(refusal(R"({"jsonrpc":"2.0"})").answer);
  EXPECT_FALSE(refusal(R"({"jsonrpc":"2.0","id":[1],"result":{}})").answer);
  EXPECT_FALSE(refusal(R"({"jsonrpc":"2.0","result":{}})").answer);
}

TEST(Protocol, BatchesAreParsedElementByElement) {
  Parsed p =
      parse(R"([{"jsonrpc":"2.0","id":1,"method":"ping"}, 3, [], {"jsonrpc":"2.0","method":"n"}])");
  ASSERT_TRUE(p.batch);
  ASSERT_EQ(p.items.size(), 4u);
  EXPECT_TRUE(std::get<Message>(p.items[0]).is_request());
  EXPECT_EQ(std::get<Refusal>(p.items[1]).code, kInvalidRequest);
  EXPECT_EQ(std::get<Refusal>(p.items[2]).code, kInvalidRequest);
  EXPECT_TRUE(std::get<Message>(p.items[3]).is_notification());
  Parsed empty = parse("[]");
  EXPECT_TRUE(empty.batch);
  EXPECT_TRUE(empty.items.empty());
}

TEST(Protocol, BuildersMakeWhatParseReads) {
  for (const json& m : {request(1, "tools/call", {{"name", "x"}}), request("a", "ping", json(5)),
                        notification("notifications/initialized"), response(2, json::object()),
                        error(nullptr, kParseError, "Parse error"),
                        error(3, kServerBusy, "busy", {{"retryable", true}})}) {
    Parsed p = parse(dump(m));
    ASSERT_EQ(p.items.size(), 1u);
    EXPECT_TRUE(std::holds_alternative<Message>(p.items[0])) << m;
  }
  EXPECT_EQ(request("a", "ping", json(5))["params"], json::object());
  EXPECT_EQ(error(3, kServerBusy, "busy", {{"retryable", true}})["error"]["data"]["retryable"],
            true);
  // Invalid UTF-8 in a string is replaced, never thrown.
  EXPECT_NO_THROW(dump(response(1, std::string("\xff\xfe"))));
}

}  // namespace
}  // namespace onemcp::protocol
