#include "capsule/crypto.h"

#include <sodium.h>

#include <cstdlib>
#include <mutex>
#include <utility>

#include "base/sha256.h"

namespace onemcp::capsule {
namespace {

void init_sodium() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (::sodium_init() < 0) std::abort();  // no usable randomness: nothing here can be trusted
  });
}

std::string_view as_chars(const uint8_t* p, size_t n) {
  return {reinterpret_cast<const char*>(p), n};
}
const uint8_t* as_bytes(std::string_view s) { return reinterpret_cast<const uint8_t*>(s.data()); }

}  // namespace

static_assert(crypto_sign_PUBLICKEYBYTES == 32 && crypto_sign_SECRETKEYBYTES == 64 &&
              crypto_sign_SEEDBYTES == 32 && crypto_sign_BYTES == kSignatureBytes);

SigningKey SigningKey::generate() {
  init_sodium();
  SigningKey k;
  ::crypto_sign_keypair(k.pk_.data(), k.sk_.data());
  return k;
}

SigningKey SigningKey::from_seed(const Seed& seed) {
  init_sodium();
  SigningKey k;
  ::crypto_sign_seed_keypair(k.pk_.data(), k.sk_.data(), seed.data());
  return k;
}

SigningKey::SigningKey(SigningKey&& o) noexcept : sk_(o.sk_), pk_(o.pk_) {
  ::sodium_memzero(o.sk_.data(), o.sk_.size());
}

SigningKey& SigningKey::operator=(SigningKey&& o) noexcept {
  if (this != &o) {
    sk_ = o.sk_;
    pk_ = o.pk_;
    ::sodium_memzero(o.sk_.data(), o.sk_.size());
  }
  return *this;
}

SigningKey::~SigningKey() { ::sodium_memzero(sk_.data(), sk_.size()); }

Seed SigningKey::seed() const {
  Seed s;
  ::crypto_sign_ed25519_sk_to_seed(s.data(), sk_.data());
  return s;
}

std::string SigningKey::sign(std::string_view message) const {
  std::string sig(kSignatureBytes, '\0');
  ::crypto_sign_detached(reinterpret_cast<uint8_t*>(sig.data()), nullptr, as_bytes(message),
                         message.size(), sk_.data());
  return sig;
}

bool verify_signature(const PublicKey& key, std::string_view message, std::string_view signature) {
  init_sodium();
  if (signature.size() != kSignatureBytes) return false;
  return ::crypto_sign_verify_detached(as_bytes(signature), as_bytes(message), message.size(),
                                       key.data()) == 0;
}

std::string sha256(std::string_view data) { return onemcp::sha256(data); }

std::string sha256_hex(std::string_view data) { return onemcp::sha256_hex(data); }

std::string to_hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out;
}

std::optional<std::string> from_hex(std::string_view hex) {
  auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  if (hex.size() % 2 != 0) return std::nullopt;
  std::string out(hex.size() / 2, '\0');
  for (size_t i = 0; i < out.size(); ++i) {
    int hi = digit(hex[2 * i]), lo = digit(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out[i] = static_cast<char>(hi << 4 | lo);
  }
  return out;
}

std::optional<PublicKey> public_key_from_hex(std::string_view hex) {
  auto bytes = from_hex(hex);
  if (!bytes || bytes->size() != PublicKey{}.size()) return std::nullopt;
  PublicKey k;
  for (size_t i = 0; i < k.size(); ++i) k[i] = static_cast<uint8_t>((*bytes)[i]);
  return k;
}

std::string public_key_hex(const PublicKey& key) {
  return to_hex(as_chars(key.data(), key.size()));
}

std::string random_hex(size_t bytes) {
  init_sodium();
  std::string raw(bytes, '\0');
  ::randombytes_buf(raw.data(), raw.size());
  return to_hex(raw);
}

}  // namespace onemcp::capsule
