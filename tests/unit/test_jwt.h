// Test keys and tokens for the JWT tests: key pairs made with libcrypto, their public JWKs, and
// JWS compact tokens signed with any algorithm name (also ones the verifier must refuse).
#pragma once

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

#include "auth/base64url.h"

namespace onemcp::testing_jwt {

using nlohmann::json;

struct KeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using Key = std::shared_ptr<EVP_PKEY>;

inline Key make_key(const std::string& kind) {
  EVP_PKEY* k = nullptr;
  if (kind == "RSA") k = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048});
  if (kind == "RSA1024") k = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{1024});
  if (kind == "P-256") k = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  if (kind == "P-384") k = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384");
  if (kind == "Ed25519") k = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  if (!k) throw std::runtime_error("keygen failed: " + kind);
  return Key(k, KeyFree());
}

inline std::string bn_param(EVP_PKEY* k, const char* name, int pad = 0) {
  BIGNUM* bn = nullptr;
  if (EVP_PKEY_get_bn_param(k, name, &bn) != 1) throw std::runtime_error("no param");
  std::string out(pad ? size_t(pad) : size_t(BN_num_bytes(bn)), '\0');
  if (pad) {
    BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), pad);
  } else {
    BN_bn2bin(bn, reinterpret_cast<unsigned char*>(out.data()));
  }
  BN_free(bn);
  return out;
}

// The public JWK of `k` (RSA, EC or OKP by its type), with `kid` and extra members.
inline json public_jwk(const Key& k, const std::string& kid, json extra = json::object()) {
  json j;
  const int id = EVP_PKEY_get_base_id(k.get());
  if (id == EVP_PKEY_RSA) {
    j = {{"kty", "RSA"},
         {"n", auth::base64url_encode(bn_param(k.get(), OSSL_PKEY_PARAM_RSA_N))},
         {"e", auth::base64url_encode(bn_param(k.get(), OSSL_PKEY_PARAM_RSA_E))}};
  } else if (id == EVP_PKEY_EC) {
    const int size = EVP_PKEY_get_bits(k.get()) == 256 ? 32 : 48;
    j = {{"kty", "EC"},
         {"crv", size == 32 ? "P-256" : "P-384"},
         {"x", auth::base64url_encode(bn_param(k.get(), OSSL_PKEY_PARAM_EC_PUB_X, size))},
         {"y", auth::base64url_encode(bn_param(k.get(), OSSL_PKEY_PARAM_EC_PUB_Y, size))}};
  } else {
    unsigned char raw[32];
    size_t len = sizeof raw;
    EVP_PKEY_get_raw_public_key(k.get(), raw, &len);
    j = {{"kty", "OKP"},
         {"crv", "Ed25519"},
         {"x", auth::base64url_encode(std::string(reinterpret_cast<char*>(raw), len))}};
  }
  if (!kid.empty()) j["kid"] = kid;
  for (auto& [name, v] : extra.items()) j[name] = v;
  return j;
}

inline const EVP_MD* digest_for(const std::string& alg) {
  if (alg.ends_with("256")) return EVP_sha256();
  if (alg.ends_with("384")) return EVP_sha384();
  if (alg.ends_with("512")) return EVP_sha512();
  return nullptr;
}

// The JWS signature of `input` by `k` as algorithm `alg` would make it (ES*: r || s).
inline std::string sign(const Key& k, const std::string& alg, const std::string& input) {
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> md(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_PKEY_CTX* pctx = nullptr;
  const EVP_MD* digest = alg == "EdDSA" ? nullptr : digest_for(alg);
  if (EVP_DigestSignInit(md.get(), &pctx, digest, nullptr, k.get()) != 1) {
    throw std::runtime_error("sign init");
  }
  if (alg.starts_with("PS")) {
    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST);
    EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, digest);
  }
  size_t len = 0;
  auto in = reinterpret_cast<const unsigned char*>(input.data());
  EVP_DigestSign(md.get(), nullptr, &len, in, input.size());
  std::string sig(len, '\0');
  if (EVP_DigestSign(md.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, in,
                     input.size()) != 1) {
    throw std::runtime_error("sign");
  }
  sig.resize(len);
  if (EVP_PKEY_get_base_id(k.get()) == EVP_PKEY_EC) {
    const int size = EVP_PKEY_get_bits(k.get()) == 256 ? 32 : 48;
    auto p = reinterpret_cast<const unsigned char*>(sig.data());
    ECDSA_SIG* es = d2i_ECDSA_SIG(nullptr, &p, long(sig.size()));
    std::string raw(size_t(2 * size), '\0');
    BN_bn2binpad(ECDSA_SIG_get0_r(es), reinterpret_cast<unsigned char*>(raw.data()), size);
    BN_bn2binpad(ECDSA_SIG_get0_s(es), reinterpret_cast<unsigned char*>(raw.data()) + size, size);
    ECDSA_SIG_free(es);
    return raw;
  }
  return sig;
}

inline std::string hmac_sha256(const std::string& key, const std::string& input) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), int(key.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), out, &len);
  return std::string(reinterpret_cast<char*>(out), len);
}

inline std::string b64(const json& j) { return auth::base64url_encode(j.dump()); }

// header.payload.signature with `alg` in the header (unless the header sets its own).
inline std::string make_token(const Key& k, const std::string& alg, const json& header,
                              const json& claims) {
  json h = header;
  if (!h.contains("alg")) h["alg"] = alg;
  std::string input = b64(h) + "." + b64(claims);
  return input + "." + auth::base64url_encode(sign(k, alg, input));
}

}  // namespace onemcp::testing_jwt
