// broker/resolver.h — who turns a host name into addresses for the broker: the real getaddrinfo
// one, or a fake injected by tests (names like api.example.test mapped to loopback addresses).
// Thread-safety: implementations must be safe to call from several threads at once (one Fetcher
// serves concurrent requests); system_resolver() is.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"

namespace onemcp::broker {

class Resolver {
 public:
  virtual ~Resolver() = default;
  // Every A and AAAA address of `host` (never an IP literal: the fetcher handles those), each
  // with `port` set. The fetcher vets every returned address and connects only to vetted ones,
  // so a resolver never needs to filter; an empty answer is an error for the caller.
  virtual Result<std::vector<sockaddr_storage>> resolve(const std::string& host, uint16_t port) = 0;
};

// getaddrinfo (A and AAAA, TCP), duplicates removed, in the order the system returns them.
std::unique_ptr<Resolver> system_resolver();

// "127.0.0.1" / "::1" (no brackets, no port). For messages and CURLOPT_RESOLVE entries.
std::string address_text(const sockaddr_storage& addr);

// Whether both are the same family, address and port.
bool same_endpoint(const sockaddr_storage& a, const sockaddr_storage& b);

}  // namespace onemcp::broker
