// Hostile and careless code: infinite loops, sleeps, catastrophic regexes, output floods, memory
// bombs, concurrency, invalid UTF-8, bad arguments and cancellation. Each run must end with the
// exact outcome, within its limit, while the server keeps answering other requests.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import {
  McpError,
  callTool,
  connectHttp,
  limits,
  ping,
  post,
  rawSession,
  runJs,
  runPy,
  show,
  sleep,
  startServer,
  timed,
  withTimeout,
} from "./lib.mjs";

let server;
let client;
const replies = []; // every answer to a POST of `client` (see connectHttp), including dropped ones

before(async () => {
  server = await startServer();
  client = await connectHttp(server.url, { onResponse: (j) => replies.push(j) });
  await client.listTools(undefined, { timeout: 5000 }); // so the SDK validates structuredContent
});

after(async () => {
  await client?.close().catch(() => {});
  await server?.stop();
});

function assertOutcome(result, outcome) {
  assert.equal(result.isError, true, show(result));
  assert.equal(result.structuredContent?.outcome, outcome, show(result));
}

// Starts `run()`, checks that the server answers a ping while it is busy, then awaits it.
async function pingDuring(run, delayMs = 300) {
  const pending = timed(run);
  await sleep(delayMs);
  const p = await timed(() => ping(client, 2000));
  assert.ok(p.ms < 1000, `ping during a run took ${p.ms.toFixed(0)} ms`);
  return pending;
}

test("JS while(true){} stops at timeoutMs and the server stays responsive", async () => {
  const { value: r, ms } = await pingDuring(() =>
    runJs(client, "while(true){}", limits({ timeoutMs: 1000 })),
  );
  assertOutcome(r, "timeout");
  assert.ok(ms >= 900 && ms < 2500, `returned after ${ms.toFixed(0)} ms`);
});

test("Python while True: pass stops at timeoutMs and the server stays responsive", async () => {
  const { value: r, ms } = await pingDuring(() =>
    runPy(client, "while True:\n    pass", limits({ timeoutMs: 1000 })),
  );
  assertOutcome(r, "timeout");
  assert.ok(ms >= 900 && ms < 2500, `returned after ${ms.toFixed(0)} ms`);
});

test("another tool call completes while a loop is running", async () => {
  const loop = timed(() => runPy(client, "while True:\n    pass", limits({ timeoutMs: 1500 })));
  await sleep(200);
  const quick = await timed(() => runJs(client, "console.log('quick')"));
  assert.equal(quick.value.structuredContent.stdout, "quick\n", show(quick.value));
  assert.ok(quick.ms < 1200, `a quick call during a loop took ${quick.ms.toFixed(0)} ms`);
  assertOutcome((await loop).value, "timeout");
});

test("Python time.sleep(30) stops at timeoutMs 500", async () => {
  const { value: r, ms } = await timed(() =>
    runPy(client, "import time\nprint('start', flush=True)\ntime.sleep(30)\nprint('end')", limits({ timeoutMs: 500 })),
  );
  assertOutcome(r, "timeout");
  assert.equal(r.structuredContent.stdout, "start\n", "output before the deadline is kept");
  assert.ok(ms < 2000, `returned after ${ms.toFixed(0)} ms`);
});

test("JS catastrophic regex stops at the deadline", async () => {
  const code = "console.log(/^(a+)+$/.test('a'.repeat(40) + 'b'))";
  const { value: r, ms } = await timed(() => runJs(client, code, limits({ timeoutMs: 1000 })));
  assertOutcome(r, "timeout");
  assert.ok(ms < 2500, `returned after ${ms.toFixed(0)} ms`);
});

test("Python catastrophic regex stops at the deadline", async () => {
  const code = "import re\nprint(re.match(r'^(a+)+$', 'a' * 40 + 'b'))";
  const { value: r, ms } = await pingDuring(() => runPy(client, code, limits({ timeoutMs: 1000 })));
  assertOutcome(r, "timeout");
  assert.ok(ms < 2500, `returned after ${ms.toFixed(0)} ms`);
});

test("Python output flood is cut at stdoutBytes", async () => {
  const r = await runPy(client, "print('x' * 10_000_000)", limits({ stdoutBytes: 1000 }));
  assertOutcome(r, "output_limit");
  assert.equal(r.structuredContent.truncated, true);
  assert.equal(r.structuredContent.stdout, "x".repeat(1000));
});

test("JS output flood is cut at stdoutBytes", async () => {
  const code = "for (let i = 0; i < 1e7; i++) console.log('yyyyyyyyy');";
  const { value: r, ms } = await timed(() =>
    runJs(client, code, limits({ stdoutBytes: 1000, timeoutMs: 10000 })),
  );
  assertOutcome(r, "output_limit");
  assert.equal(r.structuredContent.truncated, true);
  assert.equal(r.structuredContent.stdout, "yyyyyyyyy\n".repeat(100));
  assert.ok(ms < 5000, `the flood was stopped promptly (${ms.toFixed(0)} ms)`);
});

test("a stderr flood is cut at stdoutBytes too", async () => {
  const r = await runPy(client, "import sys\nsys.stderr.write('e' * 10_000_000)", limits({ stdoutBytes: 1000 }));
  assertOutcome(r, "output_limit");
  assert.equal(r.structuredContent.truncated, true);
  assert.equal(r.structuredContent.stderr, "e".repeat(1000));
});

test("a JS timer that never stops ends at the deadline", async () => {
  const { value: r, ms } = await timed(() =>
    runJs(client, "setInterval(() => {}, 10)", limits({ timeoutMs: 500 })),
  );
  assertOutcome(r, "timeout");
  assert.ok(ms < 2000, `returned after ${ms.toFixed(0)} ms`);
});

test("a JS top-level await that never settles ends at once, as an error", async () => {
  const { value: r, ms } = await timed(() =>
    runJs(client, "await new Promise(() => {})", limits({ timeoutMs: 5000 })),
  );
  assertOutcome(r, "error");
  assert.match(r.structuredContent.stderr, /unsettled/i);
  assert.ok(ms < 2000, `returned after ${ms.toFixed(0)} ms`);
});

test("JS memory bomb hits memMb 64", async () => {
  const code = "const keep = []; while (true) keep.push(new Array(1e6).fill(1.5));";
  const r = await runJs(client, code, limits({ memMb: 64, timeoutMs: 10000 }));
  assertOutcome(r, "memory");
});

test("Python memory bomb hits memMb 64", async () => {
  const code = "keep = []\nwhile True:\n    keep.append(b'x' * 10_000_000)";
  const r = await runPy(client, code, limits({ memMb: 64, timeoutMs: 10000 }));
  assertOutcome(r, "memory");
  await ping(client);
});

test("8 concurrent mixed calls each get their own output", async () => {
  const calls = [];
  for (let i = 0; i < 8; i++) {
    const marker = `run-${i}-${Math.random().toString(36).slice(2)}`;
    const call =
      i % 2 === 0
        ? runJs(client, `const t = Date.now(); while (Date.now() - t < 50) {}\nconsole.log(${JSON.stringify(marker)});\n${i}`)
        : runPy(client, `import time\ntime.sleep(0.05)\nprint(${JSON.stringify(marker)})`);
    calls.push(call.then((r) => ({ r, marker, i })));
  }
  const results = await withTimeout(Promise.all(calls), 30000, "8 concurrent calls");
  for (const { r, marker, i } of results) {
    assert.equal(r.isError, false, show(r));
    assert.equal(r.structuredContent.stdout, marker + "\n", `call ${i}`);
    if (i % 2 === 0) assert.equal(r.structuredContent.value, String(i));
  }
});

test("invalid UTF-8 from Python becomes U+FFFD and the JSON stays valid", async () => {
  const code = "import sys\nsys.stdout.buffer.write(b'a\\xffb')\nsys.stderr.buffer.write(b'\\xc3(')";
  const r = await runPy(client, code);
  assert.equal(r.isError, false, show(r));
  assert.equal(r.structuredContent.stdout, "a\uFFFDb");
  assert.match(r.structuredContent.stderr, /^\uFFFD\(/);

  // The same over raw HTTP: the body must decode as strict UTF-8 (post() uses a fatal decoder).
  const s = await rawSession(server.url);
  const raw = await s.post({
    jsonrpc: "2.0",
    id: 1,
    method: "tools/call",
    params: { name: "run_py", arguments: { code } },
  });
  assert.equal(raw.status, 200);
  assert.equal(raw.json.result.structuredContent.stdout, "a\uFFFDb");
});

test("code that is not a string is an isError result, not a protocol error", async () => {
  for (const tool of ["run_js", "run_py"]) {
    const r = await callTool(client, tool, { code: 42 });
    assert.equal(r.isError, true, show(r));
    assert.match(r.content[0].text, /code/);
  }
});

test("missing code is an isError result, not a protocol error", async () => {
  for (const tool of ["run_js", "run_py"]) {
    const r = await callTool(client, tool, {});
    assert.equal(r.isError, true, show(r));
    assert.match(r.content[0].text, /code/);
  }
});

test("an unknown tool is a JSON-RPC error", async () => {
  await assert.rejects(callTool(client, "run_ruby", { code: "puts 1" }), (e) => {
    assert.ok(e instanceof McpError, String(e));
    assert.equal(e.code, -32602);
    assert.match(e.message, /run_ruby/);
    return true;
  });
  await ping(client);
});

test("aborting a call sends notifications/cancelled and kills the run", async () => {
  const code = [
    "import time",
    "print('started', flush=True)",
    "time.sleep(5)",
    "print('finished', flush=True)",
  ].join("\n");
  const ac = new AbortController();
  const t0 = performance.now();
  const call = runPy(client, code, {}, { signal: ac.signal });
  await sleep(500);
  ac.abort("test cancels");
  await assert.rejects(call);

  // Per the spec a cancelled request gets no response: the original POST's answer is a stream
  // that ends without one (so the SDK has nothing to drop), and it ends once the run is killed,
  // well before the script would have finished.
  const answer = await withTimeout(
    (async () => {
      for (;;) {
        const hit = replies.find((r) => r.request?.params?.arguments?.code === code);
        if (hit) return hit;
        await sleep(50);
      }
    })(),
    4000,
    "the end of the cancelled call's answer",
  );
  const elapsed = answer.endedAt - t0;
  assert.equal(answer.status, 200);
  assert.deepEqual(answer.messages.filter((m) => m.id !== undefined), [], "a response after the cancellation");
  assert.ok(elapsed < 4500, `ended after ${elapsed.toFixed(0)} ms`);

  await ping(client);
  const again = await runPy(client, "print('alive')");
  assert.equal(again.structuredContent.stdout, "alive\n");
});

test("closing the MCP session cancels its runs", async () => {
  const other = await connectHttp(server.url);
  const loop = runPy(other, "while True:\n    pass", limits({ timeoutMs: 20000 })).catch((e) => e);
  await sleep(300);
  const t0 = performance.now();
  try {
    await withTimeout(other.transport.terminateSession(), 3000, "DELETE /mcp");
    // The loop's POST is still open: its reply must come now, reporting a killed run.
    const r = await withTimeout(loop, 5000, "the loop of a closed session");
    assert.ok(performance.now() - t0 < 5000);
    if (r instanceof Error) {
      assert.match(r.message, /cancel|session/i, String(r));
    } else {
      assertOutcome(r, "killed");
    }
  } finally {
    await other.close();
  }
  await ping(client);
});

test("a hostile parameter mix stays a tool error", async () => {
  // Loosening limits beyond the server's policy is not allowed; it must not crash anything.
  const r = await callTool(client, "run_js", { code: "1", policy: { limits: { timeoutMs: -1 } } });
  assert.equal(r.isError, true, show(r));
  const s = await rawSession(server.url);
  const raw = await s.post({
    jsonrpc: "2.0",
    id: "x",
    method: "tools/call",
    params: { name: "run_js", arguments: "not an object" },
  });
  assert.equal(raw.status, 200);
  assert.equal(raw.json.id, "x");
  assert.equal(raw.json.error?.code, -32602, raw.text);
  await ping(client);
  assert.equal(server.proc.exitCode, null, "server process still running");
});

test("the server survives everything above", async () => {
  const r = await post(server.base + "/mcp", { jsonrpc: "2.0", id: 1, method: "ping" });
  assert.equal(r.status, 200, "a ping without a session is answered on its own");
  assert.deepEqual(r.json, { jsonrpc: "2.0", id: 1, result: {} });
  const sc = (await runJs(client, "console.log('ok')")).structuredContent;
  assert.equal(sc.stdout, "ok\n");
});
