// `1mcp init` makes the capsule signing key; `1mcp capsule verify` checks capsules. The capsules
// here are built by this test from the documented format alone (canonical JSON with sorted keys,
// SHA-256, Ed25519 over "1mcp-capsule-v1\0" + the raw id), with Node's own crypto: an
// independent implementation that the C++ verifier must agree with. Then the server: every run
// executes from a capsule (checked with the same independent implementation), GET /capsules/...
// serves them, tampered capsules never run, and the cache stays within its size.
import assert from "node:assert/strict";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { test } from "node:test";

import { startRegistry } from "../fixtures/npm/registry.mjs";
import {
  assertOk,
  configPath,
  connectHttp,
  makeProject,
  request,
  runCli,
  runJs,
  runPy,
  show,
  sleep,
  startServer,
  tempDir,
} from "./lib.mjs";

// JSON.stringify with object keys sorted at every level (equal to the canonical form for ASCII
// keys and integer numbers).
function canonical(v) {
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (v && typeof v === "object") {
    const keys = Object.keys(v).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`).join(",")}}`;
  }
  return JSON.stringify(v);
}

const sha256 = (data) => crypto.createHash("sha256").update(data).digest("hex");

// An Ed25519 private key from the 32-byte seed that capsule.key holds in hex.
function privateKeyFromSeed(seedHex) {
  const pkcs8Prefix = Buffer.from("302e020100300506032b657004220420", "hex");
  return crypto.createPrivateKey({
    key: Buffer.concat([pkcs8Prefix, Buffer.from(seedHex, "hex")]),
    format: "der",
    type: "pkcs8",
  });
}

function publicKeyHex(privateKey) {
  const der = crypto.createPublicKey(privateKey).export({ format: "der", type: "spki" });
  return der.subarray(der.length - 32).toString("hex");
}

// Writes a capsule signed with `privateKey` into `cacheDir`; returns { hash, dir }.
function writeCapsule(cacheDir, privateKey, code = "console.log('hi')\n") {
  const manifest = {
    version: 1,
    language: "js",
    runtime: { id: "quickjs", version: "2021-03-27" },
    entry: { argv: ["code.js"], env: { GREETING: "héllo" }, cwd: "/tmp" },
    layers: [{ name: "code", kind: "code", file: "code.js", sha256: sha256(code), size: Buffer.byteLength(code) }],
    policy: { limits: { timeoutMs: 1000, memMb: 64, stdoutBytes: 1024 } },
  };
  const hash = sha256(canonical(manifest));
  const message = Buffer.concat([Buffer.from("1mcp-capsule-v1\0", "latin1"), Buffer.from(hash, "hex")]);
  manifest.createdAt = new Date().toISOString();
  manifest.signature = {
    alg: "ed25519",
    publicKey: publicKeyHex(privateKey),
    value: crypto.sign(null, message, privateKey).toString("hex"),
  };
  const dir = path.join(cacheDir, hash);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "manifest.json"), JSON.stringify(manifest, null, 2));
  fs.writeFileSync(path.join(dir, "code.js"), code);
  return { hash, dir, manifest };
}

function project() {
  const dir = tempDir();
  const r = runCli(["init", "--dir", dir]);
  assert.equal(r.status, 0, r.stderr);
  const keys = path.join(dir, ".1mcp/keys");
  const seed = fs.readFileSync(path.join(keys, "capsule.key"), "utf8").trim();
  return { dir, keys, cache: path.join(dir, ".1mcp/capsules"), privateKey: privateKeyFromSeed(seed) };
}

test("init generates the signing key with private modes and keeps it", () => {
  const p = project();
  assert.equal(fs.statSync(p.keys).mode & 0o777, 0o700);
  const keyFile = path.join(p.keys, "capsule.key");
  assert.equal(fs.statSync(keyFile).mode & 0o777, 0o600);
  const secret = fs.readFileSync(keyFile, "utf8");
  assert.match(secret, /^[0-9a-f]{64}\n$/);
  const pub = fs.readFileSync(path.join(p.keys, "capsule.pub"), "utf8");
  assert.equal(pub, publicKeyHex(p.privateKey) + "\n", "capsule.pub is the secret key's public half");

  // A second init (with the config removed, so it proceeds) keeps the existing key.
  fs.rmSync(configPath(p.dir));
  const again = runCli(["init", "--dir", p.dir]);
  assert.equal(again.status, 0, again.stderr);
  assert.match(again.stderr, /kept the existing/);
  assert.equal(fs.readFileSync(keyFile, "utf8"), secret);
});

test("capsule verify accepts a capsule built from the documented format", () => {
  const p = project();
  const c = writeCapsule(p.cache, p.privateKey);
  const r = runCli(["capsule", "verify", c.hash, "--dir", p.dir]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`id +${c.hash}: SHA-256 of the canonical manifest matches`));
  assert.match(r.stdout, /signature +ed25519, valid/);
  assert.match(r.stdout, /layer +code \(code, code\.js\): 18 bytes, SHA-256 matches/);
  assert.match(r.stdout, /^OK$/m);

  const byDir = runCli(["capsule", "verify", c.dir + "/", "--dir", p.dir]);
  assert.equal(byDir.status, 0, byDir.stderr);
});

test("capsule verify refuses tampering, another key, and missing capsules", () => {
  const p = project();
  const c = writeCapsule(p.cache, p.privateKey);
  const verify = () => runCli(["capsule", "verify", c.hash, "--dir", p.dir]);
  const expectFailure = (pattern) => {
    const r = verify();
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /FAILED/);
    assert.match(r.stderr, pattern);
    assert.doesNotMatch(r.stdout, /^OK$/m);
  };

  const codeFile = path.join(c.dir, "code.js");
  const code = fs.readFileSync(codeFile);
  fs.writeFileSync(codeFile, code.toString().replace("hi", "ho"));
  expectFailure(/layer "code" \(code\.js\): SHA-256 mismatch/);
  fs.writeFileSync(codeFile, code);
  assert.equal(verify().status, 0);

  const manifestFile = path.join(c.dir, "manifest.json");
  const manifest = fs.readFileSync(manifestFile, "utf8");
  fs.writeFileSync(manifestFile, manifest.replace('"timeoutMs": 1000', '"timeoutMs": 600000'));
  expectFailure(/does not match the capsule id/);
  fs.writeFileSync(manifestFile, manifest);

  const other = crypto.generateKeyPairSync("ed25519").privateKey;
  const foreign = writeCapsule(p.cache, other, "console.log('foreign')\n");
  const r = runCli(["capsule", "verify", foreign.hash, "--dir", p.dir]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /made with another key/);

  const missing = runCli(["capsule", "verify", "0".repeat(64), "--dir", p.dir]);
  assert.notEqual(missing.status, 0);
  assert.match(missing.stderr, /No such file/);
});

test("capsule verify without a project key or config fails with the reason", () => {
  const p = project();
  const c = writeCapsule(p.cache, p.privateKey);
  fs.rmSync(path.join(p.keys, "capsule.pub"));
  const noKey = runCli(["capsule", "verify", c.hash, "--dir", p.dir]);
  assert.equal(noKey.status, 2);
  assert.match(noKey.stderr, /capsule\.pub/);

  const empty = tempDir();
  const noConfig = runCli(["capsule", "verify", c.hash, "--dir", empty]);
  assert.equal(noConfig.status, 2);
  assert.match(noConfig.stderr, /1mcp\.config\.json/);

  const usage = runCli(["capsule", "verify"]);
  assert.notEqual(usage.status, 0);
});

// ---------------------------------------------------------------------------------------------
// Runs execute from capsules

const cleanups = [];
process.on("exit", () => cleanups.forEach((c) => c()));

async function serve(dir) {
  const server = await startServer({ dir });
  const client = await connectHttp(server.url);
  const stop = async () => {
    await client.close().catch(() => {});
    await server.stop();
  };
  cleanups.push(() => server.proc.kill("SIGKILL"));
  return { server, client, stop };
}

// Checks a manifest served by the server with this file's independent implementation: its id
// and its signature by the project's public key.
function checkManifest(dir, id, manifest) {
  const { signature, createdAt, ...unsigned } = manifest;
  assert.equal(sha256(canonical(unsigned)), id, "the id is the SHA-256 of the canonical manifest");
  assert.match(createdAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  const pub = fs.readFileSync(path.join(dir, ".1mcp/keys/capsule.pub"), "utf8").trim();
  assert.equal(signature.publicKey, pub);
  const spki = Buffer.concat([Buffer.from("302a300506032b6570032100", "hex"), Buffer.from(pub, "hex")]);
  const key = crypto.createPublicKey({ key: spki, format: "der", type: "spki" });
  const message = Buffer.concat([Buffer.from("1mcp-capsule-v1\0", "latin1"), Buffer.from(id, "hex")]);
  assert.ok(crypto.verify(null, message, key, Buffer.from(signature.value, "hex")), "signature");
}

const capsuleDirs = (dir) =>
  fs.readdirSync(path.join(dir, ".1mcp/capsules")).filter((n) => /^[0-9a-f]{64}$/.test(n));

test("every run executes from a signed capsule, served over GET /capsules/<id>/...", async () => {
  const dir = makeProject();
  const { server, client, stop } = await serve(dir);
  try {
    const code = "console.log(process.argv.slice(-1)[0], process.env.K); 6 * 7";
    const call = { args: ["arg"], env: { K: "v" }, cwd: "/tmp" };
    const r = await runJs(client, code, call);
    assertOk(r);
    assert.equal(r.structuredContent.stdout, "arg v\n");
    const id = r.structuredContent.capsule;
    assert.match(id, /^[0-9a-f]{64}$/, show(r));
    assert.ok(capsuleDirs(dir).includes(id), "stored in cacheDir");
    assert.equal((await runJs(client, code, call)).structuredContent.capsule, id, "same call, same capsule");
    const other = await runJs(client, code, { ...call, env: { K: "w" } });
    assert.notEqual(other.structuredContent.capsule, id, "another entry, another capsule");

    const m = await request(`${server.base}/capsules/${id}/manifest.json`);
    assert.equal(m.status, 200, m.text);
    assert.equal(m.headers.get("content-type"), "application/json");
    assert.equal(m.headers.get("x-content-type-options"), "nosniff");
    checkManifest(dir, id, m.json);
    assert.equal(m.json.language, "js");
    assert.deepEqual(m.json.runtime, { id: "quickjs", version: "2021-03-27" });
    assert.deepEqual(m.json.entry, { argv: ["arg"], env: { K: "v" }, cwd: "/tmp" });
    assert.equal(m.json.policy.limits.timeoutMs, 60000, "the effective policy");
    assert.deepEqual(m.json.layers.map((l) => [l.name, l.kind, l.file]), [["code", "code", "code.js"]]);
    assert.equal((await request(`${server.base}/capsules/${id}`)).text, m.text);

    const layer = await request(`${server.base}/capsules/${id}/code.js`);
    assert.equal(layer.status, 200);
    assert.equal(layer.text, code);
    assert.equal(layer.headers.get("content-type"), "text/plain; charset=utf-8");
    assert.equal(layer.headers.get("x-content-type-options"), "nosniff");
    assert.equal(sha256(layer.text), m.json.layers[0].sha256);

    const py = await runPy(client, "print('py')");
    assertOk(py);
    const pm = await request(`${server.base}/capsules/${py.structuredContent.capsule}/manifest.json`);
    assert.equal(pm.json.language, "py");
    assert.equal(pm.json.runtime.id, "cpython");
    assert.match(pm.json.runtime.version, /^3\.11\.\d+$/);
    assert.equal((await request(`${server.base}/capsules/${py.structuredContent.capsule}/code.py`)).text, "print('py')");

    // The CLI verifies what the server stored.
    assert.equal(runCli(["capsule", "verify", id, "--dir", dir]).status, 0);

    for (const [p, status] of [
      [`${id.toUpperCase()}/manifest.json`, 400],
      [`${id.slice(1)}/manifest.json`, 400],
      [`${id}x/manifest.json`, 400],
      [`${id}/..%2F..%2Fkeys`, 400],
      [`${id}/.hidden`, 400],
      [`${"0".repeat(64)}/manifest.json`, 404],
      [`${id}/deps.js`, 404],
    ]) {
      const res = await request(`${server.base}/capsules/${p}`);
      assert.equal(res.status, status, `${p}: ${res.text}`);
      assert.equal(res.headers.get("x-content-type-options"), "nosniff", p);
    }
    // The same access control as /mcp: a foreign page may not read capsules.
    const foreign = await request(`${server.base}/capsules/${id}/manifest.json`, {
      headers: { origin: "https://evil.example" },
    });
    assert.equal(foreign.status, 403);
    const post = await request(`${server.base}/capsules/${id}/manifest.json`, { method: "POST" });
    assert.equal(post.status, 405);
  } finally {
    await stop();
  }
});

test("a run with npm dependencies carries them as a deps layer", async () => {
  const registry = await startRegistry();
  const dir = makeProject((cfg) => {
    cfg.npm = { dependencies: {}, registry: registry.url };
  });
  const { server, client, stop } = await serve(dir);
  try {
    const r = await runJs(client, "import pad from 'onemcp-fixture-pad';\npad('d', 3)", {
      npm: { dependencies: { "onemcp-fixture-pad": "^1.0.0" } },
    }, { timeoutMs: 120000 });
    assertOk(r);
    const id = r.structuredContent.capsule;
    const m = await request(`${server.base}/capsules/${id}/manifest.json`);
    checkManifest(dir, id, m.json);
    assert.deepEqual(m.json.layers.map((l) => [l.name, l.kind, l.file]), [
      ["code", "code", "code.js"],
      ["deps", "deps", "deps.js"],
    ]);
    const code = await request(`${server.base}/capsules/${id}/code.js`);
    assert.match(code.text, /__onemcp_import\("onemcp-fixture-pad"\)/, "the code as it runs: imports rewritten");
    const deps = await request(`${server.base}/capsules/${id}/deps.js`);
    assert.equal(deps.status, 200);
    assert.equal(deps.headers.get("content-type"), "application/octet-stream");
    assert.equal(sha256(deps.text), m.json.layers[1].sha256);
  } finally {
    await stop();
    await registry.close();
  }
});

test("TypeScript runs from a second capsule holding esbuild's output", async () => {
  const dir = makeProject();
  const { server, client, stop } = await serve(dir);
  try {
    const r = await runJs(client, "const n: number = 5;\nn * 2");
    assertOk(r);
    assert.equal(r.structuredContent.value, "10");
    const code = await request(`${server.base}/capsules/${r.structuredContent.capsule}/code.js`);
    assert.equal(code.status, 200);
    assert.doesNotMatch(code.text, /: number/, "the transpiled code is what ran");
    assert.equal(capsuleDirs(dir).length, 2, "the original and the transpiled code");
  } finally {
    await stop();
  }
});

test("tampered capsules never run: the failure is logged and the capsule stored again", async () => {
  // memoryBytes 0: every run reads and verifies its capsule from disk.
  const dir = makeProject((cfg) => {
    cfg.capsules = { memoryBytes: 0 };
  });
  const { server, client, stop } = await serve(dir);
  try {
    const code = "console.log('original')";
    const first = await runJs(client, code);
    assertOk(first);
    const id = first.structuredContent.capsule;
    const cdir = path.join(dir, ".1mcp/capsules", id);
    const manifestFile = path.join(cdir, "manifest.json");
    const manifest = fs.readFileSync(manifestFile, "utf8");
    const other = crypto.generateKeyPairSync("ed25519").privateKey;
    const foreignSignature = (() => {
      const m = JSON.parse(manifest);
      const message = Buffer.concat([Buffer.from("1mcp-capsule-v1\0", "latin1"), Buffer.from(id, "hex")]);
      m.signature = { alg: "ed25519", publicKey: publicKeyHex(other), value: crypto.sign(null, message, other).toString("hex") };
      return JSON.stringify(m, null, 2);
    })();
    for (const [what, tamper, logged] of [
      ["code layer", () => fs.writeFileSync(path.join(cdir, "code.js"), "console.log('TAMPERED')"), /SHA-256 mismatch/],
      ["manifest", () => fs.writeFileSync(manifestFile, manifest.replace('"timeoutMs": 60000', '"timeoutMs": 600000')), /does not match the capsule id/],
      ["signature by another key", () => fs.writeFileSync(manifestFile, foreignSignature), /made with another key/],
      ["layer replaced by a symlink", () => {
        fs.rmSync(path.join(cdir, "code.js"));
        fs.writeFileSync(path.join(dir, "evil.js"), "console.log('TAMPERED')");
        fs.symlinkSync(path.join(dir, "evil.js"), path.join(cdir, "code.js"));
      }, /symbolic link/],
    ]) {
      tamper();
      const logLength = server.stderr().length;
      const r = await runJs(client, code);
      assertOk(r);
      assert.equal(r.structuredContent.stdout, "original\n", `${what}: the tampered bytes never run`);
      assert.equal(r.structuredContent.capsule, id, what);
      assert.match(server.stderr().slice(logLength), logged, what);
      assert.match(server.stderr().slice(logLength), /replacing it/, what);
      assert.equal(runCli(["capsule", "verify", id, "--dir", dir]).status, 0, `${what}: stored again, valid`);
    }
  } finally {
    await stop();
  }
});

test("after a restart a tampered capsule is refused and stored again", async () => {
  const dir = makeProject();
  let s = await serve(dir);
  const first = await runJs(s.client, "console.log('original')");
  const id = first.structuredContent.capsule;
  await s.stop();
  fs.writeFileSync(path.join(dir, ".1mcp/capsules", id, "code.js"), "console.log('TAMPERED')");
  s = await serve(dir);
  try {
    const r = await runJs(s.client, "console.log('original')");
    assert.equal(r.structuredContent.stdout, "original\n");
    assert.equal(r.structuredContent.capsule, id);
    assert.match(s.server.stderr(), /SHA-256 mismatch/);
  } finally {
    await s.stop();
  }
});

test("serve refuses to start without a usable signing key or capsule cache", () => {
  const dir = makeProject();
  fs.chmodSync(path.join(dir, ".1mcp/keys/capsule.key"), 0o644);
  const r = runCli(["serve", "--dir", dir, "-p", "0", "--no-ui"], { timeoutMs: 30000 });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /every run executes from a signed capsule: capsule signing key: .*accessible to group or others/);

  const fileCache = makeProject((cfg) => {
    cfg.cacheDir = "not-a-dir";
  });
  fs.writeFileSync(path.join(fileCache, "not-a-dir"), "x");
  const f = runCli(["serve", "--dir", fileCache, "-p", "0", "--no-ui"], { timeoutMs: 30000 });
  assert.equal(f.status, 1, f.stderr);
  assert.match(f.stderr, /capsule cache: .*not-a-dir/);

  // A project without a key gets one, as from `1mcp init`.
  const fresh = makeProject();
  fs.rmSync(path.join(fresh, ".1mcp/keys"), { recursive: true });
  return startServer({ dir: fresh }).then(async (s) => {
    await s.stop();
    assert.match(s.stderr(), /generated the capsule signing key/);
    assert.ok(fs.existsSync(path.join(fresh, ".1mcp/keys/capsule.key")));
  });
});

test("the capsule cache stays within capsules.maxTotalBytes", async () => {
  const limit = 65536;
  const dir = makeProject((cfg) => {
    cfg.capsules = { maxTotalBytes: limit, gcIntervalMs: 1000 };
  });
  const { server, client, stop } = await serve(dir);
  const total = () =>
    capsuleDirs(dir).reduce((n, c) => {
      try {
        const d = path.join(dir, ".1mcp/capsules", c);
        return n + fs.readdirSync(d).reduce((m, f) => m + fs.statSync(path.join(d, f)).size, 0);
      } catch {
        return n; // removed meanwhile
      }
    }, 0);
  try {
    const pad = "x".repeat(3000);
    let last;
    for (let i = 0; i < 40; i++) {
      const r = await runJs(client, `// ${pad}\n${i}`);
      assertOk(r);
      last = r.structuredContent.capsule;
    }
    for (let i = 0; i < 50 && total() > limit; i++) await sleep(100);
    assert.ok(total() <= limit, `${total()} bytes of capsules, over ${limit}`);
    assert.match(server.stderr(), /capsule cache: removed \d+ capsule/);
    const m = await request(`${server.base}/capsules/${last}/manifest.json`);
    assert.equal(m.status, 200, "the most recent capsule is kept");
  } finally {
    await stop();
  }
});
