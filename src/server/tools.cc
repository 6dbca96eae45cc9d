#include "server/tools.h"

#include <signal.h>
#include <string.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>

#include "base/base64.h"
#include "base/utf8.h"
#include "deps/npm.h"
#include "deps/pip.h"
#include "policy/egress.h"
#include "policy/schema.h"
#include "policy/schemas.h"

namespace onemcp::server {

using nlohmann::json;

namespace {

constexpr const char* kJsDescription =
    "Run JavaScript (QuickJS, ES2020 plus TypeScript and top-level await via esbuild) in an "
    "isolated sandbox. console.log/info/debug go to stdout, console.error/warn to stderr; the "
    "value of the last expression is returned as `value`. Promises and setTimeout/setInterval "
    "run until settled or the deadline. Input: process.stdin.read() (whole stdin as a string) or "
    "process.stdin.lines(); process.argv, process.env, process.cwd(), process.exit(code). Files: "
    "Node's fs (require('fs') or import from 'node:fs'; sync, callback and fs.promises forms) "
    "reads and writes /tmp, /out (files left there are returned) and a session's /work; the rest "
    "is read-only; `files` (path -> text or {base64}) are written into the working directory "
    "first. npm packages listed in npm.dependencies are installed for the call and "
    "imported with import declarations at the top of the code or require(); nothing else can be "
    "imported (Node's other built-in modules are placeholders; no std/os module). Each call starts "
    "from a fresh interpreter, unless it names a `session` (session_create): then globals carry "
    "over between the session's calls, and /work persists.";

constexpr const char* kPyDescription =
    "Run Python 3.11 (CPython) in an isolated sandbox. The standard library is available (and "
    "numpy, pandas and matplotlib when installed on the server: a figure shown with plt.show() or "
    "left open comes back as a PNG image); every run starts from a fresh interpreter state, "
    "unless it names a `session` (session_create): then variables, imports and definitions carry "
    "over between the session's calls, as in a notebook, and /work persists. "
    "`files` (path -> text or {base64}) are written into the working directory first. "
    "print() goes to stdout, tracebacks to stderr; as in a notebook, the value of a last "
    "expression statement is returned as `value` (its repr()). Input: sys.stdin / input(); "
    "sys.argv, os.environ and os.getcwd() reflect args, env and cwd. sys.exit(n) sets the exit "
    "code. "
    "Packages listed in pip.requirements (e.g. \"requests==2.32.3\") or pip.wheelUrls are "
    "installed for the call (wheels only) and importable as usual.";

std::string limits_note(const policy::Policy& p) {
  return " Limits on this server: timeoutMs " + std::to_string(p.limits.timeout_ms) + ", memMb " +
         std::to_string(p.limits.mem_mb) + ", stdoutBytes " +
         std::to_string(p.limits.stdout_bytes) +
         " (a call's policy can only tighten them).";
}

const char* outcome_phrase(sandbox::Outcome o) {
  switch (o) {
    case sandbox::Outcome::ok: return "ok";
    case sandbox::Outcome::error: return "error";
    case sandbox::Outcome::timeout: return "time limit exceeded";
    case sandbox::Outcome::memory: return "memory limit exceeded";
    case sandbox::Outcome::output_limit: return "output limit exceeded";
    case sandbox::Outcome::policy_violation: return "blocked by the sandbox policy";
    case sandbox::Outcome::crashed: return "crashed";
    case sandbox::Outcome::killed: return "cancelled";
    case sandbox::Outcome::internal: return "internal error";
  }
  return "internal error";
}

// A file name as the text shows it: control characters (a newline could start a line that looks
// like a section of the text) become '?'.
std::string one_line(std::string name) {
  std::replace_if(
      name.begin(), name.end(), [](char c) { return (unsigned char)c < 0x20 || c == 0x7f; }, '?');
  return name;
}

// What a result shows of the files a run left in /out.
struct ShownFiles {
  json entries = json::array();  // structuredContent.files
  std::string list;              // the text's lines about them, one per file
  std::vector<std::pair<std::string, std::string>> inlined;  // path, text: shown in full
  json blocks = json::array();  // image and resource_link blocks, after the text
};

ShownFiles show_files(const std::vector<sandbox::OutFile>& files, const OutFilesView& view) {
  const OutContentLimits& lim = view.limits;
  ShownFiles s;
  size_t images = 0, inlined = 0;  // bytes so far
  for (const auto& f : files) {
    const std::string path = sanitize_utf8(f.path);
    const std::string shown_path = one_line(path);
    const std::string uri = run_file_uri(view.run_id, f.path);
    const std::string type = media_type(f.path, f.data);
    const char* image = image_type(f.data);
    const size_t n = f.data.size();
    json entry = {{"path", path},
                  {"size", f.size},
                  {"truncated", f.truncated},
                  {"mimeType", type},
                  {"uri", uri}};
    std::string line =
        "  " + shown_path + " (" + std::to_string(f.size) + " bytes, " + type + "): ";
    std::string note;  // why it is not shown whole
    if (f.truncated) {
      note = "only its first " + std::to_string(n) + " bytes were read back";
    } else if (image && n > lim.image_bytes) {
      note = "over the cap of " + std::to_string(lim.image_bytes) + " bytes per image";
    } else if (image && images + n > lim.images_bytes) {
      note = "the images of one result are capped at " + std::to_string(lim.images_bytes) +
             " bytes in all";
    }
    if (image && note.empty()) {
      images += n;
      s.blocks.push_back({{"type", "image"}, {"data", base64_encode(f.data)}, {"mimeType", image}});
      line += "shown as an image";
    } else {
      line += uri;
      if (view.resource_links) {
        s.blocks.push_back({{"type", "resource_link"},
                            {"uri", uri},
                            {"name", path},
                            {"mimeType", type},
                            {"size", n}});
      }
      if (!note.empty()) {
        line += std::string(" (") + (image ? "not shown as an image: " : "") + note + ")";
      } else if (!image && n > 0 && n <= lim.inline_bytes && inlined + n <= lim.inline_total &&
                 is_text(f.data)) {
        inlined += n;
        entry["content"] = f.data;
        s.inlined.emplace_back(shown_path, f.data);
        line += ", shown below";
      }
    }
    s.list += line + "\n";
    s.entries.push_back(std::move(entry));
  }
  return s;
}

}  // namespace

std::optional<Language> tool_language(const std::string& name) {
  if (name == "run_js") return Language::js;
  if (name == "run_py") return Language::py;
  return std::nullopt;
}

json tool_list(const policy::Policy& server_policy,
               const std::vector<CodeModeServer>& upstream_tools, const std::string& describe) {
  const bool open_world = !server_policy.network.allowed_domains.empty() || !upstream_tools.empty();
  auto tool = [&](const char* name, const char* title, std::string desc, const json& in) {
    return json{{"name", name},
                {"title", title},
                {"description", desc + limits_note(server_policy)},
                {"inputSchema", in},
                {"outputSchema", policy::run_output_schema()},
                {"annotations",
                 {{"title", title},
                  {"readOnlyHint", false},
                  {"destructiveHint", false},
                  {"idempotentHint", false},
                  {"openWorldHint", open_world}}}};
  };
  std::string js = kJsDescription, py = kPyDescription;
  if (!upstream_tools.empty() && describe != "none") {
    js +=
        " Upstream MCP tools are callable as `await mcp.<server>.<tool>(args)`: the result is the "
        "tool's structuredContent, else its content blocks; a tool error throws an Error named "
        "McpError.";
    py +=
        " Upstream MCP tools are callable synchronously: `from mcp_tools import <server>`, then "
        "`<server>.<tool>(**args)`; the result is the tool's structuredContent, else its content "
        "blocks; a tool error raises mcp_tools.McpError.";
    js += " Their declarations: /mcps/README.md and /mcps/<server>/<tool>.d.ts in the run.";
    py += " Their declarations: /mcps/README.md and /mcps/<server>/<tool>.pyi in the run.";
    if (describe == "full") {
      js += " Typed declarations: GET /mcps/types.d.ts. Available:\n" +
            code_mode_summary(upstream_tools, false);
      py += " Available:\n" + code_mode_summary(upstream_tools, true);
    } else {
      const std::string counts = " Upstream " + code_mode_counts(upstream_tools);
      js += counts +
            " Find tools and their signatures with the search_tools tool, or in the run with "
            "`await mcp.$search(query, {detail})`; `await mcp.$list()` names them all.";
      py += counts +
            " Find tools and their signatures with the search_tools tool, or in the run with "
            "`mcp_tools.search(query, detail=...)`; `mcp_tools.list()` names them all.";
    }
  }
  return json::array({tool("run_js", "Run JavaScript", js, policy::run_js_input_schema()),
                      tool("run_py", "Run Python", py, policy::run_py_input_schema())});
}

json search_tool_entry() {
  const json detail = {
      {"description",
       "\"names\": the call paths only; \"descriptions\" (default): with each tool's "
       "description; \"signatures\": also its TypeScript signature and JSON Schemas."},
      {"enum", {"names", "descriptions", "signatures"}},
      {"default", "descriptions"}};
  const json match = {
      {"type", "object"},
      {"required", {"server", "tool", "name"}},
      {"properties",
       {{"server", {{"type", "string"}, {"description", "The server's identifier in runs."}}},
        {"tool", {{"type", "string"}, {"description", "The tool's identifier in runs."}}},
        {"name",
         {{"type", "string"},
          {"description", "\"server/tool\" as the upstream names them (policy.mcps)."}}},
        {"description", {{"type", "string"}}},
        {"signature",
         {{"type", "string"},
          {"description", "TypeScript, with the description as a doc comment."}}},
        {"inputSchema", {{"type", "object"}}},
        {"outputSchema", {{"type", "object"}}}}}};
  return json{
      {"name", kSearchTools},
      {"title", "Search upstream tools"},
      {"description",
       "Finds upstream MCP tools that run_js and run_py can call, best matches first: the query's "
       "words are looked for in the tools' names, their servers' names, descriptions and argument "
       "names (an empty query lists every tool). Only the tools this server's policy lets runs "
       "call are searched. Call a match in run_js as `await mcp.<server>.<tool>(args)`, in run_py "
       "as `from mcp_tools import <server>` then `<server>.<tool>(**args)`; inside a run, "
       "`mcp.$search(query, {detail, limit})` (run_js) and `mcp_tools.search(query, detail=..., "
       "limit=...)` (run_py) answer the same."},
      {"inputSchema",
       {{"type", "object"},
        {"additionalProperties", false},
        {"required", {"query"}},
        {"properties",
         {{"query",
           {{"type", "string"},
            {"maxLength", 1000},
            {"description", "Words to look for, e.g. \"read file\"."}}},
          {"detail", detail},
          {"limit",
           {{"type", "integer"},
            {"minimum", 1},
            {"maximum", kMaxSearchLimit},
            {"default", kDefaultSearchLimit},
            {"description", "How many matches at most."}}}}}}},
      {"outputSchema",
       {{"type", "object"},
        {"required", {"total", "matches"}},
        {"properties",
         {{"total", {{"type", "integer"}, {"description", "How many tools matched in all."}}},
          {"matches", {{"type", "array"}, {"items", match}}}}}}},
      {"annotations",
       {{"title", "Search upstream tools"},
        {"readOnlyHint", true},
        {"destructiveHint", false},
        {"idempotentHint", true},
        {"openWorldHint", false}}}};
}

Result<SearchArgs> search_args(const json& a) {
  if (!a.is_object()) return make_error("invalid arguments: an object is required");
  for (const auto& [k, v] : a.items())
    if (k != "query" && k != "detail" && k != "limit")
      return make_error("invalid arguments: unknown argument " + k);
  SearchArgs out;
  auto q = a.find("query");
  if (q == a.end() || !q->is_string() || q->get_ref<const std::string&>().size() > 1000)
    return make_error("invalid arguments: query must be a string of at most 1000 characters");
  out.query = *q;
  if (auto d = a.find("detail"); d != a.end()) {
    auto detail = d->is_string() ? search_detail(d->get<std::string>()) : std::nullopt;
    if (!detail)
      return make_error(
          "invalid arguments: detail must be \"names\", \"descriptions\" or \"signatures\"");
    out.detail = *detail;
  }
  if (auto l = a.find("limit"); l != a.end()) {
    if (!l->is_number_integer() || l->get<int64_t>() < 1 ||
        l->get<int64_t>() > int64_t(kMaxSearchLimit))
      return make_error("invalid arguments: limit must be an integer from 1 to " +
                        std::to_string(kMaxSearchLimit));
    out.limit = l->get<size_t>();
  }
  return out;
}

namespace {

std::string mib(uint64_t bytes) {
  if (bytes % (1u << 20) == 0) return std::to_string(bytes >> 20) + " MiB";
  return std::to_string(bytes) + " bytes";
}

std::string iso8601(std::chrono::system_clock::time_point t) {
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  const std::time_t secs = std::time_t(ms / 1000);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, int(ms % 1000));
  return buf;
}

}  // namespace

json session_tool_list(const policy::SessionsConfig& c) {
  const std::string limits = " A session ends after " + std::to_string(c.idle_ms / 1000) +
                             " s without a call, or with "
                             "session_close; a client may hold " +
                             std::to_string(c.max_per_principal) +
                             " sessions at once, the server " + std::to_string(c.max_total) +
                             " in all. Its workspace "
                             "holds at most " +
                             mib(c.workspace_bytes) + " in " + std::to_string(c.workspace_inodes) +
                             " files and directories (a write beyond fails with ENOSPC).";
  const json annotations = {{"readOnlyHint", false},
                            {"destructiveHint", false},
                            {"idempotentHint", false},
                            {"openWorldHint", false}};
  json create = {
      {"name", kSessionCreate},
      {"title", "Create a session"},
      {"description",
       "Creates a session, like a notebook: pass its handle as `session` to run_js and run_py, "
       "and each language keeps one live interpreter whose variables, imports and definitions "
       "carry over between calls, while both see a workspace directory, /work, whose files "
       "persist across the session's calls (the default working directory there; `files` "
       "lands in it). A call that times out, is cancelled or exceeds a limit ends its "
       "interpreter (the next call says so; /work stays). Only this client can use the "
       "handle." +
           limits},
      {"inputSchema",
       {{"type", "object"}, {"additionalProperties", false}, {"properties", json::object()}}},
      {"outputSchema",
       {{"type", "object"},
        {"required", {"session", "expiresAt", "idleMs", "workspace"}},
        {"properties",
         {{"session", {{"type", "string"}, {"description", "The handle: pass it as `session`."}}},
          {"expiresAt",
           {{"type", "string"},
            {"description", "When it ends if unused (ISO 8601, UTC); each call moves it on."}}},
          {"idleMs", {{"type", "integer"}}},
          {"workspace",
           {{"type", "object"},
            {"properties",
             {{"path", {{"type", "string"}}},
              {"maxBytes", {{"type", "integer"}}},
              {"maxFiles", {{"type", "integer"}}}}}}}}}}},
      {"annotations", annotations}};
  create["annotations"]["title"] = "Create a session";
  json close = {
      {"name", kSessionClose},
      {"title", "Close a session"},
      {"description",
       "Closes a session made by session_create: its interpreters end, calls still running in it "
       "are cancelled, and its workspace (/work) with every file in it is deleted."},
      {"inputSchema",
       {{"type", "object"},
        {"additionalProperties", false},
        {"required", {"session"}},
        {"properties",
         {{"session",
           {{"type", "string"},
            {"x-mcp-header", "Session"},
            {"minLength", 1},
            {"maxLength", 256},
            {"description", "The handle session_create returned."}}}}}}},
      {"outputSchema",
       {{"type", "object"},
        {"required", {"closed"}},
        {"properties",
         {{"closed", {{"type", "boolean"}}},
          {"workspace",
           {{"type", "object"},
            {"properties",
             {{"usedBytes", {{"type", "integer"}}}, {"files", {{"type", "integer"}}}}}}}}}}},
      {"annotations", annotations}};
  close["annotations"]["title"] = "Close a session";
  close["annotations"]["destructiveHint"] = true;
  close["annotations"]["idempotentHint"] = true;
  return json::array({std::move(create), std::move(close)});
}

json session_created(const Session& s, const policy::SessionsConfig& c,
                     std::chrono::system_clock::time_point expires) {
  json structured = {{"session", s.handle()},
                     {"expiresAt", iso8601(expires)},
                     {"idleMs", c.idle_ms},
                     {"workspace",
                      {{"path", ipc::kWorkspaceDir},
                       {"maxBytes", c.workspace_bytes},
                       {"maxFiles", c.workspace_inodes}}}};
  std::string text = "Session " + s.handle() +
                     " created. Pass it as `session` to run_js and run_py; " + "files in " +
                     ipc::kWorkspaceDir + " persist (at most " + mib(c.workspace_bytes) +
                     "). It ends after " + std::to_string(c.idle_ms / 1000) +
                     " s without a call (now: " + structured["expiresAt"].get<std::string>() + ").";
  return json{{"content", json::array({json{{"type", "text"}, {"text", text}}})},
              {"structuredContent", std::move(structured)},
              {"isError", false}};
}

json session_closed(const sandbox::Workspace::Usage& usage) {
  json structured = {{"closed", true},
                     {"workspace", {{"usedBytes", usage.bytes}, {"files", usage.inodes}}}};
  std::string text = "Session closed; its workspace (" + std::to_string(usage.inodes) +
                     " files and directories, " + std::to_string(usage.bytes) +
                     " bytes) is deleted.";
  return json{{"content", json::array({json{{"type", "text"}, {"text", text}}})},
              {"structuredContent", std::move(structured)},
              {"isError", false}};
}

Result<RunSpec> prepare_run(Language lang, const json& arguments,
                            const policy::Policy& server_policy) {
  const json& schema =
      lang == Language::js ? policy::run_js_input_schema() : policy::run_py_input_schema();
  if (auto s = policy::validate(schema, arguments); !s) {
    return make_error("invalid arguments: " + s.error().message);
  }
  auto effective = policy::tighten(server_policy, arguments.value("policy", json::object()));
  if (!effective) return effective.error();

  RunSpec p;
  p.language = lang;
  if (lang == Language::js && arguments.contains("npm")) {
    // Checked here, before anything runs: names and ranges a call could use to make npm fetch
    // a URL or read a host path are refused.
    p.npm = arguments["npm"].value("dependencies", deps::Dependencies{});
    if (auto s = deps::validate_dependencies(p.npm); !s) return s.error();
  }
  if (auto it = arguments.find("pip"); lang == Language::py && it != arguments.end()) {
    // Checked here, before anything runs: requirements that could make pip read a URL, a path
    // or an option are refused, and so is a wheel URL whose host the call's policy denies.
    p.pip.requirements = it->value("requirements", std::vector<std::string>{});
    p.pip.wheel_urls = it->value("wheelUrls", std::vector<std::string>{});
    if (auto s = deps::validate_pip(p.pip); !s) return s.error();
    for (const auto& u : p.pip.wheel_urls) {
      auto url = policy::parse_url(u);
      if (!url) return make_error("pip.wheelUrls: " + u + ": " + url.error().message);
      if (auto d = policy::decide_host(effective->network, *url); !d.allowed()) {
        return make_error("pip.wheelUrls: blocked by network policy (" + d.rule + "): " + u);
      }
    }
  }

  p.code = arguments.at("code").get<std::string>();
  p.args = arguments.value("args", std::vector<std::string>{});
  p.env = arguments.value("env", std::map<std::string, std::string>{});
  p.cwd = arguments.value("cwd", std::string{});
  p.stdin_data = arguments.value("stdin", std::string{});
  if (auto it = arguments.find("files"); it != arguments.end()) {
    auto files = parse_input_files(*it);
    if (!files) return files.error();
    p.files = std::move(*files);
  }
  p.policy = *effective;
  if (p.network_relay()) {
    // Python reaches the network through the proxy its relay serves inside the sandbox; the
    // standard variables make urllib, http.client tunnels and requests use it unchanged. A
    // value the caller set wins (the env holds only what the caller passed).
    const std::string proxy = "http://127.0.0.1:" + std::to_string(ipc::kProxyPort);
    for (const char* var : {"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"}) {
      p.env.emplace(var, proxy);
    }
  }
  return p;
}

json tool_result(const RunSpec& spec, const sandbox::RunOutput& out, const OutFilesView& files) {
  const policy::Limits& limits = spec.policy.limits;
  std::string so = sanitize_utf8(out.out);
  std::string se = sanitize_utf8(out.err);
  bool is_error = out.outcome != sandbox::Outcome::ok;

  json structured = {{"stdout", so},
                     {"stderr", se},
                     {"exitCode", out.exit_code},
                     {"outcome", sandbox::to_string(out.outcome)},
                     {"durationMs", std::round(out.duration_ms * 1000) / 1000},
                     {"truncated", out.truncated}};
  if (out.report.value) {
    structured["value"] = sanitize_utf8(*out.report.value);
  }
  if (!out.capsule.empty()) structured["capsule"] = out.capsule;
  std::string session_note;
  if (out.live) {
    const char* state = out.live->ended ? "ended" : out.live->call == 1 ? "new" : "continued";
    structured["session"] = {{"interpreter", state}, {"call", out.live->call}};
    if (!out.live->note.empty()) {
      structured["session"]["note"] = out.live->note;
      session_note = "[session: " + out.live->note + "]\n";
    }
  }
  const ShownFiles shown = show_files(out.files, files);
  if (!out.files.empty()) structured["files"] = shown.entries;

  // The text an LLM reads: plain stdout when that is all there is, labelled sections otherwise.
  std::string text = so;
  auto section = [&](const std::string& label, const std::string& body) {
    if (!text.empty() && text.back() != '\n') text += '\n';
    text += label;
    if (body.empty()) {
      text += '\n';
    } else {
      text += body.back() == '\n' ? body : body + "\n";
    }
  };
  if (!se.empty()) section("[stderr]\n", se);
  if (structured.contains("value")) section("[value] ", structured["value"].get<std::string>());
  if (!out.files.empty()) {
    section("[files in /out]\n", shown.list);
    for (const auto& [path, body] : shown.inlined) section("[/out/" + path + "]\n", body);
  }
  if (out.truncated) {
    section("[output truncated at " + std::to_string(limits.stdout_bytes) + " bytes]", "");
  }
  if (is_error) {
    std::string status = "[" + std::string(outcome_phrase(out.outcome));
    if (out.outcome == sandbox::Outcome::timeout) {
      status += ": stopped after " + std::to_string(limits.timeout_ms) + " ms";
    } else if (out.outcome == sandbox::Outcome::memory) {
      status += ": limit " + std::to_string(limits.mem_mb) + " MB";
    } else if (out.signal) {
      const char* name = sigabbrev_np(out.signal);  // null for real-time signals
      status += ": signal " + (name ? std::string(name) : std::to_string(out.signal));
    } else if (out.exit_code >= 0) {  // -1: no program ran
      status += ": exit code " + std::to_string(out.exit_code);
    }
    section(status + "]", "");
  }
  if (out.live && out.live->ended) {
    section(
        "[session: this call ended the interpreter; the next call starts a new one, and the "
        "files in /work remain]",
        "");
  }
  if (text.empty()) text = "(no output)";
  text = session_note + text;

  json content = json::array({json{{"type", "text"}, {"text", text}}});
  for (const auto& b : shown.blocks) content.push_back(b);
  json result = {{"content", std::move(content)},
                 {"structuredContent", std::move(structured)},
                 {"isError", is_error}};
  if (!out.steps.empty()) {
    // `1mcp serve --profile-runs`: when each step of the run ended, in µs from the first, and
    // the run process's minor page faults since its fork (null where not the run's process).
    json steps = json::array();
    for (const auto& s : out.steps) {
      steps.push_back({{"step", sanitize_utf8(s.name)},
                       {"atUs", double(s.ns - out.steps.front().ns) / 1000.0},
                       {"minflt", s.minflt >= 0 ? json(s.minflt) : json()}});
    }
    result["_meta"] = {{"io.1mcp/steps", std::move(steps)}};
  }
  return result;
}

json tool_error(const std::string& message) {
  return json{{"content", json::array({json{{"type", "text"}, {"text", sanitize_utf8(message)}}})},
              {"isError", true}};
}

}  // namespace onemcp::server
