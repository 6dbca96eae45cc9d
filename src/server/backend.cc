#include "server/backend.h"

#include "base/log.h"
#include "deps/imports.h"
#include "server/egress.h"
#include "server/upstreams.h"
#include "transpile/esbuild.h"

namespace onemcp::server {
namespace {

constexpr int kTranspileTimeoutMs = 10000;
constexpr uint32_t kWheelTimeoutMs = 120000;

// An error result for code that never ran (its text becomes the isError result's stderr).
sandbox::RunOutput failed_before_run(const std::string& message, const char* kind, double ms) {
  sandbox::RunOutput o;
  o.err = message + "\n";
  o.exit_code = 1;
  o.outcome = sandbox::Outcome::error;
  o.report.error_kind = kind;
  o.report.error_message = message;
  o.duration_ms = ms;
  return o;
}

std::vector<std::string> worker_env() {
  // Workers hold no secret: nothing of the server's environment is passed on.
  return {"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", "LC_ALL=C.UTF-8", "HOME=/tmp"};
}

class WorkerBackend final : public RunBackend {
 public:
  WorkerBackend(std::unique_ptr<sandbox::Zygote> js, std::unique_ptr<sandbox::Zygote> py,
                std::string esbuild, broker::Resolver& resolver, broker::FetchLimits limits,
                NpmSetup npm, Upstreams* upstreams, PipSetup pip)
      : js_(std::move(js)),
        py_(std::move(py)),
        esbuild_(std::move(esbuild)),
        resolver_(resolver),
        fetch_limits_(std::move(limits)),
        npm_(std::move(npm)),
        pip_(std::move(pip)),
        upstreams_(upstreams) {}

  Result<sandbox::RunOutput> run(Language lang, const ipc::RunRequest& call_req,
                                 const std::string& stdin_data, const sandbox::CancelToken* cancel,
                                 const policy::Policy& policy, const deps::Dependencies& npm,
                                 const deps::PipSet& pip, const ProgressFn& /*progress*/) override {
    CodeModeOps code_mode;
    if (upstreams_) {
      code_mode = [this, &policy](const nlohmann::json& frame, std::chrono::steady_clock::time_point deadline,
                                  const std::atomic<bool>& cancelled) {
        return upstreams_->answer(frame, policy, deadline, cancelled);
      };
    }
    const sandbox::BrokerHandler broker =
        make_broker_handler(policy.network, resolver_, fetch_limits_, std::move(code_mode));
    const sandbox::BrokerTunnels tunnels = make_broker_tunnels(policy.network, resolver_, fetch_limits_);
    if (lang == Language::py) {
      const deps::PipSet all = deps::merge_pip(pip_.config_set, pip);
      if (all.empty()) return py_->run(call_req, stdin_data, cancel, &broker, &tunnels);
      // The set's site directory (installed once, then cached). Installing a new set is not
      // counted against the run's time limit.
      if (!pip_.cache) return failed_before_run(pip_.unavailable, "dependencies", 0);
      auto t0 = std::chrono::steady_clock::now();
      auto key = pip_.cache->prepare(all, [&](const std::string& url) { return fetch_wheel(url, policy); });
      double ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      if (!key) return failed_before_run(key.error().message, "dependencies", ms);
      if (ms > 1000) log::info("pip dependencies ready in " + std::to_string(int(ms)) + " ms");
      ipc::RunRequest with_deps = call_req;
      with_deps.pip_key = *key;
      return py_->run(with_deps, stdin_data, cancel, &broker, &tunnels);
    }
    const ipc::RunRequest* reqp = &call_req;
    ipc::RunRequest with_deps;
    const deps::Dependencies all = deps::merge_dependencies(npm_.config_dependencies, npm);
    if (!all.empty()) {
      // The set's layer (built once, then cached) and the code's imports pointed at it. Building
      // a new set is not counted against the run's time limit.
      if (!npm_.cache) return failed_before_run(npm_.unavailable, "dependencies", 0);
      auto t0 = std::chrono::steady_clock::now();
      auto layer = npm_.cache->layer(all);
      double ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      if (!layer) return failed_before_run(layer.error().message, "dependencies", ms);
      if (ms > 1000) log::info("npm dependencies ready in " + std::to_string(int(ms)) + " ms");
      auto code = deps::rewrite_imports(call_req.code, (*layer)->modules);
      if (!code) return failed_before_run(code.error().message, "syntax", 0);
      with_deps = call_req;
      with_deps.code = std::move(*code);
      with_deps.deps_code = (*layer)->code;
      reqp = &with_deps;
    }
    const ipc::RunRequest& req = *reqp;
    auto out = js_->run(req, stdin_data, cancel, &broker, &tunnels);
    if (!out || !out->report.needs_transpile || req.transpiled) return out;
    // Plain QuickJS could not parse it (TypeScript, newer syntax, top-level await): transpile
    // with esbuild on the host, then run again. Time spent counts against the deadline.
    double spent = out->duration_ms;
    auto t0 = std::chrono::steady_clock::now();
    auto js = transpile::esbuild_transform(esbuild_, req.code, kTranspileTimeoutMs);
    spent += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (!js) return failed_before_run(js.error().message, "syntax", spent);
    ipc::RunRequest again = req;
    again.code = std::move(*js);
    again.transpiled = true;
    if (req.timeout_ms) {
      uint64_t used = uint64_t(spent);
      again.timeout_ms = req.timeout_ms > used ? req.timeout_ms - used : 1;
    }
    auto second = js_->run(again, stdin_data, cancel, &broker, &tunnels);
    if (second) second->duration_ms += spent;
    return second;
  }

 private:
  // A wheel of pip.wheelUrls, fetched by the broker exactly like a run's request under the run's
  // network policy (every hop's host and address checked, pinned connections), except that the
  // body may be as large as a wheel may be.
  Result<std::string> fetch_wheel(const std::string& url, const policy::Policy& policy) {
    policy::NetworkPolicy network = policy.network;
    network.max_body_bytes = deps::kMaxWheelBytes;
    broker::Fetcher fetcher(network, resolver_, fetch_limits_);
    broker::FetchRequest req;
    req.url = url;
    req.timeout_ms = kWheelTimeoutMs;
    auto r = fetcher.fetch(req);
    if (!r) return r.error();
    if (r->status != 200) {
      return make_error("HTTP " + std::to_string(r->status) +
                        (r->status_text.empty() ? "" : " " + r->status_text));
    }
    return std::move(r->body);
  }

  std::unique_ptr<sandbox::Zygote> js_, py_;
  std::string esbuild_;
  broker::Resolver& resolver_;
  broker::FetchLimits fetch_limits_;
  NpmSetup npm_;
  PipSetup pip_;
  Upstreams* upstreams_;
};

}  // namespace

Result<std::unique_ptr<RunBackend>> start_worker_backend(const WorkerPaths& paths,
                                                         sandbox::CgroupManager* cgroups,
                                                         broker::Resolver& resolver,
                                                         broker::FetchLimits fetch_limits,
                                                         NpmSetup npm, Upstreams* upstreams,
                                                         PipSetup pip) {
  std::vector<std::string> args;
  if (!paths.sandbox) args.push_back("--no-sandbox");
  for (const auto& w : paths.writable_roots) args.push_back("--writable=" + w);
  for (const auto& m : paths.mounts) {
    args.insert(args.end(), {"--mount", m.writable ? "rw" : "ro", m.host, m.path});
  }
  auto js = sandbox::Zygote::start({paths.js_worker, args, worker_env()}, cgroups);
  if (!js) return js.error();
  std::vector<std::string> py_args = args;
  if (!paths.pip_root.empty()) py_args.insert(py_args.end(), {"--pip-root", paths.pip_root});
  auto py = sandbox::Zygote::start({paths.py_worker, py_args, worker_env()}, cgroups);
  if (!py) return py.error();
  if (auto s = (*js)->wait_ready(std::chrono::seconds(30)); !s) return s.error();
  if (auto s = (*py)->wait_ready(std::chrono::seconds(30)); !s) return s.error();
  // One probe per runtime: every sandbox layer is set up for it, so a kernel that lacks one
  // fails here, at start, not on a client's first call.
  for (auto* z : {js->get(), py->get()}) {
    ipc::RunRequest probe;
    probe.code = z == js->get() ? "1" : "pass";
    probe.timeout_ms = 10000;
    probe.mem_mb = 64;
    probe.stdout_bytes = 4096;
    auto out = z->run(probe, "");
    if (!out) return out.error();
    if (out->outcome != sandbox::Outcome::ok) {
      std::string why = out->report.error_message ? *out->report.error_message : out->err;
      return make_error("probe run failed (" + std::string(sandbox::to_string(out->outcome)) +
                        ", exit code " + std::to_string(out->exit_code) + "): " + why);
    }
  }
  return std::unique_ptr<RunBackend>(new WorkerBackend(std::move(*js), std::move(*py),
                                                       paths.esbuild, resolver,
                                                       std::move(fetch_limits), std::move(npm),
                                                       upstreams, std::move(pip)));
}

}  // namespace onemcp::server
