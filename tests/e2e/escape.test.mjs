// Escape attempts through the real server: starting programs, forbidden syscalls (seccomp),
// foreign syscall ABIs, fork/thread/memory bombs, deep recursion, signalling the supervisor,
// ignoring signals, late daemonised writers, hostile output, state carried between runs and the
// network. Every case asserts the exact safe outcome and what the code observed, and after every
// case the server must still serve a trivial run and no process of the run may remain on the host.
//
// Every probe is harmless if it does succeed (it runs `true`, opens a loopback connection, or
// asks for a resource the kernel refuses to an unprivileged process anyway); the bombs are
// bounded so that a missing limit fails the test instead of exhausting the machine.
import assert from "node:assert/strict";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { after, afterEach, before, test } from "node:test";

import {
  assertOk,
  lines,
  assertHealthy,
  connectHttp,
  limits,
  rawSession,
  runJs,
  runPy,
  show,
  sleep,
  startServer,
  tempDir,
  timed,
} from "./lib.mjs";

const SIGSYS = 31;
let server;
let client;

before(async () => {
  server = await startServer();
  client = await connectHttp(server.url);
  await client.listTools(undefined, { timeout: 5000 });
});

after(async () => {
  await client?.close().catch(() => {});
  await server?.stop();
});

// ---------------------------------------------------------------------------------------------
// Helpers

afterEach(() => assertHealthy(server, client));

const PRELUDE = String.raw`
import errno, os, sys
def _ename(e):
    if isinstance(e, OSError) and e.errno is not None:
        return errno.errorcode.get(e.errno, str(e.errno))
    return type(e).__name__
def probe(label, fn):
    try:
        r = fn()
        print(f'{label}: ok' + ('' if r is None else f' {r}'), flush=True)
    except BaseException as e:
        print(f'{label}: {_ename(e)}', flush=True)
`;

// Raw syscalls through ctypes: sc(nr, *args) returns "ret N" or the errno name. A call that
// unexpectedly creates a process (clone) ends the child at once.
const CTYPES = String.raw`
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def sc(nr, *args):
    conv = [ctypes.c_long(a) if isinstance(a, int) else a for a in args]
    ctypes.set_errno(0)
    r = libc.syscall(ctypes.c_long(nr), *conv)
    if r == 0 and nr in (56, 435) and os.getpid() != 1:
        os._exit(0)
    if r < 0:
        e = ctypes.get_errno()
        return errno.errorcode.get(e, str(e))
    return f'ret {r}'
`;

async function py(code, extra = {}, opts) {
  const r = await runPy(client, PRELUDE + CTYPES + "\n" + code, extra, opts);
  assert.ok(r.structuredContent, show(r));
  return r;
}

function assertOutcome(r, outcome, exitCode) {
  assert.equal(r.isError, true, show(r));
  assert.equal(r.structuredContent.outcome, outcome, show(r));
  if (exitCode !== undefined) assert.equal(r.structuredContent.exitCode, exitCode, show(r));
}

// Prints sc(...) for each entry of `calls` ({label: "nr, args..."}) and compares with `expect`.
async function syscalls(calls, expect) {
  const code = Object.entries(calls)
    .map(([label, args]) => `print(${JSON.stringify(label)} + ': ' + sc(${args}), flush=True)`)
    .join("\n");
  const r = await py(code);
  assertOk(r);
  const got = lines(r);
  for (const [label, want] of Object.entries(expect)) {
    if (Array.isArray(want)) {
      assert.ok(want.includes(got[label]), `${label}: got ${got[label]}, want one of ${want}\n${show(r)}`);
    } else {
      assert.equal(got[label], want, `${label}\n${show(r)}`);
    }
  }
}

const all = (labels, v) => Object.fromEntries(labels.map((l) => [l, v]));

// ---------------------------------------------------------------------------------------------
// Starting programs

test("subprocess, os.system, os.exec*, posix_spawn and ctypes execve all fail with EPERM", async () => {
  const r = await py(
    String.raw`
import subprocess
probe('subprocess', lambda: subprocess.run(['/usr/bin/true']).returncode)
probe('subprocess_path', lambda: subprocess.run(['true']).returncode)
probe('shell', lambda: subprocess.run('true', shell=True).returncode)
probe('popen', lambda: os.popen('echo pwned').read())
probe('system', lambda: os.system('true'))
probe('execv', lambda: os.execv('/usr/bin/true', ['true']))
probe('execve_self', lambda: os.execve('/proc/self/exe', ['x'], {}))
probe('posix_spawn', lambda: os.posix_spawn('/usr/bin/true', ['true'], {}))
argv = (ctypes.c_char_p * 2)(b'true', None)
ctypes.set_errno(0)
rc = libc.execve(b'/usr/bin/true', argv, None)
print('ctypes_execve:', rc, errno.errorcode.get(ctypes.get_errno()))
print('execveat:', sc(322, -100, ctypes.c_char_p(b'/usr/bin/true'), argv, 0, 0))
`,
  );
  assertOk(r);
  assert.deepEqual(lines(r), {
    subprocess: "EPERM",
    subprocess_path: "EPERM",
    shell: "EPERM",
    popen: "EPERM",
    system: "ok 32512", // wait status of exit code 127: the forked child could not exec
    execv: "EPERM",
    execve_self: "EPERM",
    posix_spawn: "EPERM",
    ctypes_execve: "-1 EPERM",
    execveat: "EPERM",
  });
});

// ---------------------------------------------------------------------------------------------
// Forbidden syscalls (seccomp deny-list)

test("ptrace fails with EPERM", async () => {
  await syscalls(
    { traceme: "101, 0, 0, 0, 0", attach_self: "101, 16, 1, 0, 0", seize: "101, 0x4206, 1, 0, 0" },
    { traceme: "EPERM", attach_self: "EPERM", seize: "EPERM" },
  );
});

test("unshare and clone with namespace flags fail with EPERM; clone3 with ENOSYS", async () => {
  const flags = { newuser: 0x10000000, newns: 0x20000, newnet: 0x40000000, newpid: 0x20000000,
    newipc: 0x8000000, newuts: 0x4000000, newcgroup: 0x2000000, newtime: 0x80 };
  const calls = {};
  for (const [k, v] of Object.entries(flags)) calls[`unshare_${k}`] = `272, ${v}`;
  for (const [k, v] of Object.entries(flags)) if (k !== "newtime") calls[`clone_${k}`] = `56, ${v} | 17, 0, 0, 0, 0`;
  calls.clone3 = "435, 0, 0";
  calls.unshare_files = "272, 0x400"; // CLONE_FILES: harmless, allowed
  const expect = all(Object.keys(calls), "EPERM");
  expect.clone3 = "ENOSYS";
  expect.unshare_files = "ret 0";
  await syscalls(calls, expect);
});

test("mount family, chroot, pivot_root and setns fail with EPERM", async () => {
  await syscalls(
    {
      mount: "165, ctypes.c_char_p(b'none'), ctypes.c_char_p(b'/tmp'), ctypes.c_char_p(b'tmpfs'), 0, 0",
      umount2: "166, ctypes.c_char_p(b'/proc'), 2",
      pivot_root: "155, ctypes.c_char_p(b'/tmp'), ctypes.c_char_p(b'/tmp')",
      chroot: "161, ctypes.c_char_p(b'/tmp')",
      fsopen: "430, ctypes.c_char_p(b'tmpfs'), 0",
      open_tree: "428, -100, ctypes.c_char_p(b'/usr/lib'), 1",
      move_mount: "429, -100, ctypes.c_char_p(b'/tmp'), -100, ctypes.c_char_p(b'/out'), 0",
      mount_setattr: "442, -100, ctypes.c_char_p(b'/tmp'), 0, 0, 0",
      setns: "308, os.open('/proc/self/ns/net', os.O_RDONLY), 0",
    },
    all(["mount", "umount2", "pivot_root", "chroot", "fsopen", "open_tree", "move_mount", "mount_setattr", "setns"], "EPERM"),
  );
});

test("io_uring fails with ENOSYS", async () => {
  await syscalls(
    {
      setup: "425, 8, ctypes.create_string_buffer(120)",
      enter: "426, 0, 1, 1, 0, 0, 0",
      register: "427, 0, 0, 0, 0",
    },
    { setup: "ENOSYS", enter: "ENOSYS", register: "ENOSYS" },
  );
});

test("bpf, perf_event_open, userfaultfd and keyrings fail with EPERM", async () => {
  await syscalls(
    {
      bpf: "321, 5, ctypes.create_string_buffer(128), 128",
      perf_event_open: "298, ctypes.create_string_buffer(128), 0, -1, -1, 0",
      userfaultfd: "323, 0",
      keyctl: "250, 0, -3, 0",
      add_key: "248, ctypes.c_char_p(b'user'), ctypes.c_char_p(b'k'), ctypes.c_char_p(b'v'), 1, -3",
      request_key: "249, ctypes.c_char_p(b'user'), ctypes.c_char_p(b'k'), 0, -3",
    },
    all(["bpf", "perf_event_open", "userfaultfd", "keyctl", "add_key", "request_key"], "EPERM"),
  );
});

test("reading other processes' memory and stealing their fds fail with EPERM", async () => {
  await syscalls(
    {
      process_vm_readv: "310, 1, 0, 0, 0, 0, 0",
      process_vm_writev: "311, 1, 0, 0, 0, 0, 0",
      pidfd_getfd: "438, 0, 0, 0",
      open_by_handle_at: "304, -100, ctypes.create_string_buffer(64), 0",
      name_to_handle_at: "303, -100, ctypes.c_char_p(b'/tmp'), ctypes.create_string_buffer(64), ctypes.create_string_buffer(8), 0",
    },
    all(["process_vm_readv", "process_vm_writev", "pidfd_getfd", "open_by_handle_at", "name_to_handle_at"], "EPERM"),
  );
});

test("kernel-wide operations (modules, kexec, reboot, clocks, swap, syslog) fail with EPERM", async () => {
  const calls = {
    init_module: "175, 0, 0, ctypes.c_char_p(b'')",
    finit_module: "313, 0, ctypes.c_char_p(b''), 0",
    delete_module: "176, ctypes.c_char_p(b'x'), 0",
    kexec_load: "246, 0, 0, 0, 0",
    reboot: "169, 0, 0, 0, 0", // bad magic: even if allowed it would be EINVAL
    settimeofday: "164, 0, 0",
    clock_settime: "227, 0, ctypes.create_string_buffer(16)",
    swapon: "167, ctypes.c_char_p(b'/tmp/x'), 0",
    acct: "163, 0",
    syslog: "103, 3, ctypes.create_string_buffer(64), 64",
    iopl: "172, 3",
    ioperm: "173, 0, 1, 1",
  };
  await syscalls(calls, all(Object.keys(calls), "EPERM"));
});

test("personality changes and TIOCSTI fail with EPERM, also with high bits set", async () => {
  await syscalls(
    {
      read_implies_exec: "135, 0x0400000",
      addr_no_randomize: "135, 0x0040000",
      linux32: "135, 0x0008",
      high_bits: "135, 0x100000000",
      query: "135, 0xffffffff",
      tiocsti: "16, 0, 0x5412, ctypes.byref(ctypes.c_char(b'x'))",
      tiocsti_high: "16, 0, 0x100005412, ctypes.byref(ctypes.c_char(b'x'))",
      tioclinux: "16, 0, 0x541C, ctypes.byref(ctypes.c_char(b'\\x06'))",
    },
    {
      read_implies_exec: "EPERM",
      addr_no_randomize: "EPERM",
      linux32: "EPERM",
      high_bits: "EPERM",
      query: "ret 0",
      tiocsti: "EPERM",
      tiocsti_high: "EPERM",
      tioclinux: "EPERM",
    },
  );
});

test("raw, packet and exotic sockets are refused", async () => {
  const r = await py(
    String.raw`
import socket
probe('inet_raw', lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP))
probe('inet_raw_cloexec', lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW | socket.SOCK_CLOEXEC, 255))
probe('inet6_raw', lambda: socket.socket(socket.AF_INET6, socket.SOCK_RAW, 58))
probe('inet_sock_packet', lambda: socket.socket(socket.AF_INET, 10, 0))
probe('packet_dgram', lambda: socket.socket(17, socket.SOCK_DGRAM, 0))
probe('packet_raw', lambda: socket.socket(17, socket.SOCK_RAW, 0x0300))
probe('netlink', lambda: socket.socket(16, socket.SOCK_DGRAM, 0))
probe('vsock', lambda: socket.socket(40, socket.SOCK_STREAM, 0))
probe('alg', lambda: socket.socket(38, socket.SOCK_SEQPACKET, 0))
probe('unspec', lambda: socket.socket(0, socket.SOCK_STREAM, 0))
probe('socketpair_inet', lambda: socket.socketpair(socket.AF_INET, socket.SOCK_STREAM))
probe('inet_ok', lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM).close())
probe('unix_ok', lambda: [s.close() for s in socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)] and None)
`,
  );
  assertOk(r);
  assert.deepEqual(lines(r), {
    inet_raw: "EPERM",
    inet_raw_cloexec: "EPERM",
    inet6_raw: "EPERM",
    inet_sock_packet: "EPERM",
    packet_dgram: "EAFNOSUPPORT",
    packet_raw: lines(r).packet_raw === "EPERM" ? "EPERM" : "EAFNOSUPPORT", // both rules match
    netlink: "EAFNOSUPPORT",
    vsock: "EAFNOSUPPORT",
    alg: "EAFNOSUPPORT",
    unspec: "EAFNOSUPPORT",
    socketpair_inet: "EAFNOSUPPORT",
    inet_ok: "ok",
    unix_ok: "ok",
  });
});

test("a 32-bit int 0x80 syscall kills the run: policy_violation", async () => {
  const r = await py(
    String.raw`
import mmap
m = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
m.write(b'\xb8\x14\x00\x00\x00\xcd\x80\xc3')  # mov eax, 20 (i386 getpid); int 0x80; ret
f = ctypes.CFUNCTYPE(ctypes.c_int)(ctypes.addressof(ctypes.c_char.from_buffer(m)))
print('before', flush=True)
print('after', f(), flush=True)
`,
  );
  assertOutcome(r, "policy_violation", 128 + SIGSYS);
  assert.equal(r.structuredContent.stdout, "before\n");
});

test("an x32 syscall kills the run: policy_violation", async () => {
  const r = await py(
    String.raw`
print('before', flush=True)
print('after', libc.syscall(ctypes.c_long(0x40000000 | 39)), flush=True)  # x32 getpid
`,
  );
  assertOutcome(r, "policy_violation", 128 + SIGSYS);
  assert.equal(r.structuredContent.stdout, "before\n");
});

// ---------------------------------------------------------------------------------------------
// Bombs

let pidsCapSeen = false;

test("forking until refused hits EAGAIN at the pids cap; the children die with the run", async () => {
  const { value: r, ms } = await timed(() =>
    py(
      String.raw`
import time
kids = 0
err = None
try:
    while kids < 512:
        pid = os.fork()
        if pid == 0:
            time.sleep(60)
            os._exit(0)
        kids += 1
except OSError as e:
    err = _ename(e)
print('err:', err)
print('kids:', kids)
`,
      limits({ timeoutMs: 20000 }),
    ),
  );
  assertOk(r);
  const got = lines(r);
  assert.equal(got.err, "EAGAIN", show(r));
  const kids = Number(got.kids);
  assert.ok(kids > 0 && kids < 512, `${kids} children`);
  assert.ok(ms < 10000, `run took ${ms.toFixed(0)} ms although its children sleep 60 s`);
  pidsCapSeen = true;
});

test("an exponential fork bomb ends at the deadline and the next run works", async () => {
  // Only with a pids cap in place: without one this would exhaust the machine.
  assert.ok(pidsCapSeen, "not run: the previous case found no pids cap");
  const { value: r, ms } = await timed(() =>
    runPy(client, "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass", limits({ timeoutMs: 2000 })),
  );
  assertOutcome(r, "timeout");
  assert.ok(ms < 6000, `returned after ${ms.toFixed(0)} ms`);
  const next = await runPy(client, "print('next')");
  assert.equal(next.structuredContent.stdout, "next\n", show(next));
});

test("a thread bomb is refused (RuntimeError) and the run still ends normally", async () => {
  const r = await py(
    String.raw`
import threading
ev = threading.Event()
n = 0
try:
    while n < 5000:
        threading.Thread(target=ev.wait, daemon=True).start()
        n += 1
    print('err: none')
except RuntimeError as e:
    print('err: RuntimeError')
print('threads:', n)
ev.set()
`,
    limits({ timeoutMs: 20000 }),
  );
  assertOk(r);
  const got = lines(r);
  assert.equal(got.err, "RuntimeError", show(r));
  assert.ok(Number(got.threads) < 5000, show(r));
});

test("Python single huge allocation with memMb 64: outcome memory", async () => {
  const r = await runPy(client, "b = bytearray(512 << 20)\nb[::4096] = b'x' * len(b[::4096])\nprint(len(b))", limits({ memMb: 64, timeoutMs: 10000 }));
  assertOutcome(r, "memory");
});

test("Python memory spread over forked processes with memMb 64: outcome memory", async () => {
  const code = String.raw`
import os, time
kids = []
for i in range(4):
    pid = os.fork()
    if pid == 0:
        keep = b'x' * (40 << 20)
        time.sleep(5)
        os._exit(0)
    kids.append(pid)
for k in kids:
    os.waitpid(k, 0)
print('all children survived')
`;
  const r = await runPy(client, code, limits({ memMb: 64, timeoutMs: 10000 }));
  assertOutcome(r, "memory");
  assert.ok(!r.structuredContent.stdout.includes("survived"), show(r));
});

test("JS memory bomb of strings with memMb 64: outcome memory", async () => {
  const r = await runJs(client, "const a = []; for (;;) a.push('x'.repeat(1 << 20) + a.length);", limits({ memMb: 64, timeoutMs: 10000 }));
  assertOutcome(r, "memory");
});

test("Python unbounded recursion: RecursionError, outcome error", async () => {
  const r = await runPy(client, "def f(n):\n    return f(n + 1)\nf(0)");
  assertOutcome(r, "error", 1);
  assert.match(r.structuredContent.stderr, /RecursionError: maximum recursion depth exceeded/, show(r));
});

test("JS unbounded recursion: stack overflow error, outcome error", async () => {
  const r = await runJs(client, "function f(n) { return f(n + 1) + 1; }\nf(0);");
  assertOutcome(r, "error", 1);
  assert.match(r.structuredContent.stderr, /stack overflow|call stack/i, show(r));
});

test("Python C-level recursion with the limit lifted crashes only the run", async () => {
  const r = await runPy(
    client,
    "import sys\nsys.setrecursionlimit(10**8)\nl = []\nfor _ in range(10**6):\n    l = [l]\nprint('built', flush=True)\nprint(len(repr(l)))",
    limits({ timeoutMs: 10000 }),
  );
  assert.equal(r.structuredContent.stdout, "built\n", show(r));
  assertOutcome(r, "crashed", 128 + 11);
});

// ---------------------------------------------------------------------------------------------
// Signals

test("killing the parent or the supervisor from inside has no effect", async () => {
  const r = await py(
    String.raw`
import signal, time
print('ppid:', os.getppid())
probe('kill_ppid', lambda: os.kill(os.getppid(), signal.SIGKILL))
probe('kill_init', lambda: os.kill(1, signal.SIGKILL))
probe('term_init', lambda: os.kill(1, signal.SIGTERM))
probe('kill_all', lambda: os.kill(-1, signal.SIGKILL))
probe('kill_server', lambda: os.kill(${server.proc.pid}, signal.SIGKILL))
probe('kill_node', lambda: os.kill(${process.pid}, signal.SIGKILL))
pid = os.fork()
if pid == 0:
    os.kill(1, signal.SIGKILL)
    os.kill(os.getppid(), signal.SIGKILL)
    os._exit(0)
os.waitpid(pid, 0)
time.sleep(0.1)
print('alive: yes')
`,
  );
  assertOk(r);
  assert.deepEqual(lines(r), {
    ppid: "0",
    kill_ppid: "ok",
    kill_init: "ok",
    term_init: "ok",
    kill_all: "ESRCH",
    kill_server: "ESRCH",
    kill_node: "ESRCH",
    alive: "yes",
  });
  assert.equal(server.proc.exitCode, null);
});

test("ignoring SIGTERM/SIGINT/SIGHUP and looping still stops at the deadline", async () => {
  const { value: r, ms } = await timed(() =>
    runPy(
      client,
      "import signal\nfor s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGXCPU):\n    signal.signal(s, signal.SIG_IGN)\nprint('ignoring', flush=True)\nwhile True:\n    pass",
      limits({ timeoutMs: 1500 }),
    ),
  );
  assertOutcome(r, "timeout");
  assert.equal(r.structuredContent.stdout, "ignoring\n");
  assert.ok(ms >= 1400 && ms < 4000, `returned after ${ms.toFixed(0)} ms`);
});

test("busy children in their own sessions die with the run at the deadline", async () => {
  const { value: r, ms } = await timed(() =>
    runPy(
      client,
      "import os, signal\nfor i in range(3):\n    if os.fork() == 0:\n        os.setsid()\n        signal.signal(signal.SIGTERM, signal.SIG_IGN)\n        while True:\n            pass\nprint('forked', flush=True)\nos.wait()",
      limits({ timeoutMs: 1500 }),
    ),
  );
  assertOutcome(r, "timeout");
  assert.equal(r.structuredContent.stdout, "forked\n");
  assert.ok(ms < 4000, `returned after ${ms.toFixed(0)} ms`);
});

test("a late daemonised writer ends with the run and never reaches a later run", async () => {
  const marker = "LATE-" + Math.random().toString(36).slice(2);
  const { value: r, ms } = await timed(() =>
    runPy(
      client,
      String.raw`
import os, time
pid = os.fork()
if pid == 0:
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    time.sleep(1.5)
    os.write(1, b'${marker}\n')
    os.write(2, b'${marker}\n')
    os._exit(0)
os.waitpid(pid, 0)
print('parent done')
`,
      limits({ timeoutMs: 10000 }),
    ),
  );
  assert.equal(r.structuredContent.outcome, "ok", show(r));
  assert.equal(r.structuredContent.stdout, "parent done\n", show(r));
  assert.ok(ms < 1200, `the run waited for its daemon: ${ms.toFixed(0)} ms`);
  await sleep(2000);
  for (const next of [await runPy(client, "print('next')"), await runJs(client, "console.log('next')")]) {
    assert.equal(next.structuredContent.stdout, "next\n", show(next));
    assert.equal(next.structuredContent.stderr, "", show(next));
  }
});

// ---------------------------------------------------------------------------------------------
// Output

test("ANSI/OSC terminal escapes and NUL pass through as text", async () => {
  const payload = "\x1b[2J\x1b[H\x1b]0;pwned\x07\x1b]52;c;ZXZpbA==\x07\x1b[31mred\x1b[0m\r\n\x00end\x9b";
  const pyCode = `import sys\nsys.stdout.write(${JSON.stringify(payload)})\nsys.stderr.write(${JSON.stringify(payload)})`;
  const r = await runPy(client, pyCode);
  assert.equal(r.isError, false, show(r));
  assert.equal(r.structuredContent.stdout, payload);
  assert.equal(r.structuredContent.stderr, payload);
  const js = await runJs(client, `process.stdout.write(${JSON.stringify(payload)}); console.error(${JSON.stringify(payload)})`);
  assert.equal(js.structuredContent.stdout, payload, show(js));
  assert.equal(js.structuredContent.stderr, payload + "\n", show(js));
  // Over raw HTTP the body must stay strict UTF-8 JSON (post() decodes with fatal: true).
  const s = await rawSession(server.url);
  const raw = await s.post({ jsonrpc: "2.0", id: 7, method: "tools/call", params: { name: "run_py", arguments: { code: pyCode } } });
  assert.equal(raw.status, 200, raw.text);
  assert.equal(raw.json.result.structuredContent.stdout, payload);
});

test("a multi-byte character cut by stdoutBytes becomes U+FFFD", async () => {
  const r = await runPy(client, "print('ééé')", limits({ stdoutBytes: 5 }));
  assertOutcome(r, "output_limit");
  assert.equal(r.structuredContent.truncated, true);
  assert.equal(r.structuredContent.stdout, "éé\uFFFD");
});

test("lone surrogates from JS become U+FFFD", async () => {
  const r = await runJs(client, "console.log('a\\ud800b\\udfffc')");
  assert.equal(r.isError, false, show(r));
  assert.match(r.structuredContent.stdout, /^a\uFFFD+b\uFFFD+c\n$/, show(r));
});

test("an output flood from forked writers is cut at stdoutBytes", async () => {
  const { value: r, ms } = await timed(() =>
    runPy(
      client,
      "import os\nfor i in range(4):\n    if os.fork() == 0:\n        while True:\n            os.write(1, b'z' * 65536)\nos.wait()",
      limits({ stdoutBytes: 10000, timeoutMs: 10000 }),
    ),
  );
  assertOutcome(r, "output_limit");
  assert.equal(r.structuredContent.truncated, true);
  assert.equal(r.structuredContent.stdout, "z".repeat(10000));
  assert.ok(ms < 5000, `flood stopped after ${ms.toFixed(0)} ms`);
});

// ---------------------------------------------------------------------------------------------
// State carried from one run to the next

test("JS prototype pollution and globals do not survive the run", async () => {
  const r1 = await runJs(
    client,
    "Object.prototype.polluted = 'yes'; Array.prototype.map = () => 'hijacked'; globalThis.leak = 1;" +
      "JSON.stringify = () => 'x'; String.prototype.toString = () => 'evil'; console.log('set')",
  );
  assert.equal(r1.structuredContent.stdout, "set\n", show(r1));
  const r2 = await runJs(client, "console.log(JSON.stringify([({}).polluted ?? null, [1].map((x) => x * 2), typeof leak, 'a'.toString()]))");
  assert.equal(r2.structuredContent.stdout, '[null,[2],"undefined","a"]\n', show(r2));
});

test("Python builtins, modules, sys state and environment do not survive the run", async () => {
  const r1 = await runPy(
    client,
    String.raw`
import builtins, json, os, sys
open('/tmp/sitecustomize.py', 'w').write('print("hijacked")')
sys.path.insert(0, '/tmp')
sys.modules['evil'] = sys
json.dumps = lambda *a, **k: 'hacked'
os.environ['LEAK'] = '1'
os.putenv('LEAK2', '1')
sys.setrecursionlimit(50)
builtins.len = lambda x: 42
print('set')
builtins.print = lambda *a, **k: None
`,
  );
  assert.equal(r1.structuredContent.stdout, "set\n", show(r1));
  const r2 = await runPy(
    client,
    "import json, os, sys\nprint(json.dumps([1]), len([1, 2]), 'LEAK' in os.environ, 'LEAK2' in os.environ, 'evil' in sys.modules, '/tmp' in sys.path, sys.getrecursionlimit() > 50, os.path.exists('/tmp/sitecustomize.py'))",
  );
  assert.equal(r2.structuredContent.stdout, "[1] 2 False False False False True False\n", show(r2));
});

// ---------------------------------------------------------------------------------------------
// Network

test("connecting to the server's own port fails", async () => {
  const r = await py(
    String.raw`
import socket
def conn(host):
    s = socket.socket(socket.AF_INET6 if ':' in host else socket.AF_INET)
    s.settimeout(2)
    try:
        s.connect((host, ${server.port}))
    finally:
        s.close()
probe('v4', lambda: conn('127.0.0.1'))
probe('v6', lambda: conn('::1'))
probe('localhost', lambda: conn('localhost'))
`,
  );
  assertOk(r);
  // Landlock refuses every TCP connect (EACCES) before routing would (ENETUNREACH: lo is down).
  assert.deepEqual(lines(r), { v4: "EACCES", v6: "EACCES", localhost: "EACCES" });
});

test("there is no route out and DNS lookups fail", async () => {
  const resolver = /^nameserver\s+(\d+\.\d+\.\d+\.\d+)/m.exec(fs.readFileSync("/etc/resolv.conf", "utf8"))?.[1] ?? "10.0.0.53";
  const r = await py(
    String.raw`
import socket
def udp(host):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect((host, 53))  # a route lookup only: nothing is sent
    finally:
        s.close()
probe('testnet', lambda: udp('192.0.2.1'))
probe('resolver', lambda: udp('${resolver}'))
probe('routes', lambda: open('/proc/net/route').read().splitlines()[1:])
try:
    udp('${resolver}')
    print('dns: skipped, the resolver is reachable')
except OSError:
    try:
        socket.getaddrinfo('sandbox-probe.invalid', 80)
        print('dns: resolved')
    except socket.gaierror as e:
        print('dns: gaierror', e.errno)
`,
    limits({ timeoutMs: 15000 }),
  );
  assertOk(r);
  const got = lines(r);
  assert.equal(got.testnet, "ENETUNREACH", show(r));
  assert.equal(got.resolver, "ENETUNREACH", show(r));
  assert.equal(got.routes, "ok []", show(r));
  assert.equal(got.dns, "gaierror -3", show(r)); // EAI_AGAIN: no resolver reachable
});

test("listening on a TCP port is refused", async () => {
  const r = await py(
    String.raw`
import socket
def listen(host, port):
    s = socket.socket()
    try:
        s.bind((host, port))
        s.listen()
    finally:
        s.close()
probe('bind_any', lambda: listen('0.0.0.0', 8080))
probe('bind_lo', lambda: listen('127.0.0.1', 8081))
`,
  );
  assertOk(r);
  assert.deepEqual(lines(r), { bind_any: "EACCES", bind_lo: "EACCES" });
});

test("the host's unix sockets (abstract and on disk) are out of reach", async () => {
  const abstractName = "\0onemcp-e2e-" + Math.random().toString(36).slice(2);
  const dir = tempDir("1mcp-e2e-sock-");
  const sockPath = path.join(dir, "host.sock");
  let accepted = 0;
  const servers = [];
  for (const where of [abstractName, sockPath]) {
    const srv = net.createServer((c) => {
      accepted++;
      c.destroy();
    });
    await new Promise((resolve, reject) => srv.listen(where, resolve).on("error", reject));
    servers.push(srv);
  }
  try {
    const r = await py(
      String.raw`
import socket
def unix(addr):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(2)
    try:
        s.connect(addr)
    finally:
        s.close()
probe('abstract', lambda: unix(${JSON.stringify(abstractName)}))
probe('path', lambda: unix(${JSON.stringify(sockPath)}))
probe('unix_table', lambda: len(open('/proc/net/unix').readlines()) - 1)
`,
    );
    assertOk(r);
    const got = lines(r);
    assert.equal(got.abstract, "ECONNREFUSED", show(r)); // another network namespace
    assert.equal(got.path, "ENOENT", show(r));
    assert.equal(got.unix_table, "ok 0", show(r));
    assert.equal(accepted, 0, "a host socket accepted a connection from the sandbox");
  } finally {
    for (const s of servers) s.close();
  }
});

test("the host's sockets are not listed in the run's /proc/net", async () => {
  const r = await py(
    "probe('tcp', lambda: len(open('/proc/net/tcp').readlines()) - 1)\nprobe('tcp6', lambda: len(open('/proc/net/tcp6').readlines()) - 1)\nprobe('udp', lambda: len(open('/proc/net/udp').readlines()) - 1)",
  );
  assertOk(r);
  assert.deepEqual(lines(r), { tcp: "ok 0", tcp6: "ok 0", udp: "ok 0" });
});

test("two runs alive at the same time cannot reach each other", async () => {
  // Runs of one runtime share the zygote's network namespace, so abstract UNIX sockets would be a
  // channel between them; Landlock scoping (one domain per run) must refuse it.
  const name = "\0onemcp-xrun-" + Math.random().toString(36).slice(2);
  const listener = runPy(
    client,
    String.raw`
import socket, time
s = socket.socket(socket.AF_UNIX)
s.bind(${JSON.stringify(name)})
s.listen()
s.settimeout(2)
print('listening', flush=True)
try:
    c, _ = s.accept()
    print('accepted')
except OSError as e:
    print('accept:', type(e).__name__)
`,
    limits({ timeoutMs: 10000 }),
  );
  await sleep(500);
  const r = await py(
    String.raw`
import socket, signal
def unix(addr):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(1)
    try:
        s.connect(addr)
    finally:
        s.close()
probe('abstract', lambda: unix(${JSON.stringify(name)}))
probe('pids', lambda: sorted(p for p in os.listdir('/proc') if p.isdigit()))
probe('signal_2', lambda: os.kill(2, signal.SIGKILL))
`,
  );
  assertOk(r);
  const got = lines(r);
  assert.equal(got.abstract, "EPERM", show(r));
  assert.equal(got.pids, "ok ['1']", show(r));
  assert.equal(got.signal_2, "ESRCH", show(r));
  const l = await listener;
  assertOk(l);
  assert.equal(l.structuredContent.stdout, "listening\naccept: TimeoutError\n", show(l));
});

test("two runs alive at the same time cannot see each other's file locks or file reads", async () => {
  // Runs share the inodes of the read-only root (and /dev/null, which both may even open for
  // writing), so a lock on one of its files, or a watch on one, would be a channel between them.
  // The holder locks shared files every way and keeps reading one; the observer looks for the
  // locks and watches for the reads. CLOCK_MONOTONIC is the host's, so the two windows compare.
  const SHARED = `['/usr/lib/python3.11/os.py', '/dev/null']`;
  const holder = py(
    String.raw`
import fcntl, struct, time
rd = struct.pack('hhqqi4x', fcntl.F_RDLCK, 0, 0, 0, 0)
keep = []
for p in ${SHARED}:
    fd = os.open(p, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    fcntl.fcntl(fd, fcntl.F_SETLK, rd)
    ofd = os.open(p, os.O_RDONLY)
    fcntl.fcntl(ofd, 37, rd)  # F_OFD_SETLK
    keep += [fd, ofd]
print('locked:', time.monotonic(), flush=True)
end = time.monotonic() + 5
while time.monotonic() < end:
    open('/usr/share/zoneinfo/UTC', 'rb').read()
    time.sleep(0.01)
print('released:', time.monotonic())
`,
    limits({ timeoutMs: 20000 }),
  );
  await sleep(1000);
  const r = await py(
    String.raw`
import fcntl, struct, time
wr = struct.pack('hhqqi4x', fcntl.F_WRLCK, 0, 0, 0, 0)
inodes = [f':{os.stat(p).st_ino} ' for p in ${SHARED}]
probe('write_os_py', lambda: os.open('/usr/lib/python3.11/os.py', os.O_WRONLY))
probe('write_dev_null', lambda: os.close(os.open('/dev/null', os.O_WRONLY)))
seen = set()
first = time.monotonic()
while time.monotonic() < first + 3:
    for p in ${SHARED}:
        fd = os.open(p, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            seen.add('flock ' + _ename(e))
        for cmd, name in ((fcntl.F_GETLK, 'F_GETLK'), (36, 'F_OFD_GETLK')):
            if struct.unpack('hhqqi4x', fcntl.fcntl(fd, cmd, wr))[0] != fcntl.F_UNLCK:
                seen.add(name)
        os.close(fd)
    if any(i in l for l in open('/proc/locks') for i in inodes):
        seen.add('/proc/locks')
    time.sleep(0.05)
last = time.monotonic()
print('seen:', sorted(seen))
print('window:', first, last)
probe('inotify', lambda: sc(253))  # inotify_init
probe('inotify1', lambda: sc(294, 0))  # inotify_init1
`,
    limits({ timeoutMs: 20000 }),
  );
  assertOk(r);
  const got = lines(r);
  assert.ok(["EROFS", "EACCES"].includes(got.write_os_py), show(r));
  assert.equal(got.write_dev_null, "ok", show(r));
  assert.equal(got.seen, "[]", show(r));
  assert.equal(got.inotify, "ok ENOSYS", show(r));
  assert.equal(got.inotify1, "ok ENOSYS", show(r));
  const h = await holder;
  assertOk(h);
  const held = lines(h);
  const [first, last] = got.window.split(" ").map(Number);
  // The observer looked while the holder held its locks and read.
  assert.ok(first < Number(held.released) && last > Number(held.locked), `${show(h)}\n${show(r)}`);
});
