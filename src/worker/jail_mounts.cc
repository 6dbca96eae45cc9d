// The jail's filesystem: the worker's read-only root, a run's own /proc and tmpfs mounts, the
// pivot into the root, and the request's writable paths and pip site directory.
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "worker/jail_internal.h"

namespace onemcp::worker::jail {
namespace {

// The host's bundle of public CA certificates (Debian's ca-certificates), so that TLS in a run
// can verify public servers: OpenSSL's default file (/usr/lib/ssl/cert.pem) and requests'
// (certifi) both name it. Certificates only, nothing secret; absent hosts simply have none.
constexpr const char* kCaBundle = "/etc/ssl/certs/ca-certificates.crt";

Status write_file(const std::string& path, const std::string& text, mode_t mode = 0644) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return make_error(why("create " + path));
  ssize_t n = ::write(fd, text.data(), text.size());
  ::close(fd);
  if (n != ssize_t(text.size())) return make_error(why("write " + path));
  return {};
}

// Bind of `src` onto the existing `dst`, keeping the flags the kernel locks for unprivileged
// remounts.
Status bind_mount(const std::string& src, const std::string& dst, bool is_file, bool read_only,
                  bool noexec = false) {
  if (::mount(src.c_str(), dst.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0)
    return make_error(why("bind " + src));
  struct statvfs vfs;
  unsigned long locked = 0;
  if (::statvfs(src.c_str(), &vfs) == 0) {
    if (vfs.f_flag & ST_NOATIME) locked |= MS_NOATIME;
    if (vfs.f_flag & ST_NODIRATIME) locked |= MS_NODIRATIME;
    if (vfs.f_flag & ST_RELATIME) locked |= MS_RELATIME;
    if (vfs.f_flag & ST_NOEXEC) locked |= MS_NOEXEC;
  }
  unsigned long flags = MS_BIND | MS_REMOUNT | MS_NOSUID | locked;
  if (read_only) flags |= MS_RDONLY;
  if (!is_file) flags |= MS_NODEV;
  if (noexec) flags |= MS_NOEXEC;
  if (::mount(nullptr, dst.c_str(), nullptr, flags, nullptr) != 0)
    return make_error(why("remount " + dst));
  return {};
}

// Bind of a host path (created as a mount point in the root first).
Status bind(const std::string& src, const std::string& dst, bool is_file, bool read_only) {
  struct stat st;
  if (::stat(src.c_str(), &st) != 0) return {};  // absent on this host: nothing to expose
  if (is_file) {
    int fd = ::open(dst.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return make_error(why("create " + dst));
    ::close(fd);
  } else if (auto s = mkdir_p(dst); !s) {
    return s;
  }
  return bind_mount(src, dst, is_file, read_only);
}

// The directory `rel` beneath `sets` bound read-only at `dst`, opened beneath it without following
// any link, so a key can only name a set's own directory; `what` names it in an error.
Status bind_beneath(const std::string& sets, const std::string& rel, const char* dst, bool noexec,
                    const std::string& what) {
  UniqueFd dir(::open(sets.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!dir.valid()) return make_error(why("open " + sets));
  open_how how{};
  how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
  UniqueFd set(int(::syscall(SYS_openat2, dir.get(), rel.c_str(), &how, sizeof how)));
  if (!set.valid()) return make_error(why(what));
  return bind_mount("/proc/self/fd/" + std::to_string(set.get()), dst, false, true, noexec);
}

}  // namespace

const char* ca_bundle() { return kCaBundle; }

// In a run's own mount namespace, after pivot_root: the site directory of its pip set (if any)
// read-only at kPipSiteDir; then the sets themselves are detached.
Status mount_pip_site(const std::string& key) {
  const std::string sets = kPipSetsDir;
  if (!key.empty()) {
    if (!valid_pip_key(key)) return make_error("invalid pip dependency key");
    if (config().pip_root.empty())
      return make_error("pip dependencies are not available in this worker");
    if (auto s = bind_beneath(sets, key + "/site", kPipSiteDir, false,
                              "pip dependency set " + key.substr(0, 12));
        !s)
      return s;
  }
  if (!config().pip_root.empty() && ::umount2(sets.c_str(), MNT_DETACH) != 0)
    return make_error(why("detach " + sets));
  return {};
}

// The same for the run's /mcps tree: its directory under kMcpsTreesDir bound read-only (nosuid,
// nodev, noexec) at ipc::kMcpsDir; then every tree is detached.
Status mount_mcps_tree(const std::string& key) {
  const std::string trees = kMcpsTreesDir;
  if (!key.empty()) {
    if (!valid_mcps_key(key)) return make_error("invalid /mcps tree key");
    if (config().mcps_root.empty())
      return make_error("/mcps trees are not available in this worker");
    if (auto s = bind_beneath(trees, key, ipc::kMcpsDir, true, "/mcps tree " + key.substr(0, 12));
        !s)
      return s;
  }
  if (!config().mcps_root.empty() && ::umount2(trees.c_str(), MNT_DETACH) != 0)
    return make_error(why("detach " + trees));
  return {};
}

// The session's workspace: a tmpfs the supervisor made (its size and inode count are the
// workspace's quota), cloned for this run as a detached mount, attached at kWorkspaceDir. Only
// this run's mount namespace sees it.
Status mount_workspace(const RunJail& run) {
  if (!run.request->workspace) return {};
  if (run.workspace_fd < 0) return make_error("the workspace of the request is missing");
  if (::move_mount(run.workspace_fd, "", AT_FDCWD, ipc::kWorkspaceDir, MOVE_MOUNT_F_EMPTY_PATH) !=
      0)
    return make_error(why(std::string("mount the workspace at ") + ipc::kWorkspaceDir));
  return {};
}

Status build_root() {
  const std::string r = kRootDir;
  std::vector<UniqueFd> sources;
  for (const auto& m : config().mounts) {
    UniqueFd fd(::open(m.host.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!fd.valid()) return make_error(why("mount source " + m.host));
    sources.push_back(std::move(fd));
  }
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
    return make_error(why("make mounts private"));
  if (::mount("tmpfs", r.c_str(), "tmpfs", MS_NOSUID | MS_NODEV,
              "size=1m,nr_inodes=256,mode=0755") != 0)
    return make_error(why("mount root tmpfs"));
  for (const char* d : {"/usr", "/proc", "/dev", "/etc", ipc::kWorkspaceDir}) {
    if (::mkdir((r + d).c_str(), 0755) != 0) return make_error(why(std::string("mkdir ") + d));
  }
  for (const auto& d : config().writable_roots) {
    if (auto s = mkdir_p(r + d); !s) return s;
  }
  if (config().pip_fd >= 0) {
    if (auto s = mkdir_p(r + kPipSiteDir); !s) return s;
    std::string src = "/proc/self/fd/" + std::to_string(config().pip_fd);
    if (auto s = bind(src, r + kPipSetsDir, false, true); !s) return s;
    ::close(config().pip_fd);
    config().pip_fd = -1;
  }
  if (config().mcps_fd >= 0) {
    if (auto s = mkdir_p(r + ipc::kMcpsDir); !s) return s;
    std::string src = "/proc/self/fd/" + std::to_string(config().mcps_fd);
    if (auto s = bind(src, r + kMcpsTreesDir, false, true); !s) return s;
    ::close(config().mcps_fd);
    config().mcps_fd = -1;
  }
  // Host directories the configuration lists explicitly (and nothing else of the host), through
  // the fds opened before the root tmpfs covered kRootDir (a source may well live under /tmp).
  for (size_t i = 0; i < config().mounts.size(); ++i) {
    std::string src = "/proc/self/fd/" + std::to_string(sources[i].get());
    if (auto s = bind(src, r + config().mounts[i].path, false, !config().mounts[i].writable); !s)
      return s;
  }
  // Only what the interpreters load at run time: shared libraries and the Python stdlib and
  // dist-packages. No host /etc, /home, /root, /run, /sys, /var, sockets.
  for (const char* d : {"/usr/lib", "/usr/lib64", "/usr/share/zoneinfo"}) {
    if (auto s = bind(d, r + d, false, true); !s) return s;
  }
  if (::access(kCaBundle, R_OK) == 0) {
    if (auto s = mkdir_p(r + "/etc/ssl/certs"); !s) return s;
    if (auto s = bind(kCaBundle, r + kCaBundle, true, true); !s) return s;
  }
  // matplotlib's data (fonts, styles) and Debian's matplotlibrc, when python3-matplotlib is
  // installed: without them `import matplotlib` fails.
  for (auto [path, is_file] :
       {std::pair{"/usr/share/matplotlib", false}, std::pair{"/etc/matplotlibrc", true}}) {
    if (::access(path, R_OK) != 0) continue;
    if (auto s = bind(path, r + path, is_file, true); !s) return s;
  }
  for (auto [link, target] : {std::pair{"/lib", "usr/lib"}, std::pair{"/lib64", "usr/lib64"}}) {
    if (::symlink(target, (r + link).c_str()) != 0) return make_error(why("symlink"));
  }
  for (const char* dev : {"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"}) {
    // Writing to /dev/null is normal; these nodes hold nothing to protect.
    if (auto s = bind(dev, r + dev, true, false); !s) return s;
  }
  for (auto [link, target] :
       {std::pair{"/dev/fd", "/proc/self/fd"}, std::pair{"/dev/stdin", "/proc/self/fd/0"},
        std::pair{"/dev/stdout", "/proc/self/fd/1"}, std::pair{"/dev/stderr", "/proc/self/fd/2"}}) {
    if (::symlink(target, (r + link).c_str()) != 0) return make_error(why("symlink"));
  }
  std::string uid = std::to_string(kRunUid);
  if (auto s = write_file(r + "/etc/passwd",
                          "root:x:0:0:root:/:/bin/false\nsandbox:x:" + uid + ":" + uid +
                              "::/tmp:/bin/false\nnobody:x:65534:65534::/:/bin/false\n");
      !s)
    return s;
  if (auto s =
          write_file(r + "/etc/group", "root:x:0:\nsandbox:x:" + uid + ":\nnogroup:x:65534:\n");
      !s)
    return s;
  if (auto s = write_file(r + "/etc/hostname", "sandbox\n"); !s) return s;
  if (auto s = write_file(r + "/etc/hosts", "127.0.0.1 localhost sandbox\n::1 localhost\n"); !s)
    return s;
  if (::mount(nullptr, r.c_str(), nullptr, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV,
              nullptr) != 0)
    return make_error(why("remount root read-only"));
  return {};
}

Status mount_run_filesystems() {
  const std::string r = kRootDir;
  // /proc is mounted before pivot_root: the kernel only allows a new proc where one is visible.
  if (::mount("proc", (r + "/proc").c_str(), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
              "hidepid=2") != 0)
    return make_error(why("mount /proc"));
  // A fresh tmpfs on every writable root; the request phase removes those its run does not use.
  const std::string opts =
      "size=" + std::to_string(kTmpBytes) + ",nr_inodes=" + std::to_string(kTmpInodes) +
      ",mode=1777,uid=" + std::to_string(kRunUid) + ",gid=" + std::to_string(kRunUid);
  for (const auto& root : config().writable_roots) {
    if (::mount("tmpfs", (r + root).c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                opts.c_str()) != 0)
      return make_error(why("mount " + root));
  }
  return {};
}

Status pivot_into_root() {
  if (::chdir(kRootDir) != 0) return make_error(why("chdir root"));
  if (::syscall(SYS_pivot_root, ".", ".") != 0) return make_error(why("pivot_root"));
  if (::umount2(".", MNT_DETACH) != 0) return make_error(why("detach old root"));
  return {};
}

Status make_writable_paths(const ipc::RunRequest& req) {
  for (const auto& root : config().writable_roots) {
    bool used = false;
    for (const auto& w : req.writable) used = used || within(w, root);
    if (!used) {  // an empty read-only directory again
      if (::umount2(root.c_str(), MNT_DETACH) != 0) return make_error(why("detach " + root));
      continue;
    }
    for (const auto& w : req.writable) {
      if (w == root || !within(w, root)) continue;
      if (auto s = mkdir_p(w); !s) return s;
      if (::chown(w.c_str(), kRunUid, kRunUid) != 0) return make_error(why("chown " + w));
    }
  }
  bool tmp_writable = false;
  for (const auto& w : req.writable) tmp_writable = tmp_writable || w == "/tmp";
  if (::chdir(tmp_writable ? "/tmp" : "/") != 0) return make_error(why("chdir"));
  return {};
}

}  // namespace onemcp::worker::jail
