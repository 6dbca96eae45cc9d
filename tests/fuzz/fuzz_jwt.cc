// fuzz_jwt — auth/: JWT verification and JWK Set parsing on arbitrary bytes.
// The first byte picks the parser. verify_jwt against keys made at start (their private halves
// are thrown away) must never accept anything: no input may pass as signed. A JWK Set that
// parses has at least one key. base64url decoding is canonical: what decodes re-encodes to the
// same text.
#include <openssl/evp.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "auth/base64url.h"
#include "auth/jwt.h"

namespace {

using onemcp::auth::base64url_decode;
using onemcp::auth::base64url_encode;

std::string raw_public(EVP_PKEY* k) {
  unsigned char buf[64];
  size_t len = sizeof buf;
  EVP_PKEY_get_raw_public_key(k, buf, &len);
  return std::string(reinterpret_cast<char*>(buf), len);
}

// Ed25519 keys with kids the corpus uses; the fuzzer knows no private key.
const onemcp::auth::Jwks& keys() {
  static const std::shared_ptr<const onemcp::auth::Jwks> set = [] {
    nlohmann::json doc = {{"keys", nlohmann::json::array()}};
    for (const char* kid : {"k", "ed", ""}) {
      EVP_PKEY* k = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
      nlohmann::json jwk = {
          {"kty", "OKP"}, {"crv", "Ed25519"}, {"x", base64url_encode(raw_public(k))}};
      if (*kid) jwk["kid"] = kid;
      doc["keys"].push_back(jwk);
      EVP_PKEY_free(k);
    }
    auto parsed = onemcp::auth::Jwks::parse(doc.dump());
    if (!parsed) __builtin_trap();
    return *parsed;
  }();
  return *set;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0: {
      onemcp::auth::JwtRules rules;
      rules.issuer = "https://issuer.example";
      rules.audience = "https://mcp.example/mcp";
      auto v = onemcp::auth::verify_jwt(
          in, keys(), rules,
          std::chrono::system_clock::time_point(std::chrono::seconds(1'800'000'000)));
      if (v.status == onemcp::auth::JwtStatus::ok ||
          v.status == onemcp::auth::JwtStatus::insufficient_scope || v.reason.empty()) {
        __builtin_trap();  // accepted without a signature anyone could make
      }
      break;
    }
    case 1: {
      auto set = onemcp::auth::Jwks::parse(in);
      if (set && (*set)->size() == 0) __builtin_trap();
      break;
    }
    default: {
      auto bytes = base64url_decode(in);
      if (bytes && base64url_encode(*bytes) != in) __builtin_trap();
      break;
    }
  }
  return 0;
}
