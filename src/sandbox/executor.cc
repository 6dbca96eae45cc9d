#include "sandbox/executor.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "base/log.h"

namespace onemcp::sandbox {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kMaxReportBytes = 1u << 20;
constexpr auto kOomCheckInterval = std::chrono::milliseconds(50);
constexpr auto kReapPatience = std::chrono::milliseconds(2500);
// How long a killed run may take to freeze. Past it, its processes are SIGKILLed all the same and
// the answer may miss what one of them was writing at that very moment.
constexpr auto kFreezePatience = std::chrono::milliseconds(100);
// A live call past its deadline or cancelled is interrupted first (SIGINT: KeyboardInterrupt in
// Python, an uncatchable interrupt in JS), so that its interpreter and its state survive; one
// that has not finished this long after is killed.
constexpr auto kInterruptPatience = std::chrono::milliseconds(1000);

std::string errno_msg(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

// The read end is ours: polled, non-blocking.
Result<std::pair<UniqueFd, UniqueFd>> make_pipe() {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return make_error(errno_msg("pipe2"));
  ::fcntl(p[0], F_SETFL, O_NONBLOCK);
  return std::pair{UniqueFd(p[0]), UniqueFd(p[1])};
}

Result<std::pair<UniqueFd, UniqueFd>> make_socketpair(int type) {
  int sv[2];
  if (::socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv) != 0)
    return make_error(errno_msg("socketpair"));
  return std::pair{UniqueFd(sv[0]), UniqueFd(sv[1])};
}

// Host pid of the process a pidfd refers to (the zygote reports pids of its own namespace).
pid_t pidfd_host_pid(int pidfd) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/self/fdinfo/%d", pidfd);
  FILE* f = std::fopen(path, "re");
  if (!f) return -1;
  char line[256];
  pid_t pid = -1;
  while (std::fgets(line, sizeof line, f)) {
    if (std::strncmp(line, "Pid:", 4) == 0) pid = pid_t(std::atol(line + 4));
  }
  std::fclose(f);
  return pid;
}

// Drains a non-blocking fd into `dst`, keeping at most `cap` bytes. Returns false on EOF.
bool drain(int fd, std::string& dst, size_t cap, bool& overflow) {
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      size_t room = dst.size() < cap ? cap - dst.size() : 0;
      if (size_t(n) > room) overflow = true;
      dst.append(buf, std::min(size_t(n), room));
      continue;
    }
    if (n == 0) return false;
    if (errno == EINTR) continue;
    return errno == EAGAIN;  // EAGAIN: still open; other errors: treat as closed
  }
}

}  // namespace

CancelToken::CancelToken() : fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

void CancelToken::cancel() {
  if (cancelled_.exchange(true)) return;
  uint64_t one = 1;
  ssize_t r = ::write(fd_.get(), &one, sizeof one);
  (void)r;
}

// A run slot as the supervisor holds it (see Zygote::start): the process, placed in its cgroups,
// waiting on `slot` for its request.
struct RunSlot {
  UniqueFd reply;          // zygote -> us: exited (started came already)
  UniqueFd out, err, res;  // read ends, non-blocking
  UniqueFd slot;           // kSlotRequest goes here; the run's /out comes back
  UniqueFd broker;         // our end of the broker channel
  UniqueFd pidfd;
  pid_t host_pid = -1;
  std::unique_ptr<CgroupScope> scope;

  RunSlot() = default;
  RunSlot(const RunSlot&) = delete;
  RunSlot& operator=(const RunSlot&) = delete;
  // Never used: the process (waiting for a request, or for its placement) is killed, and its
  // scope removed once it is gone.
  ~RunSlot() {
    if (pidfd.valid()) ::syscall(SYS_pidfd_send_signal, pidfd.get(), SIGKILL, nullptr, 0);
    RunTeardown(std::move(pidfd), std::move(scope), true);
  }
  bool gone() const {
    pollfd p{pidfd.get(), POLLIN, 0};
    return ::poll(&p, 1, 0) != 0;
  }
};

Zygote::Live::~Live() {
  // Thawed first: a v1 freezer holds even a SIGKILLed process until then. ~RunSlot ends it.
  if (slot_ && slot_->scope) slot_->scope->set_frozen(false);
}

bool Zygote::Live::alive() const { return slot_ && slot_->pidfd.valid() && !slot_->gone(); }

Zygote::Zygote(LaunchSpec spec, CgroupManager* cgroups, size_t ready_slots)
    : spec_(std::move(spec)), cgroups_(cgroups), slots_wanted_(ready_slots) {}

Result<std::unique_ptr<Zygote>> Zygote::start(LaunchSpec spec, CgroupManager* cgroups,
                                              size_t ready_slots) {
  std::unique_ptr<Zygote> z(new Zygote(std::move(spec), cgroups, ready_slots));
  {
    std::lock_guard lk(z->mu_);
    if (auto s = z->spawn_locked(); !s) return s.error();
  }
  if (ready_slots > 0) z->filler_ = std::thread([z = z.get()] { z->fill_slots(); });
  return z;
}

Zygote::~Zygote() {
  {
    std::lock_guard lk(slots_mu_);
    stopping_ = true;
  }
  slots_cv_.notify_all();
  if (filler_.joinable()) filler_.join();
  slots_.clear();
  std::lock_guard lk(mu_);
  control_.reset();  // the zygote exits on EOF and takes its runs with it
  if (pid_ > 0) {
    int status;
    for (int i = 0; i < 200; ++i) {
      if (::waitpid(pid_, &status, WNOHANG) == pid_) return;
      ::usleep(1000);
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status, 0);
  }
}

pid_t Zygote::pid() const { return pid_; }

size_t Zygote::ready_slots() const {
  std::lock_guard lk(slots_mu_);
  return slots_.size();
}

void Zygote::fill_slots() {
  std::unique_lock lk(slots_mu_);
  for (;;) {
    slots_cv_.wait(lk, [&] { return stopping_ || (slots_on_ && slots_.size() < slots_wanted_); });
    if (stopping_) return;
    const uint64_t memory_bytes = memory_bytes_;
    lk.unlock();
    auto slot = make_slot(memory_bytes);
    lk.lock();
    if (slot) {
      slots_.push_back(std::move(*slot));
      continue;
    }
    // The worker is restarting or the host is out of something: calls make their own slots
    // (and report why) until this works again.
    log::debug("cannot make a run slot ahead: " + slot.error().message);
    slots_cv_.wait_for(lk, std::chrono::milliseconds(200), [&] { return stopping_; });
  }
}

std::unique_ptr<RunSlot> Zygote::take_slot() {
  std::unique_ptr<RunSlot> found;
  std::vector<std::unique_ptr<RunSlot>> dead;  // destroyed outside the lock
  {
    std::lock_guard lk(slots_mu_);
    slots_on_ = true;
    while (!found && !slots_.empty()) {
      auto s = std::move(slots_.front());
      slots_.erase(slots_.begin());
      // Killed with its zygote (a restart): not usable.
      if (s->gone())
        dead.push_back(std::move(s));
      else
        found = std::move(s);
    }
  }
  // Refilled once this run has built its sandbox (see run()), not now: making a slot contends
  // with that for the kernel's namespace, mount and cgroup locks.
  if (!found) slots_cv_.notify_all();
  return found;
}

Result<std::unique_ptr<RunSlot>> Zygote::make_slot(uint64_t memory_bytes) {
  auto slot = std::make_unique<RunSlot>();
  auto out = make_pipe();
  if (!out) return out.error();
  auto err = make_pipe();
  if (!err) return err.error();
  auto res = make_pipe();
  if (!res) return res.error();
  auto sock = make_socketpair(SOCK_STREAM);
  if (!sock) return sock.error();
  auto broker = make_socketpair(SOCK_STREAM);
  if (!broker) return broker.error();
  auto reply = make_socketpair(SOCK_SEQPACKET);
  if (!reply) return reply.error();
  slot->out = std::move(out->first);
  slot->err = std::move(err->first);
  slot->res = std::move(res->first);
  slot->slot = std::move(sock->first);
  slot->broker = std::move(broker->first);
  slot->reply = std::move(reply->first);

  const int fds[ipc::kRunFdCount] = {reply->second.get(), out->second.get(),  err->second.get(),
                                     res->second.get(),   sock->second.get(), broker->second.get()};
  if (auto s = send_run(fds); !s) return s.error();
  // Only the process holds the other ends now, so EOF means every writer is gone.
  for (auto* theirs : {&reply->second, &out->second, &err->second, &res->second, &sock->second,
                       &broker->second})
    theirs->reset();

  // The scope is made while the zygote forks; the process waits for kSlotPlaced until it is in it.
  if (cgroups_) {
    CgroupLimits limits;
    limits.memory_bytes = memory_bytes;
    limits.pids_max = kRunPidsMax;
    limits.cpu_weight = kRunCpuWeight;
    auto made = cgroups_->new_scope(limits);
    if (!made) return made.error();
    slot->scope = std::move(*made);
  }

  pollfd p{slot->reply.get(), POLLIN, 0};
  int n;
  while ((n = ::poll(&p, 1, 10000)) < 0 && errno == EINTR) {
  }
  if (n == 0) return make_error("the worker did not fork a run in time");
  ipc::Reply r{};
  std::vector<UniqueFd> got;
  auto n2 = ipc::recv_with_fds(slot->reply.get(), &r, sizeof r, &got, 1);
  if (!n2 || *n2 != sizeof r) return make_error("the worker did not fork a run (it is restarting)");
  if (r.kind != ipc::ReplyKind::started)
    return make_error(std::string("worker could not fork a run: ") + std::strerror(r.status));
  if (got.size() != 1) return make_error("the worker sent no pidfd for its run");
  slot->pidfd = std::move(got[0]);
  slot->host_pid = pidfd_host_pid(slot->pidfd.get());
  if (slot->host_pid <= 0) {
    return make_error("cannot identify the run's process (pid " + std::to_string(r.pid) + ")");
  }
  if (slot->scope) {
    if (auto added = slot->scope->add(slot->host_pid); !added)
      return make_error("cannot place the run in its cgroup: " + added.error().message);
  }
  // Let it ready itself (it waits until now, so nothing executes outside its limits).
  char placed = ipc::kSlotPlaced;
  if (::send(slot->slot.get(), &placed, 1, MSG_NOSIGNAL) != 1)
    return make_error("the run's process is gone before its request");
  return slot;
}

Status Zygote::wait_ready(std::chrono::milliseconds timeout) {
  std::lock_guard lk(mu_);
  return wait_ready_locked(timeout);
}

Status Zygote::write_id_maps() {
  // Inner ids 0..65535 become an unused high host range: root inside is nobody outside.
  std::string map = "0 " + std::to_string(kHostIdBase) + " 65536\n";
  for (const char* file : {"uid_map", "gid_map"}) {
    std::string path = "/proc/" + std::to_string(pid_) + "/" + file;
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd.valid() || ::write(fd.get(), map.data(), map.size()) != ssize_t(map.size()))
      return make_error(errno_msg(("cannot write " + path).c_str()));
  }
  uint32_t ack = ipc::kIdMapTag;
  return ipc::send_with_fds(control_.get(), &ack, sizeof ack, nullptr, 0);
}

Status Zygote::wait_ready_locked(std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    pollfd p{control_.get(), POLLIN, 0};
    int n = left.count() > 0 ? ::poll(&p, 1, int(left.count())) : 0;
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return make_error(spec_.exe + " did not become ready in time");
    uint32_t tag = 0;
    std::vector<UniqueFd> fds;
    auto got = ipc::recv_with_fds(control_.get(), &tag, sizeof tag, &fds, 0);
    if (got && *got == sizeof tag && tag == ipc::kIdMapTag) {
      if (auto s = write_id_maps(); !s) return s;
      continue;
    }
    if (got && *got == sizeof tag && tag == ipc::kReadyTag) {
      ready_ = true;
      return {};
    }
    int status = 0;
    std::string why;
    if (::waitpid(pid_, &status, 0) == pid_) {
      why = WIFEXITED(status) ? " (exit code " + std::to_string(WEXITSTATUS(status)) + ")"
                              : " (signal " + std::to_string(WTERMSIG(status)) + ")";
      pid_ = -1;
    }
    return make_error(spec_.exe + " failed to initialise" + why);
  }
}

Status Zygote::spawn_locked() {
  ++generation_;
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int st;
    ::waitpid(pid_, &st, 0);
    pid_ = -1;
  }
  auto pair = make_socketpair(SOCK_SEQPACKET);
  if (!pair) return pair.error();
  auto& [ours, theirs] = *pair;

  std::string arg_bytes;
  for (auto& a : spec_.args) arg_bytes.append(a).push_back('\0');
  auto args = ipc::memfd_with("1mcp-worker-args", arg_bytes);
  if (!args) return args.error();
  // Both sources above 4, so that neither dup2 below overwrites the other's source.
  UniqueFd control_src(::fcntl(theirs.get(), F_DUPFD_CLOEXEC, 5));
  UniqueFd args_src(::fcntl(args->get(), F_DUPFD_CLOEXEC, 5));
  if (!control_src.valid() || !args_src.valid()) return make_error(errno_msg("fcntl"));

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  // dup2 onto fds 3 and 4 clears CLOEXEC there; every other fd of ours is CLOEXEC.
  posix_spawn_file_actions_adddup2(&fa, control_src.get(), 3);
  posix_spawn_file_actions_adddup2(&fa, args_src.get(), ipc::kWorkerArgsFd);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  // Its name only: the arguments travel on kWorkerArgsFd (see ipc/wire.h).
  std::string name = spec_.exe.substr(spec_.exe.rfind('/') + 1);
  std::vector<char*> argv{name.data(), nullptr};
  std::vector<char*> envp;
  for (auto& e : spec_.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  sigset_t def;
  sigemptyset(&def);
  sigaddset(&def, SIGPIPE);
  sigaddset(&def, SIGCHLD);
  posix_spawnattr_setsigdefault(&attr, &def);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid;
  int rc = ::posix_spawn(&pid, spec_.exe.c_str(), &fa, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return make_error("cannot start " + spec_.exe + ": " + std::strerror(rc));
  pid_ = pid;
  ready_ = false;
  control_ = std::move(ours);
  log::debug("started worker " + spec_.exe + " pid " + std::to_string(pid));
  return {};
}

Status Zygote::send_run(const int* fds) {
  uint32_t tag = 1;
  std::lock_guard lk(mu_);
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (control_.valid() && !ready_) {
      if (auto s = wait_ready_locked(std::chrono::seconds(30)); !s) return s;
    }
    if (control_.valid()) {
      auto s = ipc::send_with_fds(control_.get(), &tag, sizeof tag, fds, ipc::kRunFdCount);
      if (s) return s;
      log::warn("worker " + spec_.exe + " unreachable (" + s.error().message + "), restarting");
    }
    if (auto s = spawn_locked(); !s) return s;
  }
  return make_error("worker unavailable");
}

RunTeardown::~RunTeardown() {
  // Readable once the process has exited: by then its memory is unmapped and, with a pid
  // namespace of its own, every other process of it is gone too. Bounded: the scope's removal
  // below kills whatever is left.
  if (pidfd.valid()) {
    pollfd p{pidfd.get(), POLLIN, 0};
    while (::poll(&p, 1, 10000) < 0 && errno == EINTR) {
    }
  }
  scope.reset();
}

Result<RunOutput> Zygote::run(const ipc::RunRequest& req, const std::string& stdin_data,
                              const CancelToken* cancel, const BrokerHandler* broker,
                              const BrokerTunnels* tunnels,
                              const std::function<Status()>& before_code, int heap_fd,
                              std::unique_ptr<Live>* live, int workspace_fd) {
  if ((req.heap != ipc::HeapMode::none) != (heap_fd >= 0)) {
    return make_error("a run with a heap mode needs its heap memfd, and only such a run");
  }
  if (req.live != (live != nullptr)) return make_error("a live run needs its live process");
  // A later call of a live process: its sandbox (and workspace) exist already.
  std::unique_ptr<Live> held;
  if (live) {
    held = std::move(*live);
    if (held && !held->alive()) held.reset();
  }
  const bool later_call = held != nullptr;
  uint64_t calls_before = later_call ? held->calls_ : 0;
  if (later_call && req.heap != ipc::HeapMode::none)
    return make_error("a live process's later calls cannot change its heap");
  if (!later_call && req.workspace != (workspace_fd >= 0))
    return make_error("a run with a workspace needs its mount, and only such a run");
  auto t0 = Clock::now();
  std::vector<ipc::RunStep> steps;
  auto mark = [&](const char* name) {
    if (!req.profile) return;
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    steps.push_back({name, int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec, -1});
  };
  mark("supervisor: run requested");
  const uint64_t memory_bytes = req.mem_mb ? req.mem_mb * (1ull << 20) + kRunMemorySlackBytes : 0;
  {
    std::lock_guard lk(slots_mu_);
    memory_bytes_ = memory_bytes;
  }
  std::unique_ptr<RunSlot> slot;
  UniqueFd out_dir;
  if (later_call) {
    slot = std::move(held->slot_);
    out_dir = std::move(held->out_dir_);
    mark("supervisor: live process taken");
  } else {
    slot = take_slot();
    mark(slot ? "supervisor: ready slot taken" : "supervisor: no slot ready");
  }
  if (!slot) {
    auto made = make_slot(memory_bytes);
    if (!made) return made.error();
    slot = std::move(*made);
    mark("supervisor: slot made");
  }
  if (slot->scope) {
    if (later_call) slot->scope->set_frozen(false);  // frozen between its calls
    if (auto s = slot->scope->set_memory_limit(memory_bytes); !s) return s.error();
  }
  auto reqfd = ipc::memfd_with("1mcp-request", ipc::encode(req));
  if (!reqfd) return reqfd.error();
  auto infd = ipc::memfd_with("1mcp-stdin", stdin_data);
  if (!infd) return infd.error();
  if (later_call) {
    // The call's own output and result pipes (the last call's were closed when it was done).
    auto out = make_pipe();
    if (!out) return out.error();
    auto err = make_pipe();
    if (!err) return err.error();
    auto res = make_pipe();
    if (!res) return res.error();
    char tag = ipc::kSlotRequest;
    const int fds[ipc::kLiveCallFdCount] = {reqfd->get(), infd->get(), out->second.get(),
                                            err->second.get(), res->second.get()};
    if (auto s = ipc::send_with_fds(slot->slot.get(), &tag, 1, fds, ipc::kLiveCallFdCount); !s) {
      return make_error("the live process is gone before the call: " + s.error().message);
    }
    slot->out = std::move(out->first);
    slot->err = std::move(err->first);
    slot->res = std::move(res->first);
  } else {
    char tag = ipc::kSlotRequest;
    int fds[4] = {reqfd->get(), infd->get()};
    size_t n = 2;
    if (heap_fd >= 0) fds[n++] = heap_fd;
    if (workspace_fd >= 0) fds[n++] = workspace_fd;
    if (auto s = ipc::send_with_fds(slot->slot.get(), &tag, 1, fds, n); !s) {
      return make_error("the run's process is gone before its request: " + s.error().message);
    }
  }
  reqfd->reset();
  infd->reset();
  mark("supervisor: request sent");
  if (before_code) {
    if (auto s = before_code(); !s) return s.error();  // ~RunSlot kills the process
    mark("supervisor: ready for the code");
  }
  // When it failed its own setup and is gone already, its report and exit status say why, as
  // for any other run.
  const char go = ipc::kSlotGo;
  (void)::send(slot->slot.get(), &go, 1, MSG_NOSIGNAL);
  const auto deadline = t0 + std::chrono::milliseconds(req.timeout_ms ? req.timeout_ms : 1u << 30);
  BrokerChannel channel(std::move(slot->broker), broker, deadline, tunnels);
  std::unique_ptr<CgroupScope> scope = std::move(slot->scope);
  UniqueFd pidfd = std::move(slot->pidfd);
  const pid_t host_pid = slot->host_pid;
  UniqueFd& reply = slot->reply;
  UniqueFd& slot_sock = slot->slot;
  const int out_fd = slot->out.get(), err_fd = slot->err.get(), res_fd = slot->res.get();

  RunOutput o;
  std::string report;
  const size_t cap = req.stdout_bytes ? size_t(req.stdout_bytes) : SIZE_MAX;
  bool exited = false, out_open = true, err_open = true, res_open = true, reply_open = true;
  bool call_done = false;  // a live call is done and its process stays (ChildReport::kept)
  bool live_done = false;  // the live process said the call is done (ipc::kSlotDone)
  bool awaiting_out_dir = !later_call;
  int status = 0;
  std::optional<Outcome> forced;  // why we killed it
  std::optional<Clock::time_point> drain_until;
  auto next_oom_check = t0 + kOomCheckInterval;
  std::optional<ipc::ChildReport> final_report;  // decoded once the result pipe is closed
  // What the pipes still open hold now (once nothing more of the run is coming).
  auto drain_open = [&] {
    bool overflow = false, big = false;
    if (out_open) drain(out_fd, o.out, cap, overflow);
    if (err_open) drain(err_fd, o.err, cap, overflow);
    if (res_open) drain(res_fd, report, kMaxReportBytes, big);
    o.truncated |= overflow;
  };
  auto take_out_dir = [&] {
    // The run's /out (a tmpfs in its own mount namespace): alive while we hold the fd.
    char tag = 0;
    std::vector<UniqueFd> got;
    auto n = ipc::recv_with_fds(slot_sock.get(), &tag, 1, &got, 1);
    if (n && *n == 1 && tag == ipc::kSlotOutDir && got.size() == 1) out_dir = std::move(got[0]);
    awaiting_out_dir = false;
    // A live process keeps its slot socket: its later calls come that way.
    if (!req.live) slot_sock.reset();
    // Its sandbox is built: the next slot is made now, while this run executes (earlier, it
    // would contend with this run's namespaces and mounts for the kernel's locks).
    slots_cv_.notify_all();
  };

  // Without the sandbox the run's forked children share its process group; with it, killing
  // the run (pid 1 of its pid namespace) takes every process of the namespace with it.
  const bool group_kill = !sandboxed();
  const bool placed = scope != nullptr;  // every process it forks is in its scope too
  bool settled = false;  // frozen and SIGKILLed: what it wrote is final, answer without waiting
  auto kill_now = [&] {
    // Tearing down a pid namespace full of processes takes the kernel a while (each one's memory
    // is unmapped); frozen first, the run can be answered at once and torn down off that path.
    if (placed && !exited && !settled && scope->has_freezer()) {
      if (!scope->freeze_and_kill(kFreezePatience))
        log::debug("run not frozen within " + std::to_string(kFreezePatience.count()) + " ms");
      settled = true;
    }
    if (pidfd.valid()) ::syscall(SYS_pidfd_send_signal, pidfd.get(), SIGKILL, nullptr, 0);
    if (group_kill && host_pid > 0 && !exited) ::kill(-host_pid, SIGKILL);
  };
  std::optional<Clock::time_point> killed_at;
  auto kill_run = [&](Outcome why) {
    if (!forced) forced = why;
    if (!killed_at) killed_at = Clock::now();
    kill_now();
  };
  std::optional<Outcome> interrupted;  // why a live call was interrupted
  std::optional<Clock::time_point> interrupted_at;
  auto stop_run = [&](Outcome why) {
    if (!req.live || interrupted || exited) return kill_run(why);
    interrupted = why;
    interrupted_at = Clock::now();
    mark("supervisor: live call interrupted");
    if (pidfd.valid()) ::syscall(SYS_pidfd_send_signal, pidfd.get(), SIGINT, nullptr, 0);
  };

  while (!settled && !call_done && (!exited || out_open || err_open || res_open)) {
    auto now = Clock::now();
    if (!forced && !interrupted && now >= deadline) stop_run(Outcome::timeout);
    if (!forced && interrupted && now >= *interrupted_at + kInterruptPatience)
      kill_run(*interrupted);
    // An OOM kill anywhere in the run's memory cgroup ends the whole run: it is over budget,
    // and what survives of it would only report a partial result.
    if (scope && !forced && !exited && now >= next_oom_check) {
      if (scope->oom_killed()) kill_run(Outcome::memory);
      next_oom_check = now + kOomCheckInterval;
    }
    if (settled) break;
    if (exited && !drain_until) drain_until = now + std::chrono::milliseconds(100);
    if (drain_until && now >= *drain_until) {
      // Something the run spawned still holds its pipes: kill the group and stop reading.
      if (group_kill && host_pid > 0) ::kill(-host_pid, SIGKILL);
      break;
    }
    auto until = drain_until ? std::min(*drain_until, deadline) : deadline;
    if (scope && !exited) until = std::min(until, next_oom_check);
    if (interrupted && !forced) until = std::min(until, *interrupted_at + kInterruptPatience);
    if (forced) {
      until = now + std::chrono::milliseconds(drain_until ? 5 : 2000);
      if (killed_at && !exited) until = std::min(until, *killed_at + kReapPatience);
    }
    int wait_ms = int(std::max<int64_t>(
        0, std::chrono::duration_cast<std::chrono::milliseconds>(until - now).count() + 1));

    pollfd p[7];
    int idx[7];
    int np = 0;
    auto add = [&](bool on, int fd, int tag) {
      if (!on) return;
      p[np] = {fd, POLLIN, 0};
      idx[np++] = tag;
    };
    add(out_open, out_fd, 0);
    add(err_open, err_fd, 1);
    add(res_open, res_fd, 2);
    add(reply_open, reply.get(), 3);
    add(cancel && !forced && !interrupted, cancel ? cancel->fd() : -1, 4);
    add(((awaiting_out_dir && sandboxed()) || (req.live && !live_done)) && slot_sock.valid(),
        slot_sock.get(), 5);
    add(channel.open() && !exited, channel.fd(), 6);
    int n = ::poll(p, nfds_t(np), wait_ms);
    if (n < 0 && errno != EINTR) return make_error(errno_msg("poll"));
    if (forced && !exited && killed_at && Clock::now() - *killed_at > kReapPatience) {
      // SIGKILL is certain, but tearing down a pid namespace full of processes on a loaded
      // machine can take a while: the outcome is known, so answer now and let the kernel
      // finish (the cgroup scope kills any straggler when it is destroyed).
      log::warn("run still being torn down " + std::to_string(kReapPatience.count()) +
                " ms after SIGKILL; answering without waiting");
      status = SIGKILL;  // as if reaped: killed by SIGKILL
      exited = true;
      break;
    }
    for (int i = 0; i < np && n > 0; ++i) {
      if (!p[i].revents) continue;
      bool overflow = false;
      switch (idx[i]) {
        case 0:
          out_open = drain(p[i].fd, o.out, cap, overflow);
          break;
        case 1:
          err_open = drain(p[i].fd, o.err, cap, overflow);
          break;
        case 2: {
          bool big = false;
          res_open = drain(p[i].fd, report, kMaxReportBytes, big);
          break;
        }
        case 6:
          channel.on_readable();
          break;
        case 5:
          if (awaiting_out_dir && sandboxed()) {
            take_out_dir();
          } else {
            // A live call's end (anything else its own code wrote there is ignored).
            char b = 0;
            ssize_t got = ::recv(slot_sock.get(), &b, 1, MSG_DONTWAIT);
            if (got == 1 && b == ipc::kSlotDone) live_done = true;
            if (got == 0) live_done = true;  // closed: the process is going
          }
          break;
        case 3: {
          ipc::Reply r{};
          std::vector<UniqueFd> got;
          auto n2 = ipc::recv_with_fds(reply.get(), &r, sizeof r, &got, 1);
          if (!n2 || *n2 == 0) {
            reply_open = false;
            if (!exited) {  // the zygote died under us
              exited = true;
              if (!forced) forced = Outcome::internal;
              kill_now();
            }
            break;
          }
          if (r.kind == ipc::ReplyKind::exited) {
            mark("supervisor: exit seen");
            status = r.status;
            exited = true;
          } else {
            kill_now();
            return make_error("unexpected message from the worker about a run");
          }
          break;
        }
        case 4:
          stop_run(Outcome::killed);
          break;
      }
      if (overflow) {
        o.truncated = true;
        kill_run(Outcome::output_limit);
      }
    }
    // Finished: the run reported the code it exits with and closed its output and result, and
    // nothing else of it is left. Its process may still be exiting (unmapping a large heap takes
    // milliseconds): answer now, and let the kernel finish after the answer (the scope is torn
    // down then). A process that has begun to exit is no longer listed in its scope (the kernel
    // skips thread groups without a live thread), so an empty scope is such an end too; a
    // process it forked keeps the scope listed, and the run is awaited. The SIGKILL is for a
    // script that closed them itself and went on running. Looked at once, when the last of them
    // closes (the report is final then).
    if (req.live && live_done && !exited && !forced && !final_report) {
      // A live call ends when its process says so (ipc::kSlotDone), though something of it (a
      // process its code forked) may still hold its pipes: what they hold now is the call's
      // output; later writes are not the call's.
      drain_open();
      out_open = err_open = res_open = false;
      final_report = ipc::decode_report(report);
      // Without a report that keeps the process, it is not a proper end (its own code wrote to
      // the socket): the deadline ends the call.
      if (final_report->kept && final_report->exit_code) {
        mark("supervisor: live call done");
        call_done = true;
      }
    }
    if (!req.live && !exited && !forced && !out_open && !err_open && !res_open && !final_report) {
      final_report = ipc::decode_report(report);
      if (placed && final_report->exit_code) {
        const auto procs = scope->processes();
        if (procs && (procs->empty() || (procs->size() == 1 && (*procs)[0] == host_pid))) {
          mark("supervisor: finished, exit not awaited");
          ::syscall(SYS_pidfd_send_signal, pidfd.get(), SIGKILL, nullptr, 0);
          status = W_EXITCODE(*final_report->exit_code, 0);
          exited = true;
          settled = true;
        }
      }
    }
  }

  if (settled) {
    // Every process is frozen or SIGKILLed: what the pipes hold now is the run's output.
    drain_open();
    pollfd p{slot_sock.get(), POLLIN, 0};
    if (awaiting_out_dir && slot_sock.valid() && ::poll(&p, 1, 0) == 1) take_out_dir();
    if (!exited) status = SIGKILL;  // as it will be reaped: killed by SIGKILL
  }
  mark("supervisor: output drained");
  channel.close();  // answers still being computed are dropped, tunnels closed; threads joined
  o.duration_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  o.report = final_report ? std::move(*final_report) : ipc::decode_report(report);
  // ipc::RunRequest::profile: the supervisor's steps and the run's, in order of time.
  auto with_steps = [&]() -> RunOutput {
    if (req.profile) {
      mark("supervisor: result ready");
      steps.insert(steps.end(), o.report.steps.begin(), o.report.steps.end());
      std::stable_sort(steps.begin(), steps.end(),
                       [](const ipc::RunStep& a, const ipc::RunStep& b) { return a.ns < b.ns; });
      o.steps = std::move(steps);
    }
    return std::move(o);
  };
  if (out_dir.valid()) {
    if (auto files = read_out_dir(out_dir.get()); files) o.files = std::move(*files);
  }
  if (call_done) {
    // The process stays for the session's next call, with an empty /out.
    if (out_dir.valid()) clear_out_dir(out_dir.get());
    o.exit_code = *o.report.exit_code;
    o.outcome = classify_outcome({interrupted, false, o.report.error_kind, 0, o.exit_code});
    slot->broker = channel.release();
    slot->scope = std::move(scope);
    slot->pidfd = std::move(pidfd);
    slot->out.reset();
    slot->err.reset();
    slot->res.reset();
    // Between its calls nothing of it runs (threads or processes its code left behind
    // included): it takes no CPU from anyone else while it waits.
    if (slot->scope) slot->scope->set_frozen(true);
    held.reset(new Live());
    held->slot_ = std::move(slot);
    held->out_dir_ = std::move(out_dir);
    held->calls_ = ++calls_before;
    o.live = LiveCall{held->calls_, false, {}};
    *live = std::move(held);
    return with_steps();
  }
  if (req.live) o.live = LiveCall{calls_before + 1, true, {}};
  if (WIFEXITED(status)) o.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) {
    o.signal = WTERMSIG(status);
    o.exit_code = 128 + o.signal;
  }
  o.outcome = classify_outcome({forced ? forced : interrupted, scope && scope->oom_killed(),
                                o.report.error_kind, o.signal, o.exit_code});
  // After the answer: waiting for the exit and recycling or removing the scope are off its path.
  if (settled || scope)
    o.teardown = std::make_unique<RunTeardown>(std::move(pidfd), std::move(scope), settled);
  slots_cv_.notify_all();  // if not yet (no sandbox, or the run ended early)
  return with_steps();
}

}  // namespace onemcp::sandbox
