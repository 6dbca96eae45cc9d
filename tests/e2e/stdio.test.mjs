// `1mcp serve --stdio`: the SDK's StdioClientTransport, and a raw child process that checks the
// framing (newline-delimited JSON, nothing else on stdout) and exit on stdin EOF.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { after, test } from "node:test";

import {
  BIN,
  Client,
  StdioClientTransport,
  makeProject,
  show,
  stopProcess,
  waitExit,
  withTimeout,
} from "./lib.mjs";

const children = [];
after(async () => {
  for (const c of children) await stopProcess(c);
});

// A raw `1mcp serve --stdio` child. lines() resolves every stdout line seen so far; next()
// waits for the next one.
function spawnStdio(dir) {
  const proc = spawn(BIN, ["serve", "--stdio", "--dir", dir], { stdio: ["pipe", "pipe", "pipe"] });
  children.push(proc);
  let buf = "";
  const lines = [];
  const waiters = [];
  let stderr = "";
  proc.stderr.setEncoding("utf8").on("data", (d) => (stderr += d));
  proc.stdout.setEncoding("utf8").on("data", (d) => {
    buf += d;
    let nl;
    while ((nl = buf.indexOf("\n")) >= 0) {
      lines.push(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
    }
    while (waiters.length && waiters[0].index < lines.length) {
      const w = waiters.shift();
      w.resolve(lines[w.index]);
    }
  });
  let read = 0;
  return {
    proc,
    lines,
    stderr: () => stderr,
    rest: () => buf,
    send: (s) => proc.stdin.write(s.endsWith("\n") ? s : s + "\n"),
    next(ms = 10000) {
      const index = read++;
      if (index < lines.length) return Promise.resolve(lines[index]);
      return withTimeout(
        new Promise((resolve) => waiters.push({ index, resolve })),
        ms,
        `stdout line ${index}`,
      );
    },
  };
}

test("SDK client over stdio: listTools, run_js, run_py", async () => {
  const dir = makeProject();
  const transport = new StdioClientTransport({
    command: BIN,
    args: ["serve", "--stdio", "--dir", dir],
    stderr: "pipe",
  });
  let stderr = "";
  transport.stderr?.on("data", (d) => (stderr += d));
  const client = new Client({ name: "1mcp-e2e-stdio", version: "1.0.0" });
  try {
    await withTimeout(client.connect(transport), 15000, "stdio connect");
    const { tools } = await client.listTools(undefined, { timeout: 5000 });
    assert.deepEqual(tools.map((t) => t.name).sort(), ["run_js", "run_py", "session_close", "session_create"]);

    const js = await client.callTool(
      { name: "run_js", arguments: { code: "console.log(1+1); 'v'.repeat(2)" } },
      undefined,
      { timeout: 15000 },
    );
    assert.equal(js.isError, false, show(js));
    assert.equal(js.structuredContent.stdout, "2\n");
    assert.equal(js.structuredContent.outcome, "ok");

    const py = await client.callTool(
      { name: "run_py", arguments: { code: "import sys\nprint(sys.stdin.read().upper())", stdin: "abc" } },
      undefined,
      { timeout: 15000 },
    );
    assert.equal(py.isError, false, show(py));
    assert.equal(py.structuredContent.stdout, "ABC\n");

    const bad = await client.callTool(
      { name: "run_py", arguments: { code: "raise SystemExit(5)" } },
      undefined,
      { timeout: 15000 },
    );
    assert.equal(bad.isError, true);
    assert.equal(bad.structuredContent.exitCode, 5);
    await client.ping({ timeout: 3000 });
  } finally {
    await client.close().catch(() => {});
  }
  // Error-level lines; a run whose outcome is "error" (SystemExit(5)) is logged at info.
  assert.doesNotMatch(stderr, /\[error\]|fatal/i, "no errors logged");
});

test("raw stdio: garbage lines get -32700, stdout carries only JSON lines", async () => {
  const dir = makeProject();
  const c = spawnStdio(dir);
  c.send(
    JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "raw", version: "1" } },
    }),
  );
  const init = JSON.parse(await c.next());
  assert.equal(init.id, 1);
  assert.equal(init.result.protocolVersion, "2025-06-18");
  c.send(JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }));

  c.send("this is not json");
  const e1 = JSON.parse(await c.next());
  assert.equal(e1.error.code, -32700);
  assert.equal(e1.id, null);

  c.send('{"jsonrpc":"2.0","id":2,"method":"ping"'); // truncated object
  const e2 = JSON.parse(await c.next());
  assert.equal(e2.error.code, -32700);
  assert.equal(e2.id, null);

  c.send(JSON.stringify([{ jsonrpc: "2.0", id: 3, method: "ping" }]));
  const e3 = JSON.parse(await c.next());
  assert.equal(e3.error.code, -32600);

  c.send(JSON.stringify({ jsonrpc: "2.0", id: 4, method: "nope" }));
  const e4 = JSON.parse(await c.next());
  assert.equal(e4.id, 4);
  assert.equal(e4.error.code, -32601);

  // User code writing to its own stdout must not leak onto the protocol stream.
  c.send(
    JSON.stringify({
      jsonrpc: "2.0",
      id: 5,
      method: "tools/call",
      params: { name: "run_py", arguments: { code: "import os\nos.write(1, b'leak?\\n')\nprint('hi')" } },
    }),
  );
  const r5 = JSON.parse(await c.next(15000));
  assert.equal(r5.id, 5);
  assert.equal(r5.result.structuredContent.stdout, "leak?\nhi\n");

  c.send(JSON.stringify({ jsonrpc: "2.0", id: 6, method: "ping" }));
  const r6 = JSON.parse(await c.next());
  assert.deepEqual(r6, { jsonrpc: "2.0", id: 6, result: {} });

  c.proc.stdin.end();
  const exit = await waitExit(c.proc, 5000, "exit after stdin EOF");
  assert.equal(exit.code, 0, `exit ${JSON.stringify(exit)}; stderr: ${c.stderr()}`);
  assert.equal(c.rest(), "", "no partial line left on stdout");
  for (const line of c.lines) {
    const msg = JSON.parse(line); // throws on anything that is not one JSON message per line
    assert.equal(msg.jsonrpc, "2.0");
  }
  assert.equal(c.lines.length, 7);
});

test("raw stdio: exits promptly when stdin closes, even with a run in flight", async () => {
  const dir = makeProject();
  const c = spawnStdio(dir);
  c.send(
    JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "tools/call",
      params: { name: "run_py", arguments: { code: "while True:\n    pass" } },
    }),
  );
  await new Promise((r) => setTimeout(r, 300));
  c.proc.stdin.end();
  const exit = await waitExit(c.proc, 5000, "exit after stdin EOF");
  assert.equal(exit.signal, null);
  for (const line of c.lines) JSON.parse(line);
});

test("raw stdio: notifications/cancelled stops a run", async () => {
  const dir = makeProject();
  const c = spawnStdio(dir);
  c.send(
    JSON.stringify({
      jsonrpc: "2.0",
      id: "long",
      method: "tools/call",
      params: { name: "run_js", arguments: { code: "while(true){}" } },
    }),
  );
  await new Promise((r) => setTimeout(r, 300));
  c.send(JSON.stringify({ jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: "long" } }));
  c.send(JSON.stringify({ jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "run_js", arguments: { code: "console.log('next')" } } }));
  const line = JSON.parse(await c.next(5000));
  // Per the spec a cancelled request gets no response: the next line is the next call's.
  assert.equal(line.id, 2);
  assert.equal(line.result.structuredContent.stdout, "next\n");
  c.proc.stdin.end();
  await waitExit(c.proc, 5000, "exit after stdin EOF");
  assert.equal(c.lines.length, 1, c.lines.join("\n"));
});
