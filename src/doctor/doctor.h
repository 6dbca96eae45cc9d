// doctor/doctor.h — `1mcp doctor`: whether this host offers every kernel feature the sandbox
// needs, and for each one missing, what to change on the host. Split in two: probe_host() does
// the I/O (reads /proc and /sys, tries the features in forked children, as the workers would use
// them); judge() turns what it found into findings without any I/O, so every verdict and piece
// of advice is tested on made-up hosts.
// Thread-safety: probe_host() forks; call it from a single-threaded process (unshare(NEWUSER)
// fails in a threaded one). The rest are pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "sandbox/cgroup.h"

namespace onemcp::doctor {

// What trying one feature gave: 0 it worked, an errno when it failed, kNotTried when a step it
// depends on failed first.
inline constexpr int kNotTried = -1;

struct Attempt {
  int error = kNotTried;
  bool ok() const { return error == 0; }
};

// The namespaces a run gets besides the user namespace, in this order.
inline constexpr const char* kNamespaceNames[] = {"mount", "pid", "network", "ipc", "uts"};
// The new mount API's system calls, in this order.
inline constexpr const char* kMountApiCalls[] = {"fsopen", "fsconfig", "fsmount", "move_mount",
                                                 "open_tree"};

struct Rlimit {
  const char* name;             // "RLIMIT_NOFILE"
  uint64_t soft = 0, hard = 0;  // UINT64_MAX: unlimited
};

struct HostFacts {
  std::string kernel;  // "6.18.0 x86_64"
  uint32_t uid = 0;
  uint64_t cap_eff = 0;  // the capability bits the server has (CapEff of /proc/self/status)

  // /proc/sys values; nullopt where the file does not exist on this kernel.
  std::optional<long> max_user_namespaces;        // user.max_user_namespaces
  std::optional<long> unprivileged_userns_clone;  // kernel.unprivileged_userns_clone (Debian)
  std::optional<long> apparmor_restrict_userns;   // kernel.apparmor_restrict_unprivileged_userns

  Attempt userns;         // unshare(CLONE_NEWUSER)
  Attempt id_map;         // writing "0 <base> 65536" to its uid_map and gid_map
  Attempt namespaces[5];  // kNamespaceNames, each unshared inside that user namespace
  Attempt proc_mount;     // a fresh proc (hidepid=2) by pid 1 of the new pid namespace
  Attempt mount_api[5];   // kMountApiCalls, inside the new mount namespace

  std::vector<sandbox::CgroupHierarchy> cgroup_hierarchies;  // from /proc/self/{cgroup,mountinfo}
  std::string cgroup_error;     // CgroupManager::create()'s error; empty when it worked
  std::string cgroup_describe;  // its describe()
  bool has_memory = false, has_pids = false, has_cpu = false, has_freezer = false;
  std::string scope_error;  // making a run's cgroup scope with limits; empty when it worked

  int landlock_abi = 0;                           // 0: none
  std::optional<std::string> lsm;                 // /sys/kernel/security/lsm when readable
  std::optional<std::string> kernel_cmdline_lsm;  // "lsm=..." of /proc/cmdline, if any

  std::string seccomp_error;  // compiling and loading the run's filter; empty when it worked
  Attempt seccomp_denies;     // ptrace under the filter: 0 when it failed with EPERM as it must

  Attempt rlimits;  // setting the limits a run gets (CORE, NOFILE, FSIZE, AS, CPU)
  // Making a session's workspace (sandbox/workspace.h: a detached tmpfs, cloned for a process);
  // empty when it worked.
  std::string workspace_error;
  std::vector<Rlimit> server_rlimits;  // NOFILE, NPROC, AS, FSIZE, CPU of the server itself
};

enum class Verdict { kOk, kWarn, kMissing };  // kMissing: `1mcp serve` cannot sandbox runs

struct Finding {
  std::string feature;  // "user namespaces"
  Verdict verdict = Verdict::kOk;
  std::string detail;  // what was found
  std::string fix;     // what to change on the host; empty when nothing is to be done
};

// Pure parsers of the files probe_host() reads.
// The CapEff bits of /proc/<pid>/status text.
Result<uint64_t> parse_cap_eff(std::string_view proc_status);
// A /proc/sys integer ("1\n").
std::optional<long> parse_sysctl(std::string_view text);
// The "lsm=" value of a kernel command line, if it has one.
std::optional<std::string> cmdline_lsm(std::string_view cmdline);
// Whether `name` is one of the comma-separated `list` ("lockdown,capability,landlock,yama").
bool lsm_listed(std::string_view list, std::string_view name);

// Capability numbers (linux/capability.h) the server needs to map a range of ids.
inline constexpr int kCapSetgid = 6, kCapSetuid = 7, kCapSysAdmin = 21;

// The findings, in the order they are shown; pure.
std::vector<Finding> judge(const HostFacts& facts);
// Whether any finding is kMissing.
bool any_missing(const std::vector<Finding>& findings);
// The report `1mcp doctor` prints.
std::string render(const HostFacts& facts, const std::vector<Finding>& findings);

// Reads and tries everything on the running host (real kernel). Leaves nothing behind: probes
// run in children that exit, the cgroups made are removed.
HostFacts probe_host();

}  // namespace onemcp::doctor
