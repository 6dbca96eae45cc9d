// Integration tests of the JavaScript worker: the real 1mcp-js-worker driven through
// sandbox::Zygote, with the supervisor's needs_transpile -> esbuild -> rerun step done here.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "sandbox/executor.h"
#include "transpile/esbuild.h"

namespace onemcp {
namespace {

using sandbox::Outcome;
using sandbox::RunOutput;

struct Opts {
  uint64_t timeout_ms = 5000;
  uint64_t mem_mb = 256;
  uint64_t stdout_bytes = 1u << 20;
  std::vector<std::string> args;
  std::map<std::string, std::string> env;
  std::string cwd;
  std::string stdin_data;
  std::string deps_code;
  ipc::HeapMode heap = ipc::HeapMode::none;
  int heap_fd = -1;
};

class JsRuntime : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto z = sandbox::Zygote::start({ONEMCP_JS_WORKER, {}, {"PATH=/usr/bin:/bin", "LANG=C.UTF-8"}});
    ASSERT_TRUE(z.ok()) << z.error().message;
    zygote_ = std::move(z.value()).release();
  }
  static void TearDownTestSuite() {
    delete zygote_;
    zygote_ = nullptr;
  }

  // What the supervisor does: run; if the worker asks for it, transpile with esbuild and rerun.
  static RunOutput run(const std::string& code, const Opts& o = {}) {
    ipc::RunRequest req;
    req.code = code;
    req.args = o.args;
    req.env = o.env;
    req.cwd = o.cwd;
    req.timeout_ms = o.timeout_ms;
    req.mem_mb = o.mem_mb;
    req.stdout_bytes = o.stdout_bytes;
    req.deps_code = o.deps_code;
    req.heap = o.heap;
    auto r = zygote_->run(req, o.stdin_data, nullptr, nullptr, nullptr, {}, o.heap_fd);
    EXPECT_TRUE(r.ok()) << r.error().message;
    if (!r.ok()) return {};
    if (!r->report.needs_transpile) return std::move(r.value());
    EXPECT_EQ(r->exit_code, 2);
    EXPECT_EQ(r->out, "");
    EXPECT_EQ(r->err, "");
    auto js = transpile::esbuild_transform(ONEMCP_ESBUILD, code, 10000);
    if (!js.ok()) {
      RunOutput failed;
      failed.outcome = Outcome::error;
      failed.exit_code = 1;
      failed.err = js.error().message + "\n";
      failed.report.error_kind = "syntax";
      failed.report.error_message = js.error().message;
      return failed;
    }
    req.code = *js;
    req.transpiled = true;
    auto r2 = zygote_->run(req, o.stdin_data, nullptr, nullptr, nullptr, {}, o.heap_fd);
    EXPECT_TRUE(r2.ok()) << r2.error().message;
    if (!r2.ok()) return {};
    EXPECT_FALSE(r2->report.needs_transpile);
    return std::move(r2.value());
  }

  static std::string out_of(const std::string& code) {
    RunOutput o = run(code);
    EXPECT_EQ(o.outcome, Outcome::ok) << o.err;
    return o.out;
  }

  static sandbox::Zygote* zygote_;
};

sandbox::Zygote* JsRuntime::zygote_ = nullptr;

#define EXPECT_OK(o) EXPECT_EQ((o).outcome, Outcome::ok) << "stderr: " << (o).err

TEST_F(JsRuntime, ConsoleLogPrintsResult) {
  RunOutput o = run("console.log(1+1)");
  EXPECT_OK(o);
  EXPECT_EQ(o.out, "2\n");
  EXPECT_EQ(o.err, "");
  EXPECT_EQ(o.exit_code, 0);
  EXPECT_FALSE(o.report.value.has_value());
}

TEST_F(JsRuntime, LastExpressionValueIsReported) {
  EXPECT_EQ(run("1 + 1").report.value, "2");
  EXPECT_EQ(run("const a = { x: 1, y: [1, 'a'] }; a").report.value, "{ x: 1, y: [ 1, 'a' ] }");
  EXPECT_EQ(run("'text'").report.value, "'text'");
  EXPECT_FALSE(run("let z = 5;").report.value.has_value());
  EXPECT_EQ(run("Promise.resolve(42)").report.value, "42");
  EXPECT_EQ(run("(async () => { await null; return { done: true } })()").report.value, "{ done: true }");
}

TEST_F(JsRuntime, FormatsLikeNode) {
  // Expected strings are Node 20's util.inspect output.
  struct Case {
    const char* expr;
    const char* node;
  } cases[] = {
      {"{ x: 1, y: 'a' }", "{ x: 1, y: 'a' }"},
      {"[1, 2, 3]", "[ 1, 2, 3 ]"},
      {"{}", "{}"},
      {"[]", "[]"},
      {"{ a: { b: { c: { d: 1 } } } }", "{ a: { b: { c: [Object] } } }"},
      {"{ a: [[[[1]]]] }", "{ a: [ [ [Array] ] ] }"},
      {"new Map([['a', 1]])", "Map(1) { 'a' => 1 }"},
      {"new Set([1, 'x'])", "Set(2) { 1, 'x' }"},
      {"new Date(0)", "1970-01-01T00:00:00.000Z"},
      {"/ab+c/gi", "/ab+c/gi"},
      {"function foo() {}", "[Function: foo]"},
      {"() => {}", "[Function (anonymous)]"},
      {"class Foo {}", "[class Foo]"},
      {"(() => { class Foo { constructor() { this.a = 1 } }; return new Foo() })()", "Foo { a: 1 }"},
      {"Object.assign(Object.create(null), { a: 1 })", "[Object: null prototype] { a: 1 }"},
      {"Symbol('s')", "Symbol(s)"},
      {"10n", "10n"},
      {"-0", "-0"},
      {"(() => { const o = { a: 1 }; o.self = o; return o })()", "<ref *1> { a: 1, self: [Circular *1] }"},
      {"[ 'a\\nb', \"it's\" ]", "[ 'a\\nb', \"it's\" ]"},
      {"[1, , 3]", "[ 1, <1 empty item>, 3 ]"},
      {"{ get a() { return 1 } }", "{ a: [Getter] }"},
      {"new Uint8Array([1, 2, 3])", "Uint8Array(3) [ 1, 2, 3 ]"},
      {"[undefined, null, true, NaN]", "[ undefined, null, true, NaN ]"},
      {"{ 'a-b': 1 }", "{ 'a-b': 1 }"},
      {"Promise.resolve(4)", "Promise { 4 }"},
      {"new Promise(() => {})", "Promise { <pending> }"},
      {"Array.from({ length: 120 }, (_, i) => i).length", "120"},
      {"{ a: 'x'.repeat(20), b: 'y'.repeat(20), c: 'z'.repeat(20), d: 'w'.repeat(20) }",
       "{\n  a: 'xxxxxxxxxxxxxxxxxxxx',\n  b: 'yyyyyyyyyyyyyyyyyyyy',\n  c: 'zzzzzzzzzzzzzzzzzzzz',\n"
       "  d: 'wwwwwwwwwwwwwwwwwwww'\n}"},
      {"Array.from({ length: 30 }, (_, i) => i * 1000)",
       "[\n      0,  1000,  2000,  3000,  4000,\n   5000,  6000,  7000,  8000,  9000,\n"
       "  10000, 11000, 12000, 13000, 14000,\n  15000, 16000, 17000, 18000, 19000,\n"
       "  20000, 21000, 22000, 23000, 24000,\n  25000, 26000, 27000, 28000, 29000\n]"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(out_of(std::string("console.log(") + c.expr + ")"), std::string(c.node) + "\n") << c.expr;
  }
  // Long arrays are cut after 100 items.
  std::string big = out_of("console.log(Array.from({ length: 150 }, (_, i) => i))");
  EXPECT_NE(big.find("... 50 more items\n]"), std::string::npos) << big;
  // Top-level strings are raw, several arguments are joined with spaces, format specifiers work.
  EXPECT_EQ(out_of("console.log('a', 'b', 1, { c: 'd' })"), "a b 1 { c: 'd' }\n");
  EXPECT_EQ(out_of("console.log('%s=%d %i %f %j %o %O %c%%', 'x', 42, 3.9, '1.5', {a: 1}, [1], {b: 2}, 'css')"),
            "x=42 3 1.5 {\"a\":1} [ 1 ] { b: 2 } %\n");
  EXPECT_EQ(out_of("console.log(new Error('boom').message)"), "boom\n");
  std::string err = out_of("console.log(new Error('boom'))");
  EXPECT_EQ(err.rfind("Error: boom\n    at ", 0), 0u) << err;
}

TEST_F(JsRuntime, NewlinesArePreservedAndStderrIsSeparate) {
  RunOutput o = run(
      "console.log('a\\nb'); process.stdout.write('x\\n\\ny'); console.error('oops'); "
      "console.warn('w\\n'); process.stderr.write('raw')");
  EXPECT_OK(o);
  EXPECT_EQ(o.out, "a\nb\nx\n\ny");
  EXPECT_EQ(o.err, "oops\nw\n\nraw");
}

TEST_F(JsRuntime, UncaughtExceptionReportsStack) {
  RunOutput o = run("function f() { null.x }\nf()");
  EXPECT_EQ(o.outcome, Outcome::error);
  EXPECT_EQ(o.exit_code, 1);
  EXPECT_EQ(o.report.error_kind, "exception");
  EXPECT_EQ(o.report.error_message, "TypeError: cannot read property 'x' of null");
  // QuickJS 2021 knows the line of call sites, not always of the throwing frame.
  EXPECT_EQ(o.err.rfind("Uncaught TypeError: cannot read property 'x' of null\n    at f (<run_js>", 0), 0u)
      << o.err;
  EXPECT_NE(o.err.find("    at <eval> (<run_js>:2)\n"), std::string::npos) << o.err;

  RunOutput thrown = run("throw { code: 7 }");
  EXPECT_EQ(thrown.report.error_kind, "exception");
  EXPECT_EQ(thrown.err, "Uncaught { code: 7 }\n");

  RunOutput in_timer = run("setTimeout(() => { throw new RangeError('late') }, 5)");
  EXPECT_EQ(in_timer.exit_code, 1);
  EXPECT_EQ(in_timer.report.error_message, "RangeError: late");
}

TEST_F(JsRuntime, SyntaxErrorIsClear) {
  // esbuild gets the final word for code that neither QuickJS nor esbuild can parse.
  RunOutput o = run("const x = ;");
  EXPECT_EQ(o.outcome, Outcome::error);
  EXPECT_EQ(o.report.error_kind, "syntax");
  EXPECT_EQ(o.report.error_message, "run_js.ts:1:10: ERROR: Unexpected \";\"");

  // Code already transpiled that QuickJS still rejects: the worker's own message.
  ipc::RunRequest req;
  req.code = "let a = 1;\nlet b = ;";
  req.timeout_ms = 5000;
  req.transpiled = true;
  auto r = zygote_->run(req, "");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 1);
  EXPECT_EQ(r->report.error_kind, "syntax");
  EXPECT_NE(r->report.error_message->find("SyntaxError: "), std::string::npos);
  EXPECT_NE(r->report.error_message->find("(<run_js>:2)"), std::string::npos) << *r->report.error_message;
  EXPECT_NE(r->err.find("<run_js>:2\nlet b = ;\n\nSyntaxError: "), std::string::npos) << r->err;
}

TEST_F(JsRuntime, TypeScriptRuns) {
  RunOutput o = run("const x: number = 1; interface A { a: string }; console.log(x)");
  EXPECT_OK(o);
  EXPECT_EQ(o.out, "1\n");
  RunOutput cls = run(
      "class P { constructor(private readonly name: string) {} hi(): string { return `hi ${this.name}` } }\n"
      "enum Color { Red, Green }\n"
      "const f = <T,>(v: T): T => v;\n"
      "console.log(new P('ts').hi(), Color.Green, f<number>(3))");
  EXPECT_OK(cls);
  EXPECT_EQ(cls.out, "hi ts 1 3\n");
}

TEST_F(JsRuntime, TopLevelAwait) {
  RunOutput o = run(
      "const v = await new Promise(r => setTimeout(() => r(7), 20));\nconsole.log('got', v)");
  EXPECT_OK(o);
  EXPECT_EQ(o.out, "got 7\n");
  RunOutput ts = run("const n: number = await Promise.resolve(5); console.log(n * 2)");
  EXPECT_OK(ts);
  EXPECT_EQ(ts.out, "10\n");
  // The value of the last expression survives top-level await.
  RunOutput value = run("const x = await Promise.resolve(21);\nx * 2");
  EXPECT_OK(value);
  EXPECT_EQ(value.report.value, "42");
  RunOutput multi = run("const o = await Promise.resolve({a: 1})\nObject.assign(o, {\n  b: 2,\n})  // done");
  EXPECT_EQ(multi.report.value, "{ a: 1, b: 2 }");
  // A loop body is not a last statement: it must run every iteration.
  RunOutput loop = run("await null\nlet n = 0\nfor (const i of [1, 2, 3])\nn += i\nn");
  EXPECT_EQ(loop.report.value, "6");
  RunOutput unbraced = run("await null\nlet c = 0\nfor (const i of [1, 2, 3])\nc++");
  EXPECT_OK(unbraced);
  EXPECT_FALSE(unbraced.report.value.has_value());
  RunOutput decl = run("await null\nconst z = 3;");
  EXPECT_OK(decl);
  EXPECT_FALSE(decl.report.value.has_value());
  RunOutput rejected = run("await Promise.reject(new Error('nope'))");
  EXPECT_EQ(rejected.exit_code, 1);
  EXPECT_EQ(rejected.report.error_message, "Error: nope");
}

TEST_F(JsRuntime, PromisesAndTimersRunInOrder) {
  EXPECT_EQ(out_of(
                "setTimeout(() => console.log('t10'), 10);\n"
                "setTimeout(() => console.log('t0'), 0);\n"
                "setTimeout(() => console.log('t5'), 5);\n"
                "Promise.resolve().then(() => console.log('micro1'));\n"
                "queueMicrotask(() => console.log('micro2'));\n"
                "process.nextTick(() => console.log('tick'));\n"
                "setTimeout(() => { console.log('t1'); Promise.resolve().then(() => console.log('t1-micro')) }, 1);\n"
                "console.log('sync');"),
            "sync\nmicro1\nmicro2\ntick\nt0\nt1\nt1-micro\nt5\nt10\n");
}

TEST_F(JsRuntime, SetIntervalAndClearInterval) {
  RunOutput o = run(
      "let n = 0; const id = setInterval(() => { n++; console.log('tick', n); if (n === 3) clearInterval(id) }, 5);\n"
      "const t = setTimeout(() => console.log('never'), 1); clearTimeout(t);\n"
      "setTimeout(() => console.log('unref never'), 1000).unref();");
  EXPECT_OK(o);
  EXPECT_EQ(o.out, "tick 1\ntick 2\ntick 3\n");
  EXPECT_LT(o.duration_ms, 900);
}

TEST_F(JsRuntime, UnhandledRejectionFails) {
  RunOutput o = run("Promise.reject(new Error('lost')); console.log('before')");
  EXPECT_EQ(o.outcome, Outcome::error);
  EXPECT_EQ(o.exit_code, 1);
  EXPECT_EQ(o.out, "before\n");
  EXPECT_EQ(o.err.rfind("Uncaught (in promise) Error: lost\n", 0), 0u) << o.err;
  EXPECT_EQ(o.report.error_message, "Uncaught (in promise) Error: lost");
  // Handled later in the same tick: not an error.
  EXPECT_OK(run("const p = Promise.reject(1); p.catch(() => console.log('caught'))"));
}

TEST_F(JsRuntime, ProcessExitCode) {
  RunOutput o = run("console.log('bye'); process.exit(3); console.log('never')");
  EXPECT_EQ(o.exit_code, 3);
  EXPECT_EQ(o.outcome, Outcome::error);
  EXPECT_EQ(o.out, "bye\n");
  EXPECT_EQ(run("setTimeout(() => process.exit(0), 5); setTimeout(() => console.log('no'), 50)").exit_code, 0);
  EXPECT_EQ(run("process.exitCode = 4").exit_code, 4);
}

TEST_F(JsRuntime, ArgsEnvCwdAreVisible) {
  Opts o;
  o.args = {"one", "two words"};
  o.env = {{"GREETING", "héllo"}};
  o.cwd = "/work/dir";
  RunOutput r = run("console.log(JSON.stringify(process.argv), process.env.GREETING, process.cwd())", o);
  EXPECT_OK(r);
  EXPECT_EQ(r.out, "[\"qjs\",\"<run_js>\",\"one\",\"two words\"] héllo /work/dir\n");
  // The worker's own environment is not the run's.
  EXPECT_EQ(out_of("console.log(JSON.stringify(process.env))"), "{}\n");
}

TEST_F(JsRuntime, StdinIsReadable) {
  Opts o;
  o.stdin_data = "line 1\nline é\n";
  RunOutput r = run(
      "console.log(JSON.stringify(process.stdin.read())); console.log(process.stdin.lines().length);"
      "console.log(process.stdin.read() === process.stdin.read())",
      o);
  EXPECT_OK(r);
  EXPECT_EQ(r.out, "\"line 1\\nline é\\n\"\n2\ntrue\n");
}

TEST_F(JsRuntime, BusyLoopTimesOut) {
  Opts o;
  o.timeout_ms = 300;
  RunOutput r = run("console.log('start'); while (true) {}", o);
  EXPECT_EQ(r.outcome, Outcome::timeout);
  EXPECT_LT(r.duration_ms, 300 + 250);
  EXPECT_EQ(r.out, "start\n");  // output before the kill is kept
}

TEST_F(JsRuntime, CatastrophicRegexStopsAtDeadline) {
  Opts o;
  o.timeout_ms = 300;
  RunOutput r = run("/(a+)+$/.test('a'.repeat(40) + 'b')", o);
  EXPECT_EQ(r.outcome, Outcome::timeout);
  EXPECT_LT(r.duration_ms, 300 + 250);
}

TEST_F(JsRuntime, PromiseFloodStopsAtDeadline) {
  Opts o;
  o.timeout_ms = 300;
  for (const char* code : {"for (;;) await null", "function f() { Promise.resolve().then(f) } f()",
                           "setInterval(() => {}, 0)"}) {
    RunOutput r = run(code, o);
    EXPECT_EQ(r.outcome, Outcome::timeout) << code;
    EXPECT_LT(r.duration_ms, 300 + 250) << code;
  }
}

TEST_F(JsRuntime, MemoryBombIsMemoryOutcome) {
  Opts o;
  o.mem_mb = 64;
  RunOutput r = run("const a = []; for (;;) a.push(new Array(100000).fill(1.5))", o);
  EXPECT_EQ(r.outcome, Outcome::memory) << r.err;
  EXPECT_EQ(r.report.error_kind, "memory");
  EXPECT_NE(r.err.find("out of memory"), std::string::npos);
  RunOutput s = run("let s = 'x'; for (;;) s += s", o);
  EXPECT_EQ(s.outcome, Outcome::memory) << s.err;
}

TEST_F(JsRuntime, DeepRecursionIsCatchable) {
  RunOutput r = run(
      "function f(n) { return f(n + 1) + 1 }\n"
      "try { f(0) } catch (e) { console.log('caught', e.name, e.message) }\n"
      "const deep = JSON.parse('['.repeat(100000) + ']'.repeat(100000));");
  EXPECT_EQ(r.out, "caught InternalError stack overflow\n");
  EXPECT_EQ(r.outcome, Outcome::error);  // the JSON one is not caught
  EXPECT_EQ(r.signal, 0);
  EXPECT_EQ(r.report.error_kind, "exception");
}

TEST_F(JsRuntime, HugeOutputIsTruncated) {
  Opts o;
  o.stdout_bytes = 1000;
  RunOutput r = run("for (;;) console.log('x'.repeat(100))", o);
  EXPECT_EQ(r.outcome, Outcome::output_limit);
  EXPECT_TRUE(r.truncated);
  EXPECT_EQ(r.out.size(), 1000u);
}

TEST_F(JsRuntime, ConcurrentRunsGetTheirOwnOutput) {
  constexpr int kThreads = 20;
  std::vector<RunOutput> results(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([i, &results] {
      results[size_t(i)] = run("await new Promise(r => setTimeout(r, 10)); console.log('run', " +
                               std::to_string(i) + "); " + std::to_string(i));
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kThreads; ++i) {
    EXPECT_OK(results[size_t(i)]);
    EXPECT_EQ(results[size_t(i)].out, "run " + std::to_string(i) + "\n");
  }
}

TEST_F(JsRuntime, NoStateLeaksBetweenRuns) {
  EXPECT_OK(run("globalThis.leak = 1; Object.prototype.polluted = 1; console.log = () => {}"));
  EXPECT_EQ(out_of("console.log(typeof leak, ({}).polluted)"), "undefined undefined\n");
}

// Every run is a fork of one interpreter: Math.random must not repeat the same numbers in each.
TEST_F(JsRuntime, MathRandomDiffersBetweenRuns) {
  std::vector<std::string> draws;
  for (int i = 0; i < 4; ++i) draws.push_back(out_of("console.log(Math.random(), Math.random())"));
  std::sort(draws.begin(), draws.end());
  EXPECT_EQ(std::unique(draws.begin(), draws.end()), draws.end()) << draws[0];
  EXPECT_EQ(out_of("const a = Array.from({ length: 1000 }, Math.random);"
                   "console.log(a.every((x) => x >= 0 && x < 1), new Set(a).size)"),
            "true 1000\n");
}

TEST_F(JsRuntime, CryptoRandomValuesAndUuids) {
  std::set<std::string> uuids;
  for (int i = 0; i < 3; ++i) {
    std::string out = out_of(
        "const u = crypto.randomUUID(); const a = crypto.getRandomValues(new Uint32Array(8));"
        "console.log(u, "
        "/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(u),"
        " a.some((x) => x !== 0), u !== crypto.randomUUID())");
    EXPECT_EQ(out.substr(36), " true true true\n") << out;
    uuids.insert(out.substr(0, 36));
  }
  EXPECT_EQ(uuids.size(), 3u) << "every run draws its own";
  EXPECT_EQ(
      out_of(
          "const v = new DataView(new ArrayBuffer(8)); const f = new Float64Array(2);"
          "for (const x of [v, f, [1, 2], null]) { try { crypto.getRandomValues(x) } catch (e) { "
          "console.log(e.name) } }"
          "try { crypto.getRandomValues(new Uint8Array(65537)) } catch (e) { console.log(e.name) }"
          "const part = new Uint8Array(16); crypto.getRandomValues(part.subarray(8));"
          "console.log(part.slice(0, 8).every((x) => x === 0), crypto.getRandomValues(new "
          "BigInt64Array(1)).length)"),
      "TypeMismatchError\nTypeMismatchError\nTypeMismatchError\nTypeMismatchError\nQuotaExceededErr"
      "or\ntrue 1\n");
}

TEST_F(JsRuntime, LoneSurrogatesDoNotBreakOutput) {
  RunOutput r = run("console.log('a\\ud800b'); console.log(['\\udc00']); '\\ud800'");
  EXPECT_OK(r);
  EXPECT_EQ(r.out, "a\xEF\xBF\xBD" "b\n[ '\\udc00' ]\n");
  EXPECT_EQ(r.report.value, "'\\ud800'");
  EXPECT_EQ(out_of("console.log('😀 é', '😀'.length)"), "😀 é 2\n");
}

TEST_F(JsRuntime, ImportIsRefusedClearly) {
  // (Node's fs is the exception: js_fs_test.cc.)
  for (const char* code : {"import x from 'y'", "import { hostname } from 'os'; hostname()"}) {
    RunOutput r = run(code);
    EXPECT_EQ(r.outcome, Outcome::error) << code;
    EXPECT_EQ(r.report.error_kind, "syntax") << code;
    EXPECT_NE(r.err.find("import is not supported: npm dependencies are declared with npm.dependencies"),
              std::string::npos)
        << code << ": " << r.err;
  }
  RunOutput dyn = run("await import('os')");
  EXPECT_EQ(dyn.outcome, Outcome::error);
  EXPECT_NE(dyn.err.find("import is not supported"), std::string::npos) << dyn.err;
}

// A dependency layer as deps/npm.h builds it (here written by hand): module namespaces, and
// which of them are CommonJS.
constexpr char kLayer[] =
    "(() => { const pad = (s) => '<' + s + '>'; pad.x = 1;"
    "globalThis.__onemcp_modules = { cjs: { default: pad, x: 1 }, esm: { default: 'D', named: 'N' "
    "} };"
    "globalThis.__onemcp_commonjs = ['cjs']; })();";

TEST_F(JsRuntime, DependencyLayerProvidesRequireAndImports) {
  Opts o;
  o.deps_code = kLayer;
  RunOutput r =
      run("const p = __onemcp_import('cjs').default, { named } = __onemcp_import('esm');\n"
          "[p('a'), require('cjs')('b'), require('cjs').x, require('esm').default, named,"
          " typeof globalThis.__onemcp_modules, typeof require('node:fs').readFileSync]",
          o);
  EXPECT_OK(r);
  EXPECT_EQ(r.report.value, "[ '<a>', '<b>', 1, 'D', 'N', 'undefined', 'function' ]");

  // Top-level await and TypeScript keep working (the value too).
  r =
      run("const { named } = __onemcp_import('esm');\nconst n: string = await "
          "Promise.resolve(named);\nn + '!'",
          o);
  EXPECT_OK(r);
  EXPECT_EQ(r.report.value, "'N!'");

  r = run("require('./x')", o);
  EXPECT_EQ(r.outcome, Outcome::error);
  EXPECT_NE(r.err.find("Error: Cannot find module './x'"), std::string::npos) << r.err;
  r = run("require('os').hostname()", o);
  EXPECT_EQ(r.outcome, Outcome::error);
  EXPECT_NE(r.err.find("os.hostname() is not available: run_js has no Node.js 'os' module"),
            std::string::npos)
      << r.err;
  // Import declarations the server did not rewrite (after other code) are refused clearly.
  r = run("const a = 1;\nimport x from 'cjs';", o);
  EXPECT_EQ(r.outcome, Outcome::error);
  EXPECT_NE(r.err.find("cannot import 'cjs' here: put import declarations at the top"),
            std::string::npos)
      << r.err;

  o.deps_code = "throw new Error('broken package')";
  r = run("1", o);
  EXPECT_EQ(r.outcome, Outcome::error);
  EXPECT_NE(r.err.find("Error while loading the npm dependencies: Error: broken package"),
            std::string::npos)
      << r.err;
}

// What the server does with a dependency layer: one run evaluates it into a heap memfd, which is
// then sealed and shared, copy-on-write, by the runs that use it.
class JsHeap : public JsRuntime {
 protected:
  static UniqueFd make_heap(const std::string& layer, RunOutput* made) {
    UniqueFd fd(::memfd_create("heap-test", MFD_CLOEXEC | MFD_ALLOW_SEALING));
    EXPECT_TRUE(fd.valid());
    EXPECT_EQ(::ftruncate(fd.get(), 256 << 20), 0);
    Opts o;
    o.deps_code = layer;
    o.heap = ipc::HeapMode::make;
    o.heap_fd = fd.get();
    *made = run("", o);
    if (!made->report.heap_bytes) return {};
    EXPECT_EQ(::ftruncate(fd.get(), off_t(*made->report.heap_bytes)), 0);
    EXPECT_EQ(::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL), 0);
    return fd;
  }
  static RunOutput use(int fd, const std::string& code, Opts o = {}) {
    o.heap = ipc::HeapMode::use;
    o.heap_fd = fd;
    return run(code, o);
  }
};

TEST_F(JsHeap, RunsContinueFromTheLayerLoadedOnce) {
  RunOutput made;
  UniqueFd heap = make_heap(std::string(kLayer) + "; globalThis.loads = (globalThis.loads || 0) + 1;", &made);
  ASSERT_TRUE(heap.valid()) << made.err;
  EXPECT_OK(made);
  EXPECT_EQ(made.out, "");
  EXPECT_GT(*made.report.heap_bytes, 0u);

  RunOutput r = use(heap.get(),
                    "const p = __onemcp_import('cjs').default, { named } = __onemcp_import('esm');\n"
                    "[p('a'), require('cjs')('b'), require('esm').default, named, loads,"
                    " typeof globalThis.__onemcp_modules, Math.random() < 1]");
  EXPECT_OK(r);
  EXPECT_EQ(r.report.value, "[ '<a>', '<b>', 'D', 'N', 1, 'undefined', true ]");
  // TypeScript and top-level await, through the esbuild rerun.
  r = use(heap.get(), "const { named } = __onemcp_import('esm');\nconst n: string = await Promise.resolve(named);\nn + '!'");
  EXPECT_OK(r);
  EXPECT_EQ(r.report.value, "'N!'");
  // Each run has its own copy: what one changes, the next never sees; Math.random differs.
  EXPECT_OK(use(heap.get(), "globalThis.loads = 99; require('cjs').x = 5; Object.prototype.polluted = 1"));
  std::vector<std::string> draws;
  for (int i = 0; i < 3; ++i) {
    r = use(heap.get(), "console.log(loads, require('cjs').x, ({}).polluted, Math.random())");
    EXPECT_OK(r);
    EXPECT_EQ(r.out.substr(0, 14), "1 1 undefined ") << r.out;
    draws.push_back(r.out);
  }
  std::sort(draws.begin(), draws.end());
  EXPECT_EQ(std::unique(draws.begin(), draws.end()), draws.end());
  // The run's limits hold as in any other run.
  Opts limits;
  limits.timeout_ms = 300;
  r = use(heap.get(), "for (;;) {}", limits);
  EXPECT_EQ(r.outcome, Outcome::timeout);
  limits.timeout_ms = 5000;
  limits.mem_mb = 64;
  r = use(heap.get(), "const a = []; for (;;) a.push(new Array(100000).fill(1.5))", limits);
  EXPECT_EQ(r.outcome, Outcome::memory) << r.err;
  EXPECT_NE(r.err.find("out of memory"), std::string::npos);
  r = use(heap.get(), "let s = 'x'; for (;;) s += s", limits);
  EXPECT_EQ(r.outcome, Outcome::memory) << r.err;
  // A heap in use stays sealed: no run can change it for the next.
  EXPECT_OK(use(heap.get(), "globalThis.loads = 7"));
  EXPECT_EQ(use(heap.get(), "console.log(loads)").out, "1\n");
}

TEST_F(JsHeap, OnlyALayerAtRestBecomesAHeap) {
  RunOutput made;
  EXPECT_FALSE(make_heap(std::string(kLayer) + "; setTimeout(() => {}, 5);", &made).valid());
  EXPECT_OK(made);
  EXPECT_FALSE(make_heap(std::string(kLayer) + "; Promise.reject(new Error('later'));", &made).valid());
  EXPECT_FALSE(make_heap("throw new Error('broken package')", &made).valid());
  EXPECT_EQ(made.outcome, Outcome::error);
  EXPECT_NE(made.err.find("Error while loading the npm dependencies: Error: broken package"), std::string::npos)
      << made.err;
  // Output while loading is the run's own: the server sees it and loads the layer in each run.
  UniqueFd loud = make_heap(std::string(kLayer) + "; console.log('loaded');", &made);
  EXPECT_EQ(made.out, "loaded\n");
  // A garbled heap is refused, not run.
  UniqueFd junk(::memfd_create("junk", MFD_CLOEXEC));
  ASSERT_EQ(::ftruncate(junk.get(), 1 << 20), 0);
  RunOutput r = use(junk.get(), "1");
  EXPECT_EQ(r.outcome, Outcome::internal);
  EXPECT_NE(r.err.find("heap snapshot: not a heap"), std::string::npos) << r.err;
}

TEST_F(JsRuntime, NoHostAccessGlobals) {
  EXPECT_EQ(out_of("console.log(typeof std, typeof os, typeof host, typeof print)"),
            "undefined undefined undefined undefined\n");
  // require() serves Node's built-ins (fs is the run's own, in its sandbox) and nothing from a
  // filesystem.
  EXPECT_EQ(
      out_of("for (const m of ['/etc/passwd', './x', 'child_process']) { try { "
             "console.log(require(m).execSync('id')) } catch (e) { console.log(e.message) } }"),
      "Cannot find module '/etc/passwd'\nCannot find module './x'\nchild_process.execSync() "
      "is not available: run_js has no Node.js 'child_process' module\n");
}

TEST_F(JsRuntime, Polyfills) {
  EXPECT_EQ(out_of("console.log([1, 2, 3].at(-1), 'abc'.at(-1), new Uint8Array([4, 5]).at(-1))"), "3 c 5\n");
  EXPECT_EQ(out_of("console.log(Object.hasOwn({ a: 1 }, 'a'), Object.hasOwn({}, 'a'))"), "true false\n");
  EXPECT_EQ(out_of("console.log([1, 2, 3, 4].findLast(x => x % 2), [1, 2, 3, 4].findLastIndex(x => x > 9))"), "3 -1\n");
  EXPECT_EQ(out_of("const m = new Map(); m.set('self', m); const c = structuredClone(m);"
                   "console.log(c !== m, c.get('self') === c, c)"),
            "true true <ref *1> Map(1) { 'self' => [Circular *1] }\n");
  EXPECT_EQ(out_of("try { structuredClone(() => 1) } catch (e) { console.log(e.name) }"), "DataCloneError\n");
  EXPECT_EQ(out_of("console.log(new TextEncoder().encode('é').length, new TextDecoder().decode(new Uint8Array([0xc3, 0xa9, 0xff])))"),
            "2 é\xEF\xBF\xBD\n");
  EXPECT_EQ(out_of("console.log(btoa('hello'), atob('aGVsbG8='))"), "aGVsbG8= hello\n");
  EXPECT_EQ(out_of("console.log([3, 1, 2].toSorted(), [1, 2].toReversed(), [1, 2].with(0, 9), 'a-a'.replaceAll('a', 'b'))"),
            "[ 1, 2, 3 ] [ 2, 1 ] [ 9, 2 ] b-b\n");
  EXPECT_EQ(out_of("Promise.allSettled([Promise.reject(1), 2]).then(r => console.log(r.map(x => x.status)))"),
            "[ 'rejected', 'fulfilled' ]\n");
  EXPECT_EQ(out_of("Promise.any([Promise.reject(1), Promise.resolve(2)]).then(console.log)"), "2\n");
  EXPECT_EQ(out_of("const o = {}; console.log(new WeakRef(o).deref() === o)"), "true\n");
  EXPECT_EQ(out_of("console.log(typeof performance.now(), typeof structuredClone, 2n ** 64n)"),
            "number function 18446744073709551616n\n");
}

TEST_F(JsRuntime, ConsoleHelpers) {
  RunOutput r = run(
      "console.count(); console.count(); console.assert(1 === 2, 'math'); console.dir({ a: { b: { c: { d: 1 } } } }, { depth: 0 });"
      "console.table([{ a: 1, b: 'x' }]); console.group('g'); console.log('inner'); console.groupEnd(); console.log('outer')");
  EXPECT_OK(r);
  EXPECT_EQ(r.out,
            "default: 1\ndefault: 2\n{ a: [Object] }\n"
            "┌─────────┬───┬─────┐\n"
            "│ (index) │ a │  b  │\n"
            "├─────────┼───┼─────┤\n"
            "│    0    │ 1 │ 'x' │\n"
            "└─────────┴───┴─────┘\n"
            "g\n  inner\nouter\n");
  EXPECT_EQ(r.err, "Assertion failed: math\n");
}

TEST(JsTranspile, CleansEsbuildDiagnostics) {
  std::string raw =
      "\x1b[31m✘ [ERROR] \x1b[0mExpected \";\" but found \"x\"\n\n    run_js.ts:1:6:\n      1 │ let a x\n"
      "        ╵       ^\n\n✘ [ERROR] Unexpected end of file\n\n    run_js.ts:3:0:\n";
  EXPECT_EQ(transpile::clean_diagnostics(raw),
            "run_js.ts:1:6: ERROR: Expected \";\" but found \"x\"\nrun_js.ts:3:0: ERROR: Unexpected end of file");
}

TEST(JsTranspile, TransformsTypeScript) {
  auto js = transpile::esbuild_transform(ONEMCP_ESBUILD, "const x: number = 1;\nexport {};\n", 10000);
  ASSERT_TRUE(js.ok()) << js.error().message;
  EXPECT_NE(js->find("const x = 1;"), std::string::npos) << *js;
  auto bad = transpile::esbuild_transform(ONEMCP_ESBUILD, "let a x", 10000);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message, "run_js.ts:1:6: ERROR: Expected \";\" but found \"x\"");
  auto missing = transpile::esbuild_transform("/nonexistent/esbuild", "1", 1000);
  EXPECT_FALSE(missing.ok());
}

// Latency is measured by bench/run.mjs and bench/steps.mjs, not here.
TEST_F(JsRuntime, ManySequentialRunsStayCorrect) {
  for (int i = 0; i < 200; ++i) {
    RunOutput o = run("console.log(" + std::to_string(i) + ")");
    ASSERT_EQ(o.outcome, Outcome::ok) << o.err;
    ASSERT_EQ(o.out, std::to_string(i) + "\n");
  }
}

}  // namespace
}  // namespace onemcp
