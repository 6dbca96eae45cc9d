// `1mcp doctor`'s pure half: the parsers of what it reads from /proc and /sys, and the verdict
// and advice for made-up hosts.
#include "doctor/doctor.h"

#include <gtest/gtest.h>

#include <cerrno>

namespace onemcp::doctor {
namespace {

// A host where everything works, as probe_host() reports it on this project's machines.
HostFacts healthy() {
  HostFacts f;
  f.kernel = "6.18.0 x86_64";
  f.cap_eff = 0x000001ffffffffff;
  f.max_user_namespaces = 63000;
  f.userns.error = 0;
  f.id_map.error = 0;
  for (auto& a : f.namespaces) a.error = 0;
  f.proc_mount.error = 0;
  for (auto& a : f.mount_api) a.error = 0;
  f.cgroup_hierarchies = {{1, "/sys/fs/cgroup/memory/user.slice", {"memory"}},
                          {1, "/sys/fs/cgroup/pids/user.slice", {"pids"}}};
  f.cgroup_describe = "cgroup v1: memory, pids, cpu, freezer";
  f.has_memory = f.has_pids = f.has_cpu = f.has_freezer = true;
  f.landlock_abi = 7;
  f.seccomp_denies.error = 0;
  f.rlimits.error = 0;
  f.server_rlimits = {{"RLIMIT_NOFILE", 1048576, 1048576}};
  return f;
}

const Finding& find(const std::vector<Finding>& fs, const std::string& feature) {
  for (const auto& f : fs) {
    if (f.feature == feature) return f;
  }
  ADD_FAILURE() << "no finding " << feature;
  static Finding none;
  return none;
}

TEST(DoctorParse, CapEff) {
  const char* status =
      "Name:\tcat\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\nCapBnd:\t0\n";
  auto c = parse_cap_eff(status);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(*c, 0x000001ffffffffffull);
  EXPECT_EQ(*parse_cap_eff("CapEff:\t00000000a80425fb\n"), 0xa80425fbull);
  EXPECT_FALSE(parse_cap_eff("Name:\tx\nCapPrm:\t1\n").ok());
  EXPECT_FALSE(parse_cap_eff("CapEff:\t\n").ok());
  EXPECT_FALSE(parse_cap_eff("CapEff:\t00zz\n").ok());
  EXPECT_FALSE(parse_cap_eff("CapEff:\t11111111111111111\n").ok());  // more than 64 bits
}

TEST(DoctorParse, Sysctl) {
  EXPECT_EQ(parse_sysctl("63211\n"), 63211);
  EXPECT_EQ(parse_sysctl("0\n"), 0);
  EXPECT_EQ(parse_sysctl("-1\n"), -1);
  EXPECT_EQ(parse_sysctl(""), std::nullopt);
  EXPECT_EQ(parse_sysctl("1 2\n"), std::nullopt);
  EXPECT_EQ(parse_sysctl("-\n"), std::nullopt);
}

TEST(DoctorParse, LsmLists) {
  EXPECT_EQ(cmdline_lsm("BOOT_IMAGE=/vmlinuz root=/dev/vda1 lsm=lockdown,yama ro\n"),
            "lockdown,yama");
  EXPECT_EQ(cmdline_lsm("lsm=a lsm=b,c"), "b,c");  // the last one counts
  EXPECT_EQ(cmdline_lsm("root=/dev/vda1 apparmor=1"), std::nullopt);
  EXPECT_TRUE(lsm_listed("lockdown,capability,landlock,yama\n", "landlock"));
  EXPECT_TRUE(lsm_listed("landlock", "landlock"));
  EXPECT_FALSE(lsm_listed("lockdown,capability,yama", "landlock"));
  EXPECT_FALSE(lsm_listed("notlandlock,landlocked", "landlock"));
}

TEST(DoctorJudge, HealthyHostIsAllOk) {
  const auto fs = judge(healthy());
  EXPECT_FALSE(any_missing(fs));
  for (const auto& f : fs) {
    EXPECT_EQ(f.verdict, Verdict::kOk) << f.feature << ": " << f.detail;
    EXPECT_TRUE(f.fix.empty()) << f.feature;
  }
  const std::string text = render(healthy(), fs);
  EXPECT_NE(text.find("Every feature the sandbox needs is present."), std::string::npos) << text;
  EXPECT_NE(find(fs, "Landlock").detail.find("ABI 7"), std::string::npos);
}

TEST(DoctorJudge, NoUserNamespacesSaysTheSysctl) {
  HostFacts f = healthy();
  f.max_user_namespaces = 0;
  f.userns.error = ENOSPC;
  f.id_map.error = kNotTried;
  for (auto& a : f.namespaces) a.error = kNotTried;
  const auto fs = judge(f);
  ASSERT_TRUE(any_missing(fs));
  const Finding& u = find(fs, "user namespaces");
  EXPECT_EQ(u.verdict, Verdict::kMissing);
  EXPECT_NE(u.fix.find("sysctl -w user.max_user_namespaces=15000"), std::string::npos) << u.fix;
  EXPECT_EQ(find(fs, "mount namespace").verdict, Verdict::kMissing);
  EXPECT_NE(find(fs, "mount namespace").detail.find("not tried"), std::string::npos);
  EXPECT_NE(render(f, fs).find("MISSING"), std::string::npos);
}

TEST(DoctorJudge, UnprivilegedUserWithoutUsernsClone) {
  HostFacts f = healthy();
  f.uid = 1000;
  f.cap_eff = 0;
  f.unprivileged_userns_clone = 0;
  f.userns.error = EPERM;
  const Finding u = find(judge(f), "user namespaces");
  EXPECT_NE(u.fix.find("kernel.unprivileged_userns_clone=1"), std::string::npos) << u.fix;
  EXPECT_NE(u.detail.find("kernel.unprivileged_userns_clone=0"), std::string::npos) << u.detail;
}

TEST(DoctorJudge, IdMapNeedsCapabilities) {
  HostFacts f = healthy();
  f.uid = 1000;
  f.cap_eff = 0;
  f.id_map.error = EPERM;
  const Finding m = find(judge(f), "uid/gid map of a range");
  EXPECT_EQ(m.verdict, Verdict::kMissing);
  EXPECT_NE(m.detail.find("lacks CAP_SETUID"), std::string::npos) << m.detail;
  EXPECT_NE(m.fix.find("CAP_SETUID, CAP_SETGID and CAP_SYS_ADMIN"), std::string::npos) << m.fix;
}

TEST(DoctorJudge, WithoutTheIdMapTheOtherNamespacesAreNotTried) {
  HostFacts f = healthy();
  f.id_map.error = EPERM;
  for (auto& a : f.namespaces) a.error = kNotTried;
  const auto fs = judge(f);
  for (const char* ns : {"mount namespace", "pid namespace", "network namespace", "ipc namespace",
                         "uts namespace"}) {
    const Finding& n = find(fs, ns);
    EXPECT_EQ(n.verdict, Verdict::kMissing) << ns;
    EXPECT_NE(n.detail.find("not tried"), std::string::npos) << n.detail;
    EXPECT_TRUE(n.fix.empty()) << ns << ": the fix is the id map's";
  }
}

TEST(DoctorJudge, OldKernelWithoutTheMountApi) {
  HostFacts f = healthy();
  f.mount_api[0].error = ENOSYS;
  for (int i = 1; i < 5; ++i) f.mount_api[i].error = kNotTried;
  const Finding m = find(judge(f), "new mount API");
  EXPECT_EQ(m.verdict, Verdict::kMissing);
  EXPECT_NE(m.detail.find("fsopen: Function not implemented"), std::string::npos) << m.detail;
  EXPECT_NE(m.fix.find("Linux 5.2"), std::string::npos) << m.fix;
}

TEST(DoctorJudge, CgroupV2WithoutDelegation) {
  HostFacts f = healthy();
  f.cgroup_hierarchies = {{2, "/sys/fs/cgroup/user.slice/session-1.scope", {}}};
  f.has_memory = f.has_pids = f.has_cpu = false;
  f.has_freezer = true;
  f.cgroup_describe = "cgroup v2: freezer";
  const auto fs = judge(f);
  const Finding c = find(fs, "cgroups");
  EXPECT_EQ(c.verdict, Verdict::kMissing);
  EXPECT_NE(c.detail.find("missing: memory, pids"), std::string::npos) << c.detail;
  EXPECT_NE(c.fix.find("the memory, pids controllers"), std::string::npos) << c.fix;
  EXPECT_NE(c.fix.find("Delegate=yes"), std::string::npos) << c.fix;
  EXPECT_NE(c.fix.find("cgroup.subtree_control"), std::string::npos) << c.fix;

  f.cgroup_error = "no usable cgroup controller";
  const auto none = judge(f);
  EXPECT_EQ(find(none, "cgroups").verdict, Verdict::kMissing);
  EXPECT_NE(find(none, "cgroup of a run").detail.find("not tried"), std::string::npos);
}

TEST(DoctorJudge, CgroupV1WithoutMemoryOrCpu) {
  HostFacts f = healthy();
  f.has_memory = false;
  const Finding c = find(judge(f), "cgroups");
  EXPECT_EQ(c.verdict, Verdict::kMissing);
  EXPECT_NE(c.fix.find("cgroup_enable=memory"), std::string::npos) << c.fix;

  HostFacts g = healthy();
  g.has_cpu = false;
  const auto fs = judge(g);
  EXPECT_EQ(find(fs, "cgroups").verdict, Verdict::kWarn);  // optional: runs still work
  EXPECT_FALSE(any_missing(fs));
}

TEST(DoctorJudge, LandlockBuiltInButNotEnabledIsAWarning) {
  HostFacts f = healthy();
  f.landlock_abi = 0;
  f.lsm = "lockdown,capability,yama,apparmor";
  f.kernel_cmdline_lsm = "lockdown,yama,apparmor";
  const auto fs = judge(f);
  const Finding l = find(fs, "Landlock");
  EXPECT_EQ(l.verdict, Verdict::kWarn);
  EXPECT_NE(l.fix.find("lsm=landlock,lockdown,capability,yama,apparmor"), std::string::npos)
      << l.fix;
  EXPECT_FALSE(any_missing(fs));

  f.lsm.reset();
  EXPECT_NE(find(judge(f), "Landlock").fix.find("CONFIG_SECURITY_LANDLOCK=y"), std::string::npos);
}

TEST(DoctorJudge, SessionWorkspacesAreOptional) {
  HostFacts f = healthy();
  EXPECT_EQ(find(judge(f), "session workspaces").verdict, Verdict::kOk);
  f.workspace_error = "workspace: clone the mount: Invalid argument";
  const auto fs = judge(f);
  const Finding w = find(fs, "session workspaces");
  EXPECT_EQ(w.verdict, Verdict::kWarn);
  EXPECT_NE(w.fix.find("sessions.enabled"), std::string::npos) << w.fix;
  EXPECT_FALSE(any_missing(fs));
}

TEST(DoctorJudge, SeccompAndRlimits) {
  HostFacts f = healthy();
  f.seccomp_error = "seccomp: Invalid argument";
  EXPECT_EQ(find(judge(f), "seccomp filter").verdict, Verdict::kMissing);
  f.seccomp_error.clear();
  f.seccomp_denies.error = 0x7fff;  // ptrace went through
  EXPECT_EQ(find(judge(f), "seccomp filter").verdict, Verdict::kMissing);

  HostFacts g = healthy();
  g.server_rlimits = {{"RLIMIT_NOFILE", 1024, 1024}};
  const Finding r = find(judge(g), "rlimits");
  EXPECT_EQ(r.verdict, Verdict::kWarn);
  EXPECT_NE(r.fix.find("LimitNOFILE=65536"), std::string::npos) << r.fix;
  g.rlimits.error = EPERM;
  EXPECT_EQ(find(judge(g), "rlimits").verdict, Verdict::kMissing);
}

}  // namespace
}  // namespace onemcp::doctor
