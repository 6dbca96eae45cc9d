// upstream/upstream.h — 1mcp as an MCP client of the upstream servers in the config's `mcps`:
// stdio (a spawned process, newline-delimited JSON-RPC) and Streamable HTTP (legacy era with
// Mcp-Session-Id, or the stateless 2026-07-28 era, detected per server). Each upstream connects,
// lists its tools (all pages), restarts with backoff when it dies, and is isolated from the
// others: one failing upstream never blocks or breaks another or the server.
//
// stdio upstreams run without a shell, in their own process group, with an explicit environment:
// the config's `env` over PATH, HOME, USER, LANG, LC_ALL, TZ and TMPDIR inherited from the server
// (PATH defaults to /usr/local/bin:/usr/bin:/bin); nothing else of the server's environment.
// A command without a slash is searched in that PATH. Their stderr goes to the log, rate-limited.
// HTTP upstreams get the config's `headers` on every request, follow no redirect and use no proxy.
//
// Thread-safety: every public method of Manager may be called from any thread at once.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/result.h"
#include "policy/config.h"

namespace onemcp::upstream {

enum class State {
  kConnecting,  // first connection (or a restart) under way
  kReady,       // initialized (or discovered) and tools listed
  kBackoff,     // died or failed; the next attempt is scheduled
  kStopped,     // Manager shutting down
};
const char* state_name(State s);  // "connecting", "ready", "backoff", "stopped"

struct UpstreamStatus {
  std::string name, transport;  // transport: "stdio" | "http"
  State state = State::kConnecting;
  std::string error;             // why the last attempt failed or the upstream died ("" if none)
  std::string protocol_version;  // negotiated, e.g. "2025-06-18" or "2026-07-28"
  nlohmann::json server_info;    // the upstream's serverInfo (null until known)
  size_t tool_count = 0;         // of its last list (kept while it restarts)
  uint32_t restarts = 0;  // connections made after the first one
};

struct CallOptions {
  std::chrono::milliseconds timeout{60000};
  // When set, a progressToken is sent and each notifications/progress params object for this
  // call is passed here (from an internal thread, which it should not block for long).
  std::function<void(const nlohmann::json& progress)> on_progress;
  // When set and it turns true, the call is abandoned at once: notifications/cancelled is sent
  // upstream and the call returns an error.
  const std::atomic<bool>* cancel = nullptr;
};

struct ManagerOptions {
  std::string client_name = "1mcp";
  std::string client_version = "0.1.0";
  std::chrono::milliseconds connect_timeout{30000};  // spawn/connect + handshake + tools/list
  std::chrono::milliseconds request_timeout{30000};  // any other request but tools/call
  std::chrono::milliseconds backoff_min{500};
  std::chrono::milliseconds backoff_max{30000};
  // How long an upstream that was ready keeps its last tools listed after it died, while it
  // restarts: a failed restart attempt after this long withdraws them (the tools-changed
  // callback runs) until it is ready again.
  std::chrono::milliseconds keep_tools_for{60000};
  // How long a stdio upstream may take to exit after its stdin closes, and then after SIGTERM,
  // before SIGKILL.
  std::chrono::milliseconds stop_grace{2000};
  // Working directory of stdio upstreams ("" = the server's own).
  std::string stdio_cwd;
};

class Manager {
 public:
  Manager(std::vector<policy::UpstreamConfig> configs, ManagerOptions opts = {});
  ~Manager();  // stop()
  Manager(const Manager&) = delete;
  Manager& operator=(const Manager&) = delete;

  // Starts connecting every upstream in the background; returns at once.
  void start();
  // Stops every upstream (stdio: close stdin, SIGTERM, SIGKILL; HTTP: DELETE the session) and
  // fails calls in flight. Idempotent.
  void stop();
  // Waits until no upstream is in kConnecting for its first attempt (tests, `serve` start-up
  // log). True if that happened within `timeout`.
  bool wait_settled(std::chrono::milliseconds timeout);

  // In config order.
  std::vector<UpstreamStatus> status() const;
  // The Tool objects exactly as the upstream last listed them (name, description, inputSchema,
  // outputSchema, annotations...): while it is ready, and while it restarts after it died (its
  // last list, until a new connection lists anew or ManagerOptions::keep_tools_for has passed).
  // Error if the name is unknown or the upstream has no list (never ready yet, failing for
  // longer than keep_tools_for, or stopped).
  Result<std::vector<nlohmann::json>> tools(const std::string& upstream) const;
  // The CallToolResult as the upstream returned it (less the stateless era's wire-only
  // `resultType`); an isError result is a value, not an error.
  // Errors: unknown upstream, not ready, restarting ("upstream 'x' is restarting (attempt N); try
  // again", at once: the call is not sent anywhere), timeout, cancelled, the upstream died, a
  // JSON-RPC error (its message and code in the text). Each message names the upstream.
  Result<nlohmann::json> call_tool(const std::string& upstream, const std::string& tool,
                                   const nlohmann::json& arguments, CallOptions opts = {});

  // Called from an internal thread whenever some upstream's tool list may have changed
  // (connected, restarted, notifications/tools/list_changed re-listed, died, stopped). A new
  // connection's tools are published and this called before its state turns kReady, so what the
  // callback builds from tools() is in place before anyone sees the upstream ready; it is called
  // once more after. Set before start().
  void on_tools_changed(std::function<void()> cb);

 private:
  class Upstream;
  std::vector<std::unique_ptr<Upstream>> upstreams_;
  std::function<void()> on_changed_;
  ManagerOptions opts_;
  std::mutex lifecycle_mu_;  // start() and stop()
  bool started_ = false, stopped_ = false;
};

}  // namespace onemcp::upstream
