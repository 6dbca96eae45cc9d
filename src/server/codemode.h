// server/codemode.h — how upstream MCP tools appear inside runs ("code mode"): the identifiers
// scripts write (`mcp.<server>.<tool>(args)` in JS, `from mcp_tools import <server>` in Python),
// TypeScript declarations generated from the tools' JSON Schemas, and the summary shown in the
// run_js/run_py tool descriptions.
// Thread-safety: pure functions and value types.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace onemcp::server {

// `name` as an identifier valid in both JS and Python: [A-Za-z_][A-Za-z0-9_]*; any other
// character becomes "_", a leading digit gets a "_" prefix, a reserved word a "_" suffix.
std::string to_identifier(std::string_view name);

struct CodeModeTool {
  std::string ident, name;  // what scripts write; the upstream's own name
  nlohmann::json tool;      // the Tool object as listed
};

struct CodeModeServer {
  std::string ident, name;
  std::vector<CodeModeTool> tools;  // sorted by ident
};

// Upstream name → its listed Tool objects (only ready upstreams).
using UpstreamTools = std::vector<std::pair<std::string, std::vector<nlohmann::json>>>;

// Identifiers for every server and tool, deterministic whatever the listing order: a name that
// already is its identifier keeps it; the others, in byte order of their names, take the
// identifier or the first free "<ident>_2", "<ident>_3", ... Sorted by ident. Tools without a
// string name are left out.
std::vector<CodeModeServer> code_mode_catalog(const UpstreamTools& upstreams);

// By identifier, else by the upstream's own name (so any name can be called, even one a script
// cannot spell as an identifier).
const CodeModeServer* find_server(const std::vector<CodeModeServer>& catalog, std::string_view ident);
const CodeModeTool* find_tool(const CodeModeServer& server, std::string_view ident);

// A TypeScript type for a JSON Schema (objects, arrays, enums, const, unions; `unknown` for
// what it cannot express or nesting beyond a fixed depth).
std::string typescript_type(const nlohmann::json& schema);

// The doc comment and signature of `t` called as `callee`, e.g. "/** Echo */\ncallee(args: {...}):
// Promise<...>": the description (preceded by the upstream's name when it is not the
// identifier), the argument type from its inputSchema, the result type from its outputSchema
// (else the content blocks, `McpContent[]`).
std::string tool_declaration(const CodeModeTool& t, const std::string& callee);

// The TypeScript type `McpContent` (a content block of a tool result), declared as text.
extern const char* const kMcpContentType;

// A .d.ts declaring `mcp` with one typed async function per tool: the argument type from its
// inputSchema, the result type from its outputSchema (else the content blocks).
std::string typescript_declarations(const std::vector<CodeModeServer>& catalog);

// A tool of an upstream whose config says `"expose": true`, as 1mcp's own tools/list shows it.
struct GatewayTool {
  std::string name;          // "<server>__<tool>"
  std::string server, tool;  // the upstream's own names
  nlohmann::json entry;      // the upstream's Tool object, renamed `name`
};

// The tools of `upstreams` (in config order) under names valid by the MCP spec's rules for tool
// names, and by the stricter ^[A-Za-z0-9_-]{1,64}$ some clients enforce: the server's name, "__"
// and the tool's name with every other character replaced by "_", cut at 64 characters.
// Deterministic whatever the listing order and collision-free: a name that needed no change
// claims it first; the others, in (server, tool) order, take it or the first free "<name>_2",
// "<name>_3", ... (1mcp's own tools have no "__" in their names, so none is taken by these.)
std::vector<GatewayTool> gateway_tools(const UpstreamTools& upstreams);

// How much of each match search_tools shows: names ("mcp.fs.read_file"), names with
// descriptions, or full signatures (a TypeScript declaration with its doc comment, and the input
// schema).
enum class SearchDetail { names, descriptions, signatures };
std::optional<SearchDetail> search_detail(std::string_view name);  // "names", ... as above

// The tools of `catalog` that match `query`, best first, at most `limit` of them:
// {"total": <matches in all>, "matches": [{"server", "tool" (identifiers), "name" (the upstream's
// "server/tool", as policy.mcps spells it), "description"?, "signature"?, "inputSchema"?}]}.
// The query's words (letters and digits; a plural "s" dropped) are looked for in the tool's name
// (weighted most, an exact word more), its server's name, its description and its argument
// names; a tool matching none of them is left out. An empty query matches every tool, in name
// order.
nlohmann::json search_catalog(const std::vector<CodeModeServer>& catalog, std::string_view query,
                              SearchDetail detail, size_t limit);

// A search_catalog answer as text for a model: one line per match (names, descriptions) or each
// declaration (signatures), then how many matched in all.
std::string search_text(const nlohmann::json& found, SearchDetail detail);

// Lines for the run_js/run_py descriptions, e.g.
// "- mcp.filesystem.read_text_file({path: string}): Read a file" (Python spelling for py), at
// most `max_tools` of them, then a line saying how many more there are.
std::string code_mode_summary(const std::vector<CodeModeServer>& catalog, bool python,
                              size_t max_tools = 100);

// One line for the descriptions' short form: "2 servers: filesystem (14 tools), everything (12
// tools)."
std::string code_mode_counts(const std::vector<CodeModeServer>& catalog);

}  // namespace onemcp::server
