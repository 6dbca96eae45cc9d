// sandbox/broker_channel.cc — see broker_channel.h. One writer thread owns every write to the run,
// so frames never interleave and no other thread (least of all the reader) blocks on a run that
// is slow to read; each request and each tunnel has a thread of its own. Every thread body
// catches everything: nothing unwinds out of a thread.
#include "sandbox/broker_channel.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>

#include <nlohmann/json.hpp>

#include "base/base64.h"

namespace onemcp::sandbox {

using nlohmann::json;

namespace {

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

json id_value(const std::string& id) { return json::parse(id, nullptr, false); }

int ms_until(std::chrono::steady_clock::time_point t) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(t - std::chrono::steady_clock::now()).count();
  if (left <= 0) return 0;
  return int(std::min<long long>(left, 1 << 30));
}

}  // namespace

struct BrokerChannel::Tunnel {
  uint64_t id = 0;
  std::string id_json;
  UniqueFd wake;  // eventfd: new input from the run, frames written, or the channel closing

  // Filled by the reader, drained by the tunnel's thread.
  std::mutex mu;
  std::string inbox;              // bytes from the run, not yet taken for the remote
  bool run_eof = false;           // the run sent "end"
  bool run_error = false;         // the run sent "error": its client went away
  bool opened = false;            // connected: the tunnel's thread only pumps from now on
  bool remote_ended = false;      // the remote's "end" is queued for the run
  size_t unsent = 0;              // taken from the inbox, not yet accepted by the remote
  std::string abort;              // a reason to abort, found by the reader (cap, malformed frame)
  uint64_t bytes_to_remote = 0;   // reader only

  std::atomic<size_t> queued_to_run{0};  // framed bytes waiting in the writer's queue
  std::atomic<bool> finished{false};     // its slot is released exactly once

  void signal() {
    uint64_t one = 1;
    ssize_t r = ::write(wake.get(), &one, sizeof one);
    (void)r;  // an eventfd at its maximum is readable anyway
  }
};

BrokerChannel::BrokerChannel(UniqueFd fd, const BrokerHandler* handler, Clock::time_point deadline,
                             const BrokerTunnels* tunnels)
    : fd_(std::move(fd)), handler_(handler), deadline_(deadline), tunnels_(tunnels) {}

BrokerChannel::~BrokerChannel() { close(); }

void BrokerChannel::on_readable() {
  char buf[65536];
  ssize_t n = ::recv(fd_.get(), buf, sizeof buf, MSG_DONTWAIT);
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
    broken_ = true;
    return;
  }
  if (n < 0) return;
  if (!reader_.feed(buf, size_t(n))) {
    broken_ = true;  // a frame too big to be honest
    return;
  }
  while (auto f = reader_.next()) dispatch(std::move(*f));
}

void BrokerChannel::close() {
  cancelled_ = true;  // requests still under way stop now
  {
    std::lock_guard lk(mu_);
    closed_ = true;
    for (auto& [id, t] : tunnels_by_id_) t->signal();
  }
  out_cv_.notify_all();
  // Only this thread (the reader's) adds threads, so the vector is stable here.
  for (auto& t : threads_) t.join();
  threads_.clear();
  if (writer_.joinable()) writer_.join();
}

UniqueFd BrokerChannel::release() {
  if (broken_ || reader_.unread() > 0) return {};
  return std::move(fd_);
}

void BrokerChannel::dispatch(std::string request) {
  std::string id = "null";
  auto j = json::parse(request, nullptr, false);
  if (j.is_object() && j.contains("id") && j["id"].is_number_unsigned()) id = j["id"].dump();
  auto refuse = [&](const std::string& why) {
    answer(dump(json{{"id", id_value(id)}, {"ok", false}, {"error", why}}));
  };
  // Stream frames carry no op; they are not requests and are never answered.
  if (j.is_object() && j.contains("stream")) {
    if (id == "null" || !j["stream"].is_string()) return;
    const auto kind = j["stream"].get<std::string>();
    std::string data;
    const bool has_data = j.contains("data") && j["data"].is_string();
    if (has_data) data = j["data"].get<std::string>();
    on_stream_frame(j["id"].get<uint64_t>(), kind, has_data ? &data : nullptr);
    return;
  }
  const bool is_connect = j.is_object() && j.value("op", json()) == json("connect");
  if (is_connect ? !tunnels_ || !tunnels_->open : !handler_) return refuse("network access is not available");
  if (in_flight_.load() >= ipc::kMaxBrokerRequestsInFlight) {
    return refuse("too many concurrent requests (" + std::to_string(ipc::kMaxBrokerRequestsInFlight) + ")");
  }
  if (is_connect) {
    if (id == "null") return refuse("malformed request");
    const json& host = j.contains("host") ? j["host"] : json();
    const json& port = j.contains("port") ? j["port"] : json();
    if (!host.is_string() || !port.is_number_unsigned() || port.get<uint64_t>() == 0 ||
        port.get<uint64_t>() > 65535)
      return refuse("malformed request: connect needs a host and a port 1..65535");
    return start_tunnel(id, j["id"].get<uint64_t>(), host.get<std::string>(), uint16_t(port.get<uint64_t>()));
  }
  ++in_flight_;
  threads_.emplace_back([this, id, request = std::move(request)] {
    std::string out;
    try {
      out = (*handler_)(request, deadline_, cancelled_);
    } catch (...) {
      out = dump(json{{"id", id_value(id)}, {"ok", false}, {"error", "internal error"}});
    }
    // Free the slot before answering: the run may send its next request as soon as it reads.
    --in_flight_;
    try {
      answer(out);
    } catch (...) {
    }
  });
}

void BrokerChannel::start_tunnel(const std::string& id, uint64_t num_id, const std::string& host,
                                 uint16_t port) {
  auto refuse = [&](const std::string& why) {
    answer(dump(json{{"id", id_value(id)}, {"ok", false}, {"error", why}}));
  };
  auto t = std::make_shared<Tunnel>();
  t->id = num_id;
  t->id_json = id;
  t->wake = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!t->wake.valid()) return refuse("internal error");
  {
    std::lock_guard lk(mu_);
    if (closed_) return;
    // Two live streams with one id could not be told apart.
    if (tunnels_by_id_.count(num_id)) return refuse("stream id " + id + " is already in use");
    tunnels_by_id_[num_id] = t;
  }
  ++in_flight_;
  threads_.emplace_back([this, t, host, port] {
    try {
      run_tunnel(t, host, port);
    } catch (...) {
      std::string why = "internal error";
      finish_tunnel(t, &why);
    }
  });
}

void BrokerChannel::on_stream_frame(uint64_t id, const std::string& kind, const std::string* data) {
  std::shared_ptr<Tunnel> t;
  {
    std::lock_guard lk(mu_);
    auto it = tunnels_by_id_.find(id);
    if (it == tunnels_by_id_.end()) return;  // already over (an abort crossed the run's frame)
    t = it->second;
  }
  bool done = false;
  {
    std::lock_guard lk(t->mu);
    if (kind == "data") {
      auto bytes = data ? base64_decode(*data) : std::nullopt;
      if (t->run_eof) {
        t->abort = "data after end";
      } else if (!bytes) {
        t->abort = "malformed data frame";
      } else {
        t->bytes_to_remote += bytes->size();
        if (t->bytes_to_remote > tunnels_->max_bytes) {
          t->abort = "tunnel exceeds maxBodyBytes (" + std::to_string(tunnels_->max_body_bytes) + ")";
        } else {
          t->inbox += *bytes;
        }
      }
    } else if (kind == "end") {
      t->run_eof = true;
      // Both directions are over once this frame is read: the slot and the id are free before
      // the reader takes the run's next frame, which may open the next tunnel (the run knows
      // nothing else is coming). With bytes still to deliver, the tunnel's thread frees them
      // once they are delivered.
      done = t->opened && t->remote_ended && t->inbox.empty() && t->unsent == 0 && t->abort.empty();
    } else if (kind == "error") {
      t->run_error = true;
      done = t->opened;  // its thread only has to notice; it never blocks once connected
    } else {
      t->abort = "unknown stream frame: " + kind;
    }
  }
  if (done) finish_tunnel(t, nullptr);
  t->signal();
}

void BrokerChannel::run_tunnel(std::shared_ptr<Tunnel> t, std::string host, uint16_t port) {
  auto opened = tunnels_->open(host, port, deadline_, cancelled_);
  if (!opened) {
    finish_tunnel(t, nullptr);
    answer(dump(json{{"id", id_value(t->id_json)}, {"ok", false}, {"error", opened.error().message}}));
    return;
  }
  UniqueFd tcp = std::move(opened).value();
  {
    std::lock_guard lk(t->mu);
    t->opened = true;
  }
  answer(dump(json{{"id", id_value(t->id_json)}, {"ok", true}}));

  const uint64_t cap = tunnels_->max_bytes;
  const std::string cap_msg = "tunnel exceeds maxBodyBytes (" + std::to_string(tunnels_->max_body_bytes) + ")";
  std::string to_remote;  // taken from the inbox, not yet accepted by the remote
  size_t to_remote_off = 0;
  bool remote_eof = false, shut_wr = false;
  uint64_t from_remote = 0;
  auto last_progress = Clock::now();
  std::optional<std::string> error;
  std::string buf(kTunnelChunkBytes, '\0');

  for (;;) {
    // The run is over or cannot hear, or it has already been told the tunnel is over (and may
    // use the id again): just close.
    if (cancelled_ || broken_ || t->finished) break;
    const auto now = Clock::now();
    if (now >= deadline_) {
      error = "tunnel closed: the run is out of time";
      break;
    }
    bool run_eof, run_error;
    std::string abort;
    {
      std::lock_guard lk(t->mu);
      if (!t->inbox.empty()) {
        to_remote.erase(0, to_remote_off);
        to_remote_off = 0;
        to_remote += t->inbox;
        t->inbox.clear();
        t->unsent = to_remote.size();
      }
      run_eof = t->run_eof;
      run_error = t->run_error;
      abort = t->abort;
    }
    if (run_error) break;
    if (!abort.empty()) {
      error = abort;
      break;
    }
    const bool pending = to_remote_off < to_remote.size();
    if (!pending) last_progress = now;
    if (!pending && run_eof && !shut_wr) {
      ::shutdown(tcp.get(), SHUT_WR);
      shut_wr = true;
    }
    if (remote_eof && shut_wr) break;  // both directions finished
    if (pending && now - last_progress > kTunnelStallTimeout) {
      error = "tunnel stalled: the remote is not reading";
      break;
    }
    const bool backpressured = t->queued_to_run.load() >= kTunnelQueuedToRunBytes;
    const short events = short((!remote_eof && !backpressured ? POLLIN : 0) | (pending ? POLLOUT : 0));
    pollfd p[2] = {{t->wake.get(), POLLIN, 0}, {events ? tcp.get() : -1, events, 0}};
    int timeout = ms_until(deadline_);
    if (backpressured) timeout = std::min(timeout, 20);  // the writer drains without waking us
    if (pending) timeout = std::min(timeout, 250);       // to notice a stall
    int n = ::poll(p, 2, timeout);
    if (n < 0 && errno != EINTR) {
      error = std::string("tunnel failed: poll: ") + std::strerror(errno);
      break;
    }
    if (n <= 0) continue;
    if (p[0].revents & POLLIN) {
      uint64_t v;
      ssize_t r = ::read(t->wake.get(), &v, sizeof v);
      (void)r;
    }
    const short rev = p[1].revents;
    if ((rev & POLLOUT) && pending) {
      ssize_t w = ::send(tcp.get(), to_remote.data() + to_remote_off, to_remote.size() - to_remote_off,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w > 0) {
        to_remote_off += size_t(w);
        last_progress = Clock::now();
        if (to_remote_off == to_remote.size()) {
          to_remote.clear();
          to_remote_off = 0;
        }
        std::lock_guard lk(t->mu);
        t->unsent = to_remote.size() - to_remote_off;
      } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
        error = std::string("connection to the remote failed: ") + std::strerror(errno);
        break;
      }
    }
    if ((rev & (POLLIN | POLLHUP | POLLERR)) && (events & POLLIN)) {
      ssize_t r = ::recv(tcp.get(), buf.data(), buf.size(), MSG_DONTWAIT);
      if (r > 0) {
        from_remote += uint64_t(r);
        if (from_remote > cap) {
          error = cap_msg;
          break;
        }
        answer(dump(json{{"id", id_value(t->id_json)},
                         {"stream", "data"},
                         {"data", base64_encode(std::string_view(buf.data(), size_t(r)))}}),
               t);
      } else if (r == 0) {
        remote_eof = true;
        {
          std::lock_guard lk(t->mu);
          t->remote_ended = true;
        }
        // The run's side already ended: this "end" tells the run the tunnel is over, so its
        // slot and id are free first.
        if (shut_wr) finish_tunnel(t, nullptr);
        answer(dump(json{{"id", id_value(t->id_json)}, {"stream", "end"}}), t);
      } else if (errno != EAGAIN && errno != EINTR) {
        error = std::string("connection to the remote failed: ") + std::strerror(errno);
        break;
      }
    } else if ((rev & (POLLHUP | POLLERR)) && !(rev & POLLOUT) && pending) {
      error = "connection to the remote failed: connection closed";
      break;
    }
  }
  // The slot and the id are free before the remote sees the end, so whoever learns of the end
  // from the remote can open the next tunnel at once; the remote sees it now, not when the
  // channel goes away.
  finish_tunnel(t, error ? &*error : nullptr);
  tcp.reset();
}

void BrokerChannel::finish_tunnel(const std::shared_ptr<Tunnel>& t, const std::string* error) {
  if (t->finished.exchange(true)) return;
  {
    std::lock_guard lk(mu_);
    auto it = tunnels_by_id_.find(t->id);
    if (it != tunnels_by_id_.end() && it->second == t) tunnels_by_id_.erase(it);
  }
  // Free the slot before the last frame: the run may open another tunnel as soon as it reads.
  --in_flight_;
  if (error)
    answer(dump(json{{"id", id_value(t->id_json)}, {"stream", "error"}, {"error", *error}}));
}

void BrokerChannel::answer(const std::string& payload, std::shared_ptr<Tunnel> tunnel) {
  std::string f = ipc::frame(payload);
  std::lock_guard lk(mu_);
  if (closed_ || broken_) return;
  if (tunnel) tunnel->queued_to_run += f.size();
  out_.push_back(Outgoing{std::move(f), std::move(tunnel)});
  if (!writer_.joinable()) {
    writer_ = std::thread([this] {
      try {
        writer_loop();
      } catch (...) {
        broken_ = true;
      }
    });
  }
  out_cv_.notify_one();
}

void BrokerChannel::writer_loop() {
  for (;;) {
    Outgoing o;
    {
      std::unique_lock lk(mu_);
      out_cv_.wait(lk, [&] { return closed_ || !out_.empty(); });
      if (closed_) return;  // the run is over: what is still queued has no reader
      o = std::move(out_.front());
      out_.pop_front();
    }
    size_t off = 0;
    while (off < o.frame.size()) {
      if (cancelled_) return;
      ssize_t n = ::send(fd_.get(), o.frame.data() + off, o.frame.size() - off, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        off += size_t(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) {
        // Short waits: close() must not wait for a run that stopped reading.
        pollfd p{fd_.get(), POLLOUT, 0};
        ::poll(&p, 1, 50);
        continue;
      }
      broken_ = true;  // the run's end is gone
      return;
    }
    if (o.tunnel) {
      o.tunnel->queued_to_run -= o.frame.size();
      o.tunnel->signal();
    }
  }
}

}  // namespace onemcp::sandbox
