// Per-run cgroup scopes: path discovery on synthetic /proc text and fake trees (CgroupPaths*,
// CgroupFakeTree*), and the real kernel (CgroupKernel*: OOM kill, pids cap, teardown, timing).
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>
#include <thread>

#include "sandbox/cgroup.h"

namespace fs = std::filesystem;
using onemcp::sandbox::CgroupLimits;
using onemcp::sandbox::CgroupManager;
using onemcp::sandbox::CgroupScope;
using onemcp::sandbox::find_cgroup_hierarchies;

namespace {

bool require_kernel() {
  const char* v = std::getenv("ONEMCP_REQUIRE_KERNEL_FEATURES");
  return v && std::string(v) == "1";
}

// In CI a missing kernel feature is a failure, elsewhere a skip.
#define CG_REQUIRE(cond, what)          \
  if (!(cond)) {                        \
    if (require_kernel()) FAIL() << what; \
    GTEST_SKIP() << what;               \
  }

std::string slurp(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void spit(const fs::path& p, const std::string& s) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << s;
}

struct TempDir {
  fs::path path;
  TempDir() {
    char tmpl[] = "/tmp/1mcp-cgtest-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

// ---- discovery from synthetic text ----

constexpr const char* kHybridMountinfo =
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
    "33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n"
    "34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
    "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

TEST(CgroupPaths, HybridHostV1ControllersAndEmptyUnified) {
  auto h = find_cgroup_hierarchies(
      "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/abc\n3:cpuset:/\n2:cpuacct:/\n1:cpu:/\n0::/\n",
      kHybridMountinfo);
  ASSERT_EQ(h.size(), 4u);
  EXPECT_EQ(h[0].version, 1);
  EXPECT_EQ(h[0].own_dir, "/sys/fs/cgroup/pids");
  EXPECT_EQ(h[0].controllers, std::vector<std::string>{"pids"});
  EXPECT_EQ(h[1].own_dir, "/sys/fs/cgroup/memory/process_api/abc");
  EXPECT_EQ(h[1].controllers, std::vector<std::string>{"memory"});
  EXPECT_EQ(h[2].own_dir, "/sys/fs/cgroup/cpu");  // "cpu", not the cpuacct or cpuset mount
  EXPECT_EQ(h[2].controllers, std::vector<std::string>{"cpu"});
  EXPECT_EQ(h[3].version, 2);
  EXPECT_EQ(h[3].own_dir, "/sys/fs/cgroup/unified");
}

TEST(CgroupPaths, V1CoMountedWithMountRootAndEscapes) {
  // A container sees only its own sub-tree: mount root /docker/abc, cpu and cpuacct co-mounted,
  // memory and pids co-mounted under a path with a space.
  const char* mi =
      "50 40 0:29 /docker/abc /sys/fs/cgroup/cpu,cpuacct ro,nosuid - cgroup cgroup rw,cpu,cpuacct\n"
      "51 40 0:32 /docker/abc /my\\040cg/mem rw - cgroup cgroup rw,memory,pids\n"
      "52 40 0:36 /elsewhere /sys/fs/cgroup/blkio rw - cgroup cgroup rw,blkio\n";
  auto h = find_cgroup_hierarchies(
      "7:blkio:/docker/abc\n5:memory,pids:/docker/abc/svc\n2:cpu,cpuacct:/docker/abc\n", mi);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h[0].own_dir, "/my cg/mem/svc");
  EXPECT_EQ(h[0].controllers, (std::vector<std::string>{"memory", "pids"}));
  EXPECT_EQ(h[1].own_dir, "/sys/fs/cgroup/cpu,cpuacct");
  EXPECT_EQ(h[1].controllers, std::vector<std::string>{"cpu"});

  // A cgroup outside what the mount shows cannot be used.
  EXPECT_TRUE(find_cgroup_hierarchies("5:memory,pids:/docker/other\n", mi).empty());
  EXPECT_TRUE(find_cgroup_hierarchies("5:memory,pids:/docker/abcd\n", mi).empty());
  // Not mounted at all.
  EXPECT_TRUE(find_cgroup_hierarchies("5:memory:/x\n", "").empty());
}

TEST(CgroupPaths, V2PureAndNamespaced) {
  const char* mi = "30 25 0:26 / /sys/fs/cgroup rw,nosuid,nodev - cgroup2 cgroup2 rw,nsdelegate\n";
  auto h = find_cgroup_hierarchies("0::/system.slice/1mcp.service\n", mi);
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h[0].version, 2);
  EXPECT_EQ(h[0].own_dir, "/sys/fs/cgroup/system.slice/1mcp.service");
  EXPECT_TRUE(h[0].controllers.empty());

  // Inside a cgroup namespace the process sees itself at "/".
  h = find_cgroup_hierarchies("0::/\n", mi);
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h[0].own_dir, "/sys/fs/cgroup");
  // Outside the namespace root: unusable.
  EXPECT_TRUE(find_cgroup_hierarchies("0::/../sibling\n", mi).empty());
  // Cgroup names may contain ':'.
  h = find_cgroup_hierarchies("0::/a:b\n", mi);
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h[0].own_dir, "/sys/fs/cgroup/a:b");
}

// ---- create() on fake trees (the kernel is simulated by pre-created control files) ----

TEST(CgroupFakeTree, MissingProcIsAClearError) {
  auto m = CgroupManager::create("/nonexistent-proc");
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().message.find("/nonexistent-proc/self/cgroup"), std::string::npos)
      << m.error().message;
}

TEST(CgroupFakeTree, V1CreateAndClearWriteErrors) {
  TempDir t;
  auto cg = t.path / "cg";
  const std::string parent = "1mcp-" + std::to_string(::getpid());
  spit(t.path / "proc/self/cgroup", "4:memory:/managed/x\n2:pids:/\n1:cpu,cpuacct:/\n0::/\n");
  spit(t.path / "proc/self/mountinfo",
       "1 0 0:1 / " + (cg / "memory").string() + " rw - cgroup cgroup rw,memory\n" +
           "2 0 0:2 / " + (cg / "pids").string() + " rw - cgroup cgroup rw,pids\n" +
           "3 0 0:3 / " + (cg / "cpu").string() + " rw - cgroup cgroup rw,cpuacct,cpu\n");
  // A real cgroupfs creates the control files on mkdir; here they exist beforehand (the start-up
  // sweep of a leftover parent cannot remove a directory holding regular files, so they survive).
  spit(cg / "memory/managed/x" / parent / "memory.limit_in_bytes", "");
  spit(cg / "pids" / parent / "pids.max", "");
  fs::create_directories(cg / "cpu");  // no cpu.shares appears: cpu is reported missing
  // Leftovers of a dead server are swept.
  fs::create_directories(cg / "pids/1mcp-999999999/run-3");

  auto m = CgroupManager::create((t.path / "proc").string());
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_TRUE((*m)->has_memory());
  EXPECT_TRUE((*m)->has_pids());
  EXPECT_FALSE((*m)->has_cpu());
  EXPECT_EQ((*m)->describe().rfind("cgroup v1: memory, pids; missing: cpu (cpu: no cpu.shares in ", 0), 0u) << (*m)->describe();
  EXPECT_FALSE(fs::exists(cg / "pids/1mcp-999999999"));
  EXPECT_FALSE(fs::exists(cg / "cpu" / parent));

  // Writing a limit into a directory without control files fails with the path in the message, and
  // the half-made scope is removed again.
  auto s = (*m)->new_scope(CgroupLimits{32u << 20, 8, 100});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("cannot write"), std::string::npos) << s.error().message;
  EXPECT_NE(s.error().message.find(parent + "/run-"), std::string::npos) << s.error().message;
  EXPECT_NE(s.error().message.find("No such file or directory"), std::string::npos);
  for (auto& e : fs::directory_iterator(cg / "pids" / parent))
    EXPECT_EQ(e.path().filename().string().rfind("run-", 0), std::string::npos) << e.path();
}

TEST(CgroupFakeTree, V1LeftoversAreThawedBeforeTheyAreKilled) {
  // A server that died between freezing a run and killing it leaves a frozen process, which a
  // v1 freezer keeps alive through SIGKILL: start-up thaws every directory of a dead server's
  // tree (each keeps its own FROZEN state), before any hierarchy's sweep kills what is in it.
  TempDir t;
  auto cg = t.path / "cg";
  spit(t.path / "proc/self/cgroup", "6:freezer:/\n2:pids:/\n0::/\n");
  spit(t.path / "proc/self/mountinfo",
       "2 0 0:2 / " + (cg / "pids").string() + " rw - cgroup cgroup rw,pids\n" + "6 0 0:6 / " +
           (cg / "freezer").string() + " rw - cgroup cgroup rw,freezer\n");
  spit(cg / "freezer/1mcp-999999999/freezer.state", "THAWED\n");
  spit(cg / "freezer/1mcp-999999999/run-5/freezer.state", "FROZEN\n");
  spit(cg / "freezer/1mcp-1/run-2/freezer.state", "FROZEN\n");  // pid 1 lives: not a leftover
  (void)CgroupManager::create((t.path / "proc").string());
  EXPECT_EQ(slurp(cg / "freezer/1mcp-999999999/run-5/freezer.state"), "THAWED\n");
  EXPECT_EQ(slurp(cg / "freezer/1mcp-999999999/freezer.state"), "THAWED\n");
  EXPECT_EQ(slurp(cg / "freezer/1mcp-1/run-2/freezer.state"), "FROZEN\n");
}

TEST(CgroupFakeTree, V2MovesServerIntoLeafAndEnablesControllers) {
  TempDir t;
  auto cg = t.path / "cg";
  auto own = cg / "system.slice/1mcp.service";
  auto parent = own / ("1mcp-" + std::to_string(::getpid()));
  spit(t.path / "proc/self/cgroup", "0::/system.slice/1mcp.service\n");
  spit(t.path / "proc/self/mountinfo",
       "30 25 0:26 / " + cg.string() + " rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n");
  spit(own / "cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc\n");
  spit(own / "cgroup.procs", std::to_string(::getpid()) + "\n");
  spit(own / "cgroup.subtree_control", "\n");
  spit(parent / "cgroup.subtree_control", "");
  spit(parent / "supervisor/cgroup.procs", "");

  auto m = CgroupManager::create((t.path / "proc").string());
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ((*m)->describe(), "cgroup v2: memory, pids, cpu");
  // The server is no longer an internal process of <own>.
  EXPECT_EQ(slurp(parent / "supervisor/cgroup.procs"), std::to_string(::getpid()));
  EXPECT_EQ(slurp(parent / "cgroup.subtree_control").substr(0, 1), "+");
}

// ---- the real kernel ----

// A forked child that blocks until released, so it can be placed in a scope before it does anything
// (the same order the sandbox uses: otherwise a fork bomb escapes the cgroup).
struct Child {
  pid_t pid = -1;
  int go = -1;
  static Child start(const std::function<void()>& body) {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) std::abort();
    Child c;
    c.pid = ::fork();
    if (c.pid == 0) {
      ::close(p[1]);
      char b;
      if (::read(p[0], &b, 1) != 1) ::_exit(99);
      body();
      ::_exit(0);
    }
    ::close(p[0]);
    c.go = p[1];
    return c;
  }
  void release() {
    char b = 1;
    EXPECT_EQ(::write(go, &b, 1), 1);
    ::close(go);
    go = -1;
  }
  int wait() {
    int st = 0;
    EXPECT_EQ(::waitpid(pid, &st, 0), pid);
    return st;
  }
};

void touch_mib(size_t mib) {
  size_t n = mib << 20;
  auto* p = static_cast<volatile char*>(
      ::mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (p == MAP_FAILED) ::_exit(98);
  for (size_t i = 0; i < n; i += 4096) p[i] = 1;
}

// The wait status of a child that touches `mib` MiB inside `scope` (placed before it starts).
int touch_in(CgroupScope& scope, size_t mib) {
  auto c = Child::start([mib] { touch_mib(mib); });
  EXPECT_TRUE(scope.add(c.pid).ok());
  c.release();
  return c.wait();
}

class CgroupKernel : public ::testing::Test {
 protected:
  void SetUp() override {
    auto m = CgroupManager::create();
    CG_REQUIRE(m.ok(), "cgroups unavailable: " << m.error().message);
    mgr_ = std::move(*m);
    std::cout << "[ cgroups  ] " << mgr_->describe() << "\n";
  }
  std::unique_ptr<CgroupManager> mgr_;
};

TEST_F(CgroupKernel, MemoryLimitOomKills) {
  CG_REQUIRE(mgr_->has_memory(), "no memory controller: " << mgr_->describe());
  auto s = mgr_->new_scope(CgroupLimits{32u << 20, 0, 0});
  ASSERT_TRUE(s.ok()) << s.error().message;
  int st = touch_in(**s, 100);
  ASSERT_TRUE(WIFSIGNALED(st)) << "status " << st;
  EXPECT_EQ(WTERMSIG(st), SIGKILL);
  EXPECT_TRUE((*s)->oom_killed());
  EXPECT_LE((*s)->memory_peak(), uint64_t(32u << 20));
}

// A ready slot's scope is made with a guess of the next run's limit and changed when the run
// asks for another one: lowered, then raised again, then removed.
TEST_F(CgroupKernel, MemoryLimitChangesAfterTheScopeIsMade) {
  CG_REQUIRE(mgr_->has_memory(), "no memory controller: " << mgr_->describe());
  auto s = mgr_->new_scope(CgroupLimits{256u << 20, 0, 0});
  ASSERT_TRUE(s.ok()) << s.error().message;
  ASSERT_TRUE((*s)->set_memory_limit(32u << 20).ok());
  int st = touch_in(**s, 100);
  ASSERT_TRUE(WIFSIGNALED(st)) << "status " << st;
  EXPECT_TRUE((*s)->oom_killed());

  auto t = mgr_->new_scope(CgroupLimits{32u << 20, 0, 0});
  ASSERT_TRUE(t.ok()) << t.error().message;
  ASSERT_TRUE((*t)->set_memory_limit(256u << 20).ok());
  st = touch_in(**t, 100);
  ASSERT_TRUE(WIFEXITED(st)) << "status " << st;
  EXPECT_FALSE((*t)->oom_killed());
  ASSERT_TRUE((*t)->set_memory_limit(0).ok());
  for (auto& dir : (*t)->dirs()) {
    if (fs::exists(fs::path(dir) / "memory.limit_in_bytes")) {
      EXPECT_GT(std::stoull(slurp(fs::path(dir) / "memory.limit_in_bytes")), uint64_t(1) << 40);
    }
    if (fs::exists(fs::path(dir) / "memory.max")) {
      EXPECT_EQ(slurp(fs::path(dir) / "memory.max"), "max\n");
    }
  }
}

TEST_F(CgroupKernel, SmallAllocationFitsWithoutOom) {
  CG_REQUIRE(mgr_->has_memory(), "no memory controller: " << mgr_->describe());
  auto s = mgr_->new_scope(CgroupLimits{32u << 20, 0, 0});
  ASSERT_TRUE(s.ok()) << s.error().message;
  int st = touch_in(**s, 8);
  ASSERT_TRUE(WIFEXITED(st)) << "status " << st;
  EXPECT_EQ(WEXITSTATUS(st), 0);
  EXPECT_FALSE((*s)->oom_killed());
  EXPECT_GE((*s)->memory_peak(), uint64_t(8u << 20));
  // v1: inherited from the parent, so the run cannot page out instead of hitting its limit.
  for (auto& d : (*s)->dirs()) {
    if (fs::exists(fs::path(d) / "memory.swappiness")) {
      EXPECT_EQ(slurp(fs::path(d) / "memory.swappiness"), "0\n");
    }
  }
}

TEST_F(CgroupKernel, PidsCapAndTeardownKillsEverything) {
  CG_REQUIRE(mgr_->has_pids(), "no pids controller: " << mgr_->describe());
  auto s = mgr_->new_scope(CgroupLimits{0, 8, 0});
  ASSERT_TRUE(s.ok()) << s.error().message;
  // Orphaned grandchildren come to us, so we can prove they died of SIGKILL.
  ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  int rep[2];
  ASSERT_EQ(::pipe2(rep, O_CLOEXEC), 0);
  auto c = Child::start([&] {
    ::close(rep[0]);
    int first_errno = 0;
    for (int i = 0; i < 20 && !first_errno; ++i) {
      pid_t p = ::fork();
      if (p == 0) {
        ::close(rep[1]);  // so the reader sees EOF once the child is done
        for (;;) ::pause();
      }
      int rec = p > 0 ? p : -errno;
      if (p < 0) first_errno = errno;
      if (::write(rep[1], &rec, sizeof rec) != sizeof rec) ::_exit(97);
    }
    ::close(rep[1]);
    for (;;) ::pause();
  });
  ::close(rep[1]);
  ASSERT_TRUE((*s)->add(c.pid).ok());
  c.release();
  std::vector<pid_t> kids;
  int err = 0, rec;
  while (::read(rep[0], &rec, sizeof rec) == sizeof rec) {
    if (rec > 0) kids.push_back(rec);
    else err = -rec;
  }
  ::close(rep[0]);
  EXPECT_EQ(kids.size(), 7u);  // the child itself is the 8th
  EXPECT_EQ(err, EAGAIN);
  EXPECT_EQ((*s)->pids_current(), 8u);

  auto dirs = (*s)->dirs();
  s->reset();  // the scope's destructor kills all eight
  int st = c.wait();
  EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) << "status " << st;
  for (pid_t k : kids) {
    int kst = 0;
    ASSERT_EQ(::waitpid(k, &kst, 0), k);
    EXPECT_TRUE(WIFSIGNALED(kst) && WTERMSIG(kst) == SIGKILL);
    EXPECT_EQ(::kill(k, 0), -1);
    EXPECT_EQ(errno, ESRCH);
  }
  ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 0), 0);
  for (auto& d : dirs) EXPECT_FALSE(fs::exists(d)) << d;
}

// A scope is made and removed (a process left inside keeps it from being recycled), or recycled
// after a run that left nothing; both are timed. Nothing is left once the manager is gone.
TEST_F(CgroupKernel, CyclesLeaveNothingBehindAndTiming) {
  using Clock = std::chrono::steady_clock;
  auto us = [](Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double, std::micro>(b - a).count();
  };
  std::vector<double> create_us, add_us, destroy_us, reuse_us, recycle_us;
  fs::path parent;
  for (int i = 0; i < 50; ++i) {
    // Made fresh: the pool is empty, since every scope before was removed.
    auto c = Child::start([] { ::pause(); });
    auto t0 = Clock::now();
    auto s = mgr_->new_scope(CgroupLimits{64u << 20, 64, 100});
    auto t1 = Clock::now();
    ASSERT_TRUE(s.ok()) << s.error().message;
    ASSERT_TRUE((*s)->add(c.pid).ok());
    auto t2 = Clock::now();
    c.release();
    parent = fs::path((*s)->dirs()[0]).parent_path();
    auto t3 = Clock::now();
    s->reset();  // still inside: killed, the directories removed
    auto t4 = Clock::now();
    c.wait();
    ASSERT_EQ(mgr_->pooled(), 0u);
    create_us.push_back(us(t0, t1));
    add_us.push_back(us(t1, t2));
    destroy_us.push_back(us(t3, t4));
  }
  for (int i = 0; i < 50; ++i) {
    auto t0 = Clock::now();
    auto s = mgr_->new_scope(CgroupLimits{64u << 20, 64, 100});
    auto t1 = Clock::now();
    ASSERT_TRUE(s.ok()) << s.error().message;
    auto c = Child::start([] {});
    ASSERT_TRUE((*s)->add(c.pid).ok());
    c.release();
    c.wait();  // reaped: nothing of it is left
    auto t2 = Clock::now();
    s->reset();
    auto t3 = Clock::now();
    ASSERT_EQ(mgr_->pooled(), 1u);
    if (i > 0) reuse_us.push_back(us(t0, t1));
    recycle_us.push_back(us(t2, t3));
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  double total = median(create_us) + median(add_us) + median(destroy_us);
  std::cout << "[ timing   ] " << mgr_->describe() << ": median create " << median(create_us)
            << " us, add " << median(add_us) << " us, destroy " << median(destroy_us)
            << " us, total " << total << " us; recycle " << median(recycle_us) << " us, reuse "
            << median(reuse_us) << " us\n";
  RecordProperty("scope_total_us", int(total));
  int runs = 0;
  for (auto& e : fs::directory_iterator(parent))
    if (e.path().filename().string().rfind("run-", 0) == 0) ++runs;
  EXPECT_EQ(runs, 1) << "only the recycled scope is left";
  mgr_.reset();
  EXPECT_FALSE(fs::exists(parent));
}

// A recycled scope serves the next run with that run's limits and a fresh memory peak; one an
// OOM kill, a freeze or a process left behind marked is removed instead.
TEST_F(CgroupKernel, RecycledScopesCarryNothingOver) {
  CG_REQUIRE(mgr_->has_memory(), "no memory controller: " << mgr_->describe());
  auto a = mgr_->new_scope(CgroupLimits{256u << 20, 64, 50});
  ASSERT_TRUE(a.ok()) << a.error().message;
  ASSERT_EQ(touch_in(**a, 48), 0);
  EXPECT_GE((*a)->memory_peak(), uint64_t(48u << 20));
  const auto dirs = (*a)->dirs();
  a->reset();
  if (mgr_->pooled() == 0) {
    // v2 before Linux 6.12 cannot reset memory.peak: scopes are never recycled there.
    for (auto& d : dirs) EXPECT_FALSE(fs::exists(d)) << d;
    GTEST_SKIP() << "scopes are not recycled on this kernel: " << mgr_->describe();
  }
  auto b = mgr_->new_scope(CgroupLimits{32u << 20, 0, 0});
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ((*b)->dirs(), dirs) << "not the recycled scope";
  EXPECT_EQ(mgr_->pooled(), 0u);
  EXPECT_LT((*b)->memory_peak(), uint64_t(8u << 20)) << "the last run's peak carried over";
  for (auto& d : dirs) {
    const fs::path dir(d);
    if (fs::exists(dir / "pids.max")) {
      EXPECT_EQ(slurp(dir / "pids.max"), "max\n");
    }
    if (fs::exists(dir / "cpu.shares")) {
      EXPECT_EQ(slurp(dir / "cpu.shares"), "1024\n");
    }
    if (fs::exists(dir / "cpu.weight")) {
      EXPECT_EQ(slurp(dir / "cpu.weight"), "100\n");
    }
  }
  // The lower limit holds, and the OOM kill keeps the scope from being recycled.
  int st = touch_in(**b, 100);
  ASSERT_TRUE(WIFSIGNALED(st)) << "status " << st;
  EXPECT_TRUE((*b)->oom_killed());
  b->reset();
  EXPECT_EQ(mgr_->pooled(), 0u);
  for (auto& d : dirs) EXPECT_FALSE(fs::exists(d)) << d;
  auto c = mgr_->new_scope(CgroupLimits{32u << 20, 0, 0});
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_NE((*c)->dirs(), dirs);
  EXPECT_FALSE((*c)->oom_killed());

  if (mgr_->has_freezer()) {  // frozen (a killed run): removed, even with nothing left inside
    ASSERT_EQ(touch_in(**c, 1), 0);
    (*c)->freeze_and_kill(std::chrono::milliseconds(100));
    const auto frozen = (*c)->dirs();
    c->reset();
    EXPECT_EQ(mgr_->pooled(), 0u);
    for (auto& d : frozen) EXPECT_FALSE(fs::exists(d)) << d;
  }
  // One process not yet reaped (a run's own, which its zygote reaps) is no obstacle; its charge
  // goes once it is reaped. Two are.
  if (mgr_->has_pids()) {
    auto d = mgr_->new_scope(CgroupLimits{});
    ASSERT_TRUE(d.ok());
    auto y = Child::start([] {});
    auto z = Child::start([] {});
    ASSERT_TRUE((*d)->add(y.pid).ok());
    ASSERT_TRUE((*d)->add(z.pid).ok());
    y.release();
    z.release();
    siginfo_t info{};
    ASSERT_EQ(::waitid(P_PID, y.pid, &info, WEXITED | WNOWAIT), 0);  // zombies now
    ASSERT_EQ(::waitid(P_PID, z.pid, &info, WEXITED | WNOWAIT), 0);
    EXPECT_EQ((*d)->pids_current(), 2u);
    const auto two = (*d)->dirs();
    d->reset();
    EXPECT_EQ(mgr_->pooled(), 0u);
    for (auto& dir : two) EXPECT_FALSE(fs::exists(dir)) << dir;
    y.wait();
    z.wait();

    auto e = mgr_->new_scope(CgroupLimits{});
    ASSERT_TRUE(e.ok());
    auto x = Child::start([] {});
    ASSERT_TRUE((*e)->add(x.pid).ok());
    x.release();
    ASSERT_EQ(::waitid(P_PID, x.pid, &info, WEXITED | WNOWAIT), 0);
    const auto one = (*e)->dirs();
    e->reset();
    EXPECT_EQ(mgr_->pooled(), 1u);
    x.wait();
    auto f = mgr_->new_scope(CgroupLimits{});
    ASSERT_TRUE(f.ok());
    EXPECT_EQ((*f)->dirs(), one);
    EXPECT_EQ((*f)->pids_current(), 0u);
  }
}

// A fork bomb (every process forks in a loop, capped by pids.max) that also writes to a pipe
// without pause: after freeze_and_kill() nothing of it writes any more, and every process dies.
// `freezer` holds the freezer of the version under test; `capped` the pids limit (the same scope
// when one manager has both).
void expect_bomb_frozen_and_killed(CgroupScope& capped, CgroupScope& freezer) {
  ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0);  // so that every process can be reaped here
  int pipe_fds[2];
  ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC | O_NONBLOCK), 0);
  auto c = Child::start([&] {
    ::close(pipe_fds[0]);
    for (;;) {
      ::fork();
      char b = 'x';
      (void)!::write(pipe_fds[1], &b, 1);  // EAGAIN once the pipe is full, until it is drained
    }
  });
  ::close(pipe_fds[1]);
  ASSERT_TRUE(capped.add(c.pid).ok());
  if (&freezer != &capped) {
    ASSERT_TRUE(freezer.add(c.pid).ok());
  }
  c.release();
  auto drain = [&] {
    char buf[65536];
    size_t total = 0;
    for (ssize_t n; (n = ::read(pipe_fds[0], buf, sizeof buf)) > 0;) total += size_t(n);
    return total;
  };
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (capped.pids_current() < 32 && std::chrono::steady_clock::now() < until) {
    drain();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_GE(capped.pids_current(), 32u);

  auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(freezer.freeze_and_kill(std::chrono::milliseconds(2000)));
  double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::cout << "[ freezer  ] " << capped.pids_current() << " processes frozen and killed in " << ms
            << " ms\n";
  drain();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(drain(), 0u) << "a process wrote after it was frozen and killed";

  int st = c.wait();
  EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) << "status " << st;
  // Every other process of the bomb, reparented to us: all killed, none left after a while.
  until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  bool all_gone = false;
  while (!all_gone && std::chrono::steady_clock::now() < until) {
    pid_t p = ::waitpid(-1, &st, WNOHANG);
    if (p < 0) all_gone = errno == ECHILD;
    if (p == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    if (p > 0) {
      EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) << "status " << st;
    }
  }
  EXPECT_TRUE(all_gone) << "processes of the bomb still alive";
  EXPECT_EQ(capped.pids_current(), 0u);
  ::close(pipe_fds[0]);
  ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 0), 0);
}

// Managers of one version each: the fixture's own manager is dropped first, since two managers
// of one process would share (and remove) each other's parent directories.
TEST_F(CgroupKernel, FreezeAndKillStopsAForkBombV1) {
  mgr_.reset();
  auto v1 = CgroupManager::create("/proc", 1);
  if (!v1.ok() || !(*v1)->has_freezer()) {
    GTEST_SKIP() << "no v1 freezer on this host";
  }
  CG_REQUIRE((*v1)->has_pids(), "no pids controller: " << (*v1)->describe());
  auto s = (*v1)->new_scope(CgroupLimits{0, 64, 0});
  ASSERT_TRUE(s.ok()) << s.error().message;
  expect_bomb_frozen_and_killed(**s, **s);
}

TEST_F(CgroupKernel, FreezeAndKillStopsAForkBombV2) {
  mgr_.reset();
  auto v2 = CgroupManager::create("/proc", 2);
  CG_REQUIRE(v2.ok() && (*v2)->has_freezer(),
             "no v2 freezer: " << (v2.ok() ? (*v2)->describe() : v2.error().message));
  if ((*v2)->has_pids()) {  // a v2 host: one scope has both
    auto s = (*v2)->new_scope(CgroupLimits{0, 64, 0});
    ASSERT_TRUE(s.ok()) << s.error().message;
    expect_bomb_frozen_and_killed(**s, **s);
    return;
  }
  // A hybrid host: cgroup.freeze and cgroup.kill in the unified hierarchy, the pids cap in v1's.
  auto v1 = CgroupManager::create("/proc", 1);
  CG_REQUIRE(v1.ok() && (*v1)->has_pids(), "no pids controller");
  auto capped = (*v1)->new_scope(CgroupLimits{0, 64, 0});
  ASSERT_TRUE(capped.ok()) << capped.error().message;
  auto frozen = (*v2)->new_scope(CgroupLimits{});
  ASSERT_TRUE(frozen.ok()) << frozen.error().message;
  expect_bomb_frozen_and_killed(**capped, **frozen);
}

TEST_F(CgroupKernel, ConcurrentScopesAndManagerTeardown) {
  std::vector<std::string> parents;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20; ++i) {
        auto s = mgr_->new_scope(CgroupLimits{16u << 20, 16, 50});
        if (!s.ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  {
    auto s = mgr_->new_scope(CgroupLimits{});
    ASSERT_TRUE(s.ok());
    for (auto& d : (*s)->dirs()) parents.push_back(fs::path(d).parent_path());
  }
  mgr_.reset();
  for (auto& p : parents) EXPECT_FALSE(fs::exists(p)) << p;
}

}  // namespace
