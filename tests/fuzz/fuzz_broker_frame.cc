// fuzz_broker_frame — a run's broker requests as server::make_broker_handler decodes them.
// Input: one frame payload (what a sandboxed script can send). The policy denies everything and
// the resolver resolves nothing (and traps if asked: a denied host must never be resolved), so no
// request reaches the network. Checks: every answer is valid JSON, an object with "ok": false, a
// non-empty "error" string, and the request's id echoed when it is an unsigned integer.
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "server/egress.h"

namespace {

using nlohmann::json;
using namespace onemcp;

class NoResolver final : public broker::Resolver {
 public:
  Result<std::vector<sockaddr_storage>> resolve(const std::string&, uint16_t) override {
    __builtin_trap();  // decide_host denies every host before any resolution
  }
};

policy::NetworkPolicy deny_everything() {
  policy::NetworkPolicy p;
  p.allowed_domains.clear();
  p.denied_domains = {"*.test"};
  p.deny_ip_literals = true;
  p.block_private_ranges = true;
  p.max_body_bytes = 1024;
  p.max_redirects = 0;
  return p;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string frame(reinterpret_cast<const char*>(data), size);
  NoResolver resolver;
  auto handler = server::make_broker_handler(deny_everything(), resolver, broker::FetchLimits{});
  std::atomic<bool> cancelled{false};
  std::string answer;
  try {
    answer = handler(frame, std::chrono::steady_clock::now() + std::chrono::seconds(60), cancelled);
  } catch (...) {
    __builtin_trap();  // the handler answers every frame itself; nothing may escape it
  }

  if (!json::accept(answer)) __builtin_trap();
  json a = json::parse(answer);
  if (!a.is_object() || a.value("ok", json()) != false) __builtin_trap();
  if (!a.contains("error") || !a["error"].is_string() || a["error"].get<std::string>().empty())
    __builtin_trap();

  json req = json::parse(frame, nullptr, false);
  json id = req.is_object() && req.contains("id") && req["id"].is_number_unsigned() ? req["id"] : json();
  if (a.value("id", json()) != id) __builtin_trap();
  return 0;
}
