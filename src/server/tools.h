// server/tools.h — the run_js / run_py tools: their MCP descriptions, turning call arguments into
// a run request under the effective policy, and turning a run into an MCP tool result.
// Thread-safety: pure functions.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "base/result.h"
#include "deps/npm.h"
#include "deps/pip.h"
#include "ipc/wire.h"
#include "policy/config.h"
#include "sandbox/executor.h"
#include "server/backend.h"
#include "server/codemode.h"
#include "server/run_files.h"
#include "server/sessions.h"

namespace onemcp::server {

std::optional<Language> tool_language(const std::string& name);

// tools/list entries for run_js and run_py; their descriptions tell of `upstream_tools` (what the
// server policy lets runs call) as `describe` (config codeMode.describe) says: "summary",
// "full" or "none".
nlohmann::json tool_list(const policy::Policy& server_policy,
                         const std::vector<CodeModeServer>& upstream_tools = {},
                         const std::string& describe = "summary");

// The search_tools tool (listed when upstream servers are configured) and its arguments.
inline constexpr char kSearchTools[] = "search_tools";
inline constexpr size_t kDefaultSearchLimit = 10, kMaxSearchLimit = 50;
nlohmann::json search_tool_entry();
struct SearchArgs {
  std::string query;
  SearchDetail detail = SearchDetail::descriptions;
  size_t limit = kDefaultSearchLimit;
};
// The error text is meant for the caller (an isError result).
Result<SearchArgs> search_args(const nlohmann::json& arguments);

// The session tools (server/sessions.h): session_create and session_close, whose descriptions
// state the configured limits.
inline constexpr char kSessionCreate[] = "session_create";
inline constexpr char kSessionClose[] = "session_close";
nlohmann::json session_tool_list(const policy::SessionsConfig& config);
// Their results: a new session's handle and limits; a closed session's last workspace use.
nlohmann::json session_created(const Session& s, const policy::SessionsConfig& config,
                               std::chrono::system_clock::time_point expires);
nlohmann::json session_closed(const sandbox::Workspace::Usage& usage);

// Validates `arguments` against the tool's input schema and the server policy, and makes the
// run's spec. The error text is meant for the caller (it becomes an isError result).
Result<RunSpec> prepare_run(Language lang, const nlohmann::json& arguments,
                            const policy::Policy& server_policy);

// How a result shows the files the run left in /out.
struct OutFilesView {
  std::string run_id;          // what they are kept under for resources/read (RunFiles)
  bool resource_links = true;  // the client knows resource_link blocks (2025-06-18 and later)
  OutContentLimits limits;
};

// A CallToolResult: content text an LLM can read plus structuredContent. Files in /out follow the
// text: an image as an image block (within the limits), any other file as a resource_link to
// its onemcp://runs/ URI; the text lists them all, one line each, with small text files in
// full.
nlohmann::json tool_result(const RunSpec& spec, const sandbox::RunOutput& out,
                           const OutFilesView& files = {});

// An isError CallToolResult for a call that could not run at all.
nlohmann::json tool_error(const std::string& message);

}  // namespace onemcp::server
