#!/usr/bin/env node
// Where a run's time and page faults go: starts the server with --profile-runs, so every result
// carries when each step of the run ended (supervisor, zygote and the run's own process, on one
// monotonic clock) and the run process's minor page faults since its fork; makes --calls
// sequential trivial calls per runtime after --warmup; prints per step the median time since the
// previous step and the median page faults taken in it. Steps of the run slot (made before the
// call came, see sandbox/executor.h) are marked "ahead of the call".
//
//   node bench/steps.mjs [--bin build/1mcp] [--calls 100] [--warmup 10] [--unique] [--load N]
//     [--mcps N] [--json out.json]
// --unique: every call's code differs (a new capsule per call), instead of the same code.
// --load N: N busy processes run meanwhile (agents' machines are busy).
// --mcps N: one upstream MCP server (stdio) with N tools, so every run may call upstream tools and
//   mounts its /mcps tree (code mode; N ≤ 100).
// A step that not every call had (a call that found no ready slot makes its own) says in how many.
import fs from "node:fs";
import path from "node:path";

import { PRINT_CODE, REPO, RawClient, fmt, httpRequest, machine, median, parseOptions, projectDir, startLoad, startServer, stopServer } from "./lib.mjs";

function parseArgs(argv) {
  const o = parseOptions(argv, { bin: path.join(REPO, "build/1mcp"), calls: 100, warmup: 10, unique: false, load: 0, mcps: 0, json: null },
    { number: { ok: () => true, what: "" } });  // checked below
  o.bin = path.resolve(o.bin);
  if (!(o.calls >= 1) || !(o.warmup >= 0) || !(o.load >= 0) || !(o.mcps >= 0 && o.mcps <= 100))
    throw new Error("--calls must be ≥ 1, --warmup and --load ≥ 0, --mcps 0..100");
  return o;
}


async function measure(client, tool, opts) {
  const perStep = new Map();  // name -> { us: [], faults: [] }, in order of first appearance
  let total = [];
  const critical = [];  // µs from "supervisor: run requested" to "supervisor: result ready"
  for (let i = 0; i < opts.warmup + opts.calls; i++) {
    const n = opts.unique ? i + 1000 * Math.floor(Math.random() * 1e6) : 2;
    const r = await client.callTool(tool, { code: PRINT_CODE[tool](n) });
    const steps = JSON.parse(r.body).result?._meta?.["io.1mcp/steps"];
    if (r.sc?.outcome !== "ok" || r.sc.stdout !== `${n}\n` || !Array.isArray(steps)) {
      throw new Error(`${tool} call failed or carried no steps (is --profile-runs supported?): ${r.body.slice(0, 400)}`);
    }
    if (i < opts.warmup) continue;
    total.push(r.ms);
    const at = (name) => steps.find((s) => s.step === name)?.atUs;
    const requested = at("supervisor: run requested");
    if (requested !== undefined && at("supervisor: result ready") !== undefined) critical.push(at("supervisor: result ready") - requested);
    let prevUs = 0;
    let prevFaults = 0;
    for (const s of steps) {
      // Steps of the run's slot, made before the call came, are off its path.
      const name = requested !== undefined && s.atUs < requested ? `${s.step} (ahead of the call)` : s.step;
      if (!perStep.has(name)) perStep.set(name, { us: [], faults: [] });
      const e = perStep.get(name);
      e.us.push(s.atUs - prevUs);
      prevUs = s.atUs;
      if (s.minflt !== null) {
        e.faults.push(s.minflt - prevFaults);
        prevFaults = s.minflt;
      }
    }
  }
  return {
    callMs: median(total),
    pathUs: critical.length ? median(critical) : null,
    steps: [...perStep].map(([name, e]) => ({ name, us: median(e.us), faults: e.faults.length ? median(e.faults) : null, n: e.us.length })),
  };
}

// Until the upstream answered its tool list (GET /mcps says "ready").
async function upstreamReady(port) {
  const deadline = Date.now() + 20000;
  while (Date.now() < deadline) {
    const r = await httpRequest({ port, method: "GET", path: "/mcps" }).catch(() => null);
    if (r?.status === 200 && JSON.parse(r.body).mcps?.every((m) => m.status === "ready")) return;
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error("the upstream did not become ready within 20 s");
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const m = machine();
  const upstream = (cfg) => {
    const fixture = path.join(REPO, "tests/fixtures/upstream/many_tools.mjs");
    cfg.mcps = [{ name: "tools", transport: "stdio", command: process.execPath, args: [fixture, String(opts.mcps)] }];
  };
  const s = await startServer(opts.bin, projectDir(opts.bin, opts.mcps > 0 ? upstream : undefined), ["--profile-runs"]);
  if (opts.mcps > 0) await upstreamReady(s.port);
  const out = {};
  const stopLoad = opts.load > 0 ? startLoad(opts.load) : () => {};
  try {
    const client = await new RawClient(s.port).init();
    for (const tool of ["run_js", "run_py"]) {
      process.stderr.write(`${tool}: ${opts.warmup} + ${opts.calls} calls…\n`);
      out[tool] = await measure(client, tool, opts);
    }
    await client.close();
  } finally {
    stopLoad();
    await stopServer(s.proc);
  }
  const L = [];
  L.push(`## 1mcp run steps (${opts.unique ? "unique code per call" : "the same code every call"})`);
  L.push("");
  L.push(`- binary: \`${opts.bin}\` with --profile-runs; machine: nproc ${m.nproc}, ${m.cpu}, ${m.kernel}, load ${m.load}`);
  L.push(`- medians of ${opts.calls} sequential calls per runtime; a step's time is from the end of the step before it` +
    (opts.load > 0 ? `; ${opts.load} busy processes running meanwhile` : "") +
    (opts.mcps > 0 ? `; one upstream with ${opts.mcps} tools (every run mounts its /mcps tree)` : ""));
  for (const tool of ["run_js", "run_py"]) {
    const r = out[tool];
    L.push("");
    L.push(`### ${tool}: call p50 ${fmt(r.callMs)} ms (client side)`);
    L.push("");
    if (r.pathUs !== null) {
      L.push(`Run requested → result ready in the supervisor: p50 ${r.pathUs.toFixed(0)} µs (the rest of the call is HTTP, JSON-RPC, the capsule and the client).`);
      L.push("");
    }
    L.push("| step (ends when) | µs | page faults |");
    L.push("|---|---|---|");
    for (const st of r.steps) {
      const some = st.n < opts.calls ? ` (${st.n} of ${opts.calls} calls)` : "";
      L.push(`| ${st.name}${some} | ${st.us.toFixed(0)} | ${st.faults === null ? "" : st.faults.toFixed(0)} |`);
    }
  }
  console.log(L.join("\n"));
  if (opts.json) fs.writeFileSync(opts.json, JSON.stringify({ machine: m, options: opts, ...out }, null, 2));
}

main().catch((e) => {
  console.error(`bench failed: ${e.stack ?? e}`);
  process.exitCode = 1;
});
