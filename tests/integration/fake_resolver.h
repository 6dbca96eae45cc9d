// fake_resolver.h — a broker::Resolver for tests: host names map to loopback addresses from a
// table, never DNS. Each name has a sequence of answers (the n-th lookup gets the n-th, the last
// one repeats), so tests can play DNS rebinding; "*.suffix" entries match any one-label prefix.
#pragma once

#include <algorithm>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "broker/resolver.h"
#include "http_fixture.h"

namespace onemcp::testing {

class FakeResolver final : public broker::Resolver {
 public:
  void set(const std::string& host, std::vector<std::string> ips) { sequence(host, {std::move(ips)}); }
  void sequence(const std::string& host, std::vector<std::vector<std::string>> answers) {
    std::lock_guard lock(mu_);
    answers_[host] = std::move(answers);
  }
  int lookups(const std::string& host) {
    std::lock_guard lock(mu_);
    return lookups_[host];
  }
  Result<std::vector<sockaddr_storage>> resolve(const std::string& host, uint16_t port) override {
    std::lock_guard lock(mu_);
    int n = lookups_[host]++;
    auto it = answers_.find(host);
    if (it == answers_.end()) {
      size_t dot = host.find('.');
      if (dot != std::string::npos) it = answers_.find("*" + host.substr(dot));
    }
    if (it == answers_.end()) return make_error("could not resolve host " + host + ": not in the test map");
    const auto& seq = it->second;
    const auto& ips = seq[std::min<size_t>(static_cast<size_t>(n), seq.size() - 1)];
    std::vector<sockaddr_storage> out;
    for (const auto& ip : ips) out.push_back(ip_addr(ip, port));
    return out;
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::vector<std::vector<std::string>>> answers_;
  std::map<std::string, int> lookups_;
};

}  // namespace onemcp::testing
