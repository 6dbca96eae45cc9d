// The kernel sandbox seen from inside a run, through the real server: identity and credentials,
// namespaces, the minimal read-only root, the writable scratch dirs and their quotas, rlimits,
// and the host's secrets being out of reach. Every case asserts the exact outcome and what the
// code observed (errno names), and after every case the server must still serve a trivial run
// and no process of the run may be left on the host.
//
// Every probe is harmless if it does succeed (it reads, or writes into a temp directory of this
// test or a sandbox scratch dir), so a missing sandbox fails the test without damage.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, afterEach, before, test } from "node:test";

import {
  assertOk,
  lines,
  BIN,
  REPO_ROOT,
  assertHealthy,
  configPath,
  connectHttp,
  limits,
  runJs,
  runPy,
  show,
  sleep,
  startServer,
  tempDir,
} from "./lib.mjs";

const MPL = fs.existsSync("/usr/share/matplotlib") && fs.existsSync("/etc/matplotlibrc");
const SECRET = "e2e-sandbox-secret-" + Math.random().toString(36).slice(2);
let server;
let client;

before(async () => {
  server = await startServer({ env: { ...process.env, ONEMCP_E2E_SECRET: SECRET } });
  client = await connectHttp(server.url);
  await client.listTools(undefined, { timeout: 5000 }); // so the SDK validates structuredContent
});

after(async () => {
  await client?.close().catch(() => {});
  await server?.stop();
});

// ---------------------------------------------------------------------------------------------
// Helpers

afterEach(() => assertHealthy(server, client));

// Probe helpers available to every Python case: probe(label, fn) prints "label: ok[ value]" or
// "label: ERRNO_NAME" (or the exception type when it is not an OSError).
const PRELUDE = String.raw`
import errno, os, sys
def _ename(e):
    if isinstance(e, OSError) and e.errno is not None:
        return errno.errorcode.get(e.errno, str(e.errno))
    return type(e).__name__
def links(d):
    out = []
    for f in os.listdir(d):
        try:
            out.append(os.readlink(d + '/' + f))
        except OSError:
            pass
    return out
def probe(label, fn):
    try:
        r = fn()
        print(f'{label}: ok' + ('' if r is None else f' {r}'), flush=True)
    except BaseException as e:
        print(f'{label}: {_ename(e)}', flush=True)
`;

async function py(code, extra = {}) {
  const r = await runPy(client, PRELUDE + "\n" + code, extra);
  assert.ok(r.structuredContent, show(r));
  return r;
}

// Runs `probes` ({label: python expression returning a value or raising}) and checks each
// observation against `expect` ({label: exact string, or array of acceptable strings}).
async function probeAll(probes, expect, extra = {}) {
  const code = Object.entries(probes)
    .map(([label, expr]) => `probe(${JSON.stringify(label)}, lambda: ${expr})`)
    .join("\n");
  const r = await py(code, extra);
  assertOk(r);
  const got = lines(r);
  for (const [label, want] of Object.entries(expect)) {
    if (Array.isArray(want)) {
      assert.ok(want.includes(got[label]), `${label}: got ${got[label]}, want one of ${want}\n${show(r)}`);
    } else {
      assert.equal(got[label], want, `${label}\n${show(r)}`);
    }
  }
  return got;
}

// ---------------------------------------------------------------------------------------------
// Identity and credentials

test("runs as uid/gid 1000 with no supplementary groups", async () => {
  await probeAll(
    {
      ids: "(os.getuid(), os.geteuid(), os.getgid(), os.getegid())",
      resuid: "os.getresuid()",
      groups: "os.getgroups()",
      pwname: "__import__('pwd').getpwuid(os.getuid()).pw_name",
    },
    { ids: "ok (1000, 1000, 1000, 1000)", resuid: "ok (1000, 1000, 1000)", groups: "ok []", pwname: "ok sandbox" },
  );
});

test("/proc/self/status: Uid/Gid 1000, no capabilities, NoNewPrivs 1, Seccomp 2", async () => {
  const r = await py(
    "for l in open('/proc/self/status'):\n" +
      "    k, _, v = l.partition(':')\n" +
      "    if k in ('Uid','Gid','CapInh','CapPrm','CapEff','CapAmb','NoNewPrivs','Seccomp'):\n" +
      "        print(f'{k}: ' + ' '.join(v.split()))",
  );
  assertOk(r);
  assert.deepEqual(lines(r), {
    Uid: "1000 1000 1000 1000",
    Gid: "1000 1000 1000 1000",
    CapInh: "0000000000000000",
    CapPrm: "0000000000000000",
    CapEff: "0000000000000000",
    CapAmb: "0000000000000000",
    NoNewPrivs: "1",
    Seccomp: "2",
  });
});

test("the user namespace maps inner 0..65535 to the unprivileged host range", async () => {
  await probeAll(
    {
      uid_map: "' '.join(open('/proc/self/uid_map').read().split())",
      gid_map: "' '.join(open('/proc/self/gid_map').read().split())",
      setuid0: "os.setuid(0)",
      setgid0: "os.setgid(0)",
      setgroups: "os.setgroups([0])",
    },
    {
      uid_map: "ok 0 1900000000 65536",
      gid_map: "ok 0 1900000000 65536",
      setuid0: "EPERM",
      setgid0: "EPERM",
      setgroups: "EPERM",
    },
  );
});

test("hostname is 'sandbox'", async () => {
  await probeAll(
    {
      gethostname: "__import__('socket').gethostname()",
      uname: "os.uname().nodename",
      sethostname: "__import__('socket').sethostname('evil')",
    },
    { gethostname: "ok sandbox", uname: "ok sandbox", sethostname: "EPERM" },
  );
});

test("the hostname is 'sandbox' everywhere, also in what the interpreter cached at start", async () => {
  // platform caches uname() the first time it is asked, which the worker may do before any run.
  await probeAll(
    {
      platform_node: "__import__('platform').node()",
      platform_uname: "__import__('platform').uname().node",
      uname_cache: "__import__('platform')._uname_cache.node",
      proc: "open('/proc/sys/kernel/hostname').read().strip()",
      etc: "open('/etc/hostname').read().strip()",
    },
    Object.fromEntries(["platform_node", "platform_uname", "uname_cache", "proc", "etc"].map((l) => [l, "ok sandbox"])),
  );
});

test("no command line, name or argument of a run's processes shows a host path", async () => {
  // The worker's configuration names host paths (the project's pip cache, mounts): it is not on
  // its command line, which every run process (a fork of the worker) shows in /proc.
  const r = await py(
    String.raw`
import sys
r, w = os.pipe()
if os.fork() == 0:
    os.write(w, open('/proc/self/cmdline', 'rb').read())
    os._exit(0)
os.close(w)
os.wait()
probe('cmdline_child', lambda: os.read(r, 4096))
for p in ('self', '1'):
    probe('cmdline_' + p, lambda: open(f'/proc/{p}/cmdline', 'rb').read())
probe('comm', lambda: open('/proc/self/comm').read().strip())
probe('argv', lambda: (sys.argv, sys.orig_argv))
`,
  );
  assertOk(r);
  const got = lines(r);
  for (const p of ["self", "1", "child"]) assert.equal(got[`cmdline_${p}`], "ok b'1mcp-py-worker\\x00'", show(r));
  assert.equal(got.comm, "ok 1mcp-py-worker", show(r));
  assert.equal(got.argv, "ok (['<run_py>'], [])", show(r));
  assert.ok(!r.structuredContent.stdout.includes(server.dir), show(r));
});

test("file locks on a run's own files succeed, so sqlite and lock files work", async () => {
  // Locks are no-ops in a run (a lock on a shared file would be a channel between runs).
  const r = await py(
    String.raw`
import fcntl, sqlite3
db = sqlite3.connect('/tmp/t.db')
db.execute('create table t (x)')
db.execute('insert into t values (42)')
db.commit()
probe('sqlite', lambda: db.execute('select x from t').fetchone()[0])
fd = os.open('/tmp/x.lock', os.O_RDWR | os.O_CREAT)
probe('flock', lambda: fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB))
probe('lockf', lambda: fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB))
probe('unlock', lambda: fcntl.flock(fd, fcntl.LOCK_UN))
`,
  );
  assertOk(r);
  const got = lines(r);
  assert.deepEqual([got.sqlite, got.flock, got.lockf, got.unlock], ["ok 42", "ok", "ok", "ok"], show(r));
});

test("every namespace differs from the host's", async () => {
  const kinds = ["user", "pid", "mnt", "net", "ipc", "uts", "cgroup"];
  const r = await py(kinds.map((k) => `print('${k}: ' + os.readlink('/proc/self/ns/${k}'))`).join("\n"));
  assertOk(r);
  const got = lines(r);
  for (const k of ["user", "pid", "mnt", "net", "ipc", "uts"]) {
    const host = fs.readlinkSync(`/proc/self/ns/${k}`);
    assert.match(got[k], new RegExp(`^${k}:\\[\\d+\\]$`), show(r));
    assert.notEqual(got[k], host, `${k} namespace is the host's`);
  }
  // Two runs alive at the same time never share pid, mount, ipc or uts namespaces. (Inode numbers
  // of freed namespaces are reused, so only live ones can be compared.)
  const both = await Promise.all(
    [0, 1].map(() =>
      py(kinds.map((k) => `print('${k}: ' + os.readlink('/proc/self/ns/${k}'))`).join("\n") + "\nimport time\ntime.sleep(0.5)"),
    ),
  );
  const [a, b] = both.map(lines);
  for (const k of ["pid", "mnt", "ipc", "uts"]) assert.notEqual(a[k], b[k], `${k} namespace shared by two runs`);
  for (const k of ["user", "net"]) assert.equal(a[k], b[k], `${k} namespace is per runtime, not per run`);
});

test("the run is pid 1 of its own pid namespace and sees only itself", async () => {
  await probeAll(
    {
      pid: "os.getpid()",
      ppid: "os.getppid()",
      procs: "sorted(p for p in os.listdir('/proc') if p.isdigit())",
      server: `os.stat('/proc/${server.proc.pid}')`,
    },
    { pid: "ok 1", ppid: "ok 0", procs: "ok ['1']", server: "ENOENT" },
  );
  // A child it forks gets pid 2; nothing else ever appears. (The run is not dumpable after its
  // uid drop, so hidepid=2 currently hides even its own children from it: [1] is observed.)
  const r = await py(
    "import time\n" +
      "c = os.fork()\n" +
      "if c == 0:\n    time.sleep(5)\n    os._exit(0)\n" +
      "print('procs:', sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))\n" +
      "print('child:', c)\n" +
      "os.kill(c, 9); os.waitpid(c, 0)",
  );
  assertOk(r);
  const got = lines(r);
  assert.equal(got.child, "2", show(r));
  assert.ok(["[1]", "[1, 2]"].includes(got.procs), show(r));
});

test("/proc is mounted with hidepid and without host state", async () => {
  await probeAll(
    {
      net_dev: "sorted(l.split(':')[0].strip() for l in open('/proc/net/dev').readlines()[2:])",
      sysrq: "open('/proc/sysrq-trigger', 'w').write('h')",
      core_pattern: "open('/proc/sys/kernel/core_pattern', 'w').write('|/x')",
      hostname_sysctl: "open('/proc/sys/kernel/hostname', 'w').write('evil')",
      kcore: "open('/proc/kcore', 'rb').read(1)",
    },
    {
      net_dev: "ok ['lo']",
      sysrq: fs.existsSync("/proc/sysrq-trigger") ? "EACCES" : "ENOENT",
      core_pattern: "EACCES",
      hostname_sysctl: "EACCES",
      kcore: fs.existsSync("/proc/kcore") ? "EACCES" : "ENOENT",
    },
  );
  const r = await py("print('opts: ' + [l.split() for l in open('/proc/self/mountinfo') if l.split()[4] == '/proc'][0][-1])");
  assertOk(r);
  assert.match(lines(r).opts, /(^|,)hidepid=(2|invisible)(,|$)/, show(r));
});

// ---------------------------------------------------------------------------------------------
// The root file system

test("the root holds only the minimal tree", async () => {
  const lib64 = fs.existsSync("/usr/lib64");
  await probeAll(
    {
      root: "sorted(os.listdir('/'))",
      deps: "[(d, os.listdir('/deps/' + d)) for d in sorted(os.listdir('/deps'))]",
      usr: "sorted(os.listdir('/usr'))",
      share: "sorted(os.listdir('/usr/share'))",
      etc: "sorted(os.listdir('/etc'))",
      ssl: "[(d, sorted(os.listdir('/etc/ssl/' + d))) for d in os.listdir('/etc/ssl')]",
      dev: "sorted(os.listdir('/dev'))",
      lib: "os.readlink('/lib')",
      lib64: "os.readlink('/lib64')",
      cwd: "os.getcwd()",
      tmp: "os.listdir('/tmp')",
      out: "os.listdir('/out')",
      // A session's workspace is mounted there; without one it is an empty read-only directory.
      work: "os.listdir('/work')",
      passwd: "open('/etc/passwd').read().count('\\n')",
      hosts: "repr(open('/etc/hosts').read())",
    },
    {
      root: "ok ['deps', 'dev', 'etc', 'lib', 'lib64', 'out', 'proc', 'tmp', 'usr', 'work']",
      deps: "ok [('sets', []), ('site', [])]", // pip sets: detached, and this run has none
      usr: lib64 ? "ok ['lib', 'lib64', 'share']" : "ok ['lib', 'share']",
      // matplotlib's data and Debian's matplotlibrc, when python3-matplotlib is installed.
      share: MPL ? "ok ['matplotlib', 'zoneinfo']" : "ok ['zoneinfo']",
      etc: `ok ['group', 'hostname', 'hosts', ${MPL ? "'matplotlibrc', " : ""}'passwd', 'ssl']`,
      ssl: "ok [('certs', ['ca-certificates.crt'])]",
      dev: "ok ['fd', 'full', 'null', 'random', 'stderr', 'stdin', 'stdout', 'urandom', 'zero']",
      lib: "ok usr/lib",
      lib64: "ok usr/lib64",
      cwd: "ok /tmp",
      tmp: "ok []",
      out: "ok []",
      work: "ok []",
      passwd: "ok 3",
      hosts: "ok '127.0.0.1 localhost sandbox\\n::1 localhost\\n'",
    },
  );
});

test("the mount table holds only the expected mount points, with the right flags", async () => {
  const r = await py(
    "for l in open('/proc/self/mountinfo'):\n" +
      "    f = l.split()\n" +
      "    sep = f.index('-')\n" +
      "    print(f'{f[4]}: {f[5]} {f[sep+1]} {f[sep+3]}')",
  );
  assertOk(r);
  const rows = r.structuredContent.stdout.trim().split("\n").map((l) => {
    const [mp, rest] = l.split(": ");
    const [opts, fstype, sopts] = rest.split(" ");
    return { mp, opts: opts.split(","), fstype, sopts: sopts.split(",") };
  });
  const expected = ["/", "/usr/lib", "/usr/share/zoneinfo", "/dev/null", "/dev/zero", "/dev/full",
    "/dev/random", "/dev/urandom", "/proc", "/tmp", "/out", "/etc/ssl/certs/ca-certificates.crt"];
  if (fs.existsSync("/usr/lib64")) expected.push("/usr/lib64");
  const mpl = MPL ? ["/usr/share/matplotlib", "/etc/matplotlibrc"] : [];
  expected.push(...mpl);
  assert.deepEqual(rows.map((x) => x.mp).sort(), expected.sort(), show(r));
  const by = Object.fromEntries(rows.map((x) => [x.mp, x]));
  for (const mp of ["/", "/usr/lib", "/usr/share/zoneinfo", ...mpl.slice(0, 1)].concat(fs.existsSync("/usr/lib64") ? ["/usr/lib64"] : [])) {
    assert.ok(by[mp].opts.includes("ro"), `${mp} read-only: ${by[mp].opts}`);
    assert.ok(by[mp].opts.includes("nosuid"), `${mp} nosuid: ${by[mp].opts}`);
    assert.ok(by[mp].opts.includes("nodev"), `${mp} nodev: ${by[mp].opts}`);
  }
  for (const mp of ["/tmp", "/out"]) {
    assert.equal(by[mp].fstype, "tmpfs");
    for (const o of ["rw", "nosuid", "nodev", "noexec"]) assert.ok(by[mp].opts.includes(o), `${mp} ${o}: ${by[mp].opts}`);
    assert.ok(by[mp].sopts.includes("size=65536k"), `${mp} size: ${by[mp].sopts}`);
    assert.ok(by[mp].sopts.includes("nr_inodes=4096"), `${mp} inodes: ${by[mp].sopts}`);
  }
  for (const o of ["ro", "nosuid"]) assert.ok(by["/etc/ssl/certs/ca-certificates.crt"].opts.includes(o), `CA bundle ${o}`);
  for (const o of ["ro", "nosuid"]) assert.ok(!MPL || by["/etc/matplotlibrc"].opts.includes(o), `matplotlibrc ${o}`);
  for (const o of ["nosuid", "nodev", "noexec"]) assert.ok(by["/proc"].opts.includes(o), `/proc ${o}`);
  for (const d of ["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"]) {
    assert.ok(by[d].opts.includes("nosuid"), `${d} nosuid`);
  }
});

// ---------------------------------------------------------------------------------------------
// Host secrets

test("host secrets and host directories do not exist inside", async () => {
  const cfg = configPath(server.dir);
  await probeAll(
    {
      shadow: "len(open('/etc/shadow', 'rb').read())",
      root: "os.listdir('/root')",
      home: "os.listdir('/home')",
      sys: "os.listdir('/sys')",
      run: "os.listdir('/run')",
      var: "os.listdir('/var')",
      docker: "os.stat('/var/run/docker.sock')",
      config: `len(open(${JSON.stringify(cfg)}, 'rb').read())`,
      server_dir: `os.listdir(${JSON.stringify(server.dir)})`,
      repo: `os.listdir(${JSON.stringify(REPO_ROOT)})`,
      worker_dir: `os.listdir(${JSON.stringify(path.dirname(BIN))})`,
      ssh: "os.listdir('/root/.ssh')",
      bin: "os.listdir('/bin')",
      usr_bin: "os.listdir('/usr/bin')",
      host_passwd_root: "'/root' in open('/etc/passwd').read()",
    },
    {
      shadow: "ENOENT",
      root: "ENOENT",
      home: "ENOENT",
      sys: "ENOENT",
      run: "ENOENT",
      var: "ENOENT",
      docker: "ENOENT",
      config: "ENOENT",
      server_dir: "ENOENT",
      repo: "ENOENT",
      worker_dir: "ENOENT",
      ssh: "ENOENT",
      bin: "ENOENT",
      usr_bin: "ENOENT",
      host_passwd_root: "ok False",
    },
  );
});

test("the server's environment is nowhere inside the run", async () => {
  const r = await py(
    String.raw`
found = []
secret = os.environb.get(b'ONEMCP_E2E_SECRET')
if secret is not None or 'ONEMCP_E2E_SECRET' in os.environ:
    found.append('os.environ')
for p in os.listdir('/proc'):
    if not p.isdigit():
        continue
    for f in ('environ', 'cmdline'):
        try:
            if b'ONEMCP_E2E_SECRET' in open(f'/proc/{p}/{f}', 'rb').read():
                found.append(f'/proc/{p}/{f}')
        except OSError:
            pass
for top in ('/etc', '/tmp', '/out', '/dev'):
    for d, _, files in os.walk(top):
        for f in files:
            try:
                with open(os.path.join(d, f), 'rb') as h:
                    if b'ONEMCP_E2E_SECRET' in h.read(1 << 20):
                        found.append(os.path.join(d, f))
            except OSError:
                pass
print('found:', found)
# The run is not dumpable (uid drop), so its own /proc files belong to root: the environ block
# is unreadable even to itself. The host-side posture test checks the block's contents.
probe('self_environ', lambda: b'ONEMCP_E2E_SECRET' in open('/proc/self/environ', 'rb').read())
probe('init_environ', lambda: b'ONEMCP_E2E_SECRET' in open('/proc/1/environ', 'rb').read())
probe('dumpable', lambda: __import__('ctypes').CDLL(None).prctl(3, 0, 0, 0, 0))
`,
  );
  assertOk(r);
  assert.ok(!r.structuredContent.stdout.includes(SECRET), show(r));
  const got = lines(r);
  assert.equal(got.found, "[]", show(r));
  assert.equal(got.dumpable, "ok 0", show(r));
  assert.equal(got.self_environ, "EACCES", show(r));
  assert.equal(got.init_environ, "EACCES", show(r));
  const js = await runJs(client, "console.log(JSON.stringify(process.env)); console.log(typeof std, typeof os)");
  assert.equal(js.structuredContent.stdout, "{}\nundefined undefined\n", show(js));
});

// ---------------------------------------------------------------------------------------------
// Traversal through .., symlinks and /proc magic links

test("'..', symlinks and /proc magic links never leave the root", async () => {
  const root = "ok ['deps', 'dev', 'etc', 'lib', 'lib64', 'out', 'proc', 'tmp', 'usr', 'work']";
  await probeAll(
    {
      proc_root_up: "sorted(os.listdir('/proc/self/root/..'))",
      proc_root_up2: "sorted(os.listdir('/proc/self/root/../../..'))",
      proc1_root: "sorted(os.listdir('/proc/1/root/../..'))",
      cwd_up: "sorted(os.listdir('/proc/self/cwd/../../..'))",
      dotdot: "sorted(os.listdir('/tmp/../../../..'))",
      shadow_via_root: "len(open('/proc/self/root/../../etc/shadow', 'rb').read())",
      shadow_via_cwd: "len(open('/proc/self/cwd/../../etc/shadow', 'rb').read())",
      link_etc: "os.symlink('/etc/../../../etc/shadow', '/tmp/l1') or len(open('/tmp/l1', 'rb').read())",
      link_root: "os.symlink('/proc/self/root/../..', '/tmp/l2') or sorted(os.listdir('/tmp/l2'))",
      link_rel: "os.symlink('../../../../../../etc/shadow', '/tmp/l3') or len(open('/tmp/l3', 'rb').read())",
      link_server: `os.symlink(${JSON.stringify(configPath(server.dir))}, '/tmp/l4') or len(open('/tmp/l4', 'rb').read())`,
      chdir_up: "os.chdir('/../../..') or os.getcwd()",
      exe_up: "os.listdir('/proc/self/exe/..')",
      exe_write: "open('/proc/self/exe', 'r+b')",
      hardlink: "os.link('/etc/passwd', '/tmp/passwd-link')",
      fd_links: "sorted(set(l.split(':')[0] for l in links('/proc/self/fd')))",
      fds: "sorted(int(f) for f in os.listdir('/proc/self/fd'))",
    },
    {
      proc_root_up: root,
      proc_root_up2: root,
      proc1_root: root,
      cwd_up: root,
      dotdot: root,
      shadow_via_root: "ENOENT",
      shadow_via_cwd: "ENOENT",
      link_etc: "ENOENT",
      link_root: root,
      link_rel: "ENOENT",
      link_server: "ENOENT",
      chdir_up: "ok /",
      exe_up: "ENOTDIR",
      exe_write: "EACCES",
      hardlink: "EXDEV",
      // 0 is the stdin memfd, 1..3 are pipes, 4 the broker socket; 5 is listdir's own.
      fd_links: "ok ['/memfd', 'pipe', 'socket']",
      fds: "ok [0, 1, 2, 3, 4, 5]",
    },
  );
});

// ---------------------------------------------------------------------------------------------
// Writing outside the writable dirs

test("writes outside /tmp and /out fail with EROFS (EACCES for host-owned files)", async () => {
  await probeAll(
    {
      root_file: "open('/evil', 'w')",
      root_dir: "os.mkdir('/evil')",
      root_symlink: "os.symlink('/tmp', '/evil')",
      usr_lib: "open('/usr/lib/evil.so', 'wb')",
      usr_lib_existing: "open([os.path.join('/usr/lib/x86_64-linux-gnu', f) for f in os.listdir('/usr/lib/x86_64-linux-gnu') if f.startswith('libc.so')][0], 'r+b')",
      zoneinfo: "open('/usr/share/zoneinfo/evil', 'w')",
      etc_passwd: "open('/etc/passwd', 'a')",
      etc_new: "open('/etc/shadow', 'w')",
      etc_rename: "os.rename('/etc/hosts', '/etc/hosts2')",
      etc_unlink: "os.unlink('/etc/hostname')",
      dev_new: "open('/dev/evil', 'w')",
      dev_unlink: "os.unlink('/dev/null')",
      proc_new: "open('/proc/evil', 'w')",
      chmod_passwd: "os.chmod('/etc/passwd', 0o666)",
      utime_passwd: "os.utime('/etc/passwd', (0, 0))",
    },
    {
      root_file: "EROFS",
      root_dir: "EROFS",
      root_symlink: "EROFS",
      usr_lib: "EROFS",
      usr_lib_existing: "EACCES", // the host's file, owned by an unmapped uid: permission comes first
      zoneinfo: "EROFS",
      etc_passwd: "EROFS",
      etc_new: "EROFS",
      etc_rename: "EROFS",
      etc_unlink: "EROFS",
      dev_new: "EROFS",
      dev_unlink: "EROFS",
      proc_new: "ENOENT",
      chmod_passwd: "EROFS",
      utime_passwd: "EROFS",
    },
  );
});

test("/tmp and /out are writable but nosuid, nodev and noexec", async () => {
  await probeAll(
    {
      tmp_write: "open('/tmp/a', 'w').write('hello')",
      out_write: "open('/out/b', 'w').write('hello!')",
      dev_null: "open('/dev/null', 'w').write('x')",
      dev_full: "os.write(os.open('/dev/full', os.O_WRONLY), b'x')",
      urandom: "len(open('/dev/urandom', 'rb').read(16))",
      mknod: "os.mknod('/tmp/node', 0o20600, os.makedev(1, 3))",
      fifo: "os.mkfifo('/tmp/fifo')",
      mmap_exec: "__import__('mmap').mmap(os.open('/tmp/a', os.O_RDONLY), 0, prot=__import__('mmap').PROT_READ | __import__('mmap').PROT_EXEC)",
      setuid_bit: "os.chmod('/tmp/a', 0o4755) or oct(os.stat('/tmp/a').st_mode & 0o7777)",
    },
    {
      tmp_write: "ok 5",
      out_write: "ok 6",
      dev_null: "ok 1",
      dev_full: "ENOSPC",
      urandom: "ok 16",
      mknod: "EACCES", // Landlock refuses device nodes before the capability check
      fifo: "ok",
      mmap_exec: "EPERM",
      setuid_bit: "ok 0o4755",
    },
  );
});

test("filling /tmp stops with ENOSPC at about 64 MiB and the run still ends normally", async () => {
  const r = await py(
    String.raw`
chunk = b'x' * (1 << 20)
total = 0
err = None
try:
    for i in range(200):
        with open(f'/tmp/fill{i // 8}', 'ab') as f:
            f.write(chunk)
            f.flush()
        total += len(chunk)
except OSError as e:
    err = _ename(e)
print('err:', err)
print('mib:', total >> 20)
for f in os.listdir('/tmp'):
    os.unlink('/tmp/' + f)
open('/tmp/after', 'w').write('fine')
print('after:', open('/tmp/after').read())
`,
    limits({ timeoutMs: 20000 }),
  );
  assertOk(r);
  const got = lines(r);
  assert.equal(got.err, "ENOSPC", show(r));
  const mib = Number(got.mib);
  assert.ok(mib >= 60 && mib <= 64, `wrote ${mib} MiB before ENOSPC`);
  assert.equal(got.after, "fine");
});

test("filling /out stops with ENOSPC too", async () => {
  const r = await py(
    String.raw`
chunk = b'y' * (4 << 20)
total = 0
try:
    for i in range(40):
        with open(f'/out/f{i}', 'wb') as f:
            f.write(chunk)
        total += len(chunk)
    print('err: none')
except OSError as e:
    print('err:', _ename(e))
print('mib:', total >> 20)
`,
    limits({ timeoutMs: 20000 }),
  );
  assertOk(r);
  const got = lines(r);
  assert.equal(got.err, "ENOSPC", show(r));
  assert.ok(Number(got.mib) >= 56 && Number(got.mib) <= 64, show(r));
});

test("creating files until the inode quota ends with ENOSPC", async () => {
  const r = await py(
    String.raw`
n = 0
try:
    while n < 10000:
        os.close(os.open(f'/tmp/i{n}', os.O_CREAT | os.O_WRONLY, 0o600))
        n += 1
    print('err: none')
except OSError as e:
    print('err:', _ename(e))
print('files:', n)
`,
    limits({ timeoutMs: 20000 }),
  );
  assertOk(r);
  const got = lines(r);
  assert.equal(got.err, "ENOSPC", show(r));
  const n = Number(got.files);
  assert.ok(n >= 4000 && n < 4096, `${n} files created`);
});

test("RLIMIT_FSIZE is 64 MiB: a write past it fails with EFBIG", async () => {
  const r = await py(
    String.raw`
import resource, signal
print('fsize:', resource.getrlimit(resource.RLIMIT_FSIZE))
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
fd = os.open('/tmp/big', os.O_CREAT | os.O_WRONLY, 0o600)
os.lseek(fd, 64 << 20, os.SEEK_SET)
probe('write_past', lambda: os.write(fd, b'x'))
probe('truncate_past', lambda: os.ftruncate(fd, (64 << 20) + 1))
probe('truncate_at', lambda: os.ftruncate(fd, 64 << 20))
probe('pwrite_below', lambda: os.pwrite(fd, b'x', (64 << 20) - 1))
`,
  );
  assert.equal(r.structuredContent.exitCode, 0, show(r));
  const got = lines(r);
  assert.equal(got.fsize, `(${64 << 20}, ${64 << 20})`, show(r));
  assert.equal(got.write_past, "EFBIG", show(r));
  assert.equal(got.truncate_past, "EFBIG", show(r));
  assert.equal(got.truncate_at, "ok", show(r));
  assert.equal(got.pwrite_below, "ok 1", show(r));
  assertOk(r);
});

test("past RLIMIT_FSIZE with SIGXFSZ at its default: EFBIG in pid 1, SIGXFSZ kills a child", async () => {
  // pid 1 of a pid namespace ignores signals it has no handler for, even the kernel's own
  // SIGXFSZ; any other process of the run is killed by it.
  const r = await py(
    String.raw`
import signal
signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
fd = os.open('/tmp/big', os.O_CREAT | os.O_WRONLY, 0o600)
os.lseek(fd, 64 << 20, os.SEEK_SET)
c = os.fork()
if c == 0:
    os.write(fd, b'x')
    os._exit(0)
_, st = os.waitpid(c, 0)
print('child_signal:', os.WTERMSIG(st) if os.WIFSIGNALED(st) else None)
probe('init_write', lambda: os.write(fd, b'x'))
`,
  );
  assertOk(r);
  assert.deepEqual(lines(r), { child_signal: "25", init_write: "EFBIG" });
});

test("RLIMIT_NOFILE 256 and RLIMIT_CORE 0", async () => {
  const r = await py(
    String.raw`
import resource
print('nofile:', resource.getrlimit(resource.RLIMIT_NOFILE))
print('core:', resource.getrlimit(resource.RLIMIT_CORE))
probe('raise_nofile', lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (4096, 4096)))
fds = []
try:
    while len(fds) < 1000:
        fds.append(os.open('/dev/null', os.O_RDONLY))
    print('open: none')
except OSError as e:
    print('open:', _ename(e))
print('highest:', max(fds))
`,
  );
  assertOk(r);
  assert.deepEqual(lines(r), {
    nofile: "(256, 256)",
    core: "(0, 0)",
    raise_nofile: "ValueError",
    open: "EMFILE",
    highest: "255",
  });
});

// ---------------------------------------------------------------------------------------------
// Nothing survives from one run to the next

test("files left in /tmp and /out by one run are gone in the next", async () => {
  const name = "left-" + Math.random().toString(36).slice(2);
  const r1 = await py(`open('/tmp/${name}', 'w').write('x')\nopen('/out/${name}', 'w').write('y')\nos.mkdir('/tmp/d-${name}')\nprint('made:', sorted(os.listdir('/tmp')))`);
  assertOk(r1);
  assert.equal(lines(r1).made, `['d-${name}', '${name}']`);
  await probeAll(
    {
      tmp: `open('/tmp/${name}').read()`,
      out: `open('/out/${name}').read()`,
      tmp_list: "os.listdir('/tmp')",
      out_list: "os.listdir('/out')",
    },
    { tmp: "ENOENT", out: "ENOENT", tmp_list: "ok []", out_list: "ok []" },
  );
  // And they never reached the host's /tmp.
  assert.equal(fs.existsSync(path.join("/tmp", name)), false);
});

test("the sandbox /tmp is not the host's /tmp and host paths cannot be written", async () => {
  const hostDir = tempDir("1mcp-e2e-host-");
  const target = path.join(hostDir, "written-by-sandbox");
  await probeAll(
    { host_write: `open(${JSON.stringify(target)}, 'w').write('x')`, host_dir: `os.listdir(${JSON.stringify(hostDir)})` },
    { host_write: "ENOENT", host_dir: "ENOENT" },
  );
  assert.equal(fs.existsSync(target), false);
});
