// base/random.h — identifiers nobody can guess: bytes from the kernel's CSPRNG (getrandom), as
// lowercase hex.
// Thread-safety: pure function (the kernel's generator is thread-safe).
#pragma once

#include <cstddef>
#include <string>

namespace onemcp {

// 2 × `bytes` hex digits. Aborts if the kernel has no generator to offer (getrandom missing):
// an id that could be guessed would be worse than no server.
std::string random_hex(size_t bytes);

}  // namespace onemcp
