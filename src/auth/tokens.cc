#include "auth/tokens.h"

#include <openssl/crypto.h>
#include <sys/random.h>

#include <cerrno>
#include <cstring>

#include "auth/base64url.h"
#include "base/sha256.h"

namespace onemcp::auth {
namespace {

std::optional<std::string> from_hex(std::string_view hex) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  if (hex.size() % 2) return std::nullopt;
  std::string out;
  for (size_t i = 0; i < hex.size(); i += 2) {
    int hi = nibble(hex[i]), lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += char(hi << 4 | lo);
  }
  return out;
}

}  // namespace

Result<std::string> generate_token() {
  unsigned char bytes[32];
  size_t got = 0;
  while (got < sizeof bytes) {
    ssize_t n = ::getrandom(bytes + got, sizeof bytes - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return make_error(std::string("cannot read random bytes: ") + std::strerror(errno));
    got += size_t(n);
  }
  std::string token(kTokenPrefix);
  token += base64url_encode(std::string_view(reinterpret_cast<const char*>(bytes), sizeof bytes));
  OPENSSL_cleanse(bytes, sizeof bytes);
  return token;
}

TokenSet::TokenSet(const std::vector<NamedDigest>& entries) {
  for (const auto& e : entries) {
    auto digest = from_hex(e.sha256_hex);
    if (digest && digest->size() == 32) entries_.push_back({e.name, std::move(*digest)});
  }
}

std::optional<std::string> TokenSet::match(std::string_view presented) const {
  if (presented.empty()) return std::nullopt;
  const std::string digest = sha256(presented);
  const Entry* found = nullptr;
  for (const auto& e : entries_) {
    // No early exit: every entry is compared whatever matched before.
    bool same = CRYPTO_memcmp(digest.data(), e.digest.data(), digest.size()) == 0;
    if (same && !found) found = &e;
  }
  if (!found) return std::nullopt;
  return found->name;
}

}  // namespace onemcp::auth
