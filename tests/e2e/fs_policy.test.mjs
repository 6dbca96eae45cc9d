// Filesystem policy seen through the real server: writable paths get their own quota-limited
// tmpfs, everything else is read-only, a call can only narrow what the server allows, and what a
// run leaves in /out comes back with the result.
import assert from "node:assert/strict";
import nodefs from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";

import { connectHttp, makeProject, runCli, runJs, runPy, show, startServer, tempDir } from "./lib.mjs";

let server;
let client;
const roHost = tempDir("1mcp-ro-");
const rwHost = tempDir("1mcp-rw-");

before(async () => {
  nodefs.writeFileSync(path.join(roHost, "data.txt"), "from the host\n");
  // Host permissions still apply: the sandbox is an unprivileged host uid.
  nodefs.chmodSync(roHost, 0o755);
  nodefs.chmodSync(rwHost, 0o777);
  const dir = makeProject((cfg) => {
    cfg.policy.filesystem = { readonly: ["/"], writable: ["/tmp", "/out", "/work"] };
    cfg.mounts = [
      { host: roHost, path: "/data" },
      { host: rwHost, path: "/results", mode: "rw" },
    ];
  });
  server = await startServer({ dir });
  client = await connectHttp(server.url);
});

after(async () => {
  await client?.close().catch(() => {});
  await server?.stop();
});

const fs = (readonly, writable) => ({ policy: { filesystem: { readonly, writable } } });

const probe = String.raw`
import errno
def w(p):
    try:
        open(p, "w").write("x"); return "ok"
    except OSError as e:
        return errno.errorcode[e.errno]
def r(p):
    try:
        open(p).read(); return "ok"
    except OSError as e:
        return errno.errorcode[e.errno]
print(w("/tmp/a"), w("/out/a"), w("/work/a"), w("/a"), r("/etc/passwd"))
`;

test("every writable path of the server policy is writable, nothing else", async () => {
  const r = await runPy(client, probe);
  assert.equal(r.structuredContent.stdout, "ok ok ok EROFS ok\n", show(r));
});

test("a call's writable list narrows the server's", async () => {
  const r = await runPy(client, probe, fs(["/"], ["/out"]));
  assert.equal(r.structuredContent.stdout, "EROFS ok EROFS EROFS ok\n", show(r));
});

test("a writable subdirectory of a server path is the only writable place in it", async () => {
  const r = await runPy(client, probe.replace('w("/work/a")', 'w("/work/sub/a")'), fs(["/"], ["/work/sub"]));
  assert.equal(r.structuredContent.stdout, "EROFS EROFS ok EROFS ok\n", show(r));
  const other = await runPy(client, 'open("/work/other", "w")', fs(["/"], ["/work/sub"]));
  assert.equal(other.isError, true);
  assert.match(other.structuredContent.stderr, /PermissionError/, show(other));
});

test("readonly narrows what can be read", async () => {
  const r = await runPy(client, probe, fs(["/tmp", "/out"], ["/tmp", "/out"]));
  assert.equal(r.structuredContent.stdout, "ok ok EROFS EROFS EACCES\n", show(r));
});

test("a call cannot widen the server's filesystem policy", async () => {
  const r = await runPy(client, "print(1)", fs(["/"], ["/etc"]));
  assert.equal(r.isError, true);
  assert.match(r.content[0].text, /policy\.filesystem\.writable: cannot widen the server policy/, show(r));
});

test("files left in /out come back with the result, special files do not", async () => {
  const r = await runPy(
    client,
    String.raw`
import os
open("/out/report.txt", "w").write("total: 3\n")
os.makedirs("/out/data")
open("/out/data/raw.bin", "wb").write(bytes([0, 255, 1]))
os.symlink("/etc/passwd", "/out/passwd")
os.mkfifo("/out/pipe")
with open("/out/big", "wb") as f:
    f.seek(40 << 20)
    f.write(b"end")
`,
  );
  assert.equal(r.structuredContent.outcome, "ok", show(r));
  const files = r.structuredContent.files;
  assert.deepEqual(
    files.map((f) => [f.path, f.size, f.mimeType, f.truncated]),
    [
      ["big", (40 << 20) + 3, "application/octet-stream", true],
      ["data/raw.bin", 3, "application/octet-stream", false],
      ["report.txt", 9, "text/plain", false],
    ],
  );
  // Only a small text file's content is in structuredContent; the others are resources.
  assert.deepEqual(files.map((f) => f.content), [undefined, undefined, "total: 3\n"]);
  const big = await client.readResource({ uri: files[0].uri });
  assert.equal(Buffer.from(big.contents[0].blob, "base64").length, 1 << 20);
  const raw = await client.readResource({ uri: files[1].uri });
  assert.equal(raw.contents[0].blob, "AP8B");
  assert.match(r.content[0].text, /\[files in \/out\]\n  big \(41943043 bytes, application\/octet-stream\): onemcp:\S+ \(only its first 1048576 bytes were read back\)\n/);
  assert.match(r.content[0].text, /\n\[\/out\/report\.txt\]\ntotal: 3\n/);
});

test("JS runs see the same read-only root", async () => {
  const r = await runJs(client, "console.log(process.cwd())");
  assert.equal(r.structuredContent.stdout, "/tmp\n", show(r));
  const ro = await runJs(client, "console.log(process.cwd())", fs(["/"], ["/out"]));
  assert.equal(ro.structuredContent.stdout, "/\n", show(ro));
});

test("configured host mounts are visible with their mode, nothing else of the host is", async () => {
  const r = await runPy(
    client,
    String.raw`
import errno, os
print(open("/data/data.txt").read(), end="")
try:
    open("/data/new", "w")
except OSError as e:
    print(errno.errorcode[e.errno])
open("/results/out.txt", "w").write("written inside")
print(os.path.exists("${roHost}"), os.path.exists("/home"))
`,
  );
  assert.equal(r.structuredContent.stdout, "from the host\nEROFS\nFalse False\n", show(r));
  assert.equal(nodefs.readFileSync(path.join(rwHost, "out.txt"), "utf8"), "written inside");
});

test("a mount onto a reserved path is a configuration error", () => {
  const dir = makeProject((cfg) => {
    cfg.mounts = [{ host: roHost, path: "/usr/lib/x" }];
  });
  const r = runCli(["serve", "--dir", dir, "-p", "0", "--no-ui"]);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /mounts\[0\]\.path: \/usr is reserved/);
});

test("a mount of the project directory does not expose the signing key or the capsules", async () => {
  // The key is 0600 and the capsule cache 0700, owned by the server's uid; a run is another,
  // unprivileged host uid, so host permissions keep both out of reach even when mounted.
  const dir = makeProject((cfg) => {
    cfg.mounts = [{ host: "PROJECT", path: "/project" }];
  });
  const cfgPath = path.join(dir, "1mcp.config.json");
  nodefs.writeFileSync(cfgPath, nodefs.readFileSync(cfgPath, "utf8").replace('"PROJECT"', JSON.stringify(dir)));
  nodefs.chmodSync(dir, 0o755);
  const own = await startServer({ dir });
  const c = await connectHttp(own.url);
  try {
    const r = await runPy(
      c,
      `import os
print(sorted(os.listdir("/project")))
for p in ["/project/.1mcp/keys/capsule.key", "/project/.1mcp/capsules"]:
    try:
        open(p, "rb").read() if p.endswith(".key") else os.listdir(p)
        print("READ", p)
    except OSError as e:
        print(type(e).__name__)
`,
    );
    assert.equal(r.structuredContent.exitCode, 0, show(r));
    assert.match(r.structuredContent.stdout, /'1mcp\.config\.json'/, show(r));
    assert.doesNotMatch(r.structuredContent.stdout, /READ/, show(r));
    assert.match(r.structuredContent.stdout, /PermissionError\nPermissionError\n$/, show(r));
  } finally {
    await c.close().catch(() => {});
    await own.stop();
  }
});
