#!/usr/bin/env node
// Side by side with the original Node/TypeScript 1mcp (QuickJS and Pyodide as WASM, one
// process), built by bench/original.sh: both servers run in the same run on the same machine,
// driven by the same raw JSON-RPC client over loopback HTTP keep-alive. Every answer is checked:
// calls whose code varies print a unique token that must come back; calls with the same code
// every time must print the known value. Only correct answers count.
//
// Phases, each reported as original / ours / ratio:
//   - ready: spawn to the first HTTP 200 to `initialize`;
//   - sequential p50/p95: trivial (the same code every call) and unique-code `run_js` and
//     `run_py`, interleaved in blocks of --block calls (A B, B A, ...), quiet and then again
//     while --load busy processes run (agents' machines are busy);
//   - a CPU-bound call per runtime (p50 of --cpu-calls);
//   - throughput of correct answers with 8 and 32 calls in flight (one session per caller);
//   - PSS summed over each server's process tree: idle after start, and the peak while loaded;
//   - page faults per call: minor faults of the whole process tree (each process's own and
//     those of its reaped children, so a forked run counts) over a sequential phase.
//
//   node bench/vs-original.mjs [--bin build/1mcp] [--original "NODE CLI"] [--calls 100]
//     [--block 10] [--warmup 10] [--seconds 10] [--cpu-calls 5] [--load 2] [--quick]
//     [--only ours|original] [--json out.json]
// Without --original, bench/original.sh builds the original into build/original (once).
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import path from "node:path";

import { REPO, fmt, httpRequest, machine, parseOptions, projectDir, settle, startLoad, startServer, stopServer, summarize, treePids, treePssKiB } from "./lib.mjs";

// ------------------------------------------------------------------------------------------
// Options

function parseArgs(argv) {
  const o = parseOptions(argv, {
    bin: null, original: null, calls: 100, block: 10, warmup: 10, seconds: 10, cpuCalls: 5, load: 2,
    only: null, json: null,
  }, { quick: { calls: 20, block: 5, warmup: 3, seconds: 2, cpuCalls: 2 } });
  if (o.block < 1 || o.calls < 1) throw new Error("--block and --calls must be ≥ 1");
  if (o.only && !["ours", "original"].includes(o.only)) throw new Error("--only is ours or original");
  o.bin = path.resolve(o.bin ?? path.join(REPO, "build/1mcp"));
  if (!fs.existsSync(o.bin)) throw new Error(`no 1mcp binary at ${o.bin}; pass --bin`);
  return o;
}

// ------------------------------------------------------------------------------------------
// The two servers

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function startOurs(opts) {
  const s = await startServer(opts.bin, projectDir(opts.bin));
  return { name: "ours", proc: s.proc, port: s.port, readyMs: performance.now() - s.spawnedAt };
}

async function startOriginal(opts) {
  let cmd = opts.original;
  if (!cmd) {
    const r = spawnSync(path.join(REPO, "bench/original.sh"), [], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
    if (r.status !== 0) throw new Error("bench/original.sh failed");
    cmd = r.stdout.trim();
  }
  const [node, cli] = cmd.split(" ");
  const dir = projectDir(opts.bin);  // an empty directory is all it needs; its init writes its own config
  fs.rmSync(path.join(dir, "1mcp.config.json"), { force: true });
  const init = spawnSync(node, [cli, "init", "--dir", dir], { encoding: "utf8", timeout: 60000 });
  if (init.status !== 0) throw new Error(`original init failed: ${init.stderr}`);
  const port = await freePort();
  const t0 = performance.now();
  // --bind: it rewrites 127.0.0.1 to 0.0.0.0 on container-like hosts otherwise.
  const proc = spawn(node, [cli, "serve", "--dir", dir, "--port", String(port), "--bind", "localhost", "--no-ui"], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  process.on("exit", () => proc.kill("SIGKILL"));
  let err = "";
  proc.stderr.setEncoding("utf8").on("data", (d) => (err = (err + d).slice(-16384)));  // a bounded tail
  for (let i = 0; i < 3000; i++) {
    if (proc.exitCode !== null) throw new Error(`original exited before ready:\n${err}`);
    const r = await httpRequest({ port, agent: false, headers: jsonHeaders(), body: JSON.stringify(INIT) }).catch(() => null);
    if (r?.status === 200) return { name: "original", proc, port, readyMs: performance.now() - t0 };
    await new Promise((res) => setTimeout(res, 10));
  }
  proc.kill("SIGKILL");
  throw new Error(`original not ready after 30 s:\n${err}`);
}

// ------------------------------------------------------------------------------------------
// Client: the same for both. initialize first, keeping a session id when one is returned.

const INIT = {
  jsonrpc: "2.0", id: 0, method: "initialize",
  params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "1mcp-vs-original", version: "1" } },
};

function jsonHeaders(sid, len) {
  const h = { "content-type": "application/json", accept: "application/json, text/event-stream" };
  if (len !== undefined) h["content-length"] = len;
  if (sid) {
    h["mcp-session-id"] = sid;
    h["mcp-protocol-version"] = "2025-06-18";
  }
  return h;
}

class Client {
  constructor(port) {
    this.port = port;
    this.agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    this.sid = null;
    this.id = 1;
  }
  async send(msg) {
    const body = JSON.stringify(msg);
    return httpRequest({ port: this.port, agent: this.agent, headers: jsonHeaders(this.sid, Buffer.byteLength(body)), body });
  }
  async init() {
    const r = await this.send(INIT);
    if (r.status !== 200) throw new Error(`initialize: HTTP ${r.status} ${r.body.slice(0, 300)}`);
    this.sid = r.headers["mcp-session-id"] ?? null;
    await this.send({ jsonrpc: "2.0", method: "notifications/initialized" });
    return this;
  }
  // One tools/call; ok only when the answer is a result, not an error, and its text contains
  // `expect`.
  async call(tool, code, expect) {
    const t0 = performance.now();
    const r = await this.send({ jsonrpc: "2.0", id: this.id++, method: "tools/call", params: { name: tool, arguments: { code } } });
    const ms = performance.now() - t0;
    let ok = false;
    try {
      const res = JSON.parse(r.body).result;
      const text = (res?.content ?? []).map((c) => c.text ?? "").join("\n");
      ok = r.status === 200 && res && !res.isError && text.includes(expect);
    } catch {}
    return { ms, ok, body: r.body };
  }
  close() {
    if (this.sid) {
      httpRequest({ port: this.port, agent: false, method: "DELETE", headers: jsonHeaders(this.sid) }).catch(() => {});
    }
    this.agent.destroy();
  }
}

// ------------------------------------------------------------------------------------------
// Workloads

let tokenSeq = 0;
const token = () => `tok${process.pid}x${++tokenSeq}x${Math.random().toString(36).slice(2, 8)}`;

const WORKLOADS = {
  "run_js trivial": { tool: "run_js", make: () => ({ code: 'console.log("ok-" + (6 * 7))', expect: "ok-42" }) },
  "run_js unique": { tool: "run_js", make: () => { const t = token(); return { code: `console.log("${t}")`, expect: t }; } },
  "run_py trivial": { tool: "run_py", make: () => ({ code: 'print("ok-" + str(6 * 7))', expect: "ok-42" }) },
  "run_py unique": { tool: "run_py", make: () => { const t = token(); return { code: `print("${t}")`, expect: t }; } },
};
const CPU = {
  run_js: { code: "let s = 0; for (let i = 0; i < 3e7; i++) s += i % 7; console.log(s)", expect: String((() => { let s = 0; for (let i = 0; i < 3e7; i++) s += i % 7; return s; })()) },
  run_py: { code: "s = 0\nfor i in range(3 * 10**6):\n    s += i % 7\nprint(s)", expect: String((() => { let s = 0; for (let i = 0; i < 3e6; i++) s += i % 7; return s; })()) },
};

// ------------------------------------------------------------------------------------------
// Process tree: minor faults, from /proc (PSS: lib.mjs)

function treeMinflt(root) {
  let n = 0;
  for (const p of treePids(root)) {
    try {
      const stat = fs.readFileSync(`/proc/${p}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      n += Number(f[7]) + Number(f[8]);  // minflt, cminflt (fields 10 and 11)
    } catch {}
  }
  return n;
}

// Samples the peak PSS of each server's tree every 200 ms while `fn` runs.
async function withPeakPss(servers, fn) {
  const peak = Object.fromEntries(servers.map((s) => [s.name, 0]));
  const sample = () => { for (const s of servers) peak[s.name] = Math.max(peak[s.name], treePssKiB(s.proc.pid)); };
  const timer = setInterval(sample, 200);
  try {
    await fn();
  } finally {
    clearInterval(timer);
  }
  sample();
  return peak;
}

// ------------------------------------------------------------------------------------------
// Phases

// Sequential calls of every workload, interleaved between the servers in blocks.
async function sequential(servers, opts) {
  const clients = Object.fromEntries(await Promise.all(servers.map(async (s) => [s.name, await new Client(s.port).init()])));
  const out = {};
  for (const [name, w] of Object.entries(WORKLOADS)) {
    const ms = Object.fromEntries(servers.map((s) => [s.name, []]));
    const bad = Object.fromEntries(servers.map((s) => [s.name, 0]));
    const faults = Object.fromEntries(servers.map((s) => [s.name, 0]));
    for (const s of servers) {
      for (let i = 0; i < opts.warmup; i++) {
        const { code, expect } = w.make();
        const r = await clients[s.name].call(w.tool, code, expect);
        if (!r.ok) throw new Error(`${s.name} ${name} warm-up call failed: ${r.body.slice(0, 400)}`);
      }
    }
    for (let b = 0; ms[servers[0].name].length < opts.calls; b++) {
      const order = b % 2 === 0 ? servers : [...servers].reverse();
      const n = Math.min(opts.block, opts.calls - ms[servers[0].name].length);
      for (const s of order) {
        const f0 = treeMinflt(s.proc.pid);
        for (let i = 0; i < n; i++) {
          const { code, expect } = w.make();
          const r = await clients[s.name].call(w.tool, code, expect);
          if (r.ok) ms[s.name].push(r.ms);
          else bad[s.name]++;
        }
        faults[s.name] += treeMinflt(s.proc.pid) - f0;
      }
    }
    out[name] = Object.fromEntries(servers.map((s) => [s.name, {
      ...summarize(ms[s.name]), wrong: bad[s.name], faultsPerCall: faults[s.name] / opts.calls,
    }]));
  }
  for (const c of Object.values(clients)) c.close();
  return out;
}

async function cpuBound(servers, opts) {
  const out = {};
  for (const [tool, w] of Object.entries(CPU)) {
    out[tool] = {};
    for (const s of servers) {
      const c = await new Client(s.port).init();
      const ms = [];
      let bad = 0;
      for (let i = 0; i < opts.cpuCalls; i++) {
        const r = await c.call(tool, w.code, w.expect);
        if (r.ok) ms.push(r.ms);
        else bad++;
      }
      c.close();
      out[tool][s.name] = { ...summarize(ms), wrong: bad };
    }
  }
  return out;
}

// `inFlight` callers, each its own session, for opts.seconds per server and runtime; unique
// tokens, so a mixed-up answer is caught.
async function throughput(server, tool, inFlight, opts) {
  const clients = await Promise.all(Array.from({ length: inFlight }, () => new Client(server.port).init()));
  let good = 0;
  let bad = 0;
  const deadline = performance.now() + opts.seconds * 1000;
  const t0 = performance.now();
  await Promise.all(clients.map(async (c) => {
    while (performance.now() < deadline) {
      const t = token();
      const code = tool === "run_js" ? `console.log("${t}")` : `print("${t}")`;
      const r = await c.call(tool, code, t).catch(() => ({ ok: false }));
      if (r.ok) good++;
      else bad++;
    }
  }));
  const seconds = (performance.now() - t0) / 1000;
  for (const c of clients) c.close();
  return { perSecond: good / seconds, good, bad, seconds };
}

// ------------------------------------------------------------------------------------------
// Report

const ratio = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && a > 0 ? (b / a).toFixed(2) + "×" : "n/a");

function report(opts, m, r) {
  const names = r.servers;
  const both = names.length === 2;
  const L = [];
  L.push("## 1mcp side by side with the original");
  L.push("");
  L.push(`- ours: \`${opts.bin}\`; original: ${r.originalCmd ?? "not run"}`);
  L.push(`- machine: nproc ${m.nproc}, ${m.cpu}, ${m.memGiB} GiB, ${m.kernel}, node ${m.node}; load before: ${r.loadBefore}`);
  L.push(`- ${opts.calls} sequential calls per workload and server after ${opts.warmup} warm-up calls, interleaved in blocks of ${opts.block}; ` +
    `background load: ${opts.load} busy processes; throughput: ${opts.seconds} s per server, runtime and level; ` +
    `each phase starts once the machine is idle (${r.settledMs} ms after the throughput phase)`);
  L.push("");
  L.push(`| metric | ${names.join(" | ")} |${both ? " ours ÷ original |" : ""}`);
  L.push(`|---|${names.map(() => "---").join("|")}|${both ? "---|" : ""}`);
  const row = (label, get, fmtv = fmt, unitless = false) => {
    const v = names.map((n) => get(n));
    const cells = v.map((x) => (typeof x === "string" ? x : fmtv(x) + (unitless ? "" : " ms")));
    L.push(`| ${label} | ${cells.join(" | ")} |${both ? ` ${ratio(get("original"), get("ours"))} |` : ""}`);
  };
  row("ready (spawn → first 200 to initialize)", (n) => r.ready[n]);
  for (const [phase, label] of [["quiet", "quiet"], ["loaded", `under ${opts.load} busy processes`]]) {
    for (const w of Object.keys(WORKLOADS)) {
      const q = r[phase][w];
      row(`${w} p50, ${label}`, (n) => q[n].p50);
      row(`${w} p95, ${label}`, (n) => q[n].p95);
      const wrong = names.filter((n) => q[n].wrong).map((n) => `${n} ${q[n].wrong}`);
      if (wrong.length) L.push(`| ${w}, ${label}: wrong or failed answers | ${wrong.join(", ")} |`);
    }
  }
  for (const w of Object.keys(WORKLOADS)) {
    row(`${w} minor page faults per call (process tree, quiet)`, (n) => r.quiet[w][n].faultsPerCall, (x) => x.toFixed(0), true);
  }
  for (const tool of Object.keys(CPU)) row(`${tool} CPU-bound call p50`, (n) => r.cpu[tool][n].p50);
  for (const tool of ["run_js", "run_py"]) {
    for (const k of [8, 32]) {
      const t = r.throughput[`${tool} ${k}`];
      row(`${tool} correct answers/s, ${k} in flight`, (n) => t[n].perSecond, (x) => x.toFixed(0), true);
      const wrong = names.filter((n) => t[n].bad).map((n) => `${n} ${t[n].bad}`);
      if (wrong.length) L.push(`| ${tool}, ${k} in flight: wrong or failed answers | ${wrong.join(", ")} |`);
    }
  }
  row("PSS of the process tree, idle (MiB)", (n) => r.pssIdle[n] / 1024, (x) => x.toFixed(1), true);
  row("PSS of the process tree, peak under throughput (MiB)", (n) => r.pssPeak[n] / 1024, (x) => x.toFixed(1), true);
  return L.join("\n");
}

// ------------------------------------------------------------------------------------------

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const log = (s) => process.stderr.write(s + "\n");
  const m = machine();
  const r = { loadBefore: m.load };
  const servers = [];
  try {
    if (opts.only !== "ours") {
      log("starting the original (built by bench/original.sh when needed)…");
      servers.push(await startOriginal(opts));
      r.originalCmd = opts.original ?? "bench/original.sh";
    }
    if (opts.only !== "original") servers.push(await startOurs(opts));
    r.servers = servers.map((s) => s.name);
    r.ready = Object.fromEntries(servers.map((s) => [s.name, s.readyMs]));
    await new Promise((res) => setTimeout(res, 1000));  // settled
    r.pssIdle = Object.fromEntries(servers.map((s) => [s.name, treePssKiB(s.proc.pid)]));

    log(`sequential, quiet: ${opts.calls} calls per workload and server…`);
    r.quiet = await sequential(servers, opts);
    await settle();
    log("CPU-bound calls…");
    r.cpu = await cpuBound(servers, opts);
    log(`throughput: 8 and 32 in flight, ${opts.seconds} s each…`);
    r.throughput = {};
    r.pssPeak = await withPeakPss(servers, async () => {
      for (const tool of ["run_js", "run_py"]) {
        for (const k of [8, 32]) {
          r.throughput[`${tool} ${k}`] = {};
          for (const s of servers) {
            await settle();
            r.throughput[`${tool} ${k}`][s.name] = await throughput(s, tool, k, opts);
          }
        }
      }
    });
    r.settledMs = await settle();  // the throughput phase's backlog and teardown, if any
    log(`sequential under ${opts.load} busy processes (after ${r.settledMs} ms for the machine to settle)…`);
    const stopLoad = startLoad(opts.load);
    try {
      r.loaded = await sequential(servers, opts);
    } finally {
      stopLoad();
    }
    console.log(report(opts, m, r));
    if (opts.json) fs.writeFileSync(opts.json, JSON.stringify({ machine: m, options: opts, ...r }, null, 2));
  } finally {
    for (const s of servers) await stopServer(s.proc);
  }
}

main().catch((e) => {
  console.error(`bench failed: ${e.stack ?? e}`);
  process.exitCode = 1;
});
