// runtimes/js/web_crypto.h — what run_js's crypto.subtle computes, on the host's libcrypto
// (OpenSSL 3): the SHA digests and HMAC. The prelude checks the script's arguments and keeps the
// keys; js_runtime.cc hands the bytes over. init() fetches every algorithm and uses it once in
// the zygote, so a run (a fork of it) only computes: it loads no provider, reads no config file
// and needs no system call the worker's seccomp filter was not already allowing.
// Thread-safety: init() once, before any other call; after that the functions share only the
// algorithms fetched by init(), which they do not change.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "base/result.h"

namespace onemcp::js::webcrypto {

enum class Hash { sha1, sha256, sha384, sha512 };

// The Web Crypto names, exactly as written here ("SHA-1", "SHA-256", "SHA-384", "SHA-512"): the
// prelude has already matched the script's spelling case-insensitively.
std::optional<Hash> hash_named(std::string_view name);

// Loads libcrypto's algorithms for the whole process. Once, before serving runs.
Status init();

// A digest or an HMAC: at most 64 bytes (SHA-512).
struct Bytes {
  std::array<uint8_t, 64> data{};
  size_t size = 0;
};

Result<Bytes> digest(Hash hash, std::span<const uint8_t> data);
Result<Bytes> hmac(Hash hash, std::span<const uint8_t> key, std::span<const uint8_t> data);
// Whether `signature` is the HMAC of `data`, compared in constant time (only its length, which
// is no secret, decides sooner).
Result<bool> hmac_verify(Hash hash, std::span<const uint8_t> key, std::span<const uint8_t> data,
                         std::span<const uint8_t> signature);

}  // namespace onemcp::js::webcrypto
