#include "sandbox/child/landlock.h"

#include <fcntl.h>
#include <linux/landlock.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>

#include "base/unique_fd.h"

// The build host's <linux/landlock.h> may predate ABI 3+; the values are fixed kernel ABI.
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15)
#endif
#ifndef LANDLOCK_ACCESS_NET_BIND_TCP
#define LANDLOCK_ACCESS_NET_BIND_TCP (1ULL << 0)
#endif
#ifndef LANDLOCK_ACCESS_NET_CONNECT_TCP
#define LANDLOCK_ACCESS_NET_CONNECT_TCP (1ULL << 1)
#endif
#ifndef LANDLOCK_RULE_NET_PORT
#define LANDLOCK_RULE_NET_PORT 2
#endif
#ifndef LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET
#define LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0)
#endif
#ifndef LANDLOCK_SCOPE_SIGNAL
#define LANDLOCK_SCOPE_SIGNAL (1ULL << 1)
#endif
#ifndef __NR_landlock_create_ruleset
#define __NR_landlock_create_ruleset 444
#define __NR_landlock_add_rule 445
#define __NR_landlock_restrict_self 446
#endif

namespace onemcp::sandbox::child {
namespace {

// struct landlock_ruleset_attr as of ABI 6. The kernel accepts a shorter size from older
// callers, so the size passed is cut to the fields the running ABI knows.
struct RulesetAttr {
  uint64_t handled_access_fs;
  uint64_t handled_access_net;  // ABI >= 4
  uint64_t scoped;              // ABI >= 6
};
struct PathBeneathAttr {
  uint64_t allowed_access;
  int32_t parent_fd;
} __attribute__((packed));  // matches the kernel's packed struct landlock_path_beneath_attr

// struct landlock_net_port_attr (ABI >= 4): not packed, two u64.
struct NetPortAttr {
  uint64_t allowed_access;
  uint64_t port;
};

constexpr int kMaxKnownAbi = 7;

// Everything ABI 1 knows: the base for "handled".
constexpr uint64_t kFsAbi1 =
    LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_READ_FILE |
    LANDLOCK_ACCESS_FS_READ_DIR | LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE |
    LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_DIR | LANDLOCK_ACCESS_FS_MAKE_REG |
    LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_BLOCK |
    LANDLOCK_ACCESS_FS_MAKE_SYM;

uint64_t handled_fs(int abi) {
  uint64_t fs = kFsAbi1;
  if (abi >= 2) fs |= LANDLOCK_ACCESS_FS_REFER;
  if (abi >= 3) fs |= LANDLOCK_ACCESS_FS_TRUNCATE;
  if (abi >= 5) fs |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
  return fs;
}

constexpr uint64_t kReadRights = LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR;
// No EXECUTE (a script must not run binaries it wrote or found), no MAKE_CHAR/MAKE_BLOCK
// (device nodes), no IOCTL_DEV (device ioctls on nodes opened after the restriction).
constexpr uint64_t kWriteRights = kReadRights | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_TRUNCATE |
                                  LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE |
                                  LANDLOCK_ACCESS_FS_MAKE_DIR | LANDLOCK_ACCESS_FS_MAKE_REG |
                                  LANDLOCK_ACCESS_FS_MAKE_SYM | LANDLOCK_ACCESS_FS_MAKE_FIFO |
                                  LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_REFER;
// The only rights landlock_add_rule() accepts on a non-directory.
constexpr uint64_t kFileRights = LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE |
                                 LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_TRUNCATE |
                                 LANDLOCK_ACCESS_FS_IOCTL_DEV;

std::string errno_text(const std::string& what, int err) { return what + ": " + std::strerror(err); }

Status add_path(int ruleset, const std::string& path, uint64_t rights, uint64_t handled) {
  UniqueFd fd(::open(path.c_str(), O_PATH | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT || errno == ENOTDIR) return {};  // absent in this root: nothing to allow
    return make_error(errno_text("landlock: open " + path, errno));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return make_error(errno_text("landlock: stat " + path, errno));
  if (!S_ISDIR(st.st_mode)) rights &= kFileRights;
  // A right the running ABI does not handle cannot be granted (EINVAL); it is allowed anyway.
  PathBeneathAttr attr{rights & handled, fd.get()};
  if (attr.allowed_access == 0) return {};
  if (::syscall(__NR_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &attr, 0u) != 0) {
    return make_error(errno_text("landlock_add_rule " + path, errno));
  }
  return {};
}

}  // namespace

int landlock_abi() {
  long v = ::syscall(__NR_landlock_create_ruleset, nullptr, 0, LANDLOCK_CREATE_RULESET_VERSION);
  return v < 0 ? 0 : int(v);
}

Result<int> landlock_restrict(const LandlockPaths& paths) {
  int abi = landlock_abi();
  if (abi <= 0) return make_error("landlock: not supported by this kernel");
  if (::prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1) return make_error("landlock: no_new_privs is not set");
  abi = std::min(abi, kMaxKnownAbi);

  RulesetAttr attr{};
  attr.handled_access_fs = handled_fs(abi);
  size_t attr_size = sizeof(uint64_t);
  if (abi >= 4) {
    // Handled with only the `connect_ports` rules: every TCP bind and every other connect is
    // refused. (UDP is not covered by Landlock; the run's network namespace, holding only
    // loopback, is what keeps it off the network.)
    attr.handled_access_net = LANDLOCK_ACCESS_NET_BIND_TCP | LANDLOCK_ACCESS_NET_CONNECT_TCP;
    attr_size = 2 * sizeof(uint64_t);
  }
  if (abi >= 6) {
    // No connecting to abstract UNIX sockets and no signals outside the run's own domain
    // (the zygote, the supervisor, other runs).
    attr.scoped = LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | LANDLOCK_SCOPE_SIGNAL;
    attr_size = sizeof(RulesetAttr);
  }
  UniqueFd ruleset(int(::syscall(__NR_landlock_create_ruleset, &attr, attr_size, 0u)));
  if (!ruleset.valid()) return make_error(errno_text("landlock_create_ruleset", errno));
  // The ruleset fd must not leak into the run: it is O_CLOEXEC from the kernel and closed here.

  for (const auto& p : paths.read_only) {
    if (auto s = add_path(ruleset.get(), p, kReadRights, attr.handled_access_fs); !s) return s.error();
  }
  for (const auto& p : paths.read_write) {
    if (auto s = add_path(ruleset.get(), p, kWriteRights, attr.handled_access_fs); !s) return s.error();
  }
  if (abi >= 4) {
    for (uint16_t port : paths.connect_ports) {
      NetPortAttr np{LANDLOCK_ACCESS_NET_CONNECT_TCP, port};
      if (::syscall(__NR_landlock_add_rule, ruleset.get(), LANDLOCK_RULE_NET_PORT, &np, 0u) != 0)
        return make_error(errno_text("landlock_add_rule port " + std::to_string(port), errno));
    }
  }
  if (::syscall(__NR_landlock_restrict_self, ruleset.get(), 0u) != 0) {
    return make_error(errno_text("landlock_restrict_self", errno));
  }
  return abi;
}

}  // namespace onemcp::sandbox::child
