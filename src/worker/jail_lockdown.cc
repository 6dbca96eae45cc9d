// The jail's last steps before a run's code: the run's uid and no_new_privs, Landlock, seccomp.
#include <grp.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "sandbox/child/landlock.h"
#include "worker/jail_internal.h"

namespace onemcp::worker::jail {

Status drop_privileges() {
  if (::setgroups(0, nullptr) != 0 || ::setresgid(kRunUid, kRunUid, kRunUid) != 0 ||
      ::setresuid(kRunUid, kRunUid, kRunUid) != 0)
    return make_error(why("drop to the run uid"));
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return make_error(why("no_new_privs"));
  return {};
}

Status restrict_landlock(const RunJail& run) {
  if (sandbox::child::landlock_abi() <= 0) return {};
  if (!run.request) {  // the relay: no filesystem access at all
    auto ll = sandbox::child::landlock_restrict(sandbox::child::LandlockPaths{});
    return ll ? Status{} : Status(ll.error());
  }
  const ipc::RunRequest& req = *run.request;
  // What the policy allows, plus what the interpreter itself loads at run time.
  sandbox::child::LandlockPaths paths{req.readonly, req.writable};
  for (const char* p : {"/usr/lib", "/usr/lib64", "/usr/share/zoneinfo", ca_bundle(),
                        "/dev/urandom", "/dev/random", "/dev/zero", "/proc/self"})
    paths.read_only.push_back(p);
  for (const char* p : {"/dev/null", "/dev/full"}) paths.read_write.push_back(p);
  for (const auto& m : config().mounts)
    (m.writable ? paths.read_write : paths.read_only).push_back(m.path);
  if (!req.pip_key.empty()) paths.read_only.push_back(kPipSiteDir);
  if (!req.mcps_key.empty()) paths.read_only.push_back(ipc::kMcpsDir);
  if (req.workspace) paths.read_write.push_back(ipc::kWorkspaceDir);
  if (run.relay) paths.connect_ports.push_back(ipc::kProxyPort);
  auto ll = sandbox::child::landlock_restrict(paths);
  return ll ? Status{} : Status(ll.error());
}

Status install_seccomp() {
  if (!config().seccomp) return make_error("seccomp program not prepared");
  return config().seccomp->install();
}

}  // namespace onemcp::worker::jail
