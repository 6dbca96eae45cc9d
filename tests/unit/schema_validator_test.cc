// The JSON Schema validator: every supported keyword, and the wording of its errors.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "policy/schema.h"

namespace onemcp::policy {
namespace {

using nlohmann::json;

// "" when valid, else the error message.
std::string err(const json& schema, const json& instance, std::string_view root = "") {
  auto s = validate(schema, instance, root);
  return s ? "" : s.error().message;
}

TEST(SchemaValidator, TypeNames) {
  EXPECT_EQ(err({{"type", "string"}}, "x"), "");
  EXPECT_EQ(err({{"type", "string"}}, 5), "(root): must be a string (got 5)");
  EXPECT_EQ(err({{"type", "boolean"}}, "true"), "(root): must be true or false (got \"true\")");
  EXPECT_EQ(err({{"type", "object"}}, json::array()), "(root): must be an object (got an array)");
  EXPECT_EQ(err({{"type", "array"}}, json::object()), "(root): must be an array (got an object)");
  EXPECT_EQ(err({{"type", "null"}}, nullptr), "");
  EXPECT_EQ(err({{"type", json::array({"string", "null"})}}, nullptr), "");
  EXPECT_EQ(err({{"type", json::array({"string", "null"})}}, 1),
            "(root): must be a string or null (got 1)");
  EXPECT_EQ(err({{"type", "number"}}, 1.5), "");
  EXPECT_EQ(err({{"type", "number"}}, "1"), "(root): must be a number (got \"1\")");
}

TEST(SchemaValidator, IntegerMeansNoFractionAndRepresentable) {
  json s = {{"type", "integer"}};
  EXPECT_EQ(err(s, 3), "");
  EXPECT_EQ(err(s, -3), "");
  EXPECT_EQ(err(s, 3.0), "");  // JSON Schema: 3.0 is an integer
  EXPECT_EQ(err(s, json::parse("1e3")), "");
  EXPECT_EQ(err(s, std::numeric_limits<uint64_t>::max()), "");
  EXPECT_EQ(err(s, 1.5), "(root): must be an integer (got 1.5)");
  EXPECT_EQ(err(s, nullptr), "(root): must be an integer (got null)");
  EXPECT_EQ(err(s, "5"), "(root): must be an integer (got \"5\")");
  // Beyond uint64: never wraps around.
  EXPECT_EQ(err(s, json::parse("18446744073709551616")),
            "(root): must be an integer (got 1.8446744073709552e+19, out of range)");
  EXPECT_EQ(err(s, 1e300), "(root): must be an integer (got 1e+300, out of range)");
  EXPECT_EQ(err({{"type", "string"}}, 1e300), "(root): must be a string (got 1e+300)");
  // NaN/Infinity cannot come from JSON text, but can be built in code.
  EXPECT_NE(err(s, std::nan("")), "");
  EXPECT_NE(err(s, INFINITY), "");
  EXPECT_NE(err({{"type", "number"}}, INFINITY), "");
  EXPECT_EQ(err({{"minimum", 0}}, -INFINITY), "(root): must be a finite number");
}

TEST(SchemaValidator, NumericBoundsNameTheWholeExpectation) {
  json s = {{"type", "integer"}, {"minimum", 1}, {"maximum", 600000}};
  EXPECT_EQ(err(s, 1), "");
  EXPECT_EQ(err(s, 600000), "");
  EXPECT_EQ(err(s, -5, "policy.limits.timeoutMs"),
            "policy.limits.timeoutMs: must be an integer from 1 to 600000 (got -5)");
  EXPECT_EQ(err(s, 600001), "(root): must be an integer from 1 to 600000 (got 600001)");
  EXPECT_EQ(err(s, "x"), "(root): must be an integer from 1 to 600000 (got \"x\")");
  EXPECT_EQ(err({{"type", "integer"}, {"minimum", 1}}, -5),
            "(root): must be an integer ≥ 1 (got -5)");
  EXPECT_EQ(err({{"type", "number"}, {"exclusiveMinimum", 0}}, 0),
            "(root): must be a number > 0 (got 0)");
  EXPECT_EQ(err({{"type", "number"}, {"exclusiveMaximum", 10}}, 10),
            "(root): must be a number < 10 (got 10)");
  EXPECT_EQ(err({{"type", "number"}, {"exclusiveMaximum", 10}}, 9.99), "");
  EXPECT_EQ(err({{"maximum", 5}}, 6), "(root): must be a number ≤ 5 (got 6)");
  // Huge unsigned against a small bound: compared exactly, not wrapped.
  EXPECT_EQ(err({{"type", "integer"}, {"maximum", 20}}, std::numeric_limits<uint64_t>::max()),
            "(root): must be an integer ≤ 20 (got 18446744073709551615)");
  EXPECT_EQ(err({{"type", "integer"}, {"minimum", 0}}, std::numeric_limits<int64_t>::min()),
            "(root): must be an integer ≥ 0 (got -9223372036854775808)");
}

TEST(SchemaValidator, Strings) {
  EXPECT_EQ(err({{"minLength", 1}}, ""), "(root): must not be empty");
  EXPECT_EQ(err({{"minLength", 3}}, "ab"),
            "(root): must be at least 3 characters long (got \"ab\")");
  EXPECT_EQ(err({{"maxLength", 2}}, "abc"), "(root): must be at most 2 characters long (got 3)");
  EXPECT_EQ(err({{"maxLength", 2}}, "éé"), "");  // code points, not bytes
  EXPECT_EQ(err({{"pattern", "^[a-z]+$"}}, "abc"), "");
  EXPECT_EQ(err({{"pattern", "b"}}, "abc"), "");  // unanchored
  EXPECT_EQ(err({{"pattern", "^[a-z]+$"}}, "aB"),
            "(root): must match the pattern ^[a-z]+$ (got \"aB\")");
  // An overlong string is reported without running the pattern.
  EXPECT_EQ(err({{"maxLength", 3}, {"pattern", "^a*$"}}, std::string(100000, 'a')),
            "(root): must be at most 3 characters long (got 100000)");
  EXPECT_NE(err({{"pattern", "("}}, "x").find("cannot be checked"), std::string::npos);
  // Long offending values are cut in messages.
  std::string msg = err({{"type", "integer"}}, std::string(1000, 'x'));
  EXPECT_LT(msg.size(), 120u);
}

TEST(SchemaValidator, EnumAndConst) {
  json s = {{"enum", {"stdio", "http"}}};
  EXPECT_EQ(err(s, "http"), "");
  EXPECT_EQ(err(s, "ftp", "mcps[1].transport"),
            "mcps[1].transport: must be one of \"stdio\", \"http\" (got \"ftp\")");
  EXPECT_EQ(err({{"enum", {1}}}, 2), "(root): must be 1 (got 2)");
  EXPECT_EQ(err({{"const", "a"}}, "a"), "");
  EXPECT_EQ(err({{"const", "a"}}, "b"), "(root): must be \"a\" (got \"b\")");
}

TEST(SchemaValidator, Arrays) {
  json s = {{"type", "array"}, {"items", {{"type", "string"}}}, {"minItems", 1}, {"maxItems", 2}};
  EXPECT_EQ(err(s, {"a"}), "");
  EXPECT_EQ(err(s, json::array()), "(root): must have at least 1 item");
  EXPECT_EQ(err(s, {"a", "b", "c"}), "(root): must have at most 2 items (got 3)");
  EXPECT_EQ(err(s, {"a", 1}, "args"), "args[1]: must be a string (got 1)");
  json u = {{"uniqueItems", true}};
  EXPECT_EQ(err(u, {1, 2}), "");
  EXPECT_EQ(err(u, {"a", "b", "a"}, "list"), "list[2]: duplicate of list[0] (got \"a\")");
  EXPECT_EQ(err(u, {1, 2, 1, 1.0, "1"}, "l"),
            "l[2]: duplicate of l[0] (got 1); l[3]: duplicate of l[0] (got 1.0)");
  EXPECT_EQ(err({{"uniqueItems", false}}, {1, 1}), "");
  // Long untrusted arrays: linear-ish, and an oversized one is not walked at all.
  json big = json::array();
  for (int i = 0; i < 200000; ++i) big.push_back(i);
  EXPECT_EQ(err(u, big), "");
  EXPECT_EQ(err({{"maxItems", 3}, {"uniqueItems", true}, {"items", {{"type", "string"}}}}, big),
            "(root): must have at most 3 items (got 200000)");
}

TEST(SchemaValidator, Objects) {
  json s = {
      {"type", "object"},
      {"required", {"code"}},
      {"properties", {{"code", {{"type", "string"}}}, {"allowedDomains", {{"type", "array"}}}}},
      {"additionalProperties", false}};
  EXPECT_EQ(err(s, {{"code", "x"}}), "");
  EXPECT_EQ(err(s, json::object()), "code: required");
  EXPECT_EQ(err(s, {{"code", "x"}, {"allowdDomains", 1}}, "policy.network"),
            "policy.network.allowdDomains: unknown field (did you mean \"allowedDomains\"?)");
  EXPECT_EQ(err(s, {{"code", "x"}, {"zzz", 1}}), "zzz: unknown field");
  EXPECT_EQ(err(s, {{"code", "x"}, {"a b", 1}}), "[\"a b\"]: unknown field");
  json m = {{"type", "object"}, {"additionalProperties", {{"type", "string"}}}};
  EXPECT_EQ(err(m, {{"A", "x"}}), "");
  EXPECT_EQ(err(m, {{"A", 1}}, "env"), "env.A: must be a string (got 1)");
  json n = {{"propertyNames", {{"pattern", "^[A-Z]+$"}}}};
  EXPECT_EQ(err(n, {{"AB", 1}}), "");
  EXPECT_EQ(err(n, {{"a-b", 1}}, "env"),
            "env.a-b: invalid field name: must match the pattern ^[A-Z]+$ (got \"a-b\")");
  EXPECT_EQ(err({{"minProperties", 1}}, json::object()), "(root): must have at least 1 field");
  EXPECT_EQ(err({{"maxProperties", 1}}, {{"a", 1}, {"b", 2}}),
            "(root): must have at most 1 field (got 2)");
}

TEST(SchemaValidator, ReportsEveryErrorUpToACap) {
  json s = {{"type", "object"}, {"additionalProperties", false}};
  json many = json::object();
  for (int i = 0; i < 30; ++i) many["f" + std::to_string(100 + i)] = i;
  std::string msg = err(s, many);
  EXPECT_NE(msg.find("f100: unknown field; f101: unknown field"), std::string::npos);
  EXPECT_NE(msg.find("; and 10 more"), std::string::npos);
  EXPECT_EQ(std::count(msg.begin(), msg.end(), ';'), static_cast<long>(kMaxErrors));
}

TEST(SchemaValidator, Combinators) {
  json all = {{"allOf", {{{"minimum", 1}}, {{"maximum", 3}}}}};
  EXPECT_EQ(err(all, 2), "");
  EXPECT_EQ(err(all, 5), "(root): must be a number ≤ 3 (got 5)");
  json any = {{"anyOf", {{{"type", "string"}}, {{"type", "integer"}}}}};
  EXPECT_EQ(err(any, 1), "");
  EXPECT_EQ(err(any, "x"), "");
  EXPECT_EQ(err(any, true),
            "(root): must match one of the allowed forms ((root): must be a string (got true) | "
            "(root): must be an integer (got true))");
  json one = {{"oneOf", {{{"type", "integer"}}, {{"type", "number"}}}}};
  EXPECT_EQ(err(one, 1.5), "");
  EXPECT_EQ(err(one, 1), "(root): is ambiguous: it matches more than one of the allowed forms");
  EXPECT_NE(err(one, "x"), "");
  EXPECT_EQ(err({{"not", {{"type", "string"}}}}, 1), "");
  EXPECT_EQ(err({{"not", {{"type", "string"}}}}, "x"), "(root): not allowed");
  EXPECT_EQ(err({{"not", json::object()}, {"description", "only for http"}}, 1),
            "(root): not allowed (only for http)");
}

TEST(SchemaValidator, IfThenElse) {
  json s = {{"if", {{"properties", {{"t", {{"const", "a"}}}}}, {"required", {"t"}}}},
            {"then", {{"required", {"x"}}}},
            {"else", {{"required", {"y"}}}}};
  EXPECT_EQ(err(s, {{"t", "a"}, {"x", 1}}), "");
  EXPECT_EQ(err(s, {{"t", "a"}}, "m"), "m.x: required");
  EXPECT_EQ(err(s, {{"t", "b"}}, "m"), "m.y: required");
}

TEST(SchemaValidator, BooleanSchemasAndRefs) {
  EXPECT_EQ(err(true, 1), "");
  EXPECT_EQ(err(false, 1), "(root): not allowed");
  json s = {{"$defs", {{"name", {{"type", "string"}}}}},
            {"type", "array"},
            {"items", {{"$ref", "#/$defs/name"}}}};
  EXPECT_EQ(err(s, {"a"}), "");
  EXPECT_EQ(err(s, {"a", 2}), "[1]: must be a string (got 2)");
  EXPECT_EQ(err({{"$ref", "#/$defs/missing"}}, 1),
            "(root): cannot be checked: unresolvable $ref \"#/$defs/missing\"");
  // A $ref cycle ends with an error, not a crash.
  json loop = {{"$defs", {{"a", {{"$ref", "#/$defs/a"}}}}}, {"$ref", "#/$defs/a"}};
  EXPECT_NE(err(loop, 1).find("nests too deeply"), std::string::npos);
}

TEST(SchemaValidator, PathsQuoteOddKeys) {
  EXPECT_EQ(join_path("", "a"), "a");
  EXPECT_EQ(join_path("a", "b"), "a.b");
  EXPECT_EQ(join_path("a", "b.c"), "a[\"b.c\"]");
  EXPECT_EQ(join_path("a", ""), "a[\"\"]");
  EXPECT_EQ(join_path("a", 3), "a[3]");
}

}  // namespace
}  // namespace onemcp::policy
