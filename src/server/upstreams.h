// server/upstreams.h — the server's side of the upstream MCP servers: the code-mode catalog kept
// current from the upstream Manager, the broker ops runs use to call upstream tools
// ("mcp", "mcp_list", "mcp_search"), and the HTTP endpoints GET /mcps, GET /mcps/:name/tools,
// GET /mcps/types.d.ts and POST /mcps-rpc.
// Thread-safety: every method may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "policy/config.h"
#include "server/codemode.h"
#include "server/http_api.h"
#include "server/mcps_tree.h"
#include "upstream/upstream.h"

namespace onemcp::server {

class Upstreams {
 public:
  // `exposed`: the names of the upstreams whose tools are also 1mcp's own (gateway exposure).
  explicit Upstreams(upstream::Manager& manager, std::set<std::string> exposed = {})
      : manager_(manager), exposed_(std::move(exposed)) {
    refresh();
  }

  // Rebuilds the catalog and the gateway's tools from the upstreams' lists (call when they may
  // have changed): those of the upstreams that are ready, and the last ones of those that are
  // restarting. Whether anything changed (then clients are to be told).
  bool refresh();
  std::shared_ptr<const std::vector<CodeModeServer>> catalog() const;
  // Only what `policy` lets a run call.
  std::vector<CodeModeServer> allowed(const policy::Policy& policy) const;

  // The Tool objects of the exposed upstreams' tools that `policy` allows, under their gateway
  // names (see gateway_tools()).
  nlohmann::json gateway_list(const policy::Policy& policy) const;
  // The upstream and tool a gateway name stands for, when `policy` allows it.
  std::optional<std::pair<std::string, std::string>> gateway_target(
      const std::string& name, const policy::Policy& policy) const;

  // search_catalog() over what `policy` lets a run call.
  nlohmann::json search(const policy::Policy& policy, std::string_view query, SearchDetail detail,
                        size_t limit) const;

  // Answers a run's "mcp", "mcp_list" or "mcp_search" request frame (see ipc/wire.h) under the
  // run's policy; an upstream call stops when `cancelled` turns true (the run is over), and times
  // out on its own only 2 s after `deadline` (the run's end, which its kill enforces first).
  std::string answer(const nlohmann::json& frame, const policy::Policy& policy,
                     std::chrono::steady_clock::time_point deadline,
                     const std::atomic<bool>& cancelled);

  // GET /mcps, GET /mcps/:name/tools, GET /mcps/types.d.ts (quick, may run on an io thread).
  HttpResponse get(const std::string& path);
  // POST /mcps-rpc {"mcp", "tool", "params"}: blocks for the upstream call, `timeout` at most;
  // run it off the io threads. The body is the upstream's CallToolResult, or {"error": "..."}
  // with a 4xx/5xx. A tool the server's `policy.mcps` does not allow is refused with 403.
  HttpResponse rpc(const std::string& body, const policy::Policy& policy,
                   const std::atomic<bool>* cancel, std::chrono::milliseconds timeout);

  upstream::Manager& manager() { return manager_; }

  // Where runs' /mcps trees are written (mcps_tree.h); none: runs get no /mcps.
  void set_trees(std::unique_ptr<McpsTrees> trees);
  // The /mcps tree of what `policy` lets a run call, written at most once per tool-list change
  // and policy.mcps (later calls find it in memory); kept on disk while the lease lives. Null
  // without trees, or when it cannot be written (logged: the run then has no /mcps).
  std::shared_ptr<const McpsTrees::Tree> mcps_tree(const policy::Policy& policy) const;

 private:
  upstream::Manager& manager_;
  const std::set<std::string> exposed_;
  std::mutex refresh_mu_;
  UpstreamTools listed_;  // under refresh_mu_: what the catalog was made from
  mutable std::mutex mu_;
  std::shared_ptr<const std::vector<CodeModeServer>> catalog_ =
      std::make_shared<const std::vector<CodeModeServer>>();
  std::shared_ptr<const std::vector<GatewayTool>> gateway_ =
      std::make_shared<const std::vector<GatewayTool>>();
  // The trees of the current catalog by policy.mcps (cleared when the catalog changes).
  mutable std::mutex trees_mu_;
  std::unique_ptr<McpsTrees> trees_;
  mutable std::map<std::vector<std::string>, std::shared_ptr<const McpsTrees::Tree>> tree_of_;
};

// What a run receives from an upstream tool result: its structuredContent when present, else
// its content blocks.
nlohmann::json code_mode_value(const nlohmann::json& call_result);
// The message of an isError result: its text blocks joined, else a generic text.
std::string tool_error_text(const nlohmann::json& call_result);

}  // namespace onemcp::server
