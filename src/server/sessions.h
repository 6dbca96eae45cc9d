// server/sessions.h — sessions by handle (the session_create / session_close tools). A session is
// an opaque handle (256 bits from the kernel's CSPRNG) bound to the principal that created it;
// run_js / run_py calls that name it run in its live interpreter of their language (one sandboxed
// process per session and language, whose state carries over between calls) with its workspace
// (sandbox/workspace.h) at /work. A session ends when closed, after `idle_ms` without a call, or
// when the server stops: its calls under way are cancelled, its interpreters end and its
// workspace is freed. It does not depend on the transport or on Mcp-Session-Id.
// Thread-safety: Sessions is safe to use from any thread; a Session's interpreters are used under
// their own mutex (one call per session and language at a time).
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <thread>

#include "base/result.h"
#include "policy/config.h"
#include "sandbox/executor.h"
#include "sandbox/workspace.h"

namespace onemcp::server {

// A replica's name (serve --replica): 1 to 63 of a-z, 0-9 and '-', not starting with '-' (a DNS
// label, as a Kubernetes pod's name is).
bool is_replica_name(std::string_view name);
// The replica a session handle names (`ses_<replica>.<hex>`), or "" when it names none.
std::string replica_of(std::string_view handle);

class Session {
 public:
  // One language's live interpreter. Its mutex is held by the call running in it.
  struct Interpreter {
    std::mutex mu;
    std::unique_ptr<sandbox::Zygote::Live> live;
    std::string sandbox;  // the sandbox the live process was built with (see backend.cc)
    std::string deps;     // run_js: the npm layer its interpreter has loaded (its sha256), if any
    std::string ended;    // why the last live process ended, told to the next call once
    uint64_t calls = 0;   // calls it has run in this session, over all its processes
    // The /mcps tree its process mounted at its first call (kept on disk while it lives).
    std::shared_ptr<const void> mcps;
  };

  Session(std::string handle, std::string principal, sandbox::Workspace workspace)
      : handle_(std::move(handle)),
        principal_(std::move(principal)),
        workspace_(std::move(workspace)) {}

  const std::string& handle() const { return handle_; }
  // A name for logs: the first 12 hex digits of the handle's SHA-256 (the handle is a secret).
  std::string log_name() const;
  const std::string& principal() const { return principal_; }
  const sandbox::Workspace& workspace() const { return workspace_; }
  Interpreter& interpreter(bool python) { return python ? py_ : js_; }

  // A call is under way in it: `cancel` is cancelled if the session ends meanwhile. False when it
  // has ended already.
  bool begin_call(sandbox::CancelToken* cancel);
  void end_call(sandbox::CancelToken* cancel);
  bool ended() const;

 private:
  friend class Sessions;
  // Cancels its calls under way; the interpreters end once the last reference is dropped.
  void end();

  const std::string handle_;
  const std::string principal_;
  sandbox::Workspace workspace_;
  Interpreter js_, py_;
  mutable std::mutex mu_;  // guards what follows
  std::set<sandbox::CancelToken*> calls_;
  bool ended_ = false;
  std::chrono::steady_clock::time_point last_used_ = std::chrono::steady_clock::now();
  std::chrono::system_clock::time_point expires_;  // reported: last use + idle lifetime
};

class Sessions {
 public:
  // `replica`: this server's name among replicas (empty: alone), put in every handle it makes.
  explicit Sessions(const policy::SessionsConfig& config, std::string replica = "");
  ~Sessions();  // ends every session
  Sessions(const Sessions&) = delete;
  Sessions& operator=(const Sessions&) = delete;

  const policy::SessionsConfig& config() const { return config_; }

  // A new session for `principal`, within the caps; the error says which cap refused it.
  Result<std::shared_ptr<Session>> create(const std::string& principal);
  // The session `handle` names, for `principal`: its idle clock restarts. Unknown, ended,
  // expired and another principal's handles get the same error, so none tells anything.
  Result<std::shared_ptr<Session>> find(const std::string& handle, const std::string& principal);
  // Ends it (as find() would refuse it otherwise).
  Status close(const std::string& handle, const std::string& principal);
  // When the session will expire if it is not used (its last use plus the idle lifetime).
  std::chrono::system_clock::time_point expires(const Session& s) const;
  size_t open() const;

 private:
  void sweep();

  const policy::SessionsConfig config_;
  const std::string replica_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::map<std::string, std::shared_ptr<Session>> by_handle_;
  std::thread sweeper_;
};

}  // namespace onemcp::server
