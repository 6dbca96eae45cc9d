#include "server/egress.h"

#include <arpa/inet.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "base/base64.h"
#include "base/json_depth.h"
#include "policy/egress.h"

namespace onemcp::server {

using nlohmann::json;

Result<std::unique_ptr<MapResolver>> MapResolver::parse(const std::vector<std::string>& entries) {
  auto r = std::unique_ptr<MapResolver>(new MapResolver);
  for (const auto& e : entries) {
    auto eq = e.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == e.size())
      return make_error("--resolve " + e + ": expected NAME=ADDRESS[,ADDRESS...]");
    std::string name = e.substr(0, eq);
    std::transform(name.begin(), name.end(), name.begin(), ::tolower);
    std::vector<std::string> addrs;
    size_t start = eq + 1;
    while (start <= e.size()) {
      size_t comma = e.find(',', start);
      std::string a = e.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      if (!policy::parse_ip_address(a))
        return make_error("--resolve " + e + ": " + a + " is not an IP address");
      addrs.push_back(a);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    r->table_.emplace_back(name, std::move(addrs));
  }
  return r;
}

Result<std::vector<sockaddr_storage>> MapResolver::resolve(const std::string& host, uint16_t port) {
  for (const auto& [pattern, addrs] : table_) {
    bool match = pattern == host ||
                 (pattern.rfind("*.", 0) == 0 && host.size() > pattern.size() - 1 &&
                  host.compare(host.size() - (pattern.size() - 1), pattern.size() - 1, pattern, 1) == 0);
    if (!match) continue;
    std::vector<sockaddr_storage> out;
    for (const auto& a : addrs) {
      auto ss = policy::parse_ip_address(a);
      if (!ss) continue;  // checked by parse()
      if (ss->ss_family == AF_INET) reinterpret_cast<sockaddr_in*>(&*ss)->sin_port = htons(port);
      if (ss->ss_family == AF_INET6) reinterpret_cast<sockaddr_in6*>(&*ss)->sin6_port = htons(port);
      out.push_back(*ss);
    }
    return out;
  }
  return make_error("cannot resolve " + host);
}

sandbox::BrokerHandler make_broker_handler(const policy::NetworkPolicy& policy,
                                           broker::Resolver& resolver,
                                           const broker::FetchLimits& limits, CodeModeOps code_mode) {
  auto fetcher = std::make_shared<broker::Fetcher>(policy, resolver, limits);
  return [fetcher, code_mode = std::move(code_mode)](const std::string& frame, std::chrono::steady_clock::time_point deadline,
                   const std::atomic<bool>& cancelled) {
    json id = nullptr;
    auto fail = [&](const std::string& why) {
      return json{{"id", id}, {"ok", false}, {"error", why}}.dump(-1, ' ', false,
                                                                  json::error_handler_t::replace);
    };
    // The frame comes from untrusted code: bounded nesting, and no lookup that can throw.
    json j = json_depth_within(frame) ? json::parse(frame, nullptr, false) : json();
    if (!j.is_object()) return fail("malformed request");
    if (j.contains("id") && j["id"].is_number_unsigned()) id = j["id"];
    auto op = j.find("op");
    if (op != j.end() && (*op == "mcp" || *op == "mcp_list" || *op == "mcp_search")) {
      if (!code_mode) return fail("no upstream MCP tools are available to this run");
      return code_mode(j, deadline, cancelled);
    }
    if (op == j.end() || !op->is_string() || *op != "fetch") return fail("unknown operation");
    broker::FetchRequest req;
    try {
      req.method = j.value("method", "GET");
      req.url = j.at("url").get<std::string>();
      for (const auto& h : j.value("headers", json::array())) {
        req.headers.emplace_back(h.at(0).get<std::string>(), h.at(1).get<std::string>());
      }
      if (j.contains("body") && !j["body"].is_null()) {
        auto body = base64_decode(j["body"].get<std::string>());
        if (!body) return fail("malformed request body");
        req.body = std::move(*body);
      }
      // Any JSON number the script sends: past 600 s or not positive is clamped or defaulted
      // below (a float too large for an integer must never be converted to one).
      uint64_t asked = 30000;
      if (auto t = j.find("timeoutMs"); t != j.end() && !t->is_null()) {
        if (t->is_number_unsigned()) {
          asked = t->get<uint64_t>();
        } else if (t->is_number_integer()) {
          asked = 0;  // negative
        } else if (t->is_number_float()) {
          const double ms = t->get<double>();
          asked = ms >= 600000 ? 600000 : ms >= 1 ? uint64_t(ms) : 0;
        } else {
          return fail("malformed request: timeoutMs must be a number");
        }
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                      deadline - std::chrono::steady_clock::now())
                      .count();
      if (left <= 0) return fail("the run is out of time");
      req.timeout_ms = uint32_t(std::min<uint64_t>({asked ? asked : 30000, uint64_t(left), 600000}));
    } catch (const std::exception&) {
      return fail("malformed request");
    }
    req.cancel = &cancelled;
    auto res = fetcher->fetch(req);
    if (!res) {
      // The script's fetch() says "fetch failed: " itself.
      std::string why = res.error().message;
      if (why.rfind("fetch failed: ", 0) == 0) why.erase(0, 14);
      return fail(why);
    }
    json headers = json::array();
    for (const auto& [k, v] : res->headers) headers.push_back({k, v});
    return json{{"id", id},
                {"ok", true},
                {"status", res->status},
                {"statusText", res->status_text},
                {"headers", headers},
                {"body", base64_encode(res->body)},
                {"url", res->url},
                {"redirected", res->redirected}}
        .dump(-1, ' ', false, json::error_handler_t::replace);
  };
}

sandbox::BrokerTunnels make_broker_tunnels(const policy::NetworkPolicy& policy,
                                           broker::Resolver& resolver,
                                           const broker::FetchLimits& limits) {
  // A fetch's body cap, plus room for what TLS adds around it (handshake, records).
  constexpr uint64_t kTlsOverheadBytes = 64 * 1024;
  auto fetcher = std::make_shared<broker::Fetcher>(policy, resolver, limits);
  sandbox::BrokerTunnels t;
  t.max_body_bytes = policy.max_body_bytes;
  t.max_bytes = policy.max_body_bytes + kTlsOverheadBytes;
  t.open = [fetcher](const std::string& host, uint16_t port, std::chrono::steady_clock::time_point deadline,
                     const std::atomic<bool>& cancelled) -> Result<UniqueFd> {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) return make_error("the run is out of time");
    return fetcher->connect(host, port, uint32_t(std::min<long long>(left, 600000)), &cancelled);
  };
  return t;
}

}  // namespace onemcp::server
