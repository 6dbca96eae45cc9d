// capsule/crypto.h — the primitives capsules are built on (libsodium): SHA-256, Ed25519, hex.
// Thread-safety: pure functions and value types; libsodium is initialised once, on first use.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace onemcp::capsule {

using PublicKey = std::array<uint8_t, 32>;
using Seed = std::array<uint8_t, 32>;
inline constexpr size_t kSignatureBytes = 64;

// An Ed25519 key pair. Move-only; the secret half is wiped when the object dies.
class SigningKey {
 public:
  static SigningKey generate();
  static SigningKey from_seed(const Seed& seed);  // deterministic: same seed, same key pair

  SigningKey(SigningKey&& o) noexcept;
  SigningKey& operator=(SigningKey&& o) noexcept;
  SigningKey(const SigningKey&) = delete;
  SigningKey& operator=(const SigningKey&) = delete;
  ~SigningKey();

  const PublicKey& public_key() const { return pk_; }
  Seed seed() const;                                 // what the secret key file stores
  std::string sign(std::string_view message) const;  // kSignatureBytes raw bytes

 private:
  SigningKey() = default;
  std::array<uint8_t, 64> sk_{};  // libsodium layout: seed || public key
  PublicKey pk_{};
};

bool verify_signature(const PublicKey& key, std::string_view message, std::string_view signature);

std::string sha256(std::string_view data);      // 32 raw bytes
std::string sha256_hex(std::string_view data);  // 64 lowercase hex digits

std::string to_hex(std::string_view bytes);  // lowercase
// Strict: lowercase hex digits only, even length; nullopt otherwise.
std::optional<std::string> from_hex(std::string_view hex);
std::optional<PublicKey> public_key_from_hex(std::string_view hex);
std::string public_key_hex(const PublicKey& key);

// `bytes` bytes from the OS CSPRNG, as hex (unique temporary names).
std::string random_hex(size_t bytes);

}  // namespace onemcp::capsule
