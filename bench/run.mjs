#!/usr/bin/env node
// 1mcp benchmark: start-to-ready time, per-call latency over loopback, throughput with 8
// concurrent clients, per-run sandbox overhead (sandboxed vs --insecure-no-sandbox, interleaved)
// and kill latency past a 200 ms deadline (busy loops) and a 2 s deadline (a Python fork bomb).
// Raw JSON-RPC over node:http with keep-alive agents, so the numbers are the server's, not an SDK's.
//
//   node bench/run.mjs [--bin build/1mcp] [--quick] [--starts 5] [--calls 200] [--warmup 20]
//     [--clients 8] [--seconds 10] [--max-calls 2000] [--overhead-calls 200] [--block 20]
//     [--kill-runs 100] [--kill-timeout 200] [--bomb-runs 10] [--bomb-timeout 2000]
//     [--json out.json]                                               (see bench/README.md)
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import { fileURLToPath } from "node:url";

import { RawClient, findBin, fmt, httpRequest, machine, parseOptions, projectDir, startServer, stopServer, summarize } from "./lib.mjs";

// ------------------------------------------------------------------------------------------
// Options

function parseArgs(argv) {
  if (argv.includes("-h") || argv.includes("--help")) {
    console.log(fs.readFileSync(fileURLToPath(import.meta.url), "utf8").split("\n").slice(1, 10)
      .map((l) => l.replace(/^\/\/ ?/, "")).join("\n"));
    process.exit(0);
  }
  const o = parseOptions(argv, {
    bin: null, starts: 5, calls: 200, warmup: 20, clients: 8, seconds: 10, maxCalls: 2000,
    overheadCalls: 200, block: 20, killRuns: 100, killTimeout: 200, bombRuns: 10, bombTimeout: 2000,
    json: null,
  }, {
    // --quick: a smoke run with small counts; explicit flags still win.
    quick: { starts: 2, calls: 30, warmup: 5, seconds: 2, maxCalls: 300, overheadCalls: 40, block: 10, killRuns: 10, bombRuns: 3 },
  });
  if (o.block < 1 || o.killTimeout < 1 || o.bombTimeout < 1) {
    throw new Error("--block, --kill-timeout and --bomb-timeout must be ≥ 1");
  }
  o.bin = findBin(o.bin);
  return o;
}

const WORKLOADS = [
  { tool: "run_js", code: "console.log(1+1)", expect: "2\n" },
  { tool: "run_py", code: "print(1+1)", expect: "2\n" },
];

// Busy loops for the kill-latency measurement: they never yield, so only a kill ends them.
const SPIN = { run_js: "while(true){}", run_py: "while True: pass" };
// Every process forks in a loop until the run's pids cap (128 tasks) refuses: a full pid table
// of busy processes, each in and out of fork(), for the kernel to tear down at the deadline.
const FORK_BOMB = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass";

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
  // The fork bomb: fewer runs, each spends its whole (longer) deadline forking.
  const T2 = opts.bombTimeout;
  const bomb = { client: [], server: [], failures: 0 };
  for (let i = 0; i < opts.bombRuns; i++) {
    const r = await client.callTool("run_py", { code: FORK_BOMB, policy: { limits: { timeoutMs: T2 } } });
    if (!(r.status === 200 && r.sc?.outcome === "timeout")) bomb.failures++;
    bomb.client.push(r.ms - T2);
    if (Number.isFinite(r.sc?.durationMs)) bomb.server.push(r.sc.durationMs - T2);
  }
  out.bomb = { client: summarize(bomb.client), server: summarize(bomb.server), failures: bomb.failures };
  await client.close();
  return out;
}

// ------------------------------------------------------------------------------------------
// Report

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
  if (kill.bomb.client.n) {
    const b = kill.bomb.client;
    const s = kill.bomb.server;
    L.push(`| run_py fork bomb kill latency past a ${opts.bombTimeout} ms deadline, p50 / max (${b.n} runs) | ${fmt(b.p50)} / ${fmt(b.max)} ms${failed(kill.bomb.failures)} (server-side ${fmt(s.p50)} / ${fmt(s.max)} ms) | p50 < 250 ms | ${pass(b.p50 < 250 && !kill.bomb.failures)} |`);
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
    log(`kill latency: ${opts.killRuns} busy loops per tool with timeoutMs ${opts.killTimeout}, ` +
      `${opts.bombRuns} fork bombs with timeoutMs ${opts.bombTimeout}…`);
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
