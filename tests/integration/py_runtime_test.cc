// Drives the real 1mcp-py-worker through sandbox::Zygote: output, errors, exit codes, limits,
// isolation between runs.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "sandbox/executor.h"

namespace onemcp::sandbox {
namespace {

using Clock = std::chrono::steady_clock;

struct Opts {
  std::vector<std::string> args;
  std::map<std::string, std::string> env;
  std::string cwd;
  std::string stdin_data;
  uint64_t timeout_ms = 10000;
  uint64_t mem_mb = 256;
  uint64_t stdout_bytes = 1 << 20;
};

class PyRuntime : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto t0 = Clock::now();
    auto z = Zygote::start(LaunchSpec{ONEMCP_PY_WORKER, {}, {"PATH=/usr/bin:/bin", "LANG=C.UTF-8"}});
    ASSERT_TRUE(z) << z.error().message;
    zygote_ = z->release();
    auto ready = zygote_->wait_ready(std::chrono::seconds(30));
    ASSERT_TRUE(ready) << ready.error().message;
    double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    std::printf("[ py-worker ] zygote start-to-ready: %.1f ms\n", ms);
  }
  static void TearDownTestSuite() {
    delete zygote_;
    zygote_ = nullptr;
  }

  static RunOutput run(const std::string& code, const Opts& o = {}) {
    ipc::RunRequest req;
    req.code = code;
    req.args = o.args;
    req.env = o.env;
    req.cwd = o.cwd;
    req.timeout_ms = o.timeout_ms;
    req.mem_mb = o.mem_mb;
    req.stdout_bytes = o.stdout_bytes;
    auto r = zygote_->run(req, o.stdin_data);
    EXPECT_TRUE(r) << r.error().message;
    return r ? std::move(*r) : RunOutput{};
  }

  static Zygote* zygote_;
};
Zygote* PyRuntime::zygote_ = nullptr;

std::string kind(const RunOutput& r) { return r.report.error_kind.value_or(""); }

TEST_F(PyRuntime, PrintsToStdout) {
  auto r = run("print(1+1)");
  EXPECT_EQ(r.out, "2\n");
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.outcome, Outcome::ok);
  EXPECT_EQ(kind(r), "");
}

TEST_F(PyRuntime, ValueOfTheLastExpression) {
  auto r = run("x = 41\nx + 1");
  EXPECT_EQ(r.outcome, Outcome::ok);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.report.value.value_or("<none>"), "42");
  // repr(), as a notebook shows it; the hidden name is gone from the namespace afterwards.
  r = run("s = 'a\\nb'\n[s, {'k': (1, None)}]");
  EXPECT_EQ(r.report.value.value_or("<none>"), "['a\\nb', {'k': (1, None)}]");
  r = run("import sys\nsorted(k for k in globals() if not k.startswith('__'))");
  EXPECT_EQ(r.report.value.value_or("<none>"), "['sys']");
  // Evaluated once: the last line's side effect happens exactly once.
  r = run("n = []\ndef f():\n    n.append(1)\n    return len(n)\nf()");
  EXPECT_EQ(r.report.value.value_or("<none>"), "1");
}

TEST_F(PyRuntime, NoValueWithoutALastExpression) {
  for (const char* code : {"x = 1", "print(2)", "None", "for i in range(2):\n    i",
                           "if True:\n    5", "def f(): return 3", "import math", ""}) {
    auto r = run(code);
    EXPECT_EQ(r.outcome, Outcome::ok) << code;
    EXPECT_FALSE(r.report.value) << code << ": " << *r.report.value;
  }
  auto r = run("1/0\n");
  EXPECT_FALSE(r.report.value);
  EXPECT_EQ(kind(r), "exception");
  // A traceback in the last line still names it.
  r = run("x = 0\n1 / x");
  EXPECT_NE(r.err.find("line 2, in <module>"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("1 / x"), std::string::npos) << r.err;
  EXPECT_FALSE(r.report.value);
}

TEST_F(PyRuntime, ValueIsBoundedAndReprFailuresAreReported) {
  auto r = run("'x' * 100000");
  ASSERT_TRUE(r.report.value);
  EXPECT_EQ(r.report.value->size(), 10000u + std::string("... [90002 more characters]").size());
  EXPECT_EQ(r.report.value->substr(r.report.value->size() - 27), "... [90002 more characters]");
  r = run("class A:\n    def __repr__(self): raise RuntimeError('no repr')\nA()");
  EXPECT_EQ(r.outcome, Outcome::ok);
  EXPECT_FALSE(r.report.value);
  EXPECT_NE(r.err.find("RuntimeError: no repr"), std::string::npos) << r.err;
}

TEST_F(PyRuntime, InputFilesAreWrittenBeforeTheCodeAsTheRunsUser) {
  ipc::RunRequest req;
  req.code =
      "import os\n"
      "print(open('in/data.csv').read(), end='')\n"
      "print(open('raw.bin', 'rb').read())\n"
      "st = os.stat('in/data.csv')\n"
      "print(st.st_uid, oct(st.st_mode & 0o777), oct(os.stat('in').st_mode & 0o777))\n"
      "os.remove('raw.bin')\n"
      "print(sorted(os.listdir('.')))";
  req.timeout_ms = 10000;
  req.mem_mb = 256;
  req.stdout_bytes = 1 << 20;
  req.files = {{"in/data.csv", "a,b\n1,2\n"}, {"raw.bin", std::string("\0\xff", 2)}};
  auto r = zygote_->run(req, "");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->outcome, Outcome::ok) << r->err;
  EXPECT_EQ(r->out, "a,b\n1,2\nb'\\x00\\xff'\n1000 0o644 0o755\n['in']\n");
}

TEST_F(PyRuntime, InputFilesFollowNoSymlinkAndFailClearly) {
  auto run_with = [&](std::string cwd, std::vector<ipc::InputFile> files) {
    ipc::RunRequest req;
    req.code = "print('ran')";
    req.cwd = std::move(cwd);
    req.timeout_ms = 10000;
    req.mem_mb = 256;
    req.stdout_bytes = 1 << 20;
    req.files = std::move(files);
    auto r = zygote_->run(req, "");
    EXPECT_TRUE(r) << r.error().message;
    return r ? std::move(*r) : RunOutput{};
  };
  // /dev/fd is a symbolic link (to /proc/self/fd): never followed.
  auto r = run_with("/dev", {{"fd/x", "y"}});
  EXPECT_EQ(r.outcome, Outcome::error);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(kind(r), "exception");
  EXPECT_EQ(r.report.error_message.value_or(""), "files: cannot write fd/x: fd is not a directory");
  // A read-only working directory.
  r = run_with("/usr", {{"x", "y"}});
  EXPECT_EQ(r.outcome, Outcome::error);
  EXPECT_NE(r.err.find("files: cannot write x: Read-only file system"), std::string::npos) << r.err;
  // The same path twice, a path through a file, and a path the server would refuse.
  r = run_with("", {{"a", "1"}, {"a", "2"}});
  EXPECT_NE(r.err.find("files: cannot write a: it is given twice"), std::string::npos) << r.err;
  r = run_with("", {{"a", "1"}, {"a/b", "2"}});
  EXPECT_NE(r.err.find("a is not a directory"), std::string::npos) << r.err;
  r = run_with("", {{"../escape", "1"}});
  EXPECT_NE(r.err.find("must not have"), std::string::npos) << r.err;
}

// Debian's python3-matplotlib and python3-pandas (scripts/setup.sh installs them).
TEST_F(PyRuntime, FiguresShownOrLeftOpenBecomePngsInOut) {
  auto r = run(
      "import matplotlib.pyplot as plt\n"
      "plt.plot([1, 2, 3], [3, 1, 2])\n"
      "plt.show()\n"
      "print(plt.get_fignums())\n"  // show() saved and closed it
      "plt.figure()\n"
      "plt.bar(['a', 'b'], [2, 5])\n"
      "plt.title('left open')\n");
  ASSERT_EQ(r.outcome, Outcome::ok) << r.err;
  EXPECT_EQ(r.out, "[]\n");
  ASSERT_EQ(r.files.size(), 2u);
  std::vector<std::string> names;
  for (const auto& f : r.files) {
    names.push_back(f.path);
    EXPECT_EQ(f.data.substr(0, 8), "\x89PNG\r\n\x1a\n") << f.path;
    EXPECT_GT(f.size, 1000u);
  }
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"figure-1.png", "figure-2.png"}));
}

TEST_F(PyRuntime, FiguresWithoutAWritableOutAreToldNotFatal) {
  ipc::RunRequest req;
  req.code = "import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.show()\nprint('after')";
  req.timeout_ms = 20000;
  req.mem_mb = 256;
  req.stdout_bytes = 1 << 20;
  req.writable = {"/tmp"};
  auto r = zygote_->run(req, "");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->outcome, Outcome::ok) << r->err;
  EXPECT_EQ(r->out, "after\n");
  EXPECT_NE(r->err.find("[1mcp: cannot save the figure to /out/figure-1.png"), std::string::npos)
      << r->err;
}

TEST_F(PyRuntime, PandasDataFrameIsShownAsATable) {
  auto r = run("import pandas as pd\npd.DataFrame({'x': [1, 2], 'y': ['a', 'b']})");
  ASSERT_EQ(r.outcome, Outcome::ok) << r.err;
  EXPECT_EQ(r.report.value.value_or(""), "   x  y\n0  1  a\n1  2  b");
}

TEST_F(PyRuntime, KeepsNewlinesAndSeparatesStderr) {
  auto r = run("import sys\nprint('a\\n\\nb')\nprint('oops', file=sys.stderr)\nprint('c', end='')");
  EXPECT_EQ(r.out, "a\n\nb\nc");
  EXPECT_EQ(r.err, "oops\n");
  EXPECT_EQ(r.outcome, Outcome::ok);
}

TEST_F(PyRuntime, ExceptionPrintsTracebackWithoutRunnerFrames) {
  auto r = run("x = 1\ndef f():\n    return x / 0\nf()\n");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.outcome, Outcome::error);
  EXPECT_EQ(kind(r), "exception");
  EXPECT_EQ(r.report.error_message.value_or(""), "ZeroDivisionError: division by zero");
  EXPECT_EQ(r.err,
            "Traceback (most recent call last):\n"
            "  File \"<run_py>\", line 4, in <module>\n"
            "    f()\n"
            "  File \"<run_py>\", line 3, in f\n"
            "    return x / 0\n"
            "           ~~^~~\n"
            "ZeroDivisionError: division by zero\n");
  EXPECT_EQ(r.out, "");
}

TEST_F(PyRuntime, LibraryFramesAreKept) {
  auto r = run("import json\njson.loads('{')\n");
  EXPECT_EQ(kind(r), "exception");
  EXPECT_NE(r.err.find("File \"<run_py>\", line 2, in <module>"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("json/decoder.py"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("1mcp-runner"), std::string::npos) << r.err;
  EXPECT_EQ(r.report.error_message.value_or(""),
            "json.decoder.JSONDecodeError: Expecting property name enclosed in double quotes: "
            "line 1 column 2 (char 1)");
}

TEST_F(PyRuntime, StackHasNoRunnerFrame) {
  auto r = run("import sys, traceback\nprint(sys._getframe().f_back)\ntraceback.print_stack()");
  EXPECT_EQ(r.out, "None\n");
  EXPECT_EQ(r.err, "  File \"<run_py>\", line 3, in <module>\n    traceback.print_stack()\n");
}

TEST_F(PyRuntime, SyntaxError) {
  auto r = run("print(1)\nprint(\n");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.outcome, Outcome::error);
  EXPECT_EQ(kind(r), "syntax");
  EXPECT_EQ(r.report.error_message.value_or(""), "SyntaxError: '(' was never closed");
  EXPECT_EQ(r.err,
            "  File \"<run_py>\", line 2\n"
            "    print(\n"
            "         ^\n"
            "SyntaxError: '(' was never closed\n");
  EXPECT_EQ(r.out, "");  // nothing ran
}

TEST_F(PyRuntime, SysExitCodes) {
  auto r = run("import sys\nprint('x')\nsys.exit(3)");
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.outcome, Outcome::error);
  EXPECT_EQ(r.out, "x\n");
  EXPECT_EQ(r.err, "");

  r = run("import sys\nsys.exit(0)");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.outcome, Outcome::ok);

  r = run("import sys\nsys.exit()");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.outcome, Outcome::ok);
  EXPECT_EQ(r.err, "");

  r = run("import sys\nsys.exit('msg')");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.outcome, Outcome::error);
  EXPECT_EQ(r.err, "msg\n");

  r = run("exit(4)");  // the site builtin
  EXPECT_EQ(r.exit_code, 4);
}

TEST_F(PyRuntime, OsExit) {
  auto r = run("import os\nprint('before')\nos._exit(7)\nprint('after')");
  EXPECT_EQ(r.exit_code, 7);
  EXPECT_EQ(r.out, "before\n");
  EXPECT_EQ(r.outcome, Outcome::error);
}

TEST_F(PyRuntime, ArgsEnvCwd) {
  Opts o;
  o.args = {"a b", "é"};
  o.env = {{"FOO", "bar"}, {"LANG", "C.UTF-8"}};
  o.cwd = "/tmp";
  auto r = run("import os, sys\nprint(sys.argv)\nprint(sorted(os.environ.items()))\n"
               "print(os.getcwd())\nprint(__name__)",
               o);
  EXPECT_EQ(r.out,
            "['<run_py>', 'a b', 'é']\n"
            "[('FOO', 'bar'), ('LANG', 'C.UTF-8')]\n"
            "/tmp\n"
            "__main__\n");
  EXPECT_EQ(r.err, "");
}

TEST_F(PyRuntime, EnvIsExactlyTheRequest) {
  auto r = run("import os\nprint(dict(os.environ))\nprint(os.getenv('OPENBLAS_NUM_THREADS'))");
  EXPECT_EQ(r.out, "{}\nNone\n");
}

TEST_F(PyRuntime, BadCwd) {
  Opts o;
  o.cwd = "/nonexistent/dir";
  auto r = run("print('ran')", o);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(kind(r), "exception");
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err,
            "cannot change directory to '/nonexistent/dir': No such file or directory\n");
}

TEST_F(PyRuntime, Stdin) {
  Opts o;
  o.stdin_data = "hello\nworld\nmore";
  auto r = run("import sys\nprint(input())\nprint(repr(sys.stdin.read()))", o);
  EXPECT_EQ(r.out, "hello\n'world\\nmore'\n");
  r = run("print(repr(input()))");  // empty stdin: EOFError like CPython
  EXPECT_EQ(kind(r), "exception");
  EXPECT_EQ(r.report.error_message.value_or(""), "EOFError: EOF when reading a line");
}

void expect_timeout(const RunOutput& r, uint64_t timeout_ms) {
  EXPECT_EQ(r.outcome, Outcome::timeout);
  EXPECT_GE(r.duration_ms, double(timeout_ms) - 5);
  EXPECT_LT(r.duration_ms, double(timeout_ms) + 250);
}

TEST_F(PyRuntime, TimeoutBusyLoop) {
  Opts o;
  o.timeout_ms = 300;
  expect_timeout(run("print('started')\nwhile True: pass", o), 300);
}

TEST_F(PyRuntime, TimeoutSleep) {
  Opts o;
  o.timeout_ms = 300;
  auto r = run("import time\nprint('started')\ntime.sleep(100)", o);
  expect_timeout(r, 300);
  EXPECT_EQ(r.out, "started\n");  // unbuffered: output before the kill is kept
}

TEST_F(PyRuntime, TimeoutCatastrophicRegex) {
  Opts o;
  o.timeout_ms = 300;
  expect_timeout(run("import re\nre.match(r'(a+)+$', 'a'*40+'b')", o), 300);
}

TEST_F(PyRuntime, TimeoutBigInt) {
  Opts o;
  o.timeout_ms = 300;
  expect_timeout(run("x = 10**10**8", o), 300);
}

TEST_F(PyRuntime, MemoryBombHuge) {
  Opts o;
  o.mem_mb = 64;
  auto r = run("b = bytearray(10**10)", o);
  EXPECT_EQ(r.outcome, Outcome::memory);
  EXPECT_EQ(kind(r), "memory");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("MemoryError"), std::string::npos) << r.err;

  r = run("x = [0] * 10**10", o);
  EXPECT_EQ(r.outcome, Outcome::memory);
}

TEST_F(PyRuntime, MemoryBombIncremental) {
  Opts o;
  o.mem_mb = 64;
  // Module-level growth: the memory stays referenced while the error is reported.
  auto r = run("x = []\nwhile True:\n    x.append(' ' * 100000)", o);
  EXPECT_EQ(r.outcome, Outcome::memory);
  EXPECT_EQ(kind(r), "memory");
  // Small objects, inside a function frame.
  r = run("def f():\n    x = []\n    while True:\n        x.append(str(len(x)))\nf()", o);
  EXPECT_EQ(r.outcome, Outcome::memory);
  EXPECT_EQ(kind(r), "memory");
}

TEST_F(PyRuntime, MemoryWithinBudgetWorks) {
  Opts o;
  o.mem_mb = 64;
  auto r = run("b = bytearray(40 * 2**20)\nprint(len(b))", o);
  EXPECT_EQ(r.out, "41943040\n");
  EXPECT_EQ(r.outcome, Outcome::ok);
}

TEST_F(PyRuntime, OutputLimit) {
  Opts o;
  o.stdout_bytes = 1000;
  auto r = run("while True: print('x' * 100)", o);
  EXPECT_EQ(r.outcome, Outcome::output_limit);
  EXPECT_TRUE(r.truncated);
  EXPECT_EQ(r.out.size(), 1000u);
}

TEST_F(PyRuntime, ConcurrentRunsGetTheirOwnOutput) {
  constexpr int kRuns = 20;
  std::vector<std::string> outs(kRuns);
  std::vector<std::thread> threads;
  for (int i = 0; i < kRuns; ++i) {
    threads.emplace_back([i, &outs] {
      auto r = run("import time\nfor k in range(3):\n    print(" + std::to_string(i) +
                   ", k)\n    time.sleep(0.01)");
      outs[size_t(i)] = r.out;
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kRuns; ++i) {
    std::string s = std::to_string(i);
    EXPECT_EQ(outs[size_t(i)], s + " 0\n" + s + " 1\n" + s + " 2\n");
  }
}

TEST_F(PyRuntime, StateDoesNotLeakBetweenRuns) {
  auto r1 = run(
      "import json, sys\njson.dumps = None\nimport builtins\nbuiltins.leak = 1\n"
      "sys.modules['os'].environ['X'] = '1'\nglobal_var = 5\nsys.path.append('/evil')");
  EXPECT_EQ(r1.outcome, Outcome::ok) << r1.err;
  auto r2 = run(
      "import json, builtins, os, sys\nprint(json.dumps([1]))\nprint(hasattr(builtins, 'leak'))\n"
      "print('X' in os.environ)\nprint('global_var' in globals())\nprint('/evil' in sys.path)");
  EXPECT_EQ(r2.out, "[1]\nFalse\nFalse\nFalse\nFalse\n");
}

TEST_F(PyRuntime, RandomDiffersBetweenRuns) {
  const char* code = "import random, uuid\nprint(random.random(), uuid.uuid4())";
  EXPECT_NE(run(code).out, run(code).out);
}

TEST_F(PyRuntime, Numpy) {
  auto probe = run("import importlib.util\nprint(importlib.util.find_spec('numpy') is not None)");
  if (probe.out != "True\n") GTEST_SKIP() << "numpy not installed";
  auto r = run("import numpy\nprint(numpy.arange(3).sum())");
  EXPECT_EQ(r.out, "3\n");
  EXPECT_EQ(r.err, "");
  // Reseeded per run (the C side writes a fresh key into numpy's global MT19937 state): the
  // legacy generator, its gaussians and the stdlib's generator all differ between runs.
  const char* code =
      "import numpy, random\nprint(numpy.random.get_state()[2], numpy.random.rand(),"
      " numpy.random.standard_normal(), random.random())";
  const std::string a = run(code).out, b = run(code).out;
  std::vector<std::string> fa, fb;
  for (auto [out, fields] : {std::pair{&a, &fa}, std::pair{&b, &fb}}) {
    std::istringstream in(*out);
    for (std::string f; in >> f;) fields->push_back(f);
    ASSERT_EQ(fields->size(), 4u) << *out;
    EXPECT_EQ((*fields)[0], "624") << *out;  // a fresh key, regenerated at the first draw
  }
  for (size_t i = 1; i < 4; ++i) EXPECT_NE(fa[i], fb[i]) << a << b;
  Opts o;
  o.mem_mb = 64;
  r = run("import numpy\nnumpy.ones(10**10)", o);  // numpy's MemoryError subclass
  EXPECT_EQ(r.outcome, Outcome::memory) << r.err;
}

TEST_F(PyRuntime, AfterForkHandlersAreRealInsideRuns) {
  // The zygote's children run threading's after-fork handler as a no-op (nothing to reset after
  // a fork from the zygote's only thread); a run gets the real one back, so a run that forks
  // while its own thread runs still leaves a child whose threading state is consistent.
  auto r = run(
      "import os, threading\n"
      "print(threading._after_fork.__code__.co_name)\n"
      "ev = threading.Event()\n"
      "t = threading.Thread(target=ev.wait)\n"
      "t.start()\n"
      "pid = os.fork()\n"
      "if pid == 0:\n"
      "    alone = threading.active_count() == 1\n"
      "    os._exit(0 if alone and threading.current_thread() is threading.main_thread() else 3)\n"
      "ev.set()\n"
      "t.join()\n"
      "print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))\n");
  EXPECT_EQ(r.out, "_after_fork\n0\n") << r.err;
  EXPECT_EQ(r.outcome, Outcome::ok) << r.err;
}

TEST_F(PyRuntime, ZygoteIsSingleThreaded) {
  // Forking a threaded process is unsafe: BLAS pools must not have started.
  std::string task = "/proc/" + std::to_string(zygote_->pid()) + "/task";
  size_t n = 0;
  for ([[maybe_unused]] auto& e : std::filesystem::directory_iterator(task)) ++n;
  EXPECT_EQ(n, 1u);
}

TEST_F(PyRuntime, InvalidUtf8ReachesHostAsBytes) {
  auto r = run("import sys\nsys.stdout.buffer.write(b'\\xff')\nprint('\\udcff')");
  EXPECT_EQ(r.out, "\xff\\udcff\n");  // unencodable text is escaped, never an error
  EXPECT_EQ(r.outcome, Outcome::ok) << r.err;
}

TEST_F(PyRuntime, ThreadsAreWaitedFor) {
  auto r = run(
      "import threading, time\n"
      "def work():\n    time.sleep(0.2)\n    print('thread')\n"
      "threading.Thread(target=work).start()\nprint('main')");
  EXPECT_EQ(r.out, "main\nthread\n");
  EXPECT_EQ(r.outcome, Outcome::ok);
  // A thread pool left running is drained by its threading atexit hook, as at interpreter exit.
  r =
      run("import concurrent.futures, time\n"
          "def work():\n    time.sleep(0.2)\n    print('pool')\n"
          "concurrent.futures.ThreadPoolExecutor(1).submit(work)\nprint('main')");
  EXPECT_EQ(r.out, "main\npool\n");
  EXPECT_EQ(r.outcome, Outcome::ok) << r.err;
}

TEST_F(PyRuntime, ThreadsFitASmallMemoryBudget) {
  Opts o;
  o.mem_mb = 64;
  auto r = run(
      "import threading\nout = []\n"
      "ts = [threading.Thread(target=out.append, args=(i,)) for i in range(8)]\n"
      "for t in ts: t.start()\nfor t in ts: t.join()\nprint(sorted(out))",
      o);
  EXPECT_EQ(r.out, "[0, 1, 2, 3, 4, 5, 6, 7]\n") << r.err;
}

TEST_F(PyRuntime, AtexitRuns) {
  auto r = run("import atexit, sys\natexit.register(print, 'bye')\nsys.exit(2)");
  EXPECT_EQ(r.out, "bye\n");
  EXPECT_EQ(r.exit_code, 2);
}

TEST_F(PyRuntime, ForkedChildDiesWithTheRun) {
  Opts o;
  o.timeout_ms = 300;
  // The parent waits for a child that never ends: the deadline kills both.
  auto r = run("import os, time\npid = os.fork()\nif pid == 0:\n    time.sleep(1000)\n"
               "print(pid, flush=True)\nos.waitpid(pid, 0)",
               o);
  expect_timeout(r, 300);
  // The parent returns at once: its child holding the pipes is killed, not waited for.
  o.timeout_ms = 5000;
  r = run("import os, time\npid = os.fork()\nif pid == 0:\n    time.sleep(1000)\nprint(pid)", o);
  EXPECT_EQ(r.outcome, Outcome::ok);
  EXPECT_LT(r.duration_ms, 1000);
  // The run is pid 1 of its own pid namespace, so its first child is pid 2 there; when pid 1
  // ends, the kernel kills every process left in the namespace.
  EXPECT_EQ(std::atoi(r.out.c_str()), 2);
}

TEST_F(PyRuntime, ForkedChildDoesNotReport) {
  auto r = run("import os\npid = os.fork()\nif pid == 0:\n    raise ValueError('child')\n"
               "os.waitpid(pid, 0)\nprint('parent')");
  EXPECT_EQ(r.outcome, Outcome::ok);
  EXPECT_EQ(kind(r), "");
  EXPECT_EQ(r.out, "parent\n");
}

// Latency is measured by bench/run.mjs and bench/steps.mjs, not here.
TEST_F(PyRuntime, ManySequentialRunsStayCorrect) {
  for (int i = 0; i < 200; ++i) {
    auto r = run("print(" + std::to_string(i) + ")");
    ASSERT_EQ(r.outcome, Outcome::ok) << r.err;
    ASSERT_EQ(r.out, std::to_string(i) + "\n");
  }
}

}  // namespace
}  // namespace onemcp::sandbox
