// tests/integration/http_fixture.h — a tiny in-process HTTP/1.1 server for broker tests: raw
// POSIX sockets bound to one loopback address (127.0.0.x or ::1) on an ephemeral port, a thread
// per connection, one request per connection, a test-supplied handler that writes raw bytes so
// it can misbehave (lie about lengths, stall, stream forever). Counts accepted connections so a
// test can prove a denied target was never contacted. Also a minimal gzip writer (no zlib).
// Thread-safety: the server's public methods may be called from any thread.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace onemcp::testing {

struct SeenRequest {
  std::string method, target;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
  std::string header(std::string_view name) const {
    for (const auto& [n, v] : headers)
      if (n == name) return v;
    return {};
  }
  bool has_header(std::string_view name) const {
    for (const auto& [n, v] : headers)
      if (n == name) return true;
    return false;
  }
};

// One accepted connection, handed to the handler.
class Conn {
 public:
  Conn(int fd, const std::atomic<bool>& stop) : fd_(fd), stop_(stop) {}
  // False once the peer is gone or the server stops: handlers streaming forever end on it.
  bool send(std::string_view data) {
    while (!data.empty()) {
      if (stop_) return false;
      pollfd p{fd_, POLLOUT, 0};
      int pr = ::poll(&p, 1, 100);
      if (pr == 0) continue;
      if (pr < 0 || (p.revents & (POLLERR | POLLHUP))) return false;
      ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) continue;
        return false;
      }
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }
  // Sleeps up to `d`, returning early (false) when the server stops.
  bool sleep_for(std::chrono::milliseconds d) {
    auto end = std::chrono::steady_clock::now() + d;
    while (std::chrono::steady_clock::now() < end) {
      if (stop_) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return true;
  }
  bool stopping() const { return stop_; }

 private:
  int fd_;
  const std::atomic<bool>& stop_;
};

// A socket address from an IP literal (IPv6 when it contains ':') and a port.
inline sockaddr_storage ip_addr(const std::string& ip, uint16_t port = 0) {
  sockaddr_storage s{};
  if (ip.find(':') != std::string::npos) {
    auto& a = reinterpret_cast<sockaddr_in6&>(s);
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(port);
    inet_pton(AF_INET6, ip.c_str(), &a.sin6_addr);
  } else {
    auto& a = reinterpret_cast<sockaddr_in&>(s);
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
  }
  return s;
}

// A listening TCP socket on `ip` (127.0.0.x or ::1) and an ephemeral port, stored in `port`;
// -1 on failure.
inline int listen_on(const std::string& ip, uint16_t& port) {
  const bool v6 = ip.find(':') != std::string::npos;
  in6_addr parsed;  // large enough for either family
  if (::inet_pton(v6 ? AF_INET6 : AF_INET, ip.c_str(), &parsed) != 1) return -1;
  int fd = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_storage s = ip_addr(ip);
  socklen_t len = v6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&s), len) != 0 || ::listen(fd, 64) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&s), &len) != 0) {
    ::close(fd);
    return -1;
  }
  port = ntohs(v6 ? reinterpret_cast<sockaddr_in6&>(s).sin6_port : reinterpret_cast<sockaddr_in&>(s).sin_port);
  return fd;
}

// Reads one request (head, then a Content-Length body) with `read(buf, n)`, which behaves like
// recv: > 0 bytes read, 0 at EOF, < 0 on error. False when the peer stops first or the request
// line is malformed.
template <typename Read>
bool read_http_request(Read read, SeenRequest& req) {
  std::string data;
  char buf[4096];
  size_t end;
  while ((end = data.find("\r\n\r\n")) == std::string::npos) {
    auto n = read(buf, sizeof buf);
    if (n <= 0) return false;
    data.append(buf, static_cast<size_t>(n));
  }
  std::string_view head(data.data(), end);
  size_t line_end = head.find("\r\n");
  std::string_view first = head.substr(0, line_end);
  size_t sp1 = first.find(' '), sp2 = first.rfind(' ');
  if (sp1 == std::string_view::npos || sp2 == sp1) return false;
  req.method = std::string(first.substr(0, sp1));
  req.target = std::string(first.substr(sp1 + 1, sp2 - sp1 - 1));
  size_t content_length = 0;
  while (line_end != std::string_view::npos) {
    size_t next = head.find("\r\n", line_end + 2);
    std::string_view line = head.substr(line_end + 2, next == std::string_view::npos ? std::string_view::npos : next - line_end - 2);
    line_end = next;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string name(line.substr(0, colon));
    for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    if (name == "content-length") content_length = std::stoul(std::string(value));
    req.headers.emplace_back(name, std::string(value));
  }
  req.body = data.substr(end + 4);
  while (req.body.size() < content_length) {
    auto n = read(buf, sizeof buf);
    if (n <= 0) return false;
    req.body.append(buf, static_cast<size_t>(n));
  }
  return true;
}

inline std::string http_response(int status, std::string_view reason,
                                 const std::vector<std::pair<std::string, std::string>>& headers,
                                 std::string_view body) {
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) + "\r\n";
  for (const auto& [n, v] : headers) out += n + ": " + v + "\r\n";
  out += "Content-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n";
  out += body;
  return out;
}

class FixtureServer {
 public:
  using Handler = std::function<void(Conn&, const SeenRequest&)>;

  FixtureServer(std::string ip, Handler handler) : ip_(std::move(ip)), handler_(std::move(handler)) {
    fd_ = listen_on(ip_, port_);
    if (fd_ >= 0) acceptor_ = std::thread([this] { accept_loop(); });
  }

  ~FixtureServer() {
    stop_ = true;
    if (fd_ >= 0) ::shutdown(fd_, SHUT_RDWR);  // wakes accept()
    if (acceptor_.joinable()) acceptor_.join();
    {
      std::lock_guard lock(mu_);
      for (int c : conns_) ::shutdown(c, SHUT_RDWR);  // wakes handlers blocked in recv
    }
    for (auto& t : workers_) t.join();
    if (fd_ >= 0) ::close(fd_);
  }

  FixtureServer(const FixtureServer&) = delete;
  FixtureServer& operator=(const FixtureServer&) = delete;

  bool ok() const { return port_ != 0; }
  uint16_t port() const { return port_; }
  const std::string& ip() const { return ip_; }
  int accepts() const { return accepts_; }
  std::vector<SeenRequest> requests() const {
    std::lock_guard lock(mu_);
    return seen_;
  }
  // "http://<host>:<port><path>" with this server's port.
  std::string url(std::string_view host, std::string_view path = "/") const {
    return "http://" + std::string(host) + ":" + std::to_string(port_) + std::string(path);
  }

 private:
  void accept_loop() {
    while (!stop_) {
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        return;
      }
      ++accepts_;
      std::lock_guard lock(mu_);
      conns_.push_back(c);
      workers_.emplace_back([this, c] { serve(c); });
    }
  }

  void serve(int c) {
    SeenRequest req;
    if (read_request(c, req)) {
      {
        std::lock_guard lock(mu_);
        seen_.push_back(req);
      }
      Conn conn(c, stop_);
      handler_(conn, req);
    }
    ::shutdown(c, SHUT_WR);
    // Drain briefly so the client reads everything before the close, not a reset.
    char buf[256];
    pollfd p{c, POLLIN, 0};
    while (!stop_ && ::poll(&p, 1, 50) > 0 && ::recv(c, buf, sizeof buf, 0) > 0) {
    }
    std::lock_guard lock(mu_);
    std::erase(conns_, c);
    ::close(c);
  }

  static bool read_request(int c, SeenRequest& req) {
    return read_http_request([c](char* buf, size_t n) { return ::recv(c, buf, n, 0); }, req);
  }

  std::string ip_;
  Handler handler_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepts_{0};
  std::thread acceptor_;
  mutable std::mutex mu_;
  std::vector<std::thread> workers_;
  std::vector<int> conns_;
  std::vector<SeenRequest> seen_;
};

// gzip of `data` with one fixed-Huffman deflate block: runs of a repeated byte become
// length-258/distance-1 matches, so 10 MiB of zeros is ~66 KB (a compression bomb); the rest
// are literals. Enough for tests, no zlib needed.
inline std::string gzip(std::string_view data) {
  struct Bits {
    std::string out;
    uint32_t acc = 0;
    int n = 0;
    void put(uint32_t v, int count) {  // deflate packs fields least-significant bit first
      acc |= v << n;
      n += count;
      while (n >= 8) {
        out.push_back(static_cast<char>(acc & 0xff));
        acc >>= 8;
        n -= 8;
      }
    }
    void code(uint32_t c, int len) {  // Huffman codes go most-significant bit first
      uint32_t r = 0;
      for (int i = 0; i < len; ++i) r |= ((c >> i) & 1u) << (len - 1 - i);
      put(r, len);
    }
    void literal(uint8_t b) {
      if (b < 144) code(0x30u + b, 8);
      else code(0x190u + (b - 144u), 9);
    }
  } w;
  w.put(1, 1);  // BFINAL
  w.put(1, 2);  // BTYPE 01: fixed Huffman
  size_t i = 0;
  while (i < data.size()) {
    w.literal(static_cast<uint8_t>(data[i]));
    size_t j = i + 1;
    while (j < data.size() && data[j] == data[i]) ++j;
    size_t run = j - i - 1;
    while (run >= 258) {
      w.code(0xC5, 8);  // length symbol 285 = 258
      w.code(0, 5);     // distance symbol 0 = 1
      run -= 258;
    }
    for (; run > 0; --run) w.literal(static_cast<uint8_t>(data[i]));
    i = j;
  }
  w.code(0, 7);  // end of block (256)
  if (w.n) w.out.push_back(static_cast<char>(w.acc & 0xff));

  std::array<uint32_t, 256> table{};
  for (uint32_t k = 0; k < 256; ++k) {
    uint32_t c = k;
    for (int b = 0; b < 8; ++b) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    table[k] = c;
  }
  uint32_t crc = 0xFFFFFFFFu;
  for (unsigned char ch : data) crc = table[(crc ^ ch) & 0xff] ^ (crc >> 8);
  crc ^= 0xFFFFFFFFu;
  auto le32 = [](uint32_t v) {
    std::string s(4, '\0');
    for (int k = 0; k < 4; ++k) s[static_cast<size_t>(k)] = static_cast<char>((v >> (8 * k)) & 0xff);
    return s;
  };
  std::string out("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03", 10);
  out += w.out;
  out += le32(crc);
  out += le32(static_cast<uint32_t>(data.size()));
  return out;
}

}  // namespace onemcp::testing
