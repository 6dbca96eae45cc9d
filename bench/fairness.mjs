#!/usr/bin/env node
// 1mcp fairness benchmark: how long one client's trivial call takes while another client floods
// the server. One server with the default config (16 run slots); client A (one MCP session)
// keeps `--flood` calls in flight at all times, each re-sent as soon as it is answered (or
// refused); client B (another session) makes `--calls` sequential trivial `run_js` calls
// (`console.log(1+1)`), whose client-side wall times are reported. Three phases: B alone; A's
// calls sleeping (`setTimeout`, the slots are taken but the CPU is free); A's calls busy-looping
// (slots and CPU taken).
//
//   node bench/fairness.mjs [--bin build/1mcp] [--calls 200] [--warmup 10] [--flood 100]
//     [--flood-ms 1000] [--json out.json]
import fs from "node:fs";

import { RawClient, findBin, fmt, machine, parseOptions, projectDir, startServer, stopServer, summarize } from "./lib.mjs";

function parseArgs(argv) {
  const o = parseOptions(argv, { bin: null, calls: 200, warmup: 10, flood: 100, floodMs: 1000, json: null },
    { number: { ok: (n) => Number.isInteger(n) && n >= 1, what: "a positive integer" } });
  o.bin = findBin(o.bin);
  return o;
}

const FLOODS = {
  sleeping: (ms) => `await new Promise(r => setTimeout(r, ${ms})); 1`,
  "busy-looping": (ms) => `const t = Date.now() + ${ms}; while (Date.now() < t) {} 1`,
};

// Keeps `n` calls of `code` in flight from one session until stopped; counts what came back.
function flood(port, n, code) {
  const a = new RawClient(port, { maxSockets: n });
  const counts = { answered: 0, refused: 0, failed: 0 };
  let stopped = false;
  const loop = async () => {
    while (!stopped) {
      try {
        const r = await a.callTool("run_js", { code, policy: { limits: { timeoutMs: 60000 } } });
        if (stopped) break;  // cancelled by the end of the session: not counted
        if (r.status === 429) {
          counts.refused++;
          await new Promise((res) => setTimeout(res, 100));
        } else if (r.sc?.outcome === "ok") counts.answered++;
        else counts.failed++;
      } catch {
        if (!stopped) counts.failed++;
      }
    }
  };
  let loops;
  return {
    async start() {
      await a.init();
      loops = Array.from({ length: n }, loop);
    },
    async stop() {
      stopped = true;
      await a.close();  // ends the session: its runs are cancelled
      await Promise.allSettled(loops);
      return counts;
    },
  };
}

async function measure(b, opts) {
  const ms = [];
  let failures = 0;
  for (let i = 0; i < opts.warmup + opts.calls; i++) {
    const r = await b.call("run_js", "console.log(1+1)", "2\n");
    if (!r.ok) failures++;
    if (i >= opts.warmup) ms.push(r.ms);
  }
  return { ...summarize(ms), failures };
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const log = (s) => process.stderr.write(s + "\n");
  const s = await startServer(opts.bin, projectDir(opts.bin));
  const rows = [];
  try {
    const b = await new RawClient(s.port).init();
    log(`B alone: ${opts.calls} calls…`);
    rows.push({ phase: "B alone", ...(await measure(b, opts)) });
    for (const [kind, code] of Object.entries(FLOODS)) {
      log(`A floods with ${opts.flood} ${kind} calls of ${opts.floodMs} ms; B: ${opts.calls} calls…`);
      const f = flood(s.port, opts.flood, code(opts.floodMs));
      await f.start();
      await new Promise((res) => setTimeout(res, 500));  // the flood is in place
      const m = await measure(b, opts);
      const counts = await f.stop();
      rows.push({ phase: `A: ${opts.flood} ${kind} calls in flight`, ...m, flood: counts });
    }
    await b.close();
  } finally {
    await stopServer(s.proc);
  }
  const m = machine();
  const L = [];
  L.push(`## 1mcp fairness: client B's trivial run_js while client A floods`);
  L.push("");
  L.push(`- binary: \`${opts.bin}\`, default config (16 run slots)`);
  L.push(`- machine: nproc ${m.nproc}, ${m.cpu}, ${m.kernel}, load ${m.load}`);
  L.push("");
  L.push("| phase | B p50 / p99 / max | A's calls answered / refused (429) |");
  L.push("|---|---|---|");
  for (const r of rows) {
    const a = r.flood ? `${r.flood.answered} / ${r.flood.refused}${r.flood.failed ? ` (${r.flood.failed} failed)` : ""}` : "";
    L.push(`| ${r.phase} | ${fmt(r.p50)} / ${fmt(r.p99)} / ${fmt(r.max)} ms${r.failures ? ` (${r.failures} failed)` : ""} | ${a} |`);
  }
  console.log(L.join("\n"));
  if (opts.json) fs.writeFileSync(opts.json, JSON.stringify({ machine: m, options: opts, rows }, null, 2));
}

main().catch((e) => {
  console.error(`bench failed: ${e.stack ?? e}`);
  process.exitCode = 1;
});
