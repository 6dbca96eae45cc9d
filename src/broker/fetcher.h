// broker/fetcher.h — the broker's fetch engine: performs one outbound HTTP(S) request of a run
// (and its redirects) under the run's NetworkPolicy, with libcurl, connecting only to addresses
// it has resolved and vetted itself.
// Thread-safety: a Fetcher is safe to use from several threads at once (each fetch has its own
// curl handles; the only shared state is an atomic in-flight counter). The Resolver it is given
// must be thread-safe too and must outlive it.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "broker/resolver.h"
#include "policy/config.h"

namespace onemcp::broker {

struct FetchRequest {
  std::string method = "GET";
  std::string url;
  // Sent in order. Hop-by-hop and framing headers the broker owns (Host, Content-Length,
  // Transfer-Encoding, Connection, Keep-Alive, Upgrade, TE, Trailer, Expect, Accept-Encoding,
  // Proxy-*) are dropped, as a browser's fetch ignores forbidden headers; a malformed name or a
  // value with CR, LF or NUL is an error.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  uint32_t timeout_ms = 30000;  // the whole request, all hops included; must be > 0
  const std::atomic<bool>* cancel = nullptr;  // when it turns true, the transfer stops at once
};

struct FetchResponse {
  int status = 0;
  std::string status_text;  // the reason phrase; empty over HTTP/2
  // Names lower-cased, in the order received; values with surrounding whitespace trimmed.
  // Content-Encoding/Content-Length describe the wire, while `body` is already decoded.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string url;  // the final URL, serialized
  bool redirected = false;
};

struct FetchLimits {
  uint32_t max_concurrent = 8;
  uint32_t connect_timeout_ms = 10000;
  uint32_t max_header_bytes = 64 * 1024;  // all header lines of a request, and of each hop's response
  // Addresses refused whatever the policy says (port 0 = every port), checked with the policy
  // on every resolved address: the server's own listeners, so that a policy opening loopback
  // (blockPrivateRanges false) still does not let a script call back into 1mcp.
  std::vector<sockaddr_storage> denied_addresses;
  // PEM file of the CA certificates HTTPS servers are verified against, instead of the system
  // store (empty: the system store). For private CAs and the tests' throwaway CA.
  std::string ca_file;
};

class Fetcher {
 public:
  Fetcher(policy::NetworkPolicy policy, Resolver& resolver, FetchLimits limits = {});
  Fetcher(const Fetcher&) = delete;
  Fetcher& operator=(const Fetcher&) = delete;

  // For the request and every redirect hop: parse (a Location against the current URL) →
  // host decision → resolve here → every address vetted (one denied address denies the hop) →
  // connect only to a vetted address (pinned, and checked again when the socket is opened and
  // once connected). Errors are shown to the script, so they name the rule, e.g.
  //   "blocked by network policy (deniedDomains: *.evil.test): https://x.evil.test/"
  //   "response body exceeds maxBodyBytes (1048576)"   "too many redirects (maxRedirects 5)"
  //   "redirect to a non-http(s) URL is not allowed"     "timed out after 3000 ms"
  //   "too many concurrent requests (8)"                 "request body exceeds maxBodyBytes (N)"
  Result<FetchResponse> fetch(const FetchRequest& req);

  // A TCP connection to host:port for a CONNECT-style tunnel, decided exactly like a fetch of
  // https://host:port/ (any port 1..65535): denyIpLiterals, deniedDomains, allowedDomains,
  // resolution here, every address vetted, then a connect to a vetted address only (in the
  // resolver's order, each attempt bounded by the connect timeout), never re-resolving.
  // `host` is a name or an IP literal (any IPv4 notation the URL parser accepts, or IPv6
  // without brackets). The fd is non-blocking and close-on-exec. Holds a concurrency slot only
  // while connecting: whoever keeps the tunnel open accounts for it. Errors name the rule:
  //   "blocked by network policy (deniedDomains: *.evil.test): api.evil.test:443"
  Result<UniqueFd> connect(const std::string& host, uint16_t port, uint32_t timeout_ms,
                           const std::atomic<bool>* cancel);

 private:
  const policy::NetworkPolicy policy_;
  Resolver& resolver_;
  const FetchLimits limits_;
  std::atomic<uint32_t> in_flight_{0};
};

}  // namespace onemcp::broker
