// sandbox/cgroup.h — per-run cgroup scopes (memory, pids, cpu, freezer) beneath the server's own
// cgroup, on cgroup v1, v2 or a hybrid of both. The supervisor owns one CgroupManager and one
// CgroupScope per run.
// Thread-safety: CgroupManager is immutable after create(); new_scope() may be called from many threads
// at once. A CgroupScope is owned by one run; its const accessors and add() may be called from any
// thread. The manager must outlive its scopes.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"

namespace onemcp::sandbox {

struct CgroupLimits {
  uint64_t memory_bytes = 0;  // 0: no limit
  uint32_t pids_max = 0;      // 0: no limit
  uint32_t cpu_weight = 0;    // 0: default; 1..10000 with v2 semantics (100 = normal)
};

// One cgroup hierarchy the server sits in, found from /proc/self/cgroup + /proc/self/mountinfo.
// Exposed so the path logic can be tested on synthetic text.
struct CgroupHierarchy {
  int version = 1;                       // 1 or 2
  std::string own_dir;                   // the server's own cgroup directory in this hierarchy
  std::vector<std::string> controllers;  // v1: wanted controllers it carries; v2: empty (read from
                                         // <own_dir>/cgroup.controllers when the manager is created)
};

// Pure: parses the two files' text. Only memory, pids, cpu and freezer are looked for; named v1
// hierarchies, unmounted hierarchies and cgroups outside the mount's root are skipped.
std::vector<CgroupHierarchy> find_cgroup_hierarchies(std::string_view proc_self_cgroup,
                                                     std::string_view proc_self_mountinfo);

class CgroupScope;

class CgroupManager {
 public:
  // Discovers the hierarchies (proc_root is injectable for tests), sweeps parents left by dead servers,
  // creates "<own>/1mcp-<pid>" per hierarchy and enables the controllers there. On v2 the server moves
  // itself into "<own>/1mcp-<pid>/supervisor" first when its own cgroup holds processes, because a
  // cgroup with processes cannot enable controllers for its children. Call it before starting any
  // worker: processes spawned earlier stay behind in <own> and make enabling fail.
  // Fails only when none of memory, pids, cpu and freezer can be used; has_*() tell which work.
  // The freezer is v1's controller or v2's cgroup.freeze (every v2 cgroup has one); it is optional
  // and listed in describe() only when present. `only_version` 1 or 2 ignores the hierarchies of
  // the other version (tests use it to reach both freezers on a hybrid host).
  static Result<std::unique_ptr<CgroupManager>> create(std::string proc_root = "/proc",
                                                       int only_version = 0);
  ~CgroupManager();  // removes the parents it created (best effort)
  CgroupManager(const CgroupManager&) = delete;
  CgroupManager& operator=(const CgroupManager&) = delete;

  std::string describe() const;  // e.g. "cgroup v1: memory, pids, cpu, freezer", for the log
  bool has_memory() const;
  bool has_pids() const;
  bool has_cpu() const;
  bool has_freezer() const;

  // "<parent>/run-<n>" in each hierarchy, limits written. Limits set to 0 are left at the default.
  // A scope whose run left nothing behind is recycled (see ~CgroupScope) and handed out again
  // before a new one is made: making and removing a scope's directories (about 30 control files
  // each in four v1 hierarchies) costs more than the rest of a small run's cgroup work.
  Result<std::unique_ptr<CgroupScope>> new_scope(const CgroupLimits& limits);

  // Scopes recycled and not handed out yet (tests).
  size_t pooled() const;

  struct Hierarchy {
    int version = 1;
    std::string own_dir;
    std::string parent_dir;                // "<own_dir>/1mcp-<pid>"
    std::vector<std::string> controllers;  // the ones that work
    bool moved_self = false;               // v2: the server now lives in <parent_dir>/supervisor
  };

 private:
  friend class CgroupScope;
  CgroupManager() = default;
  const Hierarchy* find(std::string_view controller) const;
  // Takes the scope's directories into the pool when its run left nothing in them; false: the
  // caller removes them.
  bool recycle(CgroupScope& s);

  std::vector<Hierarchy> hier_;  // only those with at least one working controller
  std::string describe_;
  mutable std::mutex pool_mu_;
  std::vector<std::unique_ptr<CgroupScope>> pool_;  // newest last
};

// One run's cgroups. The destructor hands the scope back to its manager for the next run when the
// run left nothing behind: no process alive and at most one not yet reaped, no OOM kill,
// never frozen, at most kRecycleMemoryBytes still charged (page cache and kernel objects the
// kernel reclaims under the next run's limit like any other); the memory peak is reset then.
// Otherwise it kills whatever is still inside and removes the directories.
class CgroupScope {
 public:
  ~CgroupScope();
  CgroupScope(const CgroupScope&) = delete;
  CgroupScope& operator=(const CgroupScope&) = delete;

  Status add(pid_t pid);  // moves pid (its whole thread group) into every hierarchy of the scope

  // Memory a recycled scope may still have charged (see the class comment).
  static constexpr uint64_t kRecycleMemoryBytes = 4ull << 20;

  // Changes the memory limit (and its no-swap twin) written when the scope was made; 0: none.
  // Nothing to do without the memory controller.
  Status set_memory_limit(uint64_t bytes);

  // Freezes every process of the scope, waits up to `patience` until all of them are frozen, then
  // SIGKILLs them all. A frozen tree cannot fork past the kill, and once frozen nothing of it runs
  // or writes any more, whatever the kernel still has to tear down. Returns whether all were
  // frozen in time (false without a freezer); they are SIGKILLed either way. Does not wait for
  // them to die: the destructor does.
  bool freeze_and_kill(std::chrono::milliseconds patience);
  // Freezes (or thaws) every process of the scope, without waiting: a session's live
  // interpreter between its calls runs nothing. False without a freezer, or when the kernel
  // refused.
  bool set_frozen(bool frozen);
  bool has_freezer() const { return !freezer_dir_.empty(); }
  bool oom_killed() const;
  // Bytes since the scope was made or recycled; 0 when the kernel does not report it.
  uint64_t memory_peak() const;
  uint32_t pids_current() const;
  // The processes (thread groups) in the scope, from its first hierarchy; one whose every thread
  // has begun to exit is not listed.
  Result<std::vector<pid_t>> processes() const;
  const std::vector<std::string>& dirs() const { return dirs_; }  // for tests and diagnostics

 private:
  friend class CgroupManager;
  CgroupScope() = default;
  CgroupScope(CgroupScope&&) = default;      // recycling: the pool takes over a scope's state
  Status apply(const CgroupLimits& limits);  // writes what differs from the scope's current limits
  Status reset_peak();                       // for its next run
  // The control files every run reads or writes (cgroup.procs, pids.current, the memory
  // counters) are opened once per scope, which recycling keeps for many runs, instead of
  // resolving their long paths from the cgroup root at each use. A scope serves one run at a
  // time, so these need no lock. read: the whole file; write: errno, 0 on success.
  int control(const std::string& path) const;
  Result<std::string> read_control(const std::string& path) const;
  int write_control(const std::string& path, std::string_view value) const;

  CgroupManager* manager_ = nullptr;  // recycles it; null once the manager is going away
  std::vector<std::string> dirs_;     // one per hierarchy, created in this order
  std::vector<int> versions_;         // parallel to dirs_
  std::string memory_dir_, pids_dir_, freezer_dir_, cpu_dir_;
  int memory_version_ = 0, freezer_version_ = 0, cpu_version_ = 0;
  uint64_t memory_limit_ = 0;  // as last written (0: none)
  uint32_t pids_max_ = 0;      // as last written (0: none)
  uint32_t cpu_weight_ = 100;  // as last written (100: the default)
  UniqueFd peak_fd_;           // v2: memory.peak, whose reset holds only for reads through this fd
  mutable std::vector<std::pair<std::string, UniqueFd>> controls_;  // see control()
  bool frozen_ = false;        // freeze_and_kill() was used: never recycled
};

}  // namespace onemcp::sandbox
