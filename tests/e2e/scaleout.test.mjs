// Three replicas (`serve --replica r1|r2|r3`, one project directory: one config, signing key and
// capsule cache) behind Debian's nginx with packaging/nginx/1mcp.conf, its ports changed to this
// test's, on loopback. nginx runs as a child of the test with its own prefix, pid, logs and
// temporary paths. Through it: calls without a session (round robin), stateless-era sessions
// (the SDK v2 client mirrors `session` into Mcp-Param-Session) and legacy MCP sessions
// (Mcp-Session-Id); then one replica is killed (SIGKILL) with the load running:
//   - every call without a session is answered: with its result, or — only a call the killed
//     replica was running — with nginx's error saying it was not sent elsewhere (a call that
//     had started a 20 s run there is never run again by another replica);
//   - every session on a surviving replica keeps its state; every session of the killed one is
//     refused with an error naming the replica (run sessions) or 404 (MCP sessions);
//   - identical code run on different replicas stores one capsule, which verifies.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { after, test } from "node:test";

import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";

import { BIN, REPO_ROOT, makeProject, post, rawSession, request, startServer, stopProcess, tempDir, withTimeout } from "./lib.mjs";

const NGINX = ["/usr/sbin/nginx", "/usr/bin/nginx"].find((p) => fs.existsSync(p));
const MODERN = "2026-07-28";
const NAMES = ["r1", "r2", "r3"];

const cleanup = [];
after(async () => {
  for (const f of cleanup.reverse()) await f();
});

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// packaging/nginx/1mcp.conf with this test's ports, inside a main config of its own.
function nginxConfig(dir, lbPort, ports) {
  let conf = fs.readFileSync(path.join(REPO_ROOT, "packaging/nginx/1mcp.conf"), "utf8");
  const swap = (from, to) => {
    assert.match(conf, from, `packaging/nginx/1mcp.conf names ${from}`);
    conf = conf.replaceAll(from, to);
  };
  swap(/listen 127\.0\.0\.1:7800;/g, `listen 127.0.0.1:${lbPort};`);
  ports.forEach((p, i) => swap(new RegExp(`127\\.0\\.0\\.1:780${i + 1}\\b`, "g"), `127.0.0.1:${p}`));
  assert.doesNotMatch(conf, /:780\d\b/, "every port swapped");
  fs.writeFileSync(path.join(dir, "1mcp.conf"), conf);
  for (const d of ["body", "proxy", "fastcgi", "uwsgi", "scgi"]) fs.mkdirSync(path.join(dir, d));
  const main = `daemon off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log info;
events { worker_connections 1024; }
http {
  access_log ${dir}/access.log;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  include ${dir}/1mcp.conf;
}
`;
  fs.writeFileSync(path.join(dir, "nginx.conf"), main);
  return path.join(dir, "nginx.conf");
}

async function startNginx(dir, conf, lbPort) {
  const args = ["-p", dir, "-c", conf, "-e", path.join(dir, "error.log")];
  const check = spawnSync(NGINX, [...args, "-t"], { encoding: "utf8" });
  assert.equal(check.status, 0, `nginx -t: ${check.stderr}`);
  const proc = spawn(NGINX, args, { stdio: ["ignore", "ignore", "pipe"] });
  let err = "";
  proc.stderr.setEncoding("utf8").on("data", (d) => (err += d));
  cleanup.push(() => stopProcess(proc));
  // Ready once it answers: /health of a replica through it.
  const deadline = Date.now() + 10000;
  for (;;) {
    assert.equal(proc.exitCode, null, `nginx exited: ${err}${fs.readFileSync(path.join(dir, "error.log"), "utf8")}`);
    const ok = await request(`http://127.0.0.1:${lbPort}/health`, {}, 1000).then((r) => r.status === 200, () => false);
    if (ok) return proc;
    assert.ok(Date.now() < deadline, "nginx did not answer within 10 s");
    await new Promise((r) => setTimeout(r, 50));
  }
}

const text = (r) => (r.content ?? []).map((c) => c.text ?? "").join("");

// A tools/call without any session, over plain HTTP (no Mcp-Session-Id: a session of its own
// that ends with its answer), as any client may send it.
function sessionless(url, id, code, tool = "run_js", timeoutMs = 20000) {
  return post(url, { jsonrpc: "2.0", id, method: "tools/call", params: { name: tool, arguments: { code } } }, {}, timeoutMs);
}

async function runsInFlight(replica) {
  const r = await request(`${replica.base}/metrics`);
  return Number(/^onemcp_runs_in_flight (\d+)/m.exec(r.text)[1]);
}

test("three replicas behind nginx: sessionless calls answered, sessions kept or refused when one is killed", { skip: !NGINX && "nginx not installed (scripts/setup.sh installs it)", timeout: 120000 }, async () => {
  const lbPort = await freePort();
  const dir = makeProject((cfg) => {
    cfg.server = { ...(cfg.server ?? {}), allowedHosts: [`127.0.0.1:${lbPort}`] };
    cfg.sessions = { ...(cfg.sessions ?? {}), maxPerPrincipal: 16 };
  });
  const replicas = await Promise.all(
    NAMES.map((n) => startServer({ dir, extra: ["--replica", n, "--log-format", "json"], readyTimeoutMs: 60000 })),
  );
  for (const r of replicas) cleanup.push(() => r.stop());
  const byName = Object.fromEntries(NAMES.map((n, i) => [n, replicas[i]]));
  const ngx = tempDir("1mcp-nginx-");
  await startNginx(ngx, nginxConfig(ngx, lbPort, replicas.map((r) => r.port)), lbPort);
  const url = `http://127.0.0.1:${lbPort}/mcp`;

  // The victim: the replica that gets a 20 s call without a session (round robin picks it).
  const long = sessionless(url, "long", "import time\ntime.sleep(20)\nprint('slept')", "run_py", 60000);
  let victim;
  for (const deadline = Date.now() + 15000; !victim; ) {
    const inFlight = await Promise.all(replicas.map(runsInFlight));
    victim = NAMES.find((n, i) => inFlight[i] > 0);
    assert.ok(victim || Date.now() < deadline, "the long call never started on a replica");
  }
  const survivors = NAMES.filter((n) => n !== victim);

  // Run sessions through a stateless-era client, until every replica holds one.
  const client = new Client({ name: "1mcp-e2e-scaleout", version: "1.0.0" }, { versionNegotiation: { mode: { pin: MODERN } } });
  await withTimeout(client.connect(new StreamableHTTPClientTransport(new URL(url))), 20000, "connect through nginx");
  cleanup.push(() => client.close());
  const sessions = [];
  for (let i = 0; i < 15 && new Set(sessions.map((s) => s.replica)).size < 3; ++i) {
    const r = await client.callTool({ name: "session_create", arguments: {} });
    const handle = r.structuredContent.session;
    const m = /^ses_(r\d)\.[0-9a-f]{64}$/.exec(handle);
    assert.ok(m, `a handle names its replica: ${handle}`);
    sessions.push({ handle, replica: m[1], count: 0, refused: [], errors: [] });
  }
  assert.deepEqual(new Set(sessions.map((s) => s.replica)), new Set(NAMES), "sessions on every replica");
  for (const s of sessions) {
    const r = await client.callTool({ name: "run_py", arguments: { code: "n = 0", session: s.handle } });
    assert.ok(!r.isError, text(r));
  }

  // Legacy MCP sessions (Mcp-Session-Id), until one is on the victim and one elsewhere.
  const legacy = [];
  for (let i = 0; i < 15 && !(legacy.some((l) => l.replica === victim) && legacy.some((l) => l.replica !== victim)); ++i) {
    const raw = await rawSession(url);
    const m = /^(r\d)\.[0-9a-f]+$/.exec(raw.sid);
    assert.ok(m, `an MCP session id names its replica: ${raw.sid}`);
    legacy.push({ raw, replica: m[1], ok: 0, after: [] });
  }
  const legacyOnVictim = legacy.find((l) => l.replica === victim);
  const legacyElsewhere = legacy.find((l) => l.replica !== victim);
  assert.ok(legacyOnVictim && legacyElsewhere, "legacy sessions on the victim and elsewhere");

  // The load: calls without a session, and calls in every run session, until told to stop.
  let killed = false;
  let stop = false;
  const calls = []; // { afterKill, status, ok, text }
  const workers = [];
  for (let w = 0; w < 4; ++w) {
    workers.push((async () => {
      for (let i = 0; !stop; ++i) {
        const afterKill = killed;
        const r = await sessionless(url, `w${w}-${i}`, `console.log(${w} * 1000 + ${i})`);
        const ok = r.status === 200 && r.json?.result?.structuredContent?.stdout === `${w * 1000 + i}\n`;
        calls.push({ afterKill, status: r.status, ok, text: r.text });
      }
    })());
  }
  for (const s of sessions) {
    workers.push((async () => {
      while (!stop) {
        const afterKill = killed;
        try {
          const r = await client.callTool({ name: "run_py", arguments: { code: "n += 1\nprint(n)", session: s.handle } });
          if (!r.isError && r.structuredContent.stdout === `${s.count + 1}\n`) ++s.count;
          else if (r.isError) s.refused.push({ afterKill, text: text(r) });
          else s.errors.push(`${afterKill}: ${JSON.stringify(r.structuredContent)}`);
        } catch (e) {
          s.errors.push(`${afterKill}: ${e.message}`);
        }
        if (s.refused.length) return; // refused once: the session is gone
      }
    })());
  }
  const state = () =>
    JSON.stringify({
      calls: calls.length,
      afterKill: calls.filter((c) => c.afterKill).length,
      failed: calls.filter((c) => !c.ok).map((c) => c.text.slice(0, 200)),
      sessions: sessions.map((s) => ({ replica: s.replica, count: s.count, refused: s.refused, errors: s.errors })),
    });
  const waitFor = async (cond, what) => {
    for (const deadline = Date.now() + 30000; !cond(); ) {
      if (Date.now() > deadline) {
        stop = true;
        assert.fail(`timed out waiting for ${what}: ${state()}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  await waitFor(() => calls.length >= 40 && sessions.every((s) => s.count >= 3), "the load before the kill");
  for (const l of legacy) {
    const r = await l.raw.post({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "run_js", arguments: { code: "1 + 1" } } });
    assert.equal(r.status, 200, r.text);
  }

  // Kill the victim while the long call runs there and the load goes on.
  const killedAt = calls.length;
  byName[victim].proc.kill("SIGKILL");
  // Its exit, not the end of its stderr: what it started may hold that a while longer.
  const proc = byName[victim].proc;
  await withTimeout(
    new Promise((resolve) => (proc.exitCode !== null || proc.signalCode !== null ? resolve() : proc.once("exit", resolve))),
    10000,
    `replica ${victim} exit`,
  );
  proc.stdout.destroy();
  proc.stderr.destroy();
  killed = true;
  await waitFor(
    () => calls.filter((c) => c.afterKill).length >= 60 && sessions.filter((s) => s.replica !== victim).every((s) => s.count >= 8) &&
      sessions.filter((s) => s.replica === victim).every((s) => s.refused.length),
    "the load after the kill",
  );
  stop = true;
  await Promise.all(workers);

  // The long call: answered by nginx, not run again on another replica.
  const longAnswer = await long;
  assert.equal(longAnswer.status, 502, `the call the killed replica ran: ${longAnswer.text}`);
  assert.match(longAnswer.json.error.message, /stopped before its answer \(the call may have run, so it was not sent to another replica\)/);

  // Calls without a session: each answered; the only errors are nginx's, for calls the victim
  // was running when it died (at most one per worker); every call sent after it died succeeded.
  const failed = calls.filter((c) => !c.ok);
  for (const c of failed) {
    assert.equal(c.status, 502, c.text);
    assert.match(c.text, /no 1mcp replica answered/);
    assert.equal(c.afterKill, false, `a call sent after ${victim} died failed: ${c.text}`);
  }
  assert.ok(failed.length <= 4, `${failed.length} calls failed`);
  assert.ok(calls.length > killedAt + 60, "calls went on after the kill");

  // Run sessions: kept on the survivors, refused with the replica's name on the victim.
  for (const s of sessions) {
    if (s.replica !== victim) {
      assert.deepEqual({ errors: s.errors, refused: s.refused }, { errors: [], refused: [] }, `session on ${s.replica}`);
      assert.ok(s.count >= 8, `session on ${s.replica}: ${s.count} calls`);
    } else {
      // A call the victim was running when it died gets nginx's error; every later one is refused.
      assert.ok(s.errors.every((e) => /no 1mcp replica answered/.test(e)), s.errors.join("\n"));
      assert.equal(s.refused.length, 1);
      assert.match(s.refused[0].text, new RegExp(`unknown session: replica '${victim}' made it and this is replica '(${survivors.join("|")})'`));
    }
  }
  // MCP sessions: the survivor's goes on; the victim's gets 404, so its client initializes again.
  const call = (l) => l.raw.post({ jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "run_js", arguments: { code: "2 + 2" } } });
  const kept = await call(legacyElsewhere);
  assert.equal(kept.status, 200, kept.text);
  assert.equal(kept.json.result.structuredContent.value, "4");
  const gone = await call(legacyOnVictim);
  assert.equal(gone.status, 404, gone.text);

  // One cache for all: identical code on two replicas, one capsule, which verifies.
  const ids = [];
  for (const n of survivors) {
    const r = await sessionless(byName[n].url, "same", "console.log('same everywhere')");
    ids.push(r.json.result.structuredContent.capsule);
  }
  assert.equal(ids[0], ids[1]);
  const verify = spawnSync(BIN, ["capsule", "verify", ids[0], "--dir", dir], { encoding: "utf8" });
  assert.equal(verify.status, 0, verify.stdout + verify.stderr);
  for (const n of survivors) assert.ok(!byName[n].stderr().includes("replacing it"), byName[n].stderr());
});
