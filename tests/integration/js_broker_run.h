// A JavaScript run driven by a test that plays the supervisor's broker: the worker runs one
// request directly (`1mcp-js-worker --run-once`) with a socketpair on its broker fd, and the
// test reads the request frames and answers them as scripted (late, out of order, with errors,
// or never).
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "ipc/wire.h"

namespace onemcp::jstest {

using json = nlohmann::json;

// The test's end of the broker channel.
class Peer {
 public:
  explicit Peer(int fd) : fd_(fd) {}

  // The next request frame, or nullopt when the run closed the channel (or after `timeout_ms`).
  std::optional<json> next(int timeout_ms = 10000) {
    for (;;) {
      if (buf_.size() >= 4) {
        uint32_t n = 0;
        for (int i = 0; i < 4; ++i) n |= uint32_t(uint8_t(buf_[size_t(i)])) << (8 * i);
        if (buf_.size() >= 4 + size_t(n)) {
          json j = json::parse(buf_.substr(4, n));
          buf_.erase(0, 4 + size_t(n));
          return j;
        }
      }
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, timeout_ms) <= 0) return std::nullopt;
      char chunk[65536];
      ssize_t got = ::recv(fd_, chunk, sizeof chunk, 0);
      if (got <= 0) return std::nullopt;
      buf_.append(chunk, size_t(got));
    }
  }

  void send_raw(const std::string& bytes) {
    size_t off = 0;
    while (off < bytes.size()) {
      ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return;  // the run is gone
      off += size_t(n);
    }
  }
  void send(const json& j) { send_raw(ipc::frame(j.dump())); }
  void close() { ::shutdown(fd_, SHUT_RDWR); }

 private:
  int fd_;
  std::string buf_;
};

struct FetchRun {
  int exit_code = -1;
  std::string out, err;
  ipc::ChildReport report;
  std::vector<json> requests;  // what the broker received, when the script records it
  double ms = 0;
};

// Runs `code` in a fresh worker process whose fd 4 is the test's broker channel (or absent).
inline FetchRun run_js(const std::string& code, const std::function<void(Peer&)>& broker,
                       uint64_t timeout_ms = 5000, bool with_channel = true) {
  FetchRun r;
  ipc::RunRequest req;
  req.code = code;
  req.timeout_ms = timeout_ms;
  req.mem_mb = 256;
  req.transpiled = true;
  const std::string request_json = ipc::encode(req);
  const char* exe = ONEMCP_JS_WORKER;
  char* argv[] = {const_cast<char*>(exe), const_cast<char*>("--run-once"),
                  const_cast<char*>(request_json.c_str()), nullptr};

  int sp[2], out[2], err[2], res[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0 ||
      ::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0 ||
      ::pipe2(res, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "pipes: " << std::strerror(errno);
    return r;
  }
  int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  auto t0 = std::chrono::steady_clock::now();
  pid_t pid = ::fork();
  if (pid == 0) {
    // Async-signal-safe calls only: the test process may have threads.
    int want[5] = {devnull, out[1], err[1], res[1], with_channel ? sp[1] : -1};
    for (int& fd : want) {
      if (fd >= 0) fd = ::fcntl(fd, F_DUPFD, 10);
    }
    for (int i = 0; i < 5; ++i) {
      if (want[i] >= 0)
        ::dup2(want[i], i);
      else
        ::close(i);
    }
    ::syscall(SYS_close_range, 5u, ~0u, 0u);
    ::execv(exe, argv);
    _exit(127);
  }
  ::close(devnull);
  ::close(sp[1]);
  ::close(out[1]);
  ::close(err[1]);
  ::close(res[1]);
  Peer peer(sp[0]);
  std::thread broker_thread([&] {
    if (broker) broker(peer);
  });

  pollfd fds[3] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}, {res[0], POLLIN, 0}};
  std::string* sinks[3] = {&r.out, &r.err, nullptr};
  std::string report;
  sinks[2] = &report;
  int open_fds = 3;
  while (open_fds > 0) {
    if (::poll(fds, 3, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 3; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buf[65536];
      ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        sinks[i]->append(buf, size_t(n));
      } else {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  r.ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  peer.close();
  broker_thread.join();
  ::close(sp[0]);
  r.report = ipc::decode_report(report);
  return r;
}

// Answers every request with `answer(request)` until the run closes the channel.
inline std::function<void(Peer&)> serve(std::function<json(const json&)> answer) {
  return [answer](Peer& peer) {
    while (auto req = peer.next()) peer.send(answer(*req));
  };
}

#define EXPECT_RUN_OK(r)                               \
  EXPECT_EQ((r).exit_code, 0) << "stderr: " << (r).err \
                              << " report: " << (r).report.error_message.value_or("")

}  // namespace onemcp::jstest
