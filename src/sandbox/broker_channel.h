// sandbox/broker_channel.h — the supervisor's end of a run's broker channel (fd 4 inside the run):
// answers request frames ({id, op, ...}), and carries CONNECT-style TCP tunnels as streams.
// Thread-safety: on_readable() is called from one thread (the run's poll loop); close() from the
// same thread, once. Handlers and tunnel openers run on threads of the channel's own.
//
// Tunnel protocol (frames as in ipc/wire.h; a stream uses the id of its "connect"):
//   run → here   {"id": n, "op": "connect", "host": "api.example.test", "port": 443}
//   here → run   {"id": n, "ok": true} | {"id": n, "ok": false, "error": "..."}
//   both ways    {"id": n, "stream": "data", "data": "<base64>"}   (≤ 64 KiB raw from here)
//                {"id": n, "stream": "end"}    that direction is finished (half-close)
//                {"id": n, "stream": "error", "error": "..."}   the stream is aborted
// An open tunnel holds one of the run's request slots until both directions have ended or it is
// aborted, so requests and tunnels together stay within kMaxBrokerRequestsInFlight.
//
// Upstream MCP tools ("code mode"; JS `mcp.<server>.<tool>(args)`, Python `mcp_tools`). Server and
// tool are the identifiers exactly as the script wrote them; the handler maps them to an upstream
// and decides the call under the run's policy.mcps:
//   run → here   {"id": n, "op": "mcp", "server": "filesystem", "tool": "read_text_file",
//                 "args": {...}}
//   here → run   {"id": n, "ok": true, "result": <any JSON: the tool's result>}
//              | {"id": n, "ok": false, "error": "<message>", "isError": true | false}
//                isError true: the upstream tool returned an isError result; false: refused by
//                policy, unknown server or tool, timeout, upstream down, ...
//   run → here   {"id": n, "op": "mcp_list"}
//   here → run   {"id": n, "ok": true, "result": {"<server ident>": ["<tool ident>", ...], ...}}
//   run → here   {"id": n, "op": "mcp_search", "query": "read file", "detail"?: "names" |
//                 "descriptions" | "signatures", "limit"?: 1..50}
//   here → run   {"id": n, "ok": true, "result": {"total": n, "matches": [...]}} (the
//                 search_tools tool's structuredContent)
// A Python run sends these through its relay (worker/relay.h), which serves them as
// POST http://mcp.1mcp.invalid/call, /list and /search on its proxy port.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "ipc/wire.h"

namespace onemcp::sandbox {

// Answers one broker request of a run (a JSON frame, see ipc/wire.h) with one JSON frame. Called
// on a thread of its own per request; must return by `deadline` (the run's end), and promptly
// once `cancelled` turns true (the run is over).
using BrokerHandler = std::function<std::string(const std::string& request,
                                                std::chrono::steady_clock::time_point deadline,
                                                const std::atomic<bool>& cancelled)>;

// Opens the TCP side of a tunnel after deciding it under the run's policy (called on a thread of
// its own; same deadline and cancellation contract as BrokerHandler). The error is shown to the
// script, so it names the rule that refused.
struct BrokerTunnels {
  std::function<Result<UniqueFd>(const std::string& host, uint16_t port,
                                 std::chrono::steady_clock::time_point deadline,
                                 const std::atomic<bool>& cancelled)>
      open;
  // Per tunnel and per direction: more bytes than this aborts the tunnel.
  uint64_t max_bytes = 0;
  // Reported in the abort message ("tunnel exceeds maxBodyBytes (N)").
  uint64_t max_body_bytes = 0;
};

// Raw bytes per data frame sent to the run.
inline constexpr size_t kTunnelChunkBytes = 64 * 1024;
// Bytes read from a remote but not yet written to the run, per tunnel, before the tunnel stops
// reading from the remote (backpressure instead of buffering without bound).
inline constexpr size_t kTunnelQueuedToRunBytes = 256 * 1024;
// How long the remote may refuse to take the run's data before the tunnel is aborted.
inline constexpr auto kTunnelStallTimeout = std::chrono::seconds(5);

class BrokerChannel {
 public:
  using Clock = std::chrono::steady_clock;

  // `handler` / `tunnels` may be null: such requests are refused. Both must outlive the channel.
  BrokerChannel(UniqueFd fd, const BrokerHandler* handler, Clock::time_point deadline,
                const BrokerTunnels* tunnels = nullptr);
  ~BrokerChannel();
  BrokerChannel(const BrokerChannel&) = delete;
  BrokerChannel& operator=(const BrokerChannel&) = delete;

  int fd() const { return fd_.get(); }
  bool open() const { return fd_.valid() && !broken_; }

  // The fd is readable: take what is there, dispatch complete frames. Never blocks.
  void on_readable();

  // The run is over: requests under way are cancelled, tunnels closed, threads joined; nothing
  // more is written to the run.
  void close();

  // After close(): the channel's fd, for the next call of a live run (invalid when the channel
  // broke, or a frame was cut in two by the end of the call).
  UniqueFd release();

 private:
  struct Tunnel;
  struct Outgoing {
    std::string frame;                 // already framed
    std::shared_ptr<Tunnel> tunnel;    // its queued-bytes count drops once written
  };

  void dispatch(std::string request);
  void start_tunnel(const std::string& id, uint64_t num_id, const std::string& host, uint16_t port);
  void on_stream_frame(uint64_t id, const std::string& kind, const std::string* data);
  void run_tunnel(std::shared_ptr<Tunnel> t, std::string host, uint16_t port);
  void pump(Tunnel& t);
  void finish_tunnel(const std::shared_ptr<Tunnel>& t, const std::string* error);
  // Queues a whole frame for the writer thread (never blocks).
  void answer(const std::string& payload, std::shared_ptr<Tunnel> tunnel = nullptr);
  void writer_loop();

  UniqueFd fd_;
  const BrokerHandler* handler_;
  Clock::time_point deadline_;
  const BrokerTunnels* tunnels_;
  ipc::FrameReader reader_;

  std::mutex mu_;  // guards closed_, out_, writer_, threads_, tunnels_by_id_
  std::condition_variable out_cv_;
  bool closed_ = false;
  std::deque<Outgoing> out_;
  std::thread writer_;
  std::vector<std::thread> threads_;
  std::map<uint64_t, std::shared_ptr<Tunnel>> tunnels_by_id_;

  std::atomic<bool> broken_{false};
  std::atomic<bool> cancelled_{false};
  std::atomic<size_t> in_flight_{0};
};

}  // namespace onemcp::sandbox
