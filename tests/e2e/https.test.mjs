// HTTPS through the real server. A CA is made when the tests start (openssl CLI) and an HTTPS
// fixture on 127.0.0.2 holds a certificate it issued for api.example.test and www.example.test;
// names resolve from --resolve only. JS fetch goes through the broker, which verifies the server
// against --ca-file. Python goes through its in-sandbox proxy with CONNECT: TLS runs end to end
// between the script and the fixture (the broker only decides the tunnel and carries its bytes),
// so the script verifies the server itself, with the CA it is given.
import assert from "node:assert/strict";
import fs from "node:fs";
import https from "node:https";
import { after, before, test } from "node:test";

import {
  assertOk,
  connectHttp,
  makeProject,
  makeTestPki,
  runCli,
  runJs,
  runPy,
  show,
  startServer,
} from "./lib.mjs";

let server;
let client;
let fixture;
let port;
let pki;
let connections = 0; // TCP connections the fixture accepted
const seen = []; // paths the fixture was asked for, over verified TLS

before(async () => {
  pki = makeTestPki(["api.example.test", "www.example.test"]);
  fixture = https.createServer({ key: pki.key, cert: pki.cert }, (req, res) => {
    seen.push(req.url);
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      if (req.url === "/echo") return res.end(`${req.method} ${req.headers["content-type"]} ${body}`);
      res.setHeader("x-fixture", "tls");
      res.end("hello over tls");
    });
  });
  fixture.on("connection", () => connections++);
  await new Promise((r) => fixture.listen(0, "127.0.0.2", r));
  port = fixture.address().port;
  const dir = makeProject((cfg) => {
    cfg.policy.network = {
      allowedDomains: ["*.example.test"],
      deniedDomains: ["secret.example.test"],
      denyIpLiterals: true,
      blockPrivateRanges: false, // the fixture is on loopback
      maxBodyBytes: 1048576,
      maxRedirects: 3,
    };
  });
  server = await startServer({
    dir,
    extra: ["--resolve", "*.example.test=127.0.0.2", "--ca-file", pki.caFile],
  });
  client = await connectHttp(server.url);
});

after(async () => {
  await client?.close().catch(() => {});
  await server?.stop();
  fixture?.close();
});

const url = (host, path = "/") => `https://${host}:${port}${path}`;
const S = JSON.stringify;

// Python: an ssl context that trusts the test CA only.
const pyCtx = () => `import ssl\nctx = ssl.create_default_context(cadata=${S(pki.caPem)})\n`;

test("JS fetch over HTTPS is verified against --ca-file", async () => {
  const r = await runJs(
    client,
    `const res = await fetch(${S(url("api.example.test"))});
console.log(res.status, res.headers.get("x-fixture"), await res.text());`,
  );
  assertOk(r);
  assert.equal(r.structuredContent.stdout, "200 tls hello over tls\n", show(r));
});

test("JS fetch to a name the certificate does not hold fails on the name", async () => {
  const before = seen.length;
  const r = await runJs(
    client,
    `try { await fetch(${S(url("other.example.test"))}); console.log("reached"); }
catch (e) { console.log(String(e)); }`,
  );
  assert.equal(
    r.structuredContent.stdout,
    "TypeError: fetch failed: SSL: no alternative certificate subject name matches target host name 'other.example.test'\n",
    show(r),
  );
  assert.equal(seen.length, before, "a request went over a connection that failed verification");
});

test("Python urllib over HTTPS through CONNECT, verified with the CA as cadata", async () => {
  const r = await runPy(
    client,
    `${pyCtx()}import urllib.request
res = urllib.request.urlopen(${S(url("api.example.test"))}, context=ctx, timeout=10)
print(res.status, res.headers["X-Fixture"], res.read().decode())
req = urllib.request.Request(${S(url("www.example.test", "/echo"))}, data=b"ping", method="POST",
                             headers={"Content-Type": "text/plain"})
print(urllib.request.urlopen(req, context=ctx, timeout=10).read().decode())`,
  );
  assertOk(r);
  assert.equal(r.structuredContent.stdout, "200 tls hello over tls\nPOST text/plain ping\n", show(r));
});

test("Python verifies the server itself: without the CA the handshake fails", async () => {
  const before = seen.length;
  const r = await runPy(
    client,
    `import urllib.request, urllib.error
try:
    urllib.request.urlopen(${S(url("api.example.test"))}, timeout=10)
    print("reached")
except urllib.error.URLError as e:
    print(type(e.reason).__name__, e.reason.verify_message)`,
  );
  assert.equal(
    r.structuredContent.stdout,
    "SSLCertVerificationError unable to get local issuer certificate\n",
    show(r),
  );
  assert.equal(seen.length, before);
});

test("Python's default trust store is the host's public CA bundle, which it cannot change", async () => {
  const bundle = "/etc/ssl/certs/ca-certificates.crt";
  const count = fs.readFileSync(bundle, "utf8").split("-----BEGIN CERTIFICATE-----").length - 1;
  const r = await runPy(
    client,
    `import ssl, requests.certs
print(ssl.create_default_context().cert_store_stats()["x509"], requests.certs.where())
try:
    open(requests.certs.where(), "a")
except OSError as e:
    print(e.strerror)`,
  );
  assertOk(r);
  assert.equal(r.structuredContent.stdout, `${count} ${bundle}\nPermission denied\n`, show(r));
});

test("Python CONNECT to a denied host is refused naming the rule", async () => {
  const before = connections;
  const r = await runPy(
    client,
    `${pyCtx()}import urllib.request, urllib.error
try:
    urllib.request.urlopen(${S(url("secret.example.test"))}, context=ctx, timeout=10)
    print("reached")
except urllib.error.URLError as e:
    print(e.reason)`,
  );
  assert.equal(
    r.structuredContent.stdout,
    `Tunnel connection failed: 403 blocked by network policy (deniedDomains: secret.example.test): secret.example.test:${port}\n`,
    show(r),
  );
  assert.equal(connections, before, "the fixture was contacted for a denied host");
});

test("requests over HTTPS through CONNECT with verify= the CA written to /tmp", async () => {
  const r = await runPy(
    client,
    `import requests
with open("/tmp/ca.pem", "w") as f:
    f.write(${S(pki.caPem)})
res = requests.get(${S(url("api.example.test"))}, verify="/tmp/ca.pem", timeout=10)
print(res.status_code, res.headers["x-fixture"], res.text)
res = requests.post(${S(url("api.example.test", "/echo"))}, json={"n": 1}, verify="/tmp/ca.pem", timeout=10)
print(res.text)`,
  );
  assertOk(r);
  assert.equal(r.structuredContent.stdout, '200 tls hello over tls\nPOST application/json {"n": 1}\n', show(r));
});

test("requests over HTTPS to a denied host raises ProxyError naming the rule", async () => {
  const before = connections;
  const r = await runPy(
    client,
    `import requests
with open("/tmp/ca.pem", "w") as f:
    f.write(${S(pki.caPem)})
try:
    requests.get(${S(url("secret.example.test"))}, verify="/tmp/ca.pem", timeout=10)
    print("reached")
except requests.exceptions.ProxyError as e:
    print(e)`,
  );
  assert.equal(
    r.structuredContent.stdout,
    `HTTPSConnectionPool(host='secret.example.test', port=${port}): Max retries exceeded with url: / ` +
      "(Caused by ProxyError('Cannot connect to proxy.', OSError('Tunnel connection failed: 403 " +
      `blocked by network policy (deniedDomains: secret.example.test): secret.example.test:${port}')))\n`,
    show(r),
  );
  assert.equal(connections, before, "the fixture was contacted for a denied host");
});

test("serve refuses a --ca-file that holds no certificate", () => {
  const dir = makeProject();
  const r = runCli(["serve", "--dir", dir, "-p", "0", "--no-ui", "--ca-file", `${dir}/missing.pem`]);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /--ca-file .*missing\.pem: not a readable PEM file of certificates/);
});
