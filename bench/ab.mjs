#!/usr/bin/env node
// A/B of two 1mcp binaries (or one binary under two environments): both servers run at once,
// and sequential calls alternate between them in blocks of 10 (which goes first alternates too),
// so that whatever else the machine does falls on both alike. Reports p50/p95 per workload and
// the ratio of the p50s (B ÷ A). Every answer is checked.
//
//   node bench/ab.mjs [--bin build/1mcp] [--a BIN] [--b BIN] [--a-env K=V,...] [--b-env K=V,...]
//     [--calls 400] [--tools run_js,run_py] [--load N]
// --a / --b: the binaries (both --bin unless given).
// --a-env / --b-env: variables set for that server only (e.g. to compare a setting).
// --load N: N busy processes run meanwhile.
import path from "node:path";

import { PRINT_CODE, REPO, RawClient, fmt, median, parseOptions, percentile, projectDir, startLoad, startServer, stopServer } from "./lib.mjs";

const o = parseOptions(process.argv.slice(2), {
  bin: path.join(REPO, "build/1mcp"), a: null, b: null, aEnv: "", bEnv: "",
  calls: 400, tools: "run_js,run_py", load: 0,
});
o.a ??= o.bin;
o.b ??= o.bin;
const BLOCK = 10;
const tools = o.tools.split(",");
for (const t of tools) if (!PRINT_CODE[t]) throw new Error(`--tools: unknown tool ${t}`);

async function start(bin, env) {
  const saved = { ...process.env };
  for (const kv of env.split(",").filter(Boolean)) {
    const i = kv.indexOf("=");
    process.env[i < 0 ? kv : kv.slice(0, i)] = i < 0 ? "1" : kv.slice(i + 1);
  }
  try {
    const s = await startServer(path.resolve(bin), projectDir(path.resolve(bin)));
    return { s, client: await new RawClient(s.port).init() };
  } finally {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  }
}

const A = await start(o.a, o.aEnv);
const B = await start(o.b, o.bEnv);
const stopLoad = o.load > 0 ? startLoad(o.load) : () => {};
const rows = [];
try {
  for (const tool of tools) {
    for (const unique of [false, true]) {
      const ms = { a: [], b: [] };
      const call = async (side, record) => {
        const n = unique ? Math.floor(Math.random() * 1e9) : 2;
        const r = await side.client.call(tool, PRINT_CODE[tool](n), `${n}\n`);
        if (!r.ok) throw new Error(`${tool} failed: ${r.body.slice(0, 300)}`);
        if (record) ms[side === A ? "a" : "b"].push(r.ms);
      };
      for (let i = 0; i < BLOCK; i++) {
        await call(A, false);
        await call(B, false);
      }
      for (let blk = 0; blk < Math.ceil(o.calls / BLOCK); blk++) {
        for (const side of blk % 2 ? [A, B] : [B, A]) for (let j = 0; j < BLOCK; j++) await call(side, true);
      }
      const p = (xs, q) => percentile([...xs].sort((x, y) => x - y), q);
      rows.push(`| ${unique ? "unique-code" : "trivial"} \`${tool}\` | ${fmt(p(ms.a, 50))} / ${fmt(p(ms.a, 95))} ms | ` +
        `${fmt(p(ms.b, 50))} / ${fmt(p(ms.b, 95))} ms | ${(median(ms.b) / median(ms.a)).toFixed(2)}× |`);
    }
  }
} finally {
  stopLoad();
  await stopServer(A.s.proc);
  await stopServer(B.s.proc);
}
console.log(`A: ${o.a}${o.aEnv ? ` (${o.aEnv})` : ""}; B: ${o.b}${o.bEnv ? ` (${o.bEnv})` : ""}; ` +
  `${o.calls} sequential calls per workload and server${o.load ? `, ${o.load} busy processes` : ""}\n`);
console.log("| workload | A p50 / p95 | B p50 / p95 | B ÷ A (p50) |\n|---|---|---|---|\n" + rows.join("\n"));
process.exit(0);
