// node_fixture.h — a loopback fixture server written for node (tests/fixtures/...): started with
// `node <script>`, it prints one JSON line naming where it listens and serves until its stdin
// closes. The destructor ends it (closes stdin, SIGTERM) and reaps it.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

extern char** environ;

namespace onemcp::testing {

class NodeFixture {
 public:
  // `script`: relative to the source tree. first_line() is empty when it did not start.
  explicit NodeFixture(const std::string& script) {
    int in[2], out[2];
    if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0) return;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    const std::string path = std::string(ONEMCP_SOURCE_DIR) + "/" + script;
    const char* argv[] = {"node", path.c_str(), nullptr};
    int rc = ::posix_spawnp(&pid_, "node", &fa, nullptr, const_cast<char**>(argv), environ);
    posix_spawn_file_actions_destroy(&fa);
    ::close(in[0]);
    ::close(out[1]);
    stdin_ = in[1];
    if (rc != 0) {
      ::close(out[0]);
      pid_ = -1;
      return;
    }
    char c;
    while (line_.size() < 4096 && ::read(out[0], &c, 1) == 1 && c != '\n') line_ += c;
    ::close(out[0]);
  }
  ~NodeFixture() {
    if (stdin_ >= 0) ::close(stdin_);
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  NodeFixture(const NodeFixture&) = delete;
  NodeFixture& operator=(const NodeFixture&) = delete;

  const std::string& first_line() const { return line_; }

 private:
  pid_t pid_ = -1;
  int stdin_ = -1;
  std::string line_;
};

}  // namespace onemcp::testing
