// Integration tests of the run child's Landlock restriction on the real kernel: a forked child
// sets no_new_privs, restricts itself, tries one access and exits with the errno (0 = success).
// Seccomp is deliberately not installed here, so each denial is Landlock's alone.
#include <gtest/gtest.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>

#include "sandbox/child/landlock.h"

namespace onemcp::sandbox::child {
namespace {

constexpr int kRestrictFailed = 251;

bool require_kernel_features() {
  const char* v = std::getenv("ONEMCP_REQUIRE_KERNEL_FEATURES");
  return v != nullptr && std::string(v) == "1";
}

int result(long rc) { return rc < 0 ? errno : 0; }

std::string make_temp_dir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/onemcp-landlock-XXXXXX";
  char* p = ::mkdtemp(tmpl.data());
  return p ? std::string(p) : std::string();
}

void remove_tree(const std::string& dir) {
  // Only what the tests create: plain files and one level of subdirectory.
  std::string cmd = "rm -rf '" + dir + "'";
  (void)!std::system(cmd.c_str());
}

class Landlock : public ::testing::Test {
 protected:
  void SetUp() override {
    abi_ = landlock_abi();
    if (abi_ == 0) {
      if (require_kernel_features()) FAIL() << "Landlock unsupported by this kernel";
      GTEST_SKIP() << "Landlock unsupported by this kernel";
    }
    rw_ = make_temp_dir();
    other_ = make_temp_dir();
    ASSERT_FALSE(rw_.empty());
    ASSERT_FALSE(other_.empty());
  }
  void TearDown() override {
    if (!rw_.empty()) remove_tree(rw_);
    if (!other_.empty()) remove_tree(other_);
  }

  LandlockPaths paths() const {
    LandlockPaths p;
    p.read_only = {"/usr", "/etc", "/does/not/exist"};
    p.read_write = {rw_, "/dev/null"};
    return p;
  }

  // Exit code of `fn` run in a restricted child, or kRestrictFailed / 128+signal.
  int run(const std::function<int()>& fn, bool restricted = true) const {
    LandlockPaths p = paths();  // built before fork: the child only reads it
    pid_t pid = ::fork();
    if (pid == 0) {
      if (restricted) {
        if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) _exit(kRestrictFailed);
        auto r = landlock_restrict(p);
        if (!r.ok()) {
          std::fprintf(stderr, "landlock_restrict: %s\n", r.error().message.c_str());
          _exit(kRestrictFailed);
        }
        if (*r != std::min(abi_, 7)) _exit(kRestrictFailed);
      }
      _exit(fn());
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
  }

  int abi_ = 0;
  std::string rw_;
  std::string other_;
};

// A function, not a macro: `got` is a forked run and must be evaluated once.
void expect_result(int got, int want, const char* what) {
  auto err = [](int code) { return code == 0 ? std::string("success") : std::string(std::strerror(code)); };
  EXPECT_EQ(got, want) << what << ": got " << err(got) << ", want " << err(want);
}

int open_result(const std::string& path, int flags) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC, 0600);
  if (fd >= 0) ::close(fd);
  return result(fd);
}

TEST_F(Landlock, RequiresNoNewPrivs) {
  pid_t pid = ::fork();
  if (pid == 0) _exit(landlock_restrict(paths()).ok() ? 0 : 1);
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1);
}

TEST_F(Landlock, ReadOnlyPaths) {
  expect_result(run([] { return open_result("/etc/hostname", O_RDONLY); }), 0, "read /etc/hostname");
  expect_result(run([] { return open_result("/usr", O_RDONLY | O_DIRECTORY); }), 0, "list /usr");
  // O_WRONLY without O_TRUNC: harmless even if it were allowed.
  expect_result(run([] { return open_result("/etc/hostname", O_WRONLY); }), EACCES, "write /etc/hostname");
  expect_result(run([] { return open_result("/etc/onemcp-landlock-probe", O_WRONLY | O_CREAT | O_EXCL); }), EACCES,
                "create in /etc");
  // Outside every rule: not even readable.
  expect_result(run([] { return open_result("/proc/self/status", O_RDONLY); }), EACCES, "read /proc");
}

TEST_F(Landlock, ReadWritePaths) {
  std::string rw = rw_, other = other_;
  expect_result(run([rw] {
                  int fd = ::open((rw + "/f").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
                  if (fd < 0) return errno;
                  int rc = ::write(fd, "hi", 2) == 2 ? 0 : errno;
                  ::close(fd);
                  if (rc != 0) return rc;
                  if (::mkdir((rw + "/d").c_str(), 0700) != 0) return errno;
                  // Rename between directories beneath the rule needs REFER.
                  if (::rename((rw + "/f").c_str(), (rw + "/d/g").c_str()) != 0) return errno;
                  if (::truncate((rw + "/d/g").c_str(), 0) != 0) return errno;
                  if (::unlink((rw + "/d/g").c_str()) != 0) return errno;
                  return result(::rmdir((rw + "/d").c_str()));
                }),
                0, "create/write/rename/truncate/remove in the read-write dir");
  expect_result(run([other] { return open_result(other + "/f", O_WRONLY | O_CREAT | O_EXCL); }), EACCES,
                "create in another temp dir");
  expect_result(run([rw] { return result(::mknod((rw + "/fifo").c_str(), S_IFIFO | 0600, 0)); }), 0, "mkfifo");
  // Device nodes are never creatable (mknod of a char device would be EPERM for non-root anyway;
  // Landlock refuses it before privileges are even considered).
  expect_result(run([rw] { return result(::mknod((rw + "/null").c_str(), S_IFCHR | 0600, makedev(1, 3))); }),
                EACCES, "mknod char device");
  expect_result(run([] { return open_result("/dev/null", O_WRONLY); }), 0, "write /dev/null (file rule)");
  expect_result(run([] { return open_result("/dev/zero", O_RDONLY); }), EACCES, "read /dev/zero (no rule)");
}

TEST_F(Landlock, NoExecute) {
  auto exec_true = [] {
    char* const argv[] = {const_cast<char*>("/bin/true"), nullptr};
    char* const envp[] = {nullptr};
    return result(::execve("/bin/true", argv, envp));
  };
  expect_result(run(exec_true, false), 0, "baseline execve");
  expect_result(run(exec_true), EACCES, "execve under /usr (read-only)");
  // A binary copied into the writable dir is not executable either.
  std::string rw = rw_;
  ASSERT_EQ(std::system(("cp /bin/true '" + rw + "/t'").c_str()), 0);
  expect_result(run([rw] {
                  char* const argv[] = {const_cast<char*>("t"), nullptr};
                  char* const envp[] = {nullptr};
                  return result(::execve((rw + "/t").c_str(), argv, envp));
                }),
                EACCES, "execve in the read-write dir");
}

TEST_F(Landlock, TcpDenied) {
  if (abi_ < 4) {
    if (require_kernel_features()) FAIL() << "Landlock ABI " << abi_ << " has no network rights";
    GTEST_SKIP() << "Landlock ABI " << abi_ << " has no network rights";
  }
  int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(lfd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(lfd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  ASSERT_EQ(::listen(lfd, 4), 0);

  auto connect_to = [addr] {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return 90;
    int rc = result(::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr));
    ::close(fd);
    return rc;
  };
  expect_result(run(connect_to, false), 0, "baseline connect");
  expect_result(run(connect_to), EACCES, "connect 127.0.0.1");
  expect_result(run([] {
                  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                  sockaddr_in a{};
                  a.sin_family = AF_INET;
                  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
                  a.sin_port = htons(1);  // any explicit port: the bind hook refuses it
                  int rc = result(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a));
                  ::close(fd);
                  return rc;
                }),
                EACCES, "bind");
  ::close(lfd);
}

TEST_F(Landlock, Scopes) {
  if (abi_ < 6) {
    if (require_kernel_features()) FAIL() << "Landlock ABI " << abi_ << " has no scoping";
    GTEST_SKIP() << "Landlock ABI " << abi_ << " has no scoping";
  }
  // Signals cannot leave the domain: the parent (this test process) is outside it.
  pid_t parent = ::getpid();
  expect_result(run([parent] { return result(::kill(parent, 0)); }), EPERM, "signal the parent");
  expect_result(run([] { return result(::kill(::getpid(), 0)); }), 0, "signal itself");

  // Abstract UNIX sockets created outside the domain are unreachable.
  int lfd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(lfd, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::string name = "onemcp-landlock-" + std::to_string(::getpid());
  std::memcpy(addr.sun_path + 1, name.data(), name.size());
  socklen_t alen = socklen_t(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  ASSERT_EQ(::bind(lfd, reinterpret_cast<sockaddr*>(&addr), alen), 0);
  ASSERT_EQ(::listen(lfd, 4), 0);
  auto connect_abstract = [addr, alen] {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int rc = result(::connect(fd, reinterpret_cast<const sockaddr*>(&addr), alen));
    ::close(fd);
    return rc;
  };
  expect_result(run(connect_abstract, false), 0, "baseline abstract connect");
  expect_result(run(connect_abstract), EPERM, "abstract connect");
  ::close(lfd);
}

}  // namespace
}  // namespace onemcp::sandbox::child
