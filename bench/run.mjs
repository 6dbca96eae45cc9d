#!/usr/bin/env node
// 1mcp benchmark: start-to-ready time, per-call latency over loopback, throughput with 8
// concurrent clients, per-run sandbox overhead (sandboxed vs --insecure-no-sandbox, interleaved)
// and kill latency past a 200 ms deadline, for trivial run_js and run_py calls. Raw JSON-RPC
// over node:http with keep-alive agents, so the numbers are the server's, not an SDK's.
//
//   node bench/run.mjs [--bin build/1mcp] [--quick] [--starts 5] [--calls 200] [--warmup 20]
//     [--clients 8] [--seconds 10] [--max-calls 2000] [--overhead-calls 200] [--block 20]
//     [--kill-runs 100] [--kill-timeout 200] [--json out.json]      (see bench/README.md)
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const REPO = fileURLToPath(new URL("../", import.meta.url));

// ------------------------------------------------------------------------------------------
// Options

function parseArgs(argv) {
  const o = {
    bin: null,
    starts: 5,
    calls: 200,
    warmup: 20,
    clients: 8,
    seconds: 10,
    maxCalls: 2000,
    overheadCalls: 200,
    block: 20,
    killRuns: 100,
    killTimeout: 200,
    quick: false,
    json: null,
  };
  // --quick: a smoke run with small counts; explicit flags still win.
  const QUICK = { starts: 2, calls: 30, warmup: 5, seconds: 2, maxCalls: 300, overheadCalls: 40, block: 10, killRuns: 10 };
  const explicit = new Set();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    const num = (k) => {
      const n = Number(val());
      if (!Number.isFinite(n) || n < 0) throw new Error(`${a} needs a non-negative number`);
      o[k] = n;
      explicit.add(k);
    };
    switch (a) {
      case "--bin": o.bin = val(); break;
      case "--quick": o.quick = true; break;
      case "--starts": num("starts"); break;
      case "--calls": num("calls"); break;
      case "--warmup": num("warmup"); break;
      case "--clients": num("clients"); break;
      case "--seconds": num("seconds"); break;
      case "--max-calls": num("maxCalls"); break;
      case "--overhead-calls": num("overheadCalls"); break;
      case "--block": num("block"); break;
      case "--kill-runs": num("killRuns"); break;
      case "--kill-timeout": num("killTimeout"); break;
      case "--json": o.json = val(); break;
      case "-h":
      case "--help":
        console.log(fs.readFileSync(fileURLToPath(import.meta.url), "utf8").split("\n").slice(1, 9)
          .map((l) => l.replace(/^\/\/ ?/, "")).join("\n"));
        process.exit(0);
      default:
        throw new Error(`unknown argument ${a}`);
    }
  }
  if (o.quick) for (const [k, v] of Object.entries(QUICK)) if (!explicit.has(k)) o[k] = v;
  if (o.block < 1 || o.killTimeout < 1) throw new Error("--block and --kill-timeout must be ≥ 1");
  if (!o.bin) {
    o.bin = ["build/1mcp", "build-e2e/1mcp"].map((p) => path.join(REPO, p)).find((p) => fs.existsSync(p));
    if (!o.bin) throw new Error("no 1mcp binary found; pass --bin <path>");
  }
  o.bin = path.resolve(o.bin);
  return o;
}

// ------------------------------------------------------------------------------------------
// Statistics

function percentile(sorted, p) {
  if (!sorted.length) return NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx];
}

function summarize(samples) {
  const s = [...samples].sort((a, b) => a - b);
  return {
    n: s.length,
    p50: percentile(s, 50),
    p95: percentile(s, 95),
    p99: percentile(s, 99),
    min: s[0],
    max: s[s.length - 1],
    mean: s.reduce((a, b) => a + b, 0) / (s.length || 1),
  };
}

const median = (xs) => summarize(xs).p50;
const fmt = (ms) => (Number.isFinite(ms) ? (ms < 10 ? ms.toFixed(2) : ms.toFixed(1)) : "n/a");

// ------------------------------------------------------------------------------------------
// Server process

const tmpDirs = [];
const children = new Set();
function cleanup() {
  for (const c of children) c.kill("SIGKILL");
  for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true });
}
process.on("exit", cleanup);
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => process.exit(130));

function projectDir(bin) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "1mcp-bench-"));
  tmpDirs.push(dir);
  const r = spawnSync(bin, ["init", "--dir", dir], { encoding: "utf8", timeout: 15000 });
  if (r.status !== 0) throw new Error(`1mcp init failed: ${r.stderr}`);
  return dir;
}

const READY_RE = /ready in ([\d.]+) ms: MCP endpoint http:\/\/([^\s/]+):(\d+)\/mcp/;

// Spawns the server; resolves { proc, port, selfReadyMs, spawnedAt } once the ready line shows.
// `extra` is appended to the serve arguments (e.g. ["--insecure-no-sandbox"]).
function startServer(bin, dir, extra = [], timeoutMs = 30000) {
  return new Promise((resolve, reject) => {
    const spawnedAt = performance.now();
    const proc = spawn(bin, ["serve", "--dir", dir, "-p", "0", "--no-ui", ...extra], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    children.add(proc);
    proc.on("exit", () => children.delete(proc));
    let err = "";
    const timer = setTimeout(() => {
      proc.kill("SIGKILL");
      reject(new Error(`server not ready after ${timeoutMs} ms:\n${err}`));
    }, timeoutMs);
    proc.stderr.setEncoding("utf8").on("data", (d) => {
      err += d;
      const m = READY_RE.exec(err);
      if (m && timer) {
        clearTimeout(timer);
        resolve({ proc, port: Number(m[3]), host: m[2], selfReadyMs: Number(m[1]), spawnedAt });
      }
    });
    proc.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${code}) before ready:\n${err}`));
    });
  });
}

function stopServer(proc) {
  return new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
    const k = setTimeout(() => proc.kill("SIGKILL"), 3000);
    proc.once("exit", () => {
      clearTimeout(k);
      resolve();
    });
    proc.kill("SIGTERM");
  });
}

// ------------------------------------------------------------------------------------------
// HTTP

function httpRequest({ port, agent, method = "POST", path: p = "/mcp", headers = {}, body }) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: "127.0.0.1", port, path: p, method, agent, headers },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () =>
          resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString("utf8") }),
        );
        res.on("error", reject);
      },
    );
    req.setTimeout(30000, () => req.destroy(new Error("request timed out")));
    req.on("error", reject);
    req.end(body);
  });
}

// One MCP session on its own keep-alive connection.
class RawClient {
  constructor(port) {
    this.port = port;
    this.agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    this.nextId = 1;
    this.sid = null;
  }

  headers(len) {
    const h = {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      "content-length": len,
    };
    if (this.sid) {
      h["mcp-session-id"] = this.sid;
      h["mcp-protocol-version"] = "2025-06-18";
    }
    return h;
  }

  async send(msg) {
    const body = JSON.stringify(msg);
    return httpRequest({ port: this.port, agent: this.agent, headers: this.headers(Buffer.byteLength(body)), body });
  }

  async init() {
    const r = await this.send({
      jsonrpc: "2.0",
      id: 0,
      method: "initialize",
      params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "1mcp-bench", version: "1" } },
    });
    if (r.status !== 200) throw new Error(`initialize: HTTP ${r.status} ${r.body}`);
    this.sid = r.headers["mcp-session-id"];
    const n = await this.send({ jsonrpc: "2.0", method: "notifications/initialized" });
    if (n.status !== 202) throw new Error(`initialized: HTTP ${n.status}`);
    return this;
  }

  // Calls a tool with `args`; resolves the client-side wall time in ms (request sent → end of
  // the response body), the HTTP status, the raw body and the structuredContent (if any).
  async callTool(tool, args) {
    const t0 = performance.now();
    const r = await this.send({
      jsonrpc: "2.0",
      id: this.nextId++,
      method: "tools/call",
      params: { name: tool, arguments: args },
    });
    const ms = performance.now() - t0;
    let sc;
    try {
      sc = JSON.parse(r.body).result?.structuredContent;
    } catch {}
    return { ms, status: r.status, body: r.body, sc };
  }

  // Calls a tool with `code`; resolves the wall time in ms and whether the result was right.
  async call(tool, code, expectStdout) {
    const r = await this.callTool(tool, { code });
    const ok = r.status === 200 && r.sc?.outcome === "ok" && r.sc.stdout === expectStdout;
    return { ms: r.ms, ok, body: r.body, durationMs: r.sc?.durationMs };
  }

  async close() {
    await httpRequest({ port: this.port, agent: this.agent, method: "DELETE", headers: { "mcp-session-id": this.sid } }).catch(() => {});
    this.agent.destroy();
  }
}

const WORKLOADS = [
  { tool: "run_js", code: "console.log(1+1)", expect: "2\n" },
  { tool: "run_py", code: "print(1+1)", expect: "2\n" },
];

// Busy loops for the kill-latency measurement: they never yield, so only a kill ends them.
const SPIN = { run_js: "while(true){}", run_py: "while True: pass" };

// ------------------------------------------------------------------------------------------
// Measurements

async function measureStartup(opts) {
  const toFirstResponse = [];
  const selfReported = [];
  for (let i = 0; i < opts.starts; i++) {
    const dir = projectDir(opts.bin);
    const s = await startServer(opts.bin, dir);
    // The port is only known from the ready line, so poll from then on until a 200.
    let res;
    for (let tries = 0; tries < 200; tries++) {
      res = await httpRequest({ port: s.port, method: "GET", path: "/" }).catch(() => null);
      if (res?.status === 200) break;
      await new Promise((r) => setTimeout(r, 2));
    }
    if (res?.status !== 200) throw new Error("server never answered GET /");
    toFirstResponse.push(performance.now() - s.spawnedAt);
    selfReported.push(s.selfReadyMs);
    await stopServer(s.proc);
  }
  return { firstResponse: summarize(toFirstResponse), selfReported: summarize(selfReported), raw: toFirstResponse };
}

async function measureLatency(port, opts) {
  const out = {};
  const client = await new RawClient(port).init();
  for (const w of WORKLOADS) {
    let failures = 0;
    for (let i = 0; i < opts.warmup; i++) {
      const r = await client.call(w.tool, w.code, w.expect);
      if (!r.ok) throw new Error(`${w.tool} warm-up call failed: ${r.body.slice(0, 500)}`);
    }
    const samples = [];
    for (let i = 0; i < opts.calls; i++) {
      const r = await client.call(w.tool, w.code, w.expect);
      if (!r.ok) failures++;
      samples.push(r.ms);
    }
    out[w.tool] = { ...summarize(samples), failures };
  }
  await client.close();
  return out;
}

async function measureThroughput(port, opts) {
  const out = {};
  for (const w of WORKLOADS) {
    const clients = await Promise.all(Array.from({ length: opts.clients }, () => new RawClient(port).init()));
    for (const c of clients) await c.call(w.tool, w.code, w.expect); // warm each connection
    const samples = [];
    let failures = 0;
    let issued = 0;
    const t0 = performance.now();
    const deadline = t0 + opts.seconds * 1000;
    await Promise.all(
      clients.map(async (c) => {
        while (performance.now() < deadline && issued < opts.maxCalls) {
          issued++;
          const r = await c.call(w.tool, w.code, w.expect);
          samples.push(r.ms);
          if (!r.ok) failures++;
        }
      }),
    );
    const elapsed = (performance.now() - t0) / 1000;
    await Promise.all(clients.map((c) => c.close()));
    out[w.tool] = { ...summarize(samples), failures, seconds: elapsed, perSecond: samples.length / elapsed };
  }
  return out;
}

// Per-run sandbox overhead: the same trivial calls against a sandboxed server and one started
// with --insecure-no-sandbox, in alternating blocks of `block` calls, one call in flight at a
// time overall. Block order alternates (A B, B A, A B, …) so neither server systematically runs
// first after a switch, and slow drift of the machine (other load, frequency, caches) lands on
// both sides equally instead of on whichever ran second.
async function measureOverhead(portSandboxed, portInsecure, opts) {
  const out = {};
  const sides = [
    { name: "sandboxed", client: await new RawClient(portSandboxed).init() },
    { name: "unsandboxed", client: await new RawClient(portInsecure).init() },
  ];
  for (const w of WORKLOADS) {
    const samples = { sandboxed: [], unsandboxed: [] };
    const serverMs = { sandboxed: [], unsandboxed: [] }; // structuredContent.durationMs
    const failures = { sandboxed: 0, unsandboxed: 0 };
    for (const s of sides) {
      for (let i = 0; i < opts.warmup; i++) {
        const r = await s.client.call(w.tool, w.code, w.expect);
        if (!r.ok) throw new Error(`${w.tool} warm-up call (${s.name}) failed: ${r.body.slice(0, 500)}`);
      }
    }
    for (let b = 0; samples.sandboxed.length < opts.overheadCalls; b++) {
      const order = b % 2 === 0 ? sides : [sides[1], sides[0]];
      const n = Math.min(opts.block, opts.overheadCalls - samples.sandboxed.length);
      for (const s of order) {
        for (let i = 0; i < n; i++) {
          const r = await s.client.call(w.tool, w.code, w.expect);
          if (!r.ok) failures[s.name]++;
          samples[s.name].push(r.ms);
          if (Number.isFinite(r.durationMs)) serverMs[s.name].push(r.durationMs);
        }
      }
    }
    const sb = { ...summarize(samples.sandboxed), failures: failures.sandboxed };
    const un = { ...summarize(samples.unsandboxed), failures: failures.unsandboxed };
    const ssb = summarize(serverMs.sandboxed);
    const sun = summarize(serverMs.unsandboxed);
    out[w.tool] = {
      sandboxed: sb,
      unsandboxed: un,
      p50Diff: sb.p50 - un.p50,
      p95Diff: sb.p95 - un.p95,
      server: { sandboxed: ssb, unsandboxed: sun, p50Diff: ssb.p50 - sun.p50 },
    };
  }
  for (const s of sides) await s.client.close();
  return out;
}

// Kill latency: a busy loop with policy.limits.timeoutMs = opts.killTimeout, run sequentially.
// Client side: wall time of the call minus the timeout, i.e. how long after the deadline the
// result is back. Server side: structuredContent.durationMs minus the timeout.
async function measureKill(port, opts) {
  const out = {};
  const client = await new RawClient(port).init();
  const T = opts.killTimeout;
  for (const w of WORKLOADS) {
    const args = { code: SPIN[w.tool], policy: { limits: { timeoutMs: T } } };
    const check = (r) => r.status === 200 && r.sc?.outcome === "timeout";
    for (let i = 0; i < Math.min(3, opts.killRuns); i++) {
      const r = await client.callTool(w.tool, args);
      if (!check(r)) throw new Error(`${w.tool} kill warm-up did not time out: ${r.body.slice(0, 500)}`);
    }
    const client_ = [];
    const server = [];
    let failures = 0;
    for (let i = 0; i < opts.killRuns; i++) {
      const r = await client.callTool(w.tool, args);
      if (!check(r)) failures++;
      client_.push(r.ms - T);
      if (Number.isFinite(r.sc?.durationMs)) server.push(r.sc.durationMs - T);
    }
    out[w.tool] = { client: summarize(client_), server: summarize(server), failures };
  }
  await client.close();
  return out;
}

// ------------------------------------------------------------------------------------------
// Report

function machine() {
  const cpus = os.cpus();
  let nproc = String(os.availableParallelism?.() ?? cpus.length);
  const r = spawnSync("nproc", { encoding: "utf8" });
  if (r.status === 0) nproc = r.stdout.trim();
  return {
    nproc,
    cpu: cpus[0]?.model?.trim() ?? "unknown",
    logicalCpus: cpus.length,
    memGiB: (os.totalmem() / 2 ** 30).toFixed(1),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
  };
}

function report(opts, m, startup, latency, throughput, overhead, kill, version) {
  const pass = (ok) => (ok ? "✅" : "❌");
  const L = [];
  L.push(`## 1mcp benchmark`);
  L.push("");
  L.push(`- binary: \`${opts.bin}\`${version ? ` (${version})` : ""}`);
  L.push(`- machine: nproc ${m.nproc}, ${m.logicalCpus} logical CPUs, ${m.cpu}, ${m.memGiB} GiB RAM, ${m.kernel}, node ${m.node}`);
  L.push(`- method: loopback HTTP/1.1 keep-alive, raw JSON-RPC; latency = client-side wall time per call`);
  L.push("");
  L.push("| metric | result | target | |");
  L.push("|---|---|---|---|");
  const sr = startup.selfReported;
  L.push(`| start → first HTTP 200 (median of ${startup.firstResponse.n}) | ${fmt(startup.firstResponse.p50)} ms (min ${fmt(startup.firstResponse.min)}, max ${fmt(startup.firstResponse.max)}) | < 300 ms | ${pass(startup.firstResponse.p50 < 300)} |`);
  L.push(`| self-reported "ready in" (median) | ${fmt(sr.p50)} ms | | |`);
  for (const w of WORKLOADS) {
    const l = latency[w.tool];
    const target = w.tool === "run_js" ? 2 : 5;
    L.push(`| ${w.tool} latency p50 / p95 / p99 (${l.n} sequential calls) | ${fmt(l.p50)} / ${fmt(l.p95)} / ${fmt(l.p99)} ms${l.failures ? ` (${l.failures} failed)` : ""} | p50 < ${target} ms | ${pass(l.p50 < target && !l.failures)} |`);
  }
  for (const w of WORKLOADS) {
    const t = throughput[w.tool];
    const target = w.tool === "run_js" ? "≥ 300 calls/s" : "";
    const ok = w.tool === "run_js" ? pass(t.perSecond >= 300 && !t.failures) : "";
    L.push(`| ${w.tool} throughput, ${opts.clients} clients (${t.n} calls in ${t.seconds.toFixed(1)} s) | ${t.perSecond.toFixed(0)} calls/s, p50 ${fmt(t.p50)} ms, p95 ${fmt(t.p95)} ms${t.failures ? ` (${t.failures} failed)` : ""} | ${target} | ${ok} |`);
  }
  const failed = (n) => (n ? `, ${n} failed` : "");
  for (const w of WORKLOADS) {
    const o = overhead[w.tool];
    const sb = o.sandboxed;
    const un = o.unsandboxed;
    const bad = sb.failures + un.failures;
    L.push(`| ${w.tool} sandbox overhead, p50 sandboxed − unsandboxed (${sb.n} + ${un.n} calls, interleaved blocks of ${opts.block}) | ${fmt(o.p50Diff)} ms (sandboxed p50/p95 ${fmt(sb.p50)} / ${fmt(sb.p95)} ms, unsandboxed ${fmt(un.p50)} / ${fmt(un.p95)} ms${failed(bad)}) | < 2 ms | ${pass(o.p50Diff < 2 && !bad)} |`);
  }
  for (const w of WORKLOADS) {
    const s = overhead[w.tool].server;
    L.push(`| ${w.tool} sandbox overhead, server-side durationMs p50 sandboxed − unsandboxed | ${fmt(s.p50Diff)} ms (${fmt(s.sandboxed.p50)} vs ${fmt(s.unsandboxed.p50)} ms) | | |`);
  }
  for (const w of WORKLOADS) {
    const k = kill[w.tool];
    const c = k.client;
    L.push(`| ${w.tool} kill latency past a ${opts.killTimeout} ms deadline, p50 / p95 / p99 / max (${c.n} runs) | ${fmt(c.p50)} / ${fmt(c.p95)} / ${fmt(c.p99)} / ${fmt(c.max)} ms${failed(k.failures)} | p99 < 250 ms | ${pass(c.p99 < 250 && !k.failures)} |`);
  }
  for (const w of WORKLOADS) {
    const s = kill[w.tool].server;
    L.push(`| ${w.tool} kill, server-side durationMs − ${opts.killTimeout}, p50 / p99 (${s.n} runs) | ${fmt(s.p50)} / ${fmt(s.p99)} ms | | |`);
  }
  return L.join("\n");
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const m = machine();
  const v = spawnSync(opts.bin, ["--version"], { encoding: "utf8" });
  const version = (v.stdout || v.stderr || "").trim();
  const log = (s) => process.stderr.write(s + "\n");

  log(`start-to-ready: ${opts.starts} starts…`);
  const startup = await measureStartup(opts);

  const s = await startServer(opts.bin, projectDir(opts.bin));
  let insecure;
  try {
    log(`latency: ${opts.warmup} warm-up + ${opts.calls} sequential calls per tool…`);
    const latency = await measureLatency(s.port, opts);
    log(`throughput: ${opts.clients} clients, ${opts.seconds} s or ${opts.maxCalls} calls per tool…`);
    const throughput = await measureThroughput(s.port, opts);
    log(`kill latency: ${opts.killRuns} busy loops per tool with timeoutMs ${opts.killTimeout}…`);
    const kill = await measureKill(s.port, opts);
    // The unsandboxed server is started only now, so it sits idle through none of the above.
    insecure = await startServer(opts.bin, projectDir(opts.bin), ["--insecure-no-sandbox"]);
    log(`sandbox overhead: ${opts.overheadCalls} calls per tool per server, alternating blocks of ${opts.block}…`);
    const overhead = await measureOverhead(s.port, insecure.port, opts);
    console.log(report(opts, m, startup, latency, throughput, overhead, kill, version));
    if (opts.json) {
      fs.writeFileSync(
        opts.json,
        JSON.stringify({ machine: m, options: opts, startup, latency, throughput, overhead, kill }, null, 2),
      );
    }
  } finally {
    if (insecure) await stopServer(insecure.proc);
    await stopServer(s.proc);
  }
}

main().catch((e) => {
  console.error(`bench failed: ${e.stack ?? e}`);
  process.exitCode = 1;
});
