// Raw HTTP checks of the Streamable HTTP transport (fetch and node:http, no SDK): status codes,
// JSON-RPC error codes and ids, session lifecycle, Origin checks and body limits.
import assert from "node:assert/strict";
import http from "node:http";
import { after, before, test } from "node:test";

import { JSON_HEADERS, PROTOCOL, post, rawSession, request, startServer, withTimeout } from "./lib.mjs";

let server;
let url;

before(async () => {
  server = await startServer();
  url = server.url;
});

after(async () => {
  await server?.stop();
});

const ping = (id = 1) => ({ jsonrpc: "2.0", id, method: "ping" });

test("initialize returns a session id and the negotiated protocol", async () => {
  const s = await rawSession(url);
  assert.match(s.sid, /^[\x21-\x7e]{16,}$/, "visible ASCII, not guessable-short");
  assert.equal(s.init.json.id, 0);
  assert.equal(s.init.json.result.protocolVersion, PROTOCOL);
  assert.ok(s.init.json.result.capabilities.tools);
  assert.ok(s.init.json.result.serverInfo.name);
  const other = await rawSession(url);
  assert.notEqual(other.sid, s.sid, "each initialize gets its own session");
});

test("malformed JSON → 400, -32700, id null", async () => {
  const s = await rawSession(url);
  const r = await s.post('{"jsonrpc":"2.0","id":1,"method":');
  assert.equal(r.status, 400);
  assert.equal(r.json.jsonrpc, "2.0");
  assert.equal(r.json.error.code, -32700);
  assert.equal(r.json.id, null);
});

test("a batch in a 2025-06-18 session → 400, -32600", async () => {
  const s = await rawSession(url);
  const r = await s.post([ping(1), ping(2)]);
  assert.equal(r.status, 400);
  assert.equal(r.json.error.code, -32600);
});

test("a request without Mcp-Session-Id is answered on its own; a notification → 400", async () => {
  const r = await post(url, { jsonrpc: "2.0", id: 5, method: "tools/list" });
  assert.equal(r.status, 200);
  assert.equal(r.json.id, 5);
  assert.deepEqual(r.json.result.tools.map((t) => t.name), ["run_js", "run_py", "session_create", "session_close"]);
  assert.equal(r.headers.get("mcp-session-id"), null);
  const n = await post(url, { jsonrpc: "2.0", method: "notifications/initialized" });
  assert.equal(n.status, 400);
  assert.equal(n.json.error.code, -32600);
});

test("an unknown session → 404", async () => {
  const r = await post(url, ping(6), {
    "mcp-session-id": "0123456789abcdef0123456789abcdef",
    "mcp-protocol-version": PROTOCOL,
  });
  assert.equal(r.status, 404);
  assert.equal(r.json.id, 6);
  assert.ok(r.json.error);
});

test("DELETE ends the session; reusing it → 404", async () => {
  const s = await rawSession(url);
  assert.equal((await s.post(ping(1))).status, 200);
  const del = await request(url, { method: "DELETE", headers: s.headers });
  assert.ok(del.status === 200 || del.status === 204, `DELETE → ${del.status}`);
  assert.equal((await s.post(ping(2))).status, 404);
  const again = await request(url, { method: "DELETE", headers: s.headers });
  assert.equal(again.status, 404);
});

test("a notification → 202 with no body", async () => {
  const s = await rawSession(url);
  const r = await s.post({ jsonrpc: "2.0", method: "notifications/initialized" });
  assert.equal(r.status, 202);
  assert.equal(r.text, "");
  const c = await s.post({ jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: 99 } });
  assert.equal(c.status, 202);
});

test("GET /mcp without Accept: text/event-stream → 405", async () => {
  const s = await rawSession(url);
  const r = await request(url, { headers: { ...s.headers, accept: "application/json" } });
  assert.equal(r.status, 405);
  assert.match(r.headers.get("allow") ?? "", /POST/);
});

test("a foreign Origin → 403; a loopback Origin is fine", async () => {
  const bad = await post(url, ping(), { origin: "https://evil.example" });
  assert.equal(bad.status, 403);
  const s = await rawSession(url);
  const bad2 = await s.post(ping(), { origin: "https://evil.example" });
  assert.equal(bad2.status, 403);
  const good = await s.post(ping(), { origin: `http://127.0.0.1:${server.port}` });
  assert.equal(good.status, 200);
  const good2 = await s.post(ping(), { origin: `http://localhost:${server.port}` });
  assert.equal(good2.status, 200);
});

test("a foreign Host (DNS rebinding) → 403", async () => {
  // fetch does not let us set Host; node:http does.
  const status = await new Promise((resolve, reject) => {
    const req = http.request(
      { host: "127.0.0.1", port: server.port, path: "/mcp", method: "POST",
        headers: { ...JSON_HEADERS, host: `evil.example:${server.port}` } },
      (res) => {
        res.resume();
        resolve(res.statusCode);
      },
    );
    req.on("error", reject);
    req.setTimeout(5000, () => req.destroy(new Error("timeout")));
    req.end(JSON.stringify(ping()));
  });
  assert.equal(status, 403);
});

test("GET / in --no-ui mode answers a JSON status", async () => {
  const r = await request(server.base + "/");
  assert.equal(r.status, 200);
  assert.match(r.headers.get("content-type"), /application\/json/);
  assert.equal(r.json.status, "ok");
  assert.deepEqual(r.json.tools, ["run_js", "run_py"]);
});

test("an unknown path → 404", async () => {
  const r = await request(server.base + "/nope");
  assert.equal(r.status, 404);
});

test("an oversized body (> 8 MiB) → 413", async () => {
  const s = await rawSession(url);
  const body = JSON.stringify({
    jsonrpc: "2.0",
    id: 1,
    method: "tools/call",
    params: { name: "run_js", arguments: { code: "//" + "x".repeat(9 * 1024 * 1024) } },
  });
  // node:http so that a response that arrives while we are still uploading is seen.
  const status = await withTimeout(
    new Promise((resolve, reject) => {
      const req = http.request(
        { host: "127.0.0.1", port: server.port, path: "/mcp", method: "POST",
          headers: { ...JSON_HEADERS, ...s.headers, "content-length": Buffer.byteLength(body) } },
        (res) => {
          res.resume();
          resolve(res.statusCode);
        },
      );
      req.on("error", (e) => setTimeout(() => reject(e), 1000)); // a reply may still come
      req.end(body);
    }),
    15000,
    "413 reply",
  );
  assert.equal(status, 413);
  // The server is fine afterwards.
  assert.equal((await s.post(ping(2))).status, 200);
});

test("an unknown method → -32601 with the same id", async () => {
  const s = await rawSession(url);
  for (const id of [42, "abc-7"]) {
    const r = await s.post({ jsonrpc: "2.0", id, method: "no/such/method" });
    assert.equal(r.status, 200);
    assert.equal(r.json.id, id);
    assert.equal(r.json.error.code, -32601);
  }
});

test("invalid params keep the request id: -32602", async () => {
  const s = await rawSession(url);
  const r = await s.post({ jsonrpc: "2.0", id: 77, method: "tools/call", params: { arguments: {} } });
  assert.equal(r.json.id, 77);
  assert.equal(r.json.error.code, -32602);
});

test("an unsupported MCP-Protocol-Version header → 400", async () => {
  const s = await rawSession(url);
  const r = await s.post(ping(), { "mcp-protocol-version": "1999-01-01" });
  assert.equal(r.status, 400);
});

test("a wrong Content-Type → 415", async () => {
  const s = await rawSession(url);
  const r = await s.post(JSON.stringify(ping()), { "content-type": "text/plain" });
  assert.equal(r.status, 415);
});

test("tools/call over raw HTTP returns a plain JSON result", async () => {
  const s = await rawSession(url);
  const r = await s.post({
    jsonrpc: "2.0",
    id: 9,
    method: "tools/call",
    params: { name: "run_js", arguments: { code: "console.log('raw')" } },
  });
  assert.equal(r.status, 200);
  assert.match(r.headers.get("content-type"), /application\/json/);
  assert.equal(r.json.id, 9);
  assert.equal(r.json.result.isError, false);
  assert.equal(r.json.result.structuredContent.stdout, "raw\n");
  assert.equal(r.json.result.content[0].text, "raw\n");
});
