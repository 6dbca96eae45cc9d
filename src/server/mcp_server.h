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
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/thread_pool.h"
#include "capsule/store.h"
#include "metrics/registry.h"
#include "policy/config.h"
#include "protocol/jsonrpc.h"
#include "server/admission.h"
#include "server/backend.h"
#include "server/extension.h"
#include "server/host_check.h"
#include "server/http_api.h"
#include "server/recent_runs.h"
#include "server/run_files.h"
#include "server/sessions.h"
#include "server/tools.h"

namespace onemcp::server {

class HttpAuth;
class Upstreams;

inline constexpr const char* kLatestProtocol = "2025-11-25";
bool is_supported_protocol(const std::string& v);

struct ServerOptions {
  std::string name = "1mcp";
  std::string version = "0.1.0";
  bool ui = true;                       // GET / serves the web page (else a JSON status)
  size_t max_body_bytes = 8u << 20;     // one JSON-RPC message
  // At the cap a new session evicts the least recently used one without a call in flight.
  size_t max_sessions = 1024;
  // This server's name among replicas behind one load balancer (README, "Scale-out"); empty
  // when alone. It leads every Mcp-Session-Id (`<replica>.<hex>`) and session handle
  // (`ses_<replica>.<hex>`) the server makes, so a balancer routes them without keeping state.
  std::string replica;
  HostCheckOptions hosts;      // which Host and Origin headers HTTP requests may carry
  FairScheduler::Limits runs;  // run slots, shared fairly between clients
  // Threads for the HTTP endpoints that wait on something other than a run (POST /mcps-rpc, an
  // upstream call; GET /capsules, verifying reads): they never take a run slot.
  size_t aux_threads = 16;
  size_t max_queued_aux = 256;
  std::function<std::chrono::steady_clock::time_point()> now = std::chrono::steady_clock::now;
  // The tools tools/list offers, given the current server policy; called from any thread for
  // every tools/list. When its answer changes, call McpServer::notify_tools_changed().
  std::function<nlohmann::json(const policy::Policy&)> tools = [](const policy::Policy& p) {
    return tool_list(p);
  };
  Upstreams* upstreams = nullptr;       // upstream MCP servers (not owned; null: none configured)
  // The capsule cache GET /capsules/<id>/... reads (not owned; null: those routes answer 404).
  capsule::CapsuleStore* capsules = nullptr;
  // The run capsule cache whose size and gc passes GET /metrics reports (not owned; null: not
  // reported).
  const Capsules* capsule_cache = nullptr;
  // Authenticates every HTTP request before it is routed (not owned; null: no authentication).
  // A session belongs to the principal that created it: another principal naming it gets 404.
  const HttpAuth* auth = nullptr;
  // Tools, resources and prompts served beside 1mcp's own (not owned; null: none; tests only).
  McpExtension* extension = nullptr;
  // The /out files of recent runs, kept for resources/read (onemcp://runs/<run>/out/<path>).
  RunFilesLimits run_files;
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
  // What GET /metrics serves (the text format of metrics/registry.h): tool calls by tool and
  // outcome, run duration and queue wait, runs in flight and queued, sessions, upstreams,
  // dependency set builds, the capsule cache.
  metrics::Registry& metrics() { return metrics_; }
  // Cancels every run (stdin closed).
  void cancel_all();

  // The port HTTP listens on, once bound: Host and Origin checks need it.
  void set_listen_port(uint16_t port) { hosts_.set_port(port); }

  // Graceful shutdown. begin_shutdown(): calls and sessions that arrive from now on are refused
  // with a JSON-RPC error saying the server is shutting down (HTTP 503); calls in flight go on.
  void begin_shutdown();
  // Waits until no call is in flight (queued or running; each one answered), up to `timeout`.
  bool wait_calls(std::chrono::milliseconds timeout);
  // Calls still in flight are cancelled and answered with the shutting-down error.
  void abort_calls();
  // Ends every session's GET stream (the last step of a shutdown: nothing more will be sent).
  void close_streams();

  // New calls and tools/list use `config` (its policy and session TTL); running calls keep the
  // one they started with.
  void set_config(policy::Config config);
  // Sends notifications/tools/list_changed to every initialized session: a line on stdio, an
  // event on the session's GET stream over HTTP (dropped when it has none open).
  void notify_tools_changed();
  // A server event (an upstream server's state changed, ...) as notifications/message to every
  // legacy-era session that asked for messages of `level` or above (logging/setLevel): on its
  // GET stream over HTTP, a line over stdio. `level` is one of RFC 5424's, as MCP names them.
  void log_event(const std::string& level, const std::string& logger, const nlohmann::json& data);

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
  // GET /runs: the caller's recent runs (server/recent_runs.h).
  void handle_recent_runs(const HttpRequest& req, Respond& respond);
  // POST /workspace/list and /workspace/read: the files of one of the caller's sessions.
  void handle_workspace(const HttpRequest& req, const std::string& path, Respond& respond);
  std::shared_ptr<Session> new_session(const std::string& protocol, const std::string& owner);
  // A session for one request that came without one (never listed: it ends with its answer).
  std::shared_ptr<Session> oneshot_session(const std::string& owner);
  // Null also when the session belongs to another principal.
  std::shared_ptr<Session> find_session(const std::string& id, const std::string& principal);
  // session_create / session_close.
  void call_session_tool(const std::shared_ptr<Session>& session, const nlohmann::json& id,
                         const std::string& name, const nlohmann::json& args, Reply reply);
  void sweep_sessions();
  // Dispatches one parsed JSON-RPC message.
  // `abandonment` (may be null): the transport's signal that nobody will read the answer.
  void dispatch(const std::shared_ptr<Session>& session, const protocol::Message& msg, Reply reply,
                Notify notify = nullptr, std::shared_ptr<Abandonment> abandonment = nullptr);
  // A JSON-RPC batch (an array; protocol 2025-03-26 only): every element dispatched, `done`
  // called once with the array of their responses, or nullopt when none has one.
  void dispatch_batch(const std::shared_ptr<Session>& session,
                      const std::vector<protocol::Item>& batch, Reply done);
  // The stateless era (protocol/modern.h): a request already checked by check_modern(), served
  // in `session` (a one-shot one over HTTP, the stdio one over stdio). Its results carry
  // resultType and the server's info. `listen` serves subscriptions/listen (per transport).
  using Listen = std::function<void(const protocol::Message& msg, const nlohmann::json& honored)>;
  void dispatch_modern(const std::shared_ptr<Session>& session, const protocol::Message& msg,
                       Reply reply, Notify notify, std::shared_ptr<Abandonment> abandonment,
                       const Listen& listen);
  void handle_modern_post(HttpRequest& req, const protocol::Message& msg, Respond& respond);
  nlohmann::json discover_result() const;
  nlohmann::json cache_hints() const;  // ttlMs and cacheScope of lists and reads (stateless era)
  nlohmann::json tool_list_now();  // opts_.tools under the current policy, and the extension's
  // The extension's answer to prompts/list, prompts/get, completion/complete and (legacy)
  // resources/subscribe|unsubscribe; nullopt: not one of those, or no extension.
  std::optional<nlohmann::json> extension_request(const protocol::Message& msg, bool modern);
  void call_extension(const std::shared_ptr<Session>& session, const nlohmann::json& id,
                      const std::string& name, const nlohmann::json& params, Reply reply,
                      Notify notify);
  // Resources: the files of types/, the upstream tools' TypeScript declarations (as runs see
  // them), and by template capsules (onemcp://capsules/{id}/...), read verified, and the /out
  // files of recent runs (onemcp://runs/{run}/out/{path}), each for the principal that ran it.
  nlohmann::json resources_result() const;
  nlohmann::json resource_templates_result() const;
  // Answers resources/read of `uri` for `principal` (maybe later, from the auxiliary threads).
  // `modern`: the stateless era's not-found error (-32602) instead of the legacy one (-32002).
  void read_resource(const nlohmann::json& id, const nlohmann::json& params,
                     const std::string& principal, bool modern, Reply reply);
  nlohmann::json server_info() const;  // name, title, version
  nlohmann::json modern_meta() const;  // a result's _meta: the server's info
  // subscriptions/listen: the first message of subscription `id`, and the result that ends it.
  nlohmann::json listen_acknowledged(const nlohmann::json& id, const nlohmann::json& honored) const;
  nlohmann::json listen_ended(const nlohmann::json& id) const;
  // A subscriptions/listen stream: list-changed notifications go to it until it is gone.
  struct Listener {
    nlohmann::json id;                                // of the listen request
    std::function<bool(const nlohmann::json&)> send;  // false once the client is gone
    std::function<void()> end;                        // the server ends it (shutdown)
  };
  void add_listener(Listener l);
  bool remove_listener(const nlohmann::json& id);  // stdio: the client cancelled it
  // A tool of an exposed upstream (`name` is its gateway name): forwarded, with the client's
  // progress token and its cancellation, on the auxiliary threads.
  void call_gateway(const std::shared_ptr<Session>& session, const nlohmann::json& id,
                    const std::string& name, const nlohmann::json& params, Reply reply,
                    Notify notify, std::shared_ptr<Abandonment> abandonment);
  void call_tool(const std::shared_ptr<Session>& session, const nlohmann::json& id,
                 const nlohmann::json& params, Reply reply, Notify notify,
                 std::shared_ptr<Abandonment> abandonment);
  // Runs `job` on the auxiliary threads; false when they are saturated.
  bool submit_aux(std::function<void()> job);
  void call_started();
  void call_ended();
  // Declares the metrics and the gauges read from this server's parts (in the constructor).
  void register_metrics();
  // A run_js/run_py call ended: counted by tool and outcome; `run` (how long the backend took)
  // and `wait` (for a run slot) observed when it got that far; and one log line ("call ended")
  // with who called, the tool, the outcome, the times, the capsule and the session's log name,
  // never the call's code, arguments, environment or stdin.
  struct CallEnd {
    std::string tool, outcome;
    std::optional<std::chrono::steady_clock::duration> wait, run;
    std::string principal;  // for logs: log_principal()
    std::string capsule;    // the capsule it executed, if it ran
    std::string session;    // the run session's log name (Session::log_name), if it named one
  };
  void call_finished(const CallEnd& c);
  // Who a call came from, as logs may name it: the authenticated principal, "stdio",
  // "anonymous" (stateless calls without authentication), or "session:" and a hash of the MCP
  // session id (the id itself is a bearer secret).
  static std::string log_principal(const Session& s);
  nlohmann::json initialize_result(const std::string& protocol) const;
  std::shared_ptr<const policy::Config> config();

  ServerOptions opts_;
  RunBackend& backend_;
  HostCheck hosts_;
  std::mutex mu_;                    // guards config_, sessions_, last_sweep_, in_flight_
  std::condition_variable idle_cv_;  // in_flight_ reached 0
  std::shared_ptr<const policy::Config> config_;
  std::unordered_map<std::string, std::shared_ptr<Session>> sessions_;
  std::shared_ptr<Session> stdio_session_;
  std::mutex listeners_mu_;
  std::vector<Listener> listeners_;
  std::chrono::steady_clock::time_point last_sweep_{};
  size_t in_flight_ = 0;               // tools/call and /mcps-rpc calls not yet answered
  std::atomic<bool> stopping_{false};  // upstream calls of /mcps-rpc stop
  std::atomic<bool> draining_{false};  // begin_shutdown() was called
  std::atomic<bool> aborting_{false};  // abort_calls() was called
  RunFiles run_files_;
  RecentRuns recent_runs_;  // of authenticated principals only
  // Before runs_ and aux_: their jobs count into it until they are joined.
  metrics::Registry metrics_;
  // Sessions by handle (config sessions; read at start): null when disabled.
  std::unique_ptr<Sessions> run_sessions_;
  // Last: joined first on destruction, while everything their jobs use still exists.
  std::unique_ptr<ThreadPool> aux_;
  std::unique_ptr<FairScheduler> runs_;
};

}  // namespace onemcp::server
