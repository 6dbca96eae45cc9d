// What people who run the server see of it: GET /metrics (Prometheus text format) moving with the
// calls the SDK client makes, behind the same Origin check and authentication as /mcp.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import {
  connectHttp,
  makeProject,
  request,
  runCli,
  runJs,
  runPy,
  limits,
  show,
  sleep,
  startServer,
} from "./lib.mjs";

// The samples of a text exposition: { 'name{labels}': value }, and the TYPE of each family.
function parseMetrics(text) {
  const samples = new Map();
  const types = new Map();
  for (const line of text.split("\n")) {
    if (!line) continue;
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) types.set(type[1], type[2]);
    if (line.startsWith("#")) continue;
    const m = /^(\S+?(?:\{.*\})?) (\S+)$/.exec(line);
    assert.ok(m, `not a sample line: ${line}`);
    samples.set(m[1], Number(m[2]));
  }
  return { samples, types };
}

async function scrape(base, headers = {}) {
  const r = await request(`${base}/metrics`, { headers });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  return parseMetrics(r.text);
}

describe("GET /metrics", () => {
  let server;
  let client;
  before(async () => {
    server = await startServer();
    client = await connectHttp(server.url);
  });
  after(async () => {
    await client?.close();
    await server?.stop();
  });

  test("counts calls by tool and outcome, with their duration and queue wait", async () => {
    const { samples: before, types } = await scrape(server.base);
    assert.equal(types.get("onemcp_runs_total"), "counter");
    assert.equal(types.get("onemcp_run_duration_seconds"), "histogram");
    assert.equal(types.get("onemcp_queue_wait_seconds"), "histogram");
    for (const g of ["onemcp_runs_in_flight", "onemcp_calls_queued", "onemcp_mcp_sessions", "onemcp_run_sessions"]) {
      assert.equal(types.get(g), "gauge", g);
      assert.ok(before.has(g), g);
    }
    assert.equal(types.get("onemcp_dependency_builds_total"), "counter");
    assert.equal(types.get("onemcp_capsule_gc_runs_total"), "counter");
    assert.ok(before.get("onemcp_mcp_sessions") >= 1);
    const count = (m, k) => m.get(k) ?? 0;

    const ok = await runJs(client, "console.log(1 + 1)");
    assert.equal(ok.structuredContent?.stdout, "2\n", show(ok));
    const ok2 = await runJs(client, "console.log(2)");
    assert.equal(ok2.structuredContent?.outcome, "ok", show(ok2));
    const slow = await runPy(client, "while True: pass", limits({ timeoutMs: 300 }));
    assert.equal(slow.structuredContent?.outcome, "timeout", show(slow));
    const bad = await runJs(client, "x", { policy: { limits: { timeoutMs: -5 } } });
    assert.equal(bad.isError, true, show(bad));

    const { samples: now } = await scrape(server.base);
    const js = 'onemcp_runs_total{tool="run_js",outcome="ok"}';
    const py = 'onemcp_runs_total{tool="run_py",outcome="timeout"}';
    assert.equal(count(now, js) - count(before, js), 2);
    assert.equal(count(now, py) - count(before, py), 1);
    assert.ok(count(now, 'onemcp_runs_total{tool="run_js",outcome="invalid"}') >= 1, "invalid call counted");
    const jsRuns = 'onemcp_run_duration_seconds_count{tool="run_js"}';
    assert.equal(count(now, jsRuns) - count(before, jsRuns), 2);
    assert.equal(now.get('onemcp_run_duration_seconds_bucket{tool="run_py",le="+Inf"}'),
      now.get('onemcp_run_duration_seconds_count{tool="run_py"}'));
    assert.ok(now.get('onemcp_run_duration_seconds_sum{tool="run_py"}') >= 0.3, "the timeout's run lasted 300 ms");
    const waits = 'onemcp_queue_wait_seconds_count{tool="run_js"}';
    assert.equal(count(now, waits) - count(before, waits), 2);
    assert.equal(now.get("onemcp_calls_queued"), 0);
    // A killed run holds its slot until its processes are gone, a moment after its answer.
    let inFlight = now.get("onemcp_runs_in_flight");
    for (let i = 0; i < 50 && inFlight !== 0; ++i) {
      await sleep(100);
      inFlight = (await scrape(server.base)).samples.get("onemcp_runs_in_flight");
    }
    assert.equal(inFlight, 0);
    assert.equal(now.get('onemcp_capsule_cache_bytes{tier="memory"}') > 0, true);
  });

  test("answers another origin 403 and takes GET only", async () => {
    const r = await request(`${server.base}/metrics`, { headers: { origin: "http://evil.example" } });
    assert.equal(r.status, 403);
    const p = await request(`${server.base}/metrics`, { method: "POST", body: "x" });
    assert.equal(p.status, 405);
  });
});

describe("GET /metrics with authentication", () => {
  test("is refused without a token and served with one", async () => {
    const dir = makeProject();
    const made = runCli(["token", "create", "--dir", dir, "--name", "ops"]);
    assert.equal(made.status, 0, made.stderr);
    const token = made.stdout.trim();
    const server = await startServer({ dir });
    try {
      const none = await request(`${server.base}/metrics`);
      assert.equal(none.status, 401);
      assert.doesNotMatch(none.text, /onemcp_/);
      const wrong = await request(`${server.base}/metrics`, { headers: { authorization: `Bearer ${token}x` } });
      assert.equal(wrong.status, 401);
      const { samples } = await scrape(server.base, { authorization: `Bearer ${token}` });
      assert.equal(samples.get("onemcp_runs_in_flight"), 0);
    } finally {
      await server.stop();
    }
  });
});

describe("serve --log-format json", () => {
  test("every line is a JSON object, and each call ends with a line that tells no code", async () => {
    const server = await startServer({ extra: ["--log-format", "json"] });
    const client = await connectHttp(server.url);
    const marker = "do_not_log_" + Math.random().toString(36).slice(2);
    try {
      const ok = await runJs(client, `const ${marker} = 6 * 7; console.log(${marker})`);
      assert.equal(ok.structuredContent?.stdout, "42\n", show(ok));
      const py = await runPy(client, `import sys; print(sys.stdin.read()) # ${marker}`, { stdin: marker });
      assert.equal(py.structuredContent?.outcome, "ok", show(py));
      // The line is written before the answer leaves: it is there already (give the pipe a moment).
      await sleep(200);
    } finally {
      await client.close();
      await server.stop();
    }
    const text = server.stderr();
    assert.doesNotMatch(text, new RegExp(marker), "code and stdin stay out of the log");
    const lines = text.split("\n").filter(Boolean);
    assert.ok(lines.length > 3, text);
    const parsed = lines.map((l) => {
      const o = JSON.parse(l);  // throws on a line that is not JSON
      assert.match(o.ts, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, l);
      assert.ok(["debug", "info", "warn", "error"].includes(o.level), l);
      assert.equal(typeof o.msg, "string", l);
      return o;
    });
    const calls = parsed.filter((o) => o.msg === "call ended");
    assert.equal(calls.length, 2, text);
    const [js, pyLine] = calls;
    assert.equal(js.tool, "run_js");
    assert.equal(js.outcome, "ok");
    assert.match(js.principal, /^session:[0-9a-f]{12}$/);
    assert.equal(typeof js.duration_ms, "number");
    assert.equal(typeof js.queue_ms, "number");
    assert.match(js.capsule, /^[0-9a-f]{64}$/);
    assert.equal(pyLine.tool, "run_py");
    assert.equal(pyLine.outcome, "ok");
  });

  test("text lines start with an ISO 8601 UTC timestamp", async () => {
    const server = await startServer();
    await server.stop();
    const lines = server.stderr().split("\n").filter(Boolean);
    assert.ok(lines.length > 0);
    for (const l of lines) assert.match(l, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \[(debug|info|warn|error)\] /, l);
  });
});
