// The server's own HTTP surface under attack and under load, through the real binary: DNS
// rebinding forms of Host and Origin, a client flooding the run slots, the session cap, stalled
// and silent connections, clients that leave or never read, and graceful shutdown (HTTP and
// stdio). Floods are bounded in count and time.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import http from "node:http";
import net from "node:net";
import path from "node:path";
import { after, before, describe, test } from "node:test";

import {
  BIN,
  FIXTURES,
  PROTOCOL,
  makeProject,
  post,
  rawSession,
  runProcessesOnHost,
  sleep,
  startServer,
  waitExit,
  withTimeout,
} from "./lib.mjs";

// One request with exactly the given headers (fetch forbids setting Host). Resolves
// { status, headers, text, json }.
function rawHttp(port, { method = "GET", path: target = "/", headers = {}, body = "" } = {}) {
  return withTimeout(
    new Promise((resolve, reject) => {
      const req = http.request(
        { host: "127.0.0.1", port, method, path: target, headers, agent: false, setHost: false },
        (res) => {
          let text = "";
          res.setEncoding("utf8").on("data", (d) => (text += d));
          res.on("end", () => {
            let json;
            try {
              json = JSON.parse(text);
            } catch {}
            resolve({ status: res.statusCode, headers: res.headers, text, json });
          });
        },
      );
      req.on("error", reject);
      req.end(body);
    }),
    10000,
    `${method} ${target}`,
  );
}

const initBody = JSON.stringify({
  jsonrpc: "2.0",
  id: 1,
  method: "initialize",
  params: { protocolVersion: PROTOCOL, capabilities: {}, clientInfo: { name: "fd", version: "1" } },
});

const call = (id, code, extra = {}) => ({
  jsonrpc: "2.0",
  id,
  method: "tools/call",
  params: { name: "run_js", arguments: { code, ...extra } },
});

const sleepCode = (ms, then = "") => `await new Promise(r => setTimeout(r, ${ms})); ${then}`;

describe("Host and Origin", () => {
  let server;
  before(async () => {
    server = await startServer({
      dir: makeProject((c) => {
        c.server = { allowedHosts: ["mcp.test", "localhost:9000"], allowedOrigins: ["http://localhost:6274"] };
      }),
    });
  });
  after(() => server?.stop());

  test("every DNS rebinding form is refused on every route", async () => {
    const p = server.port;
    const hosts = [
      `127.evil.com:${p}`, `127.0.0.1.nip.io:${p}`, `localhost.evil.com:${p}`, `attacker.localhost:${p}`,
      `127.EVIL.com:${p}`, `LocalHost.Evil.Com:${p}`, `localhost.:${p}`, `127.0.0.1.:${p}`,
      `[::ffff:127.0.0.1]:${p}`, `[0:0:0:0:0:0:0:1]:${p}`, `[::ffff:7f00:1]:${p}`, `2130706433:${p}`,
      `127.1:${p}`, `0x7f.0.0.1:${p}`, `localhost:${p + 1}`, `mcp.test.evil.com:${p}`, `evilmcp.test:${p}`,
    ];
    const routes = [
      { method: "POST", path: "/mcp", body: initBody, headers: { "content-type": "application/json" } },
      { method: "GET", path: "/types/index.d.ts" },
      { method: "GET", path: "/" },
      { method: "GET", path: `/capsules/${"0".repeat(64)}/manifest.json` },
      { method: "GET", path: "/mcps" },
    ];
    for (const host of hosts) {
      for (const r of routes) {
        // The page's own origin, as a rebinding attack sends it.
        const res = await rawHttp(p, { ...r, headers: { ...r.headers, host, origin: `http://${host}` } });
        assert.equal(res.status, 403, `${r.method} ${r.path} with Host ${host}: ${res.text}`);
        const alone = await rawHttp(p, { ...r, headers: { ...r.headers, host } });
        assert.equal(alone.status, 403, `${r.method} ${r.path} with Host ${host} and no Origin`);
      }
    }
    // /health stays open (it says nothing).
    assert.equal((await rawHttp(p, { path: "/health", headers: { host: `127.evil.com:${p}` } })).status, 200);
  });

  test("loopback names with the port, and listed hosts and origins, are served", async () => {
    const p = server.port;
    const ok = async (headers) => {
      const res = await rawHttp(p, {
        method: "POST",
        path: "/mcp",
        body: initBody,
        headers: { "content-type": "application/json", ...headers },
      });
      assert.equal(res.status, 200, `${JSON.stringify(headers)}: ${res.text}`);
    };
    for (const host of [`localhost:${p}`, `127.0.0.1:${p}`, `[::1]:${p}`, `LOCALHOST:${p}`, "mcp.test", `mcp.test:${p}`, "localhost:9000"]) {
      await ok({ host });
    }
    await ok({ host: `127.0.0.1:${p}`, origin: `http://127.0.0.1:${p}` });
    await ok({ host: `127.0.0.1:${p}`, origin: `http://localhost:${p}` });
    await ok({ host: `127.0.0.1:${p}`, origin: "http://localhost:6274" });
    await ok({ host: "mcp.test", origin: "https://mcp.test" });
    for (const origin of ["http://localhost:3000", "null", `http://127.0.0.1:${p}/x`, "https://localhost:6274"]) {
      const res = await rawHttp(p, {
        method: "POST",
        path: "/mcp",
        body: initBody,
        headers: { "content-type": "application/json", host: `127.0.0.1:${p}`, origin },
      });
      assert.equal(res.status, 403, origin);
      assert.match(res.json.error.message, /server\.allowedOrigins/);
    }
  });
});

describe("fair admission", () => {
  let server;
  before(async () => {
    server = await startServer({
      dir: makeProject((c) => {
        // 4 slots, one per client; a client may queue 6 more.
        c.server = { runSlots: 4, maxQueuedRunsPerClient: 6 };
      }),
    });
  });
  after(() => server?.stop());

  test("a client flooding the run slots does not delay another client's call", async () => {
    const flood = await rawSession(server.url);
    const other = await rawSession(server.url);
    const pending = [];
    for (let i = 0; i < 7; i++) pending.push(flood.post(call(100 + i, sleepCode(8000, "1")), {}, 30000));
    // One runs and 6 wait: the flooder's next call finds its queue full, a retryable JSON-RPC
    // error, HTTP 429. The 7 may not all have reached the server yet (a busy machine): a probe
    // that is not refused at once was admitted in the place of one of them, which will then be
    // refused; probe again until one is.
    let refused;
    for (let id = 200; !refused; id++) {
      assert.ok(id < 220, "the flooder's queue never filled");
      const probe = flood.post(call(id, "1"), {}, 30000);
      const r = await Promise.race([probe, sleep(1000).then(() => null)]);
      if (r?.status === 429) refused = r;
      else pending.push(probe);
    }
    assert.equal(refused.status, 429, refused.text);
    assert.equal(refused.headers.get("retry-after"), "1");
    assert.ok(refused.json.id >= 200, refused.text);
    assert.equal(refused.json.error.code, -32000);
    assert.equal(refused.json.error.data.retryable, true);
    // Another client's trivial calls run at once, in the slots the flooder may not take.
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      const r = await other.post(call(300 + i, `console.log(${i})`));
      const ms = performance.now() - t0;
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.result.structuredContent.stdout, `${i}\n`);
      assert.ok(ms < 2000, `call ${i} took ${ms.toFixed(0)} ms while another client flooded`);
    }
    // Ending the flooder's session cancels its runs; each still gets an answer.
    const del = await fetch(server.url, { method: "DELETE", headers: { "mcp-session-id": flood.sid } });
    assert.equal(del.status, 200);
    const answers = await withTimeout(Promise.all(pending), 20000, "the flood's answers");
    for (const a of answers) assert.ok([200, 404, 429].includes(a.status), a.text);
  });

  test("POST /mcps-rpc never takes a run slot", async () => {
    const dir = makeProject((c) => {
      c.server = { runSlots: 1 };
      c.policy.limits.timeoutMs = 4000;
      c.mcps = [{ name: "flaky", transport: "stdio", command: "node", args: [path.join(FIXTURES, "stdio_server.mjs")] }];
    });
    const s = await startServer({ dir });
    try {
      // Wait until the upstream is ready.
      for (let i = 0; i < 100; i++) {
        const l = await fetch(`${s.base}/mcps`).then((r) => r.json());
        if (l.mcps[0].status === "ready") break;
        await sleep(100);
      }
      const hung = [];
      for (let i = 0; i < 4; i++) {
        hung.push(post(`${s.base}/mcps-rpc`, { mcp: "flaky", tool: "hang", params: {} }, {}, 15000));
      }
      await sleep(200);
      const session = await rawSession(s.url);
      const t0 = performance.now();
      const r = await session.post(call(1, "console.log('free')"));
      assert.equal(r.json.result.structuredContent.stdout, "free\n");
      assert.ok(performance.now() - t0 < 2000, "a run waited behind hung upstream calls");
      for (const h of await Promise.all(hung)) assert.equal(h.status, 504, h.text);
    } finally {
      await s.stop();
    }
  });
});

describe("sessions", () => {
  test("at the session cap the least recently used idle session is evicted", async () => {
    const server = await startServer({ dir: makeProject((c) => void (c.server = { maxSessions: 3 })) });
    try {
      const busy = await rawSession(server.url);
      const running = busy.post(call(1, sleepCode(3000, "console.log('kept')")), {}, 20000);
      await sleep(200);
      const sessions = [];
      for (let i = 0; i < 6; i++) sessions.push(await rawSession(server.url));
      const ping = (s) => s.post({ jsonrpc: "2.0", id: 9, method: "ping" });
      // The newest idle sessions and the busy one remain; older idle ones were evicted.
      for (const s of sessions.slice(0, 4)) assert.equal((await ping(s)).status, 404);
      for (const s of sessions.slice(4)) assert.equal((await ping(s)).status, 200);
      assert.equal((await ping(busy)).status, 200);
      assert.equal((await running).json.result.structuredContent.stdout, "kept\n");
    } finally {
      await server.stop();
    }
  });
});

describe("graceful shutdown", () => {
  test("SIGTERM: calls in flight finish, those past the grace period get an error, then exit", async () => {
    const server = await startServer({ dir: makeProject((c) => void (c.server = { shutdownGraceMs: 2500 })) });
    const session = await rawSession(server.url);
    const quick = session.post(call(1, sleepCode(1000, "console.log('finished')")), {}, 20000);
    const slow = session.post(call(2, sleepCode(30000, "console.log('never')")), {}, 20000);
    // A listening client's GET stream ends with the shutdown instead of holding it up.
    const stream = await fetch(server.url, {
      headers: { accept: "text/event-stream", "mcp-session-id": session.sid, "mcp-protocol-version": PROTOCOL },
    });
    assert.equal(stream.status, 200);
    const streamEnded = (async () => {
      for await (const _ of stream.body);
    })();
    await sleep(300);
    const t0 = performance.now();
    server.proc.kill("SIGTERM");
    await sleep(200);
    // No new connection is accepted while draining.
    await assert.rejects(
      () => fetch(server.url, { method: "POST", body: "{}", signal: AbortSignal.timeout(3000) }),
      "a new connection was accepted after SIGTERM",
    );
    const q = await quick;
    assert.equal(q.status, 200, q.text);
    assert.equal(q.json.result.structuredContent.stdout, "finished\n");
    const s = await slow;
    assert.equal(s.status, 503, s.text);
    assert.equal(s.json.id, 2);
    assert.equal(s.json.error.code, -32003);
    assert.match(s.json.error.message, /shutting down/);
    const exit = await waitExit(server.proc, 10000, "server exit");
    assert.equal(exit.code, 0);
    const ms = performance.now() - t0;
    assert.ok(ms > 2300 && ms < 5000, `exit ${ms.toFixed(0)} ms after SIGTERM (grace 2500 ms)`);
    await withTimeout(streamEnded, 1000, "the GET stream's end");
    assert.deepEqual(runProcessesOnHost(server.proc.pid), []);
  });

  test("over stdio the same", async () => {
    const dir = makeProject((c) => void (c.server = { shutdownGraceMs: 2000 }));
    const proc = spawn(BIN, ["serve", "--stdio", "--dir", dir], { stdio: ["pipe", "pipe", "pipe"] });
    let err = "";
    proc.stderr.setEncoding("utf8").on("data", (d) => (err += d));
    const replies = new Map();
    let buf = "";
    proc.stdout.setEncoding("utf8").on("data", (d) => {
      buf += d;
      for (let i; (i = buf.indexOf("\n")) >= 0; ) {
        const msg = JSON.parse(buf.slice(0, i));
        buf = buf.slice(i + 1);
        if (msg.id !== undefined) replies.set(msg.id, msg);
      }
    });
    const send = (m) => proc.stdin.write(JSON.stringify(m) + "\n");
    const until = async (cond, ms, what) => {
      const deadline = Date.now() + ms;
      while (!cond()) {
        if (Date.now() > deadline) throw new Error(`${what} not within ${ms} ms; stderr:\n${err}`);
        await sleep(20);
      }
    };
    try {
      send(JSON.parse(initBody));
      await until(() => replies.has(1), 20000, "initialize");
      send({ jsonrpc: "2.0", method: "notifications/initialized" });
      send(call(2, sleepCode(800, "console.log('finished')")));
      send(call(3, sleepCode(30000, "console.log('never')")));
      await sleep(300);
      proc.kill("SIGTERM");
      await until(() => replies.has(2) && replies.has(3), 10000, "both answers");
      assert.equal(replies.get(2).result.structuredContent.stdout, "finished\n");
      assert.equal(replies.get(3).error.code, -32003);
      const exit = await waitExit(proc, 10000, "stdio server exit");
      assert.equal(exit.code, 0);
    } finally {
      proc.kill("SIGKILL");
    }
  });
});

describe("connections", () => {
  let server;
  before(async () => {
    server = await startServer({
      dir: makeProject((c) => void (c.server = { readTimeoutMs: 1500, writeTimeoutMs: 1500 })),
    });
  });
  after(() => server?.stop());

  // Opens `n` connections that send a request header announcing a body that never comes.
  async function stalled(n, localAddress = "127.0.0.1") {
    const socks = [];
    for (let i = 0; i < n; i++) {
      const s = net.connect({ host: "127.0.0.1", port: server.port, localAddress });
      s.on("error", () => {});
      socks.push(s);
      await new Promise((resolve) => s.once("connect", resolve));
      s.write(`POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n`);
    }
    return socks;
  }

  test("stalled connections cannot lock other clients out", async () => {
    const socks = [...(await stalled(300)), ...(await stalled(215, "127.0.0.2"))];
    try {
      await sleep(200);
      const t0 = performance.now();
      const res = await post(server.url, JSON.parse(initBody), {}, 5000);
      assert.equal(res.status, 200, res.text);
      assert.ok(performance.now() - t0 < 2000, "a new client waited behind stalled connections");
      // The stalled ones are closed once the read timeout passes.
      const closed = () => socks.filter((s) => s.destroyed || s.readableEnded).length;
      const deadline = Date.now() + 8000;
      while (closed() < socks.length && Date.now() < deadline) await sleep(100);
      assert.equal(closed(), socks.length, "stalled connections still open after the read timeout");
    } finally {
      for (const s of socks) s.destroy();
    }
  });

  test("an answer its client does not read is dropped after the write timeout", async () => {
    const session = await rawSession(server.url);
    const sock = net.connect({ host: "127.0.0.1", port: server.port });
    sock.on("error", () => {});
    await new Promise((resolve) => sock.once("connect", resolve));
    sock.pause();  // never read: the kernel's buffers fill, then the server's write stalls
    const body = JSON.stringify(call(8, "console.log('x'.repeat(2000000))"));
    sock.write(
      `POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\nContent-Type: application/json\r\n` +
        `Accept: application/json\r\nMcp-Session-Id: ${session.sid}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
    // The run ends at once; its ~2 MB answer stalls; 1.5 s later the server gives it up.
    await sleep(5000);
    let got = 0;
    const ended = new Promise((resolve) => {
      sock.on("data", (d) => (got += d.length));
      sock.on("end", resolve);
      sock.on("close", resolve);
    });
    sock.resume();
    await withTimeout(ended, 5000, "the connection's end");
    assert.ok(got > 0 && got < 1500000, `read ${got} bytes of an answer the server should have dropped`);
    sock.destroy();
  });

  test("a client that leaves mid-call has its run cancelled", async () => {
    const session = await rawSession(server.url);
    const sock = net.connect({ host: "127.0.0.1", port: server.port });
    await new Promise((resolve) => sock.once("connect", resolve));
    const body = JSON.stringify(call(7, sleepCode(60000, "1"), { policy: { limits: { timeoutMs: 120000 } } }));
    sock.write(
      `POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\nContent-Type: application/json\r\n` +
        `Accept: application/json\r\nMcp-Session-Id: ${session.sid}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
    const deadline = Date.now() + 10000;
    while (runProcessesOnHost(server.proc.pid).length === 0 && Date.now() < deadline) await sleep(50);
    assert.ok(runProcessesOnHost(server.proc.pid).length > 0, "the run did not start");
    sock.destroy();
    const t0 = Date.now();
    while (runProcessesOnHost(server.proc.pid).length > 0 && Date.now() - t0 < 5000) await sleep(50);
    assert.deepEqual(runProcessesOnHost(server.proc.pid), [], "the run outlived its client");
  });
});
