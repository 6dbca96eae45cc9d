#!/usr/bin/env node
// npm dependencies benchmark: the first run_js call with a new dependency set (npm install +
// esbuild bundle) against calls that reuse the cached set, and what loading the set costs a
// run: `1` without dependencies against `1` with a cached set, interleaved, split into the run
// itself (structuredContent.durationMs: the sandboxed process, QuickJS evaluating the layer)
// and the rest (host side: request, capsule lookup, run request, result). Packages come from a loopback registry (tests/fixtures/npm/registry.mjs) serving the
// test fixtures and copies of packages in this repository's node_modules: never the public
// registry.
//
//   node bench/deps.mjs [--bin build/1mcp] [--calls 30]
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { startRegistry } from "../tests/fixtures/npm/registry.mjs";

const REPO = fileURLToPath(new URL("../", import.meta.url));
const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
};
const BIN = path.resolve(arg("--bin", ["build/1mcp", "build-e2e/1mcp"].map((p) => path.join(REPO, p)).find(fs.existsSync)));
const CALLS = Number(arg("--calls", 30));

const SETS = [
  {
    name: "3 fixture packages (tiny)",
    deps: { "onemcp-fixture-pad": "^1.0.0", "onemcp-fixture-esm": "*", "onemcp-fixture-user": "latest" },
    code: "import pad from 'onemcp-fixture-pad';\nimport greet from 'onemcp-fixture-esm';\n[pad('x', 3), greet('b')]",
    value: "[ '  x', 'hello, b' ]",
  },
  {
    name: "zod + qs + semver (24 packages installed)",
    deps: { zod: "*", qs: "*", semver: "*" },
    code:
      "import { z } from 'zod';\nimport qs from 'qs';\nimport semver from 'semver';\n" +
      "[z.object({ a: z.number() }).parse({ a: 1 }).a, qs.stringify({ b: [1, 2] }), semver.satisfies('1.2.3', '^1.0.0')]",
    value: "[ 1, 'b%5B0%5D=1&b%5B1%5D=2', true ]",
  },
];

const cleanup = [];
process.on("exit", () => {
  for (const f of cleanup.reverse()) {
    try {
      f();
    } catch {
      // best effort
    }
  }
});

function project(registryUrl, cacheDir) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "1mcp-bench-deps-"));
  cleanup.push(() => fs.rmSync(dir, { recursive: true, force: true, maxRetries: 5 }));
  const r = spawnSync(BIN, ["init", "--dir", dir], { encoding: "utf8", timeout: 15000 });
  if (r.status !== 0) throw new Error(`1mcp init failed: ${r.stderr}`);
  const file = path.join(dir, "1mcp.config.json");
  const cfg = JSON.parse(fs.readFileSync(file, "utf8"));
  cfg.npm = { dependencies: {}, registry: registryUrl };
  if (cacheDir) cfg.cacheDir = cacheDir;
  fs.writeFileSync(file, JSON.stringify(cfg, null, 2));
  return dir;
}

async function server(dir) {
  const proc = spawn(BIN, ["serve", "--dir", dir, "-p", "0", "--no-ui"], { stdio: ["ignore", "ignore", "pipe"] });
  cleanup.push(() => proc.kill("SIGKILL"));
  let err = "";
  const port = await new Promise((resolve, reject) => {
    proc.stderr.setEncoding("utf8").on("data", (d) => {
      err += d; if (process.env.SHOW_LOG) process.stderr.write(d);
      const m = /ready in [\d.]+ ms: MCP endpoint http:\/\/[^\s/]+:(\d+)\/mcp/.exec(err);
      if (m) resolve(Number(m[1]));
    });
    proc.on("exit", (c) => reject(new Error(`server exited (${c}): ${err}`)));
  });
  const url = `http://127.0.0.1:${port}/mcp`;
  const H = { "content-type": "application/json", accept: "application/json, text/event-stream" };
  const post = (body, h = {}) => fetch(url, { method: "POST", headers: { ...H, ...h }, body: JSON.stringify(body) });
  const init = await post({
    jsonrpc: "2.0", id: 0, method: "initialize",
    params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "bench-deps", version: "1" } },
  });
  const sh = { "mcp-session-id": init.headers.get("mcp-session-id"), "mcp-protocol-version": "2025-06-18" };
  await post({ jsonrpc: "2.0", method: "notifications/initialized" }, sh);
  let id = 1;
  const call = async (args) => {
    const t0 = performance.now();
    const r = await (await post({ jsonrpc: "2.0", id: id++, method: "tools/call", params: { name: "run_js", arguments: args } }, sh)).json();
    const ms = performance.now() - t0;
    return { ms, run: r.result?.structuredContent?.durationMs ?? NaN, result: r.result };
  };
  return { call, stop: () => proc.kill("SIGTERM") };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (ms) => (ms < 10 ? ms.toFixed(2) : ms.toFixed(0));

const registry = await startRegistry({ from: [path.join(REPO, "node_modules")] });
cleanup.push(() => registry.close());
{
  // The registry packs a package when first asked for it: do that before anything is timed.
  const warm = await server(project(registry.url));
  for (const set of SETS) await warm.call({ code: "1", npm: { dependencies: set.deps } });
  warm.stop();
}
const dir = project(registry.url);
const s = await server(dir);
const rows = [];
const check = (r, want, what) => {
  const v = r.result?.structuredContent?.value;
  if (r.result?.isError || v !== want) throw new Error(`${what}: unexpected result ${JSON.stringify(r.result).slice(0, 800)}`);
};
for (const set of SETS) {
  const args = { code: set.code, npm: { dependencies: set.deps } };
  const first = await s.call(args);
  check(first, set.value, set.name);
  const cached = [];
  for (let i = 0; i < CALLS; i++) {
    const r = await s.call(args);
    check(r, set.value, set.name);
    cached.push(r.ms);
  }
  const loadOnly = [];
  for (let i = 0; i < CALLS; i++) loadOnly.push((await s.call({ code: "1", npm: { dependencies: set.deps } })).ms);
  const layer = fs.statSync(path.join(dir, ".1mcp/capsules/npm", fs.readdirSync(path.join(dir, ".1mcp/capsules/npm"))
    .filter((n) => /^[0-9a-f]{64}$/.test(n))
    .map((n) => [n, fs.statSync(path.join(dir, ".1mcp/capsules/npm", n)).mtimeMs]).sort((a, b) => b[1] - a[1])[0][0], "deps.js")).size;
  rows.push({ set: set.name, first: first.ms, cached: median(cached), loadOnly: median(loadOnly), layer });
}
// The added cost of a cached set per call: `1` without dependencies against `1` with a set,
// interleaved in pairs so that the machine's load hits both alike (one pair per set: a run
// right after a heavy one pays for it, so sets are not mixed).
const ROUNDS = CALLS * 4;
const none = { name: "no dependencies", args: { code: "1" } };
const series = [];
for (const set of SETS) {
  const pair = [{ ...none }, { name: set.name, args: { code: "1", npm: { dependencies: set.deps } } }];
  for (const x of pair) Object.assign(x, { total: [], run: [] });
  for (let i = 0; i < ROUNDS; i++) {
    for (const x of i % 2 ? pair : [...pair].reverse()) {
      const r = await s.call(x.args);
      if (r.result?.isError) throw new Error(`${x.name}: ${JSON.stringify(r.result).slice(0, 400)}`);
      x.total.push(r.ms);
      x.run.push(r.run);
    }
  }
  series.push(pair);
}
s.stop();

// A restarted server (same cache directory): the set comes from disk, no npm install.
const s2 = await server(project(registry.url, path.join(dir, ".1mcp/capsules")));
const restart = await s2.call({ code: SETS[1].code, npm: { dependencies: SETS[1].deps } });
check(restart, SETS[1].value, "restart");
s2.stop();

console.log(`\n| dependency set | first call (install + bundle) | cached call, p50 | cached, code \`1\`, p50 | layer size |`);
console.log(`|---|---:|---:|---:|---:|`);
for (const r of rows) {
  console.log(`| ${r.set} | ${fmt(r.first)} ms | ${fmt(r.cached)} ms | ${fmt(r.loadOnly)} ms | ${(r.layer / 1024).toFixed(0)} KiB |`);
}
console.log(`\nrun_js \`1\`, ${ROUNDS} interleaved calls each (p50, ms):\n`);
console.log(`| dependencies | call | added by the set | run (durationMs) | host side (call − run) |`);
console.log(`|---|---:|---:|---:|---:|`);
for (const [base, x] of series) {
  for (const y of [base, x]) {
    const host = y.total.map((t, i) => t - y.run[i]);
    const added = y === base ? "" : `${(median(y.total) - median(base.total)).toFixed(2)}`;
    console.log(`| ${y.name} | ${median(y.total).toFixed(2)} | ${added} | ${median(y.run).toFixed(2)} | ${median(host).toFixed(2)} |`);
  }
}
console.log(`after a server restart, first call of "${SETS[1].name}" (from the cache directory): ${fmt(restart.ms)} ms`);
process.exit(0);  // the registry and keep-alive connections would keep the process alive
