#include "deps/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "base/unique_fd.h"

namespace onemcp::deps {
namespace {

std::vector<char*> c_strings(const std::vector<std::string>& v) {
  std::vector<char*> out;
  for (const auto& s : v) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

// posix_spawn attributes and file actions, destroyed with the scope.
struct SpawnSetup {
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  SpawnSetup() {
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
  }
  ~SpawnSetup() {
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
  }
  SpawnSetup(const SpawnSetup&) = delete;
  SpawnSetup& operator=(const SpawnSetup&) = delete;
};

}  // namespace

Result<ProcessResult> run_process(const ProcessSpec& spec) {
  if (spec.argv.empty()) return make_error("run_process: empty argv");
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0)
    return make_error(std::string("pipe2: ") + std::strerror(errno));
  UniqueFd out_read(fds[0]), out_write(fds[1]);
  ::fcntl(out_read.get(), F_SETFL, ::fcntl(out_read.get(), F_GETFL) | O_NONBLOCK);

  SpawnSetup s;
  posix_spawn_file_actions_addopen(&s.fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&s.fa, out_write.get(), 1);
  posix_spawn_file_actions_adddup2(&s.fa, out_write.get(), 2);
  if (!spec.cwd.empty()) posix_spawn_file_actions_addchdir_np(&s.fa, spec.cwd.c_str());
  sigset_t none, def;
  sigemptyset(&none);
  sigemptyset(&def);
  for (int sig : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGCHLD}) sigaddset(&def, sig);
  posix_spawnattr_setsigmask(&s.attr, &none);
  posix_spawnattr_setsigdefault(&s.attr, &def);
  posix_spawnattr_setpgroup(&s.attr, 0);  // its own group: a timeout kills its children too
  posix_spawnattr_setflags(&s.attr,
                           POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);

  auto argv = c_strings(spec.argv);
  auto envp = c_strings(spec.env);
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, argv[0], &s.fa, &s.attr, argv.data(), envp.data());
  if (rc != 0) return make_error("cannot start " + spec.argv[0] + ": " + std::strerror(rc));
  out_write.reset();

  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::milliseconds(spec.timeout_ms);
  ProcessResult r;
  auto drain = [&] {  // false at end of file
    char buf[16384];
    for (;;) {
      ssize_t got = ::read(out_read.get(), buf, sizeof buf);
      if (got > 0) {
        r.output.append(buf, size_t(got));
        if (r.output.size() > 2 * spec.max_output)
          r.output.erase(0, r.output.size() - spec.max_output);
        continue;
      }
      if (got < 0 && errno == EINTR) continue;
      return got < 0 && errno == EAGAIN;
    }
  };
  int status = 0;
  bool reaped = false, open = true;
  for (;;) {
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      r.timed_out = true;
      break;
    }
    // Wake up now and then to reap the child: a grandchild may keep the pipe open.
    pollfd p{out_read.get(), POLLIN, 0};
    int n = ::poll(&p, open ? 1 : 0, int(std::min<long long>(left, open ? 200 : 20)));
    if (n > 0) open = drain();
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      reaped = true;
      break;
    }
  }
  ::kill(-pid, SIGKILL);  // the whole group: whatever the program left running
  if (!reaped) {
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
  if (open) drain();
  if (r.output.size() > spec.max_output) r.output.erase(0, r.output.size() - spec.max_output);
  if (WIFEXITED(status) && !r.timed_out) {
    r.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    r.signal = WTERMSIG(status);
  }
  return r;
}

std::string last_lines(const std::string& text, size_t n) {
  std::vector<std::string> lines;
  std::string line;
  auto flush = [&] {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty()) lines.push_back(line);
    line.clear();
  };
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '\x1b' && i + 1 < text.size() && text[i + 1] == '[') {
      i += 2;
      while (i < text.size() && !(text[i] >= '@' && text[i] <= '~')) ++i;
      continue;
    }
    if (c == '\n') {
      flush();
    } else {
      line += c;
    }
  }
  flush();
  std::string out;
  for (size_t i = lines.size() > n ? lines.size() - n : 0; i < lines.size(); ++i) {
    if (!out.empty()) out += '\n';
    out += lines[i];
  }
  return out;
}

std::string find_in_path(const std::string& name, const std::string& path) {
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t end = path.find(':', pos);
    if (end == std::string::npos) end = path.size();
    std::string dir = path.substr(pos, end - pos);
    if (!dir.empty() && dir[0] == '/') {
      std::string full = dir + "/" + name;
      struct stat st {};
      if (::stat(full.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
          ::access(full.c_str(), X_OK) == 0) {
        return full;
      }
    }
    pos = end + 1;
  }
  return {};
}

}  // namespace onemcp::deps
