// fuzz_upstream — what the upstream client parses of an upstream's bytes: SSE streams (in any
// chunking), newline-delimited stdio, and the JSON-RPC messages inside either.
// Input: the first byte picks where the rest is cut into two chunks; the rest is the stream.
// Checks: the SSE events are the same whatever the chunking; every event's data and every line
// goes through the JSON-RPC core without an exception; replies to the upstream's requests are
// JSON-RPC responses.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "upstream/rpc.h"
#include "upstream/sse.h"

namespace {

using namespace onemcp::upstream;
using nlohmann::json;

constexpr size_t kMax = 1 << 16;

std::vector<SseEvent> events(const std::vector<std::string_view>& chunks, bool& ok) {
  SseParser p(kMax);
  std::vector<SseEvent> out;
  ok = true;
  for (auto c : chunks) ok = p.feed(c, [&](const SseEvent& e) { out.push_back(e); }) && ok;
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view all(reinterpret_cast<const char*>(data) + 1, size - 1);
  const size_t cut = all.empty() ? 0 : data[0] % (all.size() + 1);

  bool ok_whole = false, ok_split = false;
  const auto whole = events({all}, ok_whole);
  const auto split = events({all.substr(0, cut), all.substr(cut)}, ok_split);
  if (ok_whole && ok_split) {
    if (whole.size() != split.size()) std::abort();
    for (size_t i = 0; i < whole.size(); ++i) {
      if (whole[i].data != split[i].data || whole[i].type != split[i].type || whole[i].id != split[i].id) {
        std::abort();
      }
    }
  }

  RpcCore core({[](json reply) {
                  if (!reply.is_object() || !reply.contains("id") ||
                      (!reply.contains("result") && !reply.contains("error"))) {
                    std::abort();
                  }
                  (void)reply.dump();  // must serialise (valid UTF-8)
                },
                [](const std::string&, const json&) {}, [](const std::string&) {}});
  auto call = core.begin(core.next_id(), [](const json&) {});
  for (const auto& e : whole) core.on_text(e.data);
  LineSplitter lines(kMax);
  lines.feed(all, [&](std::string_view l) { core.on_text(l); }, [](size_t) {});
  core.end(call);
  return 0;
}
