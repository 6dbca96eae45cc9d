// fuzz_jsonrpc — the JSON-RPC parser (protocol::parse) alone, then the MCP server's JSON-RPC
// handling as a stdio client and as an HTTP client sees it. Runs go to a fake backend that
// answers at once (no processes, no sandbox).
// Parser checks: the whole input and every line parse without throwing into at least one item
// (a batch may be empty); a message re-serialised parses back to the same kind, id, method and
// params; a refusal's error is valid JSON.
// Input: for stdio, each '\n'-separated line is one message, in order, each finished before the
// next (so "initialize" then "tools/call" sequences are reachable); for HTTP, the whole input is
// the body of one POST /mcp inside a freshly initialised session.
// Checks: every line written and every response body is valid JSON (nlohmann's parser also
// rejects invalid UTF-8); no message ends in the server's "Internal error" catch-all (an
// exception there is a bug of ours, never the client's input); every message is finished.
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "protocol/jsonrpc.h"
#include "server/mcp_server.h"

namespace {

using nlohmann::json;
using namespace onemcp;
using namespace onemcp::server;

// Answers every run at once; what it returns depends on the request, so the fuzzer can steer
// tool_result() through its branches (outcome, stderr, value, truncation) with arbitrary bytes.
class FakeBackend final : public RunBackend {
 public:
  Result<sandbox::RunOutput> run(const RunSpec& spec, const sandbox::CancelToken*,
                                 const ProgressFn&) override {
    const ipc::RunRequest req = spec.request();
    const std::string& in = spec.stdin_data;
    sandbox::RunOutput o;
    size_t h = std::hash<std::string>{}(req.code);
    if (h % 7 == 0) return make_error("fake backend failure");
    o.out = req.code;
    o.err = in;
    if (!req.args.empty()) o.report.value = req.args[0];
    if (!req.cwd.empty()) o.report.error_message = req.cwd;
    o.outcome = static_cast<sandbox::Outcome>(h % 9);  // every Outcome
    o.exit_code = int(h % 256);
    o.truncated = (h >> 8) % 2 == 0;
    o.duration_ms = double(h % 100000) / 7;
    return o;
  }
};

void check_json(const std::string& text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) __builtin_trap();
  if (j.is_object() && j.contains("error") && j["error"].is_object() &&
      j["error"].value("code", 0) == -32603)
    __builtin_trap();
}

// Waits for one callback from another thread (runs answer on the server's pool).
class Latch {
 public:
  void open() {
    std::lock_guard lk(mu_);
    open_ = true;
    cv_.notify_all();
  }
  void wait() {
    std::unique_lock lk(mu_);
    cv_.wait(lk, [&] { return open_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};

ServerOptions options() {
  ServerOptions o;
  o.runs = {1, 1, 4, 4};
  o.aux_threads = 1;
  o.max_queued_aux = 4;
  o.max_sessions = 4;
  o.hosts.port = 7800;
  // A fixed clock: no session expires while an input is processed.
  static const auto t0 = std::chrono::steady_clock::now();
  o.now = [] { return t0; };
  return o;
}

void stdio_line(McpServer& server, std::string line) {
  Latch finished;
  std::mutex mu;
  std::vector<std::string> written;
  server.handle_line(
      std::move(line),
      [&](std::string out) {
        std::lock_guard lk(mu);
        written.push_back(std::move(out));
      },
      [&] { finished.open(); });
  finished.wait();
  std::lock_guard lk(mu);
  for (const auto& w : written) check_json(w);
}

HttpResponse post(McpServer& server, std::string body, const std::string& session) {
  HttpRequest r;
  r.method = "POST";
  r.target = "/mcp";
  r.body = std::move(body);
  r.headers = {{"content-type", "application/json"},
               {"accept", "application/json, text/event-stream"},
               {"host", "127.0.0.1:7800"}};
  if (!session.empty()) r.headers["mcp-session-id"] = session;
  r.peer = "127.0.0.1:50000";
  Latch answered;
  HttpResponse out;
  server.handle(std::move(r), [&](HttpResponse resp) {
    out = std::move(resp);
    answered.open();
  });
  answered.wait();
  if (out.status == 202) {
    if (!out.body.empty()) __builtin_trap();
  } else {
    check_json(out.body);
  }
  return out;
}

void check_parser(std::string_view text) {
  protocol::Parsed parsed = protocol::parse(text);
  if (!parsed.batch && parsed.items.size() != 1) __builtin_trap();
  for (const auto& item : parsed.items) {
    if (const auto* r = std::get_if<protocol::Refusal>(&item)) {
      check_json(protocol::dump(protocol::error(*r)));
      continue;
    }
    const auto& m = std::get<protocol::Message>(item);
    json again;
    switch (m.kind) {
      case protocol::Message::Kind::request:
        again = protocol::request(m.id, m.method, m.params);
        break;
      case protocol::Message::Kind::notification:
        again = protocol::notification(m.method, m.params);
        break;
      case protocol::Message::Kind::response:
        again = protocol::response(m.id, m.result);
        break;
      case protocol::Message::Kind::error:
        again = json{{"jsonrpc", "2.0"}, {"id", m.id}, {"error", m.error}};
        break;
    }
    // Parsed strings are valid UTF-8, so dump() replaces nothing: the same message comes back.
    protocol::Parsed back = protocol::parse(protocol::dump(again));
    if (back.batch || back.items.size() != 1) __builtin_trap();
    const auto* b = std::get_if<protocol::Message>(&back.items[0]);
    if (!b || b->kind != m.kind || b->method != m.method || b->id != m.id || b->params != m.params)
      __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string input(reinterpret_cast<const char*>(data), size);
  check_parser(input);
  for (size_t start = 0, nl; start < input.size(); start = nl + 1) {
    nl = input.find('\n', start);
    if (nl == std::string::npos) nl = input.size();
    check_parser(std::string_view(input).substr(start, nl - start));
  }
  FakeBackend backend;
  {
    McpServer server(options(), policy::Config{}, backend);
    size_t start = 0;
    while (start <= input.size()) {
      size_t nl = input.find('\n', start);
      if (nl == std::string::npos) nl = input.size();
      std::string line = input.substr(start, nl - start);
      // As the stdio transport does: a trailing '\r' is dropped, empty lines are skipped.
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (!line.empty()) stdio_line(server, std::move(line));
      start = nl + 1;
    }
  }
  {
    McpServer server(options(), policy::Config{}, backend);
    auto init = post(server,
                     R"({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18"}})",
                     "");
    std::string session;
    for (const auto& [k, v] : init.headers)
      if (k == "Mcp-Session-Id") session = v;
    if (init.status != 200 || session.empty()) __builtin_trap();
    post(server, input, session);
  }
  return 0;
}
