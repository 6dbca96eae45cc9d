// server/mcp_server.h — the MCP server: JSON-RPC over Streamable HTTP (legacy era,
// 2024-11-05 … 2025-11-25) and over stdio, sessions, and the run_js/run_py tools.
// Server→client messages: progress of a tools/call that carries a progressToken (an SSE response
// over HTTP, lines before the response on stdio) and notifications/tools/list_changed (on each
// session's GET stream, or a stdio line). A run reports 0 "running" when it starts and, over
// HTTP, 1/1 "done" when it ends.
// Thread-safety: all public methods may be called from any thread; runs execute on an internal
// thread pool and answer through the transport's callbacks.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <unordered_map>

#include "base/thread_pool.h"
#include "capsule/store.h"
#include "policy/config.h"
#include "server/backend.h"
#include "server/http_api.h"
#include "server/tools.h"

namespace onemcp::server {

class Upstreams;

inline constexpr const char* kLatestProtocol = "2025-11-25";
bool is_supported_protocol(const std::string& v);

struct ServerOptions {
  std::string name = "1mcp";
  std::string version = "0.1.0";
  bool ui = true;                       // GET / serves the web page (else a JSON status)
  size_t max_body_bytes = 8u << 20;     // one JSON-RPC message
  size_t max_sessions = 1024;
  bool loopback_only = true;            // bound to loopback: Host must be a loopback name
  size_t run_threads = 16;              // concurrent runs
  size_t max_queued_runs = 256;         // beyond this, calls are refused as busy
  std::function<std::chrono::steady_clock::time_point()> now = std::chrono::steady_clock::now;
  // The tools tools/list offers, given the current server policy; called from any thread for
  // every tools/list. When its answer changes, call McpServer::notify_tools_changed().
  std::function<nlohmann::json(const policy::Policy&)> tools = [](const policy::Policy& p) {
    return tool_list(p);
  };
  Upstreams* upstreams = nullptr;       // upstream MCP servers (not owned; null: none configured)
  // The capsule cache GET /capsules/<id>/... reads (not owned; null: those routes answer 404).
  capsule::CapsuleStore* capsules = nullptr;
};

class McpServer final : public HttpHandler, public LineHandler {
 public:
  McpServer(ServerOptions opts, policy::Config config, RunBackend& backend);
  ~McpServer() override;

  // HttpHandler
  size_t max_body_bytes() const override { return opts_.max_body_bytes; }
  void handle(HttpRequest request, Respond respond) override;

  // LineHandler (stdio: one implicit session)
  size_t max_line_bytes() const override { return opts_.max_body_bytes; }
  void handle_line(std::string line, WriteLine write, std::function<void()> done) override;
  void line_too_long(WriteLine write) override;
  void input_closed() override { cancel_all(); }

  size_t session_count();
  // Cancels every run (shutdown).
  void cancel_all();

  // New calls and tools/list use `config` (its policy and session TTL); running calls keep the
  // one they started with.
  void set_config(policy::Config config);
  // Sends notifications/tools/list_changed to every initialized session: a line on stdio, an
  // event on the session's GET stream over HTTP (dropped when it has none open).
  void notify_tools_changed();

 private:
  struct Session;
  using Reply = std::function<void(std::optional<nlohmann::json>)>;  // nullopt: no response
  // A notification about a request, sent before its reply (e.g. progress); may be empty.
  using Notify = std::function<void(const nlohmann::json&)>;

  void route(HttpRequest& req, Respond& respond);
  void route_line(const std::string& line, WriteLine& write, std::function<void()>& done);
  void handle_mcp_post(HttpRequest& req, Respond& respond);
  void handle_mcp_get(HttpRequest& req, Respond& respond);
  void handle_mcp_delete(HttpRequest& req, Respond& respond);
  // The session a request names, or null after answering 400/404 (with `id`).
  std::shared_ptr<Session> request_session(const HttpRequest& req, const nlohmann::json& id,
                                           Respond& respond);
  void handle_upstream_api(HttpRequest& req, const std::string& path, Respond& respond);
  void handle_capsule(const std::string& path, Respond& respond);
  std::shared_ptr<Session> new_session(const std::string& protocol);
  std::shared_ptr<Session> find_session(const std::string& id);
  void sweep_sessions();
  // Dispatches one JSON-RPC message (already known to be an object).
  void dispatch(const std::shared_ptr<Session>& session, const nlohmann::json& msg, Reply reply,
                Notify notify = nullptr);
  void call_tool(const std::shared_ptr<Session>& session, const nlohmann::json& id,
                 const nlohmann::json& params, Reply reply, Notify notify);
  nlohmann::json initialize_result(const std::string& protocol) const;
  std::shared_ptr<const policy::Config> config();

  ServerOptions opts_;
  RunBackend& backend_;
  std::mutex mu_;  // guards config_, sessions_, last_sweep_
  std::shared_ptr<const policy::Config> config_;
  std::unordered_map<std::string, std::shared_ptr<Session>> sessions_;
  std::shared_ptr<Session> stdio_session_;
  std::chrono::steady_clock::time_point last_sweep_{};
  std::atomic<bool> stopping_{false};
  std::unique_ptr<ThreadPool> pool_;  // last: joined first on destruction
};

}  // namespace onemcp::server
