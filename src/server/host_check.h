// server/host_check.h — which Host and Origin headers the HTTP surface accepts. An exact
// allow-list, never prefix or suffix matching: a web page whose name an attacker rebinds to
// 127.0.0.1 (DNS rebinding) still sends its own name as Host and Origin, and is refused.
// Thread-safety: immutable after construction, except the listening port, which is set once the
// listener is bound (atomically; reads may race with that single write).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace onemcp::server {

struct HostCheckOptions {
  // localhost, 127.0.0.1 and [::1] with the listening port: true when bound to a loopback or
  // wildcard address.
  bool loopback_names = true;
  // The bind address when it is a specific address ("127.0.0.2", "192.0.2.7", "[2001:db8::1]"):
  // accepted with the listening port. Empty for a wildcard bind.
  std::string bind_host;
  std::vector<std::string> allowed_hosts;    // lower-case "name" or "name:port" (config)
  std::vector<std::string> allowed_origins;  // lower-case "scheme://host[:port]" (config)
  uint16_t port = 0;  // the listening port, when known before the listener is bound
};

class HostCheck {
 public:
  explicit HostCheck(HostCheckOptions options) : o_(std::move(options)), port_(o_.port) {}

  void set_port(uint16_t port) { port_ = port; }
  uint16_t port() const { return port_; }

  // Whether a request with this Host header (as received) may be served. A request without one
  // is not a browser's and passes.
  bool host_allowed(std::string_view host) const;
  // Whether a request with this Origin header may be served: a listed origin, or a page this
  // server serves (http or https, with an authority host_allowed() accepts).
  bool origin_allowed(std::string_view origin) const;

 private:
  bool authority_allowed(const std::string& authority) const;

  const HostCheckOptions o_;
  std::atomic<uint16_t> port_;
};

}  // namespace onemcp::server
