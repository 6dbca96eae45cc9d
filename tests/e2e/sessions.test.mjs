// Sessions by handle through the official SDK clients: session_create / session_close, a live
// interpreter per language whose state carries over between calls, a workspace at /work shared by
// the session's calls and bounded by its quota; handles bound to their principal, unguessable,
// independent of the MCP session and the era, expiring when idle.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { Client as ClientV2, StreamableHTTPClientTransport as HttpV2 } from "@modelcontextprotocol/client";

import {
  BIN,
  Client,
  StdioClientTransport,
  StreamableHTTPClientTransport,
  callTool,
  connectHttp,
  limits,
  makeProject,
  runCli,
  runJs,
  runPy,
  show,
  sleep,
  startServer,
  withTimeout,
} from "./lib.mjs";

const create = async (client) => {
  const r = await callTool(client, "session_create", {});
  assert.equal(r.isError, false, show(r));
  return r.structuredContent.session;
};
const close = (client, session) => callTool(client, "session_close", { session });

describe("sessions over HTTP", () => {
  let server;
  let http;

  before(async () => {
    const dir = makeProject((cfg) => {
      cfg.sessions = { maxPerPrincipal: 3, maxTotal: 8, workspaceBytes: 262144, workspaceInodes: 16 };
    });
    server = await startServer({ dir });
    http = await connectHttp(server.url);
  });

  after(async () => {
    await http?.close().catch(() => {});
    await server?.stop();
  });

  test("tools/list offers the session tools, with their limits", async () => {
    const { tools } = await http.listTools();
    const byName = Object.fromEntries(tools.map((t) => [t.name, t]));
    assert.ok(byName.session_create && byName.session_close, JSON.stringify(tools.map((t) => t.name)));
    assert.match(byName.session_create.description, /1800 s without a call/);
    assert.match(byName.session_create.description, /3 sessions at once, the server 8 in all/);
    assert.match(byName.session_create.description, /262144 bytes in 16 files/);
    assert.ok(byName.run_py.inputSchema.properties.session, "run_py takes `session`");
    assert.ok(byName.run_js.inputSchema.properties.session, "run_js takes `session`");
  });

  test("a session keeps each language's variables, imports and definitions, like a notebook", async () => {
    const created = await callTool(http, "session_create", {});
    const s = created.structuredContent;
    assert.match(s.session, /^ses_[0-9a-f]{64}$/, "256 bits from the CSPRNG");
    assert.ok(Date.parse(s.expiresAt) > Date.now() + 1700_000, s.expiresAt);
    assert.deepEqual(s.workspace, { path: "/work", maxBytes: 262144, maxFiles: 16 });

    let r = await runPy(http, "import statistics\nx = 41\ndef twice(v):\n    return 2 * v", { session: s.session });
    assert.equal(r.isError, false, show(r));
    assert.deepEqual(r.structuredContent.session, { interpreter: "new", call: 1 });
    r = await runPy(http, "print('mean', statistics.mean([1, 3]))\ntwice(x + 1)", { session: s.session });
    assert.equal(r.structuredContent.stdout, "mean 2\n", show(r));
    assert.equal(r.structuredContent.value, "84");
    assert.deepEqual(r.structuredContent.session, { interpreter: "continued", call: 2 });

    r = await runJs(http, "var counter = 1; function bump() { return ++counter; }", { session: s.session });
    assert.equal(r.isError, false, show(r));
    r = await runJs(http, "bump(); bump()", { session: s.session });
    assert.equal(r.structuredContent.value, "3", show(r));
    // Without the handle: a fresh interpreter, as always.
    r = await runPy(http, "print('x' in globals())");
    assert.equal(r.structuredContent.stdout, "False\n");
    assert.equal(r.structuredContent.session, undefined);

    // A new MCP session (another connection) of the same client uses the same handle.
    const other = await connectHttp(server.url);
    try {
      r = await runPy(other, "x", { session: s.session });
      assert.equal(r.structuredContent.value, "41", show(r));
    } finally {
      await other.close();
    }
    const closed = await close(http, s.session);
    assert.equal(closed.isError, false, show(closed));
    r = await runPy(http, "x", { session: s.session });
    assert.equal(r.isError, true);
    assert.match(r.content[0].text, /unknown session/);
  });

  test("the workspace persists across calls and languages, takes `files`, and is the session's alone", async () => {
    const a = await create(http);
    const b = await create(http);
    try {
      let r = await runPy(http, "import os\nopen('notes.txt', 'w').write('kept')\nos.getcwd()", { session: a });
      assert.equal(r.structuredContent.value, "'/work'", show(r));
      r = await runPy(http, "open('/work/notes.txt').read() + ' ' + open('/work/in/data.csv').read()", {
        session: a,
        files: { "in/data.csv": "a,b" },
      });
      assert.equal(r.structuredContent.value, "'kept a,b'", show(r));
      r = await runJs(
        http,
        "const fs = require('fs'); fs.writeFileSync('from-js.txt', fs.readFileSync('notes.txt', 'utf8') + ' by js'); process.cwd()",
        { session: a },
      );
      assert.equal(r.structuredContent.value, "'/work'", show(r));
      r = await runPy(http, "open('/work/from-js.txt').read()", { session: a });
      assert.equal(r.structuredContent.value, "'kept by js'", show(r));
      // The workspace is a tmpfs of its own: read-write, nosuid, nodev, noexec, its quota as size.
      r = await runPy(
        http,
        "[l.split()[5] + ' ' + l.split()[-1] for l in open('/proc/self/mountinfo') if l.split()[4] == '/work']",
        { session: a },
      );
      assert.match(r.structuredContent.value, /^\['rw,nosuid,nodev,noexec,\S* \S*size=256k,nr_inodes=17/, show(r));
      // A file that cannot be written (through a link) fails the call, not the interpreter.
      r = await runPy(http, "import os\nos.symlink('/etc', 'link')\nmarker = 7", { session: a });
      assert.equal(r.isError, false, show(r));
      r = await runPy(http, "print('ran')", { session: a, files: { "link/x": "y" } });
      assert.equal(r.isError, true, show(r));
      assert.equal(r.structuredContent.stdout, "");
      assert.match(r.structuredContent.stderr, /files: cannot write link\/x: link is not a directory/);
      assert.equal(r.structuredContent.session.interpreter, "continued");
      r = await runPy(http, "marker", { session: a });
      assert.equal(r.structuredContent.value, "7", show(r));
      // Session b sees an empty workspace and none of a's variables.
      r = await runPy(http, "import os\n(os.listdir('/work'), 'os' in dir())", { session: b });
      assert.equal(r.structuredContent.value, "([], True)", show(r));
      r = await runPy(http, "import os\nos.listdir('/work')");
      assert.equal(r.structuredContent.value, "[]", "a run without a session finds /work empty");
      // /out is per call: a file written there comes back once.
      r = await runPy(http, "import os\nopen('/out/once.txt', 'w').write('1')\nos.makedirs('/out/d/e')\nopen('/out/d/e/f', 'w').write('2')", { session: a });
      assert.deepEqual(r.structuredContent.files.map((f) => f.path), ["d/e/f", "once.txt"], show(r));
      r = await runPy(http, "import os\nos.listdir('/out')", { session: a });
      assert.equal(r.structuredContent.value, "[]");
      assert.equal(r.structuredContent.files, undefined);
    } finally {
      await close(http, a);
      await close(http, b);
    }
  });

  test("the workspace quota holds: bytes and files", async () => {
    const s = await create(http);
    try {
      const r = await runPy(
        http,
        [
          "def attempt(f):",
          "    try:",
          "        f()",
          "        return 'ok'",
          "    except OSError as e:",
          "        return e.strerror",
          "big = attempt(lambda: open('/work/big', 'wb').write(b'x' * 300000))",
          "import os",
          "os.remove('/work/big')",
          "many = [attempt(lambda i=i: open(f'/work/f{i}', 'w').close()) for i in range(20)]",
          "(big, many.count('ok'), many[-1])",
        ].join("\n"),
        { session: s },
      );
      assert.equal(r.structuredContent.value, "('No space left on device', 16, 'No space left on device')", show(r));
      const closed = await close(http, s);
      assert.equal(closed.structuredContent.workspace.files, 16);
    } finally {
      await close(http, s);
    }
  });

  test("a timeout interrupts the call and keeps the interpreter's state", async () => {
    const s = await create(http);
    try {
      await runPy(http, "n = 0", { session: s });
      let r = await runPy(http, "while True:\n    n += 1", { session: s, ...limits({ timeoutMs: 400 }) });
      assert.equal(r.structuredContent.outcome, "timeout", show(r));
      assert.equal(r.structuredContent.session.interpreter, "continued");
      assert.match(r.structuredContent.stderr, /KeyboardInterrupt/);
      r = await runPy(http, "n > 0", { session: s });
      assert.equal(r.structuredContent.value, "True", show(r));
      await runJs(http, "globalThis.k = 0", { session: s });
      r = await runJs(http, "for (;;) k++", { session: s, ...limits({ timeoutMs: 400 }) });
      assert.equal(r.structuredContent.outcome, "timeout", show(r));
      r = await runJs(http, "k > 0", { session: s });
      assert.equal(r.structuredContent.value, "true", show(r));
    } finally {
      await close(http, s);
    }
  });

  test("a call that ignores the interrupt ends the interpreter: it says so, the next one says why, /work stays", async () => {
    const s = await create(http);
    try {
      await runPy(http, "x = 1\nopen('/work/f', 'w').write('still here')", { session: s });
      const stubborn = "while True:\n    try:\n        while True:\n            pass\n    except KeyboardInterrupt:\n        pass";
      let r = await runPy(http, stubborn, { session: s, ...limits({ timeoutMs: 400 }) });
      assert.equal(r.structuredContent.outcome, "timeout", show(r));
      assert.equal(r.structuredContent.session.interpreter, "ended");
      assert.match(r.content[0].text, /this call ended the interpreter/);
      r = await runPy(http, "print('x' in globals(), open('/work/f').read())", { session: s });
      assert.equal(r.structuredContent.stdout, "False still here\n", show(r));
      assert.equal(r.structuredContent.session.interpreter, "new");
      assert.match(r.structuredContent.session.note, /timed out/);
      assert.match(r.content[0].text, /^\[session: a new interpreter \(the previous call timed out/);
      // Told once: the call after that continues normally.
      r = await runPy(http, "1", { session: s });
      assert.deepEqual(r.structuredContent.session, { interpreter: "continued", call: 2 });
    } finally {
      await close(http, s);
    }
  });

  test("a cancelled call is interrupted: the interpreter keeps its state", async () => {
    const s = await create(http);
    try {
      await runPy(http, "kept = 'yes'", { session: s });
      const abort = new AbortController();
      const running = runPy(http, "import time\ntime.sleep(30)", { session: s }, { timeoutMs: 40000, signal: abort.signal });
      await sleep(700);
      abort.abort();  // notifications/cancelled
      await assert.rejects(running);
      const r = await runPy(http, "kept", { session: s });
      assert.equal(r.structuredContent.value, "'yes'", show(r));
      assert.equal(r.structuredContent.session.interpreter, "continued");
    } finally {
      await close(http, s);
    }
  });

  test("closing a session cancels its call under way", async () => {
    const s = await create(http);
    const running = runPy(http, "import time\ntime.sleep(30)", { session: s }, { timeoutMs: 40000 });
    await sleep(700);
    const t0 = Date.now();
    await close(http, s);
    const r = await running;
    assert.equal(r.structuredContent.outcome, "killed", show(r));
    assert.ok(Date.now() - t0 < 5000);
  });

  test("handles cannot be guessed or reused after close; caps are enforced", async () => {
    for (const handle of ["ses_" + "0".repeat(64), "anything", "ses_"]) {
      const r = await runPy(http, "1", { session: handle });
      assert.equal(r.isError, true);
      assert.match(r.content[0].text, /unknown session/);
      const c = await close(http, handle);
      assert.equal(c.isError, true);
    }
    const bad = await callTool(http, "session_close", {});
    assert.equal(bad.isError, true);
    const extra = await callTool(http, "session_create", { idleMs: 5 });
    assert.equal(extra.isError, true);
    const mine = [await create(http), await create(http), await create(http)];
    const refused = await callTool(http, "session_create", {});
    assert.equal(refused.isError, true);
    assert.match(refused.content[0].text, /3 sessions open, its limit \(sessions\.maxPerPrincipal\)/);
    await close(http, mine.pop());
    mine.push(await create(http));
    for (const s of mine) await close(http, s);
  });
});

describe("sessions and principals", () => {
  test("another token's client is refused the handle; the modern era and stdio work the same", async () => {
    const dir = makeProject((cfg) => {
      cfg.sessions = { idleMs: 1500 };
    });
    const tokens = ["alice", "bob"].map((name) => {
      const r = runCli(["token", "create", "--dir", dir, "--name", name]);
      assert.equal(r.status, 0, r.stderr);
      return r.stdout.trim();
    });
    const server = await startServer({ dir });
    const connect = async (token) => {
      const client = new Client({ name: "1mcp-e2e-sessions", version: "1.0.0" });
      await withTimeout(
        client.connect(
          new StreamableHTTPClientTransport(new URL(server.url), {
            requestInit: { headers: { authorization: `Bearer ${token}` } },
          }),
        ),
        10000,
        "connect",
      );
      return client;
    };
    const alice = await connect(tokens[0]);
    const bob = await connect(tokens[1]);
    const modern = new ClientV2({ name: "1mcp-e2e-sessions-v2", version: "1.0.0" }, { versionNegotiation: { mode: { pin: "2026-07-28" } } });
    try {
      const s = await create(alice);
      await runPy(alice, "secret = 'alice'", { session: s });
      for (const attempt of [runPy(bob, "secret", { session: s }), close(bob, s)]) {
        const r = await attempt;
        assert.equal(r.isError, true, show(r));
        assert.match(r.content[0].text, /unknown session/);
      }
      // Alice's stateless modern-era client (no Mcp-Session-Id at all) uses the same handle.
      await withTimeout(
        modern.connect(new HttpV2(new URL(server.url), { requestInit: { headers: { authorization: `Bearer ${tokens[0]}` } } })),
        20000,
        "connect v2",
      );
      const r = await modern.callTool({ name: "run_py", arguments: { code: "secret", session: s } });
      assert.equal(r.structuredContent.value, "'alice'", JSON.stringify(r));
      // Idle for longer than sessions.idleMs: gone.
      await sleep(3000);
      const late = await runPy(alice, "secret", { session: s });
      assert.equal(late.isError, true);
      assert.match(late.content[0].text, /unknown session/);
    } finally {
      await alice.close().catch(() => {});
      await bob.close().catch(() => {});
      await modern.close().catch(() => {});
      await server.stop();
    }
  });

  test("over stdio", async () => {
    const dir = makeProject();
    const stdio = new Client({ name: "1mcp-e2e-sessions-stdio", version: "1.0.0" });
    await stdio.connect(new StdioClientTransport({ command: BIN, args: ["serve", "--stdio", "--dir", dir], stderr: "ignore" }));
    try {
      const s = await create(stdio);
      await runJs(stdio, "globalThis.n = 20", { session: s });
      const r = await runJs(stdio, "n + 1", { session: s });
      assert.equal(r.structuredContent.value, "21", show(r));
      assert.equal((await close(stdio, s)).isError, false);
    } finally {
      await stdio.close();
    }
  });

  test("sessions.enabled false: no session tools, and a `session` argument is refused", async () => {
    const dir = makeProject((cfg) => {
      cfg.sessions = { enabled: false };
    });
    const server = await startServer({ dir });
    const http = await connectHttp(server.url);
    try {
      const { tools } = await http.listTools();
      assert.deepEqual(tools.map((t) => t.name).sort(), ["run_js", "run_py"]);
      const r = await runPy(http, "1", { session: "ses_x" });
      assert.equal(r.isError, true);
      assert.match(r.content[0].text, /sessions are disabled/);
    } finally {
      await http.close();
      await server.stop();
    }
  });
});
