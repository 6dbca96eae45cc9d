// upstream/stdio_channel.cc — a stdio upstream: a process spawned with posix_spawn (argv, no
// shell) in its own process group, with an explicit environment; newline-delimited JSON-RPC on
// its stdin/stdout; its stderr logged. One I/O thread per process reads stdout and stderr and
// watches the process through a pidfd; writers write from their own threads.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "base/log.h"
#include "base/unique_fd.h"
#include "upstream/channel.h"
#include "upstream/rpc.h"

namespace onemcp::upstream {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

std::string errno_text(const std::string& what, int e) { return what + ": " + std::strerror(e); }

int remaining_ms(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(std::min<long long>(left, 1 << 30));
}

// The variables a stdio upstream inherits from the server, below the config's `env`: enough to
// find programs and behave normally, nothing that may hold a secret of the server's.
constexpr const char* kInheritedEnv[] = {"PATH", "HOME", "USER", "LANG", "LC_ALL", "TZ", "TMPDIR"};
constexpr const char* kDefaultPath = "/usr/local/bin:/usr/bin:/bin";

std::map<std::string, std::string> child_env(const policy::UpstreamConfig& cfg) {
  std::map<std::string, std::string> env;
  for (const char* k : kInheritedEnv) {
    if (const char* v = std::getenv(k)) env[k] = v;
  }
  if (!env.count("PATH")) env["PATH"] = kDefaultPath;
  for (const auto& [k, v] : cfg.env) env[k] = v;
  return env;
}

bool is_executable_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

// The program to run: as given when it has a slash, else searched in the child's PATH (not the
// server's: posix_spawnp would use ours).
Result<std::string> resolve_command(const std::string& cmd, const std::string& path) {
  if (cmd.empty()) return make_error("no command configured");
  if (cmd.find('/') != std::string::npos) return cmd;
  size_t start = 0;
  for (;;) {
    const size_t colon = path.find(':', start);
    std::string dir =
        path.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
    if (dir.empty()) dir = ".";
    std::string candidate = dir + "/" + cmd;
    if (is_executable_file(candidate)) return candidate;
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  // The PATH itself goes to the server's log only: the error reaches HTTP clients (GET /mcps)
  // and runs, and the server's PATH is none of their business.
  log::warn("upstream command '" + cmd + "' not found in PATH=" + path);
  return make_error("cannot start '" + cmd + "': " + std::strerror(ENOENT) +
                    " (not in the directories of its PATH)");
}

std::string describe_exit(const siginfo_t& info) {
  if (info.si_code == CLD_EXITED) return "exited with status " + std::to_string(info.si_status);
  const char* abbrev = sigabbrev_np(info.si_status);
  return "was killed by signal " +
         (abbrev ? "SIG" + std::string(abbrev) : std::to_string(info.si_status));
}

// A pipe end we keep, moved above the standard descriptors (posix_spawn's dup2 onto the same
// number would leave close-on-exec set) and non-blocking.
Result<UniqueFd> our_end(int fd, bool nonblocking) {
  UniqueFd f(fd);
  if (f.get() <= 2) {
    const int moved = ::fcntl(f.get(), F_DUPFD_CLOEXEC, 3);
    if (moved < 0) return make_error(errno_text("fcntl", errno));
    f.reset(moved);
  }
  if (nonblocking && ::fcntl(f.get(), F_SETFL, ::fcntl(f.get(), F_GETFL) | O_NONBLOCK) != 0) {
    return make_error(errno_text("fcntl", errno));
  }
  return f;
}

struct PipePair {
  UniqueFd read, write;
};
Result<PipePair> make_pipe(bool read_nonblocking, bool write_nonblocking) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return make_error(errno_text("pipe2", errno));
  auto r = our_end(fds[0], read_nonblocking);
  auto w = our_end(fds[1], write_nonblocking);
  if (!r) return r.error();
  if (!w) return w.error();
  return PipePair{std::move(*r), std::move(*w)};
}

// The spawned process: its pid (= its process group id) and a pidfd. Until reaped, the
// destructor kills the whole group and reaps the leader.
class Child {
 public:
  Child(pid_t pid, UniqueFd pidfd) : pid_(pid), pidfd_(std::move(pidfd)) {}
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() {
    if (reaped_) return;
    signal_group(SIGKILL);
    reap();
  }

  pid_t pid() const { return pid_; }
  int pidfd() const { return pidfd_.get(); }
  // Signals every process of the group (the leader stays a zombie until reaped, so its id
  // cannot be reused meanwhile).
  void signal_group(int sig) const { ::kill(-pid_, sig); }
  // Whether the leader exited within `ms`; it is not reaped.
  bool wait_exit(int ms) const {
    pollfd p{pidfd_.get(), POLLIN, 0};
    for (;;) {
      const int r = ::poll(&p, 1, ms);
      if (r >= 0 || errno != EINTR) return r > 0;
    }
  }
  // The exit of a leader that already exited, without reaping it.
  std::optional<siginfo_t> peek_exit() const {
    siginfo_t info{};
    if (::waitid(P_PIDFD, static_cast<id_t>(pidfd_.get()), &info, WEXITED | WNOWAIT | WNOHANG) !=
            0 ||
        info.si_pid == 0) {
      return std::nullopt;
    }
    return info;
  }
  void reap() {
    if (reaped_) return;
    siginfo_t info{};
    while (::waitid(P_PIDFD, static_cast<id_t>(pidfd_.get()), &info, WEXITED) != 0 &&
           errno == EINTR) {
    }
    reaped_ = true;
  }

 private:
  pid_t pid_;
  UniqueFd pidfd_;
  bool reaped_ = false;
};

class StdioChannel final : public Channel {
 public:
  StdioChannel(const policy::UpstreamConfig& cfg, const ManagerOptions& opts, ChannelSinks sinks)
      : cfg_(cfg), opts_(opts), sinks_(std::move(sinks)) {}

  ~StdioChannel() override { shutdown(); }

  Status start() override {
    stop_fd_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    quit_fd_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!stop_fd_.valid() || !quit_fd_.valid()) return make_error(errno_text("eventfd", errno));

    const auto env = child_env(cfg_);
    auto program = resolve_command(cfg_.command, env.at("PATH"));
    if (!program) return program.error();
    auto in = make_pipe(false, true);
    if (!in) return in.error();
    auto out = make_pipe(true, false);
    if (!out) return out.error();
    auto err = make_pipe(true, false);
    if (!err) return err.error();

    std::vector<std::string> env_strings;
    for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
    std::vector<char*> envp;
    for (auto& s : env_strings) envp.push_back(s.data());
    envp.push_back(nullptr);
    std::vector<std::string> args{cfg_.command};
    args.insert(args.end(), cfg_.args.begin(), cfg_.args.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);

    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in->read.get(), 0);
    posix_spawn_file_actions_adddup2(&fa, out->write.get(), 1);
    posix_spawn_file_actions_adddup2(&fa, err->write.get(), 2);
    // Every descriptor of ours is close-on-exec already; this also covers any that is not.
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    if (!opts_.stdio_cwd.empty())
      posix_spawn_file_actions_addchdir_np(&fa, opts_.stdio_cwd.c_str());
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);  // dispositions the server set (SIGPIPE ignored, ...) are not inherited
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setflags(
        &attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
    pid_t pid = -1;
    const int rc = ::posix_spawn(&pid, program->c_str(), &fa, &attr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) return make_error("cannot start '" + *program + "': " + std::strerror(rc));

    UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    if (!pidfd.valid()) {
      const int e = errno;
      ::kill(-pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      return make_error(errno_text("pidfd_open", e));
    }
    child_ = std::make_unique<Child>(pid, std::move(pidfd));
    stdin_ = std::move(in->write);
    stdout_ = std::move(out->read);
    stderr_ = std::move(err->read);
    io_ = std::thread([this] { io_loop(); });
    return {};
  }

  Result<Delivery> send(const json& message, const SendOptions& o) override {
    auto s = write_line(message.dump(), o.deadline, o.cancel);
    if (!s) return s.error();
    return Delivery{};
  }

  void post(json message) override {
    constexpr milliseconds kPostWrite{1000};
    auto s = write_line(message.dump(), Clock::now() + kPostWrite, nullptr);
    (void)s;  // a dead or stuck upstream is reported by the I/O thread
  }

  bool synchronous() const override { return false; }
  void set_protocol(const std::string&, bool) override {}

  void stop() override {
    stopped_ = true;
    if (stop_fd_.valid()) {
      const uint64_t one = 1;
      ssize_t n = ::write(stop_fd_.get(), &one, sizeof one);
      (void)n;
    }
  }

  void shutdown() override {
    std::lock_guard once(shutdown_mu_);
    if (!child_) return;
    stop();
    {
      std::lock_guard lock(write_mu_);
      stdin_.reset();  // a well-behaved server exits on stdin EOF
    }
    const int grace = static_cast<int>(opts_.stop_grace.count());
    if (!child_->wait_exit(grace)) {
      child_->signal_group(SIGTERM);
      if (!child_->wait_exit(grace)) child_->signal_group(SIGKILL);
      child_->wait_exit(-1);
    }
    child_->signal_group(SIGKILL);  // what the leader left behind in its group
    child_->reap();
    const uint64_t one = 1;
    ssize_t n = ::write(quit_fd_.get(), &one, sizeof one);
    (void)n;
    if (io_.joinable()) io_.join();
    child_.reset();
  }

  std::string closed_reason() const override {
    std::lock_guard lock(reason_mu_);
    return reason_.empty() ? "upstream '" + cfg_.name + "' is stopping" : reason_;
  }

 private:
  Status write_line(std::string line, Clock::time_point deadline, const std::atomic<bool>* cancel) {
    line.push_back('\n');
    std::lock_guard lock(write_mu_);
    if (stopped_ || !stdin_.valid()) return make_error(closed_reason());
    // A write to a pipe whose reader is gone raises SIGPIPE: block it in this thread for the
    // write and swallow the one raised, so EPIPE is only an error code.
    sigset_t pipe_set, old_set;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);
    Status result;
    size_t off = 0;
    while (off < line.size()) {
      const ssize_t n = ::write(stdin_.get(), line.data() + off, line.size() - off);
      if (n >= 0) {
        off += static_cast<size_t>(n);
        continue;
      }
      if (errno == EINTR) continue;
      if (errno != EAGAIN) {
        if (errno == EPIPE && !sigismember(&old_set, SIGPIPE)) {
          const timespec zero{};
          sigtimedwait(&pipe_set, nullptr, &zero);
        }
        result =
            make_error(errno == EPIPE ? "upstream '" + cfg_.name + "' closed its stdin"
                                      : errno_text("write to upstream '" + cfg_.name + "'", errno));
        break;
      }
      // The pipe is full: the upstream is not reading. Wait for room, the deadline, the cancel
      // flag or stop().
      pollfd p[2] = {{stdin_.get(), POLLOUT, 0}, {stop_fd_.get(), POLLIN, 0}};
      const int wait = cancel ? std::min(remaining_ms(deadline), 10) : remaining_ms(deadline);
      ::poll(p, 2, wait);
      if (p[1].revents) {
        result = make_error(closed_reason());
        break;
      }
      if ((cancel && cancel->load()) || Clock::now() >= deadline) {
        result = make_error(cancel && cancel->load()
                                ? "cancelled"
                                : "timed out writing to upstream '" + cfg_.name + "'");
        // Half a line would corrupt every later message: end this process (it is restarted).
        if (off > 0) child_->signal_group(SIGKILL);
        break;
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_set, nullptr);
    return result;
  }

  void io_loop() {
    LineSplitter out_lines(kMaxMessageBytes);
    constexpr size_t kMaxDiagnosticLine = 2000;
    LineSplitter err_lines(kMaxDiagnosticLine);
    RateLimiter limit(20, 100);
    std::string last_diagnostic;
    auto on_message = [&](std::string_view l) { sinks_.message(l); };
    auto on_overflow = [&](size_t n) {
      log::warn("upstream '" + cfg_.name + "' sent a line of " + std::to_string(n) +
                " bytes (more than the " + std::to_string(kMaxMessageBytes) + " allowed); skipped");
    };
    auto on_diag = [&](std::string_view l) {
      last_diagnostic = std::string(l.substr(0, 300));
      size_t dropped = 0;
      if (!limit.allow(dropped)) return;
      if (dropped) sinks_.diagnostic("(" + std::to_string(dropped) + " stderr lines dropped)");
      sinks_.diagnostic(l);
    };
    auto on_diag_overflow = [&](size_t n) {
      on_diag("(a stderr line of " + std::to_string(n) + " bytes)");
    };
    std::vector<char> buf(64 * 1024);
    // Reads what `fd` has now; false at EOF or on an error.
    auto drain = [&](int fd, bool is_stdout) {
      for (;;) {
        const ssize_t n = ::read(fd, buf.data(), buf.size());
        if (n > 0) {
          const std::string_view bytes(buf.data(), static_cast<size_t>(n));
          if (is_stdout) {
            out_lines.feed(bytes, on_message, on_overflow);
          } else {
            err_lines.feed(bytes, on_diag, on_diag_overflow);
          }
          continue;
        }
        if (n < 0 && errno == EINTR) continue;
        return n < 0 && errno == EAGAIN;
      }
    };
    bool out_open = true, err_open = true, exited = false, reported = false;
    for (;;) {
      pollfd p[4] = {{out_open ? stdout_.get() : -1, POLLIN, 0},
                     {err_open ? stderr_.get() : -1, POLLIN, 0},
                     {exited ? -1 : child_->pidfd(), POLLIN, 0},
                     {quit_fd_.get(), POLLIN, 0}};
      if (::poll(p, 4, -1) < 0 && errno != EINTR) break;
      if (p[0].revents) out_open = drain(stdout_.get(), true);
      if (p[1].revents) err_open = drain(stderr_.get(), false);
      if (p[2].revents) {
        exited = true;
        // The last words: what it wrote before exiting is delivered before its death.
        if (out_open) out_open = drain(stdout_.get(), true);
        if (err_open) err_open = drain(stderr_.get(), false);
      }
      if (!reported && (exited || !out_open)) {
        reported = true;
        std::string why;
        if (!exited && !child_->wait_exit(200)) {
          why = "closed its stdout";
          child_->signal_group(SIGKILL);  // a server without its output is of no use
        } else if (auto info = child_->peek_exit()) {
          why = describe_exit(*info);
        } else {
          why = "exited";
        }
        if (err_open) err_open = drain(stderr_.get(), false);
        if (const std::string rest = err_lines.take_rest(); !rest.empty()) on_diag(rest);
        if (!last_diagnostic.empty()) why += " (last stderr line: " + last_diagnostic + ")";
        {
          std::lock_guard lock(reason_mu_);
          reason_ = "upstream '" + cfg_.name + "' " + why;
        }
        sinks_.closed(closed_reason());
      }
      // After the death, stderr may stay open in a descendant: stop at shutdown().
      if (p[3].revents || (exited && !out_open && !err_open)) break;
    }
  }

  const policy::UpstreamConfig cfg_;
  const ManagerOptions opts_;
  const ChannelSinks sinks_;
  std::unique_ptr<Child> child_;
  std::mutex write_mu_;
  UniqueFd stdin_;  // under write_mu_
  UniqueFd stdout_, stderr_;
  UniqueFd stop_fd_;  // readable once stop() ran: wakes blocked writers
  UniqueFd quit_fd_;  // readable once the I/O thread must end
  std::atomic<bool> stopped_{false};
  std::thread io_;
  std::mutex shutdown_mu_;
  mutable std::mutex reason_mu_;
  std::string reason_;
};

}  // namespace

bool RateLimiter::allow(size_t& dropped) {
  const auto now = Clock::now();
  tokens_ = std::min(burst_, tokens_ + rate_ * std::chrono::duration<double>(now - last_).count());
  last_ = now;
  if (tokens_ < 1) {
    ++dropped_;
    return false;
  }
  tokens_ -= 1;
  dropped = std::exchange(dropped_, 0);
  return true;
}

std::unique_ptr<Channel> make_stdio_channel(const policy::UpstreamConfig& cfg,
                                            const ManagerOptions& opts, ChannelSinks sinks) {
  return std::make_unique<StdioChannel>(cfg, opts, std::move(sinks));
}

}  // namespace onemcp::upstream
