// worker/jail.h — the kernel sandbox as seen from inside a worker: namespaces, the minimal
// read-only root, rlimits and the per-run lockdown (uid drop, no_new_privs, Landlock, seccomp).
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
inline constexpr uid_t kRunUid = ipc::kRunUid;   // inner uid/gid of a run (never 0)
inline constexpr uint64_t kTmpBytes = 64ull << 20;
inline constexpr uint64_t kTmpInodes = 4096;
// Where a run with pip dependencies sees its set's site directory (read-only).
inline constexpr const char* kPipSiteDir = "/deps/site";
// Where the zygote's root holds every set (read-only); each run detaches it before its code runs.
inline constexpr const char* kPipSetsDir = "/deps/sets";

// Where the zygote's root holds every /mcps tree (read-only); each run binds its own at
// ipc::kMcpsDir and detaches this before its code runs.
inline constexpr const char* kMcpsTreesDir = "/deps/mcps";

// A pip dependency set's or an /mcps tree's key as the supervisor sends it: 64 lowercase hex
// digits.
bool valid_pip_key(const std::string& key);
inline bool valid_mcps_key(const std::string& key) { return valid_pip_key(key); }

// Outer worker process: namespaces + id maps (handshake on the control fd) + root filesystem.
// Returns in the inner zygote; the outer process never returns (it waits and exits).
// `writable_roots`: the server's writable paths; each gets a mount point in the root, and a run
// mounts a tmpfs on those that hold one of its own writable paths.
// `pip_root`: the host directory of the pip dependency sets (deps/pip.h), or empty. It is mounted
// read-only at kPipSetsDir; a run binds its own set's site directory at kPipSiteDir and detaches
// kPipSetsDir, so it never sees another set. `mcps_root`: the same for the /mcps trees
// (server/mcps_tree.h) at kMcpsTreesDir, a run's own bound at ipc::kMcpsDir.
struct HostMount {
  std::string host, path;
  bool writable = false;
};
Status jail_enter_zygote(int control_fd, const std::vector<std::string>& writable_roots,
                         const std::vector<HostMount>& mounts, const std::string& pip_root,
                         const std::string& mcps_root);

// Inner zygote, around each fork: a fresh pid namespace for the next child only.
Status jail_before_fork();
Status jail_after_fork_parent();

// A run's jail is one list of named steps (kJailSteps), in the manner of nsjail's containProc,
// each the work of one kernel facility (jail_namespaces.cc, jail_mounts.cc, jail_rlimits.cc,
// jail_lockdown.cc with sandbox/child's Landlock and seccomp). The run's process applies them
// phase by phase, as what they depend on becomes known:
//   slot      before its request: fresh mount/ipc/uts namespaces; its own /proc and a fresh tmpfs
//             on each writable root; pivot_root into the read-only root;
//   request   once the request is read: the writable roots it does not use detached, its
//             writable paths made; its pip site directory bound (read-only, at kPipSiteDir) and
//             every other set detached; its /mcps tree bound the same way (read-only, at
//             ipc::kMcpsDir); the session's workspace mounted at /work;
//   limits    after its fds are in place: rlimits (also without the sandbox);
//   lockdown  last before its code: the run uid, no_new_privs, Landlock, seccomp.
struct RunJail {
  const ipc::RunRequest* request = nullptr;  // null in the slot phase
  bool relay = false;                        // may connect to 127.0.0.1:ipc::kProxyPort
  uint64_t vm_base = 0;                      // the zygote's address-space size (RLIMIT_AS base)
  bool sandbox = true;                       // false: only the steps that apply without it
  int workspace_fd = -1;  // a detached mount of the session's workspace (RunRequest::workspace)
};
enum class JailPhase { slot, request, limits, lockdown };
struct JailStep {
  JailPhase phase;
  const char* name;  // as the run's profile shows it (mark_step)
  bool without_sandbox;
  Status (*apply)(const RunJail& run);
};
extern const std::vector<JailStep> kJailSteps;

// Applies the steps of `phase` in order, marking each; the first failure names its step.
Status apply_jail(JailPhase phase, const RunJail& run);

// The relay process of a run: the same lockdown, with no filesystem access at all (it only
// accepts on its listening socket and talks on the broker fd, both already open).
Status jail_lockdown_relay();

// Compiles the seccomp program once (in the zygote).
Status jail_prepare_filters();

}  // namespace onemcp::worker
