// worker/zygote.h — the zygote loop shared by the runtime workers (1mcp-js-worker, 1mcp-py-worker).
//
// A worker process is started by the supervisor with execve, a minimal environment, its end of
// the control socket on fd 3 and its arguments on fd 4 (see ipc/wire.h). It enters its namespaces,
// initialises its interpreter once, then forks one child per slot request: a run slot, made ahead
// of the run's request (ipc::kRunFdCount), which every child receives only after it was forked and
// placed in its cgroups. Every child starts from the same pristine state. The zygote itself never
// sees request contents: only the forked child reads the request memfd.
// Thread-safety: single-threaded by design (fork from a threaded process is unsafe, and later
// sandbox layers need unshare() which fails in threaded processes).
#pragma once

#include "ipc/wire.h"

namespace onemcp::worker {

inline constexpr int kControlFd = 3;

class Runtime {
 public:
  virtual ~Runtime() = default;
  // Initialises the interpreter, once, after the zygote entered its namespaces: whatever the
  // interpreter caches at start-up (e.g. platform's uname, with the hostname) is the sandbox's.
  virtual Status init() = 0;
  // Around fork() in the zygote (CPython needs PyOS_BeforeFork/AfterFork_*). after_fork_child
  // runs in the slot once it is in its cgroups, before its request (and its sandbox) exist.
  virtual void before_fork() {}
  virtual void after_fork_parent() {}
  virtual void after_fork_child() {}
  // In the slot, after after_fork_child, only while its request has not arrived yet: runs the
  // per-run path once on a sample, so the pages it copies or allocates are taken before the call
  // instead of during it (a slot whose request is already waiting skips it).
  virtual void warm_up() {}
  // Whether runs asking for a relay (ipc::RunRequest::relay()) get one. Python reaches the
  // network and upstream tools only through it; JS talks on its broker fd directly.
  virtual bool uses_relay() const { return false; }
  // In the forked child: fds 0/1/2 are the run's stdin/stdout/stderr, fd 3 is the result pipe
  // (write one ipc::ChildReport there). Returns the process exit code.
  virtual int run(const ipc::RunRequest& request) = 0;
};

// Serves run requests from the control socket until the supervisor closes it. Returns the
// process exit code. Arguments (fd 4): `--no-sandbox` turns the kernel sandbox off (development
// only); `--writable=PATH`, `--mount ro|rw HOST PATH`, `--pip-root DIR` and `--mcps-root DIR` shape
// the sandbox root.
int zygote_main(Runtime& runtime);

// In a run: the directory of its pip dependency set (ipc::RunRequest::pip_key) to put first on
// sys.path, or empty when it has none.
std::string pip_site_dir(const ipc::RunRequest& request);

// Writes the child report to the result fd (best effort), with the run's steps when its request
// asked to profile.
void write_report(const ipc::ChildReport& report);

// In a live run (ipc::RunRequest::live): the process exits after the report it writes next
// instead of waiting for another call (the report then does not say it is kept).
void leaving();

// In a run: notes that the step `name` (a string literal) just ended, for the per-step breakdown
// (ipc::RunRequest::profile). Allocates nothing.
void mark_step(const char* name);

}  // namespace onemcp::worker
