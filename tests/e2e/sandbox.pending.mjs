// Containment seen from the outside: what user code can reach through the real server. Every
// probe is harmless if it does succeed (it runs `true`, opens a TCP connection, or writes into
// a temp directory of this test), so a missing sandbox fails the test without damage.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";

import { connectHttp, runJs, runPy, show, startServer, tempDir } from "./lib.mjs";

const SECRET = "e2e-secret-" + Math.random().toString(36).slice(2);
let server;
let client;

before(async () => {
  server = await startServer({ env: { ...process.env, ONEMCP_E2E_SECRET: SECRET } });
  client = await connectHttp(server.url);
});

after(async () => {
  await client?.close().catch(() => {});
  await server?.stop();
});

test("the server's environment does not reach user code", async () => {
  const py = await runPy(
    client,
    "import os\nprint(dict(os.environ))\nprint(open('/proc/self/environ', 'rb').read())",
  );
  assert.equal(py.structuredContent.outcome, "ok", show(py));
  assert.ok(!py.structuredContent.stdout.includes(SECRET), py.structuredContent.stdout);
  const js = await runJs(client, "console.log(JSON.stringify(process.env))");
  assert.equal(js.structuredContent.stdout, "{}\n");
});

test("JS has no host modules", async () => {
  const js = await runJs(client, "console.log(typeof std, typeof os, typeof require)");
  assert.equal(js.structuredContent.stdout, "undefined undefined undefined\n", show(js));
  const imp = await runJs(client, "await import('os')");
  assert.equal(imp.isError, true, show(imp));
});

test("user code cannot start programs", async () => {
  const py = await runPy(
    client,
    "import subprocess\nr = subprocess.run(['true'])\nprint('exec worked', r.returncode)",
  );
  assert.ok(!py.structuredContent.stdout.includes("exec worked"), show(py));
  assert.equal(py.isError, true, show(py));
});

test("user code does not run as root", async () => {
  const py = await runPy(client, "import os\nprint(os.getuid(), os.geteuid())");
  assert.equal(py.structuredContent.outcome, "ok", show(py));
  const [uid, euid] = py.structuredContent.stdout.trim().split(" ").map(Number);
  assert.notEqual(uid, 0, "uid");
  assert.notEqual(euid, 0, "euid");
});

test("user code sees only its own processes", async () => {
  const py = await runPy(client, "import os\nprint(len([p for p in os.listdir('/proc') if p.isdigit()]))");
  assert.equal(py.structuredContent.outcome, "ok", show(py));
  const n = Number(py.structuredContent.stdout.trim());
  assert.ok(n <= 4, `${n} processes visible in /proc`);
});

test("user code cannot connect to the server's own port", async () => {
  const code = [
    "import socket",
    "try:",
    `    socket.create_connection(('127.0.0.1', ${server.port}), timeout=1).close()`,
    "    print('connected')",
    "except OSError as e:",
    "    print('blocked', type(e).__name__)",
  ].join("\n");
  const py = await runPy(client, code);
  assert.ok(!py.structuredContent.stdout.includes("connected"), show(py));
});

test("user code cannot write into the host's file system", async () => {
  const hostDir = tempDir("1mcp-e2e-host-");
  const target = path.join(hostDir, "written-by-sandbox");
  const code = [
    "try:",
    `    open(${JSON.stringify(target)}, 'w').write('x')`,
    "    print('written')",
    "except OSError as e:",
    "    print('blocked', type(e).__name__)",
  ].join("\n");
  const py = await runPy(client, code);
  assert.equal(fs.existsSync(target), false, show(py));
  assert.match(py.structuredContent.stdout, /^blocked/, show(py));
});

test("/tmp inside the sandbox is writable and is not the host's /tmp", async () => {
  const name = "1mcp-e2e-" + Math.random().toString(36).slice(2);
  const py = await runPy(
    client,
    `open('/tmp/${name}', 'w').write('hi')\nprint(open('/tmp/${name}').read())`,
  );
  assert.equal(py.structuredContent.stdout, "hi\n", show(py));
  const onHost = fs.existsSync(path.join("/tmp", name));
  if (onHost) fs.rmSync(path.join("/tmp", name));
  assert.equal(onHost, false, "the file appeared in the host's /tmp");
});
