// The sandbox posture of a run as seen from the host: the real 1mcp-py-worker is started through
// sandbox::Zygote, a run parks itself in a sleep, and the test inspects that process through the
// host's /proc (credentials, namespaces, open fds, mounts, rlimits), then checks that nothing of
// the run remains once it ended and that the zygote leaks no fds across runs.
// With ONEMCP_REQUIRE_KERNEL_FEATURES=1 a sandbox that cannot start fails instead of skipping.
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "sandbox/executor.h"

namespace onemcp::sandbox {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr uint32_t kRunHostUid = kHostIdBase + 1000;  // inner uid 1000 of a run
constexpr const char* kReadyName = "posture-ready";   // the run's comm once user code runs

bool require_kernel_features() {
  const char* v = std::getenv("ONEMCP_REQUIRE_KERNEL_FEATURES");
  return v != nullptr && std::string(v) == "1";
}

std::string read_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// "Key:\tvalue" lines of /proc/<pid>/status, values with runs of whitespace folded to one space.
std::map<std::string, std::string> status_of(pid_t pid) {
  std::map<std::string, std::string> m;
  std::istringstream in(read_file("/proc/" + std::to_string(pid) + "/status"));
  std::string line;
  while (std::getline(in, line)) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::istringstream vs(line.substr(colon + 1));
    std::string word, value;
    while (vs >> word) value += (value.empty() ? "" : " ") + word;
    m[line.substr(0, colon)] = value;
  }
  return m;
}

pid_t parent_of(pid_t pid) {
  auto s = status_of(pid);
  auto it = s.find("PPid");
  return it == s.end() ? -1 : pid_t(std::atol(it->second.c_str()));
}

uint32_t real_uid_of(pid_t pid) {
  auto s = status_of(pid);
  auto it = s.find("Uid");
  return it == s.end() ? 0 : uint32_t(std::strtoul(it->second.c_str(), nullptr, 10));
}

std::vector<pid_t> all_pids() {
  std::vector<pid_t> out;
  std::error_code ec;
  for (auto& e : fs::directory_iterator("/proc", ec)) {
    auto name = e.path().filename().string();
    if (!name.empty() && std::all_of(name.begin(), name.end(), ::isdigit)) out.push_back(pid_t(std::stol(name)));
  }
  return out;
}

bool descends_from(pid_t pid, pid_t ancestor) {
  for (int depth = 0; pid > 1 && depth < 64; ++depth) {
    pid = parent_of(pid);
    if (pid == ancestor) return true;
    if (pid <= 0) return false;
  }
  return false;
}

// Host pids of processes below `root` running as the run uid.
std::vector<pid_t> run_processes(pid_t root) {
  std::vector<pid_t> out;
  for (pid_t p : all_pids()) {
    if (real_uid_of(p) == kRunHostUid && descends_from(p, root)) out.push_back(p);
  }
  return out;
}

std::vector<pid_t> children_of(pid_t parent) {
  std::vector<pid_t> out;
  for (pid_t p : all_pids()) {
    if (parent_of(p) == parent) out.push_back(p);
  }
  return out;
}

std::set<int> fds_of(pid_t pid) {
  std::set<int> out;
  std::error_code ec;
  for (auto& e : fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec)) {
    out.insert(std::stoi(e.path().filename().string()));
  }
  return out;
}

std::string link_of(const std::string& path) {
  std::error_code ec;
  auto t = fs::read_symlink(path, ec);
  return ec ? "<" + ec.message() + ">" : t.string();
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

struct Mount {
  std::string point, options, fstype, super_options;
};

std::vector<Mount> mounts_of(pid_t pid) {
  std::vector<Mount> out;
  std::istringstream in(read_file("/proc/" + std::to_string(pid) + "/mountinfo"));
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::vector<std::string> f;
    std::string w;
    while (ls >> w) f.push_back(w);
    auto sep = std::find(f.begin(), f.end(), "-");
    if (f.size() < 6 || sep == f.end() || std::distance(sep, f.end()) < 4) continue;
    out.push_back({f[4], f[5], *(sep + 1), *(sep + 3)});
  }
  return out;
}

bool has_option(const std::string& list, const std::string& opt) {
  std::istringstream in(list);
  std::string o;
  while (std::getline(in, o, ',')) {
    if (o == opt) return true;
  }
  return false;
}

// The "Max ..." rows of /proc/<pid>/limits: name -> "soft hard".
std::map<std::string, std::string> limits_of(pid_t pid) {
  std::map<std::string, std::string> m;
  std::istringstream in(read_file("/proc/" + std::to_string(pid) + "/limits"));
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    if (line.size() < 47) continue;
    std::string name = trim(line.substr(0, 26));
    std::istringstream vs(line.substr(26));
    std::string soft, hard;
    vs >> soft >> hard;
    m[name] = soft + " " + hard;
  }
  return m;
}

class SandboxPosture : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto z = Zygote::start(LaunchSpec{ONEMCP_PY_WORKER, {}, {"PATH=/usr/bin:/bin", "LANG=C.UTF-8"}});
    if (!z) {
      start_error_ = z.error().message;
      return;
    }
    auto ready = (*z)->wait_ready(30s);
    if (!ready) {
      start_error_ = ready.error().message;
      return;
    }
    zygote_ = z->release();
  }
  static void TearDownTestSuite() {
    delete zygote_;
    zygote_ = nullptr;
  }

  void SetUp() override {
    if (zygote_ == nullptr) {
      if (require_kernel_features()) FAIL() << "the sandboxed worker did not start: " << start_error_;
      GTEST_SKIP() << "the sandboxed worker did not start: " << start_error_;
    }
  }

  static RunOutput run(const std::string& code, uint64_t timeout_ms = 20000) {
    ipc::RunRequest req;
    req.code = code;
    req.timeout_ms = timeout_ms;
    req.mem_mb = 256;
    req.stdout_bytes = 1 << 20;
    auto r = zygote_->run(req, "");
    EXPECT_TRUE(r) << r.error().message;
    return r ? std::move(*r) : RunOutput{};
  }

  // The inner zygote: the single child of the process Zygote started.
  static pid_t inner_zygote() {
    auto kids = children_of(zygote_->pid());
    return kids.size() == 1 ? kids[0] : -1;
  }

  static Zygote* zygote_;
  static std::string start_error_;
};
Zygote* SandboxPosture::zygote_ = nullptr;
std::string SandboxPosture::start_error_;

// Code of the parked run: renames itself once user code runs, then sleeps.
const char kParkedRun[] =
    "import ctypes, time\n"
    "ctypes.CDLL(None).prctl(15, b'posture-ready', 0, 0, 0)\n"
    "print('ready', flush=True)\n"
    "time.sleep(5)\n"
    "print('done')\n";

TEST_F(SandboxPosture, RunSeenFromTheHost) {
  std::optional<RunOutput> out;
  std::thread runner([&] { out = run(kParkedRun); });

  // Find the run: below the zygote, running as the run uid, and past the lockdown into user code.
  pid_t pid = -1;
  auto give_up = Clock::now() + 10s;
  while (pid < 0 && Clock::now() < give_up) {
    for (pid_t p : run_processes(zygote_->pid())) {
      if (trim(read_file("/proc/" + std::to_string(p) + "/comm")) == kReadyName) pid = p;
    }
    if (pid < 0) std::this_thread::sleep_for(10ms);
  }
  if (pid < 0) {
    runner.join();
    FAIL() << "no process of the run found below zygote " << zygote_->pid()
           << (out ? " (run output: " + out->out + out->err + ")" : "");
  }
  const std::string proc = "/proc/" + std::to_string(pid);

  // Credentials.
  auto st = status_of(pid);
  const std::string uid4 = std::to_string(kRunHostUid) + " " + std::to_string(kRunHostUid) + " " +
                           std::to_string(kRunHostUid) + " " + std::to_string(kRunHostUid);
  EXPECT_EQ(st["Uid"], uid4);
  EXPECT_EQ(st["Gid"], uid4);
  EXPECT_EQ(st["Groups"], "");
  EXPECT_EQ(st["CapInh"], "0000000000000000");
  EXPECT_EQ(st["CapPrm"], "0000000000000000");
  EXPECT_EQ(st["CapEff"], "0000000000000000");
  EXPECT_EQ(st["CapAmb"], "0000000000000000");
  EXPECT_EQ(st["NoNewPrivs"], "1");
  EXPECT_EQ(st["Seccomp"], "2");
  EXPECT_EQ(st["Seccomp_filters"], "1");
  // host pid, the zygote's pid namespace, and pid 1 of its own.
  std::istringstream nspid(st["NSpid"]);
  std::vector<std::string> levels;
  for (std::string w; nspid >> w;) levels.push_back(w);
  ASSERT_EQ(levels.size(), 3u) << st["NSpid"];
  EXPECT_EQ(levels.front(), std::to_string(pid));
  EXPECT_EQ(levels.back(), "1");

  // Namespaces: every one differs from the host's; pid and mount also from the zygote's.
  for (const char* ns : {"user", "pid", "mnt", "net", "ipc", "uts"}) {
    std::string run_ns = link_of(proc + "/ns/" + ns);
    std::string host_ns = link_of(std::string("/proc/self/ns/") + ns);
    EXPECT_EQ(run_ns.rfind(std::string(ns) + ":[", 0), 0u) << run_ns;
    EXPECT_NE(run_ns, host_ns) << ns << " namespace is the host's";
  }
  pid_t inner = inner_zygote();
  ASSERT_GT(inner, 0);
  EXPECT_EQ(parent_of(pid), inner);
  const std::string zproc = "/proc/" + std::to_string(inner);
  for (const char* ns : {"pid", "mnt", "ipc", "uts"}) {
    EXPECT_NE(link_of(proc + "/ns/" + ns), link_of(zproc + "/ns/" + ns)) << ns << " namespace is the zygote's";
  }
  for (const char* ns : {"user", "net"}) {
    EXPECT_EQ(link_of(proc + "/ns/" + ns), link_of(zproc + "/ns/" + ns)) << ns << " namespace is per zygote";
  }
  EXPECT_EQ(trim(read_file(proc + "/uid_map")), "         0 1900000000      65536");

  // Open files: stdin (a memfd), stdout, stderr, the result pipe, the broker socket. Nothing else.
  EXPECT_EQ(fds_of(pid), (std::set<int>{0, 1, 2, 3, 4}));
  EXPECT_EQ(link_of(proc + "/fd/4").rfind("socket:[", 0), 0u) << link_of(proc + "/fd/4");
  EXPECT_EQ(link_of(proc + "/fd/0").rfind("/memfd:1mcp-stdin", 0), 0u) << link_of(proc + "/fd/0");
  for (int fd : {1, 2, 3}) {
    EXPECT_EQ(link_of(proc + "/fd/" + std::to_string(fd)).rfind("pipe:[", 0), 0u) << fd;
  }

  // Mounts: only the minimal root, as the run sees it.
  auto mounts = mounts_of(pid);
  std::multiset<std::string> points;
  std::map<std::string, Mount> by_point;
  for (auto& m : mounts) {
    points.insert(m.point);
    by_point[m.point] = m;
  }
  const char* ca_bundle = "/etc/ssl/certs/ca-certificates.crt";
  std::multiset<std::string> expected{"/",           "/usr/lib",     "/usr/share/zoneinfo", "/dev/null",
                                      "/dev/zero",   "/dev/full",    "/dev/random",         "/dev/urandom",
                                      "/proc",       "/tmp",         "/out",                ca_bundle};
  if (fs::exists("/usr/lib64")) expected.insert("/usr/lib64");
  // matplotlib's data and Debian's matplotlibrc, when python3-matplotlib is installed.
  std::vector<std::string> read_only{"/", "/usr/lib", "/usr/share/zoneinfo", ca_bundle};
  for (const char* mpl : {"/usr/share/matplotlib", "/etc/matplotlibrc"}) {
    if (!fs::exists(mpl)) continue;
    expected.insert(mpl);
    read_only.push_back(mpl);
  }
  EXPECT_EQ(points, expected) << read_file(proc + "/mountinfo");
  for (const std::string& ro : read_only) {
    EXPECT_TRUE(has_option(by_point[ro].options, "ro")) << ro << " " << by_point[ro].options;
    EXPECT_TRUE(has_option(by_point[ro].options, "nosuid")) << ro << " " << by_point[ro].options;
  }
  for (const char* rw : {"/tmp", "/out"}) {
    const Mount& m = by_point[rw];
    EXPECT_EQ(m.fstype, "tmpfs") << rw;
    for (const char* o : {"rw", "nosuid", "nodev", "noexec"}) EXPECT_TRUE(has_option(m.options, o)) << rw << " " << o;
    EXPECT_TRUE(has_option(m.super_options, "size=65536k")) << rw << " " << m.super_options;
    EXPECT_TRUE(has_option(m.super_options, "nr_inodes=4096")) << rw << " " << m.super_options;
  }
  EXPECT_EQ(by_point["/proc"].fstype, "proc");
  EXPECT_TRUE(has_option(by_point["/proc"].super_options, "hidepid=invisible") ||
              has_option(by_point["/proc"].super_options, "hidepid=2"))
      << by_point["/proc"].super_options;
  EXPECT_EQ(link_of(proc + "/cwd"), "/tmp");

  // The environment block is the worker's minimal one: nothing of the supervisor's.
  EXPECT_EQ(read_file(proc + "/environ"), std::string("PATH=/usr/bin:/bin\0LANG=C.UTF-8\0", 32));

  // Resource limits.
  auto lim = limits_of(pid);
  EXPECT_EQ(lim["Max open files"], "256 256");
  EXPECT_EQ(lim["Max file size"], std::to_string(64 << 20) + " " + std::to_string(64 << 20));
  EXPECT_EQ(lim["Max core file size"], "0 0");

  runner.join();
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(out->outcome, Outcome::ok) << out->err;
  EXPECT_EQ(out->out, "ready\ndone\n");

  // Nothing of the run remains.
  auto gone_by = Clock::now() + 2s;
  while (::kill(pid, 0) == 0 && Clock::now() < gone_by) std::this_thread::sleep_for(10ms);
  EXPECT_FALSE(fs::exists(proc)) << "the run's process still exists";
  EXPECT_TRUE(run_processes(zygote_->pid()).empty());
}

// What a run can learn of the host through the zygote it was forked from, and what it can show
// other runs. The run locks a file of the shared read-only root every way it can, prints how it
// sees the hostname, then forks a marker child (renamed, so the test finds the run; the run
// itself keeps its name) and parks.
const char kLockingRun[] =
    "import ctypes, fcntl, os, platform, socket, struct, sys, time\n"
    "fd = os.open('/usr/lib/python3.11/os.py', os.O_RDONLY)\n"
    "fcntl.flock(fd, fcntl.LOCK_EX)\n"
    "fcntl.lockf(fd, fcntl.LOCK_SH)\n"
    "fcntl.fcntl(os.open('/usr/lib/python3.11/os.py', os.O_RDONLY), 37,\n"  // F_OFD_SETLK
    "            struct.pack('hhqqi4x', fcntl.F_RDLCK, 0, 0, 0, 0))\n"
    "print(os.uname().nodename, socket.gethostname(), platform.node(), platform.uname().node,\n"
    "      open('/proc/sys/kernel/hostname').read().strip(), sys.argv, sys.orig_argv)\n"
    "if os.fork() == 0:\n"
    "    ctypes.CDLL(None).prctl(15, b'posture-ready', 0, 0, 0)\n"
    "    time.sleep(5)\n"
    "    os._exit(0)\n"
    "os.wait()\n";

TEST_F(SandboxPosture, NeutralCommandLineHostnameAndNoLocks) {
  std::optional<RunOutput> out;
  std::thread runner([&] { out = run(kLockingRun); });
  pid_t marker = -1;
  auto give_up = Clock::now() + 10s;
  while (marker < 0 && Clock::now() < give_up) {
    for (pid_t p : run_processes(zygote_->pid())) {
      if (trim(read_file("/proc/" + std::to_string(p) + "/comm")) == kReadyName) marker = p;
    }
    if (marker < 0) std::this_thread::sleep_for(10ms);
  }
  if (marker < 0) {
    runner.join();
    FAIL() << "no marker process of the run found" << (out ? ": " + out->out + out->err : "");
  }
  const pid_t pid = parent_of(marker);
  EXPECT_EQ(parent_of(pid), inner_zygote());

  // The command line is the worker's name: no host path (the pip cache, mounts) in it.
  for (pid_t p : {pid, marker}) {
    EXPECT_EQ(read_file("/proc/" + std::to_string(p) + "/cmdline"), std::string("1mcp-py-worker\0", 15)) << p;
  }
  EXPECT_EQ(trim(read_file("/proc/" + std::to_string(pid) + "/comm")), "1mcp-py-worker");

  // The run's locks on the shared file do not exist for anyone else.
  const char* shared = "/usr/lib/python3.11/os.py";
  int fd = ::open(shared, O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0) << "the run's flock is visible: " << std::strerror(errno);
  struct flock probe {};
  probe.l_type = F_WRLCK;
  probe.l_whence = SEEK_SET;
  ASSERT_EQ(::fcntl(fd, F_OFD_GETLK, &probe), 0);
  EXPECT_EQ(probe.l_type, F_UNLCK) << "the run's fcntl lock is visible";
  ::close(fd);
  struct stat st {};
  ASSERT_EQ(::stat(shared, &st), 0);
  const std::string inode = ":" + std::to_string(st.st_ino) + " ";
  EXPECT_EQ(read_file("/proc/locks").find(inode), std::string::npos) << read_file("/proc/locks");

  ::kill(marker, SIGKILL);
  runner.join();
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(out->outcome, Outcome::ok) << out->err;
  EXPECT_EQ(out->out, "sandbox sandbox sandbox sandbox sandbox ['<run_py>'] []\n");
}

TEST_F(SandboxPosture, ForkedChildrenDieWithTheRun) {
  auto r = run(
      "import os, time\n"
      "for i in range(5):\n"
      "    if os.fork() == 0:\n"
      "        os.setsid()\n"
      "        time.sleep(60)\n"
      "        os._exit(0)\n"
      "print('forked')\n");
  EXPECT_EQ(r.outcome, Outcome::ok) << r.err;
  EXPECT_EQ(r.out, "forked\n");
  EXPECT_LT(r.duration_ms, 3000);
  auto gone_by = Clock::now() + 2s;
  while (!run_processes(zygote_->pid()).empty() && Clock::now() < gone_by) std::this_thread::sleep_for(10ms);
  EXPECT_TRUE(run_processes(zygote_->pid()).empty()) << "children of a finished run survive it";
}

TEST_F(SandboxPosture, ZygoteFdCountStableAcrossRuns) {
  pid_t inner = inner_zygote();
  ASSERT_GT(inner, 0);
  // Warm up: the first runs may open what the zygote keeps for good.
  for (int i = 0; i < 2; ++i) EXPECT_EQ(run("print(1)").out, "1\n");
  // The zygote closes a run's reply socket just after reporting its exit, and holds one for each
  // slot kept ready (numbers vary with the order they were made in): count them once all is made.
  auto slots_ready = [&] {
    auto until = Clock::now() + 2s;
    while (zygote_->ready_slots() < kReadySlots && Clock::now() < until)
      std::this_thread::sleep_for(10ms);
    std::this_thread::sleep_for(200ms);
  };
  slots_ready();
  const auto outer_fds = fds_of(zygote_->pid());
  const size_t inner_fds = fds_of(inner).size();
  ASSERT_GT(inner_fds, 0u);
  for (int i = 0; i < 20; ++i) {
    auto r = run(i % 2 ? "print('x')" : "import os\nos.open('/dev/null', os.O_RDONLY)\nraise SystemExit(3)");
    EXPECT_EQ(r.outcome, i % 2 ? Outcome::ok : Outcome::error) << r.err;
  }
  // A timed-out run too: the supervisor kills it from outside.
  EXPECT_EQ(run("while True: pass", 300).outcome, Outcome::timeout);
  slots_ready();
  auto settle = Clock::now() + 2s;
  while (fds_of(inner).size() != inner_fds && Clock::now() < settle)
    std::this_thread::sleep_for(10ms);
  EXPECT_EQ(fds_of(zygote_->pid()), outer_fds);
  EXPECT_EQ(fds_of(inner).size(), inner_fds);
  EXPECT_EQ(inner_zygote(), inner) << "the zygote was restarted";
}

}  // namespace
}  // namespace onemcp::sandbox
