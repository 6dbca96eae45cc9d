// sandbox/workspace.h — a session's workspace: a tmpfs of its own, whose size and inode count are
// its quota (hard: the kernel refuses the write past them with ENOSPC). The supervisor holds it
// as a detached mount (fsopen/fsmount), never attached anywhere on the host, so nothing is left
// behind when the server dies; each of the session's run processes gets a clone of it, which it
// attaches at ipc::kWorkspaceDir inside its own mount namespace. Files belong to the runs' user.
// The tmpfs is freed once the workspace and every process that mounted it are gone.
// Thread-safety: const methods may be called from any thread.
#pragma once

#include <cstdint>

#include "base/result.h"
#include "base/unique_fd.h"

namespace onemcp::sandbox {

class Workspace {
 public:
  // Needs CAP_SYS_ADMIN (the supervisor runs as root, as its id maps require).
  static Result<Workspace> create(uint64_t max_bytes, uint64_t max_inodes);

  // A detached copy of the mount, for one run process to attach.
  Result<UniqueFd> clone() const;

  // Its root directory (an O_PATH fd), to read what runs left there from the host without
  // following anything they planted (sandbox/outdir.h).
  int root() const { return mount_.get(); }

  struct Usage {
    uint64_t bytes = 0, max_bytes = 0;
    uint64_t inodes = 0, max_inodes = 0;
  };
  Result<Usage> usage() const;

 private:
  explicit Workspace(UniqueFd mount) : mount_(std::move(mount)) {}
  UniqueFd mount_;
};

}  // namespace onemcp::sandbox
