#include "worker/zygote.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <unordered_map>

namespace onemcp::worker {
namespace {

constexpr size_t kMaxRequestBytes = 64u << 20;

void die(const char* what) {
  std::fprintf(stderr, "1mcp worker: %s: %s\n", what, std::strerror(errno));
  _exit(120);
}

// Current virtual size, so the address-space cap is "what the interpreter already mapped plus
// the run's budget" (cgroup memory accounting replaces this once the sandbox layer is active).
uint64_t vm_size_bytes() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmSize:", 0) == 0) return std::stoull(line.substr(7)) * 1024;
  }
  return 0;
}

[[noreturn]] void child_main(Runtime& rt, std::vector<UniqueFd>& fds, int control, int sigfd) {
  // Signals back to default before anything else runs.
  sigset_t all;
  sigemptyset(&all);
  sigprocmask(SIG_SETMASK, &all, nullptr);
  signal(SIGPIPE, SIG_DFL);
  ::close(control);
  ::close(sigfd);
  ::setpgid(0, 0);
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);

  auto text = ipc::read_all(fds[1].get(), kMaxRequestBytes);
  if (!text) _exit(121);
  auto req = ipc::decode_request(*text);
  if (!req) _exit(122);

  // stdin, stdout, stderr, result -> 0..3; everything else closed.
  int want[4] = {fds[2].get(), fds[3].get(), fds[4].get(), fds[5].get()};
  // Move sources above 3 first so dup2 never clobbers a source still needed.
  for (int& fd : want) {
    int moved = ::fcntl(fd, F_DUPFD_CLOEXEC, 10);
    if (moved < 0) _exit(123);
    fd = moved;
  }
  for (int i = 0; i < 4; ++i) {
    if (::dup2(want[i], i) < 0) _exit(124);
  }
  ::syscall(SYS_close_range, 4u, ~0u, 0u);

  rlimit core{0, 0};
  ::setrlimit(RLIMIT_CORE, &core);
  if (req->mem_mb > 0) {
    uint64_t cap = vm_size_bytes() + (req->mem_mb + 64) * (1ull << 20);
    rlimit as{cap, cap};
    ::setrlimit(RLIMIT_AS, &as);
  }
  if (req->timeout_ms > 0) {
    // Backstop only: the supervisor kills on the wall-clock deadline.
    rlim_t secs = req->timeout_ms / 1000 + 2;
    rlimit cpu{secs, secs};
    ::setrlimit(RLIMIT_CPU, &cpu);
  }

  rt.after_fork_child();
  int code = rt.run(*req);
  std::fflush(stdout);
  std::fflush(stderr);
  _exit(code & 0xff);
}

void reply(int sock, ipc::ReplyKind kind, int32_t pid, int32_t status, int pidfd = -1) {
  ipc::Reply r{kind, pid, status};
  (void)ipc::send_with_fds(sock, &r, sizeof r, pidfd >= 0 ? &pidfd : nullptr, pidfd >= 0 ? 1 : 0);
}

}  // namespace

void write_report(const ipc::ChildReport& report) {
  std::string s = ipc::encode(report);
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::write(ipc::kResultFd, s.data() + off, s.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    off += size_t(n);
  }
}

int zygote_main(Runtime& rt) {
  int control = kControlFd;
  ::fcntl(control, F_SETFD, FD_CLOEXEC);
  ::signal(SIGPIPE, SIG_IGN);
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  if (sigprocmask(SIG_BLOCK, &chld, nullptr) != 0) die("sigprocmask");
  int sigfd = ::signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sigfd < 0) die("signalfd");

  // Tell the supervisor the interpreter is initialised and runs can be served.
  uint32_t ready = ipc::kReadyTag;
  if (!ipc::send_with_fds(control, &ready, sizeof ready, nullptr, 0)) return 0;

  std::unordered_map<pid_t, UniqueFd> running;  // pid -> reply socket
  bool serving = true;
  while (serving || !running.empty()) {
    pollfd p[2] = {{sigfd, POLLIN, 0}, {control, POLLIN, 0}};
    int n = ::poll(p, serving ? 2 : 1, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("poll");
    }
    if (p[0].revents & POLLIN) {
      signalfd_siginfo si;
      while (::read(sigfd, &si, sizeof si) == sizeof si) {
      }
      for (;;) {
        int status = 0;
        pid_t pid = ::waitpid(-1, &status, WNOHANG);
        if (pid <= 0) break;
        auto it = running.find(pid);
        if (it == running.end()) continue;
        reply(it->second.get(), ipc::ReplyKind::exited, pid, status);
        running.erase(it);
      }
    }
    if (serving && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) {
      uint32_t tag = 0;
      std::vector<UniqueFd> fds;
      auto got = ipc::recv_with_fds(control, &tag, sizeof tag, &fds, ipc::kRunFdCount);
      if (!got || *got == 0) {
        // Supervisor gone: stop serving; runs die with us (PDEATHSIG).
        serving = false;
        for (auto& [pid, sock] : running) ::kill(-pid, SIGKILL), ::kill(pid, SIGKILL);
        continue;
      }
      if (fds.size() != ipc::kRunFdCount) continue;  // malformed: fds closed by RAII
      rt.before_fork();
      pid_t pid = ::fork();
      if (pid == 0) child_main(rt, fds, control, sigfd);
      rt.after_fork_parent();
      if (pid < 0) {
        reply(fds[0].get(), ipc::ReplyKind::failed, 0, errno);
        continue;
      }
      int pidfd = int(::syscall(SYS_pidfd_open, pid, 0));
      reply(fds[0].get(), ipc::ReplyKind::started, pid, 0, pidfd);
      if (pidfd >= 0) ::close(pidfd);
      running.emplace(pid, std::move(fds[0]));
    }
  }
  return 0;
}

}  // namespace onemcp::worker
