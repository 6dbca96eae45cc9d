#include "server/mcp_server.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include "base/base64.h"
#include "base/json_depth.h"
#include "base/log.h"
#include "base/random.h"
#include "base/sha256.h"
#include "capsule/http.h"
#include "policy/schemas.h"
#include "protocol/modern.h"
#include "sandbox/outdir.h"
#include "server/auth.h"
#include "server/tools.h"
#include "server/ui.h"
#include "server/upstreams.h"

namespace onemcp::server {

using nlohmann::json;

namespace {

constexpr const char* kProtocols[] = {"2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"};

using protocol::dump;
using protocol::kInternalError;
using protocol::kInvalidParams;
using protocol::kInvalidRequest;
using protocol::kMethodNotFound;
using protocol::kParseError;
using protocol::kServerBusy;
using protocol::kSessionNotFound;
using protocol::kShuttingDown;
using protocol::Message;
using protocol::Method;
constexpr int kRetryAfterSeconds = 1;
// POST /workspace/list and /workspace/read: entries listed, bytes of a file read.
constexpr size_t kWorkspaceListMax = 1000;
constexpr size_t kWorkspaceReadMax = 16u << 20;

json rpc_error(const json& id, int code, const std::string& message) {
  return protocol::error(id, code, message);
}
json rpc_result(const json& id, json result) { return protocol::response(id, std::move(result)); }

std::string random_session_id() { return random_hex(16); }

std::string header(const HttpRequest& r, const char* name) {
  auto it = r.headers.find(name);
  return it == r.headers.end() ? std::string() : it->second;
}

HttpResponse json_response(int status, const json& body) {
  return HttpResponse{status, {{"Content-Type", "application/json"}}, dump(body)};
}

bool accepts_sse(const HttpRequest& r) {
  std::string accept = header(r, "accept");
  std::transform(accept.begin(), accept.end(), accept.begin(), ::tolower);
  return accept.find("text/event-stream") != std::string::npos;
}

// GET /types: the names of the files of types/ (JSON Schemas and the TypeScript definitions
// generated from them); GET /types/<name>: one file, as embedded in the binary.
HttpResponse types_response(const std::string& method, const std::string& path) {
  if (method != "GET" && method != "HEAD") {
    HttpResponse r = json_response(405, json{{"error", "method not allowed"}});
    r.headers.push_back({"Allow", "GET, HEAD"});
    return r;
  }
  if (path == "/types" || path == "/types/") {
    json files = json::array();
    for (auto name : policy::schema_file_names()) files.push_back(std::string(name));
    return json_response(200, json{{"files", std::move(files)}});
  }
  std::string name = path.substr(std::string_view("/types/").size());
  auto text = policy::schema_text(name);  // exact names only: nothing else can be reached
  if (!text) return json_response(404, json{{"error", "not found"}, {"path", path}});
  const char* type = name.ends_with(".d.ts") ? "application/typescript; charset=utf-8"
                                              : "application/json; charset=utf-8";
  return HttpResponse{
      200, {{"Content-Type", type}, {"X-Content-Type-Options", "nosniff"}}, std::string(*text)};
}

HttpResponse sse_head() {
  return HttpResponse{
      200, {{"Content-Type", "text/event-stream"}, {"Cache-Control", "no-cache"}}, ""};
}

std::string sse_event(const json& msg) { return "event: message\ndata: " + dump(msg) + "\n\n"; }
// An event of a session's GET stream: its id (unique in the session) lets a client that lost the
// stream ask for what it missed (Last-Event-ID).
std::string sse_event(const json& msg, uint64_t id) {
  return "id: " + std::to_string(id) + "\n" + sse_event(msg);
}

// MCP's log levels (RFC 5424's severities), least severe first.
constexpr const char* kLogLevels[] = {"debug", "info",     "notice", "warning",
                                      "error", "critical", "alert",  "emergency"};
int log_level_of(const std::string& name) {
  for (int i = 0; i < int(std::size(kLogLevels)); ++i)
    if (name == kLogLevels[i]) return i;
  return -1;
}

// Events of a session's GET stream kept for a client that reconnects with Last-Event-ID.
constexpr size_t kReplayEvents = 256;

json notification(const char* method, json params = nullptr) {
  return protocol::notification(method, std::move(params));
}

// params._meta.progressToken when it is a string or an integer, else null.
json progress_token(const json& params) {
  if (!params.is_object() || !params.contains("_meta")) return nullptr;
  const json& meta = params["_meta"];
  if (!meta.is_object()) return nullptr;
  if (!meta.contains("progressToken") || !protocol::valid_id(meta["progressToken"])) return nullptr;
  return meta["progressToken"];
}

// Sends notifications/progress for `token` through `notify`: strictly increasing, none once
// `cancel` is cancelled, and the end (1) only if `send_end`. A no-op without a token or a way
// to send.
ProgressFn progress_reporter(json token, std::function<void(const json&)> notify,
                             std::shared_ptr<sandbox::CancelToken> cancel, bool send_end) {
  if (token.is_null() || !notify) return [](double, const std::string&) {};
  struct Last {
    std::mutex mu;
    double fraction = -1;
  };
  return [last = std::make_shared<Last>(), token = std::move(token), notify = std::move(notify),
          cancel = std::move(cancel), send_end](double fraction, const std::string& message) {
    fraction = std::clamp(fraction, 0.0, 1.0);
    std::lock_guard lk(last->mu);  // held while sending, so reports leave in order
    if (fraction <= last->fraction || cancel->cancelled()) return;
    last->fraction = fraction;
    if (fraction == 1 && !send_end) return;
    json params{{"progressToken", token}, {"progress", fraction}, {"total", 1}};
    if (!message.empty()) params["message"] = message;
    notify(notification("notifications/progress", std::move(params)));
  };
}

// Over stdio the response ends a call's progress: a progress line that a client reads together
// with the response is handled after it (the TypeScript SDK dispatches notifications a microtask
// later than responses) and reported as a progress for an unknown token. So over stdio a run's
// start is reported only once it has run for kStdioStartAfter, and its answer then leaves no
// sooner than kStdioAnswerGap after that report, in a read of its own.
constexpr auto kStdioStartAfter = std::chrono::milliseconds(50);
constexpr auto kStdioAnswerGap = std::chrono::milliseconds(20);

class DeferredStart {
 public:
  explicit DeferredStart(ProgressFn progress)
      : thread_([this, progress = std::move(progress)] {
          std::unique_lock lk(mu_);
          if (cv_.wait_for(lk, kStdioStartAfter, [&] { return done_; })) return;
          progress(0, "running");
          sent_at_ = std::chrono::steady_clock::now();
        }) {}
  ~DeferredStart() { finish(); }
  DeferredStart(const DeferredStart&) = delete;
  DeferredStart& operator=(const DeferredStart&) = delete;

  // The run is over: no start report after this. Returns once its answer may be sent.
  void finish() {
    {
      std::lock_guard lk(mu_);
      done_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    if (sent_at_) std::this_thread::sleep_until(*sent_at_ + kStdioAnswerGap);
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::optional<std::chrono::steady_clock::time_point> sent_at_;
  std::thread thread_;  // last: started once the rest exists
};

json busy_error(const json& id, const std::string& message) {
  json e = rpc_error(id, kServerBusy, message);
  e["error"]["data"] = {{"retryable", true}, {"retryAfterMs", kRetryAfterSeconds * 1000}};
  return e;
}

json shutdown_error(const json& id) {
  return rpc_error(id, kShuttingDown, "The server is shutting down; retry later");
}

// The HTTP status of a JSON-RPC answer: refusals the client should retry are not 200.
HttpResponse rpc_response(const json& msg) {
  const json* error = msg.is_object() && msg.contains("error") ? &msg["error"] : nullptr;
  const int code =
      error && error->is_object() && error->contains("code") && (*error)["code"].is_number_integer()
          ? (*error)["code"].get<int>()
          : 0;
  if (code == kServerBusy || code == kShuttingDown) {
    HttpResponse r = json_response(code == kServerBusy ? 429 : 503, msg);
    r.headers.push_back({"Retry-After", std::to_string(kRetryAfterSeconds)});
    return r;
  }
  return json_response(200, msg);
}

// The answer to one POST: a plain JSON response, or, once a notification about the request must
// go first (progress), an SSE stream that ends with the response. Thread-safe.
class PostAnswer {
 public:
  PostAnswer(Respond respond, StartStream start)
      : respond_(std::move(respond)), start_(std::move(start)) {}
  void notify(const json& n) {
    std::lock_guard lk(mu_);
    if (done_ || !start_) return;
    if (!stream_) stream_ = start_(sse_head());
    stream_->send(sse_event(n));
  }
  // `status`: the HTTP status of a plain JSON answer (0: as rpc_response() says).
  void reply(const json& r, int status = 0) {
    std::lock_guard lk(mu_);
    if (done_) return;
    done_ = true;
    if (stream_) {
      stream_->send(sse_event(r));
      stream_->close();
    } else {
      respond_(status ? json_response(status, r) : rpc_response(r));
    }
  }
  // The answer was given otherwise (a stream of its own): nothing more from here.
  void taken() {
    std::lock_guard lk(mu_);
    done_ = true;
  }
  // The request was cancelled: per the spec no response follows. A client that takes SSE gets
  // a stream that ends without one (an HTTP answer to a POSTed request is a stream or a JSON
  // object); one that cannot gets `otherwise`, its only way to learn the call is over.
  void end(const json& otherwise) {
    std::lock_guard lk(mu_);
    if (done_) return;
    done_ = true;
    if (!stream_ && start_) stream_ = start_(sse_head());
    if (stream_) {
      stream_->close();
    } else {
      respond_(rpc_response(otherwise));
    }
  }

 private:
  std::mutex mu_;
  Respond respond_;
  StartStream start_;  // null: the client cannot take a stream
  std::shared_ptr<EventStream> stream_;
  bool done_ = false;
};

}  // namespace

bool is_supported_protocol(const std::string& v) {
  return std::find(std::begin(kProtocols), std::end(kProtocols), v) != std::end(kProtocols);
}

// Streams and write functions are called without holding `mu`.
struct McpServer::Session {
  std::string id;
  bool http = true;
  std::string owner;      // the authenticated principal that created it (empty: none)
  std::string principal;  // whose run slots its calls take: the owner, else the session itself
  // Who the session handles it creates belong to (server/sessions.h): the authenticated
  // principal; without authentication every HTTP client is one ("anonymous": the handle alone is
  // the credential), and the stdio client is its own. Never the MCP session, so a handle outlives
  // it and works in both eras.
  std::string handles_owner() const {
    return !owner.empty() ? owner : http ? "anonymous" : "stdio";
  }
  std::mutex mu;  // guards everything below
  std::string protocol;
  bool initialized = false;
  bool closed = false;
  std::chrono::steady_clock::time_point last_used;
  std::map<std::string, std::shared_ptr<sandbox::CancelToken>> running;  // key: dumped request id
  std::set<std::string> withdrawn;  // keys of running requests the client cancelled: no response
  int log_level = -1;               // logging/setLevel (index in kLogLevels); -1: no messages
  std::shared_ptr<EventStream> stream;  // HTTP: the standalone GET stream, if one was opened
  uint64_t last_event_id = 0;           // of the GET stream's events
  std::deque<std::pair<uint64_t, std::string>> replay;  // its last kReplayEvents events
  WriteLine write;                      // stdio: where lines go

  // Whether it asked for log messages of `level` (a name of kLogLevels) with logging/setLevel.
  bool wants_log(const std::string& level) {
    const int severity = log_level_of(level);
    std::lock_guard lk(mu);
    return log_level >= 0 && severity >= log_level;
  }

  // Cancels the runs and ends the GET stream.
  void close() {
    std::shared_ptr<EventStream> s;
    {
      std::lock_guard lk(mu);
      closed = true;
      for (auto& [k, t] : running) t->cancel();
      s = std::move(stream);
    }
    if (s) s->close();
  }

  // A message outside any request, once the client said it is initialized. Over HTTP it goes to
  // the GET stream, and is kept for a client that reconnects to it (sent in order: under `mu`).
  void notify(const json& msg) {
    WriteLine w;
    {
      std::lock_guard lk(mu);
      if (!initialized || closed) return;
      if (http) {
        std::string event = sse_event(msg, ++last_event_id);
        if (stream) stream->send(event);
        replay.emplace_back(last_event_id, std::move(event));
        if (replay.size() > kReplayEvents) replay.pop_front();
        return;
      }
      w = write;
    }
    if (w) w(dump(msg));
  }
};

McpServer::McpServer(ServerOptions opts, policy::Config config, RunBackend& backend)
    : opts_(std::move(opts)),
      backend_(backend),
      hosts_(opts_.hosts),
      config_(std::make_shared<const policy::Config>(std::move(config))),
      run_files_(opts_.run_files),
      aux_(std::make_unique<ThreadPool>(opts_.aux_threads, opts_.max_queued_aux)),
      runs_(std::make_unique<FairScheduler>(opts_.runs)) {
  if (config_->sessions.enabled)
    run_sessions_ = std::make_unique<Sessions>(config_->sessions, opts_.replica);
  stdio_session_ = std::make_shared<Session>();
  stdio_session_->id = "stdio";
  stdio_session_->principal = "stdio";
  stdio_session_->http = false;
  stdio_session_->protocol = kLatestProtocol;
  register_metrics();
}

void McpServer::register_metrics() {
  using metrics::Sample;
  auto one = [](double v) { return std::vector<Sample>{{{}, v}}; };
  metrics_.gauge("onemcp_build_info", "The server's name and version (always 1).",
                 {"name", "version"}, [this] {
                   return std::vector<Sample>{{{opts_.name, opts_.version}, 1}};
                 });
  metrics_.counter("onemcp_runs_total",
                   "run_js and run_py calls that ended, by tool and outcome (the run's outcome, "
                   "or invalid, busy, cancelled, shutdown when it never ran).",
                   {"tool", "outcome"});
  metrics_.histogram("onemcp_run_duration_seconds",
                     "Time a call's run took in the backend: dependencies, capsule, sandbox, "
                     "code, teardown up to the answer.",
                     {"tool"}, metrics::kSecondsBuckets);
  metrics_.histogram("onemcp_queue_wait_seconds",
                     "Time a call waited for a run slot (server.runSlots, shared fairly).",
                     {"tool"},
                     {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60});
  metrics_.gauge("onemcp_runs_in_flight", "Calls holding a run slot.", {},
                 [this, one] { return one(double(runs_->running())); });
  metrics_.gauge("onemcp_calls_queued", "Calls waiting for a run slot.", {},
                 [this, one] { return one(double(runs_->queued())); });
  metrics_.gauge("onemcp_mcp_sessions", "Open MCP sessions (HTTP, legacy era).", {},
                 [this, one] { return one(double(session_count())); });
  metrics_.gauge("onemcp_run_sessions", "Open run sessions (session_create).", {},
                 [this, one] { return one(run_sessions_ ? double(run_sessions_->open()) : 0); });
  metrics_.counter("onemcp_dependency_builds_total",
                   "Dependency sets prepared for calls (cache hits not counted), by kind (npm, "
                   "pip) and outcome (ok, error).",
                   {"kind", "outcome"});
  if (opts_.upstreams) {
    Upstreams* u = opts_.upstreams;
    metrics_.gauge("onemcp_upstreams", "Upstream MCP servers by state.", {"state"}, [u] {
      std::map<std::string, double> by_state;
      for (auto s : {upstream::State::kConnecting, upstream::State::kReady,
                     upstream::State::kBackoff, upstream::State::kStopped}) {
        by_state[upstream::state_name(s)] = 0;
      }
      for (const auto& st : u->manager().status()) ++by_state[upstream::state_name(st.state)];
      std::vector<Sample> out;
      for (auto& [state, n] : by_state) out.push_back({{state}, n});
      return out;
    });
    metrics_.gauge(
        "onemcp_upstream_restarts_total",
        "Connections made to an upstream MCP server after its first one.", {"upstream"},
        [u] {
          std::vector<Sample> out;
          for (const auto& st : u->manager().status())
            out.push_back({{st.name}, double(st.restarts)});
          return out;
        },
        "counter");
  }
  if (const Capsules* c = opts_.capsule_cache) {
    metrics_.gauge("onemcp_capsule_cache_bytes",
                   "Bytes of run capsules: kept in memory, and on disk (as of the last gc pass "
                   "plus what was stored since).",
                   {"tier"}, [c] {
                     return std::vector<Sample>{{{"memory"}, double(c->memory_used())},
                                                {{"disk"}, double(c->stored_bytes())}};
                   });
    metrics_.gauge("onemcp_capsule_cache_memory_entries", "Run capsules kept in memory.", {},
                   [c, one] { return one(double(c->memory_entries())); });
    metrics_.gauge(
        "onemcp_capsule_gc_runs_total", "Completed gc passes over the capsule cache.", {},
        [c, one] { return one(double(c->gc_runs())); }, "counter");
  }
}

void McpServer::call_finished(const CallEnd& c) {
  metrics_.add("onemcp_runs_total", {c.tool, c.outcome});
  using Seconds = std::chrono::duration<double>;
  using Ms = std::chrono::duration<double, std::milli>;
  if (c.wait) metrics_.observe("onemcp_queue_wait_seconds", {c.tool}, Seconds(*c.wait).count());
  if (c.run) metrics_.observe("onemcp_run_duration_seconds", {c.tool}, Seconds(*c.run).count());
  // Milliseconds to the tenth: enough to compare calls, short to read.
  auto ms = [](std::chrono::steady_clock::duration d) {
    return std::round(Ms(d).count() * 10) / 10;
  };
  std::vector<log::Field> fields{
      {"principal", c.principal}, {"tool", c.tool}, {"outcome", c.outcome}};
  if (c.run) fields.push_back({"duration_ms", ms(*c.run)});
  if (c.wait) fields.push_back({"queue_ms", ms(*c.wait)});
  if (!c.capsule.empty()) fields.push_back({"capsule", c.capsule});
  if (!c.session.empty()) fields.push_back({"session", c.session});
  log::write(log::Level::info, "call ended", fields);
}

std::string McpServer::log_principal(const Session& s) {
  if (!s.owner.empty()) return s.owner;
  if (!s.http) return "stdio";
  if (s.id.starts_with("oneshot-")) return "anonymous";
  return "session:" + sha256_hex(s.id).substr(0, 12);
}

McpServer::~McpServer() {
  std::vector<std::shared_ptr<Session>> all{stdio_session_};
  {
    std::lock_guard lk(mu_);
    for (auto& [id, s] : sessions_) all.push_back(s);
  }
  for (auto& s : all) s->close();
  stopping_ = true;
  runs_.reset();  // waits for running jobs, which finish quickly once cancelled
  aux_.reset();
}

std::shared_ptr<const policy::Config> McpServer::config() {
  std::lock_guard lk(mu_);
  return config_;
}

void McpServer::set_config(policy::Config config) {
  auto next = std::make_shared<const policy::Config>(std::move(config));
  std::lock_guard lk(mu_);
  config_ = std::move(next);
}

void McpServer::notify_tools_changed() {
  std::vector<std::shared_ptr<Session>> all{stdio_session_};
  {
    std::lock_guard lk(mu_);
    for (auto& [id, s] : sessions_) all.push_back(s);
  }
  const json msg = notification("notifications/tools/list_changed");
  for (auto& s : all) s->notify(msg);
  // Subscriptions of the stateless era: every notification names its subscription.
  std::lock_guard lk(listeners_mu_);
  std::erase_if(listeners_, [&](const Listener& l) {
    return !l.send(notification("notifications/tools/list_changed",
                                json{{"_meta", {{protocol::kMetaSubscriptionId, l.id}}}}));
  });
}

void McpServer::log_event(const std::string& level, const std::string& logger, const json& data) {
  // Every dependency set a call prepared comes through here (RunBackend's event sink).
  if (logger == "dependencies" && data.is_object()) {
    const std::string kind = data.value("kind", std::string());
    if (kind == "npm" || kind == "pip") {
      metrics_.add("onemcp_dependency_builds_total",
                   {kind, data.contains("error") ? "error" : "ok"});
    }
  }
  if (log_level_of(level) < 0) return;
  std::vector<std::shared_ptr<Session>> all{stdio_session_};
  {
    std::lock_guard lk(mu_);
    for (auto& [id, s] : sessions_) all.push_back(s);
  }
  const json msg = notification("notifications/message",
                                json{{"level", level}, {"logger", logger}, {"data", data}});
  for (auto& s : all)
    if (s->wants_log(level)) s->notify(msg);
}

bool McpServer::submit_aux(std::function<void()> job) { return aux_->submit(std::move(job)); }

void McpServer::call_started() {
  std::lock_guard lk(mu_);
  ++in_flight_;
}

void McpServer::call_ended() {
  std::lock_guard lk(mu_);
  if (--in_flight_ == 0) idle_cv_.notify_all();
}

void McpServer::begin_shutdown() { draining_ = true; }

bool McpServer::wait_calls(std::chrono::milliseconds timeout) {
  std::unique_lock lk(mu_);
  return idle_cv_.wait_for(lk, timeout, [&] { return in_flight_ == 0; });
}

void McpServer::abort_calls() {
  draining_ = true;
  aborting_ = true;
  runs_->drop_queued();  // answered by their drop callbacks
  cancel_all();
}

void McpServer::close_streams() {
  std::vector<std::shared_ptr<EventStream>> streams;
  {
    std::lock_guard lk(mu_);
    for (auto& [id, s] : sessions_) {
      std::lock_guard slk(s->mu);
      if (s->stream) streams.push_back(std::move(s->stream));
    }
  }
  for (auto& s : streams) s->close();
  // Subscriptions end with their completion result, as the spec asks of a server that ends one.
  std::vector<Listener> listeners;
  {
    std::lock_guard lk(listeners_mu_);
    listeners.swap(listeners_);
  }
  for (auto& l : listeners) l.end();
}

void McpServer::cancel_all() {
  stopping_ = true;  // upstream calls of /mcps-rpc stop too
  std::vector<std::shared_ptr<Session>> all{stdio_session_};
  {
    std::lock_guard lk(mu_);
    for (auto& [id, s] : sessions_) all.push_back(s);
  }
  for (auto& s : all) {
    std::lock_guard lk(s->mu);
    for (auto& [k, t] : s->running) t->cancel();
  }
}

size_t McpServer::session_count() {
  std::lock_guard lk(mu_);
  return sessions_.size();
}

json McpServer::initialize_result(const std::string& protocol) const {
  json caps{{"tools", {{"listChanged", true}}},
            {"resources", json::object()},
            {"logging", json::object()}};
  if (opts_.extension) {
    caps["prompts"] = json::object();
    caps["completions"] = json::object();
    caps["resources"]["subscribe"] = true;
  }
  return json{{"protocolVersion", protocol},
              {"capabilities", std::move(caps)},
              {"serverInfo", server_info()},
              {"instructions",
               "Use run_js to execute JavaScript/TypeScript and run_py to execute Python in an "
               "isolated sandbox with enforced time, memory and output limits."}};
}

std::shared_ptr<McpServer::Session> McpServer::new_session(const std::string& protocol,
                                                           const std::string& owner) {
  auto s = std::make_shared<Session>();
  s->id = opts_.replica.empty() ? random_session_id() : opts_.replica + "." + random_session_id();
  s->owner = owner;
  s->principal = owner.empty() ? "session:" + s->id : owner;
  s->protocol = protocol;
  s->last_used = opts_.now();
  std::shared_ptr<Session> evicted;
  {
    std::lock_guard lk(mu_);
    if (sessions_.size() >= opts_.max_sessions) {
      // The least recently used session that is idle: no call in flight, no open GET stream.
      auto lru = sessions_.end();
      std::chrono::steady_clock::time_point lru_used;
      for (auto it = sessions_.begin(); it != sessions_.end(); ++it) {
        std::lock_guard slk(it->second->mu);
        const Session& c = *it->second;
        if (!c.running.empty() || (c.stream && !c.stream->closed())) continue;
        if (lru == sessions_.end() || c.last_used < lru_used) {
          lru = it;
          lru_used = c.last_used;
        }
      }
      if (lru == sessions_.end()) return nullptr;
      evicted = lru->second;
      sessions_.erase(lru);
    }
    sessions_[s->id] = s;
  }
  if (evicted) {
    log::debug("session cap reached: evicted the least recently used idle session");
    evicted->close();
  }
  return s;
}

std::shared_ptr<McpServer::Session> McpServer::oneshot_session(const std::string& owner) {
  auto s = std::make_shared<Session>();
  s->id = "oneshot-" + random_session_id();
  s->owner = owner;
  // Unauthenticated one-shot calls share one client's share of the run slots: each would
  // otherwise count as a client of its own.
  s->principal = owner.empty() ? "oneshot" : owner;
  s->protocol = kLatestProtocol;
  s->initialized = true;
  s->last_used = opts_.now();
  return s;
}

std::shared_ptr<McpServer::Session> McpServer::find_session(const std::string& id,
                                                            const std::string& principal) {
  std::lock_guard lk(mu_);
  auto it = sessions_.find(id);
  // Another principal's session is not found: a session id is no credential.
  if (it == sessions_.end() || it->second->owner != principal) return nullptr;
  std::lock_guard slk(it->second->mu);
  it->second->last_used = opts_.now();
  return it->second;
}

void McpServer::sweep_sessions() {
  auto now = opts_.now();
  std::vector<std::shared_ptr<Session>> expired;
  {
    std::lock_guard lk(mu_);
    if (now - last_sweep_ < std::chrono::seconds(1)) return;
    last_sweep_ = now;
    auto ttl = std::chrono::milliseconds(config_->session_ttl_ms);
    for (auto it = sessions_.begin(); it != sessions_.end();) {
      std::unique_lock slk(it->second->mu);
      // A client listening on its GET stream is using the session.
      if (it->second->stream && !it->second->stream->closed()) it->second->last_used = now;
      bool idle = it->second->running.empty() && now - it->second->last_used > ttl;
      slk.unlock();
      if (idle) {
        expired.push_back(it->second);
        it = sessions_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& s : expired) s->close();
}

void McpServer::handle(HttpRequest req, Respond respond) {
  try {
    route(req, respond);
  } catch (const std::exception& e) {
    // A bug of ours, never the client's input: answer, log, keep serving.
    log::error(std::string("internal error handling ") + req.method + " " + req.target + ": " + e.what());
    if (respond) respond(json_response(500, rpc_error(nullptr, kInternalError, "Internal error")));
  }
}

void McpServer::route(HttpRequest& req, Respond& respond) {
  std::string path = req.target.substr(0, req.target.find('?'));
  const bool upstream_api = path == "/mcps" || path == "/mcps-rpc" || path.starts_with("/mcps/");
  const bool types_api = path == "/types" || path.starts_with("/types/");
  const bool capsule_api = path.starts_with("/capsules/");
  if (path != "/health") {
    // An exact allow-list (server/host_check.h): a page rebound to 127.0.0.1 still sends its own
    // name as Host, and browsers send Origin with every cross-origin request.
    std::string host = header(req, "host");
    if (!hosts_.host_allowed(host)) {
      return respond(json_response(
          403, rpc_error(nullptr, kInvalidRequest,
                         "Forbidden: host " + host +
                             " is not allowed (list it in server.allowedHosts to accept it)")));
    }
    std::string origin = header(req, "origin");
    if (!origin.empty() && !hosts_.origin_allowed(origin)) {
      return respond(json_response(
          403, rpc_error(nullptr, kInvalidRequest,
                         "Forbidden: origin " + origin +
                             " is not allowed (list it in server.allowedOrigins to accept it)")));
    }
  }
  // Then who is asking (sets req.principal); a page rebound from elsewhere never gets this far.
  if (opts_.auth && !opts_.auth->admit(req, respond)) return;
  if (upstream_api) return handle_upstream_api(req, path, respond);
  if (types_api) return respond(types_response(req.method, path));
  if (path == "/mcp") {
    sweep_sessions();
    if (req.method == "POST") return handle_mcp_post(req, respond);
    if (req.method == "DELETE") return handle_mcp_delete(req, respond);
    if (req.method == "GET") return handle_mcp_get(req, respond);
    HttpResponse r = json_response(405, rpc_error(nullptr, kInvalidRequest, "Method not allowed"));
    r.headers.push_back({"Allow", "GET, POST, DELETE"});
    return respond(std::move(r));
  }
  if (path == "/workspace/list" || path == "/workspace/read") {
    return handle_workspace(req, path, respond);
  }
  if (req.method != "GET" && req.method != "HEAD") {
    return respond(json_response(405, json{{"error", "method not allowed"}}));
  }
  if (path == "/health") {
    return respond(json_response(200, json{{"status", "ok"}, {"version", opts_.version}}));
  }
  if (path == "/metrics") {
    return respond(HttpResponse{200,
                                {{"Content-Type", "text/plain; version=0.0.4; charset=utf-8"},
                                 {"Cache-Control", "no-store"}},
                                metrics_.render()});
  }
  if (capsule_api) return handle_capsule(path, respond);
  if (path == "/runs") return handle_recent_runs(req, respond);
  if (path == "/policy") {
    // What runs get before a call tightens it (the web page shows it before running).
    return respond(json_response(200, json{{"policy", policy::to_json(config()->policy)}}));
  }
  if (const UiAsset* asset = opts_.ui ? ui_asset(path) : nullptr) {
    // Revalidated on every load (no-cache): an unchanged file is a 304 by its ETag.
    HttpResponse r{200,
                   {{"Content-Type", std::string(asset->content_type)},
                    {"Content-Security-Policy", std::string(kUiContentSecurityPolicy)},
                    {"X-Content-Type-Options", "nosniff"},
                    {"Referrer-Policy", "no-referrer"},
                    {"Cache-Control", "no-cache"},
                    {"ETag", asset->etag}},
                   std::string(asset->body)};
    if (header(req, "if-none-match") == asset->etag) {
      r.status = 304;
      r.body.clear();
    }
    return respond(std::move(r));
  }
  if (path == "/") {
    return respond(json_response(200, json{{"name", opts_.name},
                                           {"version", opts_.version},
                                           {"status", "ok"},
                                           {"mcp", "/mcp"},
                                           {"protocolVersion", kLatestProtocol},
                                           {"tools", {"run_js", "run_py"}},
                                           {"types", "/types/index.d.ts"},
                                           {"sessions", session_count()}}));
  }
  respond(json_response(404, json{{"error", "not found"}, {"path", path}}));
}

std::shared_ptr<McpServer::Session> McpServer::request_session(const HttpRequest& req,
                                                               const json& id, Respond& respond) {
  std::string sid = header(req, "mcp-session-id");
  if (sid.empty()) {
    respond(json_response(
        400, rpc_error(id, kInvalidRequest, "Bad Request: Mcp-Session-Id header is required")));
    return nullptr;
  }
  auto session = find_session(sid, req.principal);
  if (!session) {
    respond(json_response(404, rpc_error(id, kSessionNotFound, "Session not found")));
    return nullptr;
  }
  std::string pv = header(req, "mcp-protocol-version");
  if (!pv.empty() && !is_supported_protocol(pv)) {
    respond(json_response(400, rpc_error(id, kInvalidRequest,
                                         "Bad Request: unsupported MCP-Protocol-Version " + pv)));
    return nullptr;
  }
  // Absent: a client of a version before the header existed (2025-03-26 and older). An older
  // version than negotiated is accepted (the spec only says a client SHOULD repeat the
  // negotiated one, and the official conformance suite sends 2025-03-26 in a 2025-11-25
  // session); a newer one would claim what the session never negotiated. Dates order as text.
  std::string negotiated;
  {
    std::lock_guard lk(session->mu);
    negotiated = session->protocol;
  }
  if (!pv.empty() && pv > negotiated) {
    respond(json_response(400, rpc_error(id, kInvalidRequest,
                                         "Bad Request: MCP-Protocol-Version " + pv +
                                             " is newer than the version this session negotiated (" +
                                             negotiated + ")")));
    return nullptr;
  }
  return session;
}

// The session's standalone SSE stream: notifications that belong to no request.
void McpServer::handle_mcp_get(HttpRequest& req, Respond& respond) {
  if (!accepts_sse(req) || !req.start_stream) {
    HttpResponse r = json_response(
        405, rpc_error(nullptr, kInvalidRequest,
                       req.start_stream ? "Method not allowed: GET opens an SSE stream; the client "
                                          "must accept text/event-stream"
                                        : "Method not allowed: no SSE stream on GET here"));
    r.headers.push_back({"Allow", "POST, DELETE"});
    return respond(std::move(r));
  }
  auto session = request_session(req, nullptr, respond);
  if (!session) return;
  std::optional<HttpResponse> refused;
  {
    std::lock_guard lk(session->mu);
    if (session->closed) {
      refused = json_response(404, rpc_error(nullptr, kSessionNotFound, "Session not found"));
    } else if (session->stream && !session->stream->closed()) {
      refused =
          json_response(409, rpc_error(nullptr, kInvalidRequest,
                                       "Conflict: this session already has an SSE stream open"));
    } else {
      session->stream = req.start_stream(sse_head());
      // A client resuming the stream gets what was sent after the last event it saw (as far as
      // the last kReplayEvents go back). Not an id of this stream's: nothing is replayed.
      const std::string last = header(req, "last-event-id");
      uint64_t seen = 0;
      auto [end, ec] = std::from_chars(last.data(), last.data() + last.size(), seen);
      if (!last.empty() && ec == std::errc() && end == last.data() + last.size() &&
          seen <= session->last_event_id) {
        for (const auto& [id, event] : session->replay)
          if (id > seen) session->stream->send(event);
      }
    }
  }
  if (refused) respond(std::move(*refused));
}

void McpServer::handle_upstream_api(HttpRequest& req, const std::string& path, Respond& respond) {
  if (!opts_.upstreams) {
    return respond(json_response(404, json{{"error", "no upstream MCP servers are configured"}}));
  }
  if (path != "/mcps-rpc") {
    if (req.method != "GET" && req.method != "HEAD") {
      return respond(json_response(405, json{{"error", "method not allowed"}}));
    }
    return respond(opts_.upstreams->get(path));
  }
  if (req.method != "POST") return respond(json_response(405, json{{"error", "method not allowed"}}));
  std::string ctype = header(req, "content-type");
  std::transform(ctype.begin(), ctype.end(), ctype.begin(), ::tolower);
  if (ctype.find("application/json") == std::string::npos) {
    return respond(json_response(415, json{{"error", "Content-Type must be application/json"}}));
  }
  if (draining_) return respond(json_response(503, json{{"error", "the server is shutting down"}}));
  // The upstream call blocks: it waits on an auxiliary thread, never on the transport's nor in a
  // run slot. It gets the time a run gets.
  auto job = [this, body = std::move(req.body), respond, cfg = config()] {
    HttpResponse r;
    try {
      const std::chrono::milliseconds timeout(cfg->policy.limits.timeout_ms);
      r = opts_.upstreams->rpc(body, cfg->policy, &stopping_, timeout);
      if (aborting_) r = json_response(503, json{{"error", "the server is shutting down"}});
    } catch (const std::exception& e) {
      log::error(std::string("mcps-rpc failed: ") + e.what());
      r = json_response(500, json{{"error", "internal error"}});
    }
    respond(std::move(r));
    call_ended();
  };
  call_started();
  if (!submit_aux(std::move(job))) {
    call_ended();
    HttpResponse r = json_response(
        429, json{{"error", "server busy: too many upstream calls in flight; retry later"}});
    r.headers.push_back({"Retry-After", std::to_string(kRetryAfterSeconds)});
    respond(std::move(r));
  }
}

// GET /capsules/<id>/manifest.json and /capsules/<id>/<layer file>, verified at every read.
void McpServer::handle_capsule(const std::string& path, Respond& respond) {
  if (!opts_.capsules) return respond(json_response(404, json{{"error", "no capsule cache"}}));
  // Verifying reads and hashes every layer (megabytes with dependencies): not on the transport's
  // threads.
  auto job = [this, rest = path.substr(std::string_view("/capsules/").size()), respond] {
    HttpResponse r;
    try {
      capsule::HttpReply reply = capsule::capsule_http_get(*opts_.capsules, rest);
      r = HttpResponse{reply.status,
                       {{"Content-Type", reply.content_type},
                        {"X-Content-Type-Options", "nosniff"},
                        {"Content-Security-Policy", "default-src 'none'; sandbox"}},
                       std::move(reply.body)};
    } catch (const std::exception& e) {
      log::error(std::string("capsule read failed: ") + e.what());
      r = json_response(500, json{{"error", "internal error"}});
    }
    respond(std::move(r));
  };
  if (!submit_aux(std::move(job))) {
    HttpResponse r =
        json_response(429, json{{"error", "server busy: too many reads in flight; retry later"}});
    r.headers.push_back({"Retry-After", std::to_string(kRetryAfterSeconds)});
    respond(std::move(r));
  }
}

void McpServer::handle_recent_runs(const HttpRequest& req, Respond& respond) {
  // Without authentication every HTTP client is the same anonymous one: nothing is kept.
  json body{{"kept", !req.principal.empty()},
            {"runs", req.principal.empty() ? json::array() : recent_runs_.list(req.principal)}};
  HttpResponse r = json_response(200, body);
  r.headers.push_back({"Cache-Control", "no-store"});
  respond(std::move(r));
}

void McpServer::handle_workspace(const HttpRequest& req, const std::string& path,
                                 Respond& respond) {
  // POST with JSON: the handle stays out of URLs, and a cross-site form cannot send it.
  if (req.method != "POST") {
    HttpResponse r = json_response(405, json{{"error", "method not allowed"}});
    r.headers.push_back({"Allow", "POST"});
    return respond(std::move(r));
  }
  std::string ctype = header(req, "content-type");
  std::transform(ctype.begin(), ctype.end(), ctype.begin(), ::tolower);
  if (ctype.find("application/json") == std::string::npos) {
    return respond(json_response(415, json{{"error", "Content-Type must be application/json"}}));
  }
  if (!run_sessions_) {
    return respond(json_response(
        404, json{{"error", "sessions are disabled on this server (config sessions.enabled)"}}));
  }
  json body = json_depth_within(req.body) ? json::parse(req.body, nullptr, false)
                                          : json(json::value_t::discarded);
  const bool read = path == "/workspace/read";
  if (!body.is_object() || !body.contains("session") || !body["session"].is_string() ||
      (read && (!body.contains("path") || !body["path"].is_string()))) {
    return respond(json_response(
        400, json{{"error", read ? "the body must be {\"session\": handle, \"path\": path}"
                                 : "the body must be {\"session\": handle}"}}));
  }
  // Whose handles these are, as for session_create: the principal, else every HTTP client.
  const std::string owner = req.principal.empty() ? "anonymous" : req.principal;
  auto found = run_sessions_->find(body["session"].get<std::string>(), owner);
  if (!found) return respond(json_response(404, json{{"error", found.error().message}}));
  const int root = (*found)->workspace().root();
  if (!read) {
    auto entries = sandbox::list_tree(root, kWorkspaceListMax);
    json files = json::array();
    for (const auto& e : entries) {
      files.push_back(json{{"path", e.path}, {"size", e.size}, {"dir", e.dir}});
    }
    return respond(json_response(200, json{{"files", std::move(files)},
                                           {"truncated", entries.size() >= kWorkspaceListMax}}));
  }
  auto data = sandbox::read_beneath(root, body["path"].get<std::string>(), kWorkspaceReadMax);
  if (!data) {
    const std::string& why = data.error().message;
    int status = why.starts_with("bad path")               ? 400
                 : why.find("larger") != std::string::npos ? 413
                                                           : 404;
    return respond(json_response(status, json{{"error", why}}));
  }
  respond(HttpResponse{200,
                       {{"Content-Type", "application/octet-stream"},
                        {"X-Content-Type-Options", "nosniff"},
                        {"Content-Security-Policy", "default-src 'none'; sandbox"},
                        {"Cache-Control", "no-store"}},
                       std::move(*data)});
}

void McpServer::handle_mcp_delete(HttpRequest& req, Respond& respond) {
  std::string sid = header(req, "mcp-session-id");
  if (sid.empty()) {
    return respond(json_response(
        400, rpc_error(nullptr, kInvalidRequest, "Bad Request: Mcp-Session-Id header is required")));
  }
  std::shared_ptr<Session> s;
  {
    std::lock_guard lk(mu_);
    auto it = sessions_.find(sid);
    if (it != sessions_.end() && it->second->owner == req.principal) {
      s = it->second;
      sessions_.erase(it);
    }
  }
  if (!s) return respond(json_response(404, rpc_error(nullptr, kSessionNotFound, "Session not found")));
  s->close();
  respond(HttpResponse{200, {{"Content-Type", "application/json"}}, "{}"});
}

void McpServer::handle_mcp_post(HttpRequest& req, Respond& respond) {
  std::string ctype = header(req, "content-type");
  std::transform(ctype.begin(), ctype.end(), ctype.begin(), ::tolower);
  if (ctype.find("application/json") == std::string::npos) {
    return respond(json_response(
        415, rpc_error(nullptr, kInvalidRequest, "Unsupported Media Type: Content-Type must be application/json")));
  }
  std::string accept = header(req, "accept");
  if (!accept.empty() && accept.find("application/json") == std::string::npos &&
      accept.find("*/*") == std::string::npos && accept.find("application/*") == std::string::npos) {
    return respond(json_response(
        406, rpc_error(nullptr, kInvalidRequest, "Not Acceptable: client must accept application/json")));
  }
  protocol::Parsed parsed = protocol::parse(req.body);
  if (parsed.batch) {
    if (header(req, "mcp-session-id").empty()) {
      return respond(json_response(
          400, rpc_error(nullptr, kInvalidRequest,
                         "Invalid Request: a batch needs a session (batches exist in protocol "
                         "version 2025-03-26 only, and initialize cannot be batched)")));
    }
    auto session = request_session(req, nullptr, respond);
    if (!session) return;
    return dispatch_batch(session, parsed.items, [respond](std::optional<json> r) {
      // One object, not an array: the batch as a whole was refused.
      if (!r) return respond(HttpResponse{202, {}, ""});
      respond(r->is_array() ? rpc_response(*r) : json_response(400, *r));
    });
  }
  if (auto* refused = std::get_if<protocol::Refusal>(&parsed.items[0])) {
    // Nothing to answer (a malformed notification or response): accepted and dropped.
    if (!refused->answer) return respond(HttpResponse{202, {}, ""});
    // A request whose params are no object is well-formed JSON-RPC, answered as any error.
    const int status = refused->code == kInvalidParams ? 200 : 400;
    return respond(json_response(status, protocol::error(*refused)));
  }
  const Message& msg = std::get<Message>(parsed.items[0]);
  const json& id = msg.id;
  const bool is_request = msg.is_request();
  if (const std::string v = header(req, "mcp-protocol-version");
      protocol::is_modern(msg, v.empty() ? std::nullopt : std::optional<std::string>(v))) {
    return handle_modern_post(req, msg, respond);
  }

  if (is_request && msg.method == "initialize") {
    const json& params = msg.params;
    if (!params.contains("protocolVersion") || !params["protocolVersion"].is_string()) {
      return respond(json_response(
          200, rpc_error(id, kInvalidParams, "Invalid params: protocolVersion (string) is required")));
    }
    std::string asked = params["protocolVersion"];
    std::string protocol = is_supported_protocol(asked) ? asked : kLatestProtocol;
    if (draining_) return respond(rpc_response(shutdown_error(id)));
    auto s = new_session(protocol, req.principal);
    if (!s) {
      return respond(rpc_response(
          busy_error(id, "Server busy: every session has a call in flight; retry later")));
    }
    HttpResponse r = json_response(200, rpc_result(id, initialize_result(protocol)));
    r.headers.push_back({"Mcp-Session-Id", s->id});
    return respond(std::move(r));
  }

  std::shared_ptr<Session> session;
  if (is_request && header(req, "mcp-session-id").empty()) {
    // A request without a session (the original 1mcp's interface: one POSTed tools/call, no
    // initialize) runs in a session of its own that ends with its answer, plain JSON.
    session = oneshot_session(req.principal);
  } else {
    session = request_session(req, id, respond);
    if (!session) return;
  }
  if (!is_request) {
    // Notifications and responses: accepted, nothing to answer.
    dispatch(session, msg, [](std::optional<json>) {});
    return respond(HttpResponse{202, {}, ""});
  }
  // A client that takes SSE gets a stream once there is a notification to send before the reply
  // (progress, when it asked for it); a call refused at once is a plain (429) response.
  const bool may_stream = accepts_sse(req) && req.start_stream;
  auto answer = std::make_shared<PostAnswer>(std::move(respond),
                                             may_stream ? req.start_stream : StartStream());
  dispatch(
      session, msg,
      [answer, id](std::optional<json> r) {
        if (r) return answer->reply(std::move(*r));
        answer->end(rpc_error(id, kInvalidRequest, "Request cancelled"));
      },
      [answer](const json& n) { answer->notify(n); }, req.abandonment);
}

void McpServer::handle_modern_post(HttpRequest& req, const Message& msg, Respond& respond) {
  // A notification (only notifications/cancelled exists, and over HTTP closing the request's
  // stream is the cancellation): accepted, nothing to do. Mcp-Session-Id is ignored throughout.
  if (!msg.is_request()) return respond(HttpResponse{202, {}, ""});
  auto opt = [&](const char* name) {
    auto it = req.headers.find(name);
    return it == req.headers.end() ? std::nullopt : std::optional<std::string>(it->second);
  };
  protocol::ModernHeaders headers{
      opt("mcp-protocol-version"), opt("mcp-method"), opt("mcp-name"), {}};
  constexpr std::string_view kParam = "mcp-param-";
  for (auto it = req.headers.lower_bound(std::string(kParam));
       it != req.headers.end() && it->first.starts_with(kParam); ++it) {
    headers.params[it->first.substr(kParam.size())] = it->second;
  }
  // The arguments the called tool mirrors into headers (its inputSchema's x-mcp-header).
  std::vector<protocol::MirroredParam> mirrored;
  if (msg.method == "tools/call" && msg.params.contains("name")) {
    for (const auto& t : tool_list_now()) {
      if (t["name"] == msg.params["name"]) mirrored = protocol::mirrored_params(t["inputSchema"]);
    }
  }
  if (auto refused = protocol::check_modern(msg, &headers, mirrored)) {
    return respond(json_response(refused->http_status, refused->error));
  }
  if (draining_) return respond(rpc_response(shutdown_error(msg.id)));
  const bool may_stream = accepts_sse(req) && req.start_stream;
  auto session = oneshot_session(req.principal);
  auto answer = std::make_shared<PostAnswer>(std::move(respond),
                                             may_stream ? req.start_stream : StartStream());
  const json id = msg.id;
  Listen listen = [this, answer, start = may_stream ? req.start_stream : StartStream()](
                      const Message& m, const json& honored) {
    if (!start) {
      return answer->reply(rpc_error(m.id, kInvalidParams,
                                     "Invalid params: subscriptions/listen answers with an SSE "
                                     "stream; the client must accept text/event-stream"),
                           400);
    }
    answer->taken();  // the stream below is the answer: nothing else is sent for this POST
    auto stream = start(sse_head());
    stream->send(sse_event(listen_acknowledged(m.id, honored)));
    add_listener(Listener{m.id, [stream](const json& n) { return stream->send(sse_event(n)); },
                          [stream, end = listen_ended(m.id)] {
                            stream->send(sse_event(end));
                            stream->close();
                          }});
  };
  dispatch_modern(
      session, msg,
      [answer, id](std::optional<json> r) {
        if (!r) return answer->end(rpc_error(id, kInvalidRequest, "Request cancelled"));
        const json* e = r->contains("error") ? &(*r)["error"] : nullptr;
        // An unknown (or removed) method is a 404 in this era.
        const bool missing = e && e->value("code", 0) == kMethodNotFound;
        answer->reply(std::move(*r), missing ? 404 : 0);
      },
      [answer](const json& n) { answer->notify(n); }, req.abandonment, listen);
}

json McpServer::server_info() const {
  return json{{"name", opts_.name}, {"title", "1mcp"}, {"version", opts_.version}};
}

json McpServer::modern_meta() const { return json{{protocol::kMetaServerInfo, server_info()}}; }

json McpServer::listen_acknowledged(const json& id, const json& honored) const {
  return notification(
      "notifications/subscriptions/acknowledged",
      json{{"_meta", {{protocol::kMetaSubscriptionId, id}}}, {"notifications", honored}});
}

json McpServer::listen_ended(const json& id) const {
  json end{{"resultType", "complete"}, {"_meta", modern_meta()}};
  end["_meta"][protocol::kMetaSubscriptionId] = id;
  return rpc_result(id, std::move(end));
}

json McpServer::discover_result() const {
  json r = initialize_result(protocol::kModernProtocol);
  // Logging is deprecated in this era (per-request logLevel), and nothing is logged to it.
  r["capabilities"].erase("logging");
  json result{{"supportedVersions", protocol::modern_versions()},
              {"capabilities", r["capabilities"]},
              {"instructions", r["instructions"]}};
  result.update(cache_hints());
  return result;
}

json McpServer::cache_hints() const {
  // Lists may change on a config reload (clients that listen hear of it); with authentication
  // they are only for the principal that asked.
  return json{{"ttlMs", 60000}, {"cacheScope", opts_.auth ? "private" : "public"}};
}

void McpServer::dispatch_modern(const std::shared_ptr<Session>& session, const Message& msg,
                                Reply reply, Notify notify,
                                std::shared_ptr<Abandonment> abandonment, const Listen& listen) {
  const json& id = msg.id;
  const json& params = msg.params;
  // Every result of this era says it is complete, and names the server.
  Reply complete = [reply, meta = modern_meta()](std::optional<json> r) {
    if (r && r->contains("result") && (*r)["result"].is_object()) {
      json& result = (*r)["result"];
      result["resultType"] = "complete";
      for (auto& [k, v] : meta.items()) result["_meta"][k] = v;
    }
    reply(std::move(r));
  };
  // Lists and reads say how long they may be kept, and by whom.
  auto cached_as = [complete](json cache) -> Reply {
    return [complete, cache](std::optional<json> r) {
      if (r && r->contains("result") && (*r)["result"].is_object()) (*r)["result"].update(cache);
      complete(std::move(r));
    };
  };
  Reply cached = cached_as(cache_hints());
  if (msg.method == "server/discover") return complete(rpc_result(id, discover_result()));
  if (msg.method == "tools/list") {
    if (params.contains("cursor") && !params["cursor"].is_string()) {
      return reply(rpc_error(id, kInvalidParams, "Invalid params: cursor must be a string"));
    }
    return cached(rpc_result(id, json{{"tools", tool_list_now()}}));
  }
  if (msg.method == "tools/call") {
    return call_tool(session, id, params, std::move(complete), std::move(notify),
                     std::move(abandonment));
  }
  if (msg.method == "resources/list") return cached(rpc_result(id, resources_result()));
  if (msg.method == "resources/templates/list") {
    return cached(rpc_result(id, resource_templates_result()));
  }
  if (msg.method == "resources/read") {
    // A run's files are for the principal that ran it alone, with or without authentication.
    json cache = cache_hints();
    if (params.contains("uri") && params["uri"].is_string() &&
        params["uri"].get<std::string>().starts_with("onemcp://runs/")) {
      cache["cacheScope"] = "private";
    }
    return read_resource(id, params, session->principal, true, cached_as(std::move(cache)));
  }
  if (msg.method == "subscriptions/listen") {
    const auto filter = params.find("notifications");
    if (filter == params.end() || !filter->is_object()) {
      return reply(
          rpc_error(id, kInvalidParams, "Invalid params: notifications (an object) is required"));
    }
    // Only what this server sends: its tool list changes (on a config reload).
    json honored = json::object();
    if (filter->value("toolsListChanged", false) == true) honored["toolsListChanged"] = true;
    return listen(msg, honored);
  }
  if (msg.method == "prompts/list") {
    if (auto r = extension_request(msg, true)) return cached(std::move(*r));
  } else if (auto r = extension_request(msg, true)) {
    return complete(std::move(*r));
  }
  // initialize, ping, logging/setLevel, resources/subscribe ... are gone in this era.
  reply(rpc_error(id, kMethodNotFound, "Method not found: " + msg.method));
}

json McpServer::resources_result() const {
  json list = json::array();
  for (auto name : policy::schema_file_names()) {
    const bool ts = name.ends_with(".d.ts");
    list.push_back(
        {{"uri", "onemcp://types/" + std::string(name)},
         {"name", std::string(name)},
         {"description", ts ? "TypeScript declarations of 1mcp's config, tool inputs and results"
                            : "JSON Schema " + std::string(name) + " of 1mcp"},
         {"mimeType", ts ? "application/typescript" : "application/schema+json"}});
  }
  if (opts_.upstreams) {
    list.push_back({{"uri", "onemcp://mcps/types.d.ts"},
                    {"name", "mcps/types.d.ts"},
                    {"description",
                     "TypeScript declarations of the upstream MCP tools that runs "
                     "may call (mcp.<server>.<tool>), under the server's policy"},
                    {"mimeType", "application/typescript"}});
  }
  if (opts_.extension)
    for (auto& r : opts_.extension->resources()) list.push_back(r);
  return json{{"resources", std::move(list)}};
}

json McpServer::resource_templates_result() const {
  json list = json::array();
  list.push_back({{"uriTemplate", "onemcp://runs/{run}/out/{+path}"},
                  {"name", "run output file"},
                  {"description",
                   "A file a recent run left in /out (its URI is in the run's result: a "
                   "resource_link, and structuredContent.files[].uri), readable by the client "
                   "that made the call"}});
  if (opts_.capsules) {
    list.push_back({{"uriTemplate", "onemcp://capsules/{id}/manifest.json"},
                    {"name", "capsule manifest"},
                    {"description",
                     "The signed manifest of the capsule a run executed (its id is "
                     "structuredContent.capsule of the run's result), verified"},
                    {"mimeType", "application/json"}});
    list.push_back({{"uriTemplate", "onemcp://capsules/{id}/{file}"},
                    {"name", "capsule layer"},
                    {"description",
                     "A layer of a capsule, named as in its manifest (code.js, "
                     "code.py, deps.js, ...), verified"}});
  }
  if (opts_.extension)
    for (auto& t : opts_.extension->resource_templates()) list.push_back(t);
  return json{{"resourceTemplates", std::move(list)}};
}

void McpServer::read_resource(const json& id, const json& params, const std::string& principal,
                              bool modern, Reply reply) {
  const auto uri_it = params.find("uri");
  if (uri_it == params.end() || !uri_it->is_string()) {
    return reply(rpc_error(id, kInvalidParams, "Invalid params: uri (string) is required"));
  }
  const std::string uri = *uri_it;
  auto not_found = [id, uri, modern] {
    return protocol::error(id, modern ? kInvalidParams : protocol::kResourceNotFound,
                           "Resource not found", json{{"uri", uri}});
  };
  auto text = [&](std::string body, const char* type) {
    return rpc_result(
        id, json{{"contents",
                  json::array({{{"uri", uri}, {"mimeType", type}, {"text", std::move(body)}}})}});
  };
  if (opts_.extension && !uri.starts_with("onemcp://")) {
    if (auto r = opts_.extension->read(uri)) return reply(rpc_result(id, std::move(*r)));
    return reply(not_found());
  }
  constexpr std::string_view kTypes = "onemcp://types/", kCapsules = "onemcp://capsules/";
  if (uri.starts_with(kTypes)) {
    const std::string name = uri.substr(kTypes.size());
    auto body = policy::schema_text(name);  // exact names only
    if (!body) return reply(not_found());
    return reply(text(std::string(*body), name.ends_with(".d.ts") ? "application/typescript"
                                                                  : "application/schema+json"));
  }
  if (uri == "onemcp://mcps/types.d.ts" && opts_.upstreams) {
    return reply(text(typescript_declarations(opts_.upstreams->allowed(config()->policy)),
                      "application/typescript"));
  }
  if (auto name = parse_run_file_uri(uri)) {
    // Another principal's run, a forgotten one and a missing file answer alike.
    auto f = run_files_.find(principal, name->run_id, name->path);
    if (!f) return reply(not_found());
    json content{{"uri", uri}, {"mimeType", media_type(f->path, f->data)}};
    if (is_text(f->data)) {
      content["text"] = f->data;
    } else {
      content["blob"] = base64_encode(f->data);
    }
    return reply(rpc_result(id, json{{"contents", json::array({std::move(content)})}}));
  }
  if (!uri.starts_with(kCapsules) || !opts_.capsules) return reply(not_found());
  // Verifying reads and hashes every layer: on the auxiliary threads, as GET /capsules/ does.
  auto job = [this, id, uri, reply, not_found, rest = uri.substr(kCapsules.size())] {
    capsule::HttpReply r;
    try {
      r = capsule::capsule_http_get(*opts_.capsules, rest);
    } catch (const std::exception& e) {
      log::error(std::string("capsule read failed: ") + e.what());
      r.status = 500;
    }
    if (r.status == 400 || r.status == 404) return reply(not_found());
    if (r.status != 200) {
      return reply(
          rpc_error(id, kInternalError, "the capsule failed verification or could not be read"));
    }
    json content{{"uri", uri}, {"mimeType", r.content_type}};
    if (r.content_type.starts_with("application/octet-stream")) {
      content["blob"] = base64_encode(r.body);
    } else {
      content["text"] = std::move(r.body);
    }
    reply(rpc_result(id, json{{"contents", json::array({std::move(content)})}}));
  };
  if (!submit_aux(job)) reply(busy_error(id, "Server busy: too many reads in flight; retry later"));
}

json McpServer::tool_list_now() {
  json tools = opts_.tools(config()->policy);
  if (opts_.upstreams) {
    tools.push_back(search_tool_entry());
    for (auto& t : opts_.upstreams->gateway_list(config()->policy)) tools.push_back(std::move(t));
  }
  if (run_sessions_)
    for (auto& t : session_tool_list(run_sessions_->config())) tools.push_back(std::move(t));
  if (opts_.extension)
    for (auto& t : opts_.extension->tools()) tools.push_back(t);
  return tools;
}

std::optional<json> McpServer::extension_request(const Message& msg, bool modern) {
  if (!opts_.extension) return std::nullopt;
  const json& p = msg.params;
  if (msg.method == "prompts/list")
    return rpc_result(msg.id, json{{"prompts", opts_.extension->prompts()}});
  if (msg.method == "prompts/get") {
    if (!p.contains("name") || !p["name"].is_string()) {
      return rpc_error(msg.id, kInvalidParams, "Invalid params: name (string) is required");
    }
    auto r = opts_.extension->get_prompt(p["name"], p.value("arguments", json::object()));
    if (!r)
      return rpc_error(msg.id, kInvalidParams, "Unknown prompt: " + p["name"].get<std::string>());
    return rpc_result(msg.id, std::move(*r));
  }
  if (msg.method == "completion/complete") return rpc_result(msg.id, opts_.extension->complete(p));
  if (!modern && (msg.method == "resources/subscribe" || msg.method == "resources/unsubscribe")) {
    if (!p.contains("uri") || !p["uri"].is_string()) {
      return rpc_error(msg.id, kInvalidParams, "Invalid params: uri (string) is required");
    }
    return rpc_result(msg.id, json::object());
  }
  return std::nullopt;
}

void McpServer::call_extension(const std::shared_ptr<Session>& session, const json& id,
                               const std::string& name, const json& params, Reply reply,
                               Notify notify) {
  const json token = progress_token(params);
  const json args = params.contains("arguments") && params["arguments"].is_object()
                        ? params["arguments"]
                        : json::object();
  auto job = [this, session, id, name, args, token, reply, notify] {
    McpExtension::CallContext ctx;
    ctx.progress = [&](double progress, double total, const std::string& message) {
      if (token.is_null() || !notify) return;
      json p{{"progressToken", token}, {"progress", progress}, {"total", total}};
      if (!message.empty()) p["message"] = message;
      notify(notification("notifications/progress", std::move(p)));
    };
    ctx.log = [&](const std::string& level, const json& data) {
      if (!notify || !session->wants_log(level)) return;
      notify(notification("notifications/message", json{{"level", level}, {"data", data}}));
    };
    auto r = opts_.extension->call(name, args, ctx);
    if (!r) return reply(rpc_error(id, kInvalidParams, "Unknown tool: " + name));
    reply(rpc_result(id, std::move(*r)));
  };
  if (!submit_aux(job)) reply(busy_error(id, "Server busy: too many calls in flight; retry later"));
}

void McpServer::call_gateway(const std::shared_ptr<Session>& session, const json& id,
                             const std::string& name, const json& params, Reply reply,
                             Notify notify, std::shared_ptr<Abandonment> abandonment) {
  const auto cfg = config();
  // A tool the policy hides is unknown, as it is absent from tools/list.
  auto target = opts_.upstreams->gateway_target(name, cfg->policy);
  if (!target) return reply(rpc_error(id, kInvalidParams, "Unknown tool: " + name));
  json args = params.contains("arguments") ? params["arguments"] : json::object();
  if (!args.is_object()) {
    return reply(rpc_error(id, kInvalidParams, "Invalid params: arguments must be an object"));
  }
  if (draining_) return reply(shutdown_error(id));
  auto token = std::make_shared<sandbox::CancelToken>();
  const std::string key = dump(id);
  {
    std::lock_guard lk(session->mu);
    if (session->closed) return reply(rpc_error(id, kSessionNotFound, "Session not found"));
    if (session->running.count(key)) {
      return reply(rpc_error(id, kInvalidRequest,
                             "Invalid Request: request id " + key + " is already in use"));
    }
    session->running[key] = token;
  }
  if (abandonment) abandonment->on_abandon([token] { token->cancel(); });
  // Takes the call off the session's list; whether the client withdrew it (then no answer).
  auto finish = [session, key] {
    std::lock_guard lk(session->mu);
    session->running.erase(key);
    return session->withdrawn.erase(key) > 0;
  };
  auto job = [this, id, name, target = *target, args, token, reply, notify, finish,
              progress = progress_token(params), timeout = cfg->policy.limits.timeout_ms] {
    upstream::CallOptions o;
    o.timeout = std::chrono::milliseconds(timeout);
    o.cancel = &token->flag();
    if (!progress.is_null() && notify) {
      o.on_progress = [notify, progress](const json& p) {
        json forwarded = p.is_object() ? p : json::object();
        forwarded["progressToken"] = progress;  // the client's, not the one sent upstream
        notify(notification("notifications/progress", std::move(forwarded)));
      };
    }
    auto r = opts_.upstreams->manager().call_tool(target.first, target.second, args, o);
    std::optional<json> answer =
        rpc_result(id, r ? std::move(*r) : tool_error(name + ": " + r.error().message));
    if (finish()) answer.reset();
    if (aborting_ && token->cancelled()) answer = shutdown_error(id);
    reply(std::move(answer));
    call_ended();
  };
  call_started();
  if (!submit_aux(job)) {
    finish();
    reply(busy_error(id, "Server busy: too many calls in flight; retry later"));
    call_ended();
  }
}

void McpServer::add_listener(Listener l) {
  std::lock_guard lk(listeners_mu_);
  listeners_.push_back(std::move(l));
}

bool McpServer::remove_listener(const json& id) {
  std::lock_guard lk(listeners_mu_);
  return std::erase_if(listeners_, [&](const Listener& l) { return l.id == id; }) > 0;
}

void McpServer::handle_line(std::string line, WriteLine write, std::function<void()> done) {
  try {
    route_line(line, write, done);
  } catch (const std::exception& e) {
    log::error(std::string("internal error handling a stdio message: ") + e.what());
    write(dump(rpc_error(nullptr, kInternalError, "Internal error")));
    done();
  }
}

void McpServer::route_line(const std::string& line, WriteLine& write, std::function<void()>& done) {
  protocol::Parsed parsed = protocol::parse(line);
  {
    std::lock_guard lk(stdio_session_->mu);
    if (!stdio_session_->write) stdio_session_->write = write;
  }
  if (parsed.batch) {
    return dispatch_batch(stdio_session_, parsed.items, [write, done](std::optional<json> r) {
      if (r) write(dump(*r));
      done();
    });
  }
  if (auto* refused = std::get_if<protocol::Refusal>(&parsed.items[0])) {
    if (refused->answer) write(dump(protocol::error(*refused)));
    return done();
  }
  const Message& msg = std::get<Message>(parsed.items[0]);
  if (protocol::is_modern(msg, std::nullopt)) {
    if (msg.is_notification()) {
      // notifications/cancelled: of a run, or of a subscriptions/listen (no more lines for it).
      if (msg.method == "notifications/cancelled" && msg.params.contains("requestId")) {
        remove_listener(msg.params["requestId"]);
      }
    } else if (auto refused = protocol::check_modern(msg, nullptr)) {
      write(dump(refused->error));
      return done();
    } else {
      Listen listen = [this, write, done](const Message& m, const json& honored) {
        write(dump(listen_acknowledged(m.id, honored)));
        add_listener(Listener{m.id,
                              [write](const json& n) {
                                write(dump(n));
                                return true;
                              },
                              [write, end = listen_ended(m.id)] { write(dump(end)); }});
        done();  // the line is handled; the subscription lives on
      };
      return dispatch_modern(
          stdio_session_, msg,
          [write, done](std::optional<json> r) {
            if (r) write(dump(*r));
            done();
          },
          [write](const json& n) { write(dump(n)); }, nullptr, listen);
    }
  }
  dispatch(
      stdio_session_, msg,
      [write, done](std::optional<json> r) {
        if (r) write(dump(*r));
        done();
      },
      [write](const json& n) { write(dump(n)); });
}

void McpServer::line_too_long(WriteLine write) {
  write(dump(rpc_error(nullptr, kInvalidRequest,
                       "Invalid Request: message larger than " +
                           std::to_string(opts_.max_body_bytes) + " bytes")));
}

void McpServer::dispatch(const std::shared_ptr<Session>& session, const Message& msg, Reply reply,
                         Notify notify, std::shared_ptr<Abandonment> abandonment) {
  // A response or error to a request we never send: nothing to answer.
  if (!msg.is_request() && !msg.is_notification()) return reply(std::nullopt);
  const json& id = msg.id;
  const std::string& method = msg.method;
  const json& params = msg.params;

  if (msg.is_notification()) {
    const Method m = protocol::method_of(method);
    if (m == Method::initialized) {
      std::lock_guard lk(session->mu);
      session->initialized = true;
    } else if (m == Method::cancelled && params.contains("requestId")) {
      std::lock_guard lk(session->mu);
      auto it = session->running.find(dump(params["requestId"]));
      if (it != session->running.end()) {
        session->withdrawn.insert(it->first);
        it->second->cancel();
      }
    }
    return reply(std::nullopt);
  }

  switch (protocol::method_of(method)) {
    case Method::initialize: {
      if (!params.contains("protocolVersion") || !params["protocolVersion"].is_string()) {
        return reply(
            rpc_error(id, kInvalidParams, "Invalid params: protocolVersion (string) is required"));
      }
      std::string asked = params["protocolVersion"];
      std::string protocol = is_supported_protocol(asked) ? asked : kLatestProtocol;
      {
        std::lock_guard lk(session->mu);
        session->protocol = protocol;
      }
      return reply(rpc_result(id, initialize_result(protocol)));
    }
    case Method::ping:
      return reply(rpc_result(id, json::object()));
    case Method::tools_list:
      if (params.contains("cursor") && !params["cursor"].is_string()) {
        return reply(rpc_error(id, kInvalidParams, "Invalid params: cursor must be a string"));
      }
      return reply(rpc_result(id, json{{"tools", tool_list_now()}}));
    case Method::tools_call:
      return call_tool(session, id, params, std::move(reply), std::move(notify),
                       std::move(abandonment));
    case Method::logging_set_level: {
      const int level = params.contains("level") && params["level"].is_string()
                            ? log_level_of(params["level"].get<std::string>())
                            : -1;
      if (level < 0) {
        return reply(rpc_error(id, kInvalidParams,
                               "Invalid params: level must be one of debug, info, notice, warning, "
                               "error, critical, alert, emergency"));
      }
      {
        std::lock_guard lk(session->mu);
        session->log_level = level;
      }
      return reply(rpc_result(id, json::object()));
    }
    case Method::resources_list:
      return reply(rpc_result(id, resources_result()));
    case Method::resources_templates_list:
      return reply(rpc_result(id, resource_templates_result()));
    case Method::resources_read:
      return read_resource(id, params, session->principal, false, std::move(reply));
    default:
      if (auto r = extension_request(msg, false)) return reply(std::move(*r));
      return reply(rpc_error(id, kMethodNotFound, "Method not found: " + method));
  }
}

void McpServer::dispatch_batch(const std::shared_ptr<Session>& session,
                               const std::vector<protocol::Item>& batch, Reply done) {
  std::string protocol;
  {
    std::lock_guard lk(session->mu);
    protocol = session->protocol;
  }
  if (protocol != "2025-03-26") {
    return done(rpc_error(nullptr, kInvalidRequest,
                          "Invalid Request: batches exist in protocol version 2025-03-26 only; "
                          "this session negotiated " +
                              protocol));
  }
  if (batch.empty())
    return done(rpc_error(nullptr, kInvalidRequest, "Invalid Request: empty batch"));
  struct Collected {
    std::mutex mu;
    size_t left;
    json responses = json::array();
    Reply done;
  };
  auto c = std::make_shared<Collected>();
  c->left = batch.size();
  c->done = std::move(done);
  Reply one = [c](std::optional<json> r) {
    std::unique_lock lk(c->mu);
    if (r) c->responses.push_back(std::move(*r));
    if (--c->left > 0) return;
    json all = std::move(c->responses);
    lk.unlock();
    c->done(all.empty() ? std::nullopt : std::optional<json>(std::move(all)));
  };
  for (const protocol::Item& item : batch) {
    if (auto* refused = std::get_if<protocol::Refusal>(&item)) {
      one(refused->answer ? std::optional<json>(protocol::error(*refused)) : std::nullopt);
      continue;
    }
    const Message& msg = std::get<Message>(item);
    if (msg.method == "initialize") {
      one(rpc_error(msg.id, kInvalidRequest,
                    "Invalid Request: initialize cannot be part of a batch"));
    } else {
      dispatch(session, msg, one);
    }
  }
}

void McpServer::call_session_tool(const std::shared_ptr<Session>& session, const json& id,
                                  const std::string& name, const json& args, Reply reply) {
  if (!args.is_object()) {
    return reply(rpc_error(id, kInvalidParams, "Invalid params: arguments must be an object"));
  }
  const std::string owner = session->handles_owner();
  if (name == kSessionCreate) {
    if (!args.empty()) {
      return reply(rpc_result(id, tool_error("invalid arguments: session_create takes none")));
    }
    auto made = run_sessions_->create(owner);
    if (!made) return reply(rpc_result(id, tool_error(made.error().message)));
    return reply(rpc_result(
        id, session_created(**made, run_sessions_->config(), run_sessions_->expires(**made))));
  }
  auto handle = args.find("session");
  if (handle == args.end() || !handle->is_string() || args.size() != 1) {
    return reply(rpc_result(id, tool_error("invalid arguments: session_close takes `session` "
                                           "(the handle session_create returned), only")));
  }
  auto found = run_sessions_->find(handle->get<std::string>(), owner);
  if (!found) return reply(rpc_result(id, tool_error(found.error().message)));
  auto usage = (*found)->workspace().usage();
  (void)run_sessions_->close(handle->get<std::string>(), owner);
  reply(rpc_result(id, session_closed(usage ? *usage : sandbox::Workspace::Usage{})));
}

void McpServer::call_tool(const std::shared_ptr<Session>& session, const json& id,
                          const json& params, Reply reply, Notify notify,
                          std::shared_ptr<Abandonment> abandonment) {
  if (!params.contains("name") || !params["name"].is_string()) {
    return reply(rpc_error(id, kInvalidParams, "Invalid params: name (string) is required"));
  }
  std::string name = params["name"];
  if (run_sessions_ && (name == kSessionCreate || name == kSessionClose)) {
    json args = params.contains("arguments") ? params["arguments"] : json::object();
    return call_session_tool(session, id, name, args, std::move(reply));
  }
  if (opts_.upstreams && name == kSearchTools) {
    auto a = search_args(params.contains("arguments") ? params["arguments"] : json::object());
    if (!a) return reply(rpc_result(id, tool_error(a.error().message)));
    json found = opts_.upstreams->search(config()->policy, a->query, a->detail, a->limit);
    json text = json::array({{{"type", "text"}, {"text", search_text(found, a->detail)}}});
    return reply(rpc_result(
        id, json{{"content", std::move(text)}, {"structuredContent", std::move(found)}}));
  }
  if (opts_.upstreams && name.find("__") != std::string::npos) {
    return call_gateway(session, id, name, params, std::move(reply), std::move(notify),
                        std::move(abandonment));
  }
  auto lang = tool_language(name);
  if (!lang && opts_.extension) {
    return call_extension(session, id, name, params, std::move(reply), std::move(notify));
  }
  if (!lang) return reply(rpc_error(id, kInvalidParams, "Unknown tool: " + name));
  // From here on `name` is run_js or run_py: a label of bounded cardinality.
  auto refused = [&](const char* outcome) {
    call_finished({name, outcome, {}, {}, log_principal(*session), {}, {}});
  };
  json args = params.contains("arguments") ? params["arguments"] : json::object();
  if (!args.is_object()) {
    refused("invalid");
    return reply(rpc_error(id, kInvalidParams, "Invalid params: arguments must be an object"));
  }
  if (draining_) {
    refused("shutdown");
    return reply(shutdown_error(id));
  }
  auto prepared = prepare_run(*lang, args, config()->policy);
  if (!prepared) {
    refused("invalid");
    return reply(rpc_result(id, tool_error(prepared.error().message)));
  }
  // Python reaches upstream tools through its relay, started only for runs that may use them.
  prepared->mcp = opts_.upstreams && !prepared->policy.mcps.empty();
  if (auto it = args.find("session"); it != args.end()) {
    if (!run_sessions_) {
      refused("invalid");
      return reply(rpc_result(
          id, tool_error("sessions are disabled on this server (config sessions.enabled)")));
    }
    auto found = run_sessions_->find(it->get<std::string>(), session->handles_owner());
    if (!found) {
      refused("invalid");
      return reply(rpc_result(id, tool_error(found.error().message)));
    }
    prepared->session = std::move(*found);
    if (prepared->cwd.empty()) prepared->cwd = ipc::kWorkspaceDir;
  }

  auto token = std::make_shared<sandbox::CancelToken>();
  // Over stdio the response is the end: a client may read a last progress line together with
  // it and handle the response first, which retires the token (the TypeScript SDK does, and
  // reports the progress as an error). An SSE stream delivers its events one by one.
  const bool has_progress = !progress_token(params).is_null() && notify;
  ProgressFn progress =
      progress_reporter(progress_token(params), std::move(notify), token, session->http);
  std::string key = dump(id);
  {
    std::unique_lock lk(session->mu);
    if (session->closed) {
      lk.unlock();
      refused("invalid");
      return reply(rpc_error(id, kSessionNotFound, "Session not found"));
    }
    if (session->running.count(key)) {
      lk.unlock();
      refused("invalid");
      return reply(rpc_error(id, kInvalidRequest, "Invalid Request: request id " + key + " is already in use"));
    }
    session->running[key] = token;
  }
  // Nobody will read the answer (the client left or stopped reading): stop the run.
  if (abandonment) abandonment->on_abandon([token] { token->cancel(); });
  auto finish = [session, key] {
    std::lock_guard lk(session->mu);
    session->running.erase(key);
    session->withdrawn.erase(key);
  };
  auto withdrawn = [session, key] {
    std::lock_guard lk(session->mu);
    return session->withdrawn.count(key) > 0;
  };
  const auto submitted = opts_.now();
  // What the caller's recent runs keep (authenticated callers only): the arguments, copied.
  json kept_args = session->owner.empty() ? json() : std::move(args);
  auto job = [this, session, id, p = std::move(*prepared), token, reply, finish, withdrawn,
              progress, has_progress, name, submitted, args = std::move(kept_args)] {
    CallEnd ended{name,
                  "cancelled",
                  opts_.now() - submitted,
                  {},
                  log_principal(*session),
                  {},
                  p.session ? p.session->log_name() : std::string()};
    std::optional<json> answer;
    // Held until after the reply: a killed run is answered at once, and this slot waits for its
    // processes to be gone only then, so the run keeps its slot until nothing of it is left.
    std::unique_ptr<sandbox::RunTeardown> teardown;
    if (token->cancelled()) {
      // Cancelled while it waited for a slot: it never runs.
      answer = rpc_error(id, kInvalidRequest, "Request cancelled");
    } else {
      std::optional<DeferredStart> deferred_start;
      if (session->http) {
        progress(0, "running");
      } else if (has_progress) {
        deferred_start.emplace(progress);
      }
      try {
        // A session's calls are cancelled when it ends (closed or expired meanwhile).
        struct InSession {
          const RunSpec& p;
          sandbox::CancelToken* token;
          ~InSession() {
            if (p.session) p.session->end_call(token);
          }
        } in_session{p, token.get()};
        if (p.session && !p.session->begin_call(token.get())) token->cancel();
        const auto started = opts_.now();
        auto out = backend_.run(p, token.get(), progress);
        ended.run = opts_.now() - started;
        ended.outcome = out ? sandbox::to_string(out->outcome) : "internal";
        if (out) ended.capsule = out->capsule;
        if (!out) {
          log::error("run failed: " + out.error().message);
          answer = rpc_result(id, tool_error("internal error: the run could not be executed"));
        } else {
          OutFilesView files;
          if (!out->files.empty()) {
            files.run_id = random_hex(16);
            std::lock_guard lk(session->mu);
            files.resource_links = session->protocol >= "2025-06-18";
          }
          json result = tool_result(p, *out, files);
          if (!session->owner.empty()) {
            const auto at = std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::system_clock::now().time_since_epoch());
            recent_runs_.add(session->owner,
                             recent_run_entry(name, args, result["structuredContent"], at.count(),
                                              recent_runs_.limits()));
          }
          answer = rpc_result(id, std::move(result));
          if (!out->files.empty()) {
            run_files_.put(files.run_id, session->principal, std::move(out->files));
          }
          teardown = std::move(out->teardown);
        }
      } catch (const std::exception& e) {
        log::error(std::string("run failed: ") + e.what());
        answer = rpc_result(id, tool_error("internal error: the run could not be executed"));
        ended.outcome = "internal";
      }
      if (deferred_start) deferred_start->finish();
      progress(1, "done");
    }
    // Withdrawn by the client (notifications/cancelled): per the spec no response; over HTTP the
    // POST's answer ends without one.
    if (withdrawn()) answer.reset();
    finish();
    if (aborting_ && token->cancelled()) answer = shutdown_error(id);
    // Counted before the answer leaves, so a client that saw it sees it counted.
    call_finished(ended);
    reply(std::move(answer));
    teardown.reset();
    call_ended();
  };
  auto dropped = [this, id, reply, finish, name, who = log_principal(*session)] {
    finish();
    call_finished({name, "shutdown", {}, {}, who, {}, {}});
    reply(shutdown_error(id));
    call_ended();
  };
  call_started();
  const FairScheduler::Admit admit =
      runs_->submit(session->principal, std::move(job), std::move(dropped));
  if (admit == FairScheduler::Admit::admitted) return;
  finish();
  refused(admit == FairScheduler::Admit::stopped ? "shutdown" : "busy");
  const auto& limits = runs_->limits();
  if (admit == FairScheduler::Admit::client_queue_full) {
    reply(busy_error(id, "Server busy: this client already has " +
                             std::to_string(limits.max_queued_per_client) +
                             " calls waiting for a run slot; retry later"));
  } else if (admit == FairScheduler::Admit::queue_full) {
    reply(busy_error(id, "Server busy: " + std::to_string(limits.max_queued) +
                             " calls are waiting for a run slot; retry later"));
  } else {
    reply(shutdown_error(id));
  }
  call_ended();
}

}  // namespace onemcp::server
