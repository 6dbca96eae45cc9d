// pip dependencies of run_py through the real server: packages come from the loopback package
// index of tests/fixtures/pip (config pip.indexUrl), never from the public index. Wheel URLs are
// fetched by the server's broker under the call's network policy; names resolve from --resolve.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";

import { startIndex } from "../fixtures/pip/index.mjs";
import { assertOk, connectHttp, makeProject, runPy, show, sleep, startServer, timed, withTimeout } from "./lib.mjs";

let index;
let dir;
let server;
let client;

const pip = (requirements, wheelUrls) => ({ pip: { requirements, ...(wheelUrls ? { wheelUrls } : {}) } });
const installs = (s = server) => s.stderr().split("\n").filter((l) => l.includes("pip install of")).length;
const text = (r) => r.content.map((c) => c.text).join("\n");
const HELLO = "import onemcp_fixture\nprint(onemcp_fixture.hello())";
const LONG = { timeoutMs: 180000 };
// The index listens on 127.0.0.2 (the server's own address, 127.0.0.1, is never reachable
// through the broker); wheels.example.test and denied.example.test resolve to it.
const wheel = (host, file) => `http://${host}:${index.port}/files/${file}`;

before(async () => {
  index = await startIndex({ host: "127.0.0.2" });
  dir = makeProject((cfg) => {
    cfg.pip = { requirements: [], indexUrl: index.indexUrl };
    cfg.policy.network = {
      ...cfg.policy.network,
      allowedDomains: ["wheels.example.test", "denied.example.test"],
      deniedDomains: ["denied.example.test"],
      blockPrivateRanges: false, // the fixture is on loopback
    };
  });
  server = await startServer({ dir, extra: ["--resolve", "*.example.test=127.0.0.2"] });
  client = await connectHttp(server.url);
});

after(async () => {
  await client?.close().catch(() => {});
  await server?.stop();
  await index?.close();
});

test("pip.requirements from the index: importable, with dependencies; a second call is cached", async () => {
  const first = await timed(() => runPy(client, HELLO, pip(["onemcp-fixture==1.0.0"]), LONG));
  assertOk(first.value);
  assert.equal(first.value.structuredContent.stdout, "hello from onemcp_fixture 1.0.0 (42)\n");
  assert.equal(installs(), 1);

  const asked = index.requests.length;
  const second = await timed(() => runPy(client, HELLO, pip(["onemcp-fixture==1.0.0"])));
  assertOk(second.value);
  assert.equal(second.value.structuredContent.stdout, "hello from onemcp_fixture 1.0.0 (42)\n");
  assert.equal(installs(), 1, "a cache hit runs no pip");
  assert.equal(index.requests.length, asked, "a cache hit asks the index nothing");
  console.log(`first call with a new set ${first.ms.toFixed(0)} ms, cached ${second.ms.toFixed(0)} ms`);
  assert.ok(second.ms < first.ms / 2, `cached call (${second.ms} ms) much faster than the first (${first.ms} ms)`);

  // The run's capsule records the set it mounted: a signed "pip" layer with the set's key.
  const id = second.value.structuredContent.capsule;
  const manifest = await (await fetch(`${server.base}/capsules/${id}/manifest.json`)).json();
  const layer = manifest.layers.find((l) => l.name === "pip");
  assert.equal(layer?.file, "pip.json", JSON.stringify(manifest.layers));
  const set = await (await fetch(`${server.base}/capsules/${id}/pip.json`)).json();
  assert.match(set.set, /^[0-9a-f]{64}$/);
  assert.deepEqual(set.requirements, ["onemcp-fixture==1.0.0"]);
  assert.ok(fs.existsSync(path.join(dir, ".1mcp", "capsules", "pip", set.set, "site")), "the layer names the mounted set");

  // Another version is another set.
  const newer = await runPy(client, HELLO, pip(["onemcp-fixture>1.0"]), LONG);
  assertOk(newer);
  assert.equal(newer.structuredContent.stdout, "hello from onemcp_fixture 1.1.0 (42)\n");
  assert.equal(installs(), 2);
});

test("pip.wheelUrls are downloaded through the broker from an allowed host", async () => {
  const before = installs();
  const url = wheel("wheels.example.test", "onemcp_fixture_direct-0.1.0-py3-none-any.whl");
  const r = await runPy(client, "import onemcp_fixture_direct as d\nprint(d.NAME, d.VALUE)", pip([], [url]), LONG);
  assertOk(r);
  assert.equal(r.structuredContent.stdout, "direct 42\n");
  assert.equal(installs() - before, 1);
  assert.ok(index.requests.includes("/files/onemcp_fixture_direct-0.1.0-py3-none-any.whl"));
});

test("bad specifiers, unknown packages and denied wheel hosts are clear errors", async () => {
  const file = "onemcp_fixture_other-2.0.0-py3-none-any.whl";
  const cases = [
    [pip(["x @ https://evil.test/x-1.0-py3-none-any.whl"]), 'pip.requirements: unsupported requirement "x @ https://evil.test/'],
    [pip(["-r /etc/passwd"]), 'pip.requirements: unsupported requirement "-r /etc/passwd"'],
    [pip(["--index-url=http://evil.test/"]), "pip.requirements: unsupported requirement"],
    [pip(["../../etc"]), "pip.requirements: unsupported requirement"],
    [pip(["onemcp-fixture; os_name=='posix'"]), "pip.requirements: unsupported requirement"],
    [pip([], ["file:///etc/passwd"]), "invalid arguments"],
    [pip([], [wheel("wheels.example.test", "not-a-wheel.tar.gz")]), "pip.wheelUrls: unsupported URL"],
    [pip([], [wheel("denied.example.test", file)]), "pip.wheelUrls: blocked by network policy (deniedDomains: denied.example.test)"],
    [pip([], [wheel("elsewhere.test", file)]), "pip.wheelUrls: blocked by network policy (allowedDomains: no entry matches elsewhere.test)"],
    [pip([], [wheel("127.0.0.2", file)]), "pip.wheelUrls: blocked by network policy (denyIpLiterals)"],
    [
      { ...pip([], [wheel("wheels.example.test", file)]), policy: { network: { allowedDomains: [] } } },
      "pip.wheelUrls: blocked by network policy (allowedDomains: no entry matches wheels.example.test)",
    ],
  ];
  const before = installs();
  const asked = index.requests.length;
  for (const [args, expect] of cases) {
    const r = await runPy(client, "print('ran')", args);
    assert.equal(r.isError, true, show(r));
    assert.ok(text(r).includes(expect), `${JSON.stringify(args)}: ${text(r)}`);
    assert.ok(!text(r).includes("ran\n"));
  }
  assert.equal(installs(), before, "refused before pip runs");
  assert.equal(index.requests.length, asked, "refused before anything is downloaded");

  const missing = await runPy(client, "print('ran')", pip(["onemcp-no-such-package"]), LONG);
  assert.equal(missing.isError, true, show(missing));
  assert.match(text(missing), /pip install failed \(exit code 1\):/);
  assert.match(text(missing), /No matching distribution found for onemcp-no-such-package/);

  const gone = await runPy(client, "print('ran')", pip([], [wheel("wheels.example.test", "onemcp_gone-1.0-py3-none-any.whl")]), LONG);
  assert.equal(gone.isError, true, show(gone));
  assert.match(text(gone), /pip\.wheelUrls: cannot download http:\/\/wheels\.example\.test:\d+\/files\/onemcp_gone-1\.0-py3-none-any\.whl: HTTP 404/);

  // The broker checks every redirect hop: an allowed host cannot hand the download to a denied one.
  const hop = `http://wheels.example.test:${index.port}/redirect/denied.example.test/${file}`;
  const redirected = await runPy(client, "print('ran')", pip([], [hop]), LONG);
  assert.equal(redirected.isError, true, show(redirected));
  assert.ok(
    text(redirected).includes(`pip.wheelUrls: cannot download ${hop}: blocked by network policy (deniedDomains: denied.example.test)`),
    text(redirected),
  );

  // Only wheels: a project with nothing but a source distribution is never built on the host.
  const sdist = await runPy(client, "print('ran')", pip(["onemcp-fixture-sdist"]), LONG);
  assert.equal(sdist.isError, true, show(sdist));
  assert.match(text(sdist), /No matching distribution found for onemcp-fixture-sdist/);
  assert.equal(fs.existsSync(path.join(index.dir, "sdist-setup-ran")), false, "setup.py ran on the host");
});

test("the run cannot write its packages, and sees no other set", async () => {
  const write = await runPy(
    client,
    `import onemcp_fixture, os, sys
for p in (onemcp_fixture.__file__, os.path.join(os.path.dirname(onemcp_fixture.__file__), 'evil.py')):
    try:
        open(p, 'a').write('x')
        print('wrote', p)
    except OSError as e:
        print(type(e).__name__, e.errno)
print(sys.path[0], sorted(os.listdir('/deps')), os.listdir('/deps/sets'))`,
    pip(["onemcp-fixture==1.0.0"]),
  );
  assertOk(write);
  assert.match(write.structuredContent.stdout, /^(PermissionError 13|OSError 30)\n(PermissionError 13|OSError 30)\n\/deps\/site \['sets', 'site'\] \[\]\n$/);

  const other = await runPy(
    client,
    "import onemcp_fixture_other\ntry:\n    import onemcp_fixture\nexcept ImportError as e:\n    print(e)\nprint(onemcp_fixture_other.NAME)",
    pip(["onemcp-fixture-other"]),
    LONG,
  );
  assertOk(other);
  assert.equal(other.structuredContent.stdout, "No module named 'onemcp_fixture'\nother\n");

  // A call that narrows what it may read still reads its own packages (like the interpreter's
  // own files), and nothing more.
  const narrowed = await runPy(
    client,
    `${HELLO}
try:
    open('/etc/passwd')
except OSError as e:
    print(type(e).__name__)`,
    { ...pip(["onemcp-fixture==1.0.0"]), policy: { filesystem: { readonly: ["/tmp"] } } },
  );
  assertOk(narrowed);
  assert.equal(narrowed.structuredContent.stdout, "hello from onemcp_fixture 1.0.0 (42)\nPermissionError\n");

  const none = await runPy(client, "try:\n    import onemcp_fixture\nexcept ImportError as e:\n    print(e)");
  assertOk(none);
  assert.equal(none.structuredContent.stdout, "No module named 'onemcp_fixture'\n");
});

test("the config's requirements serve every run_py call, and a second server reuses the cache", async () => {
  const dir2 = makeProject((c) => {
    c.pip = { requirements: ["onemcp-fixture==1.0.0"], indexUrl: index.indexUrl };
    c.cacheDir = path.join(dir, ".1mcp/capsules"); // the first server's cache
  });
  const s2 = await startServer({ dir: dir2 });
  const c2 = await connectHttp(s2.url);
  try {
    const r = await runPy(c2, HELLO, {}, LONG);
    assertOk(r);
    assert.equal(r.structuredContent.stdout, "hello from onemcp_fixture 1.0.0 (42)\n");
    assert.equal(installs(s2), 0, "built by the first server: " + s2.stderr());
  } finally {
    await c2.close().catch(() => {});
    await s2.stop();
  }
});

test("installing a new set reports progress to a client that asks for it", async () => {
  const seen = [];
  const call = (args) =>
    withTimeout(
      client.callTool({ name: "run_py", arguments: args }, undefined, {
        timeout: 120000,
        onprogress: (p) => seen.push(p),
      }),
      121000,
      "tools/call with progress",
    );
  const url = wheel("wheels.example.test", "onemcp_fixture_direct-0.1.0-py3-none-any.whl");
  const deps = pip(["onemcp-fixture-other"], [url]);
  const code = "import onemcp_fixture_direct as d, onemcp_fixture_other as o\nprint(d.NAME, o.NAME)";
  const r = await call({ code, ...deps });
  assertOk(r);
  assert.equal(r.structuredContent.stdout, "direct other\n");
  assert.deepEqual(seen.map((p) => p.message), [
    "running",
    "downloading 1 wheel(s)",
    "installing 2 requirement(s)",
    "pip dependencies ready",
    "done",
  ]);
  const fractions = seen.map((p) => p.progress);
  assert.deepEqual(fractions, [...fractions].sort((a, b) => a - b), "progress only increases");
  // Once installed, a call reports no install steps.
  seen.length = 0;
  assertOk(await call({ code, ...deps }));
  assert.deepEqual(seen.map((p) => p.message), ["running", "done"]);
});

test("serve installs the config's own set at start, in the background, with progress in its log", async () => {
  const d = makeProject((c) => {
    c.pip = { requirements: ["onemcp-fixture==1.1.0"], indexUrl: index.indexUrl };
  });
  const s = await startServer({ dir: d });
  const c = await connectHttp(s.url);
  try {
    for (let i = 0; i < 600 && !/config pip dependencies ready/.test(s.stderr()); i++) await sleep(100);
    const log = s.stderr();
    assert.match(log, /config pip dependencies: installing 1 requirement\(s\)/);
    assert.match(log, /config pip dependencies ready \(1 requirement\(s\), \d+ ms\)/);
    assert.equal(installs(s), 1);
    const r = await runPy(c, HELLO, {}, LONG);
    assertOk(r);
    assert.equal(r.structuredContent.stdout, "hello from onemcp_fixture 1.1.0 (42)\n");
    assert.equal(installs(s), 1, "the first call found the set installed");
  } finally {
    await c.close().catch(() => {});
    await s.stop();
  }
});

test("a running call holds its set: gc cannot remove it until the run ends", async () => {
  const deps = pip(["onemcp-fixture==1.0.0"]);
  const first = await runPy(client, HELLO, deps, LONG);
  assertOk(first);
  const id = first.structuredContent.capsule;
  const { set } = await (await fetch(`${server.base}/capsules/${id}/pip.json`)).json();
  const lock = path.join(dir, ".1mcp", "capsules", "pip", `${set}.lock`);
  // What gc does before removing a set: take its lock exclusively, without waiting.
  const gcCouldTake = () => spawnSync("flock", ["-n", "-x", lock, "true"]).status === 0;
  const running = runPy(client, "import time, onemcp_fixture\ntime.sleep(3)\nprint('ok')", deps, LONG);
  await sleep(1500);
  assert.equal(gcCouldTake(), false, "the set is held while the run uses it");
  const r = await running;
  assertOk(r);
  assert.equal(r.structuredContent.stdout, "ok\n");
  assert.equal(gcCouldTake(), true, "released when the run ended");
});
