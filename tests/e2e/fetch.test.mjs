// fetch from run_js through the real server: every request is made by the server's broker under
// the run's network policy. Fixtures listen on 127.0.0.2; names resolve from --resolve only.
import assert from "node:assert/strict";
import http from "node:http";
import { after, before, test } from "node:test";

import { connectHttp, makeProject, rawSession, runJs, show, sleep, startServer } from "./lib.mjs";

let server;
let client;
let fixture;
let port;
const seen = []; // paths the fixture was asked for

before(async () => {
  fixture = http.createServer((req, res) => {
    seen.push(req.url);
    if (req.url === "/json") {
      res.setHeader("content-type", "application/json");
      res.setHeader("x-fixture", "yes");
      return res.end(JSON.stringify({ hello: "world", n: 1 }));
    }
    if (req.url === "/echo") {
      let body = "";
      req.on("data", (d) => (body += d));
      req.on("end", () => res.end(`${req.method} ${req.headers["content-type"]} ${body}`));
      return;
    }
    if (req.url === "/hang") return; // never answers
    if (req.url === "/redirect-private") {
      res.statusCode = 302;
      res.setHeader("location", "http://2130706433/");
      return res.end();
    }
    res.end("hello from the fixture");
  });
  await new Promise((r) => fixture.listen(0, "127.0.0.2", r));
  port = fixture.address().port;
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
  server = await startServer({
    dir,
    extra: ["--resolve", "self.example.test=127.0.0.1", "--resolve", "*.example.test=127.0.0.2"],
  });
  client = await connectHttp(server.url);
});

after(async () => {
  await client?.close().catch(() => {});
  await server?.stop();
  fixture?.close();
});

const js = (code, extra) => runJs(client, code, extra);
const url = (host, path = "/") => `http://${host}:${port}${path}`;

test("fetch returns status, headers and body", async () => {
  const r = await js(`
const res = await fetch(${JSON.stringify(url("api.example.test", "/json"))});
console.log(res.status, res.ok, res.headers.get("X-Fixture"), JSON.stringify(await res.json()));
const t = await fetch(${JSON.stringify(url("api.example.test"))});
console.log(await t.text());`);
  assert.equal(r.structuredContent.stdout, '200 true yes {"hello":"world","n":1}\nhello from the fixture\n', show(r));
});

test("POST bodies reach the server", async () => {
  const r = await js(`
const res = await fetch(${JSON.stringify(url("api.example.test", "/echo"))}, {
  method: "POST", headers: {"content-type": "text/plain"}, body: "ping"});
console.log(await res.text());`);
  assert.equal(r.structuredContent.stdout, "POST text/plain ping\n", show(r));
});

// `hits`: requests the fixture may see (a redirect it serves itself), never the denied hop.
const denied = async (code, rule, hits = 0) => {
  const before = seen.length;
  const r = await js(`try { await fetch(${code}); console.log("reached") } catch (e) { console.log(e.name + ": " + e.message) }`);
  assert.match(r.structuredContent.stdout, new RegExp(`^TypeError: fetch failed: .*${rule}`), show(r));
  assert.equal(seen.length, before + hits, "the fixture saw a request it must not see");
};

test("deniedDomains wins over allowedDomains", () =>
  denied(JSON.stringify(url("secret.example.test")), "deniedDomains"));

test("a name outside allowedDomains is refused", () =>
  denied(JSON.stringify(url("evil-example.test")), "allowedDomains"));

test("IP literals are refused in every form", async () => {
  await denied(JSON.stringify(`http://127.0.0.2:${port}/`), "denyIpLiterals");
  await denied(JSON.stringify(`http://2130706434:${port}/`), "denyIpLiterals");
  await denied(JSON.stringify(`http://0x7f.0.0.2:${port}/`), "denyIpLiterals");
});

test("a redirect to an IP literal is refused", () =>
  denied(JSON.stringify(url("api.example.test", "/redirect-private")), "denyIpLiterals", 1));

test("the server itself is never reachable from a run", async () => {
  const r = await js(
    `try { await fetch("http://self.example.test:${server.port}/health"); console.log("reached") } catch (e) { console.log(e.message) }`,
  );
  assert.match(r.structuredContent.stdout, /^fetch failed: blocked by network policy \(127\.0\.0\.1 is reserved\)/, show(r));
});

test("a call's policy can only narrow the network policy", async () => {
  const narrowed = await js(
    `try { await fetch(${JSON.stringify(url("api.example.test"))}); console.log("reached") } catch (e) { console.log(e.message) }`,
    { policy: { network: { deniedDomains: ["api.example.test"] } } },
  );
  assert.match(narrowed.structuredContent.stdout, /deniedDomains/, show(narrowed));
  const privateOn = await js(
    `try { await fetch(${JSON.stringify(url("api.example.test"))}); console.log("reached") } catch (e) { console.log(e.message) }`,
    { policy: { network: { blockPrivateRanges: true } } },
  );
  assert.match(privateOn.structuredContent.stdout, /blockPrivateRanges/, show(privateOn));
  const widened = await js("1", { policy: { network: { allowedDomains: ["*.other.test"] } } });
  assert.equal(widened.isError, true, show(widened));
});

test("cancelling a run stops its request under way at once", async () => {
  const raw = await rawSession(server.url);
  const t0 = Date.now();
  const call = raw.post(
    {
      jsonrpc: "2.0",
      id: 41,
      method: "tools/call",
      params: {
        name: "run_js",
        arguments: { code: `await fetch(${JSON.stringify(url("api.example.test", "/hang"))})`, policy: { limits: { timeoutMs: 20000 } } },
      },
    },
    {},
    15000,
  );
  await sleep(500);
  const c = await raw.post({ jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: 41 } });
  assert.equal(c.status, 202);
  // Per the spec no response follows: the POST's answer is an SSE stream that ends without one,
  // once the run (and its request) was killed.
  const r = await call;
  assert.equal(r.status, 200);
  assert.match(r.headers.get("content-type") ?? "", /text\/event-stream/);
  assert.doesNotMatch(r.text, /"result"/, r.text);
  assert.ok(Date.now() - t0 < 3000, `ended after ${Date.now() - t0} ms`);
});
