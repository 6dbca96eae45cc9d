// Integration tests of the run child's seccomp filter on the real kernel: each case forks a
// child that sets no_new_privs, installs the filter, makes one syscall and exits with the errno
// (0 = success) so the parent sees exactly what user code would.
#include <gtest/gtest.h>
#include <linux/io_uring.h>
#include <linux/sched.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "sandbox/child/seccomp.h"

#ifndef __X32_SYSCALL_BIT
#define __X32_SYSCALL_BIT 0x40000000
#endif

namespace onemcp::sandbox::child {
namespace {

bool require_kernel_features() {
  const char* v = std::getenv("ONEMCP_REQUIRE_KERNEL_FEATURES");
  return v != nullptr && std::string(v) == "1";
}

// Exit codes the child uses for its own failures, above any errno it reports.
constexpr int kNoNewPrivsFailed = 250;
constexpr int kInstallFailed = 251;

struct Outcome {
  bool exited = false;
  int code = -1;    // exit code when exited
  int signal = 0;   // terminating signal otherwise
};

Outcome wait_child(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  Outcome o;
  if (WIFEXITED(status)) {
    o.exited = true;
    o.code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    o.signal = WTERMSIG(status);
  }
  return o;
}

// The syscall's result as an exit code: 0 on success, else errno.
int result(long rc) { return rc < 0 ? errno : 0; }

class Seccomp : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto p = SeccompProgram::build();
    ASSERT_TRUE(p.ok()) << p.error().message;
    program_ = new SeccompProgram(std::move(p.value()));
  }
  static void TearDownTestSuite() {
    delete program_;
    program_ = nullptr;
  }
  void SetUp() override {
    // Probe once: a kernel without seccomp filters (or a runner that forbids them) must not
    // look like a passing sandbox.
    Outcome o = run([] { return 0; });
    if (o.exited && o.code == kInstallFailed) {
      if (require_kernel_features()) FAIL() << "seccomp filter mode unavailable";
      GTEST_SKIP() << "seccomp filter mode unavailable";
    }
  }

  // Runs `fn` in a forked child; `before` runs ahead of no_new_privs + install (for set-up the
  // filter would refuse). With filtered=false the same call runs unfiltered, as a baseline.
  static Outcome run(const std::function<int()>& fn, bool filtered = true,
                     const std::function<void()>& before = nullptr) {
    pid_t pid = ::fork();
    if (pid == 0) {
      if (before) before();
      if (filtered) {
        if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) _exit(kNoNewPrivsFailed);
        if (!program_->install().ok()) _exit(kInstallFailed);
      }
      _exit(fn());
    }
    EXPECT_GT(pid, 0);
    return wait_child(pid);
  }

  static void expect_errno(const Outcome& o, int want, const char* what) {
    EXPECT_TRUE(o.exited) << what << ": killed by signal " << o.signal;
    EXPECT_EQ(o.code, want) << what << ": got " << (o.code > 0 && o.code < 200 ? std::strerror(o.code) : "?")
                            << ", want " << (want ? std::strerror(want) : "success");
  }

  static SeccompProgram* program_;
};
SeccompProgram* Seccomp::program_ = nullptr;

TEST_F(Seccomp, InstallRequiresNoNewPrivs) {
  pid_t pid = ::fork();
  if (pid == 0) _exit(program_->install().ok() ? 0 : 1);
  // Tests may run as root, where seccomp() itself would succeed: the library refuses.
  Outcome o = wait_child(pid);
  EXPECT_TRUE(o.exited);
  EXPECT_EQ(o.code, 1);
}

TEST_F(Seccomp, Ptrace) {
  auto fn = [] { return result(::ptrace(PTRACE_TRACEME, 0, nullptr, nullptr)); };
  expect_errno(run(fn, false), 0, "baseline ptrace(TRACEME)");
  expect_errno(run(fn), EPERM, "ptrace(TRACEME)");
}

TEST_F(Seccomp, Mount) {
  // In a private mount namespace so that an unfiltered mount (tests may run as root) could
  // not touch the host; an unprivileged runner gets EPERM from unshare and mount anyway.
  auto before = [] {
    if (::unshare(CLONE_NEWNS) == 0) ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr);
  };
  auto fn = [] { return result(::mount("none", "/tmp", "tmpfs", 0, "size=1m")); };
  expect_errno(run(fn, true, before), EPERM, "mount");
  expect_errno(run([] { return result(::umount2("/tmp", MNT_DETACH)); }, true, before), EPERM, "umount2");
  expect_errno(run([] { return result(::syscall(__NR_fsopen, "tmpfs", 0)); }), EPERM, "fsopen");
  expect_errno(run([] { return result(::syscall(__NR_open_tree, AT_FDCWD, "/", 0)); }), EPERM, "open_tree");
  expect_errno(run([] { return result(::chroot("/")); }), EPERM, "chroot");
  expect_errno(run([] { return result(::syscall(__NR_pivot_root, "/", "/")); }), EPERM, "pivot_root");
}

TEST_F(Seccomp, Namespaces) {
  expect_errno(run([] { return result(::unshare(CLONE_NEWUSER)); }), EPERM, "unshare(NEWUSER)");
  expect_errno(run([] { return result(::unshare(CLONE_NEWNS)); }), EPERM, "unshare(NEWNS)");
  expect_errno(run([] { return result(::unshare(CLONE_NEWTIME)); }), EPERM, "unshare(NEWTIME)");
  // Several bits at once, and harmless bits around a namespace bit.
  expect_errno(run([] { return result(::unshare(CLONE_FILES | CLONE_NEWIPC)); }), EPERM, "unshare(FILES|NEWIPC)");
  // unshare without namespace bits is still fine.
  expect_errno(run([] { return result(::unshare(CLONE_FILES)); }), 0, "unshare(FILES)");
  expect_errno(run([] { return result(::setns(0, 0)); }), EPERM, "setns");

  auto clone_ns = [](unsigned long flags) {
    return [flags] {
      long rc = ::syscall(__NR_clone, flags | SIGCHLD, nullptr, nullptr, nullptr, 0);
      if (rc == 0) _exit(0);
      if (rc > 0) ::waitpid(pid_t(rc), nullptr, 0);
      return result(rc);
    };
  };
  expect_errno(run(clone_ns(CLONE_NEWNET)), EPERM, "clone(NEWNET)");
  expect_errno(run(clone_ns(CLONE_NEWUSER)), EPERM, "clone(NEWUSER)");
  expect_errno(run(clone_ns(CLONE_NEWPID)), EPERM, "clone(NEWPID)");
  expect_errno(run(clone_ns(0)), 0, "clone(SIGCHLD)");
}

TEST_F(Seccomp, ForkAndThreadsStillWork) {
  expect_errno(run([] {
                 pid_t p = ::fork();
                 if (p == 0) _exit(7);
                 if (p < 0) return errno;
                 int st = 0;
                 ::waitpid(p, &st, 0);
                 return WIFEXITED(st) && WEXITSTATUS(st) == 7 ? 0 : 99;
               }),
               0, "fork");
  // glibc's pthread_create tries clone3 first; ENOSYS makes it fall back to clone.
  expect_errno(run([] {
                 pthread_t t;
                 static int ran = 0;
                 int rc = ::pthread_create(&t, nullptr, [](void*) -> void* { ran = 1; return nullptr; }, nullptr);
                 if (rc != 0) return rc;
                 ::pthread_join(t, nullptr);
                 return ran == 1 ? 0 : 98;
               }),
               0, "pthread_create");
}

TEST_F(Seccomp, Enosys) {
  expect_errno(run([] {
                 clone_args args{};
                 args.exit_signal = SIGCHLD;
                 long rc = ::syscall(__NR_clone3, &args, sizeof args);
                 if (rc == 0) _exit(0);
                 return result(rc);
               }),
               ENOSYS, "clone3");
  expect_errno(run([] {
                 io_uring_params p{};
                 return result(::syscall(__NR_io_uring_setup, 4, &p));
               }),
               ENOSYS, "io_uring_setup");
  expect_errno(run([] { return result(::syscall(__NR_io_uring_enter, -1, 0, 0, 0, nullptr, 0)); }), ENOSYS,
               "io_uring_enter");
  expect_errno(run([] { return result(::syscall(__NR_io_uring_register, -1, 0, nullptr, 0)); }), ENOSYS,
               "io_uring_register");
}

TEST_F(Seccomp, KernelSurface) {
  expect_errno(run([] { return result(::syscall(__NR_bpf, 0, nullptr, 0)); }), EPERM, "bpf");
  expect_errno(run([] { return result(::syscall(__NR_perf_event_open, nullptr, 0, -1, -1, 0)); }), EPERM,
               "perf_event_open");
  auto uffd = [] { return result(::syscall(__NR_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY)); };
  expect_errno(run(uffd), EPERM, "userfaultfd");
  auto keyring = [] { return result(::syscall(__NR_keyctl, 0 /*KEYCTL_GET_KEYRING_ID*/, -3 /*session*/, 0)); };
  expect_errno(run(keyring), EPERM, "keyctl");
  expect_errno(run([] { return result(::syscall(__NR_add_key, "user", "k", "v", 1, -3)); }), EPERM, "add_key");
  auto vm_read = [] {
    char src[8] = "secret", dst[8] = {};
    iovec local{dst, sizeof dst}, remote{src, sizeof src};
    return result(::process_vm_readv(::getpid(), &local, 1, &remote, 1, 0));
  };
  expect_errno(run(vm_read, false), 0, "baseline process_vm_readv(self)");
  expect_errno(run(vm_read), EPERM, "process_vm_readv");
  expect_errno(run([] { return result(::syscall(__NR_init_module, nullptr, 0, "")); }), EPERM, "init_module");
  expect_errno(run([] { return result(::syscall(__NR_kexec_load, 0, 0, nullptr, 0)); }), EPERM, "kexec_load");
  expect_errno(run([] { return result(::syscall(__NR_pidfd_getfd, -1, 0, 0)); }), EPERM, "pidfd_getfd");
  expect_errno(run([] { return result(::syscall(__NR_open_by_handle_at, -1, nullptr, 0)); }), EPERM,
               "open_by_handle_at");
  expect_errno(run([] { return result(::syscall(__NR_syslog, 10 /*SYSLOG_ACTION_SIZE_BUFFER*/, nullptr, 0)); }),
               EPERM, "syslog");
  expect_errno(run([] { return result(::syscall(__NR_settimeofday, nullptr, nullptr)); }), EPERM, "settimeofday");
  expect_errno(run([] { return result(::syscall(__NR_iopl, 0)); }), EPERM, "iopl");
}

TEST_F(Seccomp, Exec) {
  auto exec_true = [] {
    char* const argv[] = {const_cast<char*>("/bin/true"), nullptr};
    char* const envp[] = {nullptr};
    return result(::execve("/bin/true", argv, envp));  // returns only on failure
  };
  expect_errno(run(exec_true, false), 0, "baseline execve");
  expect_errno(run(exec_true), EPERM, "execve");
  expect_errno(run([] {
                 char* const argv[] = {const_cast<char*>("true"), nullptr};
                 char* const envp[] = {nullptr};
                 return result(::syscall(__NR_execveat, AT_FDCWD, "/bin/true", argv, envp, 0));
               }),
               EPERM, "execveat");
}

TEST_F(Seccomp, Personality) {
  auto set = [](unsigned long v) { return [v] { return result(::syscall(__NR_personality, v)); }; };
  expect_errno(run(set(PER_LINUX32), false), 0, "baseline personality(PER_LINUX32)");
  expect_errno(run(set(PER_LINUX32)), EPERM, "personality(PER_LINUX32)");
  expect_errno(run(set(READ_IMPLIES_EXEC)), EPERM, "personality(READ_IMPLIES_EXEC)");
  expect_errno(run(set(ADDR_NO_RANDOMIZE)), EPERM, "personality(ADDR_NO_RANDOMIZE)");
  expect_errno(run(set(0xfffffffeul)), EPERM, "personality(0xfffffffe)");
  // The kernel reads a 32-bit value: 1<<32 would be personality(0) to it; refused, fail closed.
  expect_errno(run(set(1ul << 32 | PER_LINUX32)), EPERM, "personality(1<<32 | PER_LINUX32)");
  expect_errno(run(set(0)), 0, "personality(0)");
  expect_errno(run(set(0xfffffffful)), 0, "personality(0xffffffff) query");
  expect_errno(run([] { return ::personality(0xffffffff) == PER_LINUX ? 0 : 97; }), 0, "glibc personality query");
}

TEST_F(Seccomp, Sockets) {
  auto sock = [](int domain, int type) {
    return [domain, type] {
      int fd = ::socket(domain, type, 0);
      if (fd >= 0) ::close(fd);
      return result(fd);
    };
  };
  expect_errno(run(sock(AF_INET, SOCK_STREAM | SOCK_CLOEXEC)), 0, "socket(AF_INET, STREAM|CLOEXEC)");
  expect_errno(run(sock(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK)), 0, "socket(AF_INET6, DGRAM|NONBLOCK)");
  expect_errno(run(sock(AF_UNIX, SOCK_STREAM)), 0, "socket(AF_UNIX, STREAM)");
  expect_errno(run(sock(AF_NETLINK, SOCK_RAW), false), 0, "baseline socket(AF_NETLINK)");
  expect_errno(run(sock(AF_NETLINK, SOCK_DGRAM)), EAFNOSUPPORT, "socket(AF_NETLINK)");
  expect_errno(run(sock(AF_PACKET, SOCK_DGRAM)), EAFNOSUPPORT, "socket(AF_PACKET)");
  expect_errno(run(sock(AF_VSOCK, SOCK_STREAM)), EAFNOSUPPORT, "socket(AF_VSOCK)");
  expect_errno(run(sock(AF_UNSPEC, SOCK_STREAM)), EAFNOSUPPORT, "socket(AF_UNSPEC)");
  expect_errno(run(sock(AF_APPLETALK, SOCK_DGRAM)), EAFNOSUPPORT, "socket(AF_APPLETALK)");
  expect_errno(run(sock(AF_INET, SOCK_RAW)), EPERM, "socket(AF_INET, RAW)");
  expect_errno(run(sock(AF_INET6, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK)), EPERM, "socket(AF_INET6, RAW|flags)");
  expect_errno(run(sock(AF_INET, SOCK_PACKET)), EPERM, "socket(AF_INET, PACKET)");
  // Garbage above the 32-bit int the kernel reads: refused rather than trusted.
  expect_errno(run([] { return result(::syscall(__NR_socket, (1ul << 32) | AF_NETLINK, SOCK_DGRAM, 0)); }),
               EAFNOSUPPORT, "socket(1<<32 | AF_NETLINK)");

  auto pair = [](int domain, int type) {
    return [domain, type] {
      int sv[2];
      int rc = ::socketpair(domain, type, 0, sv);
      if (rc == 0) {
        ::close(sv[0]);
        ::close(sv[1]);
      }
      return result(rc);
    };
  };
  expect_errno(run(pair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC)), 0, "socketpair(AF_UNIX)");
  expect_errno(run(pair(AF_INET, SOCK_STREAM)), EAFNOSUPPORT, "socketpair(AF_INET)");
  expect_errno(run(pair(AF_NETLINK, SOCK_DGRAM)), EAFNOSUPPORT, "socketpair(AF_NETLINK)");
}

TEST_F(Seccomp, TiocstiMaskedCompare) {
  // On /dev/null (never a terminal, so nothing can be injected even unfiltered) the kernel
  // answers ENOTTY: EPERM therefore proves the filter matched, and the high-bit variant proves
  // the match ignores the upper half of the register.
  auto ioctl_null = [](unsigned long cmd) {
    return [cmd] {
      int fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
      if (fd < 0) return 96;
      char c = 'x';
      return result(::syscall(__NR_ioctl, fd, cmd, &c));
    };
  };
  expect_errno(run(ioctl_null(TIOCSTI), false), ENOTTY, "baseline ioctl(TIOCSTI)");
  expect_errno(run(ioctl_null(TIOCSTI | (1ul << 32)), false), ENOTTY, "baseline ioctl(TIOCSTI | 1<<32)");
  expect_errno(run(ioctl_null(TIOCSTI)), EPERM, "ioctl(TIOCSTI)");
  expect_errno(run(ioctl_null(TIOCSTI | (1ul << 32))), EPERM, "ioctl(TIOCSTI | 1<<32)");
  expect_errno(run(ioctl_null(TIOCLINUX)), EPERM, "ioctl(TIOCLINUX)");
  expect_errno(run(ioctl_null(TIOCLINUX | (0xfffful << 48))), EPERM, "ioctl(TIOCLINUX | high bits)");
  expect_errno(run(ioctl_null(TCGETS)), ENOTTY, "ioctl(TCGETS) untouched");
  // The same on fd 0, where a run's stdin sits. If the test runner's stdin is a terminal it
  // is replaced by /dev/null first, so a broken filter could never type into it.
  auto stdin_not_tty = [] {
    if (::isatty(0)) {
      int fd = ::open("/dev/null", O_RDONLY);
      if (fd < 0 || ::dup2(fd, 0) < 0) _exit(96);
    }
  };
  expect_errno(run(
                   [] {
                     char c = 'x';
                     return result(::syscall(__NR_ioctl, 0, TIOCSTI | (1ul << 32), &c));
                   },
                   true, stdin_not_tty),
               EPERM, "ioctl(0, TIOCSTI | 1<<32)");
}

// struct flock for fcntl(): whole file, of type `type`.
struct flock whole_file(short type) {
  struct flock l {};
  l.l_type = type;
  l.l_whence = SEEK_SET;
  return l;
}

// The type of the first lock F_GETLK (or F_OFD_GETLK) finds that would block a write lock.
int lock_seen(int fd, unsigned long cmd) {
  struct flock l = whole_file(F_WRLCK);
  if (::syscall(__NR_fcntl, fd, cmd, &l) != 0) return -errno;
  return l.l_type;
}

// A child takes every kind of file lock on a shared file (flock, POSIX, OFD; read locks, as on a
// read-only file of the sandbox root) and the parent looks for them while it holds them. Filtered,
// every call succeeds and no lock exists; unfiltered (the baseline) the parent sees all three.
TEST_F(Seccomp, FileLocksSucceedWithoutLocking) {
  char path[] = "/tmp/1mcp-seccomp-lock-XXXXXX";
  int file = ::mkstemp(path);
  ASSERT_GE(file, 0);
  ::close(file);
  for (bool filtered : {false, true}) {
    int ready[2], done[2];
    ASSERT_EQ(::pipe2(ready, O_CLOEXEC), 0);
    ASSERT_EQ(::pipe2(done, O_CLOEXEC), 0);
    pid_t pid = ::fork();
    if (pid == 0) {
      if (filtered && (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || !program_->install().ok()))
        _exit(kInstallFailed);
      int fd = ::open(path, O_RDONLY | O_CLOEXEC);
      int ofd = ::open(path, O_RDONLY | O_CLOEXEC);
      struct flock rd = whole_file(F_RDLCK);
      // The cmd is a 32-bit int: a high bit must not get a lock past the filter either.
      if (::flock(fd, LOCK_EX | LOCK_NB) != 0 ||
          ::syscall(__NR_fcntl, fd, F_SETLK | (1ul << 32), &rd) != 0 ||
          ::fcntl(ofd, F_OFD_SETLKW, &rd) != 0)
        _exit(errno);
      char c = 'l';
      (void)!::write(ready[1], &c, 1);
      (void)!::read(done[0], &c, 1);
      _exit(0);
    }
    ::close(ready[1]);
    ::close(done[0]);
    char c = 0;
    ASSERT_EQ(::read(ready[0], &c, 1), 1) << "the child could not lock (filtered " << filtered << ")";
    int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    bool flock_free = ::flock(fd, LOCK_EX | LOCK_NB) == 0;
    if (flock_free) ::flock(fd, LOCK_UN);
    int posix = lock_seen(fd, F_GETLK), ofd = lock_seen(fd, F_OFD_GETLK);
    ::close(fd);
    (void)!::write(done[1], &c, 1);
    ::close(done[1]);
    ::close(ready[0]);
    Outcome o = wait_child(pid);
    EXPECT_TRUE(o.exited && o.code == 0) << "filtered " << filtered << ": " << o.code;
    EXPECT_EQ(flock_free, filtered) << "filtered " << filtered;
    EXPECT_EQ(posix, filtered ? F_UNLCK : F_RDLCK) << "filtered " << filtered;
    EXPECT_EQ(ofd, filtered ? F_UNLCK : F_RDLCK) << "filtered " << filtered;
  }
  ::unlink(path);
}

// Looking for locks still works under the filter: it finds the parent's lock.
TEST_F(Seccomp, FileLockQueriesStayReal) {
  char path[] = "/tmp/1mcp-seccomp-lock-XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  struct flock wr = whole_file(F_WRLCK);
  ASSERT_EQ(::fcntl(fd, F_SETLK, &wr), 0);
  Outcome o = run([&] {
    int own = ::open(path, O_RDONLY | O_CLOEXEC);
    return lock_seen(own, F_GETLK) == F_WRLCK && lock_seen(own, F_OFD_GETLK) == F_WRLCK ? 0 : 1;
  });
  expect_errno(o, 0, "F_GETLK and F_OFD_GETLK see the parent's lock");
  ::close(fd);
  ::unlink(path);
}

// inotify and dnotify would tell a run when another one opens or reads a file of the shared root:
// refused as on a kernel built without them.
TEST_F(Seccomp, FileWatchesAreRefused) {
  auto inotify = [] {
    int fd = int(::syscall(__NR_inotify_init1, IN_CLOEXEC));
    if (fd < 0) return errno;
    return ::syscall(__NR_inotify_add_watch, fd, "/", IN_OPEN | IN_ACCESS) < 0 ? errno : 0;
  };
  auto inotify_old = [] { return result(::syscall(__NR_inotify_init)); };
  auto dnotify = [] {
    int dir = ::open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) return 96;
    return result(::syscall(__NR_fcntl, dir, F_NOTIFY | (1ul << 32), DN_ACCESS));
  };
  expect_errno(run(inotify, false), 0, "baseline inotify");
  expect_errno(run(dnotify, false), 0, "baseline dnotify");
  expect_errno(run(inotify), ENOSYS, "inotify_init1");
  expect_errno(run(inotify_old), ENOSYS, "inotify_init");
  expect_errno(run(dnotify), EINVAL, "fcntl(F_NOTIFY | 1<<32)");
}

long int80_getpid() {
  long ret;
  // i386 getpid is 20. The compat entry may clobber r8-r11 in a 64-bit task.
  asm volatile("int $0x80" : "=a"(ret) : "a"(20L) : "memory", "r8", "r9", "r10", "r11");
  return ret;
}

TEST_F(Seccomp, ForeignAbiIsKilled) {
  Outcome x32 = run([] { return result(::syscall(__X32_SYSCALL_BIT | __NR_getpid)); });
  EXPECT_FALSE(x32.exited) << "x32 getpid returned " << x32.code;
  EXPECT_EQ(x32.signal, SIGSYS);

  // int $0x80 reaches seccomp only when the kernel has IA32 emulation enabled; without it the
  // instruction faults (SIGSEGV) and no 32-bit syscall can run at all.
  Outcome base = run([] { return int80_getpid() == ::getpid() ? 0 : 95; }, false);
  if (!(base.exited && base.code == 0)) {
    GTEST_SKIP() << "int $0x80 unavailable here (IA32 emulation off); x32 case checked";
  }
  Outcome i386 = run([] { return int(int80_getpid() & 0x7f); });
  EXPECT_FALSE(i386.exited) << "int $0x80 getpid returned";
  EXPECT_EQ(i386.signal, SIGSYS);
}

TEST_F(Seccomp, Timing) {
  auto t0 = std::chrono::steady_clock::now();
  auto p = SeccompProgram::build();
  auto t1 = std::chrono::steady_clock::now();
  ASSERT_TRUE(p.ok()) << p.error().message;
  double build_us = std::chrono::duration<double, std::micro>(t1 - t0).count();

  // install() measured inside each child (the cost a run pays), reported through a pipe.
  std::vector<double> installs;
  for (int i = 0; i < 30; ++i) {
    int fds[2];
    ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    pid_t pid = ::fork();
    if (pid == 0) {
      if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) _exit(kNoNewPrivsFailed);
      timespec a{}, b{};
      ::clock_gettime(CLOCK_MONOTONIC, &a);
      bool ok = p->install().ok();
      ::clock_gettime(CLOCK_MONOTONIC, &b);
      double us = double(b.tv_sec - a.tv_sec) * 1e6 + double(b.tv_nsec - a.tv_nsec) / 1e3;
      (void)!::write(fds[1], &us, sizeof us);
      _exit(ok ? 0 : kInstallFailed);
    }
    ::close(fds[1]);
    double us = -1;
    EXPECT_EQ(::read(fds[0], &us, sizeof us), ssize_t(sizeof us));
    ::close(fds[0]);
    Outcome o = wait_child(pid);
    ASSERT_TRUE(o.exited && o.code == 0);
    installs.push_back(us);
  }
  std::sort(installs.begin(), installs.end());
  double median = installs[installs.size() / 2];
  std::printf("seccomp: %zu instructions, build %.0f us, install median %.1f us (min %.1f, max %.1f)\n",
              p->instructions(), build_us, median, installs.front(), installs.back());
  RecordProperty("instructions", int(p->instructions()));
  RecordProperty("install_median_us", int(median));
  // Generous bound: a shared CI core can be slow, but a per-run install must stay cheap.
  EXPECT_LT(median, 2000.0);
}

}  // namespace
}  // namespace onemcp::sandbox::child
