// doctor/checks.cc — the pure half of `1mcp doctor`: parsing what probe_host() read, and the
// verdict and advice for each feature.
#include <algorithm>
#include <cinttypes>
#include <cstring>
#include <sstream>

#include "doctor/doctor.h"

namespace onemcp::doctor {
namespace {

std::string err_text(int e) { return e == kNotTried ? "not tried" : std::strerror(e); }

bool has_cap(uint64_t caps, int cap) { return (caps >> cap) & 1; }

std::string yes_no(std::optional<long> v) { return v ? std::to_string(*v) : "absent"; }

// In a container the host's seccomp profile and capabilities are usually why a namespace or a
// mount call fails; said with every such fix.
constexpr const char* kContainerHint =
    "In a container: run it with --privileged, or with --cap-add SYS_ADMIN and a seccomp profile "
    "that allows unshare, mount and the mount API (docker: --security-opt seccomp=unconfined "
    "--security-opt apparmor=unconfined).";

Finding user_namespaces(const HostFacts& f) {
  Finding r{"user namespaces", Verdict::kOk, "", ""};
  std::string sysctls = "user.max_user_namespaces=" + yes_no(f.max_user_namespaces);
  if (f.unprivileged_userns_clone)
    sysctls += ", kernel.unprivileged_userns_clone=" + yes_no(f.unprivileged_userns_clone);
  if (f.apparmor_restrict_userns)
    sysctls +=
        ", kernel.apparmor_restrict_unprivileged_userns=" + yes_no(f.apparmor_restrict_userns);
  if (f.userns.ok()) {
    r.detail = "unshare(CLONE_NEWUSER) works (" + sysctls + ")";
    return r;
  }
  r.verdict = Verdict::kMissing;
  r.detail = "unshare(CLONE_NEWUSER) failed: " + err_text(f.userns.error) + " (" + sysctls + ")";
  if (f.max_user_namespaces && *f.max_user_namespaces == 0) {
    r.fix =
        "Allow user namespaces: `sysctl -w user.max_user_namespaces=15000`, and keep it in "
        "/etc/sysctl.d/90-1mcp.conf.";
  } else if (f.userns.error == ENOSPC) {
    r.fix =
        "The limit of user namespaces is reached: raise user.max_user_namespaces (`sysctl -w "
        "user.max_user_namespaces=15000`).";
  } else if (f.userns.error == ENOSYS || f.userns.error == EINVAL) {
    r.fix = "The kernel lacks user namespaces: use one built with CONFIG_USER_NS=y.";
  } else if (f.uid != 0 && f.unprivileged_userns_clone && *f.unprivileged_userns_clone == 0) {
    r.fix =
        "Run the server as root, or allow unprivileged user namespaces: `sysctl -w "
        "kernel.unprivileged_userns_clone=1`.";
  } else {
    r.fix = std::string("Run the server as root. ") + kContainerHint;
  }
  return r;
}

Finding id_map(const HostFacts& f) {
  Finding r{"uid/gid map of a range", Verdict::kOk, "", ""};
  const bool caps = has_cap(f.cap_eff, kCapSetuid) && has_cap(f.cap_eff, kCapSetgid) &&
                    has_cap(f.cap_eff, kCapSysAdmin);
  char bits[32];
  std::snprintf(bits, sizeof bits, "%016" PRIx64, f.cap_eff);
  const std::string who = "uid " + std::to_string(f.uid) + ", CapEff " + bits + ": " +
                          (caps ? "has" : "lacks") + " CAP_SETUID, CAP_SETGID, CAP_SYS_ADMIN";
  if (f.id_map.ok()) {
    r.detail = "65536 ids mapped to an unused host range (" + who + ")";
    return r;
  }
  r.verdict = Verdict::kMissing;
  r.detail = "writing uid_map/gid_map failed: " + err_text(f.id_map.error) + " (" + who + ")";
  r.fix =
      "The server maps a range of ids into the sandbox: run it as root, or give it "
      "CAP_SETUID, CAP_SETGID and CAP_SYS_ADMIN (systemd: AmbientCapabilities=CAP_SETUID "
      "CAP_SETGID CAP_SYS_ADMIN).";
  return r;
}

Finding one_namespace(const HostFacts& f, size_t i) {
  static constexpr const char* kConfig[] = {"CONFIG_NAMESPACES", "CONFIG_PID_NS", "CONFIG_NET_NS",
                                            "CONFIG_IPC_NS", "CONFIG_UTS_NS"};
  Finding r{std::string(kNamespaceNames[i]) + " namespace", Verdict::kOk, "", ""};
  const Attempt& a = f.namespaces[i];
  if (a.ok()) {
    r.detail = "unshare works inside the user namespace";
    return r;
  }
  r.verdict = Verdict::kMissing;
  if (a.error == kNotTried) {
    r.detail = "not tried: it is made inside the user namespace and its id map (above)";
    return r;
  }
  r.detail = "unshare failed: " + err_text(a.error);
  r.fix = (a.error == EINVAL
               ? "The kernel lacks it: use one built with " + std::string(kConfig[i]) + "=y."
               : std::string(kContainerHint));
  return r;
}

Finding proc_mount(const HostFacts& f) {
  Finding r{"/proc in the pid namespace", Verdict::kOk, "", ""};
  if (f.proc_mount.ok()) {
    r.detail = "a fresh proc (hidepid=2) mounts";
    return r;
  }
  r.verdict = Verdict::kMissing;
  if (f.proc_mount.error == kNotTried) {
    r.detail = "not tried: the mount or pid namespace is missing (above)";
    return r;
  }
  r.detail = "mounting proc failed: " + err_text(f.proc_mount.error);
  r.fix = std::string(
              "A proc can only be mounted where the host's /proc is not partly covered: "
              "in a container, unmask it (docker: --security-opt systempaths=unconfined). ") +
          kContainerHint;
  return r;
}

Finding mount_api(const HostFacts& f) {
  Finding r{"new mount API", Verdict::kOk, "", ""};
  std::string failed, ok;
  bool enosys = false, tried = false;
  for (size_t i = 0; i < std::size(kMountApiCalls); ++i) {
    const Attempt& a = f.mount_api[i];
    if (a.error != kNotTried) tried = true;
    if (a.ok()) {
      ok += (ok.empty() ? "" : ", ") + std::string(kMountApiCalls[i]);
    } else {
      failed +=
          (failed.empty() ? "" : ", ") + std::string(kMountApiCalls[i]) + ": " + err_text(a.error);
      enosys |= a.error == ENOSYS;
    }
  }
  if (failed.empty()) {
    r.detail = ok + " work";
    return r;
  }
  r.verdict = Verdict::kMissing;
  if (!tried) {
    r.detail = "not tried: the mount namespace is missing (above)";
    return r;
  }
  r.detail = failed;
  r.fix = enosys
              ? "The kernel is too old: fsopen, fsmount, move_mount and open_tree need Linux 5.2 "
                "or later."
              : std::string(kContainerHint);
  return r;
}

std::string hierarchies(const std::vector<sandbox::CgroupHierarchy>& hs) {
  std::string out;
  for (const auto& h : hs) {
    out +=
        (out.empty() ? "" : "; ") + std::string("v") + std::to_string(h.version) + " " + h.own_dir;
    if (!h.controllers.empty()) {
      out += " (";
      for (size_t i = 0; i < h.controllers.size(); ++i) out += (i ? "," : "") + h.controllers[i];
      out += ")";
    }
  }
  return out.empty() ? "none found" : out;
}

// Whether the controllers would come from cgroup v2: no v1 hierarchy carries one.
bool v2_only(const std::vector<sandbox::CgroupHierarchy>& hs) {
  for (const auto& h : hs) {
    if (h.version == 1) return false;
  }
  return true;
}

std::string cgroup_fix(const HostFacts& f, const std::string& what) {
  if (v2_only(f.cgroup_hierarchies)) {
    return "The server needs " + what +
           " in a cgroup it may manage. Under systemd, run it as a service with Delegate=yes (or "
           "`systemd-run -p Delegate=yes --scope 1mcp serve ...`); otherwise enable the "
           "controllers for its cgroup: `echo +memory +pids +cpu > "
           "<parent>/cgroup.subtree_control`. "
           "In a container: give it a cgroup namespace of its own with /sys/fs/cgroup mounted "
           "read-write (docker: --cgroupns=private).";
  }
  return "The server needs " + what +
         " (cgroup v1 hierarchies mounted under /sys/fs/cgroup, its own cgroup in each writable by "
         "it: run it as root, or make them its own). If the kernel "
         "disables the memory controller, add cgroup_enable=memory to the kernel command line; "
         "or boot with systemd.unified_cgroup_hierarchy=1 and delegate (Delegate=yes).";
}

Finding cgroups(const HostFacts& f) {
  Finding r{"cgroups", Verdict::kOk, "", ""};
  const std::string found = "found: " + hierarchies(f.cgroup_hierarchies);
  if (!f.cgroup_error.empty()) {
    r.verdict = Verdict::kMissing;
    r.detail = f.cgroup_error + " (" + found + ")";
    r.fix = cgroup_fix(f, "the memory and pids controllers");
    return r;
  }
  std::string missing;
  if (!f.has_memory) missing += "memory";
  if (!f.has_pids) missing += std::string(missing.empty() ? "" : ", ") + "pids";
  std::string optional;
  if (!f.has_cpu) optional += "cpu";
  if (!f.has_freezer) optional += std::string(optional.empty() ? "" : ", ") + "freezer";
  r.detail = f.cgroup_describe + " (" + found + ")";
  if (!missing.empty()) {
    r.verdict = Verdict::kMissing;
    r.detail += "; missing: " + missing;
    r.fix = cgroup_fix(
        f, "the " + missing + " controller" + (missing.find(',') != std::string::npos ? "s" : ""));
  } else if (!optional.empty()) {
    r.verdict = Verdict::kWarn;
    r.detail += "; without: " + optional +
                (f.has_freezer ? " (runs share the CPU unweighted)"
                               : " (a run is SIGKILLed without being frozen first)");
    r.fix = cgroup_fix(f, "the cpu controller and a freezer");
  }
  return r;
}

Finding cgroup_scope(const HostFacts& f) {
  Finding r{"cgroup of a run", Verdict::kOk, "made one with memory, pids and cpu limits", ""};
  if (!f.cgroup_error.empty()) {
    r.verdict = Verdict::kMissing;
    r.detail = "not tried: no usable cgroup (above)";
  } else if (!f.scope_error.empty()) {
    r.verdict = Verdict::kMissing;
    r.detail = f.scope_error;
    r.fix = cgroup_fix(f, "cgroups below its own it can create and write limits to");
  }
  return r;
}

Finding landlock(const HostFacts& f) {
  Finding r{"Landlock", Verdict::kOk, "", ""};
  if (f.landlock_abi > 0) {
    r.detail = "ABI " + std::to_string(f.landlock_abi);
    if (f.landlock_abi < 4) {
      r.verdict = Verdict::kWarn;
      r.detail += " (TCP connect/bind rules need ABI 4, Linux 6.7)";
      r.fix =
          "A newer kernel (6.7 or later) also restricts TCP ports and, from 6.12, signals "
          "and abstract sockets.";
    }
    return r;
  }
  // Optional: the mount namespace and read-only root still confine files; Landlock is a second
  // layer. `serve` logs "landlock unavailable" and runs.
  r.verdict = Verdict::kWarn;
  r.detail = "not available";
  if (f.lsm) r.detail += " (active LSMs: " + *f.lsm + ")";
  if (f.lsm && !lsm_listed(*f.lsm, "landlock")) {
    r.fix =
        "Landlock is built in but not enabled: add it to the LSMs on the kernel command line, "
        "lsm=landlock," +
        *f.lsm + (f.kernel_cmdline_lsm ? " (now lsm=" + *f.kernel_cmdline_lsm + ")" : "") +
        ", then reboot.";
  } else {
    r.fix =
        "Use a kernel of 5.13 or later built with CONFIG_SECURITY_LANDLOCK=y and landlock in "
        "CONFIG_LSM (or lsm=landlock,... on the kernel command line).";
  }
  return r;
}

Finding seccomp(const HostFacts& f) {
  Finding r{"seccomp filter", Verdict::kOk, "the run's filter loads and denies ptrace (EPERM)", ""};
  if (f.seccomp_error.empty() && f.seccomp_denies.ok()) return r;
  r.verdict = Verdict::kMissing;
  r.detail = !f.seccomp_error.empty() ? f.seccomp_error
                                      : "the filter loaded but ptrace was not denied: " +
                                            err_text(f.seccomp_denies.error);
  r.fix = "Use a kernel built with CONFIG_SECCOMP=y and CONFIG_SECCOMP_FILTER=y.";
  return r;
}

std::string limit_text(uint64_t v) { return v == UINT64_MAX ? "unlimited" : std::to_string(v); }

Finding rlimits(const HostFacts& f) {
  Finding r{"rlimits", Verdict::kOk, "", ""};
  if (!f.rlimits.ok()) {
    r.verdict = Verdict::kMissing;
    r.detail = "setting a run's limits failed: " + err_text(f.rlimits.error);
    r.fix =
        "setrlimit must work for the server's children (a seccomp profile of the container may "
        "block prlimit64).";
    return r;
  }
  r.detail = "a run's limits can be set";
  std::string low;
  for (const auto& l : f.server_rlimits) {
    r.detail += std::string(r.detail.find(';') == std::string::npos ? "; server: " : ", ") +
                l.name + " " + limit_text(l.soft) + "/" + limit_text(l.hard);
    if (std::strcmp(l.name, "RLIMIT_NOFILE") == 0 && l.hard < 4096) low = "LimitNOFILE=65536";
  }
  if (!low.empty()) {
    r.verdict = Verdict::kWarn;
    r.fix =
        "The server holds a descriptor per connection, upstream and run: raise its open-files "
        "limit (systemd: " +
        low + "; a shell: `ulimit -n 65536`).";
  }
  return r;
}

Finding workspaces(const HostFacts& f) {
  Finding r{"session workspaces", Verdict::kOk, "a quota'd tmpfs can be made and cloned", ""};
  if (f.workspace_error.empty()) return r;
  // Optional: only sessions (session_create) need them; every other run works without.
  r.verdict = Verdict::kWarn;
  r.detail = f.workspace_error;
  r.fix =
      "session_create will fail: a session's workspace is a detached tmpfs cloned for each of its "
      "interpreters (open_tree of an fsmount, in Linux 6.15 and later). Upgrade the kernel, or "
      "turn sessions off (config sessions.enabled: false).";
  return r;
}

const char* verdict_text(Verdict v) {
  switch (v) {
    case Verdict::kOk:
      return "OK";
    case Verdict::kWarn:
      return "WARN";
    case Verdict::kMissing:
      return "MISSING";
  }
  return "?";
}

}  // namespace

Result<uint64_t> parse_cap_eff(std::string_view status) {
  constexpr std::string_view kKey = "\nCapEff:";
  size_t at = status.find(kKey);
  if (at == std::string_view::npos) {
    if (status.substr(0, kKey.size() - 1) != kKey.substr(1)) return make_error("no CapEff line");
    at = 0;
  } else {
    at += 1;
  }
  at += kKey.size() - 1;
  while (at < status.size() && (status[at] == ' ' || status[at] == '\t')) ++at;
  uint64_t v = 0;
  size_t digits = 0;
  for (; at < status.size() && status[at] != '\n'; ++at, ++digits) {
    const char c = status[at];
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (d < 0 || digits >= 16) return make_error("CapEff is not a 64-bit hex number");
    v = v << 4 | uint64_t(d);
  }
  if (digits == 0) return make_error("CapEff is empty");
  return v;
}

std::optional<long> parse_sysctl(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  if (text.empty() || text.size() > 18) return std::nullopt;
  bool negative = text[0] == '-';
  if (negative) text.remove_prefix(1);
  if (text.empty()) return std::nullopt;
  long v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return negative ? -v : v;
}

std::optional<std::string> cmdline_lsm(std::string_view cmdline) {
  std::optional<std::string> found;  // the last one counts, as for the kernel
  size_t i = 0;
  while (i < cmdline.size()) {
    while (i < cmdline.size() && (cmdline[i] == ' ' || cmdline[i] == '\n')) ++i;
    size_t end = i;
    while (end < cmdline.size() && cmdline[end] != ' ' && cmdline[end] != '\n') ++end;
    std::string_view word = cmdline.substr(i, end - i);
    if (word.substr(0, 4) == "lsm=") found = std::string(word.substr(4));
    i = end;
  }
  return found;
}

bool lsm_listed(std::string_view list, std::string_view name) {
  while (!list.empty() && list.back() == '\n') list.remove_suffix(1);
  size_t start = 0;
  for (;;) {
    const size_t comma = list.find(',', start);
    if (list.substr(start, comma == std::string_view::npos ? std::string_view::npos
                                                           : comma - start) == name)
      return true;
    if (comma == std::string_view::npos) return false;
    start = comma + 1;
  }
}

std::vector<Finding> judge(const HostFacts& f) {
  std::vector<Finding> out{user_namespaces(f), id_map(f)};
  for (size_t i = 0; i < std::size(kNamespaceNames); ++i) out.push_back(one_namespace(f, i));
  out.push_back(proc_mount(f));
  out.push_back(mount_api(f));
  out.push_back(cgroups(f));
  out.push_back(cgroup_scope(f));
  out.push_back(seccomp(f));
  out.push_back(landlock(f));
  out.push_back(rlimits(f));
  out.push_back(workspaces(f));
  return out;
}

bool any_missing(const std::vector<Finding>& findings) {
  for (const auto& f : findings) {
    if (f.verdict == Verdict::kMissing) return true;
  }
  return false;
}

std::string render(const HostFacts& facts, const std::vector<Finding>& findings) {
  std::ostringstream out;
  out << "1mcp doctor: Linux " << facts.kernel << ", uid " << facts.uid << "\n";
  for (const auto& f : findings) {
    char head[64];
    std::snprintf(head, sizeof head, "%-8s %-26s ", verdict_text(f.verdict), f.feature.c_str());
    out << head << f.detail << "\n";
    if (!f.fix.empty()) out << std::string(9, ' ') << "fix: " << f.fix << "\n";
  }
  if (any_missing(findings)) {
    out << "Something the sandbox needs is MISSING: `1mcp serve` cannot run code here until it is "
           "fixed (--insecure-no-sandbox runs without the sandbox, for development only).\n";
  } else {
    out << "Every feature the sandbox needs is present"
        << (std::any_of(findings.begin(), findings.end(),
                        [](const Finding& f) { return f.verdict == Verdict::kWarn; })
                ? " (WARN: works, with a layer or limit less)"
                : "")
        << ".\n";
  }
  return out.str();
}

}  // namespace onemcp::doctor
