#!/usr/bin/env node
// What python.preload costs and saves: for each preload set, a server is started with it and
// measured for start-to-ready, PSS of its process tree when idle, a trivial run_py call p50 (every
// run forks the zygote: a bigger zygote makes every call's fork dearer), and the p50 of calls
// that use the data stack (import pandas and build a DataFrame; draw a plot shown as an image).
//
//   node bench/preload.mjs [--bin build/1mcp] [--calls 60] [--heavy 10] [--json out.json]
import fs from "node:fs";
import path from "node:path";

import { REPO, RawClient, fmt, machine, parseOptions, projectDir, startServer, stopServer, summarize, treePssKiB } from "./lib.mjs";

const SETS = [[], ["pandas"], ["matplotlib.pyplot"], ["pandas", "matplotlib.pyplot"]];

const WORKLOADS = {
  trivial: { code: "print(2)", stdout: "2\n" },
  pandas: { code: "import pandas as pd\nprint(len(pd.DataFrame({'x': range(100)})))", stdout: "100\n" },
  plot: {
    code: "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.show()\nprint('ok')",
    stdout: "ok\n",
    check: (sc) => (sc.files ?? []).some((f) => f.path === "figure-1.png"),
  },
};

async function measure(client, w, n) {
  const ms = [];
  for (let i = 0; i < n; i++) {
    const r = await client.callTool("run_py", { code: w.code });
    if (r.sc?.outcome !== "ok" || r.sc.stdout !== w.stdout || (w.check && !w.check(r.sc))) {
      throw new Error(`wrong answer: ${r.body.slice(0, 600)}`);
    }
    ms.push(r.ms);
  }
  return summarize(ms).p50;
}

async function main() {
  const o = parseOptions(process.argv.slice(2), { bin: path.join(REPO, "build/1mcp"), calls: 60, heavy: 10, json: null },
    { number: { ok: () => true, what: "" } });
  o.bin = path.resolve(o.bin);
  const rows = [];
  for (const preload of SETS) {
    const dir = projectDir(o.bin, (c) => void (c.python = { preload }));
    const t0 = performance.now();
    const s = await startServer(o.bin, dir, [], 60000);
    const readyMs = performance.now() - t0;
    const client = await new RawClient(s.port).init();
    try {
      await measure(client, WORKLOADS.trivial, 10);  // warm-up; slots filled
      await new Promise((r) => setTimeout(r, 500));
      const pssMiB = treePssKiB(s.proc.pid) / 1024;
      const row = { preload, readyMs, pssMiB };
      row.trivial = await measure(client, WORKLOADS.trivial, o.calls);
      row.pandas = await measure(client, WORKLOADS.pandas, o.heavy);
      row.plot = await measure(client, WORKLOADS.plot, o.heavy);
      rows.push(row);
      process.stderr.write(`${JSON.stringify(row)}\n`);
    } finally {
      await client.close();
      await stopServer(s.proc);
    }
  }
  const m = machine();
  console.log(`## python.preload (${new Date().toISOString().slice(0, 16)} UTC, ${m.cpu}, load ${m.load})\n`);
  console.log("| python.preload | ready | PSS idle | trivial run_py p50 | pandas call p50 | plot call p50 |");
  console.log("|---|---|---|---|---|---|");
  for (const r of rows) {
    console.log(`| ${r.preload.length ? r.preload.map((x) => `\`${x}\``).join(", ") : "none"} | ${fmt(r.readyMs)} ms | ` +
      `${r.pssMiB.toFixed(1)} MiB | ${fmt(r.trivial)} ms | ${fmt(r.pandas)} ms | ${fmt(r.plot)} ms |`);
  }
  if (o.json) fs.writeFileSync(o.json, JSON.stringify(rows, null, 2));
}

main().catch((e) => {
  console.error(e.stack ?? String(e));
  process.exitCode = 1;
});
