// server/egress.h — connects a run's broker channel to the fetch engine: decodes request frames,
// performs them under the run's network policy, encodes the answers; and opens its tunnels. Also the name-resolution
// override (`--resolve`) that lets tests map names to loopback fixtures.
// Thread-safety: the handler may be called from several threads at once (the Fetcher is
// thread-safe); MapResolver is immutable after construction.
#pragma once

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <memory>
#include <string>
#include <vector>

#include "broker/fetcher.h"
#include "broker/resolver.h"
#include "policy/config.h"
#include "sandbox/executor.h"

namespace onemcp::server {

// Answers names from a fixed table only: "api.example.test" or "*.example.test" (subdomains, on a
// label boundary) -> addresses; the first matching entry wins, so list exact names first.
// Anything else does not resolve.
class MapResolver final : public broker::Resolver {
 public:
  // Entries "PATTERN=ADDR[,ADDR...]"; an error names the bad entry.
  static Result<std::unique_ptr<MapResolver>> parse(const std::vector<std::string>& entries);
  Result<std::vector<sockaddr_storage>> resolve(const std::string& host, uint16_t port) override;

 private:
  std::vector<std::pair<std::string, std::vector<std::string>>> table_;
};

// Answers a run's "mcp"/"mcp_list"/"mcp_search" frame (already parsed) with a whole answer frame.
using CodeModeOps = std::function<std::string(const nlohmann::json& frame,
                                              std::chrono::steady_clock::time_point deadline,
                                              const std::atomic<bool>& cancelled)>;

// The handler for one run: its own Fetcher (so concurrency caps are per run) under `policy`;
// upstream tool calls go to `code_mode` (refused when it is empty).
sandbox::BrokerHandler make_broker_handler(const policy::NetworkPolicy& policy,
                                           broker::Resolver& resolver,
                                           const broker::FetchLimits& limits,
                                           CodeModeOps code_mode = {});

// The tunnel opener for one run: each tunnel decided and connected like a fetch of
// https://host:port/ under `policy`; byte caps of maxBodyBytes plus TLS overhead each way.
sandbox::BrokerTunnels make_broker_tunnels(const policy::NetworkPolicy& policy,
                                           broker::Resolver& resolver,
                                           const broker::FetchLimits& limits);

}  // namespace onemcp::server
