#include "sandbox/cgroup.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>

#include "base/log.h"
#include "base/unique_fd.h"

namespace onemcp::sandbox {
namespace {

constexpr const char* kWanted[] = {"memory", "pids", "cpu", "freezer"};
// The controllers a server is described as missing; the freezer is optional (see create()).
constexpr const char* kLimits[] = {"memory", "pids", "cpu"};

// Process-wide, so two managers in one process (tests) never hand out the same run directory.
std::atomic<uint64_t> g_run_counter{0};

std::string sys_error(const std::string& what, const std::string& path, int err) {
  return what + " " + path + ": " + std::strerror(err);
}

// The whole file from offset 0 (pread, so a control file kept open re-reads from the start).
Result<std::string> read_all(int fd, const std::string& path) {
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::pread(fd, buf, sizeof buf, off_t(out.size()));
    if (n > 0) {
      out.append(buf, size_t(n));
    } else if (n == 0) {
      return out;
    } else if (errno != EINTR) {
      return make_error(sys_error("cannot read", path, errno));
    }
  }
}

// Control files are written with one write(2) at offset 0: the kernel parses each write as a
// whole. Returns the errno (0 on success).
int write_all(int fd, std::string_view value) {
  ssize_t n;
  do {
    n = ::pwrite(fd, value.data(), value.size(), 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return errno;
  return size_t(n) == value.size() ? 0 : EIO;
}

Result<std::string> read_file(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return make_error(sys_error("cannot read", path, errno));
  return read_all(fd.get(), path);
}

// Returns the errno (0 on success) so callers can tell "file absent" (ENOENT) from a refusal.
int write_file_errno(const std::string& path, std::string_view value) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd.valid()) return errno;
  return write_all(fd.get(), value);
}

Status write_file(const std::string& path, std::string_view value) {
  if (int e = write_file_errno(path, value))
    return make_error(sys_error("cannot write " + std::string(value) + " to", path, e));
  return {};
}

bool exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (;;) {
    size_t end = s.find(sep, start);
    out.push_back(s.substr(start, end - start));
    if (end == std::string_view::npos) return out;
    start = end + 1;
  }
}

bool contains(const std::vector<std::string_view>& v, std::string_view x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

// "key value" lines (memory.events, memory.oom_control, ...).
uint64_t key_value(std::string_view text, std::string_view key) {
  for (auto line : split(text, '\n')) {
    if (line.size() > key.size() && line.substr(0, key.size()) == key && line[key.size()] == ' ')
      return std::strtoull(std::string(line.substr(key.size() + 1)).c_str(), nullptr, 10);
  }
  return 0;
}

uint64_t read_key(const std::string& path, std::string_view key) {
  auto text = read_file(path);
  return text ? key_value(*text, key) : 0;
}

std::vector<pid_t> parse_pids(std::string_view text) {
  std::vector<pid_t> pids;
  for (auto line : split(text, '\n')) {
    if (!line.empty()) pids.push_back(pid_t(std::strtol(std::string(line).c_str(), nullptr, 10)));
  }
  return pids;
}

std::vector<pid_t> read_pids(const std::string& dir) {
  auto text = read_file(dir + "/cgroup.procs");
  return text ? parse_pids(*text) : std::vector<pid_t>{};
}

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string unescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    auto oct = [&](size_t k) { return s[k] >= '0' && s[k] <= '7'; };
    if (s[i] == '\\' && i + 3 < s.size() && oct(i + 1) && oct(i + 2) && oct(i + 3)) {
      out.push_back(char((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

struct Mount {
  std::string root, point, fstype;
  std::vector<std::string> options;  // super options: "rw", "memory", ...
};

std::vector<Mount> parse_mounts(std::string_view mountinfo) {
  std::vector<Mount> out;
  for (auto line : split(mountinfo, '\n')) {
    auto f = split(line, ' ');
    auto dash = std::find(f.begin(), f.end(), "-");
    if (f.size() < 5 || dash == f.end() || f.end() - dash < 4) continue;
    Mount m{unescape(f[3]), unescape(f[4]), std::string(dash[1]), {}};
    if (m.fstype != "cgroup" && m.fstype != "cgroup2") continue;
    for (auto o : split(dash[3], ',')) m.options.emplace_back(o);
    out.push_back(std::move(m));
  }
  return out;
}

// The cgroup path as seen in /proc/self/cgroup, located beneath a mount of that hierarchy; empty when
// the cgroup is outside what the mount shows (e.g. a bind mount of a sub-tree).
std::string locate(const Mount& m, const std::string& path) {
  std::string rel;
  if (m.root == "/") {
    rel = path;
  } else if (path == m.root) {
    rel = "/";
  } else if (path.size() > m.root.size() && path.compare(0, m.root.size(), m.root) == 0 &&
             path[m.root.size()] == '/') {
    rel = path.substr(m.root.size());
  } else {
    return {};
  }
  if (rel.find("/..") != std::string::npos) return {};  // outside our cgroup namespace
  if (rel == "/") return m.point;
  return (m.point == "/" ? "" : m.point) + rel;
}

bool is_dead_server(std::string_view name) {
  if (name.size() <= 5 || name.substr(0, 5) != "1mcp-") return false;
  auto digits = name.substr(5);
  if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return false;
  pid_t pid = pid_t(std::strtol(std::string(digits).c_str(), nullptr, 10));
  return pid != ::getpid() && ::kill(pid, 0) != 0 && errno == ESRCH;
}

// SIGKILLs every process in `dir` once. Returns true when the kernel did it (v2 cgroup.kill, which
// also catches processes forked meanwhile); otherwise what was listed got the signal and a process
// forked since may have escaped it. Never signals the server itself.
bool kill_listed(const std::string& dir, int version) {
  if (version == 2 && write_file_errno(dir + "/cgroup.kill", "1") == 0) return true;
  for (pid_t p : read_pids(dir))
    if (p != ::getpid()) ::kill(p, SIGKILL);
  return false;
}

// SIGKILLs every process in `dir` until it is empty. Never signals the server itself.
void kill_all(const std::string& dir, int version) {
  const pid_t self = ::getpid();
  bool killed_by_kernel = kill_listed(dir, version);
  for (int round = 0; round < 2000; ++round) {
    auto pids = read_pids(dir);
    pids.erase(std::remove(pids.begin(), pids.end(), self), pids.end());
    if (pids.empty()) return;
    // Repeat: a process may fork between our read and its death (the pids limit bounds this).
    if (!killed_by_kernel)
      for (pid_t p : pids) ::kill(p, SIGKILL);
    ::usleep(round < 10 ? 50 : 1000);
  }
}

// rmdir fails with EBUSY while killed processes are still exiting; retry for about two seconds.
Status remove_dir(const std::string& dir) {
  for (int attempt = 0;; ++attempt) {
    if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) return {};
    if (errno != EBUSY || attempt >= 400) return make_error(sys_error("cannot remove", dir, errno));
    ::usleep(attempt < 20 ? 100 : 5000);
  }
}

std::vector<std::string> subdirs(const std::string& dir) {
  std::vector<std::string> out;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      if (e->d_type == DT_DIR && std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0)
        out.push_back(dir + "/" + e->d_name);
    }
    ::closedir(d);
  }
  return out;
}

// Depth first: a cgroup with child cgroups cannot be removed.
void remove_tree(const std::string& dir, int version) {
  for (auto& s : subdirs(dir)) remove_tree(s, version);
  kill_all(dir, version);
  if (auto s = remove_dir(dir); !s) log::warn(s.error().message);
}

// Parents of servers that died without cleaning up, and a parent carrying our own pid from an earlier
// life (containers reuse pids): whatever runs in them belongs to nobody any more.
std::vector<std::string> stale_dirs(const std::string& own_dir, const std::string& parent_dir) {
  std::vector<std::string> stale;
  if (exists(parent_dir)) stale.push_back(parent_dir);
  if (DIR* d = ::opendir(own_dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      if (e->d_type == DT_DIR && is_dead_server(e->d_name))
        stale.push_back(own_dir + "/" + e->d_name);
    }
    ::closedir(d);
  }
  return stale;
}

void sweep_stale(const std::string& own_dir, const std::string& parent_dir, int version) {
  for (auto& s : stale_dirs(own_dir, parent_dir)) remove_tree(s, version);
}

// A v1 freezer holds even a SIGKILLed process until it is thawed, and a server that died between
// freezing a run and killing it leaves it frozen: no hierarchy's kill could end it, and its
// directories could never be removed. Each directory is thawed itself (v1 keeps a child's own
// FROZEN state when its parent thaws).
void thaw_tree(const std::string& dir) {
  (void)write_file_errno(dir + "/freezer.state", "THAWED");
  for (auto& s : subdirs(dir)) thaw_tree(s);
}

const char* v1_probe(std::string_view controller) {
  if (controller == "memory") return "memory.limit_in_bytes";
  if (controller == "pids") return "pids.max";
  if (controller == "freezer") return "freezer.state";
  return "cpu.shares";
}

// Sets up one hierarchy's parent directory; appends why a controller is missing to `notes`.
void prepare(CgroupManager::Hierarchy& h, std::vector<std::string> candidates, std::string& notes) {
  auto note = [&](const std::string& what) { notes += (notes.empty() ? "" : "; ") + what; };
  if (::mkdir(h.parent_dir.c_str(), 0755) != 0 && errno != EEXIST) {
    note(sys_error("cannot create", h.parent_dir, errno));
    return;
  }
  if (h.version == 1) {
    for (auto& c : candidates) {
      if (exists(h.parent_dir + "/" + v1_probe(c))) {
        h.controllers.push_back(c);
        // A new memcg copies its parent's swappiness, so runs get 0 without a write each; best
        // effort, some kernels refuse it.
        if (c == "memory") (void)write_file_errno(h.parent_dir + "/memory.swappiness", "0");
      } else {
        note(c + ": no " + v1_probe(c) + " in " + h.parent_dir);
      }
    }
    return;
  }
  // v2's freezer is a core file of every non-root cgroup: nothing to enable.
  auto freezer = std::find(candidates.begin(), candidates.end(), "freezer");
  if (freezer != candidates.end()) {
    candidates.erase(freezer);
    if (exists(h.parent_dir + "/cgroup.freeze")) {
      h.controllers.emplace_back("freezer");
    } else {
      note("freezer: no cgroup.freeze in " + h.parent_dir);
    }
  }
  if (candidates.empty()) return;
  // v2 "no internal processes": <own> may only enable controllers for its children once no process
  // lives in it, so the server moves itself into a leaf of its own parent.
  if (!read_pids(h.own_dir).empty()) {
    std::string leaf = h.parent_dir + "/supervisor";
    if (::mkdir(leaf.c_str(), 0755) != 0 && errno != EEXIST) {
      note(sys_error("cannot create", leaf, errno));
      return;
    }
    if (auto s = write_file(leaf + "/cgroup.procs", std::to_string(::getpid())); !s) {
      note(s.error().message);
      return;
    }
    h.moved_self = true;
  }
  auto enabled = read_file(h.own_dir + "/cgroup.subtree_control");
  auto enabled_list = split(enabled ? *enabled : std::string(), ' ');
  for (auto& c : candidates) {
    // One write per controller: a combined write is all-or-nothing and would hide which one failed.
    bool on = false;
    for (auto& tok : enabled_list) on |= tok == c || tok == c + "\n";
    Status s;
    if (!on) s = write_file(h.own_dir + "/cgroup.subtree_control", "+" + c);
    if (s) s = write_file(h.parent_dir + "/cgroup.subtree_control", "+" + c);
    if (s) {
      h.controllers.push_back(c);
    } else {
      note(c + ": " + s.error().message);
    }
  }
}

}  // namespace

std::vector<CgroupHierarchy> find_cgroup_hierarchies(std::string_view proc_self_cgroup,
                                                     std::string_view proc_self_mountinfo) {
  auto mounts = parse_mounts(proc_self_mountinfo);
  std::vector<CgroupHierarchy> out;
  for (auto line : split(proc_self_cgroup, '\n')) {
    // "id:controllers:path"; the path itself may contain ':'.
    size_t a = line.find(':');
    size_t b = a == std::string_view::npos ? a : line.find(':', a + 1);
    if (b == std::string_view::npos) continue;
    auto ctrls = split(line.substr(a + 1, b - a - 1), ',');
    std::string path(line.substr(b + 1));
    if (line.substr(0, a) == "0" && ctrls.size() == 1 && ctrls[0].empty()) {
      for (auto& m : mounts) {
        if (m.fstype != "cgroup2") continue;
        if (auto dir = locate(m, path); !dir.empty()) {
          out.push_back({2, dir, {}});
          break;
        }
      }
      continue;
    }
    std::vector<std::string> wanted;
    for (auto* w : kWanted)
      if (contains(ctrls, w)) wanted.emplace_back(w);
    if (wanted.empty()) continue;
    for (auto& m : mounts) {
      if (m.fstype != "cgroup" ||
          std::find(m.options.begin(), m.options.end(), wanted[0]) == m.options.end())
        continue;
      if (auto dir = locate(m, path); !dir.empty()) {
        out.push_back({1, dir, wanted});
        break;
      }
    }
  }
  return out;
}

Result<std::unique_ptr<CgroupManager>> CgroupManager::create(std::string proc_root,
                                                             int only_version) {
  auto cg = read_file(proc_root + "/self/cgroup");
  if (!cg) return cg.error();
  auto mi = read_file(proc_root + "/self/mountinfo");
  if (!mi) return mi.error();

  std::unique_ptr<CgroupManager> m(new CgroupManager());
  std::string notes;
  std::vector<std::string> have;  // controllers already served by a v1 hierarchy
  auto found = find_cgroup_hierarchies(*cg, *mi);
  if (only_version != 0)
    std::erase_if(found, [&](const CgroupHierarchy& f) { return f.version != only_version; });
  // v1 first: a controller bound to a v1 hierarchy is never available in v2 anyway.
  std::stable_sort(found.begin(), found.end(), [](auto& x, auto& y) { return x.version < y.version; });
  const std::string name = "1mcp-" + std::to_string(::getpid());
  // Leftovers are thawed before any hierarchy's sweep kills them (see thaw_tree).
  for (auto& f : found) {
    const bool freezer =
        std::find(f.controllers.begin(), f.controllers.end(), "freezer") != f.controllers.end();
    if (f.version == 1 && freezer)
      for (auto& s : stale_dirs(f.own_dir, f.own_dir + "/" + name)) thaw_tree(s);
  }
  for (auto& f : found) {
    std::vector<std::string> candidates = f.controllers;
    if (f.version == 2) {
      auto avail = read_file(f.own_dir + "/cgroup.controllers");
      std::string text = avail ? *avail : std::string();
      std::replace(text.begin(), text.end(), '\n', ' ');
      auto list = split(text, ' ');
      list.push_back("freezer");  // a core file, not a controller listed there
      for (auto* w : kWanted)
        if (contains(list, w) && std::find(have.begin(), have.end(), w) == have.end())
          candidates.emplace_back(w);
      if (candidates.empty()) continue;  // e.g. the empty "unified" hierarchy of a hybrid host
    }
    Hierarchy h{f.version, f.own_dir, f.own_dir + "/" + name, {}, false};
    sweep_stale(h.own_dir, h.parent_dir, h.version);
    prepare(h, candidates, notes);
    if (h.controllers.empty()) {
      // Nothing got enabled, so <own> takes the server back.
      if (h.moved_self) (void)write_file_errno(h.own_dir + "/cgroup.procs", std::to_string(::getpid()));
      remove_tree(h.parent_dir, h.version);
      continue;
    }
    have.insert(have.end(), h.controllers.begin(), h.controllers.end());
    m->hier_.push_back(std::move(h));
  }

  std::string desc, missing;
  for (int v : {1, 2}) {
    std::string list;
    for (auto* w : kWanted)
      if (auto* h = m->find(w); h && h->version == v) list += (list.empty() ? "" : ", ") + std::string(w);
    if (!list.empty()) desc += (desc.empty() ? "" : "; ") + ("cgroup v" + std::to_string(v) + ": " + list);
  }
  for (auto* w : kLimits)
    if (!m->find(w)) missing += (missing.empty() ? "" : ", ") + std::string(w);
  if (desc.empty()) {
    return make_error("no usable cgroup controller (memory, pids, cpu, freezer)" +
                      (notes.empty() ? std::string() : ": " + notes));
  }
  if (!missing.empty()) desc += "; missing: " + missing + (notes.empty() ? "" : " (" + notes + ")");
  m->describe_ = desc;
  return m;
}

CgroupManager::~CgroupManager() {
  for (auto& s : pool_) s->manager_ = nullptr;
  pool_.clear();  // their directories are removed now
  // What is still frozen (a session's interpreter between calls) is thawed first, or no
  // hierarchy's kill below could end it (see thaw_tree).
  for (auto& h : hier_)
    if (h.version == 1 &&
        std::find(h.controllers.begin(), h.controllers.end(), "freezer") != h.controllers.end())
      thaw_tree(h.parent_dir);
  for (auto& h : hier_) {
    // v2: moving back fails while <own> has controllers enabled; the leaf then stays until the next
    // server's start-up sweep removes it.
    if (h.moved_self &&
        write_file_errno(h.own_dir + "/cgroup.procs", std::to_string(::getpid())) != 0)
      continue;
    remove_tree(h.parent_dir, h.version);
  }
}

std::string CgroupManager::describe() const { return describe_; }

const CgroupManager::Hierarchy* CgroupManager::find(std::string_view controller) const {
  for (auto& h : hier_)
    if (std::find(h.controllers.begin(), h.controllers.end(), controller) != h.controllers.end())
      return &h;
  return nullptr;
}

bool CgroupManager::has_memory() const { return find("memory") != nullptr; }
bool CgroupManager::has_pids() const { return find("pids") != nullptr; }
bool CgroupManager::has_cpu() const { return find("cpu") != nullptr; }
bool CgroupManager::has_freezer() const { return find("freezer") != nullptr; }

Result<std::unique_ptr<CgroupScope>> CgroupManager::new_scope(const CgroupLimits& limits) {
  if (limits.cpu_weight > 10000) return make_error("cpu weight must be 1..10000");
  std::unique_ptr<CgroupScope> s;
  {
    std::lock_guard lk(pool_mu_);
    if (!pool_.empty()) {
      s = std::move(pool_.back());
      pool_.pop_back();
    }
  }
  if (s) {
    if (s->apply(limits)) return s;
    s->manager_ = nullptr;  // removed, and a new one made below
    s.reset();
  }
  const std::string name = "/run-" + std::to_string(++g_run_counter);
  s.reset(new CgroupScope());
  for (auto& h : hier_) {
    std::string dir = h.parent_dir + name;
    if (::mkdir(dir.c_str(), 0755) != 0) return make_error(sys_error("cannot create", dir, errno));
    s->dirs_.push_back(dir);  // from here on the scope's destructor removes it
    s->versions_.push_back(h.version);
    for (auto& c : h.controllers) {
      if (c == "memory") {
        s->memory_dir_ = dir;
        s->memory_version_ = h.version;
        // Its reset (for a recycled scope) holds only for reads through this fd.
        if (h.version == 2)
          s->peak_fd_ = UniqueFd(::open((dir + "/memory.peak").c_str(), O_RDWR | O_CLOEXEC));
      } else if (c == "freezer") {
        s->freezer_dir_ = dir;
        s->freezer_version_ = h.version;
      } else if (c == "pids") {
        s->pids_dir_ = dir;
      } else if (c == "cpu") {
        s->cpu_dir_ = dir;
        s->cpu_version_ = h.version;
      }
    }
  }
  if (auto st = s->apply(limits); !st) return st.error();
  s->manager_ = this;
  return s;
}

size_t CgroupManager::pooled() const {
  std::lock_guard lk(pool_mu_);
  return pool_.size();
}

bool CgroupManager::recycle(CgroupScope& s) {
  constexpr size_t kMaxPooled = 64;
  if (s.frozen_ || s.dirs_.empty()) return false;
  {
    std::lock_guard lk(pool_mu_);
    if (pool_.size() >= kMaxPooled) return false;
  }
  // No process is left alive. pids.current also counts the dead until they are reaped: the run's
  // own process (pid 1 of its pid namespace, so the last of it to go) may still be waiting for
  // its zygote to reap it, which uncharges it from this scope moments later.
  auto procs = s.processes();
  if (!procs || !procs->empty() || (!s.pids_dir_.empty() && s.pids_current() > 1)) return false;
  if (!s.memory_dir_.empty()) {
    if (s.oom_killed()) return false;  // its counter would stay set for the next run
    const char* usage = s.memory_version_ == 1 ? "/memory.usage_in_bytes" : "/memory.current";
    auto charged = s.read_control(s.memory_dir_ + usage);
    if (!charged || std::strtoull(charged->c_str(), nullptr, 10) > CgroupScope::kRecycleMemoryBytes)
      return false;
    if (!s.reset_peak()) return false;
  }
  // The dying scope's state moves into the pool (its destructor returns at once: recycled).
  std::unique_ptr<CgroupScope> kept(new CgroupScope(std::move(s)));
  std::lock_guard lk(pool_mu_);
  pool_.push_back(std::move(kept));
  return true;
}

Status CgroupScope::apply(const CgroupLimits& limits) {
  if (auto st = set_memory_limit(limits.memory_bytes); !st) return st;
  if (!pids_dir_.empty() && limits.pids_max != pids_max_) {
    const std::string n = limits.pids_max ? std::to_string(limits.pids_max) : "max";
    if (auto st = write_file(pids_dir_ + "/pids.max", n); !st) return st;
    pids_max_ = limits.pids_max;
  }
  const uint32_t weight = limits.cpu_weight ? limits.cpu_weight : 100;
  if (!cpu_dir_.empty() && weight != cpu_weight_) {
    Status st;
    if (cpu_version_ == 1) {
      uint64_t shares = std::max<uint64_t>(2, uint64_t(weight) * 1024 / 100);
      st = write_file(cpu_dir_ + "/cpu.shares", std::to_string(shares));
    } else {
      st = write_file(cpu_dir_ + "/cpu.weight", std::to_string(weight));
    }
    if (!st) return st;
    cpu_weight_ = weight;
  }
  return {};
}

Status CgroupScope::reset_peak() {
  if (memory_dir_.empty()) return {};
  if (memory_version_ == 1) {
    const std::string path = memory_dir_ + "/memory.max_usage_in_bytes";
    if (int e = write_control(path, "0"))
      return make_error(sys_error("cannot write 0 to", path, e));
    return {};
  }
  // v2 (Linux 6.12+): a write resets the peak for reads through the same open file.
  if (!peak_fd_.valid()) return make_error("no memory.peak to reset");
  constexpr std::string_view kReset = "reset\n";
  if (::pwrite(peak_fd_.get(), kReset.data(), kReset.size(), 0) != ssize_t(kReset.size()))
    return make_error(sys_error("cannot reset", memory_dir_ + "/memory.peak", errno));
  return {};
}

Status CgroupScope::set_memory_limit(uint64_t bytes) {
  if (memory_dir_.empty() || bytes == memory_limit_) return {};
  const std::string& dir = memory_dir_;
  const std::string n = bytes ? std::to_string(bytes) : (memory_version_ == 1 ? "-1" : "max");
  if (memory_version_ == 2) {
    if (auto st = write_file(dir + "/memory.max", n); !st) return st;
    int e = write_file_errno(dir + "/memory.swap.max", "0");
    if (e && e != ENOENT)
      return make_error(sys_error("cannot write 0 to", dir + "/memory.swap.max", e));
    memory_limit_ = bytes;
    return {};
  }
  // v1 refuses a memsw limit below the memory limit: raise memsw first, lower it last.
  const bool raising = bytes == 0 || (memory_limit_ != 0 && bytes > memory_limit_);
  auto memsw = [&]() -> Status {
    int e = write_file_errno(dir + "/memory.memsw.limit_in_bytes", n);  // no swap escape
    if (e && e != ENOENT)
      return make_error(
          sys_error("cannot write " + n + " to", dir + "/memory.memsw.limit_in_bytes", e));
    return {};
  };
  if (raising) {
    if (auto st = memsw(); !st) return st;
  }
  if (auto st = write_file(dir + "/memory.limit_in_bytes", n); !st) return st;
  if (!raising) {
    if (auto st = memsw(); !st) return st;
  }
  memory_limit_ = bytes;
  return {};
}

Status CgroupScope::add(pid_t pid) {
  const std::string p = std::to_string(pid);
  for (auto& d : dirs_) {
    if (int e = write_control(d + "/cgroup.procs", p))
      return make_error(sys_error("cannot write " + p + " to", d + "/cgroup.procs", e));
  }
  return {};
}

bool CgroupScope::freeze_and_kill(std::chrono::milliseconds patience) {
  if (freezer_dir_.empty()) return false;
  const bool v2 = freezer_version_ == 2;
  const std::string control = freezer_dir_ + (v2 ? "/cgroup.freeze" : "/freezer.state");
  auto is_frozen = [&] {
    if (v2) return read_key(freezer_dir_ + "/cgroup.events", "frozen") == 1;
    auto state = read_file(control);
    return state && *state == "FROZEN\n";
  };
  bool frozen = write_file_errno(control, v2 ? "1" : "FROZEN") == 0;
  // Each process freezes when it next enters the kernel or is next scheduled: microseconds each.
  const auto give_up = std::chrono::steady_clock::now() + patience;
  useconds_t pause = 50;
  while (frozen && !is_frozen()) {
    if (std::chrono::steady_clock::now() >= give_up) {
      frozen = false;  // e.g. a process in uninterruptible sleep: kill what we have
      break;
    }
    ::usleep(pause);
    pause = std::min<useconds_t>(pause * 2, 1000);
  }
  frozen_ = true;
  kill_listed(freezer_dir_, freezer_version_);
  // v1 holds even a SIGKILLed process until it is thawed; v2 lets a fatal signal through.
  if (!v2) (void)write_file_errno(control, "THAWED");
  return frozen;
}

bool CgroupScope::set_frozen(bool frozen) {
  if (freezer_dir_.empty()) return false;
  if (freezer_version_ == 2)
    return write_file_errno(freezer_dir_ + "/cgroup.freeze", frozen ? "1" : "0") == 0;
  return write_file_errno(freezer_dir_ + "/freezer.state", frozen ? "FROZEN" : "THAWED") == 0;
}

bool CgroupScope::oom_killed() const {
  if (memory_dir_.empty()) return false;
  // oom_kill counts kills; failcnt only counts hitting the limit, which reclaim often survives.
  auto text =
      read_control(memory_dir_ + (memory_version_ == 1 ? "/memory.oom_control" : "/memory.events"));
  return text && key_value(*text, "oom_kill") > 0;
}

uint64_t CgroupScope::memory_peak() const {
  if (memory_dir_.empty()) return 0;
  if (peak_fd_.valid()) {
    char buf[32];
    ssize_t n = ::pread(peak_fd_.get(), buf, sizeof buf - 1, 0);
    if (n <= 0) return 0;
    buf[n] = 0;
    return std::strtoull(buf, nullptr, 10);
  }
  auto text = read_control(memory_dir_ +
                           (memory_version_ == 1 ? "/memory.max_usage_in_bytes" : "/memory.peak"));
  return text ? std::strtoull(text->c_str(), nullptr, 10) : 0;
}

uint32_t CgroupScope::pids_current() const {
  if (pids_dir_.empty()) return 0;
  auto text = read_control(pids_dir_ + "/pids.current");
  return text ? uint32_t(std::strtoul(text->c_str(), nullptr, 10)) : 0;
}

Result<std::vector<pid_t>> CgroupScope::processes() const {
  if (dirs_.empty()) return std::vector<pid_t>{};
  auto text = read_control(dirs_[0] + "/cgroup.procs");
  if (!text) return text.error();
  return parse_pids(*text);
}

int CgroupScope::control(const std::string& path) const {
  for (auto& [p, fd] : controls_)
    if (p == path) return fd.get();
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd.valid() && (errno == EACCES || errno == EPERM))
    fd = UniqueFd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));  // a read-only counter
  if (!fd.valid()) return -1;
  controls_.emplace_back(path, std::move(fd));
  return controls_.back().second.get();
}

Result<std::string> CgroupScope::read_control(const std::string& path) const {
  const int fd = control(path);
  if (fd < 0) return make_error(sys_error("cannot read", path, errno));
  return read_all(fd, path);
}

int CgroupScope::write_control(const std::string& path, std::string_view value) const {
  const int fd = control(path);
  return fd < 0 ? errno : write_all(fd, value);
}

CgroupScope::~CgroupScope() {
  if (manager_ && manager_->recycle(*this)) return;
  controls_.clear();
  for (size_t i = dirs_.size(); i-- > 0;) {
    // Usually the run is already gone and rmdir just works; only a busy cgroup needs the kill loop.
    if (::rmdir(dirs_[i].c_str()) == 0 || errno == ENOENT) continue;
    kill_all(dirs_[i], versions_[i]);
    if (auto s = remove_dir(dirs_[i]); !s) log::warn(s.error().message);
  }
}

}  // namespace onemcp::sandbox
