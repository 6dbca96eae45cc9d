// server/upstreams.cc — see upstreams.h.
#include "server/upstreams.h"

#include <algorithm>

#include "base/json_depth.h"
#include "base/log.h"
#include "server/tools.h"

namespace onemcp::server {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr std::chrono::milliseconds kPastRunDeadline{2000};
constexpr size_t kMaxMemoTrees = 32;

namespace {

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

HttpResponse json_reply(int status, const json& body) {
  return HttpResponse{status, {{"Content-Type", "application/json"}}, dump(body)};
}

HttpResponse error_reply(int status, const std::string& message) {
  return json_reply(status, json{{"error", message}});
}

json status_json(const upstream::UpstreamStatus& s) {
  json j = {{"name", s.name},
            {"transport", s.transport},
            {"status", upstream::state_name(s.state)},
            {"tools", s.tool_count},
            {"restarts", s.restarts}};
  if (!s.protocol_version.empty()) j["protocolVersion"] = s.protocol_version;
  if (!s.server_info.is_null()) j["serverInfo"] = s.server_info;
  if (!s.error.empty()) j["error"] = s.error;
  return j;
}

// 404 for an unknown upstream, 503 for one that is not ready; nullopt when it is ready.
std::optional<HttpResponse> not_ready(upstream::Manager& m, const std::string& name) {
  for (const auto& s : m.status()) {
    if (s.name != name) continue;
    if (s.state == upstream::State::kReady) return std::nullopt;
    return error_reply(503, "upstream " + name + " is not ready (" + upstream::state_name(s.state) + ")" +
                                (s.error.empty() ? "" : ": " + s.error));
  }
  return error_reply(404, "no upstream MCP server named " + name);
}

}  // namespace

json code_mode_value(const json& r) {
  if (r.is_object() && r.contains("structuredContent") && !r["structuredContent"].is_null())
    return r["structuredContent"];
  if (r.is_object() && r.contains("content")) return r["content"];
  return json::array();
}

std::string tool_error_text(const json& r) {
  std::string text;
  if (r.is_object() && r.contains("content") && r["content"].is_array()) {
    for (const auto& c : r["content"]) {
      if (c.is_object() && c.value("type", json()) == "text" && c.contains("text") && c["text"].is_string())
        text += (text.empty() ? "" : "\n") + c["text"].get<std::string>();
    }
  }
  return text.empty() ? "the tool reported an error" : text;
}

bool Upstreams::refresh() {
  // One at a time, so a refresh that read the upstreams earlier never replaces a later one's.
  std::lock_guard refreshing(refresh_mu_);
  UpstreamTools tools, exposed;  // in config order
  for (const auto& s : manager_.status()) {
    // A ready upstream's tools, or the last ones of one that is restarting (a call to one of
    // those says so); not those of one never ready yet, or stopped.
    auto listed = manager_.tools(s.name);
    if (!listed) continue;
    if (exposed_.count(s.name)) exposed.emplace_back(s.name, *listed);
    tools.emplace_back(s.name, std::move(*listed));
  }
  if (tools == listed_) return false;
  auto next = std::make_shared<const std::vector<CodeModeServer>>(code_mode_catalog(tools));
  auto gateway = std::make_shared<const std::vector<GatewayTool>>(gateway_tools(exposed));
  listed_ = std::move(tools);
  {
    std::lock_guard lk(mu_);
    catalog_ = std::move(next);
    gateway_ = std::move(gateway);
  }
  std::lock_guard lk(trees_mu_);
  tree_of_.clear();
  return true;
}

void Upstreams::set_trees(std::unique_ptr<McpsTrees> trees) {
  std::lock_guard lk(trees_mu_);
  trees_ = std::move(trees);
  tree_of_.clear();
}

std::shared_ptr<const McpsTrees::Tree> Upstreams::mcps_tree(const policy::Policy& policy) const {
  std::lock_guard lk(trees_mu_);
  if (!trees_) return nullptr;
  // Calls may narrow policy.mcps in many ways: the memo (and so what stays on disk beyond the
  // runs in progress) is bounded.
  if (tree_of_.size() >= kMaxMemoTrees && !tree_of_.count(policy.mcps)) tree_of_.clear();
  auto& tree = tree_of_[policy.mcps];
  if (tree) return tree;
  // refresh() swaps the catalog in before it clears tree_of_ (under trees_mu_): a tree made here
  // from the previous catalog is dropped by that clear.
  auto made = trees_->get(allowed(policy));
  if (!made) {
    log::warn("the /mcps tree of runs cannot be written: " + made.error().message);
    tree_of_.erase(policy.mcps);
    return nullptr;
  }
  tree = *made;
  return tree;
}

json Upstreams::gateway_list(const policy::Policy& policy) const {
  std::shared_ptr<const std::vector<GatewayTool>> gateway;
  {
    std::lock_guard lk(mu_);
    gateway = gateway_;
  }
  json out = json::array();
  for (const auto& g : *gateway)
    if (policy::mcp_allowed(policy, g.server, g.tool)) out.push_back(g.entry);
  return out;
}

std::optional<std::pair<std::string, std::string>> Upstreams::gateway_target(
    const std::string& name, const policy::Policy& policy) const {
  std::shared_ptr<const std::vector<GatewayTool>> gateway;
  {
    std::lock_guard lk(mu_);
    gateway = gateway_;
  }
  for (const auto& g : *gateway) {
    if (g.name == name && policy::mcp_allowed(policy, g.server, g.tool))
      return std::pair{g.server, g.tool};
  }
  return std::nullopt;
}

std::shared_ptr<const std::vector<CodeModeServer>> Upstreams::catalog() const {
  std::lock_guard lk(mu_);
  return catalog_;
}

std::vector<CodeModeServer> Upstreams::allowed(const policy::Policy& policy) const {
  std::vector<CodeModeServer> out;
  for (const auto& s : *catalog()) {
    CodeModeServer copy{s.ident, s.name, {}};
    for (const auto& t : s.tools)
      if (policy::mcp_allowed(policy, s.name, t.name)) copy.tools.push_back(t);
    if (!copy.tools.empty()) out.push_back(std::move(copy));
  }
  return out;
}

json Upstreams::search(const policy::Policy& policy, std::string_view query, SearchDetail detail,
                       size_t limit) const {
  return search_catalog(allowed(policy), query, detail, limit);
}

std::string Upstreams::answer(const json& frame, const policy::Policy& policy, Clock::time_point deadline,
                              const std::atomic<bool>& cancelled) {
  const json id = frame.contains("id") ? frame["id"] : json();
  auto fail = [&](const std::string& why, bool is_error = false) {
    return dump(json{{"id", id}, {"ok", false}, {"error", why}, {"isError", is_error}});
  };
  const std::string op = frame.value("op", json("")).is_string() ? frame.value("op", "") : "";
  if (op == "mcp_list") {
    json listing = json::object();
    for (const auto& s : allowed(policy)) {
      json tools = json::array();
      for (const auto& t : s.tools) tools.push_back(t.ident);
      listing[s.ident] = std::move(tools);
    }
    return dump(json{{"id", id}, {"ok", true}, {"result", std::move(listing)}});
  }
  if (op == "mcp_search") {
    json args = {{"query", frame.contains("query") ? frame["query"] : json("")}};
    for (const char* k : {"detail", "limit"})
      if (frame.contains(k) && !frame[k].is_null()) args[k] = frame[k];
    auto a = search_args(args);
    if (!a) return fail("mcp_search: " + a.error().message);
    return dump(
        json{{"id", id}, {"ok", true}, {"result", search(policy, a->query, a->detail, a->limit)}});
  }
  const json& server_j = frame.contains("server") ? frame["server"] : json();
  const json& tool_j = frame.contains("tool") ? frame["tool"] : json();
  if (!server_j.is_string() || !tool_j.is_string()) return fail("malformed request: mcp needs a server and a tool");
  json args = frame.contains("args") ? frame["args"] : json::object();
  if (!args.is_object()) return fail("the arguments of an upstream tool must be an object");
  const std::string server_id = server_j, tool_id = tool_j;

  auto cat = catalog();
  const CodeModeServer* server = find_server(*cat, server_id);
  if (!server) return fail("no upstream MCP server " + server_id + " is available");
  const CodeModeTool* tool = find_tool(*server, tool_id);
  if (!tool) return fail("upstream MCP server " + server_id + " has no tool " + tool_id);
  const std::string label = server->ident + "." + tool->ident;
  if (!policy::mcp_allowed(policy, server->name, tool->name))
    return fail(label + " is not allowed by policy.mcps");

  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  if (left.count() <= 0) return fail(label + ": the run is out of time");
  upstream::CallOptions opts;
  // The run is killed at its deadline, which cancels the call; the call's own timeout is only a
  // backstop a little later, so a call still waiting then never fails the run just before its
  // deadline would have (the run's outcome is its timeout).
  opts.timeout = left + kPastRunDeadline;
  opts.cancel = &cancelled;
  auto r = manager_.call_tool(server->name, tool->name, args, opts);
  if (!r) return fail(label + ": " + r.error().message);
  if (r->is_object() && r->value("isError", json(false)) == json(true))
    return fail(label + ": " + tool_error_text(*r), true);
  return dump(json{{"id", id}, {"ok", true}, {"result", code_mode_value(*r)}});
}

HttpResponse Upstreams::get(const std::string& path) {
  if (path == "/mcps") {
    json list = json::array();
    for (const auto& s : manager_.status()) list.push_back(status_json(s));
    return json_reply(200, json{{"mcps", std::move(list)}});
  }
  if (path == "/mcps/types.d.ts") {
    return HttpResponse{200,
                        {{"Content-Type", "application/typescript; charset=utf-8"}},
                        typescript_declarations(*catalog())};
  }
  const std::string prefix = "/mcps/", suffix = "/tools";
  if (path.size() > prefix.size() + suffix.size() && path.starts_with(prefix) && path.ends_with(suffix)) {
    std::string name = path.substr(prefix.size(), path.size() - prefix.size() - suffix.size());
    if (auto r = not_ready(manager_, name)) return *r;
    auto tools = manager_.tools(name);
    if (!tools) return error_reply(503, tools.error().message);
    return json_reply(200, json{{"name", name}, {"tools", std::move(*tools)}});
  }
  return error_reply(404, "not found");
}

HttpResponse Upstreams::rpc(const std::string& body, const policy::Policy& policy,
                           const std::atomic<bool>* cancel, std::chrono::milliseconds timeout) {
  json req = json_depth_within(body) ? json::parse(body, nullptr, false) : json(json::value_t::discarded);
  if (req.is_discarded() || !req.is_object())
    return error_reply(400, "the body must be a JSON object {\"mcp\", \"tool\", \"params\"}");
  if (!req.contains("mcp") || !req["mcp"].is_string()) return error_reply(400, "mcp (string) is required");
  if (!req.contains("tool") || !req["tool"].is_string()) return error_reply(400, "tool (string) is required");
  json params = req.contains("params") ? req["params"] : json::object();
  if (params.is_null()) params = json::object();
  if (!params.is_object()) return error_reply(400, "params must be an object");
  const std::string name = req["mcp"], tool = req["tool"];
  if (auto r = not_ready(manager_, name)) return *r;
  if (!policy::mcp_allowed(policy, name, tool))
    return error_reply(403, name + "." + tool + " is not allowed by policy.mcps");
  upstream::CallOptions opts;
  opts.cancel = cancel;
  opts.timeout = timeout;
  auto r = manager_.call_tool(name, tool, params, opts);
  if (!r) {
    const std::string& m = r.error().message;
    return error_reply(m.find("timed out") != std::string::npos ? 504 : 502, name + "." + tool + ": " + m);
  }
  return json_reply(200, *r);
}

}  // namespace onemcp::server
