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
            "- ... and 3 more (find them with search_tools; all: GET /mcps/types.d.ts)\n");
  EXPECT_EQ(code_mode_summary(c, true, 1),
            "- srv.t0(**{ x?: number; }): Tool 0\n- ... and 4 more (find them with search_tools; "
            "all: GET /mcps/types.d.ts)\n");
  EXPECT_EQ(code_mode_summary({}, false), "");
}

std::vector<CodeModeServer> search_fixture() {
  auto tool = [](std::string name, std::string desc, json props = json::object()) {
    return json{{"name", name},
                {"description", desc},
                {"inputSchema", {{"type", "object"}, {"properties", props}}}};
  };
  return code_mode_catalog(
      {{"files",
        {tool("read_file", "Read a file from disk", {{"path", {{"type", "string"}}}}),
         tool("write_file", "Write a file",
              {{"path", {{"type", "string"}}}, {"content", {{"type", "string"}}}}),
         tool("list_directory", "List the entries of a folder")}},
       {"crm",
        {tool("create-invoice", "Create an invoice for a customer",
              {{"customer", {{"type", "string"}}}}),
         tool("list_invoices", "Invoices of a customer, newest first"),
         tool("readme", "What this server does")}}});
}

std::vector<std::string> found_names(const json& r) {
  std::vector<std::string> out;
  for (const auto& m : r["matches"]) out.push_back(m["name"]);
  return out;
}

TEST(CodeModeSearch, RanksNameMatchesFirst) {
  auto c = search_fixture();
  auto r = search_catalog(c, "read file", SearchDetail::names, 10);
  // Both words in the name; one word in the name; part of a word in the name; in the server's
  // name only.
  EXPECT_EQ(found_names(r), (std::vector<std::string>{"files/read_file", "files/write_file",
                                                      "crm/readme", "files/list_directory"}));
  EXPECT_EQ(r["total"], 4);
  EXPECT_EQ(r["matches"][0],
            (json{{"server", "files"}, {"tool", "read_file"}, {"name", "files/read_file"}}));
  // A plural finds the singular; an identifier differs from the upstream name.
  r = search_catalog(c, "Invoices", SearchDetail::names, 10);
  EXPECT_EQ(found_names(r), (std::vector<std::string>{"crm/create-invoice", "crm/list_invoices"}));
  EXPECT_EQ(r["matches"][0]["tool"], "create_invoice");
  // Argument names and server names count too; nothing matching gives nothing.
  EXPECT_EQ(found_names(search_catalog(c, "customer", SearchDetail::names, 10)),
            (std::vector<std::string>{"crm/create-invoice", "crm/list_invoices"}));
  EXPECT_EQ(search_catalog(c, "zebra", SearchDetail::names, 10),
            (json{{"total", 0}, {"matches", json::array()}}));
  EXPECT_EQ(search_text(search_catalog(c, "zebra", SearchDetail::names, 10), SearchDetail::names),
            "No upstream tool matches.\n");
}

TEST(CodeModeSearch, EmptyQueryListsAllInNameOrderWithinTheLimit) {
  auto c = search_fixture();
  auto r = search_catalog(c, "", SearchDetail::names, 2);
  EXPECT_EQ(r["total"], 6);
  EXPECT_EQ(found_names(r), (std::vector<std::string>{"crm/create-invoice", "crm/list_invoices"}));
  EXPECT_EQ(search_text(r, SearchDetail::names),
            "mcp.crm.create_invoice\nmcp.crm.list_invoices\n2 of 6 matching tools shown.\n");
}

TEST(CodeModeSearch, DetailLevels) {
  auto c = search_fixture();
  auto d = search_catalog(c, "write", SearchDetail::descriptions, 1);
  EXPECT_EQ(d["matches"][0]["description"], "Write a file");
  EXPECT_FALSE(d["matches"][0].contains("signature"));
  EXPECT_EQ(search_text(d, SearchDetail::descriptions),
            "- mcp.files.write_file: Write a file\n1 of 1 matching tool shown.\n");
  auto s = search_catalog(c, "write", SearchDetail::signatures, 1);
  EXPECT_EQ(s["matches"][0]["signature"],
            "/** Write a file */\nmcp.files.write_file(args?: { content?: string; path?: string; "
            "}): Promise<McpContent[]>");
  EXPECT_EQ(s["matches"][0]["inputSchema"]["properties"]["path"]["type"], "string");
  EXPECT_EQ(search_detail("names"), SearchDetail::names);
  EXPECT_EQ(search_detail("everything"), std::nullopt);
}

TEST(CodeModeSummary, Counts) {
  EXPECT_EQ(code_mode_counts(search_fixture()), "2 servers: crm (3 tools), files (3 tools).");
  EXPECT_EQ(code_mode_counts(code_mode_catalog({{"one", {json{{"name", "x"}}}}})),
            "1 server: one (1 tool).");
}

TEST(Gateway, NamesAreValidDeterministicAndCollisionFree) {
  auto tools = [](std::vector<std::string> names) {
    std::vector<json> out;
    for (auto& n : names)
      out.push_back(json{{"name", n}, {"annotations", {{"readOnlyHint", true}}}});
    return out;
  };
  auto names = [](const std::vector<GatewayTool>& g) {
    std::map<std::string, std::string> m;
    for (auto& t : g) m[t.server + "/" + t.tool] = t.name;
    return m;
  };
  const std::string long_tool(80, 'x');
  auto a = gateway_tools(
      {{"a", tools({"b__c", "get.v2", "get_v2", long_tool, "ok"})}, {"a__b", tools({"c"})}});
  auto b = gateway_tools(
      {{"a", tools({"ok", long_tool, "get_v2", "get.v2", "b__c"})}, {"a__b", tools({"c"})}});
  EXPECT_EQ(names(a), names(b));
  EXPECT_EQ(names(a), (std::map<std::string, std::string>{
                          {"a/b__c", "a__b__c"},        // exact: first in config order
                          {"a__b/c", "a__b__c_2"},      // the same name: a suffix
                          {"a/get_v2", "a__get_v2"},    // exact
                          {"a/get.v2", "a__get_v2_2"},  // "." replaced, then a suffix
                          {"a/" + long_tool, "a__" + std::string(61, 'x')},  // cut at 64
                          {"a/ok", "a__ok"}}));
  for (const auto& t : a) {
    EXPECT_LE(t.name.size(), 64u);
    EXPECT_EQ(t.entry["name"], t.name);
    EXPECT_EQ(t.entry["annotations"]["readOnlyHint"], true);  // the rest of the Tool is kept
  }
}

}  // namespace
}  // namespace onemcp::server
