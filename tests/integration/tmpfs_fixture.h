// tests/integration/tmpfs_fixture.h — a small tmpfs for tests of a full or read-only disk,
// mounted in a mount namespace of the calling thread only: the host never sees it, and it goes
// away with the thread's namespace even when the test dies.
// Thread-safety: call from the test's thread; threads it starts afterwards share its namespace.
#pragma once

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "base/result.h"
#include "base/unique_fd.h"

namespace onemcp::test_tmpfs {

// With ONEMCP_REQUIRE_KERNEL_FEATURES=1 a tmpfs that cannot be mounted fails the test.
inline bool required() {
  const char* v = std::getenv("ONEMCP_REQUIRE_KERNEL_FEATURES");
  return v && std::string(v) == "1";
}

// Moves the calling thread into a new mount namespace (every mount in it private) and mounts a
// tmpfs of `bytes` (whole pages) at `dir`, which must exist. `options` adds mount options ("ro").
inline Status mount_private(const std::string& dir, uint64_t bytes,
                            const std::string& options = "") {
  if (::unshare(CLONE_NEWNS) != 0)
    return make_error(std::string("unshare(CLONE_NEWNS): ") + std::strerror(errno));
  // Nothing mounted here may propagate back to the host's namespace.
  if (::mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
    return make_error(std::string("making / private: ") + std::strerror(errno));
  const std::string data = "size=" + std::to_string(bytes) + ",mode=0700";
  unsigned long flags = options == "ro" ? MS_RDONLY : 0;
  if (::mount("tmpfs", dir.c_str(), "tmpfs", flags, data.c_str()) != 0)
    return make_error("mount tmpfs on " + dir + ": " + std::strerror(errno));
  return {};
}

// Writes `path` until its file system is full; the bytes written.
inline uint64_t fill(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
  if (!fd.valid()) return 0;
  static const std::string chunk(4096, 'f');
  uint64_t total = 0;
  for (;;) {
    ssize_t n = ::write(fd.get(), chunk.data(), chunk.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return total;
    total += uint64_t(n);
  }
}

}  // namespace onemcp::test_tmpfs
