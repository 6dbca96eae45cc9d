// transport/stdio.cc — a reader loop on the calling thread; all writes serialised by one mutex.
#include "transport/stdio.h"

#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <chrono>
#include <mutex>
#include <string>
#include <vector>

#include "base/log.h"

namespace onemcp::transport {
namespace {

void wait_for(int fd, short events) {
  pollfd p{fd, events, 0};
  ::poll(&p, 1, -1);  // a non-blocking fd was handed to us; wait instead of spinning
}

class Output {
 public:
  explicit Output(int fd) : fd_(fd) {}

  void write_line(std::string line) {
    line.push_back('\n');
    std::lock_guard lock(mu_);
    if (broken_) return;
    // A write to a pipe whose reader is gone raises SIGPIPE, which would kill the process.
    // Block it in this thread for the write and swallow the one raised, so EPIPE is only an
    // error code and no process-wide signal disposition is changed.
    sigset_t pipe_set;
    sigset_t old_set;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);
    int err = 0;
    for (size_t off = 0; off < line.size();) {
      const ssize_t n = ::write(fd_, line.data() + off, line.size() - off);
      if (n >= 0) {
        off += static_cast<size_t>(n);
      } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
        wait_for(fd_, POLLOUT);
      } else if (errno != EINTR) {
        err = errno;
        break;
      }
    }
    if (err != 0) {
      broken_ = true;
      if (err != EPIPE) log::error(std::string("stdout write failed: ") + std::strerror(err));
      if (err == EPIPE && !sigismember(&old_set, SIGPIPE)) {
        const timespec zero{};
        sigtimedwait(&pipe_set, nullptr, &zero);
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_set, nullptr);
  }

 private:
  const int fd_;
  std::mutex mu_;
  bool broken_ = false;
};

constexpr std::chrono::milliseconds kEofGrace{2000};

// Messages whose `done` has not been called yet; serve_stdio waits for zero after EOF.
struct InFlight {
  std::mutex mu;
  std::condition_variable cv;
  size_t count = 0;
};

}  // namespace

int serve_stdio(server::LineHandler& handler, int in_fd, int out_fd) {
  auto output = std::make_shared<Output>(out_fd);
  const server::WriteLine write = [output](std::string line) {
    output->write_line(std::move(line));
  };
  auto in_flight = std::make_shared<InFlight>();
  const size_t max = handler.max_line_bytes();

  std::string line;
  bool discarding = false;  // inside a line that already went over max

  auto too_long = [&] {
    try {
      handler.line_too_long(write);
    } catch (const std::exception& e) {
      log::error(std::string("line_too_long threw: ") + e.what());
    }
  };

  auto end_of_line = [&] {
    if (discarding) {
      discarding = false;
      return too_long();
    }
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.size() > max) {
      line.clear();
      return too_long();
    }
    if (line.empty()) return;
    {
      std::lock_guard lock(in_flight->mu);
      ++in_flight->count;
    }
    // Exactly one decrement per message, even if `done` is called twice or we call it below.
    auto called = std::make_shared<std::atomic<bool>>(false);
    std::function<void()> done = [in_flight, called] {
      if (called->exchange(true)) return;
      std::lock_guard lock(in_flight->mu);
      --in_flight->count;
      in_flight->cv.notify_all();
    };
    try {
      handler.handle_line(std::move(line), write, done);
    } catch (const std::exception& e) {
      log::error(std::string("handle_line threw: ") + e.what());
      done();
    }
    line.clear();
  };

  int rc = 0;
  std::vector<char> buf(64 * 1024);
  for (;;) {
    const ssize_t n = ::read(in_fd, buf.data(), buf.size());
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        wait_for(in_fd, POLLIN);
        continue;
      }
      log::error(std::string("stdin read failed: ") + std::strerror(errno));
      rc = 1;
      break;
    }
    const char* p = buf.data();
    const char* const end = p + n;
    while (p < end) {
      const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)));
      if (!discarding) {
        line.append(p, nl ? nl : end);
        // One byte of slack for a '\r' that end_of_line strips.
        if (line.size() > max && line.size() - max > 1) {
          discarding = true;
          std::string().swap(line);  // give the memory back now
        }
      }
      if (!nl) break;
      p = nl + 1;
      end_of_line();
    }
  }
  if (discarding || !line.empty()) end_of_line();  // a last line without '\n'

  // End of input is the client's way to shut us down: give in-flight work a moment to answer,
  // then have the handler stop it, so the process exits promptly.
  std::unique_lock lock(in_flight->mu);
  if (!in_flight->cv.wait_for(lock, kEofGrace, [&] { return in_flight->count == 0; })) {
    lock.unlock();
    handler.input_closed();
    lock.lock();
  }
  in_flight->cv.wait(lock, [&] { return in_flight->count == 0; });
  return rc;
}

}  // namespace onemcp::transport
