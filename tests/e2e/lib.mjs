// Shared helpers for the end-to-end tests: start the real 1mcp binary, connect the official MCP
// SDK client, and speak raw JSON-RPC over HTTP. Every wait is bounded so a hung server fails a
// test instead of hanging the suite.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

export const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));

// The SDK is loaded by absolute path: NODE_PATH does not apply to ESM imports.
const SDK = path.join(REPO_ROOT, "node_modules/@modelcontextprotocol/sdk/dist/esm");
const sdk = (p) => import(pathToFileURL(path.join(SDK, p)).href);
export const { Client } = await sdk("client/index.js");
export const { StreamableHTTPClientTransport } = await sdk("client/streamableHttp.js");
export const { StdioClientTransport } = await sdk("client/stdio.js");
export const { McpError, ToolListChangedNotificationSchema } = await sdk("types.js");

function defaultBin() {
  for (const dir of ["build-e2e", "build"]) {
    const p = path.join(REPO_ROOT, dir, "1mcp");
    if (fs.existsSync(p)) return p;
  }
  return path.join(REPO_ROOT, "build", "1mcp");
}
export const BIN = process.env.ONEMCP_BIN || defaultBin();

export const PROTOCOL = "2025-06-18";

// ---------------------------------------------------------------------------------------------
// Time

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Polls `fn` every 100 ms until it returns a truthy value (which it resolves), for at most `ms`.
export async function eventually(fn, ms, what) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(100);
  }
}

// Rejects with a clear message if `promise` has not settled within `ms`.
export function withTimeout(promise, ms, what = "operation") {
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

export async function timed(fn) {
  const t0 = performance.now();
  const value = await fn();
  return { value, ms: performance.now() - t0 };
}

// ---------------------------------------------------------------------------------------------
// Project directories and the CLI

const tempDirs = [];
process.on("exit", () => {
  for (const d of tempDirs) fs.rmSync(d, { recursive: true, force: true });
});

export function tempDir(prefix = "1mcp-e2e-") {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.push(d);
  return d;
}

// Runs the CLI to completion (bounded), returning { status, stdout, stderr }.
export function runCli(args, { timeoutMs = 15000 } = {}) {
  const r = spawnSync(BIN, args, { encoding: "utf8", timeout: timeoutMs });
  if (r.error) throw r.error;
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

// A throwaway CA and a server certificate for the DNS names `names` (EC P-256, valid for a day),
// made with the openssl CLI in a temp dir removed at exit; the CA's key is deleted at once.
// Resolves { caPem, caFile, key, cert } (PEM text, and the path of the CA's certificate).
export function makeTestPki(names) {
  const dir = tempDir("1mcp-pki-");
  const openssl = (...args) => {
    const r = spawnSync("openssl", args, { cwd: dir, encoding: "utf8", timeout: 15000 });
    if (r.status !== 0) throw new Error(`openssl ${args[0]} failed (${r.status}): ${r.stderr}`);
  };
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  openssl("req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "1",
    "-subj", "/CN=1mcp test CA", "-addext", "keyUsage=critical,keyCertSign,cRLSign");
  openssl("req", "-new", ...ec, "-keyout", "server.key", "-out", "server.csr", "-subj", `/CN=${names[0]}`);
  fs.writeFileSync(
    path.join(dir, "server.ext"),
    [
      `subjectAltName=${names.map((n) => `DNS:${n}`).join(",")}`,
      "basicConstraints=critical,CA:FALSE",
      "keyUsage=critical,digitalSignature",
      "extendedKeyUsage=serverAuth",
      "subjectKeyIdentifier=hash",
      "authorityKeyIdentifier=keyid",
    ].join("\n") + "\n",
  );
  openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-set_serial", "2",
    "-days", "1", "-extfile", "server.ext", "-out", "server.pem");
  fs.rmSync(path.join(dir, "ca.key"));
  const read = (f) => fs.readFileSync(path.join(dir, f), "utf8");
  return { caPem: read("ca.pem"), caFile: path.join(dir, "ca.pem"), key: read("server.key"), cert: read("server.pem") };
}

export const configPath = (dir) => path.join(dir, "1mcp.config.json");
export const readConfig = (dir) => JSON.parse(fs.readFileSync(configPath(dir), "utf8"));
export const writeConfig = (dir, cfg) =>
  fs.writeFileSync(configPath(dir), JSON.stringify(cfg, null, 2) + "\n");

// A fresh project directory holding the config `1mcp init` writes, with `edit(config)` applied.
export function makeProject(edit) {
  const dir = tempDir();
  const r = runCli(["init", "--dir", dir]);
  if (r.status !== 0) throw new Error(`1mcp init failed (${r.status}): ${r.stderr}`);
  if (edit) {
    const cfg = readConfig(dir);
    writeConfig(dir, edit(cfg) ?? cfg);
  }
  return dir;
}

// Sets policy.limits fields (timeoutMs, memMb, stdoutBytes) in a config object.
export function withLimits(limits) {
  return (cfg) => {
    cfg.policy ??= {};
    cfg.policy.limits = { ...(cfg.policy.limits ?? {}), ...limits };
    return cfg;
  };
}

// ---------------------------------------------------------------------------------------------
// Server processes

const READY_RE = /ready in ([\d.]+) ms: MCP endpoint (http:\/\/(\S+?):(\d+)\/mcp)/;
const servers = new Set();
process.on("exit", () => {
  for (const s of servers) s.proc.kill("SIGKILL");
});

// Spawns `1mcp serve --dir <dir> -p 0 --no-ui [...extra]` and waits for its "ready" line.
// `env` replaces the environment of the server process; `ui` leaves out --no-ui. `wrap` (argv)
// runs the server through a command that ends by exec'ing it, e.g. in a mount namespace of its
// own (proc.pid stays the server's). `bin` replaces BIN (e.g. an installed copy).
// Resolves { proc, url (the /mcp endpoint), base, host, port, readyMs, stderr(), stop() }.
export async function startServer({ dir, extra = [], env, wrap = [], readyTimeoutMs = 20000, ui = false, bin = BIN } = {}) {
  dir ??= makeProject();
  const args = [...wrap.slice(1), ...(wrap.length ? [bin] : []), "serve", "--dir", dir, "-p", "0",
    ...(ui ? [] : ["--no-ui"]), ...extra];
  const proc = spawn(wrap[0] ?? bin, args, { stdio: ["ignore", "pipe", "pipe"], env: env ?? process.env });
  let err = "";
  let out = "";
  proc.stdout.setEncoding("utf8").on("data", (d) => (out += d));
  const server = {
    proc,
    dir,
    stderr: () => err,
    stdout: () => out,
    stop: () => stopProcess(proc),
  };
  servers.add(server);
  proc.on("exit", () => servers.delete(server));
  const ready = new Promise((resolve, reject) => {
    proc.stderr.setEncoding("utf8").on("data", (d) => {
      err += d;
      const m = READY_RE.exec(err);
      if (m) resolve(m);
    });
    proc.on("exit", (code, sig) =>
      reject(new Error(`1mcp serve exited (${code ?? sig}) before ready; stderr:\n${err}`)),
    );
    proc.on("error", reject);
  });
  let m;
  try {
    m = await withTimeout(ready, readyTimeoutMs, "1mcp serve startup");
  } catch (e) {
    await server.stop();
    throw e;
  }
  Object.assign(server, {
    readyMs: Number(m[1]),
    url: m[2],
    host: m[3],
    port: Number(m[4]),
    base: m[2].replace(/\/mcp$/, ""),
  });
  return server;
}

// SIGTERM, then SIGKILL if the process is still there after `graceMs`. Resolves the exit info.
export function stopProcess(proc, graceMs = 3000) {
  if (proc.exitCode !== null || proc.signalCode !== null) {
    return Promise.resolve({ code: proc.exitCode, signal: proc.signalCode });
  }
  return new Promise((resolve) => {
    const kill = setTimeout(() => proc.kill("SIGKILL"), graceMs);
    proc.once("exit", (code, signal) => {
      clearTimeout(kill);
      resolve({ code, signal });
    });
    proc.kill("SIGTERM");
  });
}

// Resolves { code, signal } when `proc` exits, or rejects after `ms`.
// Resolves once the process has exited AND its stdio streams are drained ('close'), so output
// written just before exit is never missed.
export function waitExit(proc, ms, what = "process exit") {
  const streams = [proc.stdout, proc.stderr].filter((s) => s && !s.readableEnded && !s.destroyed);
  const drained = streams.map((s) => new Promise((resolve) => s.once("close", resolve)));
  const exited =
    proc.exitCode !== null || proc.signalCode !== null
      ? Promise.resolve({ code: proc.exitCode, signal: proc.signalCode })
      : new Promise((resolve) => proc.once("exit", (code, signal) => resolve({ code, signal })));
  return withTimeout(
    Promise.all([exited, ...drained]).then(([r]) => r),
    ms,
    what,
  );
}

// ---------------------------------------------------------------------------------------------
// Loopback fixture servers

export const FIXTURES = path.join(REPO_ROOT, "tests/fixtures/upstream");

// Starts `node ...args` for a fixture server that writes the port it listens on to
// $ONEMCP_PORT_FILE (npm servers do so when preloaded with tests/fixtures/upstream/
// loopback_listen.cjs, which also keeps them on 127.0.0.1). Resolves { proc, port, url, stop() }
// once the port is known; the process is killed at exit.
export async function startLoopbackFixture(args, { timeoutMs = 20000 } = {}) {
  const portFile = path.join(tempDir("1mcp-fixture-"), "port");
  const proc = spawn(process.execPath, args, {
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, ONEMCP_PORT_FILE: portFile },
  });
  let err = "";
  proc.stderr.setEncoding("utf8").on("data", (d) => (err = (err + d).slice(-4000)));
  const fixture = { proc, stop: () => stopProcess(proc) };
  servers.add(fixture);
  proc.on("exit", () => servers.delete(fixture));
  const deadline = Date.now() + timeoutMs;
  while (!fs.existsSync(portFile)) {
    if (proc.exitCode !== null || Date.now() > deadline) {
      await fixture.stop();
      throw new Error(`fixture ${args.join(" ")} did not listen within ${timeoutMs} ms; stderr:\n${err}`);
    }
    await sleep(50);
  }
  fixture.port = Number(fs.readFileSync(portFile, "utf8"));
  fixture.url = `http://127.0.0.1:${fixture.port}`;
  return fixture;
}

// Resolves when `pid` no longer runs (gone or a zombie), or rejects after `ms`.
export async function waitGone(pid, ms, what = `process ${pid}`) {
  const deadline = Date.now() + ms;
  for (;;) {
    let state;
    try {
      state = fs.readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /s, "")[0];
    } catch {
      return;
    }
    if (state === "Z" || state === "X") return;
    if (Date.now() > deadline) throw new Error(`${what} still runs after ${ms} ms`);
    await sleep(50);
  }
}

// ---------------------------------------------------------------------------------------------
// SDK clients

// Connects an SDK client over Streamable HTTP. `onResponse(answer)` (optional) sees every
// answer to a POST once its body ended, including what the SDK drops after a cancellation:
// { request (the JSON POSTed), status, messages (the JSON-RPC messages of a JSON body or of an
// SSE stream's events), endedAt (performance.now()) }.
export async function connectHttp(url, { onResponse, timeoutMs = 10000 } = {}) {
  const fetchTap = onResponse
    ? async (input, init) => {
        const res = await fetch(input, init);
        if (init?.method === "POST") {
          let request = null;
          try {
            request = JSON.parse(init.body);
          } catch {}
          const sse = (res.headers.get("content-type") ?? "").includes("text/event-stream");
          res
            .clone()
            .text()
            .then((body) => {
              const texts = sse
                ? body.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5))
                : body ? [body] : [];
              const messages = texts.flatMap((t) => {
                try {
                  return [JSON.parse(t)];
                } catch {
                  return [];
                }
              });
              onResponse({ request, status: res.status, messages, endedAt: performance.now() });
            }, () => {});
        }
        return res;
      }
    : undefined;
  const transport = new StreamableHTTPClientTransport(new URL(url), { fetch: fetchTap });
  const client = new Client({ name: "1mcp-e2e", version: "1.0.0" });
  await withTimeout(client.connect(transport), timeoutMs, "MCP connect");
  return client;
}

// Calls a tool with a bounded wait (the SDK's own request timeout and ours).
export function callTool(client, name, args, { timeoutMs = 20000, signal } = {}) {
  return withTimeout(
    client.callTool({ name, arguments: args }, undefined, { timeout: timeoutMs, signal }),
    timeoutMs + 1000,
    `tools/call ${name}`,
  );
}

export const runJs = (client, code, extra = {}, opts) =>
  callTool(client, "run_js", { code, ...extra }, opts);
export const runPy = (client, code, extra = {}, opts) =>
  callTool(client, "run_py", { code, ...extra }, opts);

// Per-call limits, e.g. limits({ timeoutMs: 1000 }).
export const limits = (l) => ({ policy: { limits: l } });

export const ping = (client, ms = 3000) => withTimeout(client.ping({ timeout: ms }), ms + 500, "ping");

// A compact description of a tool result for assertion messages.
export function show(result) {
  const sc = result?.structuredContent;
  if (!sc) return JSON.stringify(result).slice(0, 2000);
  if (typeof sc.stdout !== "string") return JSON.stringify(result).slice(0, 2000);
  const clip = (s) => (s.length > 600 ? s.slice(0, 600) + `…(${s.length} chars)` : s);
  return JSON.stringify({ ...sc, stdout: clip(sc.stdout), stderr: clip(sc.stderr) }, null, 1);
}

// ---------------------------------------------------------------------------------------------
// Raw HTTP (fetch) helpers

export const JSON_HEADERS = {
  "content-type": "application/json",
  accept: "application/json, text/event-stream",
};

// POSTs `body` (an object, or a string sent verbatim) to `url`. Resolves
// { status, headers, text, json } (json undefined when the body is not JSON).
export async function post(url, body, headers = {}, timeoutMs = 10000) {
  const res = await fetch(url, {
    method: "POST",
    headers: { ...JSON_HEADERS, ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  return readResponse(res);
}

export async function request(url, init = {}, timeoutMs = 10000) {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
  return readResponse(res);
}

async function readResponse(res) {
  const bytes = new Uint8Array(await res.arrayBuffer());
  const text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  let json;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

// Initialises an MCP session over raw HTTP; resolves { sid, post(body, headers) } where post
// sends with the session and protocol-version headers.
export async function rawSession(url) {
  const init = await post(url, {
    jsonrpc: "2.0",
    id: 0,
    method: "initialize",
    params: {
      protocolVersion: PROTOCOL,
      capabilities: {},
      clientInfo: { name: "1mcp-e2e-raw", version: "1.0.0" },
    },
  });
  if (init.status !== 200) throw new Error(`initialize: HTTP ${init.status} ${init.text}`);
  const sid = init.headers.get("mcp-session-id");
  if (!sid) throw new Error("initialize: no Mcp-Session-Id header");
  const headers = { "mcp-session-id": sid, "mcp-protocol-version": PROTOCOL };
  const n = await post(url, { jsonrpc: "2.0", method: "notifications/initialized" }, headers);
  if (n.status !== 202) throw new Error(`notifications/initialized: HTTP ${n.status} ${n.text}`);
  return {
    sid,
    headers,
    init,
    post: (body, extra = {}, timeoutMs) => post(url, body, { ...headers, ...extra }, timeoutMs),
  };
}

// ---------------------------------------------------------------------------------------------
// Sandbox checks

export const RUN_HOST_UID = 1900001000; // host view of a run's inner uid 1000 (inner 0 → 1900000000)

// Host pids of processes running as the run uid below the server process.
export function runProcessesOnHost(rootPid) {
  const procs = new Map();
  for (const d of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const st = fs.readFileSync(`/proc/${d}/status`, "utf8");
      procs.set(Number(d), {
        ppid: Number(/^PPid:\s+(\d+)/m.exec(st)[1]),
        uid: Number(/^Uid:\s+(\d+)/m.exec(st)[1]),
      });
    } catch {
      // gone meanwhile
    }
  }
  const below = (pid) => {
    for (let p = pid, n = 0; p > 1 && n < 64; n++) {
      p = procs.get(p)?.ppid;
      if (p === rootPid) return true;
      if (p === undefined) return false;
    }
    return false;
  };
  return [...procs].filter(([pid, v]) => v.uid === RUN_HOST_UID && below(pid)).map(([pid]) => pid);
}

// After a hostile case: both runtimes still answer, the server still runs, and nothing of the
// finished run is left on the host.
export async function assertHealthy(server, client) {
  const r = await runJs(client, "console.log('still here')");
  assert.equal(r.structuredContent?.stdout, "still here\n", "server healthy after the case: " + show(r));
  const p = await runPy(client, "print('py here')");
  assert.equal(p.structuredContent?.stdout, "py here\n", "python healthy after the case: " + show(p));
  assert.equal(server.proc.exitCode, null, "server process still running");
  let left = runProcessesOnHost(server.proc.pid);
  for (let i = 0; i < 20 && left.length; i++) {
    await sleep(100);
    left = runProcessesOnHost(server.proc.pid);
  }
  assert.deepEqual(left, [], "processes of a finished run still exist on the host");
}

// "label: value" lines of a run's stdout → { label: value }.
export function lines(r) {
  const m = {};
  for (const l of r.structuredContent.stdout.split("\n")) {
    const i = l.indexOf(": ");
    if (i > 0) m[l.slice(0, i)] = l.slice(i + 2);
  }
  return m;
}

export function assertOk(r) {
  assert.equal(r.structuredContent.outcome, "ok", show(r));
  assert.equal(r.structuredContent.exitCode, 0, show(r));
  assert.equal(r.isError, false, show(r));
}
