#include "sandbox/workspace.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/statvfs.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "ipc/wire.h"
#include "sandbox/executor.h"

namespace onemcp::sandbox {
namespace {

std::string errno_msg(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

}  // namespace

Result<Workspace> Workspace::create(uint64_t max_bytes, uint64_t max_inodes) {
  if (max_bytes == 0 || max_inodes == 0)
    return make_error("a workspace needs room for bytes and files");
  UniqueFd fs(::fsopen("tmpfs", FSOPEN_CLOEXEC));
  if (!fs.valid()) return make_error(errno_msg("workspace: fsopen tmpfs"));
  const std::string owner = std::to_string(kHostIdBase + ipc::kRunUid);
  const std::pair<const char*, std::string> options[] = {
      {"size", std::to_string(max_bytes)},
      // The root directory takes one inode.
      {"nr_inodes", std::to_string(max_inodes + 1)},
      {"mode", "0700"},
      {"uid", owner},
      {"gid", owner},
  };
  for (const auto& [key, value] : options) {
    if (::fsconfig(fs.get(), FSCONFIG_SET_STRING, key, value.c_str(), 0) != 0)
      return make_error(errno_msg((std::string("workspace: tmpfs option ") + key).c_str()));
  }
  if (::fsconfig(fs.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) != 0)
    return make_error(errno_msg("workspace: create tmpfs"));
  UniqueFd mount(::fsmount(fs.get(), FSMOUNT_CLOEXEC,
                           MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC));
  if (!mount.valid()) return make_error(errno_msg("workspace: fsmount"));
  Workspace w(std::move(mount));
  // Each interpreter of the session attaches a clone: a kernel that cannot clone a detached
  // mount fails here, at once, not at the session's first call.
  if (auto c = w.clone(); !c) return c.error();
  return w;
}

Result<UniqueFd> Workspace::clone() const {
  UniqueFd copy(::open_tree(mount_.get(), "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH));
  if (!copy.valid()) {
    return make_error(errno_msg(
        "workspace: clone the mount (needs Linux 6.15 or later: open_tree of a detached mount)"));
  }
  return copy;
}

Result<Workspace::Usage> Workspace::usage() const {
  struct statvfs st {};
  if (::fstatvfs(mount_.get(), &st) != 0) return make_error(errno_msg("workspace: statvfs"));
  Usage u;
  u.max_bytes = uint64_t(st.f_blocks) * st.f_frsize;
  u.bytes = uint64_t(st.f_blocks - st.f_bfree) * st.f_frsize;
  u.max_inodes = st.f_files > 0 ? uint64_t(st.f_files) - 1 : 0;
  u.inodes = st.f_files > st.f_ffree ? uint64_t(st.f_files - st.f_ffree) - 1 : 0;
  return u;
}

}  // namespace onemcp::sandbox
