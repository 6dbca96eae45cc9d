#include "auth/jwt.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <nlohmann/json.hpp>
#include <optional>

#include "auth/base64url.h"
#include "base/c_ptr.h"
#include "base/json_depth.h"

namespace onemcp::auth {

using nlohmann::json;

namespace {

constexpr size_t kMaxJwksBytes = 1u << 20;
constexpr size_t kMaxJwksKeys = 64;

using Pkey = CPtr<EVP_PKEY, EVP_PKEY_free>;
using PkeyCtx = CPtr<EVP_PKEY_CTX, EVP_PKEY_CTX_free>;
using MdCtx = CPtr<EVP_MD_CTX, EVP_MD_CTX_free>;
using Bn = CPtr<BIGNUM, BN_free>;
using ParamBld = CPtr<OSSL_PARAM_BLD, OSSL_PARAM_BLD_free>;
using Params = CPtr<OSSL_PARAM, OSSL_PARAM_free>;
using EcdsaSig = CPtr<ECDSA_SIG, ECDSA_SIG_free>;

// libcrypto reports failures on a per-thread error queue; a failed check must not leave entries
// there for unrelated code on this thread (e.g. a TLS handshake) to trip over.
struct ClearErrors {
  ~ClearErrors() { ERR_clear_error(); }
};

enum class KeyType { rsa, p256, p384, ed25519 };

// Never throws: nlohmann can throw even in non-throwing mode (e.g. a number out of range).
json parse_object(std::string_view text) {
  if (!json_depth_within(text)) return json(json::value_t::discarded);
  try {
    json j = json::parse(text, nullptr, false);
    return j.is_object() ? j : json(json::value_t::discarded);
  } catch (const std::exception&) {
    return json(json::value_t::discarded);
  }
}

std::optional<JwtAlg> alg_from_name(std::string_view name) {
  static constexpr std::pair<std::string_view, JwtAlg> kAlgs[] = {
      {"RS256", JwtAlg::RS256}, {"RS384", JwtAlg::RS384}, {"RS512", JwtAlg::RS512},
      {"PS256", JwtAlg::PS256}, {"PS384", JwtAlg::PS384}, {"PS512", JwtAlg::PS512},
      {"ES256", JwtAlg::ES256}, {"ES384", JwtAlg::ES384}, {"EdDSA", JwtAlg::EdDSA}};
  for (const auto& [n, a] : kAlgs) {
    if (n == name) return a;
  }
  return std::nullopt;
}

// The one key type each algorithm may be used with: a token cannot pick another (algorithm
// confusion).
KeyType key_type_of(JwtAlg alg) {
  switch (alg) {
    case JwtAlg::ES256:
      return KeyType::p256;
    case JwtAlg::ES384:
      return KeyType::p384;
    case JwtAlg::EdDSA:
      return KeyType::ed25519;
    default:
      return KeyType::rsa;
  }
}

const EVP_MD* digest_of(JwtAlg alg) {
  switch (alg) {
    case JwtAlg::RS256:
    case JwtAlg::PS256:
    case JwtAlg::ES256:
      return EVP_sha256();
    case JwtAlg::RS384:
    case JwtAlg::PS384:
    case JwtAlg::ES384:
      return EVP_sha384();
    case JwtAlg::RS512:
    case JwtAlg::PS512:
      return EVP_sha512();
    case JwtAlg::EdDSA:
      return nullptr;  // Ed25519 hashes internally
  }
  return nullptr;
}

bool is_pss(JwtAlg alg) {
  return alg == JwtAlg::PS256 || alg == JwtAlg::PS384 || alg == JwtAlg::PS512;
}

// A base64url member of a JWK, decoded; empty when missing or malformed.
std::string member_bytes(const json& jwk, const char* name) {
  auto it = jwk.find(name);
  if (it == jwk.end() || !it->is_string()) return {};
  return base64url_decode(it->get_ref<const std::string&>()).value_or("");
}

Result<Pkey> rsa_key(const json& jwk) {
  std::string n = member_bytes(jwk, "n"), e = member_bytes(jwk, "e");
  if (n.empty() || e.empty() || e.size() > 8) return make_error("RSA key without valid n and e");
  auto bn = [](const std::string& b) {
    return Bn(BN_bin2bn(reinterpret_cast<const unsigned char*>(b.data()), int(b.size()), nullptr));
  };
  Bn bn_n = bn(n), bn_e = bn(e);
  ParamBld bld(OSSL_PARAM_BLD_new());
  if (!bn_n || !bn_e || !bld ||
      !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) ||
      !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get())) {
    return make_error("RSA key: out of memory");
  }
  int bits = BN_num_bits(bn_n.get());
  if (bits < 2048 || bits > 16384) {
    return make_error("RSA key of " + std::to_string(bits) + " bits (2048 to 16384 accepted)");
  }
  if (!BN_is_odd(bn_e.get()) || BN_is_one(bn_e.get()))
    return make_error("RSA key with a bad exponent");
  Params params(OSSL_PARAM_BLD_to_param(bld.get()));
  PkeyCtx ctx(EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr));
  EVP_PKEY* raw = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
    return make_error("RSA key rejected by libcrypto");
  }
  return Pkey(raw);
}

Result<Pkey> ec_key(const json& jwk, KeyType type) {
  const size_t size = type == KeyType::p256 ? 32 : 48;
  std::string x = member_bytes(jwk, "x"), y = member_bytes(jwk, "y");
  if (x.size() != size || y.size() != size) return make_error("EC key without valid x and y");
  std::string point = "\x04" + x + y;  // uncompressed SEC 1 point
  ParamBld bld(OSSL_PARAM_BLD_new());
  if (!bld ||
      !OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME,
                                       type == KeyType::p256 ? "P-256" : "P-384", 0) ||
      !OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                        point.size())) {
    return make_error("EC key: out of memory");
  }
  Params params(OSSL_PARAM_BLD_to_param(bld.get()));
  PkeyCtx ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  EVP_PKEY* raw = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
    return make_error("EC key rejected by libcrypto");
  }
  Pkey key(raw);
  // fromdata does not promise that the point lies on the curve.
  PkeyCtx check(EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr));
  if (!check || EVP_PKEY_public_check(check.get()) != 1)
    return make_error("EC key: not a point of the curve");
  return key;
}

Result<Pkey> ed25519_key(const json& jwk) {
  std::string x = member_bytes(jwk, "x");
  if (x.size() != 32) return make_error("Ed25519 key without a valid x");
  EVP_PKEY* raw = EVP_PKEY_new_raw_public_key(
      EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(x.data()), x.size());
  if (!raw) return make_error("Ed25519 key rejected by libcrypto");
  return Pkey(raw);
}

std::string string_member(const json& j, const char* name) {
  auto it = j.find(name);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// JWS signatures of ECDSA are r || s, each the size of the curve; libcrypto verifies DER.
std::optional<std::string> ecdsa_der(std::string_view sig, size_t size) {
  if (sig.size() != 2 * size) return std::nullopt;
  auto bytes = reinterpret_cast<const unsigned char*>(sig.data());
  Bn r(BN_bin2bn(bytes, int(size), nullptr)), s(BN_bin2bn(bytes + size, int(size), nullptr));
  EcdsaSig es(ECDSA_SIG_new());
  if (!r || !s || !es || ECDSA_SIG_set0(es.get(), r.get(), s.get()) != 1) return std::nullopt;
  r.release();  // owned by `es` now
  s.release();
  unsigned char* der = nullptr;
  int n = i2d_ECDSA_SIG(es.get(), &der);
  if (n <= 0) return std::nullopt;
  std::string out(reinterpret_cast<const char*>(der), size_t(n));
  OPENSSL_free(der);
  return out;
}

}  // namespace

struct Jwks::Key {
  std::string kid;  // empty when the JWK has none
  std::string alg;  // the JWK's own "alg", empty when it has none
  KeyType type;
  Pkey pkey;
};

Jwks::Jwks() = default;
Jwks::~Jwks() = default;

Result<std::shared_ptr<const Jwks>> Jwks::parse(std::string_view text) {
  ClearErrors clear;
  if (text.size() > kMaxJwksBytes) return make_error("JWK Set larger than 1 MiB");
  json doc = parse_object(text);
  if (doc.is_discarded() || !doc.contains("keys") || !doc["keys"].is_array()) {
    return make_error("not a JWK Set (a JSON object with a \"keys\" array)");
  }
  if (doc["keys"].size() > kMaxJwksKeys) return make_error("JWK Set with more than 64 keys");
  std::shared_ptr<Jwks> set(new Jwks());
  size_t index = 0;
  for (const json& jwk : doc["keys"]) {
    const std::string where = "keys[" + std::to_string(index++) + "]";
    if (!jwk.is_object()) return make_error(where + ": not an object");
    std::string use = string_member(jwk, "use");
    if (jwk.contains("use") && use != "sig") continue;
    if (auto ops = jwk.find("key_ops"); ops != jwk.end()) {
      if (!ops->is_array() || std::find(ops->begin(), ops->end(), json("verify")) == ops->end()) {
        continue;
      }
    }
    std::string kty = string_member(jwk, "kty"), crv = string_member(jwk, "crv");
    std::optional<KeyType> type;
    if (kty == "RSA") type = KeyType::rsa;
    if (kty == "EC" && crv == "P-256") type = KeyType::p256;
    if (kty == "EC" && crv == "P-384") type = KeyType::p384;
    if (kty == "OKP" && crv == "Ed25519") type = KeyType::ed25519;
    if (!type) continue;  // a key type this server does not verify with
    if (jwk.contains("d") || jwk.contains("k")) {
      return make_error(where + ": holds private key material; publish public keys only");
    }
    if (*type == KeyType::rsa) {
      // Too weak (or absurdly large) to be trusted: unusable, like a key of another type.
      std::string n = member_bytes(jwk, "n");
      Bn bn(BN_bin2bn(reinterpret_cast<const unsigned char*>(n.data()), int(n.size()), nullptr));
      const int bits = bn ? BN_num_bits(bn.get()) : 0;
      if (bits > 0 && (bits < 2048 || bits > 16384)) continue;
    }
    auto key = *type == KeyType::rsa       ? rsa_key(jwk)
               : *type == KeyType::ed25519 ? ed25519_key(jwk)
                                           : ec_key(jwk, *type);
    if (!key) return make_error(where + ": " + key.error().message);
    std::string alg = string_member(jwk, "alg");
    if (jwk.contains("alg")) {
      auto a = alg_from_name(alg);
      if (!a || key_type_of(*a) != *type) continue;  // an alg this key may not be used with here
    }
    set->keys_.push_back(std::make_unique<Key>(
        Key{string_member(jwk, "kid"), std::move(alg), *type, std::move(*key)}));
  }
  if (set->keys_.empty()) return make_error("JWK Set without any usable signature key");
  return std::shared_ptr<const Jwks>(std::move(set));
}

namespace {

bool verify_signature(const Jwks::Key& key, JwtAlg alg, std::string_view signing_input,
                      std::string_view signature) {
  std::string der;
  if (key.type == KeyType::p256 || key.type == KeyType::p384) {
    auto d = ecdsa_der(signature, key.type == KeyType::p256 ? 32 : 48);
    if (!d) return false;
    der = std::move(*d);
    signature = der;
  }
  MdCtx md(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;  // owned by `md`
  const EVP_MD* digest = digest_of(alg);
  if (!md || EVP_DigestVerifyInit(md.get(), &pctx, digest, nullptr, key.pkey.get()) != 1) {
    return false;
  }
  if (key.type == KeyType::rsa) {
    // RFC 7518 §3.5: PSS with MGF1 of the same hash and a salt as long as the hash.
    if (is_pss(alg) ? (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
                       EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1 ||
                       EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, digest) != 1)
                    : EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1) {
      return false;
    }
  }
  return EVP_DigestVerify(md.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                          signature.size(),
                          reinterpret_cast<const unsigned char*>(signing_input.data()),
                          signing_input.size()) == 1;
}

JwtVerdict fail(std::string reason, JwtStatus status = JwtStatus::invalid) {
  JwtVerdict v;
  v.status = status;
  v.reason = std::move(reason);
  return v;
}

// A NumericDate claim: absent (nullopt with *ok true) or a number (else *ok false).
std::optional<double> numeric_date(const json& claims, const char* name, bool* ok) {
  *ok = true;
  auto it = claims.find(name);
  if (it == claims.end()) return std::nullopt;
  if (!it->is_number()) {
    *ok = false;
    return std::nullopt;
  }
  double v = it->get<double>();
  if (!std::isfinite(v)) *ok = false;
  return v;
}

}  // namespace

bool looks_like_jwt(std::string_view token) {
  return std::count(token.begin(), token.end(), '.') == 2;
}

JwtVerdict verify_jwt(std::string_view token, const Jwks& keys, const JwtRules& rules,
                      std::chrono::system_clock::time_point now) {
  ClearErrors clear;
  if (token.size() > kMaxJwtBytes) return fail("the token is too large");
  if (std::count(token.begin(), token.end(), '.') == 4) {
    return fail("encrypted tokens (JWE) are not accepted");
  }
  if (!looks_like_jwt(token)) return fail("the token is malformed");
  const size_t dot1 = token.find('.'), dot2 = token.find('.', dot1 + 1);
  const std::string_view header_b64 = token.substr(0, dot1),
                         payload_b64 = token.substr(dot1 + 1, dot2 - dot1 - 1),
                         signature_b64 = token.substr(dot2 + 1);
  auto header_text = base64url_decode(header_b64);
  auto payload_text = base64url_decode(payload_b64);
  auto signature = base64url_decode(signature_b64);
  if (!header_text || !payload_text || !signature || header_b64.empty() || payload_b64.empty() ||
      signature->empty()) {
    return fail("the token is malformed");
  }
  json header = parse_object(*header_text);
  if (header.is_discarded()) return fail("the token is malformed");
  // An extension this server does not know could change what the signature means.
  if (header.contains("crit")) return fail("the token has critical header extensions");
  auto alg_it = header.find("alg");
  if (alg_it == header.end() || !alg_it->is_string()) return fail("the token names no algorithm");
  const std::string alg_name = alg_it->get<std::string>();
  auto alg = alg_from_name(alg_name);
  if (!alg) return fail("the token's algorithm is not accepted");
  if (auto typ = header.find("typ"); typ != header.end()) {
    std::string t = typ->is_string() ? typ->get<std::string>() : "";
    std::transform(t.begin(), t.end(), t.begin(), ::tolower);
    if (t.starts_with("application/")) t = t.substr(12);
    if (t != "jwt" && t != "at+jwt") return fail("the token's type is not accepted");
  }
  const bool has_kid = header.contains("kid");
  if (has_kid && !header["kid"].is_string()) return fail("the token is malformed");
  const std::string kid = has_kid ? header["kid"].get<std::string>() : "";

  bool kid_found = false, candidate = false, verified = false;
  for (const auto& key : keys.keys()) {
    if (has_kid && key->kid != kid) continue;
    kid_found = true;
    // Only the key type the algorithm belongs to, and only an algorithm the key allows.
    if (key->type != key_type_of(*alg)) continue;
    if (!key->alg.empty() && key->alg != alg_name) continue;
    candidate = true;
    if (verify_signature(*key, *alg, token.substr(0, dot2), *signature)) {
      verified = true;
      break;
    }
  }
  if (!verified) {
    // A key the set does not have (yet): the caller may fetch the set again.
    if (!(has_kid ? kid_found : candidate)) {
      return fail("the token's signing key is unknown", JwtStatus::unknown_key);
    }
    if (!candidate) return fail("the token's algorithm does not match its key");
    return fail("the token's signature is invalid");
  }

  // Only signed claims are looked at.
  json claims = parse_object(*payload_text);
  if (claims.is_discarded()) return fail("the token's claims are malformed");
  if (string_member(claims, "iss") != rules.issuer || rules.issuer.empty()) {
    return fail("the token's issuer is not trusted here");
  }
  bool audience_ok = false;
  if (auto aud = claims.find("aud"); aud != claims.end()) {
    if (aud->is_string()) audience_ok = *aud == rules.audience;
    if (aud->is_array()) {
      audience_ok = std::find(aud->begin(), aud->end(), json(rules.audience)) != aud->end();
    }
  }
  if (!audience_ok) return fail("the token's audience does not include this resource");
  bool ok_exp, ok_nbf, ok_iat;
  auto exp = numeric_date(claims, "exp", &ok_exp);
  auto nbf = numeric_date(claims, "nbf", &ok_nbf);
  auto iat = numeric_date(claims, "iat", &ok_iat);
  if (!ok_exp || !ok_nbf || !ok_iat) return fail("the token's time claims are malformed");
  if (!exp) return fail("the token has no expiry (exp)");
  const double t = std::chrono::duration<double>(now.time_since_epoch()).count();
  const double leeway = double(rules.leeway.count());
  if (t >= *exp + leeway) return fail("the token has expired");
  if (nbf && *nbf > t + leeway) return fail("the token is not valid yet");
  if (iat && *iat > t + leeway) return fail("the token was issued in the future");
  std::string sub = string_member(claims, "sub");
  if (sub.empty()) return fail("the token has no subject (sub)");

  JwtVerdict v;
  v.issuer = string_member(claims, "iss");
  v.subject = std::move(sub);
  auto add_scopes = [&v](std::string_view list) {
    while (!list.empty()) {
      size_t sp = list.find(' ');
      std::string_view s = list.substr(0, sp);
      if (!s.empty()) v.scopes.emplace_back(s);
      list = sp == std::string_view::npos ? std::string_view() : list.substr(sp + 1);
    }
  };
  if (auto scope = claims.find("scope"); scope != claims.end() && scope->is_string()) {
    add_scopes(scope->get_ref<const std::string&>());
  }
  if (auto scp = claims.find("scp"); scp != claims.end()) {
    if (scp->is_string()) add_scopes(scp->get_ref<const std::string&>());
    if (scp->is_array()) {
      for (const auto& s : *scp) {
        if (s.is_string()) v.scopes.push_back(s.get<std::string>());
      }
    }
  }
  for (const auto& need : rules.required_scopes) {
    if (std::find(v.scopes.begin(), v.scopes.end(), need) == v.scopes.end()) {
      v.status = JwtStatus::insufficient_scope;
      v.reason = "the token lacks a required scope";
      return v;
    }
  }
  v.status = JwtStatus::ok;
  return v;
}

}  // namespace onemcp::auth
