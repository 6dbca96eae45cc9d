// upstream/upstream.cc — the MCP client logic above the channels: era detection and handshake,
// tools/list, tools/call, and one supervisor thread per upstream that connects, serves,
// notices death or a changed tool list, and restarts with exponential backoff.
#include "upstream/upstream.h"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include "base/log.h"
#include "upstream/channel.h"
#include "upstream/failure_log.h"
#include "upstream/rpc.h"

namespace onemcp::upstream {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

constexpr const char* kModernVersion = "2026-07-28";
constexpr const char* kLatestLegacyVersion = "2025-11-25";
constexpr const char* kLegacyVersions[] = {"2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"};
constexpr const char* kMetaProtocolVersion = "io.modelcontextprotocol/protocolVersion";
constexpr const char* kMetaClientInfo = "io.modelcontextprotocol/clientInfo";
constexpr const char* kMetaClientCapabilities = "io.modelcontextprotocol/clientCapabilities";
constexpr const char* kMetaServerInfo = "io.modelcontextprotocol/serverInfo";

// A legacy stdio server may never answer a request it does not know before initialize.
constexpr milliseconds kStdioProbeTimeout{5000};
constexpr size_t kMaxToolPages = 100;
constexpr size_t kMaxTools = 10000;
// A connection that stayed ready this long resets the backoff to its minimum.
constexpr milliseconds kStableAfter{10000};
constexpr milliseconds kMaxCallTimeout{24 * 3600 * 1000};

std::string quoted(const std::string& name) { return "upstream '" + name + "'"; }

// How one request ended, finely enough to drive era detection and session recovery.
struct Reply {
  enum Kind {
    kResult,
    kRpcError,
    kHttpStatus,
    kSessionExpired,
    kTimeout,
    kCancelled,
    kFailed,
    kBroken
  };
  Kind kind = kBroken;
  json result;
  std::string error;
  int http_status = 0;
};

class Connection {
 public:
  Connection(const policy::UpstreamConfig& cfg, const ManagerOptions& opts,
             std::function<void()> wake)
      : cfg_(cfg), opts_(opts), wake_(std::move(wake)), core_(handlers()) {
    ChannelSinks sinks{
        [this](std::string_view m) { core_.on_text(m); },
        [this](const std::string& why) { mark_dead(why); },
        [this](std::string_view line) { log::info("[" + cfg_.name + "] " + std::string(line)); }};
    chan_ = cfg_.transport == "http" ? make_http_channel(cfg_, opts_, std::move(sinks))
                                     : make_stdio_channel(cfg_, opts_, std::move(sinks));
  }
  ~Connection() { shutdown(); }

  // Starts the channel and performs the handshake of the upstream's era.
  Status open(Clock::time_point deadline) {
    if (auto s = chan_->start(); !s)
      return make_error(quoted(cfg_.name) + ": " + s.error().message);
    return negotiate(deadline);
  }

  Result<std::vector<json>> list_tools(Clock::time_point deadline) {
    std::vector<json> tools;
    const json caps = identity().capabilities;
    if (caps.is_object() && !caps.contains("tools")) return tools;
    std::set<std::string> names, cursors;
    std::string cursor;
    for (size_t page = 0;; ++page) {
      if (page == kMaxToolPages) {
        log::warn(quoted(cfg_.name) + ": more than " + std::to_string(kMaxToolPages) +
                  " pages of tools; the rest ignored");
        break;
      }
      json params = json::object();
      if (!cursor.empty()) params["cursor"] = cursor;
      auto r = request("tools/list", params, deadline);
      if (!r) return r.error();
      const auto list = r->find("tools");
      if (list == r->end() || !list->is_array())
        return make_error(quoted(cfg_.name) + ": tools/list returned no tools array");
      for (const json& t : *list) {
        if (!t.is_object() || !t.contains("name") || !t["name"].is_string()) {
          log::warn(quoted(cfg_.name) + ": skipped a tool without a name");
          continue;
        }
        if (!names.insert(t["name"].get<std::string>()).second) {
          log::warn(quoted(cfg_.name) + ": skipped a second tool named " + t["name"].dump());
          continue;
        }
        if (tools.size() == kMaxTools) {
          log::warn(quoted(cfg_.name) + ": more than " + std::to_string(kMaxTools) +
                    " tools; the rest ignored");
          return tools;
        }
        tools.push_back(t);
      }
      const auto next = r->find("nextCursor");
      if (next == r->end() || !next->is_string() || next->get<std::string>().empty()) break;
      cursor = next->get<std::string>();
      if (!cursors.insert(cursor).second) {
        log::warn(quoted(cfg_.name) + ": tools/list repeated a cursor; listing stopped there");
        break;
      }
    }
    return tools;
  }

  // A request with its result, or an error naming the upstream and the method. A legacy HTTP
  // session that expired (404) is re-initialized once and the request retried.
  Result<json> request(const std::string& method, const json& params, Clock::time_point deadline,
                       const std::atomic<bool>* cancel = nullptr,
                       RpcCore::ProgressFn progress = nullptr) {
    const auto begun = Clock::now();
    const uint64_t generation = session_generation_;
    Reply r = exchange(method, params, deadline, cancel, progress);
    if (r.kind == Reply::kSessionExpired) {
      log::info(quoted(cfg_.name) + ": session expired; initializing a new one");
      if (auto s = reinitialize(generation, deadline); !s) return s.error();
      r = exchange(method, params, deadline, cancel, progress);
    }
    switch (r.kind) {
      case Reply::kResult:
        return std::move(r.result);
      case Reply::kBroken:
        return make_error(r.error);  // names the upstream already
      case Reply::kTimeout: {
        const auto ms = std::chrono::round<milliseconds>(deadline - begun).count();
        return make_error(quoted(cfg_.name) + ": " + method + " timed out after " +
                          std::to_string(ms) + " ms");
      }
      case Reply::kCancelled:
        return make_error(quoted(cfg_.name) + ": " + method + " cancelled");
      default:
        return make_error(quoted(cfg_.name) + ": " + method + " failed: " + r.error);
    }
  }

  bool dead() const { return dead_; }
  std::string death() const {
    std::lock_guard lock(mu_);
    return death_;
  }
  bool list_changed() const { return list_changed_; }
  bool take_list_changed() { return list_changed_.exchange(false); }

  // Fails every call in flight with `why` and makes the channel refuse to block any more.
  void stop(const std::string& why) {
    core_.close(why);
    chan_->stop();
  }
  void shutdown() { chan_->shutdown(); }

  // What the handshake learnt (a new session may change it).
  struct Identity {
    std::string version;
    json server_info, capabilities;
  };
  Identity identity() const {
    std::lock_guard lock(mu_);
    return identity_;
  }

 private:
  RpcCore::Handlers handlers() {
    return RpcCore::Handlers{
        [this](json reply) { chan_->post(std::move(reply)); },
        [this](const std::string& method, const json& params) {
          if (method == "notifications/tools/list_changed") {
            list_changed_ = true;
            wake_();
          } else if (method == "notifications/message") {
            log::debug("[" + cfg_.name + "] " + params.dump());
          }
        },
        [this](const std::string& why) {
          size_t dropped = 0;
          std::lock_guard lock(mu_);
          if (!refusals_.allow(dropped)) return;
          log::warn(quoted(cfg_.name) + " sent " + why + "; skipped" +
                    (dropped ? " (" + std::to_string(dropped) + " more not shown)" : ""));
        }};
  }

  void mark_dead(const std::string& why) {
    {
      std::lock_guard lock(mu_);
      if (dead_) return;
      death_ = why;
      dead_ = true;
    }
    core_.close(why);
    wake_();
  }

  // The per-request envelope of the stateless era, on requests and notifications we send.
  json with_meta(json message) const {
    if (!modern_) return message;
    json& meta = message["params"]["_meta"];
    meta[kMetaProtocolVersion] = kModernVersion;
    meta[kMetaClientInfo] = {{"name", opts_.client_name}, {"version", opts_.client_version}};
    meta[kMetaClientCapabilities] = json::object();
    return message;
  }

  // `tell_upstream`: whether a request we stop waiting for is cancelled upstream too.
  Reply exchange(const std::string& method, const json& params, Clock::time_point deadline,
                 const std::atomic<bool>* cancel, const RpcCore::ProgressFn& progress,
                 bool tell_upstream = true) {
    const int64_t id = core_.next_id();
    json msg = protocol::request(id, method, params);
    if (progress) msg["params"]["_meta"]["progressToken"] = id;
    msg = with_meta(std::move(msg));
    auto call = core_.begin(id, progress);
    struct End {
      RpcCore& core;
      const std::shared_ptr<RpcCore::Call>& call;
      ~End() { core.end(call); }
    } end{core_, call};

    Reply r;
    auto sent = chan_->send(msg, SendOptions{deadline, cancel, [&] { return core_.done(*call); }});
    if (!sent && !core_.done(*call)) {
      if (cancel && cancel->load()) {
        r.kind = Reply::kCancelled;
      } else if (Clock::now() >= deadline) {
        r.kind = Reply::kTimeout;
      } else {
        r.kind = core_.closed() || dead_ ? Reply::kBroken : Reply::kFailed;
        r.error = sent.error().message;
      }
    } else if (!chan_->synchronous()) {
      switch (core_.wait(*call, deadline, cancel)) {
        case RpcCore::Wait::kDone:
          break;
        case RpcCore::Wait::kTimeout:
          r.kind = Reply::kTimeout;
          break;
        case RpcCore::Wait::kCancelled:
          r.kind = Reply::kCancelled;
          break;
      }
    }
    if (r.kind == Reply::kTimeout || r.kind == Reply::kCancelled) {
      if (tell_upstream) cancel_upstream(id, r.kind == Reply::kTimeout ? "timed out" : "cancelled");
      return r;
    }
    if (core_.done(*call)) {
      auto out = core_.outcome(*call);
      if (!out) {
        r.kind = core_.closed() ? Reply::kBroken : Reply::kRpcError;
        r.error = out.error().message;
        return r;
      }
      r.kind = Reply::kResult;
      r.result = std::move(*out);
      return check_result_type(std::move(r));
    }
    if (!sent) return r;
    const Delivery& d = *sent;
    if (d.status == 404 && d.had_session && !modern_) {
      r.kind = Reply::kSessionExpired;
      r.error = "HTTP 404: the session expired";
    } else if (d.status / 100 != 2) {
      r.kind = Reply::kHttpStatus;
      r.http_status = d.status;
      r.error = "HTTP " + std::to_string(d.status) + (d.body.empty() ? "" : ": " + d.body);
    } else {
      r.kind = Reply::kHttpStatus;
      r.http_status = d.status;
      r.error = "the reply (HTTP " + std::to_string(d.status) + ") carried no response";
    }
    return r;
  }

  // Stateless-era results say what they are; only a complete one is a result.
  static Reply check_result_type(Reply r) {
    if (!r.result.is_object()) return r;
    const auto t = r.result.find("resultType");
    if (t == r.result.end()) return r;
    if (*t == "complete") {
      r.result.erase(t);
      return r;
    }
    r.kind = Reply::kRpcError;
    r.error =
        *t == "input_required"
            ? "the upstream asked for client input (input_required), which 1mcp does not provide"
            : "unknown resultType " + t->dump();
    r.result = nullptr;
    return r;
  }

  // Tells the upstream to stop working on a request we no longer await. Over HTTP in the
  // stateless era, closing the request's stream (already done) is the cancellation.
  void cancel_upstream(int64_t id, const std::string& reason) {
    if (modern_ && chan_->synchronous()) return;
    json n =
        protocol::notification("notifications/cancelled", {{"requestId", id}, {"reason", reason}});
    chan_->post(with_meta(std::move(n)));
  }

  Status send_notification(const std::string& method, Clock::time_point deadline) {
    json n = protocol::notification(method, json::object());
    auto r = chan_->send(with_meta(std::move(n)), SendOptions{deadline, nullptr, nullptr});
    if (!r) return r.error();
    if (r->status != 0 && r->status / 100 != 2) {
      return make_error(method + " refused: HTTP " + std::to_string(r->status));
    }
    return {};
  }

  // Era detection, in one place. The stateless revision is probed with server/discover; a
  // server that lists it in supportedVersions is modern (no initialize, no session, the
  // envelope in every request's _meta). Any other answer — a JSON-RPC error, HTTP 400/404/405,
  // or silence on stdio (some legacy servers never answer before initialize) — means a legacy
  // server: the initialize handshake, offering the latest legacy revision and accepting any.
  Status negotiate(Clock::time_point deadline) {
    modern_ = true;
    chan_->set_protocol(kModernVersion, true);
    // On stdio, silence ends the probe early enough to leave initialize half the time. A legacy
    // server is not told about the probe it never understood.
    const bool stdio = !chan_->synchronous();
    const auto now = Clock::now();
    const auto probe_deadline =
        stdio ? now + std::min<Clock::duration>(kStdioProbeTimeout, (deadline - now) / 2)
              : deadline;
    Reply probe =
        exchange("server/discover", json::object(), probe_deadline, nullptr, nullptr, false);
    if (probe.kind == Reply::kResult) {
      const json versions = probe.result.value("supportedVersions", json::array());
      if (versions.is_array() &&
          std::find(versions.begin(), versions.end(), kModernVersion) != versions.end()) {
        Identity id{kModernVersion, probe.result.value("serverInfo", json()),
                    probe.result.value("capabilities", json::object())};
        if (id.server_info.is_null() && probe.result.contains("_meta") &&
            probe.result["_meta"].is_object()) {
          id.server_info = probe.result["_meta"].value(kMetaServerInfo, json());
        }
        std::lock_guard lock(mu_);
        identity_ = std::move(id);
        return {};
      }
    } else {
      const bool legacy_sign =
          probe.kind == Reply::kRpcError || (probe.kind == Reply::kTimeout && stdio) ||
          (probe.kind == Reply::kHttpStatus &&
           (probe.http_status == 400 || probe.http_status == 404 || probe.http_status == 405));
      if (!legacy_sign) {
        if (probe.kind == Reply::kTimeout)
          return make_error(quoted(cfg_.name) + ": server/discover timed out");
        if (probe.kind == Reply::kBroken) return make_error(probe.error);
        return make_error(quoted(cfg_.name) + ": server/discover failed: " + probe.error);
      }
    }
    modern_ = false;
    chan_->set_protocol("", false);
    return initialize(deadline);
  }

  Status initialize(Clock::time_point deadline) {
    const json params = {
        {"protocolVersion", kLatestLegacyVersion},
        {"capabilities", json::object()},
        {"clientInfo", {{"name", opts_.client_name}, {"version", opts_.client_version}}}};
    auto r = request("initialize", params, deadline);
    if (!r) return r.error();
    const std::string v = r->value("protocolVersion", "");
    if (std::find(std::begin(kLegacyVersions), std::end(kLegacyVersions), v) ==
        std::end(kLegacyVersions)) {
      return make_error(quoted(cfg_.name) + ": unsupported protocol version " + json(v).dump());
    }
    {
      std::lock_guard lock(mu_);
      identity_ =
          Identity{v, r->value("serverInfo", json()), r->value("capabilities", json::object())};
    }
    chan_->set_protocol(v, false);
    if (auto s = send_notification("notifications/initialized", deadline); !s) {
      return make_error(quoted(cfg_.name) + ": " + s.error().message);
    }
    chan_->session_ready();
    return {};
  }

  // After a 404 on a legacy session: one new session for every request that saw the old one die.
  // Without one the connection is of no use: it dies, and the supervisor starts anew.
  Status reinitialize(uint64_t generation, Clock::time_point deadline) {
    std::lock_guard lock(session_mu_);
    if (generation != session_generation_) return {};
    chan_->reset_session();
    if (auto s = initialize(deadline); !s) {
      mark_dead(s.error().message);
      return s;
    }
    ++session_generation_;
    list_changed_ = true;  // a new session may offer other tools
    wake_();
    return {};
  }

  const policy::UpstreamConfig cfg_;
  const ManagerOptions opts_;
  const std::function<void()> wake_;
  RpcCore core_;
  std::unique_ptr<Channel> chan_;
  std::atomic<bool> modern_{false};
  mutable std::mutex mu_;
  Identity identity_;            // under mu_
  std::string death_;            // under mu_
  RateLimiter refusals_{5, 20};  // under mu_
  std::atomic<bool> dead_{false}, list_changed_{false};
  std::mutex session_mu_;
  std::atomic<uint64_t> session_generation_{0};
};

}  // namespace

const char* state_name(State s) {
  switch (s) {
    case State::kConnecting:
      return "connecting";
    case State::kReady:
      return "ready";
    case State::kBackoff:
      return "backoff";
    case State::kStopped:
      return "stopped";
  }
  return "?";
}

// One configured upstream: its supervisor thread and the state the API reads.
class Manager::Upstream {
 public:
  Upstream(policy::UpstreamConfig cfg, const ManagerOptions& opts, std::function<void()> changed)
      : cfg_(std::move(cfg)), opts_(opts), changed_(std::move(changed)) {}
  ~Upstream() {
    request_stop();
    join();
  }

  void start() {
    thread_ = std::thread([this] { run(); });
  }

  void request_stop() {
    std::shared_ptr<Connection> conn;
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      stopping_ = true;
      if (!thread_.joinable()) state_ = State::kStopped;
      conn = current_;
      cv_.notify_all();
    }
    if (conn) conn->stop(quoted(cfg_.name) + " is stopping");
  }
  void join() {
    if (thread_.joinable()) thread_.join();
  }

  const std::string& name() const { return cfg_.name; }

  UpstreamStatus status() const {
    std::lock_guard lock(mu_);
    UpstreamStatus s;
    s.name = cfg_.name;
    s.transport = cfg_.transport;
    s.state = state_;
    s.error = error_;
    s.protocol_version = version_;
    s.server_info = server_info_;
    s.tool_count = tools_.size();
    s.restarts = restarts_;
    return s;
  }

  Result<std::vector<json>> tools() const {
    std::lock_guard lock(mu_);
    if (!listed_) return not_ready();
    return tools_;
  }

  Result<json> call(const std::string& tool, const json& arguments, CallOptions o) {
    if (!arguments.is_null() && !arguments.is_object()) {
      return make_error(quoted(cfg_.name) + ": tool arguments must be an object");
    }
    std::shared_ptr<Connection> conn;
    {
      std::lock_guard lock(mu_);
      if (!ready_ || ready_->dead()) return listed_ ? restarting() : not_ready();
      conn = ready_;
    }
    RpcCore::ProgressFn progress;
    if (o.on_progress) {
      progress = [cb = std::move(o.on_progress)](const json& p) {
        try {
          cb(p);
        } catch (...) {  // the caller's callback must not unwind through the I/O thread
        }
      };
    }
    const json params = {{"name", tool},
                         {"arguments", arguments.is_null() ? json::object() : arguments}};
    const auto timeout = std::clamp<milliseconds>(o.timeout, milliseconds(1), kMaxCallTimeout);
    return conn->request("tools/call", params, Clock::now() + timeout, o.cancel,
                         std::move(progress));
  }

  bool wait_settled(Clock::time_point deadline) const {
    std::unique_lock lock(mu_);
    return cv_.wait_until(lock, deadline, [&] { return settled_ || stopping_; });
  }

 private:
  Error not_ready() const {
    return make_error(quoted(cfg_.name) + " is not ready (" + state_name(state_) +
                      (error_.empty() ? "" : ": " + error_) + ")");
  }
  // Its tools stay listed while it restarts: a call to one gets this at once (no waiting for a
  // restart that may take until the next backoff, or never come).
  Error restarting() const {
    return make_error(quoted(cfg_.name) + " is restarting (attempt " +
                      std::to_string(std::max<uint32_t>(attempt_, 1)) + "); try again");
  }

  void wake() {
    std::lock_guard lock(mu_);
    cv_.notify_all();
  }

  void changed() {
    if (!changed_) return;
    try {
      changed_();
    } catch (...) {
      log::error(quoted(cfg_.name) + ": the tools-changed callback threw");
    }
  }

  void run() {
    auto delay = opts_.backoff_min;
    bool first = true;
    FailureLog failures;  // the first failure in a row is logged, then ever more rarely
    for (;;) {
      auto conn = std::make_shared<Connection>(cfg_, opts_, [this] { wake(); });
      {
        std::lock_guard lock(mu_);
        if (stopping_) break;
        state_ = State::kConnecting;
        current_ = conn;
      }
      const auto deadline = Clock::now() + opts_.connect_timeout;
      auto tools = [&]() -> Result<std::vector<json>> {
        if (auto s = conn->open(deadline); !s) return s.error();
        return conn->list_tools(deadline);
      }();
      std::string error;
      bool was_ready = false;
      if (tools) {
        was_ready = true;
        if (auto line = failures.recovered()) log::info(quoted(cfg_.name) + " " + *line);
        serve(conn, std::move(*tools), first);
        error = conn->death();
      } else {
        error = tools.error().message;
      }
      bool stopping;
      bool withdrawn = false;
      {
        std::lock_guard lock(mu_);
        stopping = stopping_;
        ready_.reset();
        if (was_ready) {
          attempt_ = 1;
          died_at_ = Clock::now();
        } else if (attempt_ > 0) {
          ++attempt_;
          // Failing for too long to count on: its last tools go until it is ready again.
          if (listed_ && Clock::now() - died_at_ >= opts_.keep_tools_for) {
            listed_ = false;
            tools_.clear();
            withdrawn = true;
          }
        }
        settled_ = true;
        if (!stopping) {
          state_ = State::kBackoff;
          error_ = error;
        }
        cv_.notify_all();
      }
      if (was_ready) changed();  // the same tools, but not ready
      if (withdrawn) {
        const auto ms = opts_.keep_tools_for.count();
        log::warn(quoted(cfg_.name) + " has not come back for " +
                  (ms % 1000 ? std::to_string(ms) + " ms" : std::to_string(ms / 1000) + " s") +
                  ": its tools are withdrawn until it is ready again");
        changed();
      }
      conn->stop(stopping ? quoted(cfg_.name) + " is stopping" : error);
      conn->shutdown();
      {
        std::lock_guard lock(mu_);
        current_.reset();
      }
      conn.reset();
      if (stopping) break;
      if (was_ready && Clock::now() - ready_since_ >= kStableAfter) delay = opts_.backoff_min;
      if (auto line = failures.failed(error, delay, std::chrono::system_clock::now())) {
        log::warn(*line);
      }
      first = false;
      std::unique_lock lock(mu_);
      if (cv_.wait_for(lock, delay, [&] { return stopping_; })) break;
      delay = std::min(delay * 2, opts_.backoff_max);
    }
    bool had_tools;
    {
      std::lock_guard lock(mu_);
      state_ = State::kStopped;
      had_tools = listed_;
      listed_ = false;  // given up on: its last tools go
      tools_.clear();
      settled_ = true;
      cv_.notify_all();
    }
    if (had_tools) changed();
  }

  // Ready: publishes the tools, then re-lists them when the upstream says they changed, until
  // the connection dies or the manager stops. The tools (and what changed() makes of them) are
  // in place, and calls accepted, before the state says kReady.
  void serve(const std::shared_ptr<Connection>& conn, std::vector<json> tools, bool first) {
    {
      std::lock_guard lock(mu_);
      error_.clear();
      auto id = conn->identity();
      version_ = std::move(id.version);
      server_info_ = std::move(id.server_info);
      tools_ = std::move(tools);
      listed_ = true;
      ready_ = conn;
      attempt_ = 0;
    }
    changed();
    {
      std::lock_guard lock(mu_);
      state_ = State::kReady;
      if (!first) ++restarts_;
      settled_ = true;
      ready_since_ = Clock::now();
      log::info(quoted(cfg_.name) + " ready: " + std::to_string(tools_.size()) +
                " tools, protocol " + version_ +
                (server_info_.is_object()
                     ? ", server " + server_info_.value("name", std::string("?")) + " " +
                           server_info_.value("version", std::string("?"))
                     : std::string()));
      cv_.notify_all();
    }
    changed();
    for (;;) {
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return stopping_ || conn->dead() || conn->list_changed(); });
        if (stopping_ || conn->dead()) return;
      }
      if (!conn->take_list_changed()) continue;
      auto relisted = conn->list_tools(Clock::now() + opts_.request_timeout);
      if (!relisted) {
        log::warn(relisted.error().message);
        continue;
      }
      auto id = conn->identity();
      {
        std::lock_guard lock(mu_);
        tools_ = std::move(*relisted);
        version_ = std::move(id.version);
        server_info_ = std::move(id.server_info);
      }
      changed();
    }
  }

  const policy::UpstreamConfig cfg_;
  const ManagerOptions opts_;
  const std::function<void()> changed_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  // Under mu_:
  State state_ = State::kConnecting;
  std::string error_, version_;
  json server_info_;
  std::vector<json> tools_;  // the last list, kept while restarting
  bool listed_ = false;      // tools_ is a list (ready once, not stopped)
  uint32_t restarts_ = 0;
  uint32_t attempt_ = 0;  // the restart attempt under way or due next (0: not restarting)
  bool settled_ = false, stopping_ = false;
  std::shared_ptr<Connection> ready_;    // from just before kReady to its death: what calls use
  std::shared_ptr<Connection> current_;  // any attempt under way: what stop aborts
  Clock::time_point ready_since_;
  Clock::time_point died_at_;  // when its last ready connection died
  std::thread thread_;
};

Manager::Manager(std::vector<policy::UpstreamConfig> configs, ManagerOptions opts)
    : opts_(std::move(opts)) {
  for (auto& c : configs) {
    upstreams_.push_back(std::make_unique<Upstream>(std::move(c), opts_, [this] {
      if (on_changed_) on_changed_();
    }));
  }
}

Manager::~Manager() { stop(); }

void Manager::start() {
  std::lock_guard lock(lifecycle_mu_);
  if (started_ || stopped_) return;
  started_ = true;
  for (auto& u : upstreams_) u->start();
}

void Manager::stop() {
  std::lock_guard lock(lifecycle_mu_);
  if (stopped_) return;
  stopped_ = true;
  // All at once, so the stop graces run in parallel.
  for (auto& u : upstreams_) u->request_stop();
  for (auto& u : upstreams_) u->join();
}

bool Manager::wait_settled(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  bool all = true;
  for (auto& u : upstreams_) all = u->wait_settled(deadline) && all;
  return all;
}

std::vector<UpstreamStatus> Manager::status() const {
  std::vector<UpstreamStatus> out;
  for (const auto& u : upstreams_) out.push_back(u->status());
  return out;
}

Result<std::vector<nlohmann::json>> Manager::tools(const std::string& upstream) const {
  for (const auto& u : upstreams_) {
    if (u->name() == upstream) return u->tools();
  }
  return make_error("unknown upstream '" + upstream + "'");
}

Result<nlohmann::json> Manager::call_tool(const std::string& upstream, const std::string& tool,
                                          const nlohmann::json& arguments, CallOptions opts) {
  for (const auto& u : upstreams_) {
    if (u->name() == upstream) return u->call(tool, arguments, std::move(opts));
  }
  return make_error("unknown upstream '" + upstream + "'");
}

void Manager::on_tools_changed(std::function<void()> cb) { on_changed_ = std::move(cb); }

}  // namespace onemcp::upstream
