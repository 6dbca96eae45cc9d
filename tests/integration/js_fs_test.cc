// Integration tests of run_js's fs module: the real 1mcp-js-worker driven through sandbox::Zygote,
// in its sandbox (writable /tmp and /out, the rest read-only or absent). Files round-trip as text
// and bytes, directories are made, listed and removed, errors are Node's (code, errno, syscall,
// path), no read can hang or bring more than the memory budget into the heap, and the sandbox,
// not the fs module, decides what can be reached.
// With ONEMCP_REQUIRE_KERNEL_FEATURES=1 a workspace that cannot be made fails instead of skipping.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>

#include "sandbox/executor.h"
#include "sandbox/workspace.h"

namespace onemcp {
namespace {

using sandbox::Outcome;
using sandbox::RunOutput;
using Clock = std::chrono::steady_clock;

struct Opts {
  uint64_t mem_mb = 256;
  uint64_t timeout_ms = 10000;
  std::string cwd;
  std::string stdin_data;
  std::string deps_code;
  int workspace_fd = -1;
};

class JsFs : public ::testing::Test {
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

  static RunOutput run(const std::string& code, const Opts& o = {}) {
    ipc::RunRequest req;
    req.code = code;
    req.cwd = o.cwd;
    req.timeout_ms = o.timeout_ms;
    req.mem_mb = o.mem_mb;
    req.stdout_bytes = 1u << 20;
    req.deps_code = o.deps_code;
    req.workspace = o.workspace_fd >= 0;
    auto r =
        zygote_->run(req, o.stdin_data, nullptr, nullptr, nullptr, {}, -1, nullptr, o.workspace_fd);
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() ? std::move(r.value()) : RunOutput{};
  }
  // The value of the run's last expression; the run must succeed.
  static std::string value(const std::string& code, const Opts& o = {}) {
    RunOutput r = run(code, o);
    EXPECT_EQ(r.outcome, Outcome::ok) << code << "\nstderr: " << r.err;
    return r.report.value.value_or("<none>");
  }

  static sandbox::Zygote* zygote_;
};

sandbox::Zygote* JsFs::zygote_ = nullptr;

TEST_F(JsFs, TextAndBytesRoundTripInTmpAndOut) {
  EXPECT_EQ(value("const fs = require('fs');\n"
                  "fs.writeFileSync('/tmp/a.txt', 'héllo 😀\\n');\n"
                  "fs.appendFileSync('/tmp/a.txt', 'more');\n"
                  "fs.writeFileSync('/tmp/a.txt', '!', { flag: 'a' });\n"
                  "const b = fs.readFileSync('/tmp/a.txt');\n"
                  "[fs.readFileSync('/tmp/a.txt', 'utf8'), fs.readFileSync('/tmp/a.txt', "
                  "{ encoding: 'utf-8' }), b instanceof Uint8Array, b.length]"),
            "[ 'héllo 😀\\nmore!', 'héllo 😀\\nmore!', true, 17 ]");

  // Every byte value, from a Uint8Array, an ArrayBuffer and a DataView; /out comes back as a file.
  RunOutput r =
      run("const fs = require('fs');\n"
          "const all = Uint8Array.from({ length: 256 }, (_, i) => i);\n"
          "fs.writeFileSync('/out/bytes.bin', all);\n"
          "fs.writeFileSync('/tmp/ab.bin', all.buffer);\n"
          "fs.writeFileSync('/tmp/dv.bin', new DataView(all.buffer, 250));\n"
          "const back = fs.readFileSync('/out/bytes.bin');\n"
          "[back.every((x, i) => x === i), fs.readFileSync('/tmp/ab.bin').length,\n"
          " Array.from(fs.readFileSync('/tmp/dv.bin')), fs.readFileSync('/tmp/dv.bin', 'hex'),\n"
          " fs.readFileSync('/tmp/dv.bin', 'base64'), fs.readFileSync('/out/bytes.bin', "
          "'latin1').length]");
  ASSERT_EQ(r.outcome, Outcome::ok) << r.err;
  EXPECT_EQ(r.report.value,
            "[\n  true,\n  256,\n  [ 250, 251, 252, 253, 254, 255 ],\n  'fafbfcfdfeff',\n  "
            "'+vv8/f7/',\n  256\n]");
  ASSERT_EQ(r.files.size(), 1u);
  EXPECT_EQ(r.files[0].path, "bytes.bin");
  ASSERT_EQ(r.files[0].data.size(), 256u);
  for (int i = 0; i < 256; ++i) EXPECT_EQ(static_cast<unsigned char>(r.files[0].data[i]), i);

  // Strings in other encodings, an empty file, exclusive creation.
  EXPECT_EQ(value("const fs = require('fs');\n"
                  "fs.writeFileSync('/tmp/h', 'c3a9', 'hex');\n"
                  "fs.writeFileSync('/tmp/b', 'w6k=', { encoding: 'base64' });\n"
                  "fs.writeFileSync('/tmp/e', '');\n"
                  "let code; try { fs.writeFileSync('/tmp/e', 'x', { flag: 'wx' }) } catch (e) { "
                  "code = e.code }\n"
                  "[fs.readFileSync('/tmp/h', 'utf8'), fs.readFileSync('/tmp/b', 'utf8'), "
                  "fs.readFileSync('/tmp/e').length, fs.readFileSync('/tmp/e', 'utf8'), code]"),
            "[ 'é', 'é', 0, '', 'EEXIST' ]");
}

TEST_F(JsFs, DirectoriesStatRenameCopyAndRemove) {
  EXPECT_EQ(
      value("const fs = require('fs');\n"
            "const first = fs.mkdirSync('/tmp/d/e/f', { recursive: true });\n"
            "const again = fs.mkdirSync('/tmp/d/e', { recursive: true });\n"
            "fs.writeFileSync('/tmp/d/b.txt', 'bee');\n"
            "fs.writeFileSync('/tmp/d/a.txt', 'a');\n"
            "fs.mkdirSync('/tmp/d/c');\n"
            "const typed = fs.readdirSync('/tmp/d', { withFileTypes: true })\n"
            "  .map((d) => `${d.name}:${d.isFile() ? 'f' : ''}${d.isDirectory() ? 'd' : "
            "''}:${d.parentPath}`);\n"
            "[first, again, fs.readdirSync('/tmp/d'), typed, fs.readdirSync('/tmp/d', { recursive: "
            "true })]"),
      "[\n  '/tmp/d',\n  undefined,\n  [ 'a.txt', 'b.txt', 'c', 'e' ],\n  [ 'a.txt:f:/tmp/d', "
      "'b.txt:f:/tmp/d', 'c:d:/tmp/d', 'e:d:/tmp/d' ],\n  [ 'a.txt', 'b.txt', 'c', 'e', "
      "'e/f' ]\n]");

  EXPECT_EQ(
      value("const fs = require('fs');\n"
            "const t0 = Date.now();\n"
            "fs.writeFileSync('/tmp/s.txt', '12345');\n"
            "const s = fs.statSync('/tmp/s.txt'), d = fs.lstatSync('/tmp');\n"
            "[s.size, s.isFile(), s.isDirectory(), s.isSymbolicLink(), (s.mode & 0o170000) === "
            "fs.constants.S_IFREG, s.mode & 0o777, Math.abs(s.mtimeMs - t0) < 5000, s.mtime "
            "instanceof Date, d.isDirectory(), fs.statSync('/nope', { throwIfNoEntry: false "
            "}), fs.lstatSync('/lib').isSymbolicLink(), fs.statSync('/lib').isDirectory()]"),
      "[\n  5,     true,\n  false, false,\n  true,  420,\n  true,  true,\n  true,  "
      "undefined,\n  true,  true\n]");

  EXPECT_EQ(
      value("const fs = require('fs');\n"
            "fs.mkdirSync('/tmp/r/sub/deeper', { recursive: true });\n"
            "fs.writeFileSync('/tmp/r/sub/deeper/x', 'x');\n"
            "fs.writeFileSync('/tmp/r/one', 'one');\n"
            "fs.renameSync('/tmp/r/one', '/tmp/r/two');\n"
            "fs.copyFileSync('/tmp/r/two', '/tmp/r/three');\n"
            "fs.copyFileSync('/tmp/r/three', '/tmp/r/three');\n"
            "let excl; try { fs.copyFileSync('/tmp/r/two', '/tmp/r/three', "
            "fs.constants.COPYFILE_EXCL) } catch (e) { excl = e.message }\n"
            "const listed = fs.readdirSync('/tmp/r');\n"
            "let notEmpty; try { fs.rmdirSync('/tmp/r/sub') } catch (e) { notEmpty = e.code }\n"
            "fs.unlinkSync('/tmp/r/two');\n"
            "fs.rmSync('/tmp/r/sub', { recursive: true });\n"
            "fs.rmSync('/tmp/r/gone', { force: true });\n"
            "[listed, fs.readFileSync('/tmp/r/three', 'utf8'), excl, notEmpty, "
            "fs.readdirSync('/tmp/r'), fs.existsSync('/tmp/r/two'), fs.existsSync('/tmp/r')]"),
      "[\n  [ 'sub', 'three', 'two' ],\n  'one',\n  \"EEXIST: file already exists, copyfile "
      "'/tmp/r/two' -> '/tmp/r/three'\",\n  'ENOTEMPTY',\n  [ 'three' ],\n  false,\n  "
      "true\n]");
}

TEST_F(JsFs, ErrorsAreNodesWithCodeErrnoSyscallAndPath) {
  RunOutput r = run("require('fs').readFileSync('/tmp/missing.txt')");
  EXPECT_EQ(r.outcome, Outcome::error);
  EXPECT_EQ(r.report.error_message,
            "Error: ENOENT: no such file or directory, open '/tmp/missing.txt'");
  EXPECT_NE(r.err.find("errno: -2,\n  code: 'ENOENT',\n  syscall: 'open',\n  path: "
                       "'/tmp/missing.txt'\n}"),
            std::string::npos)
      << r.err;

  // What each failure is, as a script catching it sees it.
  EXPECT_EQ(value("const fs = require('fs');\n"
                  "const e = (f) => { try { f(); return 'no error' } catch (e) { return "
                  "`${e.code} ${e.errno} ${e.syscall} ${e.message}` } };\n"
                  "fs.writeFileSync('/tmp/file', 'x');\n"
                  "[e(() => fs.readFileSync('/tmp')),\n"
                  " e(() => fs.writeFileSync('/tmp', 'x')),\n"
                  " e(() => fs.mkdirSync('/tmp')),\n"
                  " e(() => fs.readdirSync('/tmp/file')),\n"
                  " e(() => fs.readFileSync('/tmp/file/x')),\n"
                  " e(() => fs.unlinkSync('/tmp/nothing')),\n"
                  " e(() => fs.rmSync('/tmp')),\n"
                  " e(() => fs.renameSync('/tmp/nothing', '/tmp/b'))].join('\\n')"),
            "\"EISDIR -21 read EISDIR: illegal operation on a directory, read '/tmp'\\n\" +\n"
            "  \"EISDIR -21 open EISDIR: illegal operation on a directory, open '/tmp'\\n\" +\n"
            "  \"EEXIST -17 mkdir EEXIST: file already exists, mkdir '/tmp'\\n\" +\n"
            "  \"ENOTDIR -20 scandir ENOTDIR: not a directory, scandir '/tmp/file'\\n\" +\n"
            "  \"ENOTDIR -20 open ENOTDIR: not a directory, open '/tmp/file/x'\\n\" +\n"
            "  \"ENOENT -2 unlink ENOENT: no such file or directory, unlink '/tmp/nothing'\\n\" +\n"
            "  'ERR_FS_EISDIR 21 rm Path is a directory: rm returned EISDIR (is a directory) "
            "/tmp\\n' +\n"
            "  \"ENOENT -2 rename ENOENT: no such file or directory, rename '/tmp/nothing' -> "
            "'/tmp/b'\"");

  // Outside the writable paths the sandbox refuses: a read-only mount (EROFS) or a directory
  // the run's user may not write (EACCES).
  for (const char* path : {"/usr/x", "/etc/x", "/x", "/dev/x"}) {
    RunOutput w = run(std::string("require('fs').writeFileSync('") + path + "', 'x')");
    EXPECT_EQ(w.outcome, Outcome::error) << path;
    const std::string m = w.report.error_message.value_or("");
    EXPECT_TRUE(m.find("Error: EROFS: read-only file system, open '" + std::string(path) + "'") ==
                    0 ||
                m.find("Error: EACCES: permission denied, open '" + std::string(path) + "'") == 0)
        << path << ": " << m;
  }
  for (const char* code :
       {"require('fs').mkdirSync('/usr/newdir')", "require('fs').unlinkSync('/etc/passwd')",
        "require('fs').renameSync('/etc/hosts', '/tmp/hosts')"}) {
    RunOutput w = run(code);
    EXPECT_EQ(w.outcome, Outcome::error) << code;
    const std::string m = w.report.error_message.value_or("");
    EXPECT_TRUE(m.find("EROFS") != std::string::npos || m.find("EACCES") != std::string::npos ||
                m.find("EXDEV") != std::string::npos)
        << code << ": " << m;
  }

  // Arguments Node refuses before any system call.
  EXPECT_EQ(value("const fs = require('fs');\n"
                  "const e = (f) => { try { f(); return 'no error' } catch (e) { return `${e.name} "
                  "${e.code}` } };\n"
                  "[e(() => fs.readFileSync(42)), e(() => fs.readFileSync('/tmp/a\\0b')), e(() => "
                  "fs.writeFileSync('/tmp/x', {})), e(() => fs.readFileSync('/tmp/x', 'klingon')), "
                  "e(() => fs.writeFileSync('/tmp/x', 'x', { flag: 'q' })), fs.existsSync(42)]"),
            "[\n  'TypeError ERR_INVALID_ARG_TYPE',\n  'TypeError ERR_INVALID_ARG_VALUE',\n  "
            "'TypeError ERR_INVALID_ARG_TYPE',\n  'TypeError ERR_INVALID_ARG_VALUE',\n  "
            "'TypeError ERR_INVALID_ARG_VALUE',\n  false\n]");
}

TEST_F(JsFs, RelativePathsFollowTheCwdAndChdir) {
  Opts o;
  o.cwd = "/tmp";
  RunOutput r =
      run("const fs = require('fs');\n"
          "fs.writeFileSync('rel.txt', 'r');\n"
          "fs.mkdirSync('sub');\n"
          "process.chdir('sub');\n"
          "fs.writeFileSync('in-sub', 's');\n"
          "process.chdir('/out/');\n"
          "fs.writeFileSync('result.txt', 'out');\n"
          "let bad; try { process.chdir('/tmp/rel.txt') } catch (e) { bad = e.message }\n"
          "let missing; try { process.chdir('nope') } catch (e) { missing = e.code }\n"
          "[fs.readFileSync('/tmp/rel.txt', 'utf8'), fs.readdirSync('/tmp/sub'), "
          "process.cwd(), bad, missing, fs.existsSync('result.txt')]",
          o);
  ASSERT_EQ(r.outcome, Outcome::ok) << r.err;
  EXPECT_EQ(r.report.value,
            "[\n  'r',\n  [ 'in-sub' ],\n  '/out',\n  \"ENOTDIR: not a directory, chdir /out -> "
            "'/tmp/rel.txt'\",\n  'ENOENT',\n  true\n]");
  ASSERT_EQ(r.files.size(), 1u);
  EXPECT_EQ(r.files[0].path, "result.txt");
  EXPECT_EQ(r.files[0].data, "out");
}

TEST_F(JsFs, NonRegularFilesAreRefusedWithoutHanging) {
  // A read of /dev/zero would never end; /dev/stdin is the run's stdin, a regular file here.
  Opts o;
  o.timeout_ms = 5000;
  o.stdin_data = "from stdin";
  const auto t0 = Clock::now();
  EXPECT_EQ(value("const fs = require('fs');\n"
                  "const e = (p) => { try { return fs.readFileSync(p, 'utf8') } catch (e) { "
                  "return e.message } };\n"
                  "[e('/dev/zero'), e('/dev/urandom'), e('/dev/null'), e('/dev/stdin')]",
                  o),
            "[\n  \"EFTYPE: not a regular file, open '/dev/zero'\",\n  \"EFTYPE: not a regular "
            "file, open '/dev/urandom'\",\n  \"EFTYPE: not a regular file, open '/dev/null'\",\n  "
            "'from stdin'\n]");
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(3));
  // Writing to a device is allowed: /dev/null swallows, /dev/full is ENOSPC.
  EXPECT_EQ(value("const fs = require('fs');\nfs.writeFileSync('/dev/null', 'x');\n"
                  "try { fs.writeFileSync('/dev/full', 'x') } catch (e) { e.code }"),
            "'ENOSPC'");
}

TEST_F(JsFs, AFifoInTheWorkspaceCannotHangARead) {
  auto ws = sandbox::Workspace::create(1 << 20, 16);
  if (!ws) {
    const char* v = std::getenv("ONEMCP_REQUIRE_KERNEL_FEATURES");
    if (v && std::string(v) == "1") FAIL() << ws.error().message;
    GTEST_SKIP() << "no workspace: " << ws.error().message;
  }
  auto mount = ws->clone();
  ASSERT_TRUE(mount) << mount.error().message;
  // No process ever opens its other end: a blocking open for reading would wait forever.
  ASSERT_EQ(::mknodat(mount->get(), "fifo", S_IFIFO | 0666, 0), 0) << std::strerror(errno);
  ASSERT_EQ(::fchmodat(mount->get(), "fifo", 0666, 0), 0) << std::strerror(errno);
  Opts o;
  o.workspace_fd = mount->get();
  o.timeout_ms = 5000;
  const auto t0 = Clock::now();
  EXPECT_EQ(value("const fs = require('fs');\n"
                  "const st = fs.statSync('/work/fifo');\n"
                  "let read, written;\n"
                  "try { fs.readFileSync('/work/fifo') } catch (e) { read = e.message }\n"
                  "try { fs.writeFileSync('/work/fifo', 'x') } catch (e) { written = e.code }\n"
                  "fs.writeFileSync('/work/kept.txt', 'kept');\n"
                  "[st.isFIFO(), read, written, fs.readdirSync('/work', { withFileTypes: true "
                  "}).map((d) => d.name + (d.isFIFO() ? ' fifo' : ''))]",
                  o),
            "[\n  true,\n  \"EFTYPE: not a regular file, open '/work/fifo'\",\n  'ENXIO',\n  [ "
            "'fifo fifo', 'kept.txt' ]\n]");
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(3));
}

TEST_F(JsFs, AReadIsBoundedByTheMemoryBudget) {
  // 40 MiB on /tmp, written 1 MiB at a time, is more than a 16 MiB budget: a clean RangeError
  // before anything is allocated, and the run goes on.
  Opts o;
  o.mem_mb = 16;
  EXPECT_EQ(value("const fs = require('fs');\n"
                  "const mib = new Uint8Array(1 << 20).fill(65);\n"
                  "fs.writeFileSync('/tmp/big', '');\n"
                  "for (let i = 0; i < 40; i++) fs.appendFileSync('/tmp/big', mib);\n"
                  "let error;\n"
                  "try { fs.readFileSync('/tmp/big') } catch (e) { error = `${e.name} ${e.code} "
                  "${e.message}` }\n"
                  "[fs.statSync('/tmp/big').size, error]",
                  o),
            "[\n  41943040,\n  \"RangeError ERR_FS_FILE_TOO_LARGE File size (41943040) is greater "
            "than the run's memory budget (16 MiB)\"\n]");
  // Under the budget but more than what is left of it: QuickJS's own "out of memory", which the
  // script can catch; the process is intact.
  EXPECT_EQ(value("const fs = require('fs');\n"
                  "fs.writeFileSync('/tmp/m', new Uint8Array(6 << 20));\n"
                  "const kept = [];\n"
                  "let error;\n"
                  "try { for (let i = 0; i < 4; i++) kept.push(fs.readFileSync('/tmp/m')) } catch "
                  "(e) { error = String(e) }\n"
                  "[kept.length, error]",
                  o),
            "[ 2, 'InternalError: out of memory' ]");
}

TEST_F(JsFs, AFullTmpIsAnErrorNotAKill) {
  // /tmp holds 64 MiB and a file may not grow past 64 MiB (RLIMIT_FSIZE): ENOSPC or EFBIG, never
  // SIGXFSZ.
  EXPECT_EQ(value("const fs = require('fs');\n"
                  "const mib = new Uint8Array(1 << 20);\n"
                  "let code;\n"
                  "try { for (let i = 0; i < 70; i++) fs.appendFileSync('/tmp/fill', mib) } catch "
                  "(e) { code = e.code }\n"
                  "['ENOSPC', 'EFBIG'].includes(code)"),
            "true");
}

TEST_F(JsFs, RequireAndImportFormsWithoutDependencies) {
  EXPECT_EQ(value("const a = require('fs'), b = require('node:fs'), p = require('fs/promises'), "
                  "q = require('node:fs/promises');\n"
                  "[typeof require, a === b, p === q, p === a.promises, typeof p.readFile, typeof "
                  "a.readFileSync, typeof a.readFile]"),
            "[\n  'function', true,\n  true,       true,\n  'function', 'function',\n  "
            "'function'\n]");
  // Import declarations the runtime's module loader serves (module code: no value, output only).
  RunOutput r = run(
      "import fs, { writeFileSync, readFileSync } from 'node:fs';\n"
      "import * as ns from 'fs';\n"
      "import fsp, { readFile } from 'fs/promises';\n"
      "writeFileSync('/tmp/m.txt', 'module');\n"
      "readFile('/tmp/m.txt', 'utf8').then((t) => console.log(t, readFileSync('/tmp/m.txt', "
      "'utf8'), fs === ns.default, ns.readFileSync === readFileSync, fsp.readFile === readFile));\n"
      "export const x = 1;");
  EXPECT_EQ(r.outcome, Outcome::ok) << r.err;
  EXPECT_EQ(r.out, "module module true true true\n");
  // What the server turns leading import declarations into, with top-level await and a value.
  EXPECT_EQ(value("const fs = __onemcp_import(\"fs\").default, { writeFileSync } = "
                  "__onemcp_import(\"fs\");\n"
                  "const { readFile } = __onemcp_import(\"node:fs/promises\");\n"
                  "writeFileSync('/tmp/t.txt', 'awaited');\n"
                  "(await readFile('/tmp/t.txt', 'utf8')) + ' ' + typeof fs.statSync"),
            "'awaited function'");
  // import() and the promise and callback forms.
  EXPECT_EQ(value("const { promises } = await import('fs');\n"
                  "const fsp = await import('node:fs/promises');\n"
                  "await fsp.writeFile('/tmp/p.txt', 'p');\n"
                  "await promises.appendFile('/tmp/p.txt', 'q');\n"
                  "const err = await fsp.readFile('/tmp/none').catch((e) => e.code);\n"
                  "const viaCallback = await new Promise((resolve) => require('fs').readFile("
                  "'/tmp/p.txt', 'utf8', (e, d) => resolve(d)));\n"
                  "[await fsp.readFile('/tmp/p.txt', 'utf8'), (await fsp.stat('/tmp/p.txt')).size, "
                  "err, viaCallback, (await fsp.readdir('/tmp')).includes('p.txt')]"),
            "[ 'pq', 2, 'ENOENT', 'pq', true ]");
  // Other Node built-ins stay placeholders, and imports of anything else are still refused.
  r = run("require('path').join('a', 'b')");
  EXPECT_EQ(r.outcome, Outcome::error);
  EXPECT_NE(r.err.find("path.join() is not available: run_js has no Node.js 'path' module"),
            std::string::npos)
      << r.err;
}

TEST_F(JsFs, RealWithAnNpmLayerToo) {
  Opts o;
  o.deps_code =
      "(() => { globalThis.__onemcp_modules = { pkg: { default: (p) => require('fs')"
      ".readFileSync(p, 'utf8') } }; globalThis.__onemcp_commonjs = ['pkg']; })();";
  EXPECT_EQ(value("require('node:fs').writeFileSync('/tmp/layer.txt', 'from a package');\n"
                  "const { readFileSync } = __onemcp_import('fs');\n"
                  "[require('pkg')('/tmp/layer.txt'), readFileSync('/tmp/layer.txt', 'utf8')]",
                  o),
            "[ 'from a package', 'from a package' ]");
}

TEST_F(JsFs, TheSandboxStillConfinesIt) {
  const std::string host_file = std::string(ONEMCP_SOURCE_DIR) + "/README.md";
  ASSERT_EQ(::access(host_file.c_str(), R_OK), 0);
  EXPECT_EQ(
      value("const fs = require('fs');\n"
            "const e = (f) => { try { f(); return 'allowed' } catch (e) { return e.code } };\n"
            "[e(() => fs.readFileSync('/etc/shadow')), e(() => fs.readFileSync('/root/.bashrc')),\n"
            " e(() => fs.readFileSync('" +
            host_file +
            "')),\n"
            " e(() => fs.readdirSync('" +
            std::string(ONEMCP_SOURCE_DIR) +
            "')),\n"
            " e(() => fs.readFileSync('/proc/1/environ'))].join(' ')"),
      "'ENOENT ENOENT ENOENT ENOENT EACCES'");
  // The root holds only what the sandbox put there.
  const std::string listed = value(
      "require('fs').readdirSync('/').filter((n) => !['bin', 'dev', 'etc', 'lib', 'lib64', "
      "'out', 'proc', 'sbin', 'tmp', 'usr', 'work'].includes(n))");
  EXPECT_EQ(listed, "[]");
}

}  // namespace
}  // namespace onemcp
