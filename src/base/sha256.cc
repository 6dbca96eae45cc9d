#include "base/sha256.h"

#include <openssl/evp.h>

#include <stdexcept>

namespace onemcp {

std::string sha256(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &n, EVP_sha256(), nullptr) != 1 || n != 32) {
    throw std::runtime_error("SHA-256 failed");  // only on allocation failure
  }
  return std::string(reinterpret_cast<const char*>(digest), n);
}

std::string sha256_hex(std::string_view data) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(64);
  for (unsigned char c : sha256(data)) {
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out;
}

}  // namespace onemcp
