// server/mcp_server.h — the MCP server: JSON-RPC over Streamable HTTP (legacy era,
// 2024-11-05 … 2025-11-25) and over stdio, sessions, and the run_js/run_py tools.
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
#include "policy/config.h"
#include "server/backend.h"
#include "server/http_api.h"

namespace onemcp::server {

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

 private:
  struct Session;
  using Reply = std::function<void(std::optional<nlohmann::json>)>;  // nullopt: no response

  void route(HttpRequest& req, Respond& respond);
  void route_line(const std::string& line, WriteLine& write, std::function<void()>& done);
  void handle_mcp_post(HttpRequest& req, Respond& respond);
  void handle_mcp_delete(HttpRequest& req, Respond& respond);
  std::shared_ptr<Session> new_session(const std::string& protocol);
  std::shared_ptr<Session> find_session(const std::string& id);
  void sweep_sessions();
  // Dispatches one JSON-RPC message (already known to be an object).
  void dispatch(const std::shared_ptr<Session>& session, const nlohmann::json& msg, Reply reply);
  void call_tool(const std::shared_ptr<Session>& session, const nlohmann::json& id,
                 const nlohmann::json& params, Reply reply);
  nlohmann::json initialize_result(const std::string& protocol) const;

  ServerOptions opts_;
  policy::Config config_;
  RunBackend& backend_;
  std::mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<Session>> sessions_;
  std::shared_ptr<Session> stdio_session_;
  std::chrono::steady_clock::time_point last_sweep_{};
  std::unique_ptr<ThreadPool> pool_;  // last: joined first on destruction
};

}  // namespace onemcp::server
