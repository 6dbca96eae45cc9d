// fuzz_frames — the broker channel framing (ipc::FrameReader) and the JSON a worker hands the
// supervisor (decode_request, decode_report).
// Input: byte 0 seeds the chunk sizes, the rest is the byte stream. The stream is fed to one
// reader in those chunks and to another in one piece; both must yield exactly the frames a
// straightforward reading of the stream gives, and feed() may refuse only when the frame at the
// reader's position announces more than kMaxFrameBytes. Every frame (and the whole stream) goes
// through both decoders; what decodes must encode and decode again to the same encoding.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "ipc/wire.h"

namespace {

using onemcp::ipc::ChildReport;
using onemcp::ipc::FrameReader;

uint32_t length_at(const std::string& s, size_t off) {
  uint32_t n = 0;
  for (size_t i = 0; i < 4; ++i) n |= uint32_t(uint8_t(s[off + i])) << (8 * i);
  return n;
}

// The frames of `s` in order, stopping at the first incomplete one.
std::vector<std::string> reference_frames(const std::string& s) {
  std::vector<std::string> out;
  size_t off = 0;
  while (s.size() - off >= 4) {
    uint32_t n = length_at(s, off);
    if (s.size() - off - 4 < n) break;
    out.push_back(s.substr(off + 4, n));
    off += 4 + n;
  }
  return out;
}

// Feeds `s` in chunks of `sizes` (cycled; 0 = the rest at once), draining after every feed.
std::vector<std::string> read_frames(const std::string& s, const std::vector<size_t>& sizes) {
  FrameReader r;
  std::vector<std::string> out;
  size_t consumed = 0;  // stream offset of the next frame the reader will return
  size_t fed = 0;
  for (size_t k = 0; fed < s.size(); ++k) {
    size_t n = sizes.empty() || sizes[k % sizes.size()] == 0 ? s.size() - fed
                                                              : sizes[k % sizes.size()];
    if (n > s.size() - fed) n = s.size() - fed;
    bool ok = r.feed(s.data() + fed, n);
    fed += n;
    // A refusal must be about the frame at the reader's position.
    if (!ok && !(fed - consumed >= 4 && length_at(s, consumed) > onemcp::ipc::kMaxFrameBytes))
      __builtin_trap();
    while (auto f = r.next()) {
      consumed += 4 + f->size();
      out.push_back(std::move(*f));
    }
  }
  if (r.next()) __builtin_trap();
  return out;
}

void check_decoders(const std::string& bytes) {
  if (auto req = onemcp::ipc::decode_request(bytes)) {
    std::string enc = onemcp::ipc::encode(req.value());
    auto again = onemcp::ipc::decode_request(enc);
    if (!again || onemcp::ipc::encode(again.value()) != enc) __builtin_trap();
  }
  ChildReport rep = onemcp::ipc::decode_report(bytes);
  std::string enc = onemcp::ipc::encode(rep);
  if (onemcp::ipc::encode(onemcp::ipc::decode_report(enc)) != enc) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  uint32_t seed = data[0];
  std::string stream(reinterpret_cast<const char*>(data) + 1, size - 1);

  std::vector<size_t> sizes;
  for (int i = 0; i < 8; ++i) {
    seed = seed * 1103515245u + 12345u;
    sizes.push_back((seed >> 16) % 9);  // 0..8 bytes; 0 feeds the rest at once
  }
  auto expected = reference_frames(stream);
  if (read_frames(stream, sizes) != expected) __builtin_trap();
  if (read_frames(stream, {}) != expected) __builtin_trap();

  // frame() is the inverse of reading.
  for (const auto& f : expected) {
    if (reference_frames(onemcp::ipc::frame(f)) != std::vector<std::string>{f}) __builtin_trap();
    check_decoders(f);
  }
  check_decoders(stream);
  return 0;
}
