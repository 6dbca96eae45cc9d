// auth/jwt.h — JWT access tokens (JWS compact serialization) verified locally, as an OAuth 2.1
// resource server does: the signature with libcrypto against a JWK Set, then the claims
// (issuer, audience = this resource, lifetime, subject, scopes). No I/O: the keys and the time
// are given.
// Thread-safety: a Jwks is immutable once parsed and may be shared between threads (its keys are
// only read); verify_jwt is a pure function.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace onemcp::auth {

// Signature algorithms accepted (RFC 7518 and RFC 8037 names). Everything else is refused:
// "none", the HMAC family (a public key must never serve as a shared secret), and anything new.
enum class JwtAlg { RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA };

// Tokens larger than this are refused before any decoding.
inline constexpr size_t kMaxJwtBytes = 8192;

// A JWK Set: the public keys a token may be signed with.
class Jwks {
 public:
  // Parses a JWK Set document ({"keys": [...]}, at most 64 keys, 1 MiB). Keys of another type
  // or curve than RSA (2048 to 16384 bits), EC P-256/P-384 and OKP Ed25519, with "use" other
  // than "sig", with "key_ops" lacking "verify", or with an "alg" of another key type are
  // skipped. A malformed key of a supported type, private key material, or a set without any
  // usable key is an error.
  static Result<std::shared_ptr<const Jwks>> parse(std::string_view text);

  Jwks(const Jwks&) = delete;
  Jwks& operator=(const Jwks&) = delete;
  ~Jwks();

  struct Key;  // one usable public key (defined in jwt.cc)
  const std::vector<std::unique_ptr<Key>>& keys() const { return keys_; }
  size_t size() const { return keys_.size(); }

 private:
  Jwks();
  std::vector<std::unique_ptr<Key>> keys_;
};

// What a valid token must say, besides being signed by one of the keys.
struct JwtRules {
  std::string issuer;                        // "iss" must equal it exactly
  std::string audience;                      // "aud" (a string or an array) must contain it
  std::vector<std::string> required_scopes;  // each in "scope" (space-separated) or "scp"
  std::chrono::seconds leeway{60};           // allowed clock skew for exp, nbf and iat
};

enum class JwtStatus {
  ok,
  invalid,             // malformed, bad signature, wrong claims, expired, ...
  unknown_key,         // no key of the set has the token's "kid" (the set may be stale)
  insufficient_scope,  // valid, but a required scope is missing
};

struct JwtVerdict {
  JwtStatus status = JwtStatus::invalid;
  // Why it is not ok, fit to show the client (e.g. "the token has expired"); names no key
  // material and never repeats the token.
  std::string reason;
  // ok and insufficient_scope: who the token speaks for and what it grants.
  std::string issuer, subject;
  std::vector<std::string> scopes;
};

// Verifies `token` with `keys` at time `now`. In order: size, three base64url segments, the
// header (a JSON object; "crit" refused; "alg" accepted above and allowed by the key's type,
// curve and own "alg"; "typ", if any, "JWT" or "at+jwt"), the key ("kid" when given, else every
// key fit for "alg"), the signature, and only then the claims: "iss", "aud", "exp" (required),
// "nbf" and "iat" (when present; all three with `rules.leeway`), "sub" (a non-empty string),
// and the required scopes.
JwtVerdict verify_jwt(std::string_view token, const Jwks& keys, const JwtRules& rules,
                      std::chrono::system_clock::time_point now);

// Whether `token` has the shape of a JWS compact serialization (three dot-separated segments),
// to tell JWTs from opaque bearer tokens without verifying anything.
bool looks_like_jwt(std::string_view token);

}  // namespace onemcp::auth
