#include "server/backend.h"

#include <cstring>
#include <type_traits>

#include "base/log.h"
#include "deps/imports.h"
#include "policy/config.h"
#include "server/egress.h"
#include "server/heaps.h"
#include "server/upstreams.h"
#include "transpile/esbuild.h"

namespace onemcp::server {
namespace {

constexpr int kTranspileTimeoutMs = 10000;
// Heap snapshots of npm dependency layers (server/heaps.h): what they may hold in all, and the
// room a layer gets to load in when the run has no memory limit.
constexpr uint64_t kMaxHeapBytes = 256ull << 20;
constexpr uint64_t kMaxHeapMakeBytes = 1ull << 30;
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

// An internal result for a run that did not start because of the server (its exit code stays -1:
// no program ran).
sandbox::RunOutput not_started(const std::string& message) {
  sandbox::RunOutput o;
  o.err = message + "\n";
  o.outcome = sandbox::Outcome::internal;
  o.report.error_kind = "internal";
  o.report.error_message = message;
  return o;
}

// What a live process's sandbox was built from (its first request): a call that asks for another
// one gets a new process.
std::string live_sandbox_of(const ipc::RunRequest& r) {
  return nlohmann::json{{"pip", r.pip_key},
                        {"relay", r.network_relay},
                        {"mcp", r.mcp},
                        {"readonly", r.readonly},
                        {"writable", r.writable}}
      .dump();
}

// Why a call ended its session's interpreter, as the next call is told.
std::string why_ended(const sandbox::RunOutput& out) {
  switch (out.outcome) {
    case sandbox::Outcome::timeout:
      return "the previous call timed out, which stopped the interpreter";
    case sandbox::Outcome::killed:
      return "the previous call was cancelled, which stopped the interpreter";
    case sandbox::Outcome::memory:
      return "the previous call ran out of memory";
    case sandbox::Outcome::output_limit:
      return "the previous call exceeded the output limit, which stopped the interpreter";
    case sandbox::Outcome::policy_violation:
      return "the sandbox stopped the previous call (a forbidden system call)";
    default:
      return "the previous call ended the interpreter (exit code " + std::to_string(out.exit_code) +
             ")";
  }
}

std::vector<std::string> worker_env() {
  // Workers hold no secret: nothing of the server's environment is passed on.
  return {"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", "LC_ALL=C.UTF-8", "HOME=/tmp"};
}

class WorkerBackend final : public RunBackend {
 public:
  WorkerBackend(std::unique_ptr<sandbox::Zygote> js, std::unique_ptr<sandbox::Zygote> py,
                std::string esbuild, broker::Resolver& resolver, broker::FetchLimits limits,
                NpmSetup npm, Upstreams* upstreams, Capsules& capsules, PipSetup pip,
                bool profile_runs)
      : js_(std::move(js)),
        py_(std::move(py)),
        esbuild_(std::move(esbuild)),
        resolver_(resolver),
        fetch_limits_(std::move(limits)),
        npm_(std::move(npm)),
        pip_(std::move(pip)),
        upstreams_(upstreams),
        capsules_(capsules),
        profile_runs_(profile_runs) {}

  Result<sandbox::RunOutput> run(const RunSpec& spec, const sandbox::CancelToken* cancel,
                                 const ProgressFn& progress) override {
    const Language lang = spec.language;
    const policy::Policy& policy = spec.policy;
    const ipc::RunRequest call_req = spec.request();
    const std::string& stdin_data = spec.stdin_data;
    CodeModeOps code_mode;
    if (upstreams_) {
      code_mode = [this, &policy](const nlohmann::json& frame, std::chrono::steady_clock::time_point deadline,
                                  const std::atomic<bool>& cancelled) {
        return upstreams_->answer(frame, policy, deadline, cancelled);
      };
    }
    // The run's /mcps tree, kept on disk until the run is over (a session's interpreter keeps
    // the one of its first call).
    const std::shared_ptr<const McpsTrees::Tree> mcps_tree =
        upstreams_ && spec.mcp ? upstreams_->mcps_tree(policy) : nullptr;
    const sandbox::BrokerHandler broker =
        make_broker_handler(policy.network, resolver_, fetch_limits_, std::move(code_mode));
    const sandbox::BrokerTunnels tunnels = make_broker_tunnels(policy.network, resolver_, fetch_limits_);
    sandbox::Zygote& zygote = lang == Language::py ? *py_ : *js_;
    const nlohmann::json policy_json = policy::to_json(policy);
    auto run_code =
        [&](const ipc::RunRequest& req, const std::string& code,
            const std::shared_ptr<const deps::Layer>& layer) -> Result<sandbox::RunOutput> {
      auto pending = capsule_of(lang, req, code, layer, policy_json);
      if (!pending) {
        log::error("run refused: no capsule: " + pending.error().message);
        return failed_before_run(
            "the run was refused: its capsule could not be made (" + pending.error().message + ")",
            "internal", 0);
      }
      // Only the capsule's bytes run, and only once it is stored: the run builds its sandbox
      // meanwhile.
      const RunCapsule& c = pending->capsule();
      ipc::RunRequest exact = req;
      exact.code = *c.layer("code");
      const std::string* deps_code = c.layer("deps");
      exact.deps_code = deps_code ? *deps_code : std::string();
      const std::string* pip_layer = c.layer("pip");
      exact.pip_key = pip_layer ? pip_set_of(*pip_layer) : std::string();
      exact.args = c.entry.argv;
      exact.env = c.entry.env;
      exact.cwd = c.entry.cwd;
      exact.profile = profile_runs_;
      exact.mcps_key = mcps_tree ? mcps_tree->key : std::string();
      // In a session: its live interpreter of this language, one call at a time.
      Session::Interpreter* in =
          spec.session ? &spec.session->interpreter(lang == Language::py) : nullptr;
      std::unique_lock<std::mutex> in_lock;
      std::string live_note;
      UniqueFd workspace;
      const std::string sandbox_key = in ? live_sandbox_of(exact) : std::string();
      const std::string deps_key = in && lang == Language::js && layer ? layer->sha256 : "";
      if (in) {
        in_lock = std::unique_lock(in->mu);
        if (spec.session->ended()) return not_started("the session was closed");
        if (in->live && !in->live->alive()) {
          in->live.reset();
          if (in->ended.empty()) in->ended = "the interpreter's process ended between calls";
        }
        if (in->live && in->sandbox != sandbox_key) {
          in->live.reset();
          in->ended =
              "this call's dependencies, network or filesystem policy differ from the "
              "interpreter's";
        } else if (in->live && !deps_key.empty() && !in->deps.empty() && in->deps != deps_key) {
          in->live.reset();
          in->ended = "this call's npm dependencies differ from those the interpreter loaded";
        }
        if (in->live) {
          if (!deps_key.empty() && in->deps == deps_key) exact.deps_code.clear();  // loaded
        } else {
          in->deps.clear();
          if (in->calls > 0) {
            live_note = "a new interpreter (" +
                        (in->ended.empty() ? std::string("the previous one ended") : in->ended) +
                        "): variables and imports of earlier calls are gone; files in /work remain";
          }
          auto mount = spec.session->workspace().clone();
          if (!mount) {
            log::error("session " + spec.session->log_name() + ": " + mount.error().message);
            return not_started("the session's workspace cannot be mounted: " +
                               mount.error().message);
          }
          workspace = std::move(*mount);
        }
        in->ended.clear();
      }
      std::optional<Error> not_stored;
      bool stored = false;
      auto store = [&]() -> Status {
        if (stored) return {};
        auto s = pending->store();
        if (s) {
          stored = true;
          return {};
        }
        not_stored = s.error();
        return s.error();
      };
      // A dependency layer comes from its heap snapshot when there is one; making it runs the
      // layer, which is part of this capsule: the capsule is stored first.
      std::shared_ptr<const UniqueFd> heap;
      double making_ms = 0;  // loading the layer into a new heap counts against the run's time
      if (lang == Language::js && layer && !exact.deps_code.empty() && !in) {
        const uint64_t capacity = exact.mem_mb ? (exact.mem_mb + 64) << 20 : kMaxHeapMakeBytes;
        heap = heaps_.get(
            JsHeaps::key(zygote.generation(), layer->sha256, exact.args, exact.env, exact.cwd),
            capacity, [&](int memfd) -> Result<sandbox::RunOutput> {
              if (auto s = store(); !s) return s.error();
              ipc::RunRequest make = exact;
              make.code.clear();
              make.heap = ipc::HeapMode::make;
              auto made = zygote.run(make, "", cancel, nullptr, nullptr, {}, memfd);
              if (made) making_ms = made->duration_ms;
              return made;
            });
        if (heap) {
          exact.deps_code.clear();
          exact.heap = ipc::HeapMode::use;
        }
        if (exact.timeout_ms) {
          const auto used = uint64_t(making_ms);
          exact.timeout_ms = exact.timeout_ms > used ? exact.timeout_ms - used : 1;
        }
      }
      auto out = zygote.run(exact, stdin_data, cancel, &broker, &tunnels, store,
                            heap ? heap->get() : -1, in ? &in->live : nullptr, workspace.get());
      if (in) {
        ++in->calls;
        // A new process (its workspace was mounted for this call) keeps this call's tree.
        if (in->live && workspace.valid()) in->mcps = mcps_tree;
        if (in->live) {
          in->sandbox = sandbox_key;
          if (!exact.deps_code.empty() && out && !out->report.needs_transpile) in->deps = deps_key;
        } else {
          in->ended = out ? why_ended(*out) : "the server could not run the previous call";
        }
        if (out && out->live) out->live->note = live_note;
      }
      if (!out && not_stored && not_stored->os_error) {
        // The server's disk, not the call: the client hears which error, the log where.
        log::error("run refused: the capsule cache " + capsules_.store().dir() +
                   " could not store its capsule: " + not_stored->message);
        return not_started("the capsule cache could not store this run (" +
                           std::string(std::strerror(not_stored->os_error)) +
                           "); the run did not start");
      }
      if (!out && not_stored) {
        log::error("run refused: no verified capsule: " + not_stored->message);
        return failed_before_run(
            "the run was refused: its capsule could not be stored and "
            "verified (" +
                not_stored->message + ")",
            "internal", 0);
      }
      if (out) {
        out->capsule = c.hash;
        out->duration_ms += making_ms;
      }
      return out;
    };
    if (lang == Language::py) {
      const deps::PipSet all = deps::merge_pip(pip_.config_set, spec.pip);
      if (all.empty()) return run_code(call_req, call_req.code, nullptr);
      // The set's site directory (installed once, then cached). Installing a new set is not
      // counted against the run's time limit.
      if (!pip_.cache) return failed_before_run(pip_.unavailable, "dependencies", 0);
      double ms = 0;
      // The lease keeps gc from removing the set until the run has ended.
      auto lease = prepare_set(
          "pip", nlohmann::json{{"requirements", all.requirements}, {"wheelUrls", all.wheel_urls}},
          progress, &ms, [&](const ProgressFn& watched) {
            return pip_.cache->prepare(
                all,
                [&](const std::string& url) {
                  return fetch_wheel(url, policy.network, resolver_, fetch_limits_);
                },
                watched);
          });
      if (!lease) return failed_before_run(lease.error().message, "dependencies", ms);
      return run_code(call_req, call_req.code, pip_layer_of(lease->key, all));
    }

    std::shared_ptr<const deps::Layer> layer;
    std::string code = call_req.code;
    const deps::Dependencies all = deps::merge_dependencies(npm_.config_dependencies, spec.npm);
    if (!all.empty()) {
      // The set's layer (built once, then cached) and the code's imports pointed at it. Building
      // a new set is not counted against the run's time limit.
      if (!npm_.cache) return failed_before_run(npm_.unavailable, "dependencies", 0);
      double ms = 0;
      auto built =
          prepare_set("npm", nlohmann::json(all), progress, &ms,
                      [&](const ProgressFn& watched) { return npm_.cache->layer(all, watched); });
      if (!built) return failed_before_run(built.error().message, "dependencies", ms);
      layer = std::move(*built);
      auto rewritten = deps::rewrite_imports(call_req.code, layer->modules);
      if (!rewritten) return failed_before_run(rewritten.error().message, "syntax", 0);
      code = std::move(*rewritten);
    } else if (auto rewritten = deps::rewrite_imports(call_req.code, {})) {
      // Without dependencies the runtime's built-ins (fs) are importable: their declarations
      // become lookups too. Imports of anything else stay, for the runtime to refuse.
      code = std::move(*rewritten);
    }
    auto out = run_code(call_req, code, layer);
    if (!out || !out->report.needs_transpile || call_req.transpiled) return out;
    // Plain QuickJS could not parse it (TypeScript, newer syntax, top-level await): transpile
    // with esbuild on the host, then run esbuild's output, a capsule of its own. Time spent
    // counts against the deadline.
    double spent = out->duration_ms;
    auto t0 = std::chrono::steady_clock::now();
    auto js = transpile::esbuild_transform(esbuild_, code, kTranspileTimeoutMs);
    spent += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (!js) return failed_before_run(js.error().message, "syntax", spent);
    ipc::RunRequest again = call_req;
    again.transpiled = true;
    if (call_req.timeout_ms) {
      uint64_t used = uint64_t(spent);
      again.timeout_ms = call_req.timeout_ms > used ? call_req.timeout_ms - used : 1;
    }
    auto second = run_code(again, *js, layer);
    if (second) second->duration_ms += spent;
    return second;
  }

 private:
  // The pip layer of a run_py capsule: the set's key (its directory under the pip cache) and what
  // the call asked for, as canonical JSON.
  static std::shared_ptr<const deps::Layer> pip_layer_of(const std::string& key,
                                                         const deps::PipSet& set) {
    auto l = std::make_shared<deps::Layer>();
    l->key = key;
    l->code =
        nlohmann::json{
            {"set", key}, {"requirements", set.requirements}, {"wheelUrls", set.wheel_urls}}
            .dump();
    return l;
  }
  void set_event_sink(EventSink sink) override { events_ = std::move(sink); }

  // Prepares a call's dependency set with `prepare(progress)`, which reports progress only when
  // it does some work (builds the set, or waits for another call building it): then the set is
  // told to the event sink. Logged when ready after more than a second. `ms`: how long it took.
  template <class Prepare>
  std::invoke_result_t<Prepare&, const ProgressFn&> prepare_set(const char* kind,
                                                                nlohmann::json set,
                                                                const ProgressFn& progress,
                                                                double* ms, Prepare prepare) {
    const auto t0 = std::chrono::steady_clock::now();
    bool worked = false;
    auto r = prepare(ProgressFn([&](double f, const std::string& m) {
      worked = true;
      progress(f, m);
    }));
    *ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (r && *ms > 1000) {
      log::info(std::string(kind) + " dependencies ready in " + std::to_string(int(*ms)) + " ms");
    }
    if (worked && events_) {
      nlohmann::json data{{"kind", kind}, {"set", std::move(set)}, {"ms", int64_t(*ms)}};
      if (!r) data["error"] = r.error().message;
      events_(r ? "info" : "warning", "dependencies", data);
    }
    return r;
  }

  // The set key of a verified pip layer ("" if it holds none: the worker then mounts nothing).
  static std::string pip_set_of(const std::string& layer) {
    auto j = nlohmann::json::parse(layer, nullptr, false);
    return j.is_object() && j.contains("set") && j["set"].is_string() ? j["set"].get<std::string>() : "";
  }

  // The run's capsule: code (and the dependency layer, whose hash the npm cache computed once),
  // entry, runtime and effective policy, hashed; stored by Pending::store().
  Result<Capsules::Pending> capsule_of(Language lang, const ipc::RunRequest& req,
                                       const std::string& code,
                                       const std::shared_ptr<const deps::Layer>& layer,
                                       const nlohmann::json& policy_json) {
    capsule::Manifest m;
    m.language = lang == Language::js ? "js" : "py";
    m.runtime = lang == Language::js ? capsule::Runtime{"quickjs", ONEMCP_QUICKJS_VERSION}
                                     : capsule::Runtime{"cpython", ONEMCP_PYTHON_VERSION};
    m.entry = {req.args, req.env, req.cwd};
    m.policy = policy_json;
    m.layers.push_back({"code", "code", lang == Language::js ? "code.js" : "code.py", "", 0});
    std::vector<std::string_view> bytes{code};
    std::vector<capsule::LayerBytes> owners(1);
    if (layer) {
      // run_js: the npm bundle; run_py: the pip set the run mounts (its key and what it holds).
      if (lang == Language::js) m.layers.push_back({"deps", "deps", "deps.js", layer->sha256, 0});
      else m.layers.push_back({"pip", "deps", "pip.json", layer->sha256, 0});
      bytes.push_back(layer->code);
      // The npm cache keeps the bundle anyway: the capsules in memory share it, not a copy.
      owners.push_back(capsule::LayerBytes(layer, &layer->code));
    }
    return capsules_.prepare(std::move(m), bytes, owners);
  }

  std::unique_ptr<sandbox::Zygote> js_, py_;
  std::string esbuild_;
  broker::Resolver& resolver_;
  broker::FetchLimits fetch_limits_;
  NpmSetup npm_;
  PipSetup pip_;
  Upstreams* upstreams_;
  Capsules& capsules_;
  const bool profile_runs_;
  JsHeaps heaps_{kMaxHeapBytes};
  EventSink events_;
};

}  // namespace

Result<std::string> fetch_wheel(const std::string& url, const policy::NetworkPolicy& policy,
                                broker::Resolver& resolver, const broker::FetchLimits& limits) {
  policy::NetworkPolicy network = policy;
  network.max_body_bytes = deps::kMaxWheelBytes;
  broker::Fetcher fetcher(network, resolver, limits);
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

Result<std::unique_ptr<RunBackend>> start_worker_backend(const WorkerPaths& paths,
                                                         sandbox::CgroupManager* cgroups,
                                                         broker::Resolver& resolver,
                                                         broker::FetchLimits fetch_limits,
                                                         Capsules& capsules, NpmSetup npm,
                                                         Upstreams* upstreams, PipSetup pip) {
  std::vector<std::string> args;
  if (!paths.sandbox) args.push_back("--no-sandbox");
  for (const auto& w : paths.writable_roots) args.push_back("--writable=" + w);
  for (const auto& m : paths.mounts) {
    args.insert(args.end(), {"--mount", m.writable ? "rw" : "ro", m.host, m.path});
  }
  if (!paths.mcps_root.empty()) args.insert(args.end(), {"--mcps-root", paths.mcps_root});
  auto js = sandbox::Zygote::start({paths.js_worker, args, worker_env()}, cgroups);
  if (!js) return js.error();
  std::vector<std::string> py_args = args;
  if (!paths.pip_root.empty()) py_args.insert(py_args.end(), {"--pip-root", paths.pip_root});
  std::vector<std::string> py_env = worker_env();
  if (!paths.python_preload.empty()) {
    std::string names;
    for (const auto& m : paths.python_preload) names += (names.empty() ? "" : ",") + m;
    py_env.push_back("ONEMCP_PYTHON_PRELOAD=" + names);  // read by the runner (runner_source.h)
  }
  auto py = sandbox::Zygote::start({paths.py_worker, py_args, py_env}, cgroups);
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
  return std::unique_ptr<RunBackend>(new WorkerBackend(
      std::move(*js), std::move(*py), paths.esbuild, resolver, std::move(fetch_limits),
      std::move(npm), upstreams, capsules, std::move(pip), paths.profile_runs));
}

}  // namespace onemcp::server
