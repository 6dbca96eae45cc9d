// upstream/channel.h — how messages reach one upstream and come back: a spawned process's
// stdin/stdout, or Streamable HTTP POSTs. A channel moves bytes and knows its transport's
// headers and lifecycle; the JSON-RPC logic (RpcCore) and the MCP logic (upstream.cc) are
// above it.
// Thread-safety: every method may be called from any thread at once, except that start() comes
// first and nothing follows shutdown().
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "base/result.h"
#include "policy/config.h"
#include "upstream/upstream.h"

namespace onemcp::upstream {

using Clock = std::chrono::steady_clock;

// Where a channel delivers what it receives, from its own threads or from a send() in progress.
struct ChannelSinks {
  std::function<void(std::string_view message)> message;  // one JSON-RPC message's text
  // The channel is gone for good (the process exited, ...), with a reason for people.
  std::function<void(const std::string& why)> closed;
  // A line of the upstream's own diagnostics (stderr), already rate-limited.
  std::function<void(std::string_view line)> diagnostic;
};

struct SendOptions {
  Clock::time_point deadline;
  const std::atomic<bool>* cancel = nullptr;
  // HTTP: true once the awaited response has arrived (a stream is not read further).
  std::function<bool()> answered;
};

// What an HTTP exchange ended with, for the caller to interpret (stdio: always status 0).
struct Delivery {
  int status = 0;
  bool had_session = false;  // a session id was sent with the request
  std::string body;          // a non-2xx status's body, truncated
};

class Channel {
 public:
  virtual ~Channel() = default;

  // Starts the process (stdio); nothing to do for HTTP.
  virtual Status start() = 0;
  // stdio: writes the message and returns. HTTP: POSTs it and delivers every message of the
  // reply (JSON or an SSE stream) to the sink before returning. Errors: transport failures,
  // the deadline, `cancel`, stop().
  virtual Result<Delivery> send(const nlohmann::json& message, const SendOptions& opts) = 0;
  // Sends without waiting long (notifications, replies to the upstream's requests); failures
  // are only logged.
  virtual void post(nlohmann::json message) = 0;
  // HTTP sends are request/response: a call's response arrives within its send().
  virtual bool synchronous() const = 0;
  // The protocol version to declare in headers (HTTP), and whether the era is the stateless
  // one (Mcp-Method/Mcp-Name headers, no session).
  virtual void set_protocol(const std::string& version, bool modern) = 0;
  // A legacy HTTP session is established: open the GET stream for the upstream's own messages.
  virtual void session_ready() {}
  // Forgets the session (it expired): the next send goes without an id.
  virtual void reset_session() {}
  // Makes every blocking operation return at once with an error, for good.
  virtual void stop() = 0;
  // Ends it gracefully (stdio: close stdin, wait, SIGTERM, wait, SIGKILL, reap; HTTP: DELETE
  // the session). Bounded by about twice the stop grace.
  virtual void shutdown() = 0;
  // The error to report when a channel was closed or stopped.
  virtual std::string closed_reason() const = 0;
};

std::unique_ptr<Channel> make_stdio_channel(const policy::UpstreamConfig& cfg,
                                            const ManagerOptions& opts, ChannelSinks sinks);
std::unique_ptr<Channel> make_http_channel(const policy::UpstreamConfig& cfg,
                                           const ManagerOptions& opts, ChannelSinks sinks);

// Drops lines beyond a rate (a burst, then a steady flow per second), counting what it dropped.
class RateLimiter {
 public:
  RateLimiter(double per_second, double burst) : rate_(per_second), burst_(burst), tokens_(burst) {}
  // True if this event may pass; `dropped` is then the number refused since the last pass.
  bool allow(size_t& dropped);

 private:
  double rate_, burst_, tokens_;
  Clock::time_point last_ = Clock::now();
  size_t dropped_ = 0;
};

}  // namespace onemcp::upstream
