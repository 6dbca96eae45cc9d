// `1mcp init` makes the capsule signing key; `1mcp capsule verify` checks capsules. The capsules
// here are built by this test from the documented format alone (canonical JSON with sorted keys,
// SHA-256, Ed25519 over "1mcp-capsule-v1\0" + the raw id), with Node's own crypto: an
// independent implementation that the C++ verifier must agree with.
import assert from "node:assert/strict";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { test } from "node:test";

import { configPath, runCli, tempDir } from "./lib.mjs";

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
