// Server→client messages against the real binary: progress of tools/call (the SDK's onprogress
// over HTTP and stdio, and the raw SSE response), the session's GET stream (headers, 409, closed
// by DELETE), notifications/tools/list_changed after a config reload (SIGHUP), and a GET stream
// whose client never reads.
import assert from "node:assert/strict";
import fs from "node:fs";
import net from "node:net";
import { after, test } from "node:test";

import {
  BIN,
  Client,
  PROTOCOL,
  StdioClientTransport,
  StreamableHTTPClientTransport,
  ToolListChangedNotificationSchema,
  configPath,
  makeProject,
  rawSession,
  readConfig,
  request,
  sleep,
  startServer,
  withLimits,
  withTimeout,
  writeConfig,
} from "./lib.mjs";

const cleanups = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

async function server(dir) {
  const s = await startServer({ dir });
  cleanups.push(() => s.stop());
  return s;
}

// An SDK client over HTTP; `getStatus` resolves the status of its GET stream request.
async function httpClient(url) {
  let gotStatus;
  const getStatus = new Promise((resolve) => (gotStatus = resolve));
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    fetch: async (input, init) => {
      const res = await fetch(input, init);
      if (init?.method === "GET") gotStatus(res.status);
      return res;
    },
  });
  const client = new Client({ name: "1mcp-e2e", version: "1.0.0" });
  await withTimeout(client.connect(transport), 10000, "MCP connect");
  cleanups.push(() => client.close());
  return { client, transport, getStatus: withTimeout(getStatus, 10000, "the SDK's GET stream") };
}

async function stdioClient(dir) {
  const transport = new StdioClientTransport({
    command: BIN,
    args: ["serve", "--stdio", "--dir", dir],
    stderr: "pipe",
  });
  const client = new Client({ name: "1mcp-e2e", version: "1.0.0" });
  await withTimeout(client.connect(transport), 20000, "MCP connect over stdio");
  cleanups.push(() => client.close());
  return { client, transport };
}

// Resolves the next notifications/tools/list_changed the client receives.
function listChanged(client) {
  const waiters = [];
  let count = 0;
  client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
    count++;
    waiters.splice(0).forEach((w) => w());
  });
  return {
    next: (ms = 10000) => withTimeout(new Promise((r) => waiters.push(r)), ms, "tools/list_changed"),
    count: () => count,
  };
}

const timeoutOf = async (client) => {
  const { tools } = await client.listTools(undefined, { timeout: 5000 });
  return Number(/timeoutMs (\d+)/.exec(tools.find((t) => t.name === "run_js").description)[1]);
};

const RUNNING = { progress: 0, total: 1, message: "running" };
const DONE = { progress: 1, total: 1, message: "done" };

async function callWithProgress(client, name, code) {
  const seen = [];
  const r = await client.callTool({ name, arguments: { code } }, undefined, {
    timeout: 20000,
    onprogress: (p) => seen.push(p),
  });
  return { r, seen };
}

// The JSON of every SSE event's data in `text`.
function sseMessages(text) {
  return text
    .split("\n\n")
    .map((block) =>
      block
        .split("\n")
        .filter((l) => l.startsWith("data:"))
        .map((l) => l.slice(5).trimStart())
        .join("\n"),
    )
    .filter(Boolean)
    .map((d) => JSON.parse(d));
}

// Reads a fetch body until it ends; resolves the text.
async function readToEnd(res, ms) {
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  let text = "";
  await withTimeout(
    (async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        text += dec.decode(value, { stream: true });
      }
    })(),
    ms,
    "the end of the stream",
  );
  return text;
}

const sseHeaders = (s) => ({ ...s.headers, accept: "text/event-stream" });

test("SDK over HTTP: onprogress sees the run start and end, then the result", async () => {
  const s = await server();
  const { client } = await httpClient(s.url);
  const errors = [];
  client.onerror = (e) => errors.push(String(e));
  const js = await callWithProgress(client, "run_js", "console.log(6*7)");
  assert.equal(js.r.structuredContent.stdout, "42\n");
  assert.deepEqual(js.seen, [RUNNING, DONE]);
  const py = await callWithProgress(client, "run_py", "print('py')");
  assert.equal(py.r.structuredContent.stdout, "py\n");
  assert.deepEqual(py.seen, [RUNNING, DONE]);
  // Without onprogress the answer is a plain JSON response, as before.
  const plain = await client.callTool({ name: "run_js", arguments: { code: "1" } });
  assert.equal(plain.isError, false);
  assert.deepEqual(errors, []);
});

// Over stdio the response itself ends the progress (a progress line read together with the
// response would reach the SDK after the response and be reported as an unknown token): a run
// that is still going after 50 ms reports its start, a quick one answers without progress.
test("SDK over stdio: onprogress sees the start of a run that takes a while, then the result", async () => {
  const { client } = await stdioClient(makeProject());
  const errors = [];
  client.onerror = (e) => errors.push(String(e));
  for (let i = 0; i < 3; i++) {
    const slow = await callWithProgress(client, "run_py", "import time\ntime.sleep(0.3)\nprint(1+1)");
    assert.equal(slow.r.structuredContent.stdout, "2\n");
    assert.deepEqual(slow.seen, [RUNNING]);
  }
  for (let i = 0; i < 20; i++) {
    const quick = await callWithProgress(client, i % 2 ? "run_py" : "run_js", i % 2 ? "print(1+1)" : "console.log(1+1)");
    assert.equal(quick.r.structuredContent.stdout, "2\n");
    assert.ok(quick.seen.length <= 1, JSON.stringify(quick.seen));
  }
  assert.deepEqual(errors, []);
});

test("raw HTTP: a progressToken makes the tools/call answer an SSE stream", async () => {
  const s = await server();
  const raw = await rawSession(s.url);
  const call = (id, token, accept) =>
    fetch(s.url, {
      method: "POST",
      headers: { ...raw.headers, "content-type": "application/json", accept },
      body: JSON.stringify({
        jsonrpc: "2.0",
        id,
        method: "tools/call",
        params: { name: "run_js", arguments: { code: "console.log('hi')" }, _meta: { progressToken: token } },
      }),
      signal: AbortSignal.timeout(20000),
    });
  const res = await call(7, 99, "application/json, text/event-stream");
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "text/event-stream");
  const msgs = sseMessages(await readToEnd(res, 20000));
  assert.equal(msgs.length, 3, JSON.stringify(msgs));
  for (const [i, want] of [RUNNING, DONE].entries()) {
    assert.equal(msgs[i].method, "notifications/progress");
    assert.deepEqual(msgs[i].params, { progressToken: 99, ...want });
  }
  assert.equal(msgs[2].id, 7);
  assert.equal(msgs[2].result.structuredContent.stdout, "hi\n");

  const json = await call(8, "t", "application/json");
  assert.equal(json.headers.get("content-type"), "application/json");
  assert.equal((await json.json()).id, 8);
});

test("raw HTTP: the GET stream: headers, 405 without Accept, 409 for a second, closed by DELETE", async () => {
  const s = await server();
  const raw = await rawSession(s.url);
  const noAccept = await request(s.url, { headers: { ...raw.headers, accept: "application/json" } });
  assert.equal(noAccept.status, 405);
  const noSession = await request(s.url, { headers: { accept: "text/event-stream" } });
  assert.equal(noSession.status, 400);

  const res = await fetch(s.url, { headers: sseHeaders(raw), signal: AbortSignal.timeout(20000) });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "text/event-stream");
  assert.equal(res.headers.get("cache-control"), "no-cache");
  const second = await request(s.url, { headers: sseHeaders(raw) });
  assert.equal(second.status, 409);
  assert.equal(second.json.error.code, -32600);

  const ended = readToEnd(res, 5000);
  const del = await request(s.url, { method: "DELETE", headers: raw.headers });
  assert.equal(del.status, 200);
  assert.equal(await ended, "", "the stream ends without events");
  const gone = await request(s.url, { headers: sseHeaders(raw) });
  assert.equal(gone.status, 404);
});

test("a client that leaves frees the GET stream for its session", async () => {
  const s = await server();
  const raw = await rawSession(s.url);
  const ac = new AbortController();
  const first = await fetch(s.url, { headers: sseHeaders(raw), signal: ac.signal });
  assert.equal(first.status, 200);
  ac.abort();
  let status;
  for (let i = 0; i < 50 && status !== 200; i++) {
    await sleep(50);
    const again = await fetch(s.url, { headers: sseHeaders(raw), signal: AbortSignal.timeout(5000) });
    status = again.status;
    await again.body.cancel();
  }
  assert.equal(status, 200);
});

test("SIGHUP reloads the config and the SDK client hears tools/list_changed on its GET stream", async () => {
  const dir = makeProject();
  const s = await server(dir);
  const { client, transport, getStatus } = await httpClient(s.url);
  const changed = listChanged(client);
  assert.equal(client.getServerCapabilities().tools.listChanged, true);
  assert.equal(await getStatus, 200, "the SDK opened its GET stream");
  const mine = await request(s.url, {
    headers: { "mcp-session-id": transport.sessionId, "mcp-protocol-version": transport.protocolVersion, accept: "text/event-stream" },
  });
  assert.equal(mine.status, 409, "one GET stream per session");
  assert.notEqual(await timeoutOf(client), 12345);

  writeConfig(dir, withLimits({ timeoutMs: 12345 })(readConfig(dir)));
  const heard = changed.next();
  s.proc.kill("SIGHUP");
  await heard;
  assert.equal(await timeoutOf(client), 12345);
  const run = await client.callTool({ name: "run_js", arguments: { code: "1" } });
  assert.equal(run.isError, false);

  // An invalid file is logged and changes nothing.
  fs.writeFileSync(configPath(dir), "{ not json");
  s.proc.kill("SIGHUP");
  for (let i = 0; i < 100 && !/config not reloaded/.test(s.stderr()); i++) await sleep(50);
  assert.match(s.stderr(), /config not reloaded, keeping the old one: .*1mcp\.config\.json/);
  assert.equal(await timeoutOf(client), 12345);
  assert.equal(changed.count(), 1);
});

test("SIGHUP over stdio: the SDK client hears tools/list_changed", async () => {
  const dir = makeProject();
  const { client, transport } = await stdioClient(dir);
  const changed = listChanged(client);
  await client.ping();  // the server has seen notifications/initialized
  writeConfig(dir, withLimits({ timeoutMs: 23456 })(readConfig(dir)));
  const heard = changed.next();
  process.kill(transport.pid, "SIGHUP");
  await heard;
  assert.equal(await timeoutOf(client), 23456);
});

// VmRSS of `pid` in KiB.
const rssKb = (pid) => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))[1]);

test("a GET stream whose client never reads is dropped; the server's memory stays bounded", async () => {
  const s = await server();
  const raw = await rawSession(s.url);

  // A raw socket that sends the GET, sees the response head, then never reads again.
  const sock = net.connect({ host: s.host, port: s.port });
  cleanups.push(async () => sock.destroy());
  const head = Object.entries(sseHeaders(raw)).map(([k, v]) => `${k}: ${v}\r\n`).join("");
  sock.write(`GET /mcp HTTP/1.1\r\nhost: ${s.host}:${s.port}\r\n${head}\r\n`);
  const first = await withTimeout(new Promise((resolve) => sock.once("data", resolve)), 5000, "head");
  sock.pause();
  assert.match(first.toString(), /^HTTP\/1\.1 200 /);

  // Each SIGHUP sends one tools/list_changed event: send far more than the socket buffers and
  // the server's backlog cap hold. A new SIGHUP goes out whenever a reload is logged (signals
  // sent while one is pending merge into it, so two are kept in flight).
  const rss0 = rssKb(s.proc.pid);
  let rssMax = rss0;
  let reloads = 0;
  let dropped = false;
  let partial = "";
  const onLog = (d) => {
    const lines = (partial + d).split("\n");
    partial = lines.pop();
    for (const line of lines) {
      dropped ||= line.includes("dropping an event stream: its client is not reading");
      if (!line.includes("config reloaded") || dropped) continue;
      if (++reloads % 1000 === 0) rssMax = Math.max(rssMax, rssKb(s.proc.pid));
      s.proc.kill("SIGHUP");
    }
  };
  s.proc.stderr.on("data", onLog);
  s.proc.kill("SIGHUP");
  s.proc.kill("SIGHUP");
  const t0 = Date.now();
  while (!dropped && Date.now() - t0 < 60000) await sleep(50);
  s.proc.stderr.off("data", onLog);
  assert.ok(dropped, `the stream was dropped (after ${reloads} reloads)`);
  const grownMb = (rssMax - rss0) / 1024;
  assert.ok(grownMb < 16, `RSS grew by ${grownMb.toFixed(1)} MB over ${reloads} events`);

  // The session may open a new stream; the server is fine.
  let again;
  for (let i = 0; i < 50 && again !== 200; i++) {
    const r = await fetch(s.url, { headers: sseHeaders(raw), signal: AbortSignal.timeout(5000) });
    again = r.status;
    await r.body.cancel();
    if (again !== 200) await sleep(50);
  }
  assert.equal(again, 200);
  assert.equal((await raw.post({ jsonrpc: "2.0", id: 1, method: "ping" })).status, 200);
});
