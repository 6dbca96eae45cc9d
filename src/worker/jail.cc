#include "worker/jail.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "worker/jail_internal.h"
#include "worker/zygote.h"

namespace onemcp::worker {
namespace jail {

Config& config() {
  static Config c;
  return c;
}

std::string why(const std::string& what) { return what + ": " + std::strerror(errno); }

Status mkdir_p(const std::string& path) {
  for (size_t i = 1; i <= path.size(); ++i) {
    if (i < path.size() && path[i] != '/') continue;
    if (::mkdir(path.substr(0, i).c_str(), 0755) != 0 && errno != EEXIST)
      return make_error(why("mkdir " + path.substr(0, i)));
  }
  return {};
}

bool within(const std::string& path, const std::string& dir) {
  return path == dir || dir == "/" ||
         (path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 &&
          path[dir.size()] == '/');
}

}  // namespace jail

// The steps of a run's jail, in order (see jail.h for the phases).
const std::vector<JailStep> kJailSteps = {
    {JailPhase::slot, "run: namespaces", false,
     [](const RunJail&) { return jail::unshare_run_namespaces(); }},
    {JailPhase::slot, "run: /proc and tmpfs mounts", false,
     [](const RunJail&) { return jail::mount_run_filesystems(); }},
    {JailPhase::slot, "run: pivot into the root", false,
     [](const RunJail&) { return jail::pivot_into_root(); }},
    {JailPhase::request, "run: writable paths", false,
     [](const RunJail& r) { return jail::make_writable_paths(*r.request); }},
    {JailPhase::request, "run: pip set", false,
     [](const RunJail& r) { return jail::mount_pip_site(r.request->pip_key); }},
    {JailPhase::request, "run: /mcps tree", false,
     [](const RunJail& r) { return jail::mount_mcps_tree(r.request->mcps_key); }},
    {JailPhase::request, "run: workspace", false, jail::mount_workspace},
    {JailPhase::limits, "run: rlimits", true, jail::set_rlimits},
    {JailPhase::lockdown, "run: uid and no_new_privs", false,
     [](const RunJail&) { return jail::drop_privileges(); }},
    {JailPhase::lockdown, "run: Landlock", false, jail::restrict_landlock},
    {JailPhase::lockdown, "run: seccomp", false,
     [](const RunJail&) { return jail::install_seccomp(); }},
};

Status apply_jail(JailPhase phase, const RunJail& run) {
  for (const JailStep& step : kJailSteps) {
    if (step.phase != phase || (!run.sandbox && !step.without_sandbox)) continue;
    if (auto s = step.apply(run); !s)
      return make_error(std::string(step.name) + ": " + s.error().message);
    mark_step(step.name);
  }
  return {};
}

bool valid_pip_key(const std::string& key) {
  if (key.size() != 64) return false;
  for (char c : key)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

Status jail_enter_zygote(int control, const std::vector<std::string>& writable_roots,
                         const std::vector<HostMount>& mounts, const std::string& pip_root,
                         const std::string& mcps_root) {
  jail::Config& c = jail::config();
  c.mounts = mounts;
  c.pip_root = pip_root;
  c.mcps_root = mcps_root;
  for (const auto& w : writable_roots) {
    if (w.empty() || w[0] != '/' || w == "/" || w.find("/..") != std::string::npos ||
        w.rfind("/proc", 0) == 0 || w.rfind("/dev", 0) == 0 || w.rfind("/usr", 0) == 0 ||
        w.rfind("/etc", 0) == 0 || w.rfind("/deps", 0) == 0 || jail::within(w, ipc::kMcpsDir))
      return make_error("writable path not allowed in the sandbox: " + w);
  }
  c.writable_roots = writable_roots;
  if (auto s = jail::unshare_worker_namespaces(); !s) return s;
  if (!c.pip_root.empty()) {
    // Opened in the new mount namespace but still as the host's user (the ids change below):
    // the cache directory may sit below directories the namespace's unprivileged uid cannot
    // search, while a set's own tree is world-readable.
    c.pip_fd = ::open(c.pip_root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (c.pip_fd < 0) return make_error(jail::why("pip root " + c.pip_root));
  }
  if (!c.mcps_root.empty()) {
    c.mcps_fd = ::open(c.mcps_root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (c.mcps_fd < 0) return make_error(jail::why("mcps root " + c.mcps_root));
  }
  if (auto s = jail::become_root_of_user_namespace(control); !s) return s;
  if (auto s = jail::build_root(); !s) return s;

  pid_t inner = ::fork();
  if (inner < 0) return make_error(jail::why("fork"));
  if (inner == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    // pid 1 of our own pid namespace: a /proc of our own, and a handle to reset pid_ns_for_children.
    if (::mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0)
      return make_error(jail::why("mount /proc"));
    c.own_pidns = ::open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
    if (c.own_pidns < 0) return make_error(jail::why("open pid namespace"));
    return {};
  }
  // Outer: nothing left to do but mirror the zygote's fate.
  ::close(control);
  int status = 0;
  while (::waitpid(inner, &status, 0) < 0 && errno == EINTR) {
  }
  _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
}

Status jail_prepare_filters() {
  auto prog = sandbox::child::SeccompProgram::build();
  if (!prog) return prog.error();
  jail::config().seccomp.emplace(std::move(*prog));
  return {};
}

Status jail_lockdown_relay() {
  if (auto s = jail::drop_privileges(); !s) return s;
  if (auto s = jail::restrict_landlock(RunJail{}); !s) return s;
  return jail::install_seccomp();
}

}  // namespace onemcp::worker
