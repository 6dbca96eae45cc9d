#include "worker/zygote.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <unordered_map>

#include "worker/input_files.h"
#include "worker/jail.h"
#include "worker/relay.h"

namespace onemcp::worker {
namespace {

constexpr size_t kMaxRequestBytes = 64u << 20;

bool g_sandbox = true;
std::string g_pip_root;   // host directory of the pip dependency sets, or empty
std::string g_mcps_root;  // host directory of the /mcps trees, or empty

// The current run's steps (mark_step): the zygote's last ones before the fork, then the run's.
struct Mark {
  const char* name;
  int64_t ns;
  int64_t minflt;
};
Mark g_marks[32];
size_t g_nmarks = 0;
bool g_profile = false;  // the run's request asked for its steps
bool g_forked = false;   // in a run (its page faults count from its fork)
bool g_kept = false;     // a live run's process stays for the next call after its report

void reset_marks() { g_nmarks = 0; }

void die(const char* what) {
  std::fprintf(stderr, "1mcp worker: %s: %s\n", what, std::strerror(errno));
  _exit(120);
}

// Current virtual size, measured in the zygote (reading /proc in each child would dirty pages).
// The address-space cap of a run is "what the interpreter already mapped plus the run's budget";
// the memory cgroup is the real bound when the sandbox is on.
uint64_t vm_size_bytes() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmSize:", 0) == 0) return std::stoull(line.substr(7)) * 1024;
  }
  return 0;
}

void write_all_fd(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::write(fd, s.data() + off, s.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    off += size_t(n);
  }
}

// A run that cannot be set up reports why on its result pipe and exits.
[[noreturn]] void setup_failed(int result_fd, const std::string& message) {
  ipc::ChildReport r;
  r.error_kind = "internal";
  r.error_message = "sandbox setup failed: " + message;
  write_all_fd(result_fd, ipc::encode(r));
  _exit(125);
}

// The call's own input could not be put in place (its `files`): an error of the call, told on
// stderr and in the report, as an exception in the code would be. A live run's interpreter
// stays (the report says so); any other run's process exits.
void input_failed(const std::string& message) {
  const std::string line = message + "\n";
  (void)!::write(2, line.data(), line.size());
  ipc::ChildReport r;
  r.error_kind = "exception";
  r.error_message = message;
  r.exit_code = 1;
  write_report(r);
}

// Relay runs (Python with network access or upstream tools): a network namespace of the run's
// own holding only `lo` (entered here, or already in the slot: see child_main), and the proxy
// relay as a second process of the run. Python keeps neither the broker fd nor the listening
// socket: its only way out is the proxy, under the same policy as JS fetch and JS mcp calls.
// The relay is not pid 1, so it dies with the run.
void start_relay(bool in_own_netns) {
  if (!in_own_netns)
    if (auto s = relay_enter_netns(); !s) setup_failed(ipc::kResultFd, s.error().message);
  auto listener = relay_listen(ipc::kProxyPort);
  if (!listener) setup_failed(ipc::kResultFd, listener.error().message);
  pid_t pid = ::fork();
  if (pid < 0) setup_failed(ipc::kResultFd, std::string("fork relay: ") + std::strerror(errno));
  if (pid == 0) {
    // The run is over when stdout, stderr and the result pipe close: the relay must not hold
    // them. /dev/null takes their numbers so a stray write can never reach a client socket.
    int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    for (int fd = 0; fd <= ipc::kResultFd; ++fd) {
      if (null < 0 || ::dup2(null, fd) < 0) ::close(fd);
    }
    ::close(ipc::kSlotFd);
    if (null > ipc::kBrokerFd) ::close(null);
    if (auto s = jail_lockdown_relay(); !s) _exit(125);
    relay_serve(listener->get(), ipc::kBrokerFd);
    _exit(0);
  }
  ::close(ipc::kBrokerFd);
  // `listener` closes here: only the relay accepts.
}

// A request like a call's (some code, arguments, environment, limits), encoded once in the zygote
// so that run slots can decode it ahead of their own.
std::string g_sample_request;

std::string sample_request() {
  ipc::RunRequest r;
  r.code = "const answer = [1, 2, 3].map((x) => x * 2);\nconsole.log(answer.join(' '));\n";
  r.args = {"one", "two"};
  r.env = {{"HOME", "/tmp"}, {"LANG", "C.UTF-8"}, {"PATH", "/usr/bin:/bin"}};
  r.cwd = "/tmp";
  r.timeout_ms = 30000;
  r.mem_mb = 256;
  r.stdout_bytes = 1 << 20;
  r.profile = true;
  return ipc::encode(r);
}

// A run slot's fds as the zygote receives them (ipc::kRunFdCount, in the order of ipc/wire.h).
struct SlotFds {
  UniqueFd reply, out, err, result, slot, broker;
  explicit SlotFds(std::vector<UniqueFd>& fds)
      : reply(std::move(fds[0])),
        out(std::move(fds[1])),
        err(std::move(fds[2])),
        result(std::move(fds[3])),
        slot(std::move(fds[4])),
        broker(std::move(fds[5])) {}
};

// Reads one byte-tagged message from the slot socket, with `min_fds` to `max_fds` fds; EOF (the
// supervisor gave the slot up) or anything unexpected ends the process quietly.
std::vector<UniqueFd> await_slot(int slot, char want, size_t min_fds, size_t max_fds) {
  char tag = 0;
  std::vector<UniqueFd> fds;
  auto got = ipc::recv_with_fds(slot, &tag, 1, &fds, max_fds);
  if (!got || *got != 1 || tag != want || fds.size() < min_fds) _exit(126);
  return fds;
}

// Moves `want[i]` to fd i for each i < count (skipping -1) and closes every fd from `count` on.
// Sources go above 9 first so dup2 never clobbers one still needed.
void place_fds(int* want, int count, int result_fd) {
  for (int i = 0; i < count; ++i) {
    if (want[i] < 0) continue;
    int moved = ::fcntl(want[i], F_DUPFD_CLOEXEC, 10);
    if (moved < 0) setup_failed(result_fd, "dup");
    want[i] = moved;
  }
  for (int i = 0; i < count; ++i) {
    if (want[i] >= 0 && ::dup2(want[i], i) < 0) setup_failed(result_fd, "dup2");
  }
  ::syscall(SYS_close_range, unsigned(count), ~0u, 0u);
}

// Waits for kSlotGo on the slot socket: the code runs only once its capsule is stored (EOF: it
// could not be; nothing runs).
void await_go() {
  char go = 0;
  ssize_t got;
  do {
    got = ::read(ipc::kSlotFd, &go, 1);
  } while (got < 0 && errno == EINTR);
  if (got != 1 || go != ipc::kSlotGo) _exit(126);
}

// Whether a later call of a live run asks for the sandbox its process was built with (its
// namespaces, mounts, Landlock rules and relay cannot change any more).
bool same_sandbox(const ipc::RunRequest& a, const ipc::RunRequest& b) {
  return a.pip_key == b.pip_key && a.relay() == b.relay() && a.mcp == b.mcp &&
         a.network_relay == b.network_relay && a.workspace == b.workspace &&
         a.readonly == b.readonly && a.writable == b.writable && b.live &&
         b.heap == ipc::HeapMode::none;
}

// A live run between calls: its call is done (fds 0-3 closed, so the supervisor sees the end),
// and it serves the session's next calls in the same interpreter until the supervisor closes the
// slot socket or a call ends the process.
[[noreturn]] void serve_live_calls(Runtime& rt, const ipc::RunRequest& first) {
  for (;;) {
    std::fflush(stdout);
    std::fflush(stderr);
    for (int fd = 0; fd <= ipc::kResultFd; ++fd) ::close(fd);
    // Done, even if a process the code forked still holds the pipes.
    const char done = ipc::kSlotDone;
    if (::send(ipc::kSlotFd, &done, 1, MSG_NOSIGNAL) != 1) _exit(0);
    char tag = 0;
    std::vector<UniqueFd> fds;
    auto got = ipc::recv_with_fds(ipc::kSlotFd, &tag, 1, &fds, ipc::kLiveCallFdCount);
    if (!got || *got != 1 || tag != ipc::kSlotRequest || fds.size() != ipc::kLiveCallFdCount)
      _exit(0);  // the session is over (or its socket was misused by its own code)
    // Received on the lowest free numbers (0-3 among them): moved above 9 first, then stdin,
    // stdout, stderr, result -> 0..3; the broker (4) and the slot socket (5) stay.
    for (auto& fd : fds) {
      UniqueFd moved(::fcntl(fd.get(), F_DUPFD_CLOEXEC, 10));
      if (!moved.valid()) _exit(125);
      fd = std::move(moved);
    }
    for (int i = 0; i < 4; ++i) {
      if (::dup2(fds[size_t(i) + 1].get(), i) < 0) _exit(125);
    }
    UniqueFd request = std::move(fds[0]);
    fds.clear();  // the moved copies closed; 0-3 hold the call's
    reset_marks();
    mark_step("run: live call received");
    auto text = ipc::read_all(request.get(), kMaxRequestBytes);
    request.reset();
    if (!text) setup_failed(ipc::kResultFd, text.error().message);
    auto req = ipc::decode_request(*text);
    if (!req) setup_failed(ipc::kResultFd, req.error().message);
    if (!same_sandbox(first, *req))
      setup_failed(ipc::kResultFd, "a live run's call asks for another sandbox than its first");
    g_profile = req->profile;
    await_go();
    mark_step("run: go received");
    g_kept = true;
    if (auto s = write_input_files(req->cwd, req->files, req->workspace); !s) {
      input_failed(s.error().message);
      continue;
    }
    int code = rt.run(*req);
    if (!g_kept) {
      std::fflush(stdout);
      std::fflush(stderr);
      ::syscall(SYS_close_range, 0u, unsigned(ipc::kBrokerFd), 0u);
      _exit(code & 0xff);
    }
  }
}

// A run slot: forked before its request, so fork, cgroup placement, fresh namespaces and the
// interpreter's after-fork work happen off the path of a call. It waits until the supervisor has
// placed it in its cgroups (nothing runs outside its limits), enters its namespaces, readies the
// interpreter, then waits for its request; then it builds the rest of its sandbox (which depends
// on the request) and waits for kSlotGo before the request's code runs.
[[noreturn]] void child_main(Runtime& rt, SlotFds& fds, int control, int sigfd, bool sandbox,
                             uint64_t vm_base) {
  // Signals back to default before anything else runs.
  sigset_t all;
  sigemptyset(&all);
  sigprocmask(SIG_SETMASK, &all, nullptr);
  signal(SIGPIPE, SIG_DFL);
  ::close(control);
  ::close(sigfd);
  ::setpgid(0, 0);
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  const int result_fd = fds.result.get();
  const int slot = fds.slot.get();
  g_forked = true;
  mark_step("run: forked, signals reset");

  await_slot(slot, ipc::kSlotPlaced, 0, 0);
  mark_step("run: placed in cgroups");
  RunJail jail{nullptr, false, vm_base, sandbox};
  if (auto s = apply_jail(JailPhase::slot, jail); !s) setup_failed(result_fd, s.error().message);
  // With upstream tools configured, most runs of a relay runtime (Python) are relay runs: the
  // slot enters their network namespace (only `lo`) now, half of what starting a relay costs,
  // instead of on the call's path. A run that needs no relay then has such a namespace too,
  // empty but its own.
  const bool own_netns = sandbox && rt.uses_relay() && !g_mcps_root.empty();
  if (own_netns) {
    if (auto s = relay_enter_netns(); !s) setup_failed(result_fd, s.error().message);
    mark_step("run: network namespace");
  }
  rt.after_fork_child();
  mark_step("run: interpreter after fork");
  // Decoding a request, encoding a report and the runtime's own per-run work allocate, and the
  // first writes to the zygote's heap pages copy them: doing them once on samples now takes those
  // page faults off the call's path. Not when the request is waiting already (calls back to
  // back): the run takes them anyway, and the sample's own work would only delay it.
  char peek = 0;
  if (::recv(slot, &peek, 1, MSG_PEEK | MSG_DONTWAIT) < 0) {
    (void)ipc::decode_request(g_sample_request);
    (void)ipc::encode(ipc::ChildReport{.value = "sample", .exit_code = 0});
    rt.warm_up();
    mark_step("run: warmed up");
  }

  std::vector<UniqueFd> input = await_slot(slot, ipc::kSlotRequest, 2, 4);
  mark_step("run: request received");
  auto text = ipc::read_all(input[0].get(), kMaxRequestBytes);
  if (!text) setup_failed(result_fd, text.error().message);
  auto req = ipc::decode_request(*text);
  if (!req) setup_failed(result_fd, req.error().message);
  input[0].reset();
  const bool has_heap = req->heap != ipc::HeapMode::none;
  if (input.size() != 2 + size_t(has_heap) + size_t(req->workspace))
    setup_failed(result_fd, "the heap or workspace of the request is missing or unexpected");
  const int heap_fd = has_heap ? input[2].get() : -1;
  g_profile = req->profile;
  mark_step("run: request read");
  if (!req->pip_key.empty()) {
    if (!valid_pip_key(req->pip_key)) setup_failed(result_fd, "invalid pip dependency key");
    if (g_pip_root.empty()) setup_failed(result_fd, "pip dependencies are not available in this worker");
  }

  jail.request = &*req;
  jail.relay = sandbox && rt.uses_relay() && req->relay();
  jail.workspace_fd = req->workspace ? input.back().get() : -1;
  if (req->workspace && !sandbox) setup_failed(result_fd, "workspaces need the sandbox");
  if (auto s = apply_jail(JailPhase::request, jail); !s) setup_failed(result_fd, s.error().message);
  if (req->workspace) input.back().reset();
  if (sandbox) {
    // Hand the supervisor our /out: the tmpfs lives as long as it holds the fd, so it can read
    // what the run leaves there after the run is gone.
    int out = ::open("/out", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    char tag = ipc::kSlotOutDir;
    if (out >= 0) (void)ipc::send_with_fds(slot, &tag, 1, &out, 1);
    if (out >= 0) ::close(out);
  }

  // stdin, stdout, stderr, result, broker, slot (, heap) -> 0..5 (, 6); everything else closed.
  int want[7] = {input[1].get(),   fds.out.get(), fds.err.get(), fds.result.get(),
                 fds.broker.get(), slot,          heap_fd};
  place_fds(want, heap_fd < 0 ? 6 : 7, result_fd);
  mark_step("run: fds in place");

  if (auto s = apply_jail(JailPhase::limits, jail); !s)
    setup_failed(ipc::kResultFd, s.error().message);
  if (jail.relay) {
    start_relay(own_netns);
    mark_step("run: relay started");
  }

  if (auto s = apply_jail(JailPhase::lockdown, jail); !s)
    setup_failed(ipc::kResultFd, s.error().message);
  await_go();
  if (!req->live) ::close(ipc::kSlotFd);
  mark_step("run: go received");
  g_kept = req->live;
  if (auto s = write_input_files(req->cwd, req->files, req->workspace); !s) {
    input_failed(s.error().message);
    if (!req->live) _exit(1);
    serve_live_calls(rt, *req);
  }
  int code = rt.run(*req);
  if (g_kept) serve_live_calls(rt, *req);
  std::fflush(stdout);
  std::fflush(stderr);
  // Done: closing the output and result now (not as part of exit, which first unmaps the whole
  // heap) lets the supervisor answer while the kernel tears this process down. All in one call,
  // so it is woken once, not once per pipe.
  ::syscall(SYS_close_range, 0u, unsigned(ipc::kBrokerFd), 0u);
  _exit(code & 0xff);
}

// The arguments the supervisor wrote to ipc::kWorkerArgsFd, which is closed afterwards.
Result<std::vector<std::string>> read_args() {
  auto text = ipc::read_all(ipc::kWorkerArgsFd, kMaxRequestBytes);
  ::close(ipc::kWorkerArgsFd);
  if (!text) return make_error("cannot read the arguments on fd 4: " + text.error().message);
  std::vector<std::string> args;
  for (size_t start = 0, end; (end = text->find('\0', start)) != std::string::npos; start = end + 1)
    args.emplace_back(*text, start, end - start);
  return args;
}

void reply(int sock, ipc::ReplyKind kind, int32_t pid, int32_t status, int pidfd = -1) {
  ipc::Reply r{kind, pid, status};
  (void)ipc::send_with_fds(sock, &r, sizeof r, pidfd >= 0 ? &pidfd : nullptr, pidfd >= 0 ? 1 : 0);
}

}  // namespace

std::string pip_site_dir(const ipc::RunRequest& request) {
  if (request.pip_key.empty()) return {};
  return g_sandbox ? std::string(kPipSiteDir) : g_pip_root + "/" + request.pip_key + "/site";
}

void mark_step(const char* name) {
  if (g_nmarks == std::size(g_marks)) return;
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  int64_t minflt = -1;
  if (g_forked) {
    rusage ru{};
    if (::getrusage(RUSAGE_SELF, &ru) == 0) minflt = ru.ru_minflt;
  }
  g_marks[g_nmarks++] = {name, int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec, minflt};
}

void leaving() { g_kept = false; }

void write_report(const ipc::ChildReport& report) {
  if (!g_profile && !g_kept) return write_all_fd(ipc::kResultFd, ipc::encode(report));
  mark_step("run: report written");
  ipc::ChildReport with_steps = report;
  with_steps.kept = g_kept;
  for (size_t i = 0; g_profile && i < g_nmarks; ++i)
    with_steps.steps.push_back({g_marks[i].name, g_marks[i].ns, g_marks[i].minflt});
  write_all_fd(ipc::kResultFd, ipc::encode(with_steps));
}

int zygote_main(Runtime& rt) {
  auto args = read_args();
  if (!args) {
    std::fprintf(stderr, "1mcp worker: %s\n", args.error().message.c_str());
    return 2;
  }
  const std::vector<std::string>& argv = *args;
  bool sandbox = true;
  std::vector<std::string> writable_roots;
  std::vector<HostMount> mounts;
  for (size_t i = 0; i < argv.size(); ++i) {
    if (argv[i] == "--no-sandbox") sandbox = false;
    if (argv[i].rfind("--writable=", 0) == 0) writable_roots.push_back(argv[i].substr(11));
    if (argv[i] == "--mount" && i + 3 < argv.size()) {  // --mount ro|rw HOST PATH
      mounts.push_back({argv[i + 2], argv[i + 3], argv[i + 1] == "rw"});
      i += 3;
    }
    if (argv[i] == "--pip-root" && i + 1 < argv.size()) g_pip_root = argv[++i];
    if (argv[i] == "--mcps-root" && i + 1 < argv.size()) g_mcps_root = argv[++i];
  }
  g_sandbox = sandbox;
  if (writable_roots.empty()) writable_roots = ipc::default_writable();
  int control = kControlFd;
  ::fcntl(control, F_SETFD, FD_CLOEXEC);
  ::signal(SIGPIPE, SIG_IGN);

  if (sandbox) {
    if (auto s = jail_enter_zygote(control, writable_roots, mounts, g_pip_root, g_mcps_root); !s) {
      std::fprintf(stderr, "1mcp worker: cannot enter the sandbox: %s\n", s.error().message.c_str());
      return 121;
    }
    if (auto s = jail_prepare_filters(); !s) {
      std::fprintf(stderr, "1mcp worker: %s\n", s.error().message.c_str());
      return 122;
    }
  } else {
    // Orphans of runs (their forked children) are reparented to us and reaped below.
    ::prctl(PR_SET_CHILD_SUBREAPER, 1);
  }
  if (auto s = rt.init(); !s) {
    std::fprintf(stderr, "1mcp worker: %s\n", s.error().message.c_str());
    return 2;
  }

  g_sample_request = sample_request();

  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  if (sigprocmask(SIG_BLOCK, &chld, nullptr) != 0) die("sigprocmask");
  int sigfd = ::signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sigfd < 0) die("signalfd");
  const uint64_t vm_base = vm_size_bytes();

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
      std::vector<UniqueFd> received;
      auto got = ipc::recv_with_fds(control, &tag, sizeof tag, &received, ipc::kRunFdCount);
      if (!got || *got == 0) {
        // Supervisor gone: stop serving; runs die with us (PDEATHSIG).
        serving = false;
        for (auto& [pid, sock] : running) ::kill(pid, SIGKILL);
        continue;
      }
      if (received.size() != ipc::kRunFdCount) continue;  // malformed: fds closed by RAII
      SlotFds fds(received);
      reset_marks();
      mark_step("zygote: slot asked for");
      if (sandbox) {
        if (auto s = jail_before_fork(); !s) {
          std::fprintf(stderr, "1mcp worker: %s\n", s.error().message.c_str());
          reply(fds.reply.get(), ipc::ReplyKind::failed, 0, errno ? errno : EPERM);
          continue;
        }
      }
      rt.before_fork();
      mark_step("zygote: forking");
      pid_t pid = ::fork();
      if (pid == 0) child_main(rt, fds, control, sigfd, sandbox, vm_base);
      int fork_errno = errno;
      rt.after_fork_parent();
      if (sandbox) {
        if (auto s = jail_after_fork_parent(); !s) die("reset pid namespace");
      }
      if (pid < 0) {
        reply(fds.reply.get(), ipc::ReplyKind::failed, 0, fork_errno);
        continue;
      }
      int pidfd = int(::syscall(SYS_pidfd_open, pid, 0));
      reply(fds.reply.get(), ipc::ReplyKind::started, pid, 0, pidfd);
      if (pidfd >= 0) ::close(pidfd);
      running.emplace(pid, std::move(fds.reply));
    }
  }
  return 0;
}

}  // namespace onemcp::worker
