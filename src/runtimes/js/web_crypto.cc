#include "runtimes/js/web_crypto.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <memory>
#include <string>

namespace onemcp::js::webcrypto {
namespace {

struct HashInfo {
  Hash hash;
  const char* web_name;      // as Web Crypto spells it
  const char* openssl_name;  // as libcrypto fetches it
  size_t size;
};
constexpr HashInfo kHashes[] = {
    {Hash::sha1, "SHA-1", "SHA1", 20},
    {Hash::sha256, "SHA-256", "SHA2-256", 32},
    {Hash::sha384, "SHA-384", "SHA2-384", 48},
    {Hash::sha512, "SHA-512", "SHA2-512", 64},
};
constexpr size_t kHashCount = sizeof kHashes / sizeof kHashes[0];

struct MdFree {
  void operator()(EVP_MD* p) const { EVP_MD_free(p); }
};
struct MacFree {
  void operator()(EVP_MAC* p) const { EVP_MAC_free(p); }
};
struct MacCtxFree {
  void operator()(EVP_MAC_CTX* p) const { EVP_MAC_CTX_free(p); }
};
using MacCtx = std::unique_ptr<EVP_MAC_CTX, MacCtxFree>;

// Per hash, in kHashes' order: the digest, and an HMAC context with that digest (and a throwaway
// key: libcrypto copies only a keyed HMAC context) that each call copies and re-keys, so no call
// fetches an algorithm.
struct Algorithms {
  std::unique_ptr<EVP_MD, MdFree> md[kHashCount];
  MacCtx hmac[kHashCount];
};

Algorithms& algorithms() {
  static Algorithms a;
  return a;
}

size_t index_of(Hash hash) { return static_cast<size_t>(hash); }

// libcrypto wants a pointer even for no bytes.
const uint8_t* nonnull(std::span<const uint8_t> s) {
  static const uint8_t kNothing = 0;
  return s.data() ? s.data() : &kNothing;
}

}  // namespace

std::optional<Hash> hash_named(std::string_view name) {
  for (const HashInfo& h : kHashes)
    if (name == h.web_name) return h.hash;
  return std::nullopt;
}

Status init() {
  // No config file: the worker's algorithms must not depend on the host's openssl.cnf (nor can
  // the jail read it). No atexit handler: the zygote and its runs leave with _exit.
  if (OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG | OPENSSL_INIT_NO_ATEXIT, nullptr) != 1)
    return make_error("cannot initialise libcrypto");
  std::unique_ptr<EVP_MAC, MacFree> mac(EVP_MAC_fetch(nullptr, "HMAC", nullptr));
  if (!mac) return make_error("libcrypto has no HMAC");
  Algorithms& a = algorithms();
  static const uint8_t kProbe[] = {'a', 'b', 'c'};
  for (size_t i = 0; i < kHashCount; ++i) {
    const HashInfo& h = kHashes[i];
    a.md[i].reset(EVP_MD_fetch(nullptr, h.openssl_name, nullptr));
    if (!a.md[i] || size_t(EVP_MD_get_size(a.md[i].get())) != h.size)
      return make_error(std::string("libcrypto has no ") + h.web_name);
    MacCtx ctx(EVP_MAC_CTX_new(mac.get()));
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                                            const_cast<char*>(h.openssl_name), 0),
                           OSSL_PARAM_construct_end()};
    if (!ctx || EVP_MAC_init(ctx.get(), kProbe, sizeof kProbe, params) != 1)
      return make_error(std::string("libcrypto has no HMAC with ") + h.web_name);
    a.hmac[i] = std::move(ctx);
    // Each once: whatever libcrypto sets up on first use is set up here, before the forks.
    if (auto d = digest(h.hash, kProbe); !d) return d.error();
    if (auto m = hmac(h.hash, kProbe, kProbe); !m) return m.error();
  }
  return {};
}

Result<Bytes> digest(Hash hash, std::span<const uint8_t> data) {
  const EVP_MD* md = algorithms().md[index_of(hash)].get();
  if (!md) return make_error("libcrypto is not initialised");
  Bytes out;
  unsigned int n = 0;
  if (EVP_Digest(nonnull(data), data.size(), out.data.data(), &n, md, nullptr) != 1 ||
      n > out.data.size())
    return make_error("the digest failed");
  out.size = n;
  return out;
}

Result<Bytes> hmac(Hash hash, std::span<const uint8_t> key, std::span<const uint8_t> data) {
  const EVP_MAC_CTX* keyed = algorithms().hmac[index_of(hash)].get();
  if (!keyed) return make_error("libcrypto is not initialised");
  MacCtx ctx(EVP_MAC_CTX_dup(keyed));
  Bytes out;
  size_t n = 0;
  if (!ctx || EVP_MAC_init(ctx.get(), nonnull(key), key.size(), nullptr) != 1 ||
      EVP_MAC_update(ctx.get(), nonnull(data), data.size()) != 1 ||
      EVP_MAC_final(ctx.get(), out.data.data(), &n, out.data.size()) != 1)
    return make_error("HMAC failed");
  out.size = n;
  return out;
}

Result<bool> hmac_verify(Hash hash, std::span<const uint8_t> key, std::span<const uint8_t> data,
                         std::span<const uint8_t> signature) {
  auto mac = hmac(hash, key, data);
  if (!mac) return mac.error();
  if (signature.size() != mac->size) return false;
  return CRYPTO_memcmp(nonnull(signature), mac->data.data(), mac->size) == 0;
}

}  // namespace onemcp::js::webcrypto
