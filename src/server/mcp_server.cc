#include "server/mcp_server.h"

#include <sys/random.h>

#include <algorithm>
#include <map>

#include "base/json_depth.h"
#include "base/log.h"
#include "policy/schemas.h"
#include "capsule/http.h"
#include "server/tools.h"
#include "server/upstreams.h"
#include "server/ui.h"

namespace onemcp::server {

using nlohmann::json;

namespace {

constexpr const char* kProtocols[] = {"2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"};

// JSON-RPC error codes (and the MCP "session not found" convention).
constexpr int kParseError = -32700;
constexpr int kInvalidRequest = -32600;
constexpr int kMethodNotFound = -32601;
constexpr int kInvalidParams = -32602;
constexpr int kInternalError = -32603;
constexpr int kServerBusy = -32000;
constexpr int kSessionNotFound = -32001;

// Never throws: nlohmann can throw even in non-throwing mode (e.g. number out of range).
json parse_json(const std::string& text) {
  if (!json_depth_within(text)) return json(json::value_t::discarded);
  try {
    return json::parse(text, nullptr, false);
  } catch (const std::exception&) {
    return json(json::value_t::discarded);
  }
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

json rpc_error(const json& id, int code, const std::string& message) {
  return json{{"jsonrpc", "2.0"}, {"id", id}, {"error", {{"code", code}, {"message", message}}}};
}

json rpc_result(const json& id, json result) {
  return json{{"jsonrpc", "2.0"}, {"id", id}, {"result", std::move(result)}};
}

bool valid_id(const json& id) {
  return id.is_string() || id.is_number_integer() || id.is_number_unsigned();
}

std::string random_session_id() {
  unsigned char b[16];
  size_t got = 0;
  while (got < sizeof b) {
    ssize_t n = ::getrandom(b + got, sizeof b - got, 0);
    if (n > 0) got += size_t(n);
  }
  static const char* hex = "0123456789abcdef";
  std::string s;
  for (unsigned char c : b) {
    s += hex[c >> 4];
    s += hex[c & 15];
  }
  return s;
}

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

json notification(const char* method, json params = nullptr) {
  json n{{"jsonrpc", "2.0"}, {"method", method}};
  if (!params.is_null()) n["params"] = std::move(params);
  return n;
}

// params._meta.progressToken when it is a string or an integer, else null.
json progress_token(const json& params) {
  if (!params.is_object() || !params.contains("_meta")) return nullptr;
  const json& meta = params["_meta"];
  if (!meta.is_object()) return nullptr;
  if (!meta.contains("progressToken") || !valid_id(meta["progressToken"])) return nullptr;
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

// Host part of an authority ("host:port", "[::1]:80") in lower case, without brackets.
std::string authority_host(std::string a) {
  std::transform(a.begin(), a.end(), a.begin(), ::tolower);
  if (!a.empty() && a[0] == '[') {
    auto end = a.find(']');
    return end == std::string::npos ? a : a.substr(1, end - 1);
  }
  auto colon = a.find(':');
  return colon == std::string::npos ? a : a.substr(0, colon);
}

bool is_loopback_host(const std::string& h) {
  return h == "localhost" || h == "::1" || h.rfind("127.", 0) == 0 || h.ends_with(".localhost");
}

}  // namespace

bool is_supported_protocol(const std::string& v) {
  return std::find(std::begin(kProtocols), std::end(kProtocols), v) != std::end(kProtocols);
}

// Streams and write functions are called without holding `mu`.
struct McpServer::Session {
  std::string id;
  bool http = true;
  std::mutex mu;  // guards everything below
  std::string protocol;
  bool initialized = false;
  bool closed = false;
  std::chrono::steady_clock::time_point last_used;
  std::map<std::string, std::shared_ptr<sandbox::CancelToken>> running;  // key: dumped request id
  std::shared_ptr<EventStream> stream;  // HTTP: the standalone GET stream, if one was opened
  WriteLine write;                      // stdio: where lines go

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

  // A message outside any request, once the client said it is initialized.
  void notify(const json& msg) {
    std::shared_ptr<EventStream> s;
    WriteLine w;
    {
      std::lock_guard lk(mu);
      if (!initialized || closed) return;
      s = stream;
      w = write;
    }
    if (s) {
      s->send(sse_event(msg));
    } else if (w) {
      w(dump(msg));
    }
  }
};

McpServer::McpServer(ServerOptions opts, policy::Config config, RunBackend& backend)
    : opts_(std::move(opts)),
      backend_(backend),
      config_(std::make_shared<const policy::Config>(std::move(config))),
      pool_(std::make_unique<ThreadPool>(opts_.run_threads, opts_.max_queued_runs)) {
  stdio_session_ = std::make_shared<Session>();
  stdio_session_->id = "stdio";
  stdio_session_->http = false;
  stdio_session_->protocol = kLatestProtocol;
}

McpServer::~McpServer() {
  std::vector<std::shared_ptr<Session>> all{stdio_session_};
  {
    std::lock_guard lk(mu_);
    for (auto& [id, s] : sessions_) all.push_back(s);
  }
  for (auto& s : all) s->close();
  pool_.reset();  // waits for running jobs, which finish quickly once cancelled
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
  return json{{"protocolVersion", protocol},
              {"capabilities", {{"tools", {{"listChanged", true}}}}},
              {"serverInfo", {{"name", opts_.name}, {"title", "1mcp"}, {"version", opts_.version}}},
              {"instructions",
               "Use run_js to execute JavaScript/TypeScript and run_py to execute Python in an "
               "isolated sandbox with enforced time, memory and output limits."}};
}

std::shared_ptr<McpServer::Session> McpServer::new_session(const std::string& protocol) {
  auto s = std::make_shared<Session>();
  s->id = random_session_id();
  s->protocol = protocol;
  s->last_used = opts_.now();
  std::lock_guard lk(mu_);
  if (sessions_.size() >= opts_.max_sessions) return nullptr;
  sessions_[s->id] = s;
  return s;
}

std::shared_ptr<McpServer::Session> McpServer::find_session(const std::string& id) {
  std::lock_guard lk(mu_);
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return nullptr;
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
  if (path == "/mcp" || upstream_api || types_api || capsule_api) {
    // Browsers send Origin; only loopback pages (or the page this server itself serves when
    // bound elsewhere) may talk to us. The Host check stops DNS rebinding onto 127.0.0.1.
    std::string origin = header(req, "origin");
    std::string host = header(req, "host");
    if (!origin.empty()) {
      auto scheme_end = origin.find("://");
      std::string authority = scheme_end == std::string::npos ? "" : origin.substr(scheme_end + 3);
      bool same = !opts_.loopback_only && !authority.empty() && authority == host;
      if (!same && !is_loopback_host(authority_host(authority))) {
        return respond(json_response(403, rpc_error(nullptr, kInvalidRequest,
                                                    "Forbidden: origin " + origin +
                                                        " is not allowed")));
      }
    }
    if (opts_.loopback_only && !host.empty() && !is_loopback_host(authority_host(host))) {
      return respond(json_response(
          403, rpc_error(nullptr, kInvalidRequest, "Forbidden: host " + host + " is not allowed")));
    }
  }
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
  if (req.method != "GET" && req.method != "HEAD") {
    return respond(json_response(405, json{{"error", "method not allowed"}}));
  }
  if (path == "/health") return respond(json_response(200, json{{"status", "ok"}}));
  if (capsule_api) return handle_capsule(path, respond);
  if (path == "/") {
    if (opts_.ui) {
      return respond(HttpResponse{
          200,
          {{"Content-Type", "text/html; charset=utf-8"},
           {"Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'"},
           {"X-Content-Type-Options", "nosniff"}},
          std::string(ui_page())});
    }
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
  auto session = find_session(sid);
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
  // The upstream call blocks: it runs on the run threads, never on the transport's. It gets the
  // time a run gets.
  auto job = [this, body = std::move(req.body), respond, cfg = config()] {
    HttpResponse r;
    try {
      const std::chrono::milliseconds timeout(cfg->policy.limits.timeout_ms);
      r = opts_.upstreams->rpc(body, cfg->policy, &stopping_, timeout);
    } catch (const std::exception& e) {
      log::error(std::string("mcps-rpc failed: ") + e.what());
      r = json_response(500, json{{"error", "internal error"}});
    }
    respond(std::move(r));
  };
  if (!pool_->submit(std::move(job))) {
    respond(json_response(503, json{{"error", "server busy: too many calls queued; retry later"}}));
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
  if (!pool_->submit(std::move(job))) {
    respond(json_response(503, json{{"error", "server busy: too many calls queued; retry later"}}));
  }
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
    if (it != sessions_.end()) {
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
  json msg = parse_json(req.body);
  if (msg.is_discarded()) {
    return respond(json_response(
        400, rpc_error(nullptr, kParseError, "Parse error: invalid JSON (or nested deeper than 64 levels)")));
  }
  if (msg.is_array()) {
    return respond(json_response(
        400, rpc_error(nullptr, kInvalidRequest, "Invalid Request: batches are not supported")));
  }
  json id = msg.is_object() && msg.contains("id") ? msg["id"] : json(nullptr);
  if (!valid_id(id)) id = nullptr;
  if (!msg.is_object() || msg.value("jsonrpc", json()) != "2.0") {
    return respond(json_response(
        400, rpc_error(id, kInvalidRequest, "Invalid Request: expected a JSON-RPC 2.0 object")));
  }
  bool has_method = msg.contains("method");
  bool is_request = has_method && msg.contains("id");

  if (is_request && msg["method"] == "initialize") {
    if (!valid_id(msg["id"])) {
      return respond(json_response(
          400, rpc_error(nullptr, kInvalidRequest, "Invalid Request: id must be a string or integer")));
    }
    const json& params = msg.contains("params") ? msg["params"] : json::object();
    if (!params.is_object() || !params.contains("protocolVersion") ||
        !params["protocolVersion"].is_string()) {
      return respond(json_response(
          200, rpc_error(id, kInvalidParams, "Invalid params: protocolVersion (string) is required")));
    }
    std::string asked = params["protocolVersion"];
    std::string protocol = is_supported_protocol(asked) ? asked : kLatestProtocol;
    auto s = new_session(protocol);
    if (!s) {
      return respond(json_response(
          503, rpc_error(id, kServerBusy, "Too many sessions; close one (DELETE /mcp) or retry later")));
    }
    HttpResponse r = json_response(200, rpc_result(id, initialize_result(protocol)));
    r.headers.push_back({"Mcp-Session-Id", s->id});
    return respond(std::move(r));
  }

  auto session = request_session(req, id, respond);
  if (!session) return;
  if (!is_request) {
    // Notifications and responses: accepted, nothing to answer.
    dispatch(session, msg, [](std::optional<json>) {});
    return respond(HttpResponse{202, {}, ""});
  }
  auto answer = [id](std::optional<json> r) {
    return r ? std::move(*r) : rpc_error(id, kInvalidRequest, "Request cancelled");
  };
  if (!progress_token(msg.value("params", json())).is_null() && accepts_sse(req) &&
      req.start_stream) {
    // The client wants progress: an SSE response, notifications first, the reply last.
    auto stream = req.start_stream(sse_head());
    return dispatch(
        session, msg,
        [stream, answer](std::optional<json> r) {
          stream->send(sse_event(answer(std::move(r))));
          stream->close();
        },
        [stream](const json& n) { stream->send(sse_event(n)); });
  }
  dispatch(session, msg, [respond = std::move(respond), answer](std::optional<json> r) {
    respond(json_response(200, answer(std::move(r))));
  });
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
  auto reply_error = [&](const json& id, int code, const std::string& m) {
    write(dump(rpc_error(id, code, m)));
    done();
  };
  json msg = parse_json(line);
  if (msg.is_discarded()) {
    return reply_error(nullptr, kParseError, "Parse error: invalid JSON (or nested deeper than 64 levels)");
  }
  if (msg.is_array()) {
    return reply_error(nullptr, kInvalidRequest, "Invalid Request: batches are not supported");
  }
  json id = msg.is_object() && msg.contains("id") && valid_id(msg["id"]) ? msg["id"] : json(nullptr);
  if (!msg.is_object() || msg.value("jsonrpc", json()) != "2.0") {
    return reply_error(id, kInvalidRequest, "Invalid Request: expected a JSON-RPC 2.0 object");
  }
  {
    std::lock_guard lk(stdio_session_->mu);
    if (!stdio_session_->write) stdio_session_->write = write;
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

void McpServer::dispatch(const std::shared_ptr<Session>& session, const json& msg, Reply reply,
                         Notify notify) {
  bool has_id = msg.contains("id");
  if (!msg.contains("method")) {
    // A response to a request we never send, or garbage: nothing to answer.
    if (has_id && !msg.contains("result") && !msg.contains("error")) {
      return reply(rpc_error(nullptr, kInvalidRequest, "Invalid Request: method is required"));
    }
    return reply(std::nullopt);
  }
  const json& id = has_id ? msg["id"] : json(nullptr);
  if (has_id && !valid_id(id)) {
    return reply(rpc_error(nullptr, kInvalidRequest, "Invalid Request: id must be a string or integer"));
  }
  if (!msg["method"].is_string()) {
    return reply(has_id ? std::optional(rpc_error(id, kInvalidRequest, "Invalid Request: method must be a string"))
                        : std::nullopt);
  }
  std::string method = msg["method"];
  const json params = msg.contains("params") ? msg["params"] : json::object();
  if (!params.is_object()) {
    return reply(has_id ? std::optional(rpc_error(id, kInvalidParams, "Invalid params: params must be an object"))
                        : std::nullopt);
  }

  if (!has_id) {
    if (method == "notifications/initialized") {
      std::lock_guard lk(session->mu);
      session->initialized = true;
    } else if (method == "notifications/cancelled" && params.contains("requestId")) {
      std::lock_guard lk(session->mu);
      auto it = session->running.find(dump(params["requestId"]));
      if (it != session->running.end()) it->second->cancel();
    }
    return reply(std::nullopt);
  }

  if (method == "initialize") {
    if (!params.contains("protocolVersion") || !params["protocolVersion"].is_string()) {
      return reply(rpc_error(id, kInvalidParams, "Invalid params: protocolVersion (string) is required"));
    }
    std::string asked = params["protocolVersion"];
    std::string protocol = is_supported_protocol(asked) ? asked : kLatestProtocol;
    {
      std::lock_guard lk(session->mu);
      session->protocol = protocol;
    }
    return reply(rpc_result(id, initialize_result(protocol)));
  }
  if (method == "ping") return reply(rpc_result(id, json::object()));
  if (method == "tools/list") {
    if (params.contains("cursor") && !params["cursor"].is_string()) {
      return reply(rpc_error(id, kInvalidParams, "Invalid params: cursor must be a string"));
    }
    return reply(rpc_result(id, json{{"tools", opts_.tools(config()->policy)}}));
  }
  if (method == "tools/call") {
    return call_tool(session, id, params, std::move(reply), std::move(notify));
  }
  reply(rpc_error(id, kMethodNotFound, "Method not found: " + method));
}

void McpServer::call_tool(const std::shared_ptr<Session>& session, const json& id,
                          const json& params, Reply reply, Notify notify) {
  if (!params.contains("name") || !params["name"].is_string()) {
    return reply(rpc_error(id, kInvalidParams, "Invalid params: name (string) is required"));
  }
  std::string name = params["name"];
  auto lang = tool_language(name);
  if (!lang) return reply(rpc_error(id, kInvalidParams, "Unknown tool: " + name));
  json args = params.contains("arguments") ? params["arguments"] : json::object();
  if (!args.is_object()) {
    return reply(rpc_error(id, kInvalidParams, "Invalid params: arguments must be an object"));
  }
  auto prepared = prepare_run(*lang, args, config()->policy);
  if (!prepared) return reply(rpc_result(id, tool_error(prepared.error().message)));
  // Python reaches upstream tools through its relay, started only for runs that may use them.
  prepared->request.mcp = opts_.upstreams && !prepared->policy.mcps.empty();

  auto token = std::make_shared<sandbox::CancelToken>();
  // Over stdio the response is the end: a client may read a last progress line together with
  // it and handle the response first, which retires the token (the TypeScript SDK does, and
  // reports the progress as an error). An SSE stream delivers its events one by one.
  ProgressFn progress =
      progress_reporter(progress_token(params), std::move(notify), token, session->http);
  std::string key = dump(id);
  {
    std::lock_guard lk(session->mu);
    if (session->closed) return reply(rpc_error(id, kSessionNotFound, "Session not found"));
    if (session->running.count(key)) {
      return reply(rpc_error(id, kInvalidRequest, "Invalid Request: request id " + key + " is already in use"));
    }
    session->running[key] = token;
  }
  auto finish = [session, key] {
    std::lock_guard lk(session->mu);
    session->running.erase(key);
  };
  auto job = [this, session, id, lang = *lang, p = std::move(*prepared), token, reply, finish,
              progress] {
    std::optional<json> answer;
    progress(0, "running");
    try {
      auto out = backend_.run(lang, p.request, p.stdin_data, token.get(), p.policy,
                              p.npm_dependencies, p.pip, progress);
      if (!out) {
        log::error("run failed: " + out.error().message);
        answer = rpc_result(id, tool_error("internal error: the run could not be executed"));
      } else {
        answer = rpc_result(id, tool_result(lang, *out, p.request));
      }
    } catch (const std::exception& e) {
      log::error(std::string("run failed: ") + e.what());
      answer = rpc_result(id, tool_error("internal error: the run could not be executed"));
    }
    finish();
    progress(1, "done");
    if (token->cancelled() && !session->http) answer.reset();  // per spec: no response
    reply(std::move(answer));
  };
  if (!pool_->submit(std::move(job))) {
    finish();
    reply(rpc_result(id, tool_error("server busy: too many runs queued; retry later")));
  }
}

}  // namespace onemcp::server
