// Shared by the benchmarks: statistics, a throwaway project and server process, and a raw
// JSON-RPC client over node:http with a keep-alive connection (so the numbers are the server's,
// not an SDK's).
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const REPO = fileURLToPath(new URL("../", import.meta.url));

// A trivial call's code per tool, printing `n` (its answer is checked to be "n\n").
export const PRINT_CODE = { run_js: (n) => `console.log(${n})`, run_py: (n) => `print(${n})` };

// ------------------------------------------------------------------------------------------
// Statistics

export function percentile(sorted, p) {
  if (!sorted.length) return NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx];
}

export function summarize(samples) {
  const s = [...samples].sort((a, b) => a - b);
  return {
    n: s.length,
    p50: percentile(s, 50),
    p95: percentile(s, 95),
    p99: percentile(s, 99),
    min: s[0],
    max: s[s.length - 1],
    mean: s.reduce((a, b) => a + b, 0) / (s.length || 1),
  };
}

export const median = (xs) => summarize(xs).p50;
export const fmt = (ms) => (Number.isFinite(ms) ? (ms < 10 ? ms.toFixed(2) : ms.toFixed(1)) : "n/a");

// ------------------------------------------------------------------------------------------
// Options

// Parses `--some-name value` options into a copy of `defaults` (key `someName`). The default's
// type decides: a boolean is a flag without a value, a number must pass `number.ok` (message:
// "needs <number.what>"), anything else (null or a string) takes the text. With `quick` given,
// `--quick` sets those values for the options not named explicitly. Unknown arguments throw.
export function parseOptions(argv, defaults, {
  quick = null,
  number = { ok: (n) => Number.isFinite(n) && n >= 0, what: "a non-negative number" },
} = {}) {
  const o = { ...defaults };
  if (quick) o.quick = false;
  const explicit = new Set();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const key = a.startsWith("--") ? a.slice(2).replace(/-([a-z])/g, (_, c) => c.toUpperCase()) : null;
    if (key === null || !Object.hasOwn(o, key)) throw new Error(`unknown argument ${a}`);
    if (typeof o[key] === "boolean") {
      o[key] = true;
      continue;
    }
    if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
    const text = argv[++i];
    if (typeof o[key] === "number") {
      const n = Number(text);
      if (!number.ok(n)) throw new Error(`${a} needs ${number.what}`);
      o[key] = n;
    } else {
      o[key] = text;
    }
    explicit.add(key);
  }
  if (o.quick) for (const [k, v] of Object.entries(quick)) if (!explicit.has(k)) o[k] = v;
  return o;
}

// The binary to measure: `bin`, else build/1mcp or build-e2e/1mcp of this checkout.
export function findBin(bin) {
  bin ??= ["build/1mcp", "build-e2e/1mcp"].map((p) => path.join(REPO, p)).find((p) => fs.existsSync(p));
  if (!bin) throw new Error("no 1mcp binary found; pass --bin <path>");
  return path.resolve(bin);
}

// ------------------------------------------------------------------------------------------
// Server process

const tmpDirs = [];
const children = new Set();
function cleanup() {
  for (const c of children) c.kill("SIGKILL");
  for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true });
}
process.on("exit", cleanup);
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => process.exit(130));

// A project made by `1mcp init`, with `edit(config)` applied when given.
export function projectDir(bin, edit) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "1mcp-bench-"));
  tmpDirs.push(dir);
  const r = spawnSync(bin, ["init", "--dir", dir], { encoding: "utf8", timeout: 15000 });
  if (r.status !== 0) throw new Error(`1mcp init failed: ${r.stderr}`);
  if (edit) {
    const file = path.join(dir, "1mcp.config.json");
    const cfg = JSON.parse(fs.readFileSync(file, "utf8"));
    fs.writeFileSync(file, JSON.stringify(edit(cfg) ?? cfg, null, 2));
  }
  return dir;
}

const READY_RE = /ready in ([\d.]+) ms: MCP endpoint http:\/\/([^\s/]+):(\d+)\/mcp/;

// Spawns the server; resolves { proc, port, selfReadyMs, spawnedAt } once the ready line shows.
// `extra` is appended to the serve arguments (e.g. ["--insecure-no-sandbox"]).
export function startServer(bin, dir, extra = [], timeoutMs = 30000) {
  return new Promise((resolve, reject) => {
    const spawnedAt = performance.now();
    const proc = spawn(bin, ["serve", "--dir", dir, "-p", "0", "--no-ui", ...extra], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    children.add(proc);
    proc.on("exit", () => children.delete(proc));
    let err = "";
    let ready = false;
    const timer = setTimeout(() => {
      proc.kill("SIGKILL");
      reject(new Error(`server not ready after ${timeoutMs} ms:\n${err}`));
    }, timeoutMs);
    // The server logs a line per call: once it is ready only a bounded tail is kept (for an
    // error message), so reading its log costs the client O(1) per line, not a scan of all of it.
    proc.stderr.setEncoding("utf8").on("data", (d) => {
      err = ready ? (err + d).slice(-16384) : err + d;
      if (ready) return;
      const m = READY_RE.exec(err);
      if (m) {
        ready = true;
        clearTimeout(timer);
        resolve({ proc, port: Number(m[3]), host: m[2], selfReadyMs: Number(m[1]), spawnedAt });
      }
    });
    proc.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${code}) before ready:\n${err}`));
    });
  });
}

export function stopServer(proc) {
  return new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
    const k = setTimeout(() => proc.kill("SIGKILL"), 3000);
    proc.once("exit", () => {
      clearTimeout(k);
      resolve();
    });
    proc.kill("SIGTERM");
  });
}

// ------------------------------------------------------------------------------------------
// HTTP

export function httpRequest({ port, agent, method = "POST", path: p = "/mcp", headers = {}, body }) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: "127.0.0.1", port, path: p, method, agent, headers },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () =>
          resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString("utf8") }),
        );
        res.on("error", reject);
      },
    );
    req.setTimeout(30000, () => req.destroy(new Error("request timed out")));
    req.on("error", reject);
    req.end(body);
  });
}

// One MCP session on its own keep-alive connection (or `maxSockets` of them, for concurrent
// calls).
export class RawClient {
  constructor(port, { maxSockets = 1 } = {}) {
    this.port = port;
    this.agent = new http.Agent({ keepAlive: true, maxSockets });
    this.nextId = 1;
    this.sid = null;
  }

  headers(len) {
    const h = {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      "content-length": len,
    };
    if (this.sid) {
      h["mcp-session-id"] = this.sid;
      h["mcp-protocol-version"] = "2025-06-18";
    }
    return h;
  }

  async send(msg) {
    const body = JSON.stringify(msg);
    return httpRequest({ port: this.port, agent: this.agent, headers: this.headers(Buffer.byteLength(body)), body });
  }

  async init() {
    const r = await this.send({
      jsonrpc: "2.0",
      id: 0,
      method: "initialize",
      params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "1mcp-bench", version: "1" } },
    });
    if (r.status !== 200) throw new Error(`initialize: HTTP ${r.status} ${r.body}`);
    this.sid = r.headers["mcp-session-id"];
    const n = await this.send({ jsonrpc: "2.0", method: "notifications/initialized" });
    if (n.status !== 202) throw new Error(`initialized: HTTP ${n.status}`);
    return this;
  }

  // Calls a tool with `args`; resolves the client-side wall time in ms (request sent → end of
  // the response body), the HTTP status, the raw body and the structuredContent (if any).
  async callTool(tool, args) {
    const t0 = performance.now();
    const r = await this.send({
      jsonrpc: "2.0",
      id: this.nextId++,
      method: "tools/call",
      params: { name: tool, arguments: args },
    });
    const ms = performance.now() - t0;
    let sc;
    try {
      sc = JSON.parse(r.body).result?.structuredContent;
    } catch {}
    return { ms, status: r.status, body: r.body, sc };
  }

  // Calls a tool with `code`; resolves the wall time in ms and whether the result was right.
  async call(tool, code, expectStdout) {
    const r = await this.callTool(tool, { code });
    const ok = r.status === 200 && r.sc?.outcome === "ok" && r.sc.stdout === expectStdout;
    return { ms: r.ms, ok, body: r.body, durationMs: r.sc?.durationMs };
  }

  async close() {
    // On a connection of its own: this session's may all be busy with calls.
    await httpRequest({ port: this.port, agent: false, method: "DELETE", headers: { "mcp-session-id": this.sid } }).catch(() => {});
    this.agent.destroy();
  }
}

// `n` busy processes (bounded: they are killed when the phase ends, and die with us).
export function startLoad(n) {
  const procs = Array.from({ length: n }, () => spawn(process.execPath, ["-e", "for(;;){}"], { stdio: "ignore" }));
  return () => { for (const p of procs) p.kill("SIGKILL"); };
}

// Waits until the machine is idle (under 10% of its CPUs busy in two consecutive 250 ms
// windows, from /proc/stat) or `maxMs` passed, so one phase's leftovers (a server still working
// through a backlog, runs being torn down) do not load the next; returns the ms waited.
export async function settle(maxMs = 30000) {
  const busy = () => {
    const f = fs.readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
    const idle = f[3] + f[4];
    return { total: f.reduce((a, b) => a + b, 0), idle };
  };
  const t0 = Date.now();
  let quietWindows = 0;
  let prev = busy();
  while (Date.now() - t0 < maxMs && quietWindows < 2) {
    await new Promise((res) => setTimeout(res, 250));
    const cur = busy();
    const dt = cur.total - prev.total;
    quietWindows = dt > 0 && (dt - (cur.idle - prev.idle)) / dt < 0.1 ? quietWindows + 1 : 0;
    prev = cur;
  }
  return Date.now() - t0;
}

export function machine() {
  const cpus = os.cpus();
  let nproc = String(os.availableParallelism?.() ?? cpus.length);
  const r = spawnSync("nproc", { encoding: "utf8" });
  if (r.status === 0) nproc = r.stdout.trim();
  return {
    nproc,
    cpu: cpus[0]?.model?.trim() ?? "unknown",
    logicalCpus: cpus.length,
    memGiB: (os.totalmem() / 2 ** 30).toFixed(1),
    kernel: `${os.type()} ${os.release()}`,
    load: os.loadavg().map((x) => x.toFixed(2)).join(" "),
    node: process.version,
  };
}

// ------------------------------------------------------------------------------------------
// Process tree: PSS, from /proc

export function treePids(root) {
  const children = new Map();
  for (const d of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(Number(d));
    } catch {}
  }
  const out = [];
  const stack = [root];
  while (stack.length) {
    const p = stack.pop();
    out.push(p);
    for (const c of children.get(p) ?? []) stack.push(c);
  }
  return out;
}

export function treePssKiB(root) {
  let kib = 0;
  for (const p of treePids(root)) {
    try {
      const m = /^Pss:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${p}/smaps_rollup`, "utf8"));
      if (m) kib += Number(m[1]);
    } catch {}
  }
  return kib;
}

// Minor faults of the tree: each live process's own plus its reaped children's (a run forked
// by a zygote is counted once the zygote has reaped it).
