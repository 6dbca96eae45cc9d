// protocol/modern.h — the stateless era of MCP (revision 2026-07-28 and later): how a request
// is told from the legacy era (initialize handshake, sessions) on the same endpoint, and how it
// is checked before it is served: its `_meta`, then (over HTTP) its headers against its body,
// then its version, in the order the spec's conformance suite expects.
// Thread-safety: pure functions.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "protocol/jsonrpc.h"

namespace onemcp::protocol {

inline constexpr const char* kModernProtocol = "2026-07-28";
inline constexpr const char* kMetaProtocolVersion = "io.modelcontextprotocol/protocolVersion";
inline constexpr const char* kMetaClientCapabilities = "io.modelcontextprotocol/clientCapabilities";
inline constexpr const char* kMetaServerInfo = "io.modelcontextprotocol/serverInfo";
inline constexpr const char* kMetaSubscriptionId = "io.modelcontextprotocol/subscriptionId";

// The stateless era's error codes.
inline constexpr int kHeaderMismatch = -32020;
inline constexpr int kMissingRequiredClientCapability = -32021;
inline constexpr int kUnsupportedProtocolVersion = -32022;

// The versions of the stateless era this server speaks (what server/discover lists).
std::vector<std::string> modern_versions();

// A request or notification of the stateless era: its `_meta` names a protocol version, or
// (over HTTP) its MCP-Protocol-Version header names 2026-07-28 or later. Anything else is legacy.
bool is_modern(const Message& m, const std::optional<std::string>& header_version);

// The HTTP headers of a stateless request (absent: not sent). Over stdio there are none.
struct ModernHeaders {
  std::optional<std::string> protocol_version;  // MCP-Protocol-Version
  std::optional<std::string> method;            // Mcp-Method
  std::optional<std::string> name;              // Mcp-Name
  std::map<std::string, std::string> params;    // Mcp-Param-<Name>, by <Name> lower-cased
};

// A tools/call argument that the tool's inputSchema mirrors into a header (`x-mcp-header` on a
// top-level property): a client of this era sends its value as Mcp-Param-<header> too, so a load
// balancer can route on it without reading the body.
struct MirroredParam {
  std::string argument;
  std::string header;  // <Name> of Mcp-Param-<Name>, as declared
};
std::vector<MirroredParam> mirrored_params(const nlohmann::json& input_schema);

// Why a stateless request is refused, answered with `error` and (over HTTP) `http_status`.
struct ModernRefusal {
  int http_status = 400;
  nlohmann::json error;  // a whole JSON-RPC error message, with the request's id
};

// Checks a stateless request: required `_meta` (-32602), then with `headers` (HTTP) that they
// are present and match the body (-32020) — for a tools/call also the Mcp-Param-<Name> of every
// argument in `mirrored` that the call has (plain or `=?base64?...?=`) —, then the version
// (-32022). Nothing: it may be served.
std::optional<ModernRefusal> check_modern(const Message& m, const ModernHeaders* headers,
                                          const std::vector<MirroredParam>& mirrored = {});

}  // namespace onemcp::protocol
