// worker/jail_internal.h — what the jail's files (one per kernel facility) share. Only for
// worker/jail*.cc; everything else uses worker/jail.h.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "sandbox/child/seccomp.h"
#include "worker/jail.h"

namespace onemcp::worker::jail {

// Set once in the zygote (jail_enter_zygote, jail_prepare_filters); inherited by every fork.
struct Config {
  std::vector<std::string> writable_roots;
  std::vector<HostMount> mounts;
  std::string pip_root;
  int pip_fd = -1;     // O_PATH handle of pip_root until the root holds it
  std::string mcps_root;
  int mcps_fd = -1;    // O_PATH handle of mcps_root until the root holds it
  int own_pidns = -1;  // inner zygote: its own pid namespace, to reset pid_ns_for_children
  std::optional<sandbox::child::SeccompProgram> seccomp;
};
Config& config();

std::string why(const std::string& what);  // what + ": " + strerror(errno)
Status mkdir_p(const std::string& path);
bool within(const std::string& path, const std::string& dir);

// jail_namespaces.cc
Status unshare_worker_namespaces();                 // user, net, mount, pid, ipc, uts
Status become_root_of_user_namespace(int control);  // uid/gid maps written by the supervisor
Status unshare_run_namespaces();                    // mount, ipc, uts (the run slot)
// jail_mounts.cc
Status build_root();             // the read-only root under kRootDir
Status mount_run_filesystems();  // /proc and a tmpfs on each writable root
Status pivot_into_root();
Status make_writable_paths(const ipc::RunRequest& req);
Status mount_pip_site(const std::string& key);
Status mount_mcps_tree(const std::string& key);  // at ipc::kMcpsDir, when the run has one
Status mount_workspace(const RunJail& run);  // at ipc::kWorkspaceDir, when the run has one
const char* ca_bundle();  // the host's CA certificates, bound read-only
// jail_rlimits.cc
Status set_rlimits(const RunJail& run);
// jail_lockdown.cc
Status drop_privileges();
Status restrict_landlock(const RunJail& run);
Status install_seccomp();

}  // namespace onemcp::worker::jail
