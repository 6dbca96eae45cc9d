// upstream/rpc.h — the client side of JSON-RPC 2.0 over any transport, with no I/O: request ids,
// the table of calls waiting for a response, and the routing of every message an upstream
// sends, as protocol::parse reads it (responses matched by id, progress notifications by token,
// the upstream's own requests answered, garbage refused). Also the line splitter of
// newline-delimited streams.
// Thread-safety: every method of RpcCore may be called from any thread at once. Handlers and
// progress callbacks run on the thread that delivered the message, with no lock of the core
// held except the one call's callback lock (so a progress callback never runs after end()).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"
#include "protocol/jsonrpc.h"

namespace onemcp::upstream {

inline constexpr size_t kMaxMessageBytes = 16u << 20;

using protocol::kMethodNotFound;

class RpcCore {
 public:
  using Clock = std::chrono::steady_clock;
  using ProgressFn = std::function<void(const nlohmann::json& params)>;

  struct Handlers {
    // Sends a response to a request the upstream made (ping, or anything we refuse).
    std::function<void(nlohmann::json response)> reply;
    // Every notification but notifications/progress.
    std::function<void(const std::string& method, const nlohmann::json& params)> notification;
    // A message was refused (too big, too deep, not JSON, not JSON-RPC). Responses to ids no
    // longer awaited (timed out, cancelled) are dropped silently.
    std::function<void(const std::string& why)> refused;
  };

  class Call {
   public:
    int64_t id() const { return id_; }

   private:
    friend class RpcCore;
    explicit Call(int64_t id) : id_(id) {}
    const int64_t id_;
    bool done_ = false;  // under RpcCore::mu_
    std::optional<nlohmann::json> result_;
    std::string error_;
    std::mutex cb_mu_;  // held while `progress_` runs; end() takes it to stop later calls
    ProgressFn progress_;
  };

  explicit RpcCore(Handlers h) : h_(std::move(h)) {}

  int64_t next_id() { return ++last_id_; }

  // Registers a call awaiting the response with `id`. After close(), the call is born finished
  // with the close reason.
  std::shared_ptr<Call> begin(int64_t id, ProgressFn progress = nullptr);
  // Unregisters; once it returns, no progress callback of this call runs any more.
  void end(const std::shared_ptr<Call>& call);

  bool done(const Call& call) const;
  enum class Wait { kDone, kTimeout, kCancelled };
  // Waits for the response, the deadline, or `cancel` turning true (checked every few ms).
  Wait wait(Call& call, Clock::time_point deadline, const std::atomic<bool>* cancel) const;
  // After kDone: the result, or an error naming the JSON-RPC error's message and code.
  Result<nlohmann::json> outcome(const Call& call) const;

  // One message as received (a line, an SSE event's data, an HTTP body).
  void on_text(std::string_view text);
  void on_message(const nlohmann::json& m);

  // Finishes every waiting call with `why`, and every later one at birth. Idempotent (the
  // first reason stays).
  void close(const std::string& why);
  bool closed() const;

 private:
  void route(const protocol::Item& item);  // a message parsed by protocol::parse
  void finish(int64_t id, std::optional<nlohmann::json> result, std::string error);

  Handlers h_;
  std::atomic<int64_t> last_id_{0};
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::map<int64_t, std::shared_ptr<Call>> calls_;
  bool closed_ = false;
  std::string close_reason_;
};

// Splits a byte stream into newline-terminated lines (a trailing CR is dropped). A line longer
// than `max` is dropped whole, and reported once through `on_overflow`.
class LineSplitter {
 public:
  explicit LineSplitter(size_t max) : max_(max) {}
  void feed(std::string_view bytes, const std::function<void(std::string_view)>& on_line,
            const std::function<void(size_t)>& on_overflow);
  // The unterminated rest (at end of stream).
  std::string take_rest();

 private:
  size_t max_;
  std::string buf_;
  bool skipping_ = false;  // inside an over-long line: drop until the next newline
  size_t skipped_ = 0;
};

}  // namespace onemcp::upstream
