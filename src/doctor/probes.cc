// doctor/probes.cc — the I/O half of `1mcp doctor`: reads /proc and /sys, and tries each
// feature the way a worker uses it, in forked children that report through a shared page.
#include <fcntl.h>
#include <linux/mount.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <new>
#include <string>

#include "base/unique_fd.h"
#include "doctor/doctor.h"
#include "sandbox/child/landlock.h"
#include "sandbox/child/seccomp.h"
#include "sandbox/executor.h"
#include "sandbox/workspace.h"

namespace onemcp::doctor {
namespace {

// The file's text, or nullopt when it cannot be read.
std::optional<std::string> read_text(const char* path) {
  UniqueFd fd(::open(path, O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return std::nullopt;
  std::string text;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return std::nullopt;
    if (n == 0) return text;
    text.append(buf, size_t(n));
    if (text.size() > (1u << 20)) return text;
  }
}

std::optional<long> sysctl(const char* path) {
  auto t = read_text(path);
  return t ? parse_sysctl(*t) : std::nullopt;
}

// What the children write; a MAP_SHARED page the parent reads once they are gone.
struct Shared {
  int userns, id_map_ready, namespaces[5], proc_mount, mount_api[5];
  int seccomp_loaded, seccomp_denies, rlimits;
  char seccomp_error[256];
};

int attempt(bool ok) { return ok ? 0 : errno; }

// Waits for `pid`; true when it exited with status 0.
bool reap(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return false;
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

Status write_file(const std::string& path, const std::string& text) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd.valid() || ::write(fd.get(), text.data(), text.size()) != ssize_t(text.size()))
    return make_os_error(errno, path);
  return {};
}

// In the new pid namespace's first process: a fresh proc, then the mount API on a tmpfs.
void probe_mounts(Shared* s) {
  // The namespace's mounts are private, so nothing here reaches the host's mount table.
  if (::mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "size=1m") != 0 ||
      ::mkdir("/tmp/proc", 0755) != 0 || ::mkdir("/tmp/new", 0755) != 0) {
    s->proc_mount = errno;
    return;
  }
  s->proc_mount = attempt(
      ::mount("proc", "/tmp/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=2") == 0);
  UniqueFd fs(int(::syscall(SYS_fsopen, "tmpfs", FSOPEN_CLOEXEC)));
  s->mount_api[0] = attempt(fs.valid());
  if (!fs.valid()) return;
  s->mount_api[1] =
      attempt(::syscall(SYS_fsconfig, fs.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) == 0);
  if (s->mount_api[1] != 0) return;
  UniqueFd mnt(int(::syscall(SYS_fsmount, fs.get(), FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID)));
  s->mount_api[2] = attempt(mnt.valid());
  if (!mnt.valid()) return;
  s->mount_api[3] = attempt(
      ::syscall(SYS_move_mount, mnt.get(), "", AT_FDCWD, "/tmp/new", MOVE_MOUNT_F_EMPTY_PATH) == 0);
  UniqueFd tree(
      int(::syscall(SYS_open_tree, AT_FDCWD, "/tmp/new", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC)));
  s->mount_api[4] = attempt(tree.valid());
}

// The child: a user namespace mapped by the parent, then each other namespace in it.
[[noreturn]] void namespaces_child(Shared* s, int ready_fd, int mapped_fd) {
  s->userns = attempt(::unshare(CLONE_NEWUSER) == 0);
  char c = s->userns == 0 ? 'u' : 'x';
  if (::write(ready_fd, &c, 1) != 1 || s->userns != 0) ::_exit(1);
  if (::read(mapped_fd, &c, 1) != 1 || c != 'm') ::_exit(1);
  if (::setresgid(0, 0, 0) != 0 || ::setresuid(0, 0, 0) != 0) ::_exit(1);
  for (int i = 0; i < 5; ++i) {
    static constexpr int kFlags[] = {CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWIPC,
                                     CLONE_NEWUTS};
    s->namespaces[i] = attempt(::unshare(kFlags[i]) == 0);
  }
  if (s->namespaces[0] != 0 || s->namespaces[1] != 0) ::_exit(0);
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    s->proc_mount = errno;
    ::_exit(0);
  }
  const pid_t init = ::fork();  // pid 1 of the new pid namespace
  if (init == 0) {
    probe_mounts(s);
    ::_exit(0);
  }
  if (init > 0) reap(init);
  ::_exit(0);
}

void probe_namespaces(HostFacts& f, Shared* s) {
  int ready[2], mapped[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) return;
  if (::pipe2(mapped, O_CLOEXEC) != 0) {
    ::close(ready[0]);
    ::close(ready[1]);
    return;
  }
  UniqueFd ready_r(ready[0]), ready_w(ready[1]), mapped_r(mapped[0]), mapped_w(mapped[1]);
  const pid_t pid = ::fork();
  if (pid < 0) {
    f.userns.error = errno;
    return;
  }
  if (pid == 0) namespaces_child(s, ready_w.get(), mapped_r.get());
  ready_w.reset();
  mapped_r.reset();
  char c = 0;
  if (::read(ready_r.get(), &c, 1) == 1 && c == 'u') {
    // As the supervisor does (sandbox::Zygote::write_id_maps): inner 0..65535 onto an unused
    // host range.
    const std::string map = "0 " + std::to_string(sandbox::kHostIdBase) + " 65536\n";
    const std::string proc = "/proc/" + std::to_string(pid) + "/";
    Status s1 = write_file(proc + "uid_map", map);
    Status s2 = s1 ? write_file(proc + "gid_map", map) : s1;
    f.id_map.error = s2 ? 0 : s2.error().os_error;
    c = s2 ? 'm' : 'x';
    (void)!::write(mapped_w.get(), &c, 1);
  }
  mapped_w.reset();
  reap(pid);
  f.userns.error = s->userns;
  for (int i = 0; i < 5; ++i) {
    f.namespaces[i].error = f.id_map.ok() ? s->namespaces[i] : kNotTried;
    f.mount_api[i].error = s->mount_api[i];
  }
  f.proc_mount.error = s->proc_mount;
}

void probe_seccomp(HostFacts& f, Shared* s) {
  auto program = sandbox::child::SeccompProgram::build();
  if (!program) {
    f.seccomp_error = "compiling the filter failed: " + program.error().message;
    return;
  }
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
      std::snprintf(s->seccomp_error, sizeof s->seccomp_error, "PR_SET_NO_NEW_PRIVS: %s",
                    std::strerror(errno));
      ::_exit(1);
    }
    if (auto st = program->install(); !st) {
      std::snprintf(s->seccomp_error, sizeof s->seccomp_error, "%s", st.error().message.c_str());
      ::_exit(1);
    }
    s->seccomp_loaded = 0;
    const bool denied = ::ptrace(PTRACE_TRACEME, 0, nullptr, nullptr) != 0 && errno == EPERM;
    s->seccomp_denies = denied ? 0 : (errno ? errno : EINVAL);
    ::_exit(0);
  }
  if (pid < 0) {
    f.seccomp_error = std::string("fork: ") + std::strerror(errno);
    return;
  }
  reap(pid);
  if (s->seccomp_loaded != 0) {
    f.seccomp_error = s->seccomp_error[0] ? s->seccomp_error : "the probe did not report";
    return;
  }
  f.seccomp_denies.error = s->seccomp_denies;
}

// The limits a run sets on itself (worker/jail_rlimits.cc), tried in a child.
void probe_rlimits(HostFacts& f, Shared* s) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    auto lower = [](int resource, rlim_t value) {
      rlimit r{};
      if (::getrlimit(resource, &r) != 0) return false;
      if (r.rlim_max != RLIM_INFINITY && r.rlim_max < value) value = r.rlim_max;
      r = {value, value};
      return ::setrlimit(resource, &r) == 0;
    };
    const bool ok = lower(RLIMIT_CORE, 0) && lower(RLIMIT_NOFILE, 256) &&
                    lower(RLIMIT_FSIZE, 64ull << 20) && lower(RLIMIT_AS, 4ull << 30) &&
                    lower(RLIMIT_CPU, 60);
    s->rlimits = attempt(ok);
    ::_exit(0);
  }
  if (pid < 0) {
    f.rlimits.error = errno;
    return;
  }
  reap(pid);
  f.rlimits.error = s->rlimits;
}

void probe_cgroups(HostFacts& f) {
  auto cg = read_text("/proc/self/cgroup");
  auto mi = read_text("/proc/self/mountinfo");
  if (cg && mi) f.cgroup_hierarchies = sandbox::find_cgroup_hierarchies(*cg, *mi);
  // What `serve` does: its cgroups beneath the server's own, then one run's scope with limits.
  auto manager = sandbox::CgroupManager::create();
  if (!manager) {
    f.cgroup_error = manager.error().message;
    return;
  }
  f.cgroup_describe = (*manager)->describe();
  f.has_memory = (*manager)->has_memory();
  f.has_pids = (*manager)->has_pids();
  f.has_cpu = (*manager)->has_cpu();
  f.has_freezer = (*manager)->has_freezer();
  auto scope = (*manager)->new_scope({64ull << 20, 64, 100});
  if (!scope) f.scope_error = scope.error().message;
}

}  // namespace

HostFacts probe_host() {
  HostFacts f;
  utsname u{};
  if (::uname(&u) == 0) f.kernel = std::string(u.release) + " " + u.machine;
  f.uid = ::getuid();
  if (auto status = read_text("/proc/self/status")) {
    if (auto caps = parse_cap_eff(*status)) f.cap_eff = *caps;
  }
  f.max_user_namespaces = sysctl("/proc/sys/user/max_user_namespaces");
  f.unprivileged_userns_clone = sysctl("/proc/sys/kernel/unprivileged_userns_clone");
  f.apparmor_restrict_userns = sysctl("/proc/sys/kernel/apparmor_restrict_unprivileged_userns");

  void* page =
      ::mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED) std::abort();  // broken invariant: one anonymous page
  auto* s = new (page) Shared{};
  for (int* v : {&s->userns, &s->proc_mount, &s->seccomp_loaded, &s->seccomp_denies, &s->rlimits})
    *v = kNotTried;
  for (int i = 0; i < 5; ++i) s->namespaces[i] = s->mount_api[i] = kNotTried;
  probe_namespaces(f, s);
  probe_seccomp(f, s);
  probe_rlimits(f, s);
  ::munmap(page, sizeof(Shared));

  probe_cgroups(f);
  if (auto ws = sandbox::Workspace::create(1 << 20, 16); !ws)
    f.workspace_error = ws.error().message;
  f.landlock_abi = sandbox::child::landlock_abi();
  if (auto lsm = read_text("/sys/kernel/security/lsm")) {
    while (!lsm->empty() && lsm->back() == '\n') lsm->pop_back();
    f.lsm = *lsm;
  }
  if (auto cmdline = read_text("/proc/cmdline")) f.kernel_cmdline_lsm = cmdline_lsm(*cmdline);
  for (auto [resource, name] :
       {std::pair{RLIMIT_NOFILE, "RLIMIT_NOFILE"}, std::pair{RLIMIT_NPROC, "RLIMIT_NPROC"},
        std::pair{RLIMIT_AS, "RLIMIT_AS"}, std::pair{RLIMIT_FSIZE, "RLIMIT_FSIZE"}}) {
    rlimit r{};
    if (::getrlimit(resource, &r) != 0) continue;
    auto v = [](rlim_t x) { return x == RLIM_INFINITY ? UINT64_MAX : uint64_t(x); };
    f.server_rlimits.push_back({name, v(r.rlim_cur), v(r.rlim_max)});
  }
  return f;
}

}  // namespace onemcp::doctor
