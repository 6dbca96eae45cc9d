// The installed tree (`cmake --install`): bin/1mcp finds its workers and esbuild in
// ../lib/1mcp/ from its own path, after the tree is moved, with the build tree off PATH and no
// ONEMCP_ESBUILD; init, serve, tools/list, run_js (TypeScript, so esbuild runs) and run_py
// through the MCP SDK client.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { after, test } from "node:test";

import { BIN, REPO_ROOT, assertOk, connectHttp, runJs, runPy, show, startServer, tempDir } from "./lib.mjs";

const BUILD_DIR = process.env.ONEMCP_BUILD_DIR ?? path.dirname(BIN);
const CMAKE = process.env.ONEMCP_CMAKE ?? "cmake";

const servers = [];
after(async () => {
  for (const s of servers) await s.stop();
});

test("an installed tree serves from its own lib/1mcp, wherever it is moved", async () => {
  const root = tempDir("1mcp-install-");
  const installed = path.join(root, "prefix");
  const r = spawnSync(CMAKE, ["--install", BUILD_DIR, "--prefix", installed], { encoding: "utf8" });
  assert.equal(r.status, 0, `cmake --install: ${r.stdout}${r.stderr}`);

  // Relocatable: nothing in it may depend on the prefix it was installed to.
  const prefix = path.join(root, "moved");
  fs.renameSync(installed, prefix);
  const lib = path.join(prefix, "lib/1mcp");
  for (const f of ["bin/1mcp", "lib/1mcp/1mcp-js-worker", "lib/1mcp/1mcp-py-worker", "lib/1mcp/esbuild"]) {
    fs.accessSync(path.join(prefix, f), fs.constants.X_OK);
  }
  assert.ok(!fs.existsSync(path.join(prefix, "bin/1mcp-js-worker")), "workers are not in bin/");

  const bin = path.join(prefix, "bin/1mcp");
  const buildDir = fs.realpathSync(BUILD_DIR);
  const repo = fs.realpathSync(REPO_ROOT);
  const env = { ...process.env };
  delete env.ONEMCP_ESBUILD;
  delete env.ONEMCP_BIN;
  env.PATH = (env.PATH ?? "")
    .split(":")
    .filter((d) => d && !path.resolve(d).startsWith(buildDir) && !path.resolve(d).startsWith(repo))
    .join(":");

  const dir = path.join(root, "project");
  const init = spawnSync(bin, ["init", "--dir", dir], { encoding: "utf8", env, timeout: 15000 });
  assert.equal(init.status, 0, init.stderr);

  const server = await startServer({ bin, dir, env });
  servers.push(server);
  const log = server.stderr();
  assert.ok(
    log.includes(`workers ${lib}/1mcp-js-worker, ${lib}/1mcp-py-worker; esbuild ${lib}/esbuild`),
    "worker paths from the installed tree: " + log,
  );
  assert.ok(!log.includes(buildDir), "nothing from the build tree: " + log);

  // The same version from the command line and /health.
  const version = spawnSync(bin, ["--version"], { encoding: "utf8", env }).stdout.trim();
  assert.match(version, /^\d+\.\d+\.\d+(\+\S+)?$/);
  const health = await (await fetch(`${server.base}/health`)).json();
  assert.deepEqual(health, { status: "ok", version });

  const client = await connectHttp(server.url);
  try {
    const { tools } = await client.listTools();
    const names = tools.map((t) => t.name);
    assert.ok(names.includes("run_js") && names.includes("run_py"), names.join(", "));
    const js = await runJs(client, "const n: number = 21;\nconsole.log(n * 2);");
    assertOk(js);
    assert.equal(js.structuredContent.stdout, "42\n", show(js));
    const py = await runPy(client, "import sys; print(sys.version_info[:2])");
    assertOk(py);
    assert.equal(py.structuredContent.stdout, "(3, 11)\n", show(py));
  } finally {
    await client.close();
  }
});
