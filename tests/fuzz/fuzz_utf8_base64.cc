// fuzz_utf8_base64 — base/utf8 and base/base64 on arbitrary bytes.
// sanitize_utf8 always yields valid UTF-8 (and leaves valid input alone); is_valid_utf8 agrees
// with an independent decoder; base64 decode(encode(x)) == x; decoding garbage never crashes and
// what decodes re-encodes to the same length.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/base64.h"
#include "base/utf8.h"

namespace {

// RFC 3629 by decoding code points: shortest form, no surrogates, at most U+10FFFF.
bool reference_valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<uint8_t>(s[i]);
    size_t len;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, cp = c & 0x07;
    } else {
      return false;
    }
    if (s.size() - i < len) return false;
    for (size_t k = 1; k < len; ++k) {
      auto b = static_cast<uint8_t>(s[i + k]);
      if ((b & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (b & 0x3F);
    }
    static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);

  bool valid = onemcp::is_valid_utf8(in);
  if (valid != reference_valid_utf8(in)) __builtin_trap();
  std::string clean = onemcp::sanitize_utf8(in);
  if (!onemcp::is_valid_utf8(clean)) __builtin_trap();
  if (valid && clean != in) __builtin_trap();
  if (onemcp::sanitize_utf8(clean) != clean) __builtin_trap();

  std::string enc = onemcp::base64_encode(in);
  if (enc.size() != (size + 2) / 3 * 4) __builtin_trap();
  auto dec = onemcp::base64_decode(enc);
  if (!dec || *dec != in) __builtin_trap();

  if (auto garbage = onemcp::base64_decode(in)) {
    if (onemcp::base64_encode(*garbage).size() != size) __builtin_trap();
  }
  return 0;
}
