// worker/jail.h — the kernel sandbox as seen from inside a worker: namespaces, the minimal
// read-only root, and the per-run lockdown (uid drop, no_new_privs, Landlock, seccomp).
//
// Layout: the worker process (outer) unshares user+net+mount+pid namespaces, lets the supervisor
// write its uid/gid maps, builds the read-only root, and forks the zygote proper (inner), which is
// pid 1 of its own pid namespace. For every run the inner zygote creates a fresh pid namespace
// (unshare + fork, so glibc's thread state stays right), and the run slot (before its request)
// unshares fresh mount, ipc and uts namespaces, mounts its own /proc, /tmp and /out, and pivots
// into the root.
// Thread-safety: single-threaded processes only (unshare(CLONE_NEWUSER) refuses threaded callers).
#pragma once

#include <string>

#include <vector>

#include "base/result.h"
#include "ipc/wire.h"

namespace onemcp::worker {

inline constexpr const char* kRootDir = "/tmp";  // where the sandbox root is built (private mount ns)
inline constexpr uid_t kRunUid = 1000;           // inner uid/gid of a run (never 0)
inline constexpr uint64_t kTmpBytes = 64ull << 20;
inline constexpr uint64_t kTmpInodes = 4096;
// Where a run with pip dependencies sees its set's site directory (read-only).
inline constexpr const char* kPipSiteDir = "/deps/site";
// Where the zygote's root holds every set (read-only); each run detaches it before its code runs.
inline constexpr const char* kPipSetsDir = "/deps/sets";

// A pip dependency set's key as the supervisor sends it: 64 lowercase hex digits.
bool valid_pip_key(const std::string& key);

// Outer worker process: namespaces + id maps (handshake on the control fd) + root filesystem.
// Returns in the inner zygote; the outer process never returns (it waits and exits).
// `writable_roots`: the server's writable paths; each gets a mount point in the root, and a run
// mounts a tmpfs on those that hold one of its own writable paths.
// `pip_root`: the host directory of the pip dependency sets (deps/pip.h), or empty. It is mounted
// read-only at kPipSetsDir; a run binds its own set's site directory at kPipSiteDir and detaches
// kPipSetsDir, so it never sees another set.
struct HostMount {
  std::string host, path;
  bool writable = false;
};
Status jail_enter_zygote(int control_fd, const std::vector<std::string>& writable_roots,
                         const std::vector<HostMount>& mounts, const std::string& pip_root);

// Inner zygote, around each fork: a fresh pid namespace for the next child only.
Status jail_before_fork();
Status jail_after_fork_parent();

// Run slot, before its request: fresh mount/ipc/uts namespaces, the run's own /proc, a fresh
// tmpfs on each writable root, pivot_root into the read-only root.
Status jail_enter_slot();

// Run child, after jail_enter_slot, once its request is known and before its fds are arranged:
// detaches the writable roots the run does not use, makes its writable paths below them, binds
// its pip site directory (read-only, at kPipSiteDir) and detaches every other set.
Status jail_enter_run(const ipc::RunRequest& req);

// Run child, last step before user code: drop to kRunUid, no_new_privs, Landlock, seccomp.
// With `relay` the run may additionally connect to 127.0.0.1:ipc::kProxyPort (its proxy).
Status jail_lockdown(const ipc::RunRequest& req, bool relay);

// The relay process of a run: the same lockdown, with no filesystem access at all (it only
// accepts on its listening socket and talks on the broker fd, both already open).
Status jail_lockdown_relay();

// Compiles the seccomp program once (in the zygote).
Status jail_prepare_filters();

}  // namespace onemcp::worker
