// server/backend.h — where runs go: the real worker zygotes, or a fake in unit tests.
// Thread-safety: run() is called concurrently from the server's run threads.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "broker/fetcher.h"
#include "broker/resolver.h"
#include "deps/npm.h"
#include "deps/pip.h"
#include "ipc/wire.h"
#include "policy/config.h"
#include "sandbox/executor.h"
#include "server/capsules.h"
#include "server/run_spec.h"

namespace onemcp::server {

class Upstreams;

// Reports how far a call's work has come: `fraction` of it in [0, 1] and a short message for
// people ("installing numpy"). Never empty; callable from any thread. A report that does not
// increase the fraction, or comes after the call was cancelled or finished, is dropped.
using ProgressFn = std::function<void(double fraction, const std::string& message)>;

class RunBackend {
 public:
  virtual ~RunBackend() = default;
  // Runs `spec`: its outbound requests and upstream tool calls are decided by its policy; its
  // npm dependencies (run_js) and pip set (run_py) are added to the server's own. `progress`:
  // where the steps of a run that take a while (preparing it, dependencies) report.
  // The result's `capsule` names the capsule the run executed (the last one, when esbuild's
  // output ran after plain QuickJS could not parse the code).
  virtual Result<sandbox::RunOutput> run(const RunSpec& spec, const sandbox::CancelToken* cancel,
                                         const ProgressFn& progress) = 0;
  // Where server events of its own go (level, logger, data; see McpServer::log_event): a
  // dependency set prepared for a call. Set before the first run; none: not told.
  using EventSink = std::function<void(const std::string& level, const std::string& logger,
                                       const nlohmann::json& data)>;
  virtual void set_event_sink(EventSink sink) { (void)sink; }
};

struct WorkerPaths {
  std::string js_worker;  // 1mcp-js-worker
  std::string py_worker;  // 1mcp-py-worker
  std::string esbuild;    // esbuild binary, used only for code plain QuickJS cannot parse
  bool sandbox = true;    // false only with the development flag --insecure-no-sandbox
  std::vector<std::string> writable_roots =
      ipc::default_writable();  // the server policy's writable paths
  struct Mount {
    std::string host, path;
    bool writable = false;
  };
  std::vector<Mount> mounts;  // host directories shown inside the sandbox (from the config)
  std::string pip_root;       // host directory of the pip dependency sets (PipCache), or empty
  std::string mcps_root;      // host directory of the /mcps trees (Upstreams::set_trees), or empty
  std::vector<std::string> python_preload;  // config python.preload: imported by the Python zygote
  // Every run reports its steps (ipc::RunRequest::profile), shown in the result's _meta.
  bool profile_runs = false;
};

// npm dependencies of run_js calls. Without a cache, calls that need packages get an error.
struct NpmSetup {
  deps::NpmCache* cache = nullptr;         // must outlive the backend
  deps::Dependencies config_dependencies;  // the config's npm.dependencies: every run_js call
  std::string unavailable = "npm dependencies are not available on this server";  // when no cache
};

// pip dependencies of run_py calls. Without a cache, calls that need packages get an error.
struct PipSetup {
  deps::PipCache* cache = nullptr;  // must outlive the backend
  deps::PipSet config_set;          // the config's pip.requirements and pip.wheelUrls: every run_py call
  std::string unavailable = "pip dependencies are not available on this server";  // when no cache
};

// A wheel of pip.wheelUrls, fetched by the broker exactly like a run's request under `policy`
// (every hop's host and address checked, pinned connections), except that the body may be as
// large as a wheel may be.
Result<std::string> fetch_wheel(const std::string& url, const policy::NetworkPolicy& policy,
                                broker::Resolver& resolver, const broker::FetchLimits& limits);

// Starts both zygotes (in parallel), waits until they are initialised, and proves the sandbox
// works with one probe run per runtime (fails, saying which layer, if it does not).
// `cgroups` may be null only without the sandbox.
// `resolver` answers the names runs fetch (it must outlive the backend); `fetch_limits` apply to
// every run's requests (e.g. the server's own address, never reachable from a run).
// `upstreams` (may be null) answers runs' upstream tool calls; it must outlive the backend.
// Every run executes from its capsule in `capsules` (which must outlive the backend); a run whose
// capsule cannot be stored and verified does not run (an isError result says why; its outcome is
// `internal` when the cache's file system failed, e.g. a full disk).
Result<std::unique_ptr<RunBackend>> start_worker_backend(const WorkerPaths& paths,
                                                         sandbox::CgroupManager* cgroups,
                                                         broker::Resolver& resolver,
                                                         broker::FetchLimits fetch_limits,
                                                         Capsules& capsules, NpmSetup npm = {},
                                                         Upstreams* upstreams = nullptr,
                                                         PipSetup pip = {});

}  // namespace onemcp::server
