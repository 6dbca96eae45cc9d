// `1mcp doctor` on this machine: the real kernel has every feature the sandbox needs (the tests
// run as root), so every probe works, and the command says so and exits 0. On a host that lacks
// one the tests skip, showing the report, unless ONEMCP_REQUIRE_KERNEL_FEATURES is set.
#include "doctor/doctor.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

extern char** environ;

namespace onemcp::doctor {
namespace {

bool required() { return std::getenv("ONEMCP_REQUIRE_KERNEL_FEATURES") != nullptr; }

TEST(Doctor, EveryProbeWorksHere) {
  const HostFacts f = probe_host();
  const auto findings = judge(f);
  if (any_missing(findings) && !required()) GTEST_SKIP() << render(f, findings);
  EXPECT_TRUE(f.userns.ok()) << f.userns.error;
  EXPECT_TRUE(f.id_map.ok()) << f.id_map.error;
  for (size_t i = 0; i < std::size(kNamespaceNames); ++i) {
    EXPECT_TRUE(f.namespaces[i].ok()) << kNamespaceNames[i] << ": " << f.namespaces[i].error;
  }
  EXPECT_TRUE(f.proc_mount.ok()) << f.proc_mount.error;
  for (size_t i = 0; i < std::size(kMountApiCalls); ++i) {
    EXPECT_TRUE(f.mount_api[i].ok()) << kMountApiCalls[i] << ": " << f.mount_api[i].error;
  }
  EXPECT_EQ(f.cgroup_error, "");
  EXPECT_EQ(f.scope_error, "");
  EXPECT_TRUE(f.has_memory && f.has_pids) << f.cgroup_describe;
  EXPECT_FALSE(f.cgroup_hierarchies.empty());
  EXPECT_EQ(f.seccomp_error, "");
  EXPECT_TRUE(f.seccomp_denies.ok()) << f.seccomp_denies.error;
  EXPECT_TRUE(f.rlimits.ok()) << f.rlimits.error;
  if (required()) {  // optional for serve, present on the test hosts
    EXPECT_GE(f.landlock_abi, 1);
  }
  EXPECT_FALSE(any_missing(findings)) << render(f, findings);
}

TEST(Doctor, TheCommandSaysAllIsPresentAndExitsZero) {
  int out[2];
  ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  const char* argv[] = {ONEMCP_BIN, "doctor", nullptr};
  pid_t pid = -1;
  ASSERT_EQ(::posix_spawn(&pid, ONEMCP_BIN, &actions, nullptr, const_cast<char**>(argv), environ),
            0);
  posix_spawn_file_actions_destroy(&actions);
  ::close(out[1]);
  std::string text;
  char buf[4096];
  for (ssize_t n; (n = ::read(out[0], buf, sizeof buf)) > 0;) text.append(buf, size_t(n));
  ::close(out[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  if (WEXITSTATUS(status) == 1 && !required()) GTEST_SKIP() << text;
  EXPECT_EQ(WEXITSTATUS(status), 0) << text;
  EXPECT_EQ(text.find("MISSING"), std::string::npos) << text;
  EXPECT_NE(text.find("Every feature the sandbox needs is present"), std::string::npos) << text;
  for (const char* feature :
       {"user namespaces", "uid/gid map of a range", "mount namespace", "pid namespace",
        "network namespace", "ipc namespace", "uts namespace", "new mount API", "cgroups",
        "cgroup of a run", "seccomp filter", "Landlock", "rlimits"}) {
    EXPECT_NE(text.find(feature), std::string::npos) << feature << " in\n" << text;
  }
}

}  // namespace
}  // namespace onemcp::doctor
