// auth/tokens.h — static bearer tokens: made by `1mcp token create`, kept in the config only as
// SHA-256 digests, and checked in constant time.
// Thread-safety: TokenSet is immutable after construction (const methods from any thread);
// generate_token is thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace onemcp::auth {

// What every token generate_token makes starts with, so a leaked one is recognisable (secret
// scanners, logs).
inline constexpr std::string_view kTokenPrefix = "1mcp_";

// A new token: kTokenPrefix and 32 bytes (256 bits) from the kernel's CSPRNG in base64url.
Result<std::string> generate_token();

struct NamedDigest {
  std::string name;
  std::string sha256_hex;  // 64 lowercase hex digits, as in the config
};

class TokenSet {
 public:
  // Entries whose digest is not 64 hex digits never match (the config schema refuses them).
  explicit TokenSet(const std::vector<NamedDigest>& entries);

  // The name of the entry whose digest is SHA-256(`presented`), if any. The presented token is
  // hashed and compared with every entry's digest by CRYPTO_memcmp, the whole list each time,
  // so the answer's timing depends neither on the token nor on where a match is. An empty token
  // never matches.
  std::optional<std::string> match(std::string_view presented) const;

  bool empty() const { return entries_.empty(); }

 private:
  struct Entry {
    std::string name;
    std::string digest;  // 32 raw bytes
  };
  std::vector<Entry> entries_;
};

}  // namespace onemcp::auth
