// The `1mcp` command line: init, config validation at serve time, and --bind.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { after, test } from "node:test";

import {
  BIN,
  configPath,
  makeProject,
  rawSession,
  readConfig,
  request,
  runCli,
  startServer,
  tempDir,
  waitExit,
} from "./lib.mjs";

const servers = [];
after(async () => {
  for (const s of servers) await s.stop();
});

// Runs `1mcp serve` on a config expected to be rejected; resolves { code, stderr }.
async function serveExpectingFailure(dir) {
  const proc = spawn(BIN, ["serve", "--dir", dir, "-p", "0", "--no-ui"], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  proc.stderr.setEncoding("utf8").on("data", (d) => (stderr += d));
  try {
    const { code } = await waitExit(proc, 10000, "serve with an invalid config to exit");
    return { code, stderr };
  } finally {
    if (proc.exitCode === null) proc.kill("SIGKILL");
  }
}

test("--version and --help", () => {
  const v = runCli(["--version"]);
  assert.equal(v.status, 0);
  assert.match(v.stdout + v.stderr, /\d+\.\d+\.\d+/);
  const h = runCli(["serve", "--help"]);
  assert.equal(h.status, 0);
  for (const flag of ["--dir", "--port", "--bind", "--no-ui", "--stdio"]) {
    assert.ok(h.stdout.includes(flag), `serve --help mentions ${flag}`);
  }
});

test("init writes a config that serve accepts", async () => {
  const dir = path.join(tempDir(), "fresh-project");
  const r = runCli(["init", "--dir", dir]);
  assert.equal(r.status, 0, r.stderr);
  const cfg = readConfig(dir);
  assert.equal(typeof cfg.policy?.limits?.timeoutMs, "number");
  assert.equal(typeof cfg.policy?.limits?.memMb, "number");
  assert.equal(typeof cfg.policy?.limits?.stdoutBytes, "number");
  const s = await startServer({ dir });
  servers.push(s);
  assert.equal(s.host, "127.0.0.1", "binds loopback by default");
  const status = await request(s.base + "/");
  assert.equal(status.status, 200);
  assert.equal(status.json.status, "ok");
});

test("init refuses to overwrite and leaves the file untouched", () => {
  const dir = tempDir();
  assert.equal(runCli(["init", "--dir", dir]).status, 0);
  const file = configPath(dir);
  fs.writeFileSync(file, fs.readFileSync(file, "utf8").replace("{", '{\n  "language": "py",'));
  const before = fs.readFileSync(file);
  const stat = fs.statSync(file);
  const r = runCli(["init", "--dir", dir]);
  assert.notEqual(r.status, 0, "second init fails");
  assert.match(r.stderr, /exist|overwrite/i);
  assert.deepEqual(fs.readFileSync(file), before);
  assert.equal(fs.statSync(file).mtimeMs, stat.mtimeMs);
});

test("serve without a config fails and says so", async () => {
  const dir = tempDir();
  const { code, stderr } = await serveExpectingFailure(dir);
  assert.notEqual(code, 0);
  assert.match(stderr, /1mcp\.config\.json|config/i);
});

test("serve rejects policy.limits.timeoutMs: -5, naming the field", async () => {
  const dir = makeProject((cfg) => {
    cfg.policy.limits.timeoutMs = -5;
  });
  const { code, stderr } = await serveExpectingFailure(dir);
  assert.notEqual(code, 0);
  assert.match(stderr, /timeoutMs/);
  assert.doesNotMatch(stderr, /ready in/);
});

test("serve rejects an unknown field, naming it", async () => {
  const dir = makeProject((cfg) => {
    cfg.policy.limits.bogusLimit = 1;
  });
  const { code, stderr } = await serveExpectingFailure(dir);
  assert.notEqual(code, 0);
  assert.match(stderr, /bogusLimit/);

  const dir2 = makeProject((cfg) => {
    cfg.surpriseField = true;
  });
  const r2 = await serveExpectingFailure(dir2);
  assert.notEqual(r2.code, 0);
  assert.match(r2.stderr, /surpriseField/);
});

test("serve rejects a config that is not JSON", async () => {
  const dir = tempDir();
  fs.writeFileSync(configPath(dir), "{ this is not json");
  const { code, stderr } = await serveExpectingFailure(dir);
  assert.notEqual(code, 0);
  assert.match(stderr, /1mcp serve/);
});

test("limits from the config are applied to runs", async () => {
  const dir = makeProject((cfg) => {
    cfg.policy.limits = { ...cfg.policy.limits, stdoutBytes: 10 };
  });
  const s = await startServer({ dir });
  servers.push(s);
  const sess = await rawSession(s.url);
  const r = await sess.post({
    jsonrpc: "2.0",
    id: 1,
    method: "tools/call",
    params: { name: "run_py", arguments: { code: "print('0123456789abcdef')" } },
  });
  const sc = r.json.result.structuredContent;
  assert.equal(sc.outcome, "output_limit", r.text);
  assert.equal(sc.stdout, "0123456789");
  // A call can tighten the limits but not loosen them.
  const loose = await sess.post({
    jsonrpc: "2.0",
    id: 2,
    method: "tools/call",
    params: { name: "run_py", arguments: { code: "print('0123456789abcdef')", policy: { limits: { stdoutBytes: 1000 } } } },
  });
  const lsc = loose.json.result.structuredContent;
  assert.ok(loose.json.result.isError, loose.text);
  if (lsc) assert.ok(lsc.stdout.length <= 10, "a call cannot raise the server's limit");
});

test("--bind 127.0.0.2 -p 0 listens there and logs exactly that address", async () => {
  const s = await startServer({ extra: ["--bind", "127.0.0.2"] });
  servers.push(s);
  assert.equal(s.host, "127.0.0.2");
  assert.match(s.stderr(), /http:\/\/127\.0\.0\.2:\d+\/mcp/);
  const r = await request(`http://127.0.0.2:${s.port}/`);
  assert.equal(r.status, 200);
  assert.equal(r.json.status, "ok");
});

test("serve exits cleanly on SIGTERM", async () => {
  const s = await startServer();
  s.proc.kill("SIGTERM");
  const { code } = await waitExit(s.proc, 5000, "exit after SIGTERM");
  assert.equal(code, 0);
});
