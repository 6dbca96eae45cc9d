// runtimes/js/js_runtime.h — the QuickJS runtime of 1mcp-js-worker: one interpreter (with the
// prelude evaluated) built once in the zygote; every run is a fork of that pristine state.
// Thread-safety: single-threaded; lives in the zygote and, copied by fork, in each run.
#pragma once

#include <quickjs.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "ipc/wire.h"
#include "worker/zygote.h"

namespace onemcp::js {

class JsRuntime final : public worker::Runtime {
 public:
  JsRuntime() = default;
  JsRuntime(const JsRuntime&) = delete;
  JsRuntime& operator=(const JsRuntime&) = delete;
  // The zygote never tears the interpreter down: it dies with the process.
  ~JsRuntime() override = default;

  // Creates the runtime and context and evaluates the prelude. Called once, before serving.
  Status init() override;

  // In the forked child: runs one request to completion and returns the exit code.
  int run(const ipc::RunRequest& request) override;

  // In the forked child: a fresh seed for Math.random, which would otherwise repeat the
  // zygote's sequence in every run.
  void after_fork_child() override;
  void warm_up() override;

  // C callbacks below reach the instance through this pointer (one runtime per process).
  static JsRuntime* instance() { return instance_; }

  // Host-function helpers (public for the C trampolines in js_runtime.cc).
  [[noreturn]] void exit_now(int code);
  bool past_backstop();
  void on_rejection(JSValueConst promise, JSValueConst reason, bool handled);
  JSValue promise_state(JSValueConst value);  // undefined, or [state, result]
  bool is_promise(JSValueConst value) const;
  void note_import_refused() { import_refused_ = true; }
  // The module loader's part for Node's built-in modules the prelude implements ("fs",
  // "node:fs/promises", ...): a module whose exports are the prelude's namespace, or nullptr for
  // any other name (then `*failed` says whether an exception is pending).
  JSModuleDef* builtin_module(const char* name, bool* failed);
  int init_builtin_module(JSContext* ctx, JSModuleDef* m);  // its JSModuleInitFunc
  bool has_dependencies() const { return has_dependencies_; }
  // Sends one request frame to the network broker. Empty on success, else why not (the text
  // the prelude puts after "fetch failed: ").
  std::string broker_send(std::string_view payload);

 private:
  enum class Mode { script, async_body, module };

  Status make_interpreter(const JSMallocFunctions* mf);  // nullptr: the C library's malloc
  void reseed();
  int run_checked(const ipc::RunRequest& request);
  int call_setup(const ipc::RunRequest& request);  // -1, or the run's exit code
  // HeapMode::make: a new interpreter in the arena of kHeapFd, with the dependency layer loaded.
  int make_heap(const ipc::RunRequest& request);
  // HeapMode::use: continue with the interpreter of the heap on kHeapFd.
  Status adopt_heap();
  int fail_internal(const std::string& message);
  int compile(const ipc::RunRequest& request, JSValue* compiled, Mode* mode);
  // Evaluates the npm dependency layer and installs require(). -1, or the run's exit code.
  int load_dependencies(const std::string& code);
  // Runs microtasks and timers until nothing is pending. `tracking`: the completion value is a
  // promise being awaited; `top_level_await`: it is the async wrapper of top-level-await code.
  int event_loop(bool tracking, bool top_level_await);
  // Network broker channel (fd ipc::kBrokerFd): true while the prelude awaits answers.
  bool requests_pending();
  // Delivers one buffered answer or waits for bytes until `until` (CLOCK_MONOTONIC ns; 0: do
  // not wait, INT64_MAX: no limit). Returns -1, or the run's exit code when a hook failed.
  int service_broker(int64_t until);
  void close_broker(const char* reason);
  int fail_uncaught(JSValue exception, const char* prefix);
  int fail_timeout();
  int fail_syntax(const std::string& code, JSValue error);
  int finish(int code);
  std::string inspect(JSValueConst value);
  JSValue call_hook(const char* name, int argc, JSValueConst* argv);
  // Finds where the context keeps Math.random's state (quickjs.h has no API for it).
  Status find_random_state();

  static inline JsRuntime* instance_ = nullptr;

  JSRuntime* rt_ = nullptr;
  JSContext* ctx_ = nullptr;
  JSValue hooks_ = JS_UNDEFINED;     // object returned by the prelude
  JSClassID promise_class_ = 0;      // discovered at init (not exported by quickjs.h)
  size_t baseline_heap_ = 0;         // JS heap in use after init; the run's budget comes on top
  size_t random_state_offset_ = 0;   // byte offset of Math.random's state in the JSContext
  int64_t backstop_ns_ = 0;          // CLOCK_MONOTONIC deadline of the interrupt handler
  bool timed_out_ = false;
  bool live_ = false;                // the call is one of a session's live interpreter
  bool import_refused_ = false;      // the module loader was asked for an import
  bool has_dependencies_ = false;    // the run has an npm dependency layer
  int broker_fd_ = -1;               // the broker channel, -1 when the run has none (any more)
  std::string broker_closed_;        // why the channel closed during the run, if it did
  ipc::FrameReader broker_in_;       // received bytes not yet delivered as frames
  bool broker_used_ = false;         // a request went out: answers may be pending
  ipc::ChildReport report_;
  struct Rejection {
    JSValue promise;
    JSValue reason;
  };
  std::vector<Rejection> rejections_;  // unhandled so far, in order
};

}  // namespace onemcp::js
