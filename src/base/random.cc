#include "base/random.h"

#include <errno.h>
#include <sys/random.h>

#include <cstdlib>
#include <vector>

namespace onemcp {

std::string random_hex(size_t bytes) {
  std::vector<unsigned char> b(bytes);
  size_t got = 0;
  while (got < bytes) {
    ssize_t n = ::getrandom(b.data() + got, bytes - got, 0);
    if (n > 0) {
      got += size_t(n);
    } else if (n < 0 && errno != EINTR) {
      std::abort();
    }
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  s.reserve(2 * bytes);
  for (unsigned char c : b) {
    s += kHex[c >> 4];
    s += kHex[c & 15];
  }
  return s;
}

}  // namespace onemcp
