// The capsule cache on a full or read-only disk. The server runs under `unshare -m` with a small
// tmpfs mounted on its cacheDir in a mount namespace of its own, so nothing is mounted on the host
// (and nothing is left behind when a test dies); the test reaches that tmpfs through
// /proc/<server pid>/root.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { test } from "node:test";

import { BIN, assertOk, connectHttp, makeProject, runJs, show, sleep, startServer } from "./lib.mjs";

// argv that mounts a tmpfs of `size` on `dir` in a new mount namespace, optionally read-only or
// filled up, then execs the rest of the command line.
function inTmpfs(dir, size, { ro = false, full = false } = {}) {
  const mount = `mount -t tmpfs -o size=${size},mode=0700${ro ? ",ro" : ""} tmpfs "$0"`;
  const fill = full ? `{ dd if=/dev/zero of="$0/filler" bs=4k 2>/dev/null; true; } && ` : "";
  return ["unshare", "-m", "--propagation", "private", "sh", "-c", `${mount} && ${fill}exec "$@"`, dir];
}

// A project whose cacheDir exists (the mount point); returns { dir, cache }.
function project(edit) {
  const dir = makeProject(edit);
  const cache = path.join(dir, ".1mcp/capsules");
  fs.mkdirSync(cache, { recursive: true });
  return { dir, cache };
}

// Writes `file` until its file system is full.
function fill(file) {
  const fd = fs.openSync(file, "a");
  const chunk = Buffer.alloc(64 << 10, 1);
  try {
    for (;;) fs.writeSync(fd, chunk);
  } catch (e) {
    if (e.code !== "ENOSPC") throw e;
  } finally {
    fs.closeSync(fd);
  }
}

const capsuleIds = (dir) => fs.readdirSync(dir).filter((n) => /^[0-9a-f]{64}$/.test(n));

// The server's log from `from` on, once it holds every string of `wanted` (stderr may arrive
// after the response it preceded); fails after 5 s.
async function logged(server, from, wanted) {
  const deadline = Date.now() + 5000;
  for (;;) {
    const log = server.stderr().slice(from);
    if (wanted.every((w) => log.includes(w))) return log;
    if (Date.now() > deadline) assert.fail(`the log lacks ${JSON.stringify(wanted)}:\n${log}`);
    await sleep(20);
  }
}

test("a full cacheDir: runs fail as internal errors of the disk, gc makes room, no failure sticks", async () => {
  // Retention by age or size never removes anything here: only a full disk does.
  const { dir, cache } = project((cfg) => {
    cfg.capsules = { gcIntervalMs: 3600000 };
  });
  const server = await startServer({ dir, wrap: inTmpfs(cache, "1m") });
  const client = await connectHttp(server.url);
  const tmpfs = `/proc/${server.proc.pid}/root${cache}`; // the cacheDir as the server sees it
  const pad = "x".repeat(60000); // ~64 KiB capsules: 15 of them fill the disk
  try {
    assert.deepEqual(capsuleIds(tmpfs), [], "the tmpfs is the server's cacheDir");

    // Full, and gc has nothing to remove: the run does not start, and says why.
    fill(path.join(tmpfs, "filler"));
    for (let i = 0; i < 2; i++) {
      const logLength = server.stderr().length;
      const r = await runJs(client, `// ${pad}\nconsole.log('first')`);
      assert.equal(r.isError, true, show(r));
      assert.equal(r.structuredContent.outcome, "internal", show(r));
      assert.equal(r.structuredContent.exitCode, -1, show(r));
      assert.equal(
        r.structuredContent.stderr,
        "the capsule cache could not store this run (No space left on device); the run did not start\n",
      );
      assert.match(r.content[0].text, /\[internal error\]/);
      assert.ok(!JSON.stringify(r).includes(dir), "the client is not told the server's paths");
      await logged(server, logLength, [
        `the capsule cache ${cache} could not store its capsule`,
        "No space left on device",
      ]);
    }
    const lastFullDiskGc = Date.now();

    // Room again: the same call runs, nothing of the failure is remembered.
    fs.rmSync(path.join(tmpfs, "filler"));
    const ids = [];
    for (let i = 0; i < 6; i++) {
      const r = await runJs(client, `// ${pad}\nconsole.log(${i === 0 ? "'first'" : i})`);
      assertOk(r);
      ids.push(r.structuredContent.capsule);
    }
    assert.deepEqual(capsuleIds(tmpfs).sort(), [...ids].sort());

    // Full again, with capsules to remove: gc runs at once (at most once a second), removes the
    // least recently used half, and the call is stored and runs.
    await sleep(Math.max(0, 1100 - (Date.now() - lastFullDiskGc)));
    fill(path.join(tmpfs, "filler"));
    const logLength = server.stderr().length;
    const r = await runJs(client, `// ${pad}\nconsole.log('after gc')`);
    assertOk(r);
    assert.equal(r.structuredContent.stdout, "after gc\n");
    await logged(server, logLength, ["the disk is full: removed 3 capsule(s) to make room"]);
    assert.deepEqual(capsuleIds(tmpfs).sort(), [...ids.slice(3), r.structuredContent.capsule].sort());

    // And later calls find the room gc made.
    assertOk(await runJs(client, "console.log('later')"));
  } finally {
    await client.close();
    await server.stop();
  }
});

test("serve refuses to start on a full or read-only cacheDir", () => {
  for (const [what, options, error] of [
    ["full", { full: true }, "No space left on device"],
    ["read-only", { ro: true }, "Read-only file system"],
  ]) {
    const { dir, cache } = project();
    const [cmd, ...args] = inTmpfs(cache, "1m", options);
    const r = spawnSync(cmd, [...args, BIN, "serve", "--dir", dir, "-p", "0", "--no-ui"], {
      encoding: "utf8",
      timeout: 30000,
    });
    assert.equal(r.status, 1, `${what}: ${r.stderr}`);
    assert.ok(
      r.stderr.includes(`every run executes from a signed capsule: capsule cache: ${cache}: cannot write capsules here`),
      `${what}: ${r.stderr}`,
    );
    assert.ok(r.stderr.includes(error), `${what}: ${r.stderr}`);
  }
});
