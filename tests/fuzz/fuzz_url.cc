// fuzz_url — policy::parse_url, absolute and relative to a base (a redirect Location).
// Input: "<base>\n<input>" when it holds a newline (the base is parsed first and must parse for
// the relative step), else the whole input alone. Whatever parses must serialize to a URL that
// parses back to the same Url: the broker vets one URL and curl fetches its serialization.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "policy/egress.h"

namespace {

using onemcp::policy::kMaxUrlBytes;
using onemcp::policy::parse_url;
using onemcp::policy::Url;

void check_round_trip(const Url& u) {
  std::string s = u.serialize();
  // Percent-encoding may grow a URL beyond the input cap; such a serialization is refused by
  // design, so only shorter ones must parse back.
  if (s.size() > kMaxUrlBytes) return;
  auto again = parse_url(s);
  if (!again) __builtin_trap();
  if (!(again.value() == u)) __builtin_trap();
  if (again.value().serialize() != s) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);

  if (auto u = parse_url(in)) check_round_trip(u.value());

  size_t nl = in.find('\n');
  if (nl == std::string_view::npos) return 0;
  auto base = parse_url(in.substr(0, nl));
  if (!base) return 0;
  if (auto u = parse_url(in.substr(nl + 1), &base.value())) check_round_trip(u.value());
  return 0;
}
