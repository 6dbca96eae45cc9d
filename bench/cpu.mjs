#!/usr/bin/env node
// CPU time and page faults per call of the whole server (its threads, its workers and every run
// they fork), counted by `perf stat` (Linux perf, attached to the server's process tree, whose
// counters new processes inherit): after 20 warm-up calls, --calls sequential calls per tool.
// Unlike latency, CPU per call hardly depends on what else the machine does.
//
//   node bench/cpu.mjs [--bin build/1mcp] [--calls 300] [--tools run_js,run_py] [--unique]
//     [--record DIR]
// --unique: different code every call (a new capsule each); else `console.log(2)` / `print(2)`.
// --record DIR: `perf record -g` instead of `perf stat`, one DIR/perf-<tool>.data per tool, for
//   `perf report -i ... --sort comm,sym`.
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

import { PRINT_CODE, REPO, RawClient, fmt, median, parseOptions, projectDir, startServer, stopServer, treePids } from "./lib.mjs";

const o = parseOptions(process.argv.slice(2), {
  bin: path.join(REPO, "build/1mcp"), calls: 300, tools: "run_js,run_py", unique: false, record: null,
});
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
if (o.record) fs.mkdirSync(o.record, { recursive: true });

const s = await startServer(path.resolve(o.bin), projectDir(path.resolve(o.bin)));
const lines = [];
try {
  const client = await new RawClient(s.port).init();
  for (const tool of o.tools.split(",")) {
    if (!PRINT_CODE[tool]) throw new Error(`--tools: unknown tool ${tool}`);
    const call = async () => {
      const n = o.unique ? Math.floor(Math.random() * 1e9) : 2;
      const r = await client.call(tool, PRINT_CODE[tool](n), `${n}\n`);
      if (!r.ok) throw new Error(`${tool} failed: ${r.body.slice(0, 300)}`);
      return r.ms;
    };
    for (let i = 0; i < 20; i++) await call();
    await sleep(300);
    const pids = treePids(s.proc.pid).join(",");
    const args = o.record
      ? ["record", "-F", "4000", "-g", "-o", path.join(o.record, `perf-${tool}.data`), "-p", pids]
      : ["stat", "-x,", "-e", "task-clock,page-faults,context-switches", "-p", pids];
    const perf = spawn("perf", args, { stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    perf.stderr.on("data", (d) => (err += d));
    const exited = new Promise((r) => perf.on("exit", r));
    await sleep(300);  // attached
    const ms = [];
    for (let i = 0; i < o.calls; i++) ms.push(await call());
    await sleep(300);  // the last run's exit and teardown
    perf.kill("SIGINT");
    await exited;
    if (o.record) {
      lines.push(`| \`${tool}\` | recorded in ${path.join(o.record, `perf-${tool}.data`)} | | | ${fmt(median(ms))} ms |`);
      continue;
    }
    const v = {};
    for (const l of err.trim().split("\n")) {
      const f = l.split(",");
      if (f.length > 2 && f[0] !== "" && !Number.isNaN(Number(f[0]))) v[f[2]] = Number(f[0]);
    }
    if (v["task-clock"] === undefined) throw new Error(`perf stat gave no counts (is perf installed and allowed?):\n${err}`);
    lines.push(`| \`${tool}\` | ${(v["task-clock"] / o.calls).toFixed(2)} ms | ${(v["page-faults"] / o.calls).toFixed(0)} | ` +
      `${(v["context-switches"] / o.calls).toFixed(1)} | ${fmt(median(ms))} ms |`);
  }
  await client.close();
} finally {
  await stopServer(s.proc);
}
console.log(`${o.calls} sequential ${o.unique ? "unique-code" : "trivial"} calls per tool, ${path.resolve(o.bin)}\n`);
console.log("| tool | CPU per call | page faults per call | context switches per call | call p50 |\n|---|---|---|---|---|\n" + lines.join("\n"));
process.exit(0);
