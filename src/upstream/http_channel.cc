// upstream/http_channel.cc — a Streamable HTTP upstream, with libcurl: each message is a POST
// whose reply is a JSON body, an SSE stream (which may carry notifications and the upstream's
// own requests before the response), or 202 for a notification. Legacy sessions
// (Mcp-Session-Id) get a GET stream for the upstream's messages and are DELETEd at shutdown.
// Transfers run in the caller's thread on a private curl multi handle polled every few ms, so
// the cancel flag, the deadline and stop() end them at once. No redirect is followed and no
// proxy is used. Curl callbacks are noexcept: nothing unwinds through libcurl.
#include <curl/curl.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "base/base64.h"
#include "base/c_ptr.h"
#include "base/json_depth.h"
#include "base/log.h"
#include "base/thread_pool.h"
#include "upstream/channel.h"
#include "upstream/rpc.h"
#include "upstream/sse.h"

namespace onemcp::upstream {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

// A transfer sleeps in curl_multi_poll until its socket is ready, the deadline, or a wakeup
// from stop() and the listener's controls; a caller's cancel flag has no wakeup, so a transfer
// that has one looks at it this often.
constexpr milliseconds kCancelPoll{10};
constexpr milliseconds kIdlePoll{1000};
constexpr milliseconds kMaxConnectTimeout{10000};
constexpr size_t kMaxErrorBody = 64 * 1024;
constexpr size_t kShownErrorBody = 300;

// curl_global_init is not thread-safe on every build: once, before the first handle.
bool curl_ready() {
  static const bool ok = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
  return ok;
}

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }
bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                            [](char x, char y) { return lower(x) == lower(y); });
}
bool istarts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}
std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
    s.remove_suffix(1);
  return s;
}

// Header values MCP derives from a message (Mcp-Name): plain visible ASCII as is, anything else
// base64 with the =?base64?...?= sentinel.
std::string header_value(const std::string& v) {
  const bool plain = std::all_of(v.begin(), v.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
  if (plain && (v.empty() || (v.front() != ' ' && v.back() != ' '))) return v;
  return "=?base64?" + base64_encode(v) + "?=";
}

// Header names this channel owns; a config header of the same name is not sent.
bool is_owned_header(std::string_view name) {
  for (std::string_view n : {"content-type", "accept", "mcp-session-id", "mcp-protocol-version",
                             "mcp-method", "mcp-name", "last-event-id", "content-length", "host"}) {
    if (iequals(name, n)) return true;
  }
  return false;
}

using Slist = CPtr<curl_slist, curl_slist_free_all>;

// One easy handle on its own multi handle. Kept in a pool, so the multi's connection cache
// reuses keep-alive connections from one request to the next.
struct Transfer {
  CPtr<CURLM, curl_multi_cleanup> multi{curl_multi_init()};
  CPtr<CURL, curl_easy_cleanup> easy{curl_easy_init()};
};

// What the callbacks of one transfer share.
struct Exchange {
  std::function<void(std::string_view)> on_message;
  int status = 0;
  std::string content_type, session_id;
  bool decided = false, streaming = false;
  SseParser sse{kMaxMessageBytes};
  std::string body;
  bool body_too_big = false, stream_broken = false;
};

size_t on_header(char* data, size_t size, size_t n, void* user) noexcept {
  auto* ex = static_cast<Exchange*>(user);
  const std::string_view line(data, size * n);
  try {
    if (line.starts_with("HTTP/")) {
      // A new response (after a 100 Continue, say): forget the previous one's headers.
      const size_t sp = line.find(' ');
      ex->status =
          sp == std::string_view::npos ? 0 : std::atoi(std::string(line.substr(sp + 1, 3)).c_str());
      ex->content_type.clear();
      return size * n;
    }
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) return size * n;
    const std::string_view name = trim(line.substr(0, colon));
    const std::string_view value = trim(line.substr(colon + 1));
    if (iequals(name, "content-type")) ex->content_type = std::string(value);
    if (iequals(name, "mcp-session-id")) ex->session_id = std::string(value);
  } catch (...) {
    return 0;  // out of memory: abort the transfer
  }
  return size * n;
}

size_t on_body(char* data, size_t size, size_t n, void* user) noexcept {
  auto* ex = static_cast<Exchange*>(user);
  const std::string_view bytes(data, size * n);
  try {
    if (!ex->decided) {
      ex->decided = true;
      ex->streaming = ex->status / 100 == 2 && istarts_with(ex->content_type, "text/event-stream");
    }
    if (ex->streaming) {
      const bool ok = ex->sse.feed(bytes, [&](const SseEvent& ev) {
        if (ev.type == "message" && !ev.data.empty()) ex->on_message(ev.data);
      });
      if (!ok) {
        ex->stream_broken = true;
        return 0;
      }
      return bytes.size();
    }
    const size_t cap = ex->status / 100 == 2 ? kMaxMessageBytes : kMaxErrorBody;
    if (ex->body.size() + bytes.size() > cap) {
      ex->body_too_big = true;
      return ex->status / 100 == 2 ? 0 : bytes.size();  // an error body is only shown, truncated
    }
    ex->body.append(bytes);
  } catch (...) {
    return 0;
  }
  return bytes.size();
}

// A JSON error body that is a JSON-RPC response to one of our requests (an integer id).
bool is_rpc_response(const std::string& body) {
  if (!json_depth_within(body)) return false;
  const json j = json::parse(body, nullptr, false);
  return j.is_object() && j.contains("id") && j["id"].is_number_integer() &&
         (j.contains("error") || j.contains("result"));
}

class HttpChannel final : public Channel {
 public:
  HttpChannel(const policy::UpstreamConfig& cfg, const ManagerOptions& opts, ChannelSinks sinks)
      : cfg_(cfg), opts_(opts), sinks_(std::move(sinks)) {}

  ~HttpChannel() override { shutdown(); }

  Status start() override {
    if (!curl_ready()) return make_error("libcurl failed to initialise");
    outbox_ = std::make_unique<ThreadPool>(1, 256);
    return {};
  }

  Result<Delivery> send(const json& message, const SendOptions& o) override {
    return perform("POST", message, o.deadline, o.cancel, o.answered, &stopped_);
  }

  void post(json message) override {
    std::lock_guard lock(mu_);
    if (!outbox_ || shut_down_ || stopped_) return;
    const bool queued = outbox_->submit([this, m = std::move(message)] {
      auto r =
          perform("POST", m, Clock::now() + opts_.request_timeout, nullptr, nullptr, &stopped_);
      if (!r) log::debug("upstream '" + cfg_.name + "': " + r.error().message);
    });
    if (!queued)
      log::warn("upstream '" + cfg_.name + "': too many messages waiting to be sent; one dropped");
  }

  bool synchronous() const override { return true; }

  void set_protocol(const std::string& version, bool modern) override {
    std::lock_guard lock(mu_);
    version_ = version;
    modern_ = modern;
  }

  void session_ready() override {
    std::lock_guard lock(mu_);
    if (session_id_.empty() || shut_down_) return;
    if (listener_.joinable()) {
      relisten_ = true;  // a new session: the stream of the old one is of no use
      cv_.notify_all();
      wake_transfers();
      return;
    }
    listener_ = std::thread([this] { listen(); });
  }

  void reset_session() override {
    std::lock_guard lock(mu_);
    session_id_.clear();
  }

  void stop() override {
    stopped_ = true;
    wake_transfers();
    std::lock_guard lock(mu_);
    cv_.notify_all();
  }

  void shutdown() override {
    std::string session;
    std::thread listener;
    {
      std::lock_guard lock(mu_);
      if (shut_down_) return;
      shut_down_ = true;
      stop_listener_ = true;
      session = session_id_;
      listener = std::move(listener_);
      cv_.notify_all();
    }
    wake_transfers();
    if (!session.empty() && curl_ready()) {
      // The session's end is worth a short wait even when stopping: it frees the server's state.
      const auto grace = std::min<milliseconds>(opts_.stop_grace, milliseconds(2000));
      auto r = perform("DELETE", json(), Clock::now() + grace, nullptr, nullptr, nullptr);
      if (!r)
        log::debug("upstream '" + cfg_.name + "': DELETE of the session: " + r.error().message);
    }
    stop();
    if (listener.joinable()) listener.join();
    std::unique_ptr<ThreadPool> outbox;
    {
      std::lock_guard lock(mu_);
      outbox = std::move(outbox_);
    }
    outbox.reset();  // queued messages fail at once (stopped) and its thread is joined
  }

  std::string closed_reason() const override {
    std::lock_guard lock(mu_);
    return reason_.empty() ? "upstream '" + cfg_.name + "' is stopping" : reason_;
  }

 private:
  std::unique_ptr<Transfer> take_transfer() {
    {
      std::lock_guard lock(pool_mu_);
      if (!pool_.empty()) {
        auto t = std::move(pool_.back());
        pool_.pop_back();
        return t;
      }
    }
    auto t = std::make_unique<Transfer>();
    if (!t->multi || !t->easy) return nullptr;
    return t;
  }
  // Makes every transfer in progress look at its flags now.
  void wake_transfers() {
    std::lock_guard lock(pool_mu_);
    for (CURLM* m : active_) curl_multi_wakeup(m);
  }

  void give_back(std::unique_ptr<Transfer> t) {
    constexpr size_t kPoolSize = 8;
    curl_easy_reset(t->easy.get());
    std::lock_guard lock(pool_mu_);
    if (pool_.size() < kPoolSize) pool_.push_back(std::move(t));
  }

  // One HTTP exchange. `message` is the POST body (a JSON-RPC message); for GET and DELETE it is
  // null. Messages received are delivered to the sink; `stop_flag` (when given) aborts it.
  Result<Delivery> perform(const char* method, const json& message, Clock::time_point deadline,
                           const std::atomic<bool>* cancel, const std::function<bool()>& answered,
                           const std::atomic<bool>* stop_flag,
                           std::string* last_event_id = nullptr) {
    if (stop_flag && stop_flag->load()) return make_error(closed_reason());
    auto t = take_transfer();
    if (!t) return make_error("libcurl: out of memory");
    CURL* easy = t->easy.get();
    const bool is_post = std::strcmp(method, "POST") == 0;

    Delivery d;
    std::string body;
    Slist headers;
    auto add = [&](const std::string& h) {
      curl_slist* n = curl_slist_append(headers.get(), h.c_str());
      if (n) {
        (void)headers.release();
        headers.reset(n);
      }
    };
    {
      std::lock_guard lock(mu_);
      if (is_post) {
        add("Content-Type: application/json");
        add("Accept: application/json, text/event-stream");
      } else if (std::strcmp(method, "GET") == 0) {
        add("Accept: text/event-stream");
        if (last_event_id && !last_event_id->empty())
          add("Last-Event-ID: " + header_value(*last_event_id));
      }
      for (const auto& [k, v] : cfg_.headers) {
        if (!is_owned_header(k)) add(k + ": " + v);
      }
      if (!session_id_.empty()) {
        add("Mcp-Session-Id: " + session_id_);
        d.had_session = true;
      }
      if (!version_.empty()) add("MCP-Protocol-Version: " + version_);
      if (modern_ && is_post && message.contains("method")) {
        const std::string m = message.value("method", "");
        add("Mcp-Method: " + header_value(m));
        const json& params = message.contains("params") ? message["params"] : json();
        const char* key = m == "tools/call" || m == "prompts/get" ? "name"
                          : m.starts_with("resources/")           ? "uri"
                                                                  : nullptr;
        if (key && params.is_object() && params.contains(key) && params[key].is_string()) {
          add("Mcp-Name: " + header_value(params[key].get<std::string>()));
        }
      }
    }
    if (is_post) body = message.dump();

    Exchange ex;
    ex.on_message = [this](std::string_view m) { sinks_.message(m); };
    char errbuf[CURL_ERROR_SIZE] = {0};
    curl_easy_setopt(easy, CURLOPT_URL, cfg_.endpoint.c_str());
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(easy, CURLOPT_PROXY, "");
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers.get());
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, &ex);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, &ex);
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
    curl_easy_setopt(
        easy, CURLOPT_CONNECTTIMEOUT_MS,
        static_cast<long>(std::clamp(left, milliseconds(1), kMaxConnectTimeout).count()));
    if (is_post) {
      curl_easy_setopt(easy, CURLOPT_POST, 1L);
      curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body.data());
      curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    } else if (std::strcmp(method, "DELETE") == 0) {
      curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, "DELETE");
    } else {
      curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
    }

    CURLM* multi = t->multi.get();
    curl_multi_add_handle(multi, easy);
    {
      std::lock_guard lock(pool_mu_);
      active_.push_back(multi);
    }
    std::string failure;
    bool transport_failure = false, stopped_early = false;
    for (;;) {
      int running = 0;
      if (curl_multi_perform(multi, &running) != CURLM_OK) {
        failure = "libcurl multi error";
        break;
      }
      if (running == 0) {
        int queued = 0;
        while (CURLMsg* msg = curl_multi_info_read(multi, &queued)) {
          if (msg->msg != CURLMSG_DONE || msg->data.result == CURLE_OK) continue;
          const CURLcode rc = msg->data.result;
          if (rc == CURLE_WRITE_ERROR && ex.stream_broken) {
            failure = "an SSE event over " + std::to_string(kMaxMessageBytes) + " bytes";
          } else if (rc == CURLE_WRITE_ERROR && ex.body_too_big) {
            failure = "a response body over " + std::to_string(kMaxMessageBytes) + " bytes";
          } else {
            failure =
                std::string(curl_easy_strerror(rc)) + (errbuf[0] ? std::string(": ") + errbuf : "");
            transport_failure = rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
                                rc == CURLE_GOT_NOTHING || rc == CURLE_SEND_ERROR ||
                                rc == CURLE_RECV_ERROR || rc == CURLE_SSL_CONNECT_ERROR;
          }
        }
        break;
      }
      if (answered && answered()) {
        stopped_early = true;  // the response is in: the rest of the stream is not needed
        break;
      }
      if (stop_flag && stop_flag->load()) {
        failure = closed_reason();
        break;
      }
      if (cancel && cancel->load()) {
        failure = "cancelled";
        break;
      }
      if (Clock::now() >= deadline) {
        failure = "timed out";
        break;
      }
      if (method == std::string_view("GET") && (stop_listener_ || relisten_)) {
        failure = "stopping";
        break;
      }
      const auto wait = std::min(cancel ? kCancelPoll : kIdlePoll,
                                 std::chrono::duration_cast<milliseconds>(deadline - Clock::now()));
      curl_multi_poll(multi, nullptr, 0,
                      static_cast<int>(std::max<milliseconds::rep>(wait.count(), 0)), nullptr);
    }
    {
      std::lock_guard lock(pool_mu_);
      active_.erase(std::find(active_.begin(), active_.end(), multi));
    }
    curl_multi_remove_handle(multi, easy);
    if (last_event_id) *last_event_id = ex.sse.last_event_id();
    d.status = ex.status;
    // A session is born from a request sent without one (initialize); the id echoed on the
    // requests of a session, perhaps an expired one finishing late, changes nothing.
    if (!d.had_session && !ex.session_id.empty() && ex.status / 100 == 2) {
      std::lock_guard lock(mu_);
      session_id_ = ex.session_id;
    }
    // A stream cut short by us leaves its connection in an unknown state: not pooled.
    if (failure.empty() && !stopped_early) give_back(std::move(t));
    if (!failure.empty()) {
      if (transport_failure) {
        const std::string why =
            "upstream '" + cfg_.name + "' unreachable at " + cfg_.endpoint + ": " + failure;
        {
          std::lock_guard lock(mu_);
          reason_ = why;
        }
        sinks_.closed(why);
        return make_error(why);
      }
      return make_error(failure);
    }
    if (!ex.streaming && !ex.body.empty()) {
      const bool ok_status = ex.status / 100 == 2;
      if (ok_status && istarts_with(ex.content_type, "application/json")) {
        sinks_.message(ex.body);
      } else if (!ok_status && istarts_with(ex.content_type, "application/json") &&
                 is_rpc_response(ex.body)) {
        sinks_.message(ex.body);  // a JSON-RPC error for our request says more than the status
      }
      if (!ok_status) {
        d.body = ex.body.substr(0, kShownErrorBody);
        for (char& c : d.body) {
          if (static_cast<unsigned char>(c) < 0x20) c = ' ';
        }
      }
    }
    return d;
  }

  // The GET stream of a legacy session: the upstream's notifications (tools/list_changed, ...)
  // and requests outside any POST. Reopened after it ends (resuming after the last event id),
  // at once for a new session, until shutdown; given up when the server offers none (405).
  void listen() {
    constexpr milliseconds kRetry{1000}, kMaxRetry{30000};
    std::string last_event_id;
    auto delay = kRetry;
    while (!stop_listener_ && !stopped_) {
      if (relisten_.exchange(false)) last_event_id.clear();
      auto r = perform("GET", json(), Clock::time_point::max(), nullptr, nullptr, &stopped_,
                       &last_event_id);
      if (relisten_) continue;
      if (r && r->status == 405) {
        log::debug("upstream '" + cfg_.name + "' offers no GET stream (HTTP 405)");
        return;
      }
      delay = r && r->status / 100 == 2 ? kRetry : std::min(delay * 2, kMaxRetry);
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, delay, [&] { return stop_listener_ || stopped_ || relisten_; });
    }
  }

  const policy::UpstreamConfig cfg_;
  const ManagerOptions opts_;
  const ChannelSinks sinks_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::string session_id_, version_, reason_;  // under mu_
  bool modern_ = false;                        // under mu_
  std::atomic<bool> stopped_{false}, stop_listener_{false}, relisten_{false};
  std::mutex pool_mu_;
  std::vector<std::unique_ptr<Transfer>> pool_;  // under pool_mu_
  std::vector<CURLM*> active_;                   // under pool_mu_: transfers in progress
  bool shut_down_ = false;                       // under mu_
  std::thread listener_;
  std::unique_ptr<ThreadPool> outbox_;
};

}  // namespace

std::unique_ptr<Channel> make_http_channel(const policy::UpstreamConfig& cfg,
                                           const ManagerOptions& opts, ChannelSinks sinks) {
  return std::make_unique<HttpChannel>(cfg, opts, std::move(sinks));
}

}  // namespace onemcp::upstream
