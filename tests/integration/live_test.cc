// Live interpreters and workspaces (a session's runs): the real workers, through sandbox::Zygote
// with cgroups, as the server drives them. State carries over between a live process's calls;
// each call has its own output, stdin, arguments and /out; a call that ends the process (timeout,
// its own exit) leaves the live handle empty; a workspace is shared by a session's processes of
// both languages, bounded by its quota, and seen by no other run.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>

#include "sandbox/cgroup.h"
#include "sandbox/executor.h"
#include "sandbox/workspace.h"

namespace onemcp::sandbox {
namespace {

using namespace std::chrono_literals;

bool require_kernel_features() {
  const char* v = std::getenv("ONEMCP_REQUIRE_KERNEL_FEATURES");
  return v != nullptr && std::string(v) == "1";
}

struct Call {
  std::string code;
  std::string stdin_data;
  std::vector<std::string> args;
  uint64_t timeout_ms = 10000;
  std::vector<ipc::InputFile> files;
  std::string cwd = ipc::kWorkspaceDir;
};

class Live : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto m = CgroupManager::create();  // before any worker starts
    if (!m) {
      skip_ = "cgroups unavailable: " + m.error().message;
      return;
    }
    cgroups_ = m->release();
    for (auto [exe, slot] :
         {std::pair{ONEMCP_JS_WORKER, &js_}, std::pair{ONEMCP_PY_WORKER, &py_}}) {
      auto z = Zygote::start(LaunchSpec{exe, {}, {"PATH=/usr/bin:/bin", "LANG=C.UTF-8"}}, cgroups_);
      if (!z) {
        skip_ = z.error().message;
        return;
      }
      *slot = z->release();
      if (auto ready = (*slot)->wait_ready(30s); !ready) skip_ = ready.error().message;
    }
    if (auto w = Workspace::create(1 << 20, 16); !w) skip_ = w.error().message;
  }
  static void TearDownTestSuite() {
    delete js_;
    delete py_;
    delete cgroups_;
    js_ = py_ = nullptr;
    cgroups_ = nullptr;
  }
  void SetUp() override {
    if (skip_.empty()) return;
    if (require_kernel_features()) FAIL() << skip_;
    GTEST_SKIP() << skip_;
  }

  // One call of a session: in `live` (made when empty), with `workspace` if given.
  static RunOutput call(Zygote* z, std::unique_ptr<Zygote::Live>& live, const Call& c,
                        const Workspace* workspace = nullptr) {
    ipc::RunRequest req;
    req.code = c.code;
    req.args = c.args;
    req.cwd = c.cwd;
    req.files = c.files;
    req.timeout_ms = c.timeout_ms;
    req.mem_mb = 128;
    req.stdout_bytes = 1 << 20;
    req.live = true;
    req.workspace = workspace != nullptr;
    if (!req.workspace) req.cwd = "/tmp";
    UniqueFd mount;
    if (workspace && !live) {
      auto m = workspace->clone();
      EXPECT_TRUE(m) << m.error().message;
      if (m) mount = std::move(*m);
    }
    auto r = z->run(req, c.stdin_data, nullptr, nullptr, nullptr, {}, -1, &live, mount.get());
    EXPECT_TRUE(r) << r.error().message;
    return r ? std::move(*r) : RunOutput{};
  }

  static inline std::string skip_;
  static inline CgroupManager* cgroups_ = nullptr;
  static inline Zygote* js_ = nullptr;
  static inline Zygote* py_ = nullptr;
};

std::string value(const RunOutput& r) { return r.report.value.value_or("<none>"); }

TEST_F(Live, PythonKeepsVariablesImportsAndDefinitionsBetweenCalls) {
  std::unique_ptr<Zygote::Live> live;
  auto r = call(py_, live, {"import math\nx = 41\ndef twice(v):\n    return 2 * v\nprint('one')"});
  EXPECT_EQ(r.outcome, Outcome::ok) << r.err;
  EXPECT_EQ(r.out, "one\n");
  ASSERT_TRUE(live);
  EXPECT_EQ(live->calls(), 1u);
  r = call(py_, live, {"print('two')\ntwice(x + 1) + math.floor(0.5)"});
  EXPECT_EQ(r.outcome, Outcome::ok) << r.err;
  EXPECT_EQ(r.out, "two\n");  // only this call's output
  EXPECT_EQ(value(r), "84");
  ASSERT_TRUE(live);
  EXPECT_EQ(live->calls(), 2u);
  // Each call has its own stdin and arguments; an exception ends the call, not the interpreter.
  r = call(py_, live,
           {"import sys\nprint(sys.stdin.read(), sys.argv[1:])\nraise ValueError('no')",
            "from stdin",
            {"a", "b"}});
  EXPECT_EQ(r.outcome, Outcome::error);
  EXPECT_EQ(r.out, "from stdin ['a', 'b']\n");
  EXPECT_NE(r.err.find("ValueError: no"), std::string::npos) << r.err;
  ASSERT_TRUE(live);
  // sys.exit ends the call with its status, as in a notebook; the state stays.
  r = call(py_, live, {"import sys\nsys.exit(3)"});
  EXPECT_EQ(r.exit_code, 3);
  ASSERT_TRUE(live);
  r = call(py_, live, {"x"});
  EXPECT_EQ(value(r), "41");
}

TEST_F(Live, JavaScriptKeepsGlobalsBetweenCalls) {
  std::unique_ptr<Zygote::Live> live;
  auto r =
      call(js_, live, {"var a = 1; let b = 2; globalThis.c = 3; function f(v) { return v * 10; }"});
  EXPECT_EQ(r.outcome, Outcome::ok) << r.err;
  ASSERT_TRUE(live);
  r = call(js_, live,
           {"console.log(process.argv.slice(2).join(','));\nf(a + b + c)", "", {"x", "y"}});
  EXPECT_EQ(r.outcome, Outcome::ok) << r.err;
  EXPECT_EQ(r.out, "x,y\n");
  EXPECT_EQ(value(r), "60");
  ASSERT_TRUE(live);
  // Top-level await still works; process.exit() ends the interpreter.
  r = call(js_, live, {"await Promise.resolve(1); process.exit(4)"});
  EXPECT_EQ(r.exit_code, 4);
  EXPECT_FALSE(live);
  r = call(js_, live, {"typeof a"});
  EXPECT_EQ(value(r), "'undefined'");  // a fresh interpreter
}

TEST_F(Live, ATimeoutInterruptsTheCallAndKeepsTheInterpreter) {
  std::unique_ptr<Zygote::Live> py, js;
  call(py_, py, {"x = 1"});
  Call spin{"while True:\n    x += 1"};
  spin.timeout_ms = 300;
  auto r = call(py_, py, spin);
  EXPECT_EQ(r.outcome, Outcome::timeout);
  EXPECT_NE(r.err.find("KeyboardInterrupt"), std::string::npos) << r.err;
  ASSERT_TRUE(py) << "interrupted, not killed";
  r = call(py_, py, {"x > 1"});
  EXPECT_EQ(value(r), "True") << r.err;
  // Blocked in a sleep: interrupted too.
  Call sleep{"import time\ntime.sleep(30)"};
  sleep.timeout_ms = 300;
  r = call(py_, py, sleep);
  EXPECT_EQ(r.outcome, Outcome::timeout);
  EXPECT_TRUE(py);

  call(js_, js, {"globalThis.n = 0"});
  for (const char* code :
       {"while (true) { n++; }", "await new Promise((r) => setTimeout(r, 30000))"}) {
    Call c{code};
    c.timeout_ms = 300;
    r = call(js_, js, c);
    EXPECT_EQ(r.outcome, Outcome::timeout) << code;
    ASSERT_TRUE(js) << code;
  }
  // What the interrupted call left scheduled (its 30 s timer) is dropped, not waited for.
  const auto t0 = std::chrono::steady_clock::now();
  r = call(js_, js, {"n > 0"});
  EXPECT_EQ(value(r), "true") << r.err;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
}

TEST_F(Live, ACallThatIgnoresTheInterruptEndsTheInterpreter) {
  std::unique_ptr<Zygote::Live> live;
  call(py_, live, {"x = 1"});
  ASSERT_TRUE(live);
  Call stubborn{
      "while True:\n    try:\n        while True:\n            pass\n"
      "    except KeyboardInterrupt:\n        pass"};
  stubborn.timeout_ms = 300;
  auto t0 = std::chrono::steady_clock::now();
  auto r = call(py_, live, stubborn);
  EXPECT_EQ(r.outcome, Outcome::timeout);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
  EXPECT_FALSE(live);
  r = call(py_, live, {"print('x' in globals())"});
  EXPECT_EQ(r.out, "False\n");
  EXPECT_TRUE(live);
}

TEST_F(Live, NothingRunsBetweenCalls) {
  // A process the first call forks and leaves ticking (its threads wait anyway: the interpreter
  // keeps the GIL between calls): the session's cgroup is frozen between calls, so its ticks stop
  // for as long as the session waits.
  std::unique_ptr<Zygote::Live> live;
  call(py_, live,
       {"import os, struct, time\nr, w = os.pipe()\nif os.fork() == 0:\n"
        "    while True:\n        os.write(w, struct.pack('d', time.monotonic()))\n"
        "        time.sleep(0.01)\nos.close(w)\ntime.sleep(0.1)"});
  ASSERT_TRUE(live);
  std::this_thread::sleep_for(600ms);
  auto r = call(py_, live,
                {"time.sleep(0.05)\nos.set_blocking(r, False)\ndata = os.read(r, 65536)\n"
                 "ticks = struct.unpack(f'{len(data) // 8}d', data[:len(data) // 8 * 8])\n"
                 "max(b - a for a, b in zip(ticks, ticks[1:])) > 0.5"});
  EXPECT_EQ(value(r), "True") << r.err;
}

TEST_F(Live, EachCallHasItsOwnOutDirectory) {
  std::unique_ptr<Zygote::Live> live;
  auto r = call(py_, live, {"open('/out/a.txt', 'w').write('first')"});
  ASSERT_EQ(r.files.size(), 1u);
  EXPECT_EQ(r.files[0].path, "a.txt");
  r = call(py_, live,
           {"import os\nopen('/out/b.txt', 'w').write('second')\nsorted(os.listdir('/out'))"});
  ASSERT_EQ(r.files.size(), 1u);
  EXPECT_EQ(r.files[0].path, "b.txt");
  EXPECT_EQ(value(r), "['b.txt']");
}

TEST_F(Live, AWorkspaceIsMountedForBothLanguagesAndOutlivesItsProcesses) {
  auto ws = Workspace::create(1 << 20, 16);
  ASSERT_TRUE(ws) << ws.error().message;
  std::unique_ptr<Zygote::Live> js, py;
  auto r = call(js_, js, {"process.cwd()"}, &*ws);
  EXPECT_EQ(r.outcome, Outcome::ok) << r.err;
  EXPECT_EQ(value(r), "'/work'");
  r = call(py_, py, {"import os\nopen('/work/data.txt', 'w').write('from py')\nos.getcwd()"}, &*ws);
  EXPECT_EQ(value(r), "'/work'") << r.err;
  // Input files land in the workspace, replacing what is there.
  Call upload{"open('data.txt').read()"};
  upload.files = {{"data.txt", "uploaded"}};
  r = call(py_, py, upload, &*ws);
  EXPECT_EQ(value(r), "'uploaded'") << r.err;
  // A new process (the old one ended) mounts the same files.
  py.reset();
  r = call(py_, py, {"import os\nsorted(os.listdir('/work'))"}, &*ws);
  EXPECT_EQ(value(r), "['data.txt']") << r.err;
  auto usage = ws->usage();
  ASSERT_TRUE(usage);
  EXPECT_EQ(usage->inodes, 1u);
  EXPECT_GT(usage->bytes, 0u);
}

TEST_F(Live, TheWorkspaceQuotaIsEnforced) {
  auto ws = Workspace::create(256 << 10, 4);
  ASSERT_TRUE(ws) << ws.error().message;
  std::unique_ptr<Zygote::Live> py;
  auto r = call(py_, py,
                {"try:\n    open('/work/big', 'wb').write(b'x' * (512 << 10))\n"
                 "except OSError as e:\n    print(e.strerror)"},
                &*ws);
  EXPECT_EQ(r.out, "No space left on device\n") << r.err;
  r = call(
      py_, py,
      {"import os\nn = 0\ntry:\n    for i in range(10):\n        open(f'/work/f{i}', 'w').close()\n"
       "        n += 1\nexcept OSError as e:\n    print(e.strerror)\nn"},
      &*ws);
  EXPECT_EQ(r.out, "No space left on device\n") << r.err;
  EXPECT_EQ(value(r), "3");  // 4 inodes, one of them taken by 'big'
}

TEST_F(Live, NoOtherRunSeesAWorkspace) {
  auto mine = Workspace::create(1 << 20, 16);
  auto theirs = Workspace::create(1 << 20, 16);
  ASSERT_TRUE(mine && theirs);
  std::unique_ptr<Zygote::Live> a, b, plain;
  call(py_, a, {"open('/work/secret', 'w').write('mine')"}, &*mine);
  auto r = call(py_, b, {"import os\nos.listdir('/work')"}, &*theirs);
  EXPECT_EQ(value(r), "[]") << r.err;
  // A run without a workspace finds an empty, read-only /work.
  r = call(py_, plain, {"import os\nprint(os.listdir('/work'))\nopen('/work/x', 'w')"});
  EXPECT_EQ(r.out, "[]\n") << r.err;
  EXPECT_NE(r.err.find("Error"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace onemcp::sandbox
