#include "sandbox/child/seccomp.h"

#include <fcntl.h>
#include <linux/audit.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <string>

#include "base/unique_fd.h"

// Syscalls newer than the build host's headers; numbers are fixed by the x86_64 ABI.
#ifndef __NR_open_tree_attr
#define __NR_open_tree_attr 467
#endif
#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

namespace onemcp::sandbox::child {
namespace {

static_assert(sizeof(void*) == 8 && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "the filter and its hand-written prefix assume x86_64");
#if !defined(__x86_64__)
#error "seccomp deny-list is written for x86_64 only"
#endif

std::string errno_text(const char* what, int err) {
  return std::string(what) + ": " + std::strerror(err);
}

// libseccomp reports errors as negative errno values.
Status check(int rc, const char* what) {
  if (rc < 0) return make_error(errno_text(what, -rc));
  return {};
}

// Unconditional EPERM: kernel-attack surface (tracing, mounts, keyrings, bpf, module and kexec
// loading, clock and memory-policy setters) and any new program image (execve/execveat).
constexpr int kDenyEperm[] = {
    __NR_ptrace,
    __NR_process_vm_readv,
    __NR_process_vm_writev,
    __NR_mount,
    __NR_umount2,
    __NR_move_mount,
    __NR_open_tree,
    __NR_open_tree_attr,  // open_tree() plus mount attributes: same family, newer syscall
    __NR_fsopen,
    __NR_fsconfig,
    __NR_fsmount,
    __NR_fspick,
    __NR_mount_setattr,
    __NR_pivot_root,
    __NR_chroot,
    __NR_setns,
    __NR_keyctl,
    __NR_add_key,
    __NR_request_key,
    __NR_bpf,
    __NR_perf_event_open,
    __NR_userfaultfd,
    __NR_kexec_load,
    __NR_kexec_file_load,
    __NR_init_module,
    __NR_finit_module,
    __NR_delete_module,
    __NR_open_by_handle_at,
    __NR_name_to_handle_at,
    __NR_iopl,
    __NR_ioperm,
    __NR_reboot,
    __NR_swapon,
    __NR_swapoff,
    __NR_acct,
    __NR_quotactl,
    __NR_quotactl_fd,
    __NR_syslog,
    __NR_settimeofday,
    __NR_clock_settime,
    __NR_clock_adjtime,
    __NR_adjtimex,
    __NR_mbind,
    __NR_set_mempolicy,
    __NR_migrate_pages,
    __NR_move_pages,
    __NR_pidfd_getfd,
    __NR_fanotify_init,
    __NR_execve,
    __NR_execveat,
    __NR_lookup_dcookie,
    __NR_vhangup,
    __NR_nfsservctl,
    __NR_uselib,
};

// ENOSYS rather than EPERM so libraries take their fallback path: glibc retries clone3 as
// clone (whose flags register the filter can inspect; clone3 passes them in memory), and
// io_uring users fall back to ordinary syscalls (io_uring ops bypass seccomp entirely).
// inotify reports every open and read of a watched file, and concurrent runs read the same files
// of the shared read-only root: a channel between runs (and a view of the host's activity);
// without it, file watchers poll, as on a kernel built without inotify.
constexpr int kDenyEnosys[] = {
    __NR_clone3,
    __NR_io_uring_setup,
    __NR_io_uring_enter,
    __NR_io_uring_register,
    __NR_inotify_init,
    __NR_inotify_init1,
};

// New namespaces would undo the zygote's isolation (and user namespaces give back
// capabilities over them). CLONE_NEWTIME is checked for unshare only: in clone()'s flags word
// bit 0x80 belongs to the exit-signal field (CSIGNAL), and clone() cannot create a time
// namespace at all.
constexpr uint64_t kCloneNamespaceBits[] = {
    CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET,
};

// Socket families other than AF_UNIX(1), AF_INET(2), AF_INET6(10): netlink, packet, vsock,
// bluetooth, ... are large kernel surfaces a script never needs. Written as a cover of the
// complement because a libseccomp rule can compare an argument only once: 0, 3..9, and > 10.
// The 64-bit "> 10" also catches garbage in the upper half of the register (fail closed).
constexpr int kBadSmallFamilies[] = {AF_UNSPEC, 3, 4, 5, 6, 7, 8, 9};
static_assert(AF_UNIX == 1 && AF_INET == 2 && AF_INET6 == 10);

// Low 4 bits of the socket type (SOCK_TYPE_MASK); the rest are SOCK_NONBLOCK/SOCK_CLOEXEC.
constexpr uint64_t kSockTypeMask = 0xf;

Status add(scmp_filter_ctx ctx, uint32_t action, int nr, unsigned n = 0, const scmp_arg_cmp* cmp = nullptr) {
  int rc = seccomp_rule_add_exact_array(ctx, action, nr, n, cmp);
  if (rc < 0) return make_error("seccomp_rule_add(" + std::to_string(nr) + "): " + std::strerror(-rc));
  return {};
}

Status add_rules(scmp_filter_ctx ctx) {
  const uint32_t eperm = SCMP_ACT_ERRNO(EPERM);
  for (int nr : kDenyEperm) {
    if (auto s = add(ctx, eperm, nr); !s) return s;
  }
  for (int nr : kDenyEnosys) {
    if (auto s = add(ctx, SCMP_ACT_ERRNO(ENOSYS), nr); !s) return s;
  }

  // clone(flags, ...) and unshare(flags): one masked test per bit, since a rule may compare
  // an argument only once and "any of these bits" is an OR.
  for (uint64_t bit : kCloneNamespaceBits) {
    scmp_arg_cmp c = SCMP_A0(SCMP_CMP_MASKED_EQ, bit, bit);
    if (auto s = add(ctx, eperm, __NR_clone, 1, &c); !s) return s;
    if (auto s = add(ctx, eperm, __NR_unshare, 1, &c); !s) return s;
  }
  {
    scmp_arg_cmp c = SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_NEWTIME, CLONE_NEWTIME);
    if (auto s = add(ctx, eperm, __NR_unshare, 1, &c); !s) return s;
  }

  // socket(domain, type, protocol).
  const uint32_t eafnosupport = SCMP_ACT_ERRNO(EAFNOSUPPORT);
  for (int family : kBadSmallFamilies) {
    scmp_arg_cmp c = SCMP_A0(SCMP_CMP_EQ, uint64_t(family));
    if (auto s = add(ctx, eafnosupport, __NR_socket, 1, &c); !s) return s;
  }
  {
    scmp_arg_cmp c = SCMP_A0(SCMP_CMP_GT, uint64_t(AF_INET6));
    if (auto s = add(ctx, eafnosupport, __NR_socket, 1, &c); !s) return s;
  }
  // socketpair only makes sense for AF_UNIX; anything else is refused outright.
  {
    scmp_arg_cmp c = SCMP_A0(SCMP_CMP_NE, uint64_t(AF_UNIX));
    if (auto s = add(ctx, eafnosupport, __NR_socketpair, 1, &c); !s) return s;
  }
  // Raw and packet sockets (crafted packets, sniffing), whatever flags are or'ed in.
  for (uint64_t type : {uint64_t(SOCK_RAW), uint64_t(SOCK_PACKET)}) {
    scmp_arg_cmp c = SCMP_A1(SCMP_CMP_MASKED_EQ, kSockTypeMask, type);
    if (auto s = add(ctx, eperm, __NR_socket, 1, &c); !s) return s;
    if (auto s = add(ctx, eperm, __NR_socketpair, 1, &c); !s) return s;
  }

  // File locks live on the inode, and concurrent runs share the inodes of the read-only root
  // (/usr/lib, /dev/null, ...): flock() and fcntl() read locks work on a read-only fd, and F_GETLK
  // reports another process's read lock, so locks would be a channel between runs that seccomp
  // cannot confine to a run's own files. Taking or dropping a lock therefore succeeds without
  // doing anything (errno 0: the call is skipped and returns 0), so code that locks its own files
  // (sqlite, filelock) still works; F_GETLK stays real and never finds a run's lock. The price:
  // processes of one run cannot exclude each other with file locks. cmd is a 32-bit int, as for
  // ioctl below.
  const uint32_t skip = SCMP_ACT_ERRNO(0);
  if (auto s = add(ctx, skip, __NR_flock); !s) return s;
  for (uint64_t cmd :
       {uint64_t(F_SETLK), uint64_t(F_SETLKW), uint64_t(F_OFD_SETLK), uint64_t(F_OFD_SETLKW)}) {
    scmp_arg_cmp c = SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, cmd);
    if (auto s = add(ctx, skip, __NR_fcntl, 1, &c); !s) return s;
  }
  // dnotify (F_NOTIFY) signals reads in a watched directory, like inotify above: EINVAL, as on a
  // kernel built without it.
  {
    scmp_arg_cmp c = SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, F_NOTIFY);
    if (auto s = add(ctx, SCMP_ACT_ERRNO(EINVAL), __NR_fcntl, 1, &c); !s) return s;
  }

  // ioctl(fd, cmd): TIOCSTI pushes input into a terminal (a shared tty is an escape),
  // TIOCLINUX can do the same on a VT. The kernel takes cmd as a 32-bit int, so compare the
  // low half only: plain EQ on the 64-bit register is bypassed by setting a high bit.
  for (uint64_t cmd : {uint64_t(TIOCSTI), uint64_t(TIOCLINUX)}) {
    scmp_arg_cmp c = SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, cmd);
    if (auto s = add(ctx, eperm, __NR_ioctl, 1, &c); !s) return s;
  }
  return {};
}

// personality(2) is not expressible in one libseccomp rule ("neither 0 nor 0xffffffff" needs
// two comparisons on the same argument), so it is decided by this small hand-written prefix
// that runs before libseccomp's program. Anything else — including any other architecture —
// falls through to libseccomp's program, which does its own architecture check first.
// Allowed: 0 (PER_LINUX) and 0xffffffff (query). Everything else, including values with bits
// in the upper half of the register (glibc truncates to 32 bits, so only raw calls do that),
// is EPERM: READ_IMPLIES_EXEC, ADDR_NO_RANDOMIZE and PER_LINUX32 weaken the process.
std::vector<sock_filter> personality_prefix() {
  constexpr uint32_t kArch = offsetof(seccomp_data, arch);
  constexpr uint32_t kNr = offsetof(seccomp_data, nr);
  constexpr uint32_t kArgLo = offsetof(seccomp_data, args[0]);
  constexpr uint32_t kArgHi = kArgLo + 4;
  constexpr uint8_t kLen = 11;  // instructions in this prefix; jumps below are relative
  // Index i jumping to the first libseccomp instruction: kLen - (i + 1).
  return {
      /*0*/ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kArch),
      /*1*/ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 0, kLen - 2),
      /*2*/ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kNr),
      /*3*/ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_personality, 0, kLen - 4),
      /*4*/ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kArgHi),
      /*5*/ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 3),  // high half set -> 9 (EPERM)
      /*6*/ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kArgLo),
      /*7*/ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 2, 0),           // 0 -> 10 (ALLOW)
      /*8*/ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0xffffffffu, 1, 0),  // query -> 10 (ALLOW)
      /*9*/ BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
      /*10*/ BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
}

Result<std::vector<sock_filter>> export_bpf(scmp_filter_ctx ctx) {
  // libseccomp 2.5 exports only to an fd; a memfd keeps it off the filesystem.
  UniqueFd fd(::memfd_create("onemcp-seccomp", MFD_CLOEXEC));
  if (!fd.valid()) return make_error(errno_text("memfd_create", errno));
  if (auto s = check(seccomp_export_bpf(ctx, fd.get()), "seccomp_export_bpf"); !s) return s.error();
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return make_error(errno_text("fstat", errno));
  size_t bytes = size_t(st.st_size);
  if (bytes == 0 || bytes % sizeof(sock_filter) != 0) return make_error("seccomp_export_bpf: bad program size");
  std::vector<sock_filter> prog(bytes / sizeof(sock_filter));
  size_t off = 0;
  while (off < bytes) {
    ssize_t n = ::pread(fd.get(), reinterpret_cast<char*>(prog.data()) + off, bytes - off, off_t(off));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return make_error(errno_text("read back seccomp program", n < 0 ? errno : EIO));
    off += size_t(n);
  }
  return prog;
}

}  // namespace

Result<SeccompProgram> SeccompProgram::build() {
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (ctx == nullptr) return make_error("seccomp_init failed");
  struct Release {
    scmp_filter_ctx c;
    ~Release() { seccomp_release(c); }
  } release{ctx};

  // Only the native x86_64 ABI is in the filter; libseccomp then routes both i386 (int $0x80,
  // arch AUDIT_ARCH_I386) and x32 (x86_64 arch with __X32_SYSCALL_BIT set) to the bad-arch
  // action, since their syscall numbers would otherwise dodge every rule below.
  if (auto s = check(seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS), "badarch"); !s) {
    return s.error();
  }
  // Binary-tree dispatch on the syscall number: every allowed syscall pays O(log n) compares
  // instead of walking the whole deny-list.
  if (auto s = check(seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2), "optimize"); !s) return s.error();
  if (auto s = add_rules(ctx); !s) return s.error();

  auto body = export_bpf(ctx);
  if (!body) return body.error();
  std::vector<sock_filter> prog = personality_prefix();
  prog.insert(prog.end(), body->begin(), body->end());
  if (prog.size() > BPF_MAXINSNS) return make_error("seccomp program too long");
  return SeccompProgram(std::move(prog));
}

Status SeccompProgram::install() const {
  // Without no_new_privs an unprivileged seccomp() fails anyway; with CAP_SYS_ADMIN it would
  // succeed and leave setuid escalation open, so insist on the documented order.
  if (::prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1) {
    return make_error("seccomp install: no_new_privs is not set");
  }
  sock_fprog fprog{static_cast<unsigned short>(prog_.size()), const_cast<sock_filter*>(prog_.data())};
  if (::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0u, &fprog) != 0) {
    return make_error(errno_text("seccomp(SECCOMP_SET_MODE_FILTER)", errno));
  }
  return {};
}

}  // namespace onemcp::sandbox::child
