// auth/base64url.h — base64url without padding (RFC 7515 §2), the encoding of JWS segments, JWK
// members and the tokens `1mcp token create` makes.
// Thread-safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace onemcp::auth {

std::string base64url_encode(std::string_view bytes);

// Strict: only A-Z a-z 0-9 '-' '_', no padding, no whitespace, and the unused low bits of the
// last character must be zero, so every byte string has exactly one accepted encoding (a token
// cannot be altered without changing its bytes). nullopt otherwise.
std::optional<std::string> base64url_decode(std::string_view text);

}  // namespace onemcp::auth
