// worker/relay.h — the in-sandbox HTTP(S) proxy of a Python run with network access or upstream
// tools: a single-threaded process that accepts proxy requests on 127.0.0.1:ipc::kProxyPort
// inside the run's own network namespace and turns each into frames on the run's broker channel,
// so urllib, http.client, requests and the mcp_tools module work unchanged while the broker alone
// decides.
// Thread-safety: single-threaded; relay_serve() takes over the process it runs in.
//
// Per client connection (one request each, answered with Connection: close):
//   CONNECT host:port        -> {"op":"connect"}; on ok "200 Connection established", then bytes
//                               both ways as {"stream":"data"|"end"|"error"} frames.
//   METHOD http://host/path  -> {"op":"fetch"} (body by Content-Length), answered with the
//                               broker's status, headers and body.
//   POST http://mcp.1mcp.invalid/call   body {"server", "tool", "args"} -> {"op":"mcp", ...}
//   POST http://mcp.1mcp.invalid/list   -> {"op":"mcp_list"}
//   POST http://mcp.1mcp.invalid/search body {"query", "detail"?, "limit"?} -> {"op":"mcp_search",
//   ...}
//                               upstream MCP tools (see sandbox/broker_channel.h): 200 whose
//                               application/json body is the broker's answer frame, ok or not.
//                               The host is reserved (".invalid" never resolves), so no real
//                               request can be mistaken for one; other paths 404, other methods
//                               405, a malformed body 400.
//   a refusal                -> 403 (policy) or 502 (anything else) whose reason phrase and body
//                               are the broker's error text, so Python's exception names the rule.
//   origin-form / malformed  -> 400; chunked body -> 411; body too large -> 413; head too large
//                               -> 431.
// At most ipc::kMaxBrokerRequestsInFlight requests and tunnels are open on the broker at once
// (the supervisor refuses more); later ones wait in arrival order.
#pragma once

#include <cstdint>
#include <string_view>

#include "base/result.h"
#include "base/unique_fd.h"

namespace onemcp::worker {

inline constexpr size_t kRelayMaxHeadBytes = 64u << 10;
inline constexpr size_t kRelayMaxBodyBytes = 16u << 20;  // base64 of it stays under kMaxFrameBytes
inline constexpr size_t kRelayMaxClients = 64;
// Host of the pseudo-origin whose /call and /list reach upstream MCP tools.
inline constexpr std::string_view kRelayMcpHost = "mcp.1mcp.invalid";

// Run child, still root of its user namespace: a fresh network namespace whose only interface,
// `lo`, is up. Nothing else exists in it, so nothing but the relay is reachable.
Status relay_enter_netns();

// A non-blocking listening TCP socket on 127.0.0.1:port (0: any free port), close-on-exec.
Result<UniqueFd> relay_listen(uint16_t port);

// Serves proxy clients accepted on `listen_fd` through the broker channel `broker_fd` (both
// made non-blocking). Returns when the broker channel closes or breaks.
void relay_serve(int listen_fd, int broker_fd);

}  // namespace onemcp::worker
