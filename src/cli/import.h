// cli/import.h — `1mcp init --import CLIENT [FILE]`: the MCP servers another client lists
// (Claude Desktop, Claude Code, Cursor, VS Code) turned into entries of the config's `mcps`.
// Thread-safety: pure functions.
#pragma once

#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace onemcp::cli {

// "claude-desktop", "claude-code", "cursor", "vscode".
bool import_client_known(std::string_view client);

// Where the client keeps its server list, most specific first (the first that exists is read):
//   claude-desktop  $XDG_CONFIG_HOME/Claude/claude_desktop_config.json (default ~/.config),
//                   ~/Library/Application Support/Claude/claude_desktop_config.json
//   claude-code     ./.mcp.json (project scope), ~/.claude.json (user scope)
//   cursor          ./.cursor/mcp.json (project), ~/.cursor/mcp.json (global)
//   vscode          ./.vscode/mcp.json (workspace), $XDG_CONFIG_HOME/Code/User/mcp.json
std::vector<std::string> import_default_paths(std::string_view client, const std::string& home,
                                              const std::string& xdg_config,
                                              const std::string& cwd);

struct Imported {
  nlohmann::json mcps = nlohmann::json::array();  // entries of the config's `mcps`
  // One line per server that was not converted: its name and why (never a secret's value).
  std::vector<std::string> skipped;
  bool secrets = false;  // some entry carries env values or headers
};

// The servers of `file` (the client's parsed config): "mcpServers" (VS Code: "servers", or
// "mcp"."servers" of its settings.json) — stdio entries (command, args, env) and HTTP ones (url,
// headers). Names become valid `mcps` names (other characters replaced by "-"); a name already in
// `taken` (lower case) is skipped. Entries that are disabled, use SSE, a working directory, an
// env file, or ${...} variables the client would fill in are skipped with the reason.
Result<Imported> import_servers(std::string_view client, const nlohmann::json& file,
                                const std::set<std::string>& taken);

}  // namespace onemcp::cli
