// npm dependencies of run_js through the real server: packages come from the loopback fixture
// registry of tests/fixtures/npm (config npm.registry), never from the public registry.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { after, before, test } from "node:test";

import { startRegistry } from "../fixtures/npm/registry.mjs";
import {
  REPO_ROOT,
  assertOk,
  connectHttp,
  makeProject,
  runJs,
  show,
  sleep,
  startServer,
  timed,
  withTimeout,
} from "./lib.mjs";

let registry;
let dir;
let server;
let client;

const SET = {
  "onemcp-fixture-pad": "^1.0.0",
  "onemcp-fixture-esm": "*",
  "onemcp-fixture-user": "latest",
};
const npm = (dependencies) => ({ npm: { dependencies } });
const installs = (s = server) => s.stderr().split("\n").filter((l) => l.includes("npm install of")).length;
const text = (r) => r.content.map((c) => c.text).join("\n");

before(async () => {
  registry = await startRegistry();
  dir = makeProject((cfg) => {
    cfg.npm = { dependencies: {}, registry: registry.url };
  });
  server = await startServer({ dir });
  client = await connectHttp(server.url);
});

after(async () => {
  await client?.close().catch(() => {});
  await server?.stop();
  await registry?.close();
});

test("imports and require() of CommonJS, ES-module-only and dependent packages", async () => {
  const code = `
import pad from "onemcp-fixture-pad";
import greet, { shout, answer } from "onemcp-fixture-esm";
import * as esm from "onemcp-fixture-esm";
import { extra } from "onemcp-fixture-esm/extra";
const user = require("onemcp-fixture-user");
console.log(pad("7", 3, "0"), esm.answer === answer);
[pad("x", 4), greet("you"), shout("hi"), extra, user.table(["a", "bb"], 3), require("onemcp-fixture-pad").VERSION]`;
  const first = await timed(() => runJs(client, code, npm(SET), { timeoutMs: 120000 }));
  const r = first.value;
  assertOk(r);
  assert.equal(r.structuredContent.stdout, "007 true\n");
  assert.equal(r.structuredContent.value, "[ '   x', 'hello, you', 'HI!', 'extra subpath', '..a\\n.bb', '1.2.3' ]");
  assert.equal(installs(), 1);

  // The same set again: no npm, no registry request.
  const asked = registry.requests.length;
  const second = await timed(() => runJs(client, code, npm(SET)));
  assertOk(second.value);
  assert.equal(second.value.structuredContent.value, r.structuredContent.value);
  assert.equal(installs(), 1, "a cache hit runs no npm install");
  assert.equal(registry.requests.length, asked, "a cache hit asks the registry nothing");
  console.log(`first call with a new set ${first.ms.toFixed(0)} ms, cached ${second.ms.toFixed(0)} ms`);
  assert.ok(second.ms < first.ms, `cached call (${second.ms} ms) faster than the first (${first.ms} ms)`);

  // The order of the dependencies does not matter.
  const reordered = Object.fromEntries(Object.entries(SET).reverse());
  assertOk(await runJs(client, "require('onemcp-fixture-pad')('a', 2)", npm(reordered)));
  assert.equal(installs(), 1);
});

test("TypeScript and top-level await work with imports, and the last value is kept", async () => {
  const r = await runJs(
    client,
    `import pad from "onemcp-fixture-pad";
import type { Nothing } from "anything";
const width: number = await new Promise<number>((resolve) => setTimeout(() => resolve(5), 10));
pad("ts", width)`,
    npm(SET),
  );
  assertOk(r);
  assert.equal(r.structuredContent.value, "'   ts'");
});

test("concurrent calls with one new set build it once", async () => {
  const before = installs();
  const deps = npm({ "onemcp-fixture-pad": "~1.2.0" });
  const results = await Promise.all(
    [1, 2, 3, 4].map((i) => runJs(client, `require("onemcp-fixture-pad")("${i}", 3)`, deps, { timeoutMs: 120000 })),
  );
  results.forEach((r, i) => {
    assertOk(r);
    assert.equal(r.structuredContent.value, `'  ${i + 1}'`);
  });
  assert.equal(installs() - before, 1, server.stderr());
});

test("invalid names and specs are refused before npm runs", async () => {
  const before = installs();
  const asked = registry.requests.length;
  for (const [deps, expect] of [
    [{ x: "file:../../etc" }, 'npm.dependencies: x: unsupported version "file:../../etc"'],
    [{ x: "git+https://example.com/x.git" }, "npm.dependencies: x: unsupported version"],
    [{ x: "https://example.com/x.tgz" }, "npm.dependencies: x: unsupported version"],
    [{ x: "evil.tgz" }, "npm.dependencies: x: unsupported version"],
    [{ x: "npm:lodash@4" }, "npm.dependencies: x: unsupported version"],
    [{ "../evil": "1" }, "invalid arguments"],
    [{ "@scope/../x": "1" }, "invalid arguments"],
  ]) {
    const r = await runJs(client, "1", npm(deps));
    assert.equal(r.isError, true, show(r));
    assert.ok(text(r).includes(expect), `${JSON.stringify(deps)}: ${text(r)}`);
  }
  assert.equal(installs(), before);
  assert.equal(registry.requests.length, asked);
});

test("a package that does not exist is a clear error", async () => {
  const r = await runJs(client, "1", npm({ "onemcp-no-such-package": "^1.0.0" }), { timeoutMs: 120000 });
  assert.equal(r.isError, true, show(r));
  assert.match(text(r), /npm install failed \(exit code 1\):/);
  assert.match(text(r), /404 Not Found - GET http:\/\/127\.0\.0\.1:\d+\/onemcp-no-such-package/);
});

test("a package whose dependency points at the host filesystem is refused", async () => {
  const r = await runJs(client, "require('onemcp-fixture-evil')", npm({ "onemcp-fixture-evil": "1.0.0" }), {
    timeoutMs: 120000,
  });
  assert.equal(r.isError, true, show(r));
  assert.match(text(r), /npm dependencies refused: .* does not come from the registry/);
});

test("imports other than the call's packages never reach the host filesystem", async () => {
  fs.writeFileSync(path.join(dir, "secret.js"), "module.exports = 'host secret'");
  for (const [code, expect] of [
    ["import x from './secret.js'; x", 'cannot import "./secret.js": only the npm dependencies'],
    [`import x from ${JSON.stringify(path.join(dir, "secret.js"))}; x`, "cannot import"],
    ["import os from 'os'; os", 'cannot import "os"'],
    ["import x from 'onemcp-fixture-pad/../../secret.js'", "cannot import"],
    ["require('./secret.js')", "Cannot find module './secret.js'"],
    [`require(${JSON.stringify(path.join(dir, "secret.js"))})`, "Cannot find module"],
    ["const a = 1;\nimport x from 'onemcp-fixture-pad';", "put import declarations at the top"],
    ["await import('onemcp-fixture-pad')", "cannot import 'onemcp-fixture-pad' here"],
    ["require('onemcp-fixture-user').hostname()", "os.hostname() is not available: run_js has no Node.js 'os' module"],
  ]) {
    const r = await runJs(client, code, npm(SET));
    assert.equal(r.isError, true, show(r));
    assert.ok(text(r).includes(expect), `${code}: ${text(r)}`);
    assert.ok(!text(r).includes("host secret"), code);
  }
});

test("the config's dependencies serve every call, and a second server reuses the cache", async () => {
  const dir2 = makeProject((c) => {
    c.npm = { dependencies: SET, registry: registry.url };
    c.cacheDir = path.join(dir, ".1mcp/capsules"); // the first server's cache
  });
  const s2 = await startServer({ dir: dir2 });
  const c2 = await connectHttp(s2.url);
  try {
    const r = await runJs(c2, "import pad from 'onemcp-fixture-pad';\npad('c', 2)");
    assertOk(r);
    assert.equal(r.structuredContent.value, "' c'");
    assert.equal(installs(s2), 0, "built by the first server: " + s2.stderr());
    // A call's own range wins over the config's for the same package (a new set: one install).
    const own = await runJs(c2, "require('onemcp-fixture-pad').VERSION", npm({ "onemcp-fixture-pad": "1.2.3" }), {
      timeoutMs: 120000,
    });
    assertOk(own);
    assert.equal(installs(s2), 1);
  } finally {
    await c2.close().catch(() => {});
    await s2.stop();
  }
});

test("a set is loaded once into a heap that later calls continue from, each with its own copy", async () => {
  const deps = npm({ "onemcp-fixture-state": "1.0.0" });
  const heaps = () => server.stderr().split("\n").filter((l) => l.includes("loaded into a heap")).length;
  const before = heaps();
  const code = "const s = require('onemcp-fixture-state'); [s.bump(), s.bump(), s.seen.mode, s.seen.argv]";
  for (let i = 0; i < 3; i++) {
    const r = await runJs(client, code, deps, { timeoutMs: 120000 });
    assertOk(r);
    assert.equal(r.structuredContent.value, "[ 1, 2, 'none', '' ]", "module state never carries over: " + show(r));
  }
  assert.equal(heaps(), before + 1, "three calls, one heap");
  // What the package sees while it loads is each call's own: env and argv are part of the heap's key.
  let r = await runJs(client, code, { ...deps, env: { FIXTURE_MODE: "x" }, args: ["a", "b"] });
  assertOk(r);
  assert.equal(r.structuredContent.value, "[ 1, 2, 'x', 'a,b' ]");
  r = await runJs(client, code, deps);
  assert.equal(r.structuredContent.value, "[ 1, 2, 'none', '' ]");
  assert.equal(heaps(), before + 2);
  // A set that prints while it loads is loaded by each call, so each call prints.
  for (let i = 0; i < 2; i++) {
    r = await runJs(client, "require('onemcp-fixture-state').bump()", { ...deps, env: { FIXTURE_LOUD: "1" } });
    assertOk(r);
    assert.equal(r.structuredContent.stdout, "fixture-state loaded\n", show(r));
    assert.equal(r.structuredContent.value, "1");
  }
  assert.equal(heaps(), before + 2);
  assert.match(server.stderr(), /npm dependency set loaded by each run: it prints while loading/);
});

test("without npm dependencies packages are refused; Node's fs is there, with or without", async () => {
  const imp = await runJs(client, "import x from 'onemcp-fixture-pad'");
  assert.equal(imp.isError, true);
  assert.match(text(imp), /import is not supported/);
  const code = "import { writeFileSync } from 'fs';\nimport fsp from 'node:fs/promises';\n" +
    "writeFileSync('/tmp/a', 'fs');\n[await fsp.readFile('/tmp/a', 'utf8'), typeof require('fs').readFileSync]";
  for (const extra of [{}, npm(SET)]) {
    const r = await runJs(client, code, extra);
    assertOk(r);
    assert.equal(r.structuredContent.value, "[ 'fs', 'function' ]");
  }
});

test("building a new set reports progress to a client that asks for it", async () => {
  const seen = [];
  const call = (args) =>
    withTimeout(
      client.callTool({ name: "run_js", arguments: args }, undefined, {
        timeout: 120000,
        onprogress: (p) => seen.push(p),
      }),
      121000,
      "tools/call with progress",
    );
  const deps = npm({ "onemcp-fixture-pad": ">=1.2.0", "onemcp-fixture-esm": "^2.0.0" });
  const r = await call({ code: "require('onemcp-fixture-pad')('p', 2)", ...deps });
  assertOk(r);
  const messages = seen.map((p) => p.message);
  assert.deepEqual(messages, [
    "running",
    "resolving 2 npm package(s)",
    "installing 2 npm package(s)",
    "bundling the npm dependencies",
    "npm dependencies ready",
    "done",
  ]);
  const fractions = seen.map((p) => p.progress);
  assert.deepEqual(fractions, [...fractions].sort((a, b) => a - b), "progress only increases");
  assert.ok(seen.every((p) => p.total === 1));
  // Once built, a call reports no build steps.
  seen.length = 0;
  assertOk(await call({ code: "1", ...deps }));
  assert.deepEqual(seen.map((p) => p.message), ["running", "done"]);
});

test("a session that asked for log messages hears of each set built for any call", async () => {
  const { LoggingMessageNotificationSchema } = await import(
    pathToFileURL(path.join(REPO_ROOT, "node_modules/@modelcontextprotocol/sdk/dist/esm/types.js")).href
  );
  const listener = await connectHttp(server.url);
  try {
    const heard = [];
    listener.setNotificationHandler(LoggingMessageNotificationSchema, (n) => heard.push(n.params));
    await listener.setLoggingLevel("info");
    await sleep(300);  // its GET stream opens after initialize
    // Built for another client's call; then a failing set, and a cache hit that is not told.
    const deps = npm({ "onemcp-fixture-pad": "~1.2.3" });
    assertOk(await runJs(client, "require('onemcp-fixture-pad')('q', 2)", deps, { timeoutMs: 120000 }));
    const bad = await runJs(client, "1", npm({ "onemcp-fixture-does-not-exist": "1.0.0" }), { timeoutMs: 120000 });
    assert.equal(bad.structuredContent.outcome, "error", show(bad));
    assertOk(await runJs(client, "require('onemcp-fixture-pad')('q', 2)", deps, { timeoutMs: 120000 }));
    await sleep(300);
    const deps_ = heard.filter((m) => m.logger === "dependencies");
    assert.equal(deps_.length, 2, JSON.stringify(heard));
    assert.equal(deps_[0].level, "info");
    assert.deepEqual(deps_[0].data.set, { "onemcp-fixture-pad": "~1.2.3" });
    assert.equal(deps_[0].data.kind, "npm");
    assert.equal(deps_[1].level, "warning");
    assert.ok(deps_[1].data.error, JSON.stringify(deps_[1]));
  } finally {
    await listener.close();
  }
});

test("serve builds the config's own set at start, in the background, with progress in its log", async () => {
  const own = { "onemcp-fixture-user": "^0.1.0" };
  const d = makeProject((c) => {
    c.npm = { dependencies: own, registry: registry.url };
  });
  const s = await startServer({ dir: d });
  const c = await connectHttp(s.url);
  try {
    for (let i = 0; i < 600 && !/config npm dependencies ready/.test(s.stderr()); i++) await sleep(100);
    const log = s.stderr();
    assert.match(log, /config npm dependencies: installing 1 npm package\(s\)/);
    assert.match(log, /config npm dependencies: bundling/);
    assert.match(log, /config npm dependencies ready \(1 package\(s\), \d+ ms\)/);
    assert.ok(log.indexOf("ready in") < log.indexOf("config npm dependencies ready"), "ready before the build ends");
    const r = await timed(() => runJs(c, "require('onemcp-fixture-user').table(['a'], 2)"));
    assertOk(r.value);
    assert.equal(installs(s), 1, "the first call found the set built");
  } finally {
    await c.close().catch(() => {});
    await s.stop();
  }
});
