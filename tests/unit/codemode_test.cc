// Unit tests of code mode naming, TypeScript declarations and tool-description summaries.
#include "server/codemode.h"

#include <gtest/gtest.h>

namespace onemcp::server {
namespace {

using nlohmann::json;

TEST(CodeModeNames, IdentifiersAreValidInJsAndPython) {
  EXPECT_EQ(to_identifier("read_file"), "read_file");
  EXPECT_EQ(to_identifier("read-file"), "read_file");
  EXPECT_EQ(to_identifier("get.weather/v2"), "get_weather_v2");
  EXPECT_EQ(to_identifier("2fa"), "_2fa");
  EXPECT_EQ(to_identifier(""), "_");
  EXPECT_EQ(to_identifier("class"), "class_");
  EXPECT_EQ(to_identifier("import"), "import_");
  EXPECT_EQ(to_identifier("then"), "then_");  // never makes a proxy thenable
  EXPECT_EQ(to_identifier("$x"), "_x");
  EXPECT_EQ(to_identifier("caf\xc3\xa9"), "caf__");
}

TEST(CodeModeNames, CollisionsResolveTheSameWhateverTheOrder) {
  auto tools = [](std::vector<std::string> names) {
    std::vector<json> out;
    for (auto& n : names) out.push_back(json{{"name", n}});
    return out;
  };
  auto a = code_mode_catalog({{"fs", tools({"read-file", "read_file", "read.file"})}});
  auto b = code_mode_catalog({{"fs", tools({"read.file", "read_file", "read-file"})}});
  ASSERT_EQ(a.size(), 1u);
  auto idents = [](const CodeModeServer& s) {
    std::map<std::string, std::string> m;
    for (auto& t : s.tools) m[t.name] = t.ident;
    return m;
  };
  EXPECT_EQ(idents(a[0]), idents(b[0]));
  // The exact identifier keeps its name; the others take suffixes in byte order of their names.
  EXPECT_EQ(idents(a[0]), (std::map<std::string, std::string>{
                              {"read_file", "read_file"}, {"read-file", "read_file_2"}, {"read.file", "read_file_3"}}));
}

TEST(CodeModeNames, ServersAndLookup) {
  auto c = code_mode_catalog({{"my-fs", {json{{"name", "ls"}}, json{{"noname", 1}}}},
                              {"my_fs", {json{{"name", "ls"}}}}});
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].ident, "my_fs");
  EXPECT_EQ(c[0].name, "my_fs");
  EXPECT_EQ(c[1].ident, "my_fs_2");
  EXPECT_EQ(c[1].name, "my-fs");
  ASSERT_EQ(c[1].tools.size(), 1u);  // a tool without a name is left out
  const CodeModeServer* s = find_server(c, "my_fs_2");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->name, "my-fs");
  ASSERT_NE(find_tool(*s, "ls"), nullptr);
  EXPECT_EQ(find_tool(*s, "rm"), nullptr);
  EXPECT_EQ(find_server(c, "my-fs"), s);  // the upstream's own name works too
  EXPECT_EQ(find_server(c, "other"), nullptr);
}

TEST(CodeModeTypes, SchemasBecomeTypeScript) {
  EXPECT_EQ(typescript_type(json{{"type", "string"}}), "string");
  EXPECT_EQ(typescript_type(json{{"type", "integer"}}), "number");
  EXPECT_EQ(typescript_type(json{{"type", json::array({"string", "null"})}}), "(string) | (null)");
  EXPECT_EQ(typescript_type(json{{"enum", {"a", "b"}}}), R"(("a") | ("b"))");
  EXPECT_EQ(typescript_type(json{{"const", 3}}), "3");
  EXPECT_EQ(typescript_type(json{{"type", "array"}, {"items", {{"type", "number"}}}}), "Array<number>");
  EXPECT_EQ(typescript_type(json{{"type", "array"}}), "unknown[]");
  EXPECT_EQ(typescript_type(json{{"type", "object"},
                                 {"properties", {{"path", {{"type", "string"}}}, {"head", {{"type", "number"}}}}},
                                 {"required", {"path"}},
                                 {"additionalProperties", false}}),
            "{ head?: number; path: string; }");
  EXPECT_EQ(typescript_type(json{{"type", "object"}, {"properties", {{"a-b", {{"type", "boolean"}}}}}}),
            R"({ "a-b"?: boolean; })");
  EXPECT_EQ(typescript_type(json{{"type", "object"}}), "{ [key: string]: unknown; }");
  EXPECT_EQ(typescript_type(json{{"type", "object"}, {"additionalProperties", {{"type", "string"}}}}),
            "{ [key: string]: string; }");
  EXPECT_EQ(typescript_type(json{{"anyOf", {{{"type", "string"}}, {{"type", "number"}}}}}), "(string) | (number)");
  EXPECT_EQ(typescript_type(json{{"$ref", "#/x"}}), "unknown");
  EXPECT_EQ(typescript_type(json("nonsense")), "unknown");
  // Deep nesting ends in unknown instead of recursing without bound.
  json deep = {{"type", "string"}};
  for (int i = 0; i < 50; ++i) deep = json{{"type", "array"}, {"items", deep}};
  EXPECT_NE(typescript_type(deep).find("unknown"), std::string::npos);
}

TEST(CodeModeTypes, DeclarationsForACatalog) {
  auto c = code_mode_catalog({{"filesystem",
                               {json{{"name", "read_text_file"},
                                     {"description", "Read a file. */ evil"},
                                     {"inputSchema", {{"type", "object"},
                                                      {"properties", {{"path", {{"type", "string"}}}}},
                                                      {"required", {"path"}}}}},
                                json{{"name", "get-env"},
                                     {"inputSchema", {{"type", "object"}}},
                                     {"outputSchema", {{"type", "object"},
                                                       {"properties", {{"env", {{"type", "string"}}}}}}}}}}});
  std::string d = typescript_declarations(c);
  EXPECT_NE(d.find("declare const mcp: {\n  readonly filesystem: {\n"), std::string::npos) << d;
  EXPECT_NE(d.find("    /** Read a file. * / evil */\n    read_text_file(args: { path: string; }): Promise<McpContent[]>;\n"),
            std::string::npos)
      << d;
  EXPECT_NE(d.find("`get-env` upstream."), std::string::npos) << d;
  EXPECT_NE(d.find("    get_env(args?: { [key: string]: unknown; }): Promise<{ env?: string; }>;\n"),
            std::string::npos)
      << d;
  EXPECT_NE(d.find("  $list(): Promise<Record<string, string[]>>;\n};\n"), std::string::npos) << d;
}

TEST(CodeModeSummary, ListsToolsAndCapsTheList) {
  std::vector<json> tools;
  for (int i = 0; i < 5; ++i)
    tools.push_back(json{{"name", "t" + std::to_string(i)},
                         {"description", "Tool " + std::to_string(i) + "\nmore"},
                         {"inputSchema", {{"type", "object"}, {"properties", {{"x", {{"type", "number"}}}}}}}});
  auto c = code_mode_catalog({{"srv", tools}});
  EXPECT_EQ(code_mode_summary(c, false, 2),
            "- mcp.srv.t0({ x?: number; }): Tool 0\n- mcp.srv.t1({ x?: number; }): Tool 1\n"
            "- ... and 3 more (see GET /mcps/types.d.ts)\n");
  EXPECT_EQ(code_mode_summary(c, true, 1),
            "- srv.t0(**{ x?: number; }): Tool 0\n- ... and 4 more (see GET /mcps/types.d.ts)\n");
  EXPECT_EQ(code_mode_summary({}, false), "");
}

}  // namespace
}  // namespace onemcp::server
