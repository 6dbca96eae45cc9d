#include "worker/relay.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <deque>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "base/base64.h"
#include "base/json_depth.h"
#include "ipc/wire.h"

namespace onemcp::worker {
namespace {

using nlohmann::json;

constexpr size_t kChunk = 64u << 10;            // raw bytes per data frame (protocol maximum)
constexpr size_t kMaxClientOut = 8u << 20;      // tunnel bytes a client has not read yet
constexpr size_t kMaxBrokerOut = 4u << 20;      // frames the broker has not read yet
constexpr size_t kMaxDrainBytes = 256u << 10;   // unread request bytes swallowed before closing
constexpr size_t kMaxReasonChars = 200;

std::string why(const std::string& what) { return what + ": " + std::strerror(errno); }

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = char(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool is_tchar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}
bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!is_tchar(c)) return false;
  return true;
}
bool has_ctl(std::string_view s, bool allow_tab) {
  for (unsigned char c : s)
    if ((c < 0x20 && !(allow_tab && c == '\t')) || c == 0x7f) return true;
  return false;
}
std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Text from the broker placed in a status line or header: CR, LF and other controls removed
// (they would end the line early), cut to `max` bytes on a UTF-8 character boundary.
std::string clean(std::string_view s, size_t max) {
  std::string out;
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) continue;
    out.push_back(char(c));
  }
  if (out.size() > max) {
    size_t n = max;
    while (n > 0 && (static_cast<unsigned char>(out[n]) & 0xc0) == 0x80) --n;
    out.resize(n);
  }
  return out;
}

std::string simple_response(int status, const std::string& reason, const std::string& body) {
  return "HTTP/1.1 " + std::to_string(status) + " " + reason + "\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
}

// The broker said no: policy refusals are 403, everything else (resolution, timeouts, a broken
// upstream) 502. The reason phrase is the broker's text, since that is what Python's exception
// shows (urllib: "Tunnel connection failed: 403 blocked by network policy (...)").
std::string refusal(const std::string& error) {
  std::string text = clean(error, kMaxReasonChars);
  if (text.empty()) text = "request failed";
  int status = text.rfind("blocked by network policy", 0) == 0 ? 403 : 502;
  return simple_response(status, text, text);
}

// Hop-by-hop and proxy headers, and those the broker owns (it frames the body and sets Host
// from the vetted URL).
bool dropped_request_header(const std::string& name) {
  static constexpr std::string_view kDrop[] = {"connection", "keep-alive", "te",   "trailer",
                                               "transfer-encoding", "upgrade", "host",
                                               "content-length", "expect"};
  if (name.rfind("proxy-", 0) == 0) return true;
  for (auto d : kDrop)
    if (name == d) return true;
  return false;
}

// The answer to an upstream tool request: the broker's answer frame itself, ok or not.
std::string mcp_response(const json& answer) {
  std::string body = dump(answer);
  return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
}

// The path of an absolute-form target ("scheme://authority/path") whose authority is the
// upstream tools pseudo-origin; nullopt for any other target.
std::optional<std::string_view> mcp_path(std::string_view target) {
  size_t start = target.find("://") + 3;
  size_t end = target.find_first_of("/?#", start);
  std::string_view authority =
      target.substr(start, end == std::string_view::npos ? end : end - start);
  if (lower(authority) != kRelayMcpHost) return std::nullopt;
  return end == std::string_view::npos ? std::string_view() : target.substr(end);
}

bool dropped_response_header(const std::string& name) {
  // The body is delivered decoded and whole, and the connection ends after it.
  return name == "transfer-encoding" || name == "content-encoding" || name == "content-length" ||
         name == "connection" || name == "keep-alive";
}

enum class Phase {
  head,      // reading the request head
  body,      // reading a request body
  queued,    // waiting for a free broker slot
  waiting,   // op sent, waiting for the broker's answer
  tunnel,    // CONNECT established: bytes both ways
  draining,  // answer written and write side shut: discard input until the client closes
};

struct Conn {
  UniqueFd fd;
  Phase phase = Phase::head;
  std::string in;            // request bytes read and not yet used
  size_t head_len = 0;       // bytes of `in` that are the head (with its blank line)
  size_t body_len = 0;       // Content-Length of a fetch
  bool has_body = false;
  json op;                   // the broker request, once complete (without its id)
  bool is_connect = false;
  bool is_mcp = false;       // an upstream tool request (answered with the frame as JSON)
  uint64_t id = 0;           // broker id once sent
  std::string out;           // bytes for the client
  size_t out_off = 0;
  bool finish_after_flush = false;  // shut the write side once `out` is written
  bool client_eof = false;   // tunnel: the client finished sending (end sent)
  bool broker_eof = false;   // tunnel: the broker finished sending
  size_t drained = 0;
  bool closed = false;       // to be removed at the end of the loop iteration
};

class Relay {
 public:
  Relay(int listen_fd, int broker_fd) : listen_fd_(listen_fd), broker_fd_(broker_fd) {}

  void run() {
    std::vector<pollfd> pfds;
    std::vector<Conn*> polled;
    for (;;) {
      start_queued();
      pfds.clear();
      polled.clear();
      bool can_accept = conns_.size() < kRelayMaxClients;
      pfds.push_back({listen_fd_, short(can_accept ? POLLIN : 0), 0});
      pfds.push_back({broker_fd_, short(POLLIN | (broker_out_.size() > broker_off_ ? POLLOUT : 0)), 0});
      for (auto& c : conns_) {
        short ev = 0;
        if (wants_read(*c)) ev |= POLLIN;
        if (c->out.size() > c->out_off) ev |= POLLOUT;
        pfds.push_back({c->fd.get(), ev, 0});
        polled.push_back(c.get());
      }
      if (::poll(pfds.data(), pfds.size(), -1) < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if (pfds[1].revents & (POLLIN | POLLHUP | POLLERR)) {
        if (!read_broker()) return;
      }
      if (pfds[1].revents & POLLOUT) {
        if (!flush_broker()) return;
      }
      if (pfds[0].revents & POLLIN) accept_clients();
      for (size_t i = 0; i < polled.size(); ++i) {
        Conn& c = *polled[i];
        short rev = pfds[i + 2].revents;
        if (c.closed || rev == 0) continue;
        if (rev & POLLOUT) write_client(c);
        if (!c.closed && (rev & (POLLIN | POLLHUP | POLLERR))) read_client(c);
      }
      if (!flush_broker()) return;
      conns_.remove_if([](const std::unique_ptr<Conn>& c) { return c->closed; });
    }
  }

 private:
  bool wants_read(const Conn& c) const {
    switch (c.phase) {
      case Phase::head:
      case Phase::body:
      case Phase::draining: return true;
      case Phase::tunnel: return !c.client_eof && broker_out_.size() - broker_off_ < kMaxBrokerOut;
      default: return false;
    }
  }

  // ---- broker side -------------------------------------------------------------------------

  void send_frame(const json& j) {
    if (broker_off_ == broker_out_.size()) {
      broker_out_.clear();
      broker_off_ = 0;
    }
    broker_out_ += ipc::frame(dump(j));
  }

  bool flush_broker() {
    while (broker_off_ < broker_out_.size()) {
      ssize_t n = ::send(broker_fd_, broker_out_.data() + broker_off_, broker_out_.size() - broker_off_,
                         MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
      if (n <= 0) return false;
      broker_off_ += size_t(n);
    }
    broker_out_.clear();
    broker_off_ = 0;
    return true;
  }

  bool read_broker() {
    char buf[kChunk];
    for (;;) {
      ssize_t n = ::read(broker_fd_, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      if (n <= 0) return false;  // the supervisor is gone: so is the run's network
      if (!reader_.feed(buf, size_t(n))) return false;
      while (auto f = reader_.next()) on_broker_frame(*f);
      if (size_t(n) < sizeof buf) break;
    }
    return true;
  }

  void release(uint64_t id) {
    slots_.erase(id);
    tunnel_ids_.erase(id);
  }

  void on_broker_frame(const std::string& text) {
    json j = json::parse(text, nullptr, false);
    if (!j.is_object() || !j.contains("id") || !j["id"].is_number_unsigned()) return;
    uint64_t id = j["id"].get<uint64_t>();
    auto it = slots_.find(id);
    if (it == slots_.end()) return;  // finished on our side already
    Conn* c = it->second;            // null: the client went away first

    auto str = [&](const char* k) {
      auto f = j.find(k);
      return f != j.end() && f->is_string() ? f->get<std::string>() : std::string();
    };
    if (j.contains("stream")) {
      std::string kind = str("stream");
      if (c == nullptr || c->phase != Phase::tunnel) return;
      if (kind == "data") {
        auto bytes = base64_decode(str("data"));
        if (!bytes) return abort_tunnel(*c, "malformed data from the broker");
        c->out += *bytes;
        if (c->out.size() - c->out_off > kMaxClientOut) return abort_tunnel(*c, "the client does not read");
        write_client(*c);
      } else if (kind == "end") {
        c->broker_eof = true;
        c->finish_after_flush = true;
        if (c->client_eof) release(id);
        write_client(*c);
      } else if (kind == "error") {
        release(id);
        close_conn(*c, true);
      }
      return;
    }
    if (!j.contains("ok")) return;
    bool ok = j["ok"].is_boolean() && j["ok"].get<bool>();
    if (c == nullptr) {
      // The client left while the broker worked; an opened tunnel is closed at once.
      if (ok && tunnel_ids_.count(id))
        send_frame({{"id", id}, {"stream", "error"}, {"error", "the client closed the connection"}});
      release(id);
      return;
    }
    if (c->is_mcp) {
      release(id);
      answer(*c, mcp_response(j));
      return;
    }
    if (!ok) {
      release(id);
      answer(*c, refusal(str("error")));
      return;
    }
    if (c->is_connect) {
      c->phase = Phase::tunnel;
      c->out += "HTTP/1.1 200 Connection established\r\n\r\n";
      // Bytes the client sent right after its head (e.g. a TLS ClientHello) go first.
      std::string early = c->in.substr(c->head_len);
      c->in.clear();
      for (size_t off = 0; off < early.size(); off += kChunk) {
        send_frame({{"id", id}, {"stream", "data"},
                    {"data", base64_encode(std::string_view(early).substr(off, kChunk))}});
      }
      write_client(*c);
      return;
    }
    release(id);
    answer(*c, fetch_response(j));
  }

  std::string fetch_response(const json& j) {
    try {
      int status = j.value("status", 0);
      if (status < 100 || status > 999) return refusal("malformed answer from the broker");
      auto body = base64_decode(j.value("body", std::string()));
      if (!body) return refusal("malformed answer from the broker");
      std::string head = "HTTP/1.1 " + std::to_string(status) + " " +
                         clean(j.value("statusText", std::string()), kMaxReasonChars) + "\r\n";
      for (const auto& h : j.value("headers", json::array())) {
        if (!h.is_array() || h.size() != 2 || !h[0].is_string() || !h[1].is_string()) continue;
        std::string name = h[0].get<std::string>();
        if (!is_token(name) || dropped_response_header(lower(name))) continue;
        head += name + ": " + clean(h[1].get<std::string>(), 16u << 10) + "\r\n";
      }
      head += "Content-Length: " + std::to_string(body->size()) + "\r\nConnection: close\r\n\r\n";
      return head + *body;
    } catch (const std::exception&) {
      return refusal("malformed answer from the broker");
    }
  }

  // Sends queued requests while slots are free, in arrival order.
  void start_queued() {
    while (!queue_.empty() && slots_.size() < ipc::kMaxBrokerRequestsInFlight) {
      Conn* c = queue_.front();
      queue_.pop_front();
      if (c->closed) continue;
      c->id = next_id_++;
      c->op["id"] = c->id;
      send_frame(c->op);
      c->op = nullptr;
      c->phase = Phase::waiting;
      slots_[c->id] = c;
      if (c->is_connect) tunnel_ids_.insert(c->id);
    }
  }

  // ---- client side -------------------------------------------------------------------------

  void accept_clients() {
    while (conns_.size() < kRelayMaxClients) {
      int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;  // EAGAIN, or a client that reset before we took it
      auto c = std::make_unique<Conn>();
      c->fd.reset(fd);
      conns_.push_back(std::move(c));
    }
  }

  // Queues the final bytes for a client; the write side is shut once they are written.
  void answer(Conn& c, std::string bytes) {
    c.out += bytes;
    c.finish_after_flush = true;
    c.phase = Phase::draining;
    c.in.clear();
    write_client(c);
  }

  void write_client(Conn& c) {
    while (c.out_off < c.out.size()) {
      ssize_t n = ::send(c.fd.get(), c.out.data() + c.out_off, c.out.size() - c.out_off, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      if (n <= 0) return close_conn(c, false);
      c.out_off += size_t(n);
    }
    c.out.clear();
    c.out_off = 0;
    if (c.finish_after_flush) {
      c.finish_after_flush = false;
      ::shutdown(c.fd.get(), SHUT_WR);
      // A tunnel stays open while the client still sends; the rest only drain.
      if (c.phase == Phase::tunnel && c.client_eof) close_conn(c, false);
    }
  }

  void read_client(Conn& c) {
    char buf[kChunk];
    ssize_t n;
    do {
      n = ::read(c.fd.get(), buf, sizeof buf);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    switch (c.phase) {
      case Phase::head:
      case Phase::body:
        if (n <= 0) return close_conn(c, false);  // gave up before asking: nothing to answer
        c.in.append(buf, size_t(n));
        if (c.phase == Phase::head) return on_head_bytes(c);
        return on_body_bytes(c);
      case Phase::draining:
        if (n <= 0) return close_conn(c, false);
        c.drained += size_t(n);
        if (c.drained > kMaxDrainBytes) close_conn(c, false);
        return;
      case Phase::tunnel:
        // Not polled for input after its end: only a hangup or an error gets here.
        if (c.client_eof) return close_conn(c, false);
        if (n < 0) {
          send_frame({{"id", c.id}, {"stream", "error"}, {"error", "the client connection failed"}});
          release(c.id);
          return close_conn(c, true);
        }
        if (n == 0) {
          c.client_eof = true;
          send_frame({{"id", c.id}, {"stream", "end"}});
          if (c.broker_eof) {
            release(c.id);
            if (c.out.empty()) close_conn(c, false);
          }
          return;
        }
        send_frame({{"id", c.id}, {"stream", "data"}, {"data", base64_encode(std::string_view(buf, size_t(n)))}});
        return;
      default:
        if (n <= 0) close_conn(c, false);
        return;
    }
  }

  void on_head_bytes(Conn& c) {
    size_t end = c.in.find("\r\n\r\n");
    if (end == std::string::npos) {
      if (c.in.size() > kRelayMaxHeadBytes)
        answer(c, simple_response(431, "Request Header Fields Too Large", "request head too large\n"));
      return;
    }
    if (end + 4 > kRelayMaxHeadBytes) {
      answer(c, simple_response(431, "Request Header Fields Too Large", "request head too large\n"));
      return;
    }
    c.head_len = end + 4;
    parse_head(c, std::string_view(c.in).substr(0, end));
  }

  void on_body_bytes(Conn& c) {
    if (c.in.size() - c.head_len < c.body_len) return;
    std::string_view body = std::string_view(c.in).substr(c.head_len, c.body_len);
    if (!c.is_mcp) {
      if (c.has_body) c.op["body"] = base64_encode(body);
    } else if (c.op["op"] == "mcp") {
      if (auto why = read_mcp_call(body, c.op); !why.empty()) return bad_request(c, why);
    } else if (c.op["op"] == "mcp_search") {
      if (auto why = read_mcp_search(body, c.op); !why.empty()) return bad_request(c, why);
    }
    c.in.clear();
    enqueue(c);
  }

  // {"server": "...", "tool": "...", "args": {...}} (args optional) into an "mcp" request;
  // returns why not when the body is not that.
  static std::string read_mcp_call(std::string_view body, json& op) {
    const char* kShape = R"(the body must be {"server": string, "tool": string, "args": object})";
    if (!json_depth_within(body)) return "the arguments nest too deeply";
    json j = json::parse(body, nullptr, false);
    if (!j.is_object()) return kShape;
    auto server = j.find("server");
    auto tool = j.find("tool");
    auto args = j.find("args");
    if (server == j.end() || !server->is_string() || tool == j.end() || !tool->is_string() ||
        (args != j.end() && !args->is_object()))
      return kShape;
    op["server"] = *server;
    op["tool"] = *tool;
    op["args"] = args == j.end() ? json::object() : *args;
    return {};
  }

  // {"query": string, "detail"?, "limit"?} into an "mcp_search" request (the broker checks
  // detail and limit); returns why not when the body is not that.
  static std::string read_mcp_search(std::string_view body, json& op) {
    if (!json_depth_within(body)) return "the arguments nest too deeply";
    json j = json::parse(body, nullptr, false);
    auto query = j.is_object() ? j.find("query") : j.end();
    if (!j.is_object() || query == j.end() || !query->is_string())
      return R"(the body must be {"query": string, "detail"?: string, "limit"?: integer})";
    op["query"] = *query;
    for (const char* k : {"detail", "limit"})
      if (j.contains(k)) op[k] = j[k];
    return {};
  }

  // POST /call, /list or /search on the upstream tools pseudo-origin.
  void start_mcp(Conn& c, std::string_view method, std::string_view path,
                 std::optional<uint64_t> content_length) {
    if (path != "/call" && path != "/list" && path != "/search")
      return answer(c, simple_response(404, "Not Found", "unknown upstream tools endpoint\n"));
    if (method != "POST")
      return answer(c, simple_response(405, "Method Not Allowed", "use POST\n"));
    c.is_mcp = true;
    c.op = {{"op", path == "/call" ? "mcp" : path == "/list" ? "mcp_list" : "mcp_search"}};
    c.has_body = content_length.has_value();
    c.body_len = content_length.value_or(0);
    c.phase = Phase::body;
    on_body_bytes(c);
  }

  void enqueue(Conn& c) {
    c.phase = Phase::queued;
    queue_.push_back(&c);
  }

  void bad_request(Conn& c, const std::string& why) {
    answer(c, simple_response(400, "Bad Request", why + "\n"));
  }

  void parse_head(Conn& c, std::string_view head) {
    // Lines end in CRLF only: a bare CR or LF is how requests get smuggled past a parser.
    std::vector<std::string_view> lines;
    size_t start = 0;
    for (;;) {
      size_t eol = head.find("\r\n", start);
      std::string_view line = head.substr(start, eol == std::string_view::npos ? eol : eol - start);
      if (line.find_first_of("\r\n") != std::string_view::npos) return bad_request(c, "malformed request");
      lines.push_back(line);
      if (eol == std::string_view::npos) break;
      start = eol + 2;
    }
    std::string_view rl = lines[0];
    size_t sp1 = rl.find(' ');
    size_t sp2 = sp1 == std::string_view::npos ? sp1 : rl.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos || rl.find(' ', sp2 + 1) != std::string_view::npos)
      return bad_request(c, "malformed request line");
    std::string_view method = rl.substr(0, sp1);
    std::string_view target = rl.substr(sp1 + 1, sp2 - sp1 - 1);
    std::string_view version = rl.substr(sp2 + 1);
    if (!is_token(method) || target.empty() || has_ctl(target, false) ||
        (version != "HTTP/1.1" && version != "HTTP/1.0"))
      return bad_request(c, "malformed request line");

    json headers = json::array();
    std::vector<std::string> connection_tokens;
    std::optional<uint64_t> content_length;
    bool chunked = false;
    for (size_t i = 1; i < lines.size(); ++i) {
      std::string_view l = lines[i];
      size_t colon = l.find(':');
      if (colon == std::string_view::npos || !is_token(l.substr(0, colon)))
        return bad_request(c, "malformed header");  // also obs-fold lines, which start with SP/HT
      std::string name = lower(l.substr(0, colon));
      std::string_view value = trim(l.substr(colon + 1));
      if (has_ctl(value, true)) return bad_request(c, "malformed header");
      if (name == "transfer-encoding") chunked = true;
      if (name == "content-length") {
        if (value.empty() || value.size() > 19 || value.find_first_not_of("0123456789") != std::string_view::npos)
          return bad_request(c, "malformed Content-Length");
        uint64_t n = std::stoull(std::string(value));
        if (content_length && *content_length != n) return bad_request(c, "conflicting Content-Length");
        content_length = n;
      }
      if (name == "connection") {
        size_t s = 0;
        while (s <= value.size()) {
          size_t comma = value.find(',', s);
          auto tok = trim(value.substr(s, comma == std::string_view::npos ? comma : comma - s));
          if (!tok.empty()) connection_tokens.push_back(lower(tok));
          if (comma == std::string_view::npos) break;
          s = comma + 1;
        }
      }
      headers.push_back({std::string(l.substr(0, colon)), std::string(value)});
    }

    if (method == "CONNECT") {
      std::string_view host;
      std::string_view port;
      if (!target.empty() && target[0] == '[') {
        size_t close = target.find(']');
        if (close == std::string_view::npos || close + 1 >= target.size() || target[close + 1] != ':')
          return bad_request(c, "malformed CONNECT target");
        host = target.substr(1, close - 1);
        port = target.substr(close + 2);
      } else {
        size_t colon = target.rfind(':');
        if (colon == std::string_view::npos) return bad_request(c, "malformed CONNECT target");
        host = target.substr(0, colon);
        port = target.substr(colon + 1);
      }
      if (host.empty() || port.empty() || port.size() > 5 ||
          port.find_first_not_of("0123456789") != std::string_view::npos || std::stoul(std::string(port)) == 0 ||
          std::stoul(std::string(port)) > 65535 || host.find_first_of("/@?#\\ ") != std::string_view::npos)
        return bad_request(c, "malformed CONNECT target");
      c.is_connect = true;
      c.op = {{"op", "connect"}, {"host", std::string(host)}, {"port", std::stoul(std::string(port))}};
      return enqueue(c);
    }

    std::string scheme = lower(target.substr(0, target.find(':')));
    if (target.find("://") == std::string_view::npos || (scheme != "http" && scheme != "https"))
      return bad_request(c, "not a proxy request: the target must be an absolute http:// URL");
    if (chunked)
      return answer(c, simple_response(411, "Length Required", "chunked request bodies are not supported\n"));
    if (content_length && *content_length > kRelayMaxBodyBytes)
      return answer(c, simple_response(413, "Content Too Large", "request body too large\n"));
    if (auto path = mcp_path(target)) return start_mcp(c, method, *path, content_length);

    json kept = json::array();
    for (auto& h : headers) {
      std::string name = lower(h[0].get<std::string>());
      if (dropped_request_header(name)) continue;
      bool named = false;
      for (const auto& t : connection_tokens) named = named || t == name;
      if (!named) kept.push_back(std::move(h));
    }
    c.op = {{"op", "fetch"}, {"method", std::string(method)}, {"url", std::string(target)}, {"headers", kept}};
    c.has_body = content_length.has_value();
    c.body_len = content_length.value_or(0);
    c.phase = Phase::body;
    on_body_bytes(c);
  }

  void abort_tunnel(Conn& c, const std::string& why) {
    send_frame({{"id", c.id}, {"stream", "error"}, {"error", why}});
    release(c.id);
    close_conn(c, true);
  }

  // `reset`: abort with RST so the client sees a failure, not a clean end of stream.
  void close_conn(Conn& c, bool reset) {
    if (c.closed) return;
    if (c.phase == Phase::tunnel && slots_.count(c.id)) {
      // The broker still has this tunnel open: tell it, so its slot is freed too.
      send_frame({{"id", c.id}, {"stream", "error"}, {"error", "the client closed the connection"}});
      release(c.id);
    } else if (c.phase == Phase::waiting) {
      slots_[c.id] = nullptr;  // the answer still frees the slot when it comes
    } else if (c.phase == Phase::queued) {
      queue_.erase(std::remove(queue_.begin(), queue_.end(), &c), queue_.end());
    }
    if (reset) {
      linger l{1, 0};
      ::setsockopt(c.fd.get(), SOL_SOCKET, SO_LINGER, &l, sizeof l);
    }
    c.fd.reset();
    c.closed = true;
  }

  int listen_fd_;
  int broker_fd_;
  std::list<std::unique_ptr<Conn>> conns_;
  std::deque<Conn*> queue_;
  std::map<uint64_t, Conn*> slots_;  // ids open on the broker (a request or a tunnel)
  std::set<uint64_t> tunnel_ids_;    // which of them are tunnels
  uint64_t next_id_ = 1;
  ipc::FrameReader reader_;
  std::string broker_out_;
  size_t broker_off_ = 0;
};

}  // namespace

Status relay_enter_netns() {
  if (::unshare(CLONE_NEWNET) != 0) return make_error(why("unshare network namespace"));
  UniqueFd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!s.valid()) return make_error(why("socket"));
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (::ioctl(s.get(), SIOCGIFFLAGS, &ifr) != 0) return make_error(why("get lo flags"));
  ifr.ifr_flags = short(ifr.ifr_flags | IFF_UP | IFF_RUNNING);
  if (::ioctl(s.get(), SIOCSIFFLAGS, &ifr) != 0) return make_error(why("bring lo up"));
  return {};
}

Result<UniqueFd> relay_listen(uint16_t port) {
  UniqueFd s(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!s.valid()) return make_error(why("socket"));
  int one = 1;
  ::setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return make_error(why("bind proxy port"));
  if (::listen(s.get(), 64) != 0) return make_error(why("listen"));
  return s;
}

void relay_serve(int listen_fd, int broker_fd) {
  ::signal(SIGPIPE, SIG_IGN);
  for (int fd : {listen_fd, broker_fd}) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  Relay(listen_fd, broker_fd).run();
}

}  // namespace onemcp::worker
