// Python networking through the real server: a run_py whose policy allows some domains gets an
// HTTP(S) proxy on 127.0.0.1:3128 inside its sandbox (HTTP_PROXY and friends set), served by the
// run's relay process, which hands every request to the server's broker under the run's network
// policy. Fixtures listen on 127.0.0.2; names resolve from --resolve only.
import assert from "node:assert/strict";
import http from "node:http";
import net from "node:net";
import { after, before, test } from "node:test";

import { assertOk, connectHttp, makeProject, runJs, runPy, show, startServer } from "./lib.mjs";

let server;
let client;
let fixture;
let echo;
let port;
let echoPort;
const seen = []; // paths the HTTP fixture was asked for

before(async () => {
  fixture = http.createServer((req, res) => {
    seen.push(req.url);
    if (req.url === "/echo") {
      let body = "";
      req.on("data", (d) => (body += d));
      req.on("end", () => res.end(`${req.method} ${req.headers["content-type"]} ${body}`));
      return;
    }
    res.setHeader("x-fixture", "yes");
    res.end("hello from the fixture");
  });
  await new Promise((r) => fixture.listen(0, "127.0.0.2", r));
  port = fixture.address().port;
  echo = net.createServer((s) => s.pipe(s));
  await new Promise((r) => echo.listen(0, "127.0.0.2", r));
  echoPort = echo.address().port;
  const dir = makeProject((cfg) => {
    cfg.policy.network = {
      allowedDomains: ["*.example.test"],
      deniedDomains: ["secret.example.test"],
      denyIpLiterals: true,
      blockPrivateRanges: false, // the fixtures are on loopback
      maxBodyBytes: 1048576,
      maxRedirects: 3,
    };
  });
  server = await startServer({ dir, extra: ["--resolve", "*.example.test=127.0.0.2"] });
  client = await connectHttp(server.url);
});

after(async () => {
  await client?.close().catch(() => {});
  await server?.stop();
  fixture?.close();
  echo?.close();
});

const py = (code, extra) => runPy(client, code, extra);
const url = (host, path = "/") => `http://${host}:${port}${path}`;
const S = JSON.stringify;

test("urllib reaches an allowed domain through the proxy", async () => {
  const r = await py(`
import os, urllib.request
print(os.environ["HTTP_PROXY"], os.environ["https_proxy"])
res = urllib.request.urlopen(${S(url("api.example.test"))}, timeout=10)
print(res.status, res.headers["X-Fixture"], res.read().decode())
req = urllib.request.Request(${S(url("api.example.test", "/echo"))}, data=b"ping", method="POST",
                             headers={"Content-Type": "text/plain"})
print(urllib.request.urlopen(req, timeout=10).read().decode())`);
  assert.equal(
    r.structuredContent.stdout,
    "http://127.0.0.1:3128 http://127.0.0.1:3128\n200 yes hello from the fixture\nPOST text/plain ping\n",
    show(r),
  );
});

// Debian's python3-requests, from /usr/lib/python3/dist-packages, through HTTP_PROXY.
test("requests GETs over http through the proxy", async () => {
  const r = await py(`
import requests
res = requests.get(${S(url("api.example.test"))}, timeout=10)
print(res.status_code, res.headers["x-fixture"], res.text)`);
  assertOk(r);
  assert.equal(r.structuredContent.stdout, "200 yes hello from the fixture\n", show(r));
});

test("requests POSTs JSON over http through the proxy", async () => {
  const r = await py(`
import requests
res = requests.post(${S(url("api.example.test", "/echo"))}, json={"a": 1, "b": [True, None]}, timeout=10)
print(res.status_code, res.text)`);
  assertOk(r);
  assert.equal(r.structuredContent.stdout, '200 POST application/json {"a": 1, "b": [true, null]}\n', show(r));
});

test("requests to a denied domain gets a 403 whose error names the rule", async () => {
  const before = seen.length;
  const target = url("secret.example.test");
  const r = await py(`
import requests
res = requests.get(${S(target)}, timeout=10)
print(res.status_code, res.reason)
try:
    res.raise_for_status()
except requests.exceptions.HTTPError as e:
    print(e)`);
  const reason = `blocked by network policy (deniedDomains: secret.example.test): ${target}`;
  assert.equal(r.structuredContent.stdout, `403 ${reason}\n403 Client Error: ${reason} for url: ${target}\n`, show(r));
  assert.equal(seen.length, before, "the fixture saw a request it must not see");
});

const refused = async (target, rule) => {
  const before = seen.length;
  const r = await py(`
import urllib.request, urllib.error
try:
    urllib.request.urlopen(${S(target)}, timeout=10)
    print("reached")
except urllib.error.HTTPError as e:
    print(e.code, e)`);
  assert.match(r.structuredContent.stdout, new RegExp(`^403 HTTP Error 403: blocked by network policy.*${rule}`), show(r));
  assert.equal(seen.length, before, "the fixture saw a request it must not see");
};

test("a denied domain raises HTTPError 403 naming the rule", () => refused(url("secret.example.test"), "deniedDomains"));

test("a name outside allowedDomains is refused", () => refused(url("evil-example.test"), "allowedDomains"));

test("an IP literal URL is refused", () => refused(`http://127.0.0.2:${port}/`, "denyIpLiterals"));

test("Python holds no broker fd and connects nowhere but the proxy", async () => {
  const r = await py(`
import os, socket
try:
    os.fstat(4); print("fd 4 open")
except OSError:
    print("no fd 4")
for host, p in [("127.0.0.2", ${port}), ("127.0.0.1", 3129)]:
    try:
        socket.create_connection((host, p), timeout=2); print("connected", p)
    except OSError as e:
        print("refused")
socket.create_connection(("127.0.0.1", 3128), timeout=2).close(); print("proxy ok")`);
  assert.equal(r.structuredContent.stdout, "no fd 4\nrefused\nrefused\nproxy ok\n", show(r));
});

// CONNECT through the proxy: the broker decides the host and carries raw bytes both ways.
const tunnel = (host) => `
import http.client
conn = http.client.HTTPConnection("127.0.0.1", 3128, timeout=10)
conn.set_tunnel(${S(host)}, ${echoPort})
try:
    conn.connect()
    conn.sock.sendall(b"raw bytes over the tunnel")
    got = b""
    while len(got) < 25:
        chunk = conn.sock.recv(100)
        if not chunk: break
        got += chunk
    print(got.decode())
except OSError as e:
    print("ERR", e)`;

test("CONNECT tunnels raw bytes to an allowed host", async () => {
  const r = await py(tunnel("api.example.test"));
  assert.equal(r.structuredContent.stdout, "raw bytes over the tunnel\n", show(r));
});

test("CONNECT to a denied host fails naming the rule", async () => {
  const r = await py(tunnel("secret.example.test"));
  assert.match(r.structuredContent.stdout, /^ERR Tunnel connection failed: 403 blocked by network policy.*deniedDomains/, show(r));
});

test("a Python run without allowed domains has no proxy and no network", async () => {
  const r = await py(
    `
import os, socket
print(sorted(k for k in os.environ if "proxy" in k.lower()))
for host, p in [("127.0.0.1", 3128), ("127.0.0.2", ${port})]:
    try:
        socket.create_connection((host, p), timeout=2); print("connected")
    except OSError:
        print("refused")`,
    { policy: { network: { allowedDomains: [] } } },
  );
  assert.equal(r.structuredContent.stdout, "[]\nrefused\nrefused\n", show(r));
});

test("a caller's own proxy variables win", async () => {
  const r = await py(`import os; print(os.environ["HTTP_PROXY"], os.environ["HTTPS_PROXY"])`, {
    env: { HTTP_PROXY: "http://example.invalid:1" },
  });
  assert.equal(r.structuredContent.stdout, "http://example.invalid:1 http://127.0.0.1:3128\n", show(r));
});

test("JS fetch is unchanged next to relay runs", async () => {
  const r = await runJs(client, `const res = await fetch(${S(url("api.example.test"))}); console.log(await res.text())`);
  assert.equal(r.structuredContent.stdout, "hello from the fixture\n", show(r));
});
