// The jail's namespaces: the worker's own (user, net, mount, pid, ipc, uts) with its id maps, a
// fresh pid namespace per fork of the inner zygote, and a run's own mount, ipc and uts namespaces.
#include <grp.h>
#include <sched.h>
#include <unistd.h>

#include "worker/jail_internal.h"

namespace onemcp::worker::jail {
namespace {

Status expect_tag(int control, uint32_t want) {
  uint32_t tag = 0;
  std::vector<UniqueFd> fds;
  auto got = ipc::recv_with_fds(control, &tag, sizeof tag, &fds, 0);
  if (!got || *got != sizeof tag || tag != want) return make_error("supervisor handshake failed");
  return {};
}

}  // namespace

Status unshare_worker_namespaces() {
  if (::unshare(CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC |
                CLONE_NEWUTS) != 0)
    return make_error(why("unshare namespaces"));
  return {};
}

Status become_root_of_user_namespace(int control) {
  // Only a process privileged in the parent namespace (the supervisor) may map a uid range.
  uint32_t tag = ipc::kIdMapTag;
  if (auto s = ipc::send_with_fds(control, &tag, sizeof tag, nullptr, 0); !s) return s;
  if (auto s = expect_tag(control, ipc::kIdMapTag); !s) return s;
  if (::setgroups(0, nullptr) != 0 || ::setresgid(0, 0, 0) != 0 || ::setresuid(0, 0, 0) != 0)
    return make_error(why("become root of the user namespace"));
  if (::sethostname("sandbox", 7) != 0) return make_error(why("sethostname"));
  return {};
}

Status unshare_run_namespaces() {
  if (::unshare(CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS) != 0) return make_error(why("unshare"));
  return {};
}

}  // namespace onemcp::worker::jail

namespace onemcp::worker {

Status jail_before_fork() {
  if (::unshare(CLONE_NEWPID) != 0) return make_error(jail::why("unshare pid namespace"));
  return {};
}

Status jail_after_fork_parent() {
  if (::setns(jail::config().own_pidns, CLONE_NEWPID) != 0)
    return make_error(jail::why("reset pid namespace"));
  return {};
}

}  // namespace onemcp::worker
