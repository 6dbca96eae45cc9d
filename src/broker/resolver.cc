// broker/resolver.cc — getaddrinfo-backed Resolver and sockaddr helpers.
// Thread-safety: getaddrinfo is thread-safe; the helpers are pure.
#include "broker/resolver.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>

#include <cstring>

#include "base/c_ptr.h"

namespace onemcp::broker {
namespace {

class SystemResolver final : public Resolver {
 public:
  Result<std::vector<sockaddr_storage>> resolve(const std::string& host, uint16_t port) override {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    // NUMERICSERV: the port is ours, never a service name looked up in /etc/services.
    hints.ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG;
    addrinfo* raw = nullptr;
    const std::string service = std::to_string(port);
    int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &raw);
    CPtr<addrinfo, freeaddrinfo> list(raw);
    if (rc != 0) return make_error("could not resolve host " + host + ": " + gai_strerror(rc));
    std::vector<sockaddr_storage> out;
    for (const addrinfo* a = list.get(); a; a = a->ai_next) {
      if ((a->ai_family != AF_INET && a->ai_family != AF_INET6) || a->ai_addrlen > sizeof(sockaddr_storage))
        continue;
      sockaddr_storage s{};
      std::memcpy(&s, a->ai_addr, a->ai_addrlen);
      bool dup = false;
      for (const auto& o : out) dup = dup || same_endpoint(o, s);
      if (!dup) out.push_back(s);
    }
    if (out.empty()) return make_error("could not resolve host " + host + ": no addresses");
    return out;
  }
};

}  // namespace

std::unique_ptr<Resolver> system_resolver() { return std::make_unique<SystemResolver>(); }

std::string address_text(const sockaddr_storage& addr) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (addr.ss_family == AF_INET) {
    const auto& in = reinterpret_cast<const sockaddr_in&>(addr);
    inet_ntop(AF_INET, &in.sin_addr, buf, sizeof buf);
  } else if (addr.ss_family == AF_INET6) {
    const auto& in6 = reinterpret_cast<const sockaddr_in6&>(addr);
    inet_ntop(AF_INET6, &in6.sin6_addr, buf, sizeof buf);
  } else {
    return "(unknown address family)";
  }
  return buf;
}

bool same_endpoint(const sockaddr_storage& a, const sockaddr_storage& b) {
  if (a.ss_family != b.ss_family) return false;
  if (a.ss_family == AF_INET) {
    const auto& x = reinterpret_cast<const sockaddr_in&>(a);
    const auto& y = reinterpret_cast<const sockaddr_in&>(b);
    return x.sin_port == y.sin_port && x.sin_addr.s_addr == y.sin_addr.s_addr;
  }
  if (a.ss_family == AF_INET6) {
    const auto& x = reinterpret_cast<const sockaddr_in6&>(a);
    const auto& y = reinterpret_cast<const sockaddr_in6&>(b);
    // Scope ids matter for link-local; such addresses are refused by policy anyway, but an
    // exact comparison never hurts.
    return x.sin6_port == y.sin6_port && x.sin6_scope_id == y.sin6_scope_id &&
           std::memcmp(&x.sin6_addr, &y.sin6_addr, sizeof x.sin6_addr) == 0;
  }
  return false;
}

}  // namespace onemcp::broker
