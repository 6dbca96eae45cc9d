// Nothing accumulates across runs: after many runs, including ones that time out, blow their
// memory, fork-bomb or leave daemons, the supervisor's fds, the run cgroups and the zygote's
// mounts and fds are back where they started.
#include <dirent.h>
#include <gtest/gtest.h>

#include <cstdlib>
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

size_t count_lines(const std::string& path) {
  std::ifstream f(path);
  size_t n = 0;
  for (std::string line; std::getline(f, line);) ++n;
  return n;
}

TEST(Baseline, NothingAccumulatesAcrossRuns) {
  auto cg = CgroupManager::create();
  if (!cg) {
    if (std::getenv("ONEMCP_REQUIRE_KERNEL_FEATURES")) FAIL() << cg.error().message;
    GTEST_SKIP() << cg.error().message;
  }
  auto z = Zygote::start({ONEMCP_PY_WORKER, {}, {"PATH=/usr/bin:/bin", "LANG=C.UTF-8"}}, cg->get());
  ASSERT_TRUE(z.ok()) << z.error().message;
  ASSERT_TRUE((*z)->wait_ready(std::chrono::seconds(30)).ok());

  auto run = [&](const std::string& code, uint64_t timeout_ms = 5000, uint64_t mem_mb = 64) {
    ipc::RunRequest r;
    r.code = code;
    r.timeout_ms = timeout_ms;
    r.mem_mb = mem_mb;
    r.stdout_bytes = 1 << 16;
    auto out = (*z)->run(r, "");
    EXPECT_TRUE(out.ok());
    return out.ok() ? out->outcome : Outcome::internal;
  };
  ASSERT_EQ(run("print(1)"), Outcome::ok);  // warm: lazily created state exists from now on

  // The zygote as the host sees it: the process that serves runs (the worker's child).
  std::string zpid = std::to_string((*z)->pid());
  std::string children = "/proc/" + zpid + "/task/" + zpid + "/children";
  std::string inner;
  std::ifstream(children) >> inner;
  ASSERT_FALSE(inner.empty());
  // The zygote closes a run's reply socket just after reporting its exit: let that happen.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const size_t own_fds = count_entries("/proc/self/fd");
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
  EXPECT_EQ(count_entries("/proc/self/fd"), own_fds);
  EXPECT_EQ(count_entries("/proc/" + inner + "/fd"), zygote_fds);
  EXPECT_EQ(count_lines("/proc/" + inner + "/mountinfo"), zygote_mounts);
  // Every run's cgroup is gone (each lives in "<own>/1mcp-<pid>/run-<n>").
  std::ifstream cgroup("/proc/self/cgroup");
  for (std::string line; std::getline(cgroup, line);) {
    if (line.find(":memory:") == std::string::npos) continue;
    std::string dir = "/sys/fs/cgroup/memory" + line.substr(line.find(":memory:") + 8) + "/1mcp-" +
                      std::to_string(::getpid());
    EXPECT_EQ(count_entries(dir, "run-"), 0u) << dir;
  }
}

}  // namespace
}  // namespace onemcp::sandbox
