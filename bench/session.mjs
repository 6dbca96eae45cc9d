#!/usr/bin/env node
// The cost of a call inside a session next to a fresh run: for each runtime, the p50/p95 of a
// trivial call (a) without a session (a fresh sandboxed process per call, taken from the ready
// slots) and (b) in a session (the session's live interpreter: nothing is forked), measured in
// alternating blocks against one server, every answer checked. Also: session_create, the first
// call of a session (its interpreter process and workspace mount are made then), a call that
// uses state left by the previous one (pandas DataFrame kept in the session vs rebuilt), and
// session_close.
//
//   node bench/session.mjs [--bin build/1mcp] [--calls 200] [--json out.json]
import fs from "node:fs";
import path from "node:path";

import { REPO, RawClient, fmt, machine, parseOptions, projectDir, startServer, stopServer, summarize } from "./lib.mjs";

const TRIVIAL = {
  run_js: { code: (i) => `console.log(${i} + 1)`, stdout: (i) => `${i + 1}\n` },
  run_py: { code: (i) => `print(${i} + 1)`, stdout: (i) => `${i + 1}\n` },
};

async function call(client, tool, args, check) {
  const r = await client.callTool(tool, args);
  if (r.sc === undefined || (tool.startsWith("run_") && r.sc.outcome !== "ok") || !check(r.sc)) {
    throw new Error(`wrong answer from ${tool}: ${r.body.slice(0, 600)}`);
  }
  return r;
}

async function main() {
  const o = parseOptions(process.argv.slice(2), { bin: path.join(REPO, "build/1mcp"), calls: 200, json: null },
    { number: { ok: () => true, what: "" } });
  o.bin = path.resolve(o.bin);
  const dir = projectDir(o.bin, (c) => void (c.python = { preload: ["pandas"] }));
  const s = await startServer(o.bin, dir, [], 60000);
  const client = await new RawClient(s.port).init();
  const rows = {};
  try {
    const createMs = [], firstMs = {}, closeMs = [];
    for (const tool of Object.keys(TRIVIAL)) firstMs[tool] = [];
    // Session set-up and tear-down, a few times.
    for (let k = 0; k < 10; k++) {
      let r = await call(client, "session_create", {}, (sc) => typeof sc.session === "string");
      createMs.push(r.ms);
      const session = r.sc.session;
      for (const [tool, w] of Object.entries(TRIVIAL)) {
        r = await call(client, tool, { code: w.code(k), session }, (sc) => sc.stdout === w.stdout(k) && sc.session.call === 1);
        firstMs[tool].push(r.ms);
      }
      r = await call(client, "session_close", { session }, (sc) => sc.closed === true);
      closeMs.push(r.ms);
    }
    rows.create = summarize(createMs);
    rows.close = summarize(closeMs);
    for (const tool of Object.keys(TRIVIAL)) rows[`${tool} first call`] = summarize(firstMs[tool]);

    // Trivial calls, fresh vs in a session, in alternating blocks of 10.
    const session = (await call(client, "session_create", {}, (sc) => !!sc.session)).sc.session;
    for (const [tool, w] of Object.entries(TRIVIAL)) {
      const fresh = [], live = [];
      for (let i = 0; i < 10; i++) {  // warm-up: slots filled, interpreter made
        await call(client, tool, { code: w.code(i) }, (sc) => sc.stdout === w.stdout(i));
        await call(client, tool, { code: w.code(i), session }, (sc) => sc.stdout === w.stdout(i));
      }
      for (let i = 0; i < o.calls; i += 10) {
        for (let j = i; j < i + 10; j++) fresh.push((await call(client, tool, { code: w.code(j) }, (sc) => sc.stdout === w.stdout(j))).ms);
        for (let j = i; j < i + 10; j++) {
          live.push((await call(client, tool, { code: w.code(j), session }, (sc) => sc.stdout === w.stdout(j) && sc.session.interpreter === "continued")).ms);
        }
      }
      rows[`${tool} fresh`] = summarize(fresh);
      rows[`${tool} in a session`] = summarize(live);
    }

    // State that is expensive to rebuild: a DataFrame made once in the session vs every call.
    const build = "import pandas as pd\ndf = pd.DataFrame({'x': range(200000)})\n";
    await call(client, "run_py", { code: build, session }, () => true);
    const rebuilt = [], kept = [];
    for (let i = 0; i < 20; i++) {
      rebuilt.push((await call(client, "run_py", { code: build + "print(int(df.x.sum()))" }, (sc) => sc.stdout === "19999900000\n")).ms);
      kept.push((await call(client, "run_py", { code: "print(int(df.x.sum()))", session }, (sc) => sc.stdout === "19999900000\n")).ms);
    }
    rows["pandas: build a 200k-row DataFrame and sum it"] = summarize(rebuilt);
    rows["pandas: sum the session's DataFrame"] = summarize(kept);
    await call(client, "session_close", { session }, (sc) => sc.closed === true);
  } finally {
    await client.close();
    await stopServer(s.proc);
  }
  const m = machine();
  console.log(`## Sessions (${new Date().toISOString().slice(0, 16)} UTC, ${m.cpu}, ${m.nproc} CPUs, load ${m.load})\n`);
  console.log("| what (sequential calls over HTTP) | p50 | p95 | n |");
  console.log("|---|---|---|---|");
  for (const [name, r] of Object.entries(rows)) console.log(`| ${name} | ${fmt(r.p50)} ms | ${fmt(r.p95)} ms | ${r.n} |`);
  if (o.json) fs.writeFileSync(o.json, JSON.stringify(rows, null, 2));
}

main().catch((e) => {
  console.error(e.stack ?? String(e));
  process.exitCode = 1;
});
