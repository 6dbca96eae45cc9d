#include "server/host_check.h"

#include <algorithm>
#include <cctype>

namespace onemcp::server {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// "name:port" → {"name", "port"}; "[v6]:port" → {"[v6]", "port"}; no port → {"name", ""}.
// False when it is not of that form (e.g. an unbracketed IPv6 address, an empty port).
bool split_authority(const std::string& a, std::string* name, std::string* port) {
  size_t colon;
  if (!a.empty() && a[0] == '[') {
    size_t end = a.find(']');
    if (end == std::string::npos) return false;
    *name = a.substr(0, end + 1);
    if (end + 1 == a.size()) {
      port->clear();
      return true;
    }
    if (a[end + 1] != ':') return false;
    colon = end + 1;
  } else {
    colon = a.find(':');
    *name = a.substr(0, colon);
    if (colon == std::string::npos) {
      port->clear();
      return !name->empty();
    }
    if (a.find(':', colon + 1) != std::string::npos) return false;
  }
  *port = a.substr(colon + 1);
  return !name->empty() && !port->empty() && port->size() <= 5 &&
         std::all_of(port->begin(), port->end(), [](unsigned char c) { return std::isdigit(c); });
}

}  // namespace

bool HostCheck::authority_allowed(const std::string& authority) const {
  std::string name, port;
  if (!split_authority(authority, &name, &port)) return false;
  const uint16_t listening = port_;
  // A name of ours with the listening port; without a port only when that is HTTP's default.
  const bool our_port = port.empty() ? listening == 80 : port == std::to_string(listening);
  if (listening != 0 && our_port) {
    if (o_.loopback_names && (name == "localhost" || name == "127.0.0.1" || name == "[::1]")) {
      return true;
    }
    if (!o_.bind_host.empty() && name == o_.bind_host) return true;
  }
  for (const std::string& entry : o_.allowed_hosts) {
    std::string entry_name, entry_port;
    if (!split_authority(entry, &entry_name, &entry_port) || entry_name != name) continue;
    // A listed name without a port: as a proxy forwards it (no port), or with our port.
    if (entry_port.empty() ? port.empty() || (listening != 0 && our_port) : entry_port == port) {
      return true;
    }
  }
  return false;
}

bool HostCheck::host_allowed(std::string_view host) const {
  if (host.empty()) return true;
  return authority_allowed(lower(host));
}

bool HostCheck::origin_allowed(std::string_view origin_raw) const {
  const std::string origin = lower(origin_raw);
  if (std::find(o_.allowed_origins.begin(), o_.allowed_origins.end(), origin) !=
      o_.allowed_origins.end()) {
    return true;
  }
  std::string authority;
  if (origin.starts_with("http://")) {
    authority = origin.substr(7);
  } else if (origin.starts_with("https://")) {
    authority = origin.substr(8);
  } else {
    return false;  // "null", other schemes, garbage
  }
  if (authority.find('/') != std::string::npos) return false;
  // Pages this server serves (under any accepted Host) and the operator's listed names.
  return authority_allowed(authority);
}

}  // namespace onemcp::server
