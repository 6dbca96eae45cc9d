// Nothing accumulates across runs: after many runs, including ones that time out, blow their
// memory, fork-bomb or leave daemons, the supervisor's fds, the run cgroups and the zygote's
// mounts and fds are back where they started.
#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "sandbox/cgroup.h"
#include "sandbox/executor.h"

namespace onemcp::sandbox {
namespace {

size_t count_entries(const std::string& dir, const std::string& prefix = "") {
  size_t n = 0;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name != "." && name != ".." && name.rfind(prefix, 0) == 0) ++n;
    }
    ::closedir(d);
  }
  return n;
}

// The server's own open files, split: cgroup control files (a scope keeps those it uses for
// every run open while it is ready or recycled, see sandbox/cgroup.h) and everything else.
struct OwnFds {
  size_t cgroup = 0, other = 0;
};

OwnFds own_fds() {
  OwnFds n;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    const auto target = std::filesystem::read_symlink(e.path(), ec).string();
    (target.rfind("/sys/fs/cgroup/", 0) == 0 ? n.cgroup : n.other)++;
  }
  return n;
}

size_t count_lines(const std::string& path) {
  std::ifstream f(path);
  size_t n = 0;
  for (std::string line; std::getline(f, line);) ++n;
  return n;
}

// A ready Python worker whose runs get cgroups (`z` stays null when the test skipped or failed).
void start_python(std::unique_ptr<CgroupManager>& cg, std::unique_ptr<Zygote>& z) {
  auto made = CgroupManager::create();
  if (!made) {
    if (std::getenv("ONEMCP_REQUIRE_KERNEL_FEATURES")) FAIL() << made.error().message;
    GTEST_SKIP() << made.error().message;
  }
  cg = std::move(*made);
  auto started = Zygote::start({ONEMCP_PY_WORKER, {}, {"PATH=/usr/bin:/bin", "LANG=C.UTF-8"}}, cg.get());
  ASSERT_TRUE(started.ok()) << started.error().message;
  ASSERT_TRUE((*started)->wait_ready(std::chrono::seconds(30)).ok());
  z = std::move(*started);
}

TEST(Baseline, NothingAccumulatesAcrossRuns) {
  std::unique_ptr<CgroupManager> cg;
  std::unique_ptr<Zygote> z;
  start_python(cg, z);
  if (!z) return;  // skipped or failed

  auto run = [&](const std::string& code, uint64_t timeout_ms = 5000, uint64_t mem_mb = 64) {
    ipc::RunRequest r;
    r.code = code;
    r.timeout_ms = timeout_ms;
    r.mem_mb = mem_mb;
    r.stdout_bytes = 1 << 16;
    auto out = z->run(r, "");
    EXPECT_TRUE(out.ok());
    return out.ok() ? out->outcome : Outcome::internal;
  };
  ASSERT_EQ(run("print(1)"), Outcome::ok);  // warm: lazily created state exists from now on

  // The zygote as the host sees it: the process that serves runs (the worker's child).
  std::string zpid = std::to_string(z->pid());
  std::string children = "/proc/" + zpid + "/task/" + zpid + "/children";
  std::string inner;
  std::ifstream(children) >> inner;
  ASSERT_FALSE(inner.empty());
  // The zygote closes a run's reply socket just after reporting its exit: let that happen.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const OwnFds fds_before = own_fds();
  const size_t zygote_fds = count_entries("/proc/" + inner + "/fd");
  const size_t zygote_mounts = count_lines("/proc/" + inner + "/mountinfo");

  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(run("print('ok')"), Outcome::ok);
    EXPECT_EQ(run("while True: pass", 200), Outcome::timeout);
    EXPECT_EQ(run("b = bytearray(1 << 30)\nfor i in range(0, len(b), 4096): b[i] = 1"), Outcome::memory);
    // Stops at the pids cap (memory is ample here), then at the deadline.
    EXPECT_EQ(run("import os\nwhile True:\n    try: os.fork()\n    except OSError: pass", 500, 1024), Outcome::timeout);
    EXPECT_EQ(run("import os, time\nif os.fork() == 0:\n    os.setsid(); time.sleep(60)\nprint(1)"), Outcome::ok);
    EXPECT_EQ(run("open('/tmp/x', 'w').write('x' * 1000000)"), Outcome::ok);
  }

  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const OwnFds fds_after = own_fds();
  EXPECT_EQ(fds_after.other, fds_before.other);
  EXPECT_EQ(count_entries("/proc/" + inner + "/fd"), zygote_fds);
  EXPECT_EQ(count_lines("/proc/" + inner + "/mountinfo"), zygote_mounts);
  // Every run's cgroup is gone (each lives in "<own>/1mcp-<pid>/run-<n>") or recycled, empty, for
  // the next runs; only the slots kept ready for them have one besides.
  const size_t ready = z->ready_slots();
  EXPECT_LE(ready, kReadySlots);
  const size_t pooled = cg->pooled();
  EXPECT_LE(pooled, 3u) << "more scopes recycled than runs at once";
  std::ifstream cgroup("/proc/self/cgroup");
  for (std::string line; std::getline(cgroup, line);) {
    if (line.find(":memory:") == std::string::npos) continue;
    std::string dir = "/sys/fs/cgroup/memory" + line.substr(line.find(":memory:") + 8) + "/1mcp-" +
                      std::to_string(::getpid());
    EXPECT_EQ(count_entries(dir, "run-"), ready + pooled) << dir;
  }
  // Control files stay open only for the scopes that exist: each directory's cgroup.procs and at
  // most four counters (pids.current, oom_control, usage and peak).
  EXPECT_LE(fds_after.cgroup, (ready + pooled) * 8) << fds_after.cgroup;
}

// Runs are served from slots made ahead: none before the first run, kReadySlots after it; each
// run gets its own fresh process whatever slot it took, and a slot made with the last run's
// memory limit enforces the limit of the run that takes it.
TEST(Baseline, ReadySlotsServeRunsWithTheirOwnLimits) {
  std::unique_ptr<CgroupManager> cg;
  std::unique_ptr<Zygote> z;
  start_python(cg, z);
  if (!z) return;  // skipped or failed
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(z->ready_slots(), 0u) << "no slot before the first run";

  auto run = [&](const std::string& code, uint64_t mem_mb) {
    ipc::RunRequest r;
    r.code = code;
    r.timeout_ms = 10000;
    r.mem_mb = mem_mb;
    r.stdout_bytes = 1 << 16;
    auto out = z->run(r, "");
    EXPECT_TRUE(out.ok()) << out.error().message;
    return out.ok() ? std::move(*out) : RunOutput{};
  };
  const std::string grow =
      "b = bytearray(200 << 20)\nfor i in range(0, len(b), 4096): b[i] = 1\nprint('grew')";
  EXPECT_EQ(run("import sys; sys.flag = 1; print(1)", 512).outcome, Outcome::ok);
  for (int i = 0; i < 100 && z->ready_slots() < kReadySlots; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(z->ready_slots(), kReadySlots);
  // Made for 512 MiB, taken by a run of 64: the smaller limit holds for the run's processes
  // together (each alone stays within its address-space cap).
  const std::string grow_in_four =
      "import os, time\n"
      "for _ in range(4):\n"
      "    if os.fork() == 0:\n"
      "        b = bytearray(60 << 20)\n"
      "        for i in range(0, len(b), 4096): b[i] = 1\n"
      "        time.sleep(5); os._exit(0)\n"
      "for _ in range(4): os.wait()\n"
      "print('grew')";
  EXPECT_EQ(run(grow_in_four, 64).outcome, Outcome::memory);
  EXPECT_EQ(run(grow, 64).outcome, Outcome::memory);
  // Made for 64 MiB, taken by a run of 512: it may grow.
  for (int i = 0; i < 100 && z->ready_slots() < kReadySlots; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  auto big = run(grow, 512);
  EXPECT_EQ(big.outcome, Outcome::ok) << big.err;
  EXPECT_EQ(big.out, "grew\n");
  // Nothing of an earlier run is in a later one.
  auto fresh = run("import sys; print(hasattr(sys, 'flag'))", 64);
  EXPECT_EQ(fresh.out, "False\n");
}

// The code of a run starts only after before_code (the server stores the run's capsule there)
// succeeded, and not at all when it failed.
TEST(Baseline, CodeStartsOnlyOnceBeforeCodeSucceeded) {
  char tmpl[] = "/tmp/1mcp-gate-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  ASSERT_EQ(::chmod(dir.c_str(), 0777), 0);  // the run's uid is not ours
  auto z = Zygote::start(
      {ONEMCP_PY_WORKER, {"--mount", "rw", dir, "/data"}, {"PATH=/usr/bin:/bin", "LANG=C.UTF-8"}});
  ASSERT_TRUE(z.ok()) << z.error().message;
  ASSERT_TRUE((*z)->wait_ready(std::chrono::seconds(30)).ok());
  ipc::RunRequest r;
  r.code = "import os\nprint(os.path.exists('/data/stored'))\nopen('/data/ran', 'w').write('x')";
  r.timeout_ms = 10000;
  r.stdout_bytes = 1 << 16;
  const std::string stored = dir + "/stored", ran = dir + "/ran";
  for (int i = 0; i < 3; ++i) {  // the first run makes its slot, the later ones take ready ones
    auto out = (*z)->run(r, "", nullptr, nullptr, nullptr, [&]() -> Status {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the run is set up meanwhile
      std::ofstream(stored) << "x";
      return {};
    });
    ASSERT_TRUE(out.ok()) << out.error().message;
    EXPECT_EQ(out->outcome, Outcome::ok) << out->err;
    EXPECT_EQ(out->out, "True\n");
    EXPECT_EQ(::unlink(ran.c_str()), 0);
    EXPECT_EQ(::unlink(stored.c_str()), 0);

    auto refused = (*z)->run(r, "", nullptr, nullptr, nullptr,
                             [] { return Status(make_error("the disk is full")); });
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().message, "the disk is full");
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_NE(::access(ran.c_str(), F_OK), 0) << "a refused run's code ran";
  ::rmdir(dir.c_str());
}

}  // namespace
}  // namespace onemcp::sandbox
