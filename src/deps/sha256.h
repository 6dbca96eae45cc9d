// deps/sha256.h — SHA-256 (libsodium) as lower-case hex, for cache keys.
// Thread-safety: pure function.
#pragma once

#include <string>
#include <string_view>

namespace onemcp::deps {

std::string sha256_hex(std::string_view data);

}  // namespace onemcp::deps
