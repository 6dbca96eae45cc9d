#include "transpile/esbuild.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <vector>

#include "base/unique_fd.h"

namespace onemcp::transpile {
namespace {

constexpr size_t kMaxOutputBytes = 16u << 20;
constexpr size_t kMaxDiagnosticBytes = 64u << 10;

std::string errno_msg(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

std::string strip_ansi(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\x1b' && i + 1 < s.size() && s[i + 1] == '[') {
      i += 2;
      while (i < s.size() && !(s[i] >= '@' && s[i] <= '~')) ++i;  // up to the final byte
      continue;
    }
    out += s[i];
  }
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// "run_js.ts:1:10:" -> true (a location line of esbuild's pretty format).
bool is_location(std::string_view s) {
  if (s.size() < 2 || s.back() != ':') return false;
  s.remove_suffix(1);
  int colons = 0;
  size_t i = s.size();
  while (i > 0 && colons < 2) {
    char c = s[i - 1];
    if (c == ':') {
      ++colons;
    } else if (c < '0' || c > '9') {
      return false;
    }
    --i;
  }
  return colons == 2 && i > 0;
}

struct Pipes {
  UniqueFd in_ours, in_theirs, out_ours, out_theirs, err_ours, err_theirs;
};

Result<Pipes> make_pipes() {
  Pipes p;
  int sv[2];
  // stdin is a socket so writing to an esbuild that already exited gives EPIPE via
  // MSG_NOSIGNAL instead of a process-wide SIGPIPE.
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return make_error(errno_msg("socketpair"));
  p.in_ours.reset(sv[0]);
  p.in_theirs.reset(sv[1]);
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return make_error(errno_msg("pipe2"));
  p.out_ours.reset(fds[0]);
  p.out_theirs.reset(fds[1]);
  if (::pipe2(fds, O_CLOEXEC) != 0) return make_error(errno_msg("pipe2"));
  p.err_ours.reset(fds[0]);
  p.err_theirs.reset(fds[1]);
  for (int fd : {p.in_ours.get(), p.out_ours.get(), p.err_ours.get()}) {
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  }
  return p;
}

}  // namespace

std::string clean_diagnostics(std::string_view text) {
  std::string clean = strip_ansi(text);
  std::vector<std::string_view> lines;
  for (size_t pos = 0; pos <= clean.size();) {
    size_t nl = clean.find('\n', pos);
    if (nl == std::string::npos) nl = clean.size();
    lines.push_back(std::string_view(clean).substr(pos, nl - pos));
    pos = nl + 1;
  }
  std::string out;
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string_view line = trim(lines[i]);
    size_t tag = line.find("[ERROR] ");
    if (tag == std::string_view::npos) continue;
    std::string_view message = trim(line.substr(tag + 8));
    std::string_view location;
    // The location follows the message, after at most a blank line.
    for (size_t j = i + 1; j < lines.size() && j <= i + 3; ++j) {
      std::string_view l = trim(lines[j]);
      if (is_location(l)) {
        location = l.substr(0, l.size() - 1);
        break;
      }
    }
    if (!out.empty()) out += '\n';
    if (!location.empty()) {
      out.append(location);
      out += ": ";
    }
    out += "ERROR: ";
    out.append(message);
  }
  if (out.empty()) out = std::string(trim(clean));  // unknown format: keep it, minus colors
  if (out.size() > kMaxDiagnosticBytes) out.resize(kMaxDiagnosticBytes);
  return out;
}

Result<std::string> esbuild_transform(const std::string& esbuild_exe, std::string_view code,
                                      int timeout_ms) {
  auto pipes = make_pipes();
  if (!pipes) return pipes.error();
  Pipes& p = *pipes;

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, p.in_theirs.get(), 0);
  posix_spawn_file_actions_adddup2(&fa, p.out_theirs.get(), 1);
  posix_spawn_file_actions_adddup2(&fa, p.err_theirs.get(), 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, def;
  sigemptyset(&none);
  sigemptyset(&def);
  sigaddset(&def, SIGPIPE);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &def);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  std::string source_flag = std::string("--sourcefile=") + kSourceFile;
  // No minify and no bundling: the output stays close to the input. es2020 lowers everything
  // QuickJS 2021 lacks (class static blocks, #x in obj, ...); top-level await is kept for the
  // worker's async wrapper; import/export are kept so the worker can refuse them clearly.
  const char* argv[] = {esbuild_exe.c_str(),
                        "--loader=ts",
                        "--target=es2020",
                        "--format=esm",
                        "--supported:top-level-await=true",
                        "--log-level=error",
                        "--color=false",
                        "--charset=utf8",
                        source_flag.c_str(),
                        nullptr};
  const char* envp[] = {"PATH=/usr/bin:/bin", nullptr};
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, esbuild_exe.c_str(), &fa, &attr, const_cast<char* const*>(argv),
                         const_cast<char* const*>(envp));
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return make_error("cannot start esbuild (" + esbuild_exe + "): " + std::strerror(rc));
  p.in_theirs.reset();
  p.out_theirs.reset();
  p.err_theirs.reset();

  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms > 0 ? timeout_ms : 10000);
  std::string out, err;
  size_t written = 0;
  bool out_open = true, err_open = true, too_big = false, timed_out = false;
  if (code.empty()) p.in_ours.reset();

  while (out_open || err_open) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    pollfd fds[3];
    int n = 0;
    int idx_in = -1, idx_out = -1, idx_err = -1;
    if (p.in_ours.valid()) idx_in = n, fds[n++] = {p.in_ours.get(), POLLOUT, 0};
    if (out_open) idx_out = n, fds[n++] = {p.out_ours.get(), POLLIN, 0};
    if (err_open) idx_err = n, fds[n++] = {p.err_ours.get(), POLLIN, 0};
    int r = ::poll(fds, nfds_t(n), int(left));
    if (r < 0 && errno != EINTR) break;
    if (r <= 0) continue;
    if (idx_in >= 0 && fds[idx_in].revents) {
      ssize_t w = ::send(p.in_ours.get(), code.data() + written, code.size() - written, MSG_NOSIGNAL);
      if (w > 0) written += size_t(w);
      if ((w < 0 && errno != EAGAIN && errno != EINTR) || written == code.size()) p.in_ours.reset();
    }
    auto drain = [&](int idx, int fd, std::string& dst, bool& open, size_t cap) {
      if (idx < 0 || !fds[idx].revents) return;
      char buf[65536];
      for (;;) {
        ssize_t got = ::read(fd, buf, sizeof buf);
        if (got > 0) {
          if (dst.size() + size_t(got) > cap) {
            too_big = true;
            open = false;
            return;
          }
          dst.append(buf, size_t(got));
          continue;
        }
        if (got < 0 && errno == EINTR) continue;
        if (got == 0 || errno != EAGAIN) open = false;
        return;
      }
    };
    drain(idx_out, p.out_ours.get(), out, out_open, kMaxOutputBytes);
    drain(idx_err, p.err_ours.get(), err, err_open, kMaxOutputBytes);
    if (too_big) break;
  }
  if (timed_out || too_big) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) return make_error("TypeScript transpilation timed out after " + std::to_string(timeout_ms) + " ms");
  if (too_big) return make_error("TypeScript transpilation produced more than 16 MiB of output");
  if (!WIFEXITED(status)) return make_error("esbuild was killed by signal " + std::to_string(WTERMSIG(status)));
  if (WEXITSTATUS(status) != 0) {
    std::string diag = clean_diagnostics(err);
    return make_error(diag.empty() ? "esbuild failed with exit code " + std::to_string(WEXITSTATUS(status))
                                   : diag);
  }
  return out;
}

}  // namespace onemcp::transpile
