// The stateless era of MCP (2026-07-28) next to the legacy one, driven by the official
// TypeScript SDK v2 client (@modelcontextprotocol/client) over HTTP and stdio: pinned to the
// modern revision, negotiating by itself ("auto"), and in the legacy era; plus raw HTTP checks
// of what the modern era answers that an SDK would hide (headers, status codes, no session).
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { StdioClientTransport } from "@modelcontextprotocol/client/stdio";

import { BIN, makeProject, post, readConfig, sleep, startServer, withLimits, withTimeout, writeConfig } from "./lib.mjs";

const MODERN = "2026-07-28";
let server;

before(async () => {
  server = await startServer();
});

after(async () => {
  await server?.stop();
});

async function connect(transport, mode, expected = mode === "legacy" ? "2025-11-25" : MODERN) {
  const client = new Client(
    { name: "1mcp-e2e-v2", version: "1.0.0" },
    { versionNegotiation: { mode } },
  );
  await withTimeout(client.connect(transport), 20000, `connect (${JSON.stringify(mode)})`);
  assert.equal(client.getNegotiatedProtocolVersion(), expected, `era of ${JSON.stringify(mode)}`);
  return client;
}

async function exercise(client, era) {
  const tools = await client.listTools();
  // Only 1mcp's own: the conformance fixtures are served only when a test asks for them.
  assert.deepEqual(tools.tools.map((t) => t.name).sort(), ["run_js", "run_py", "session_close", "session_create"], era);
  assert.equal(client.getServerCapabilities().prompts, undefined, `${era}: prompts offered`);
  const js = await client.callTool({ name: "run_js", arguments: { code: `console.log("${era}-" + 6 * 7)` } });
  assert.equal(js.structuredContent.stdout, `${era}-42\n`, JSON.stringify(js));
  const py = await client.callTool({ name: "run_py", arguments: { code: `print("${era}", 6 * 7)` } });
  assert.equal(py.structuredContent.stdout, `${era} 42\n`, JSON.stringify(py));
  // Progress notifications reach the modern client on the call's own stream too.
  const progress = [];
  const slow = await client.callTool(
    { name: "run_py", arguments: { code: "import time\ntime.sleep(0.3)\nprint('done')" } },
    { onprogress: (p) => progress.push(p) },
  );
  assert.equal(slow.structuredContent.stdout, "done\n");
  assert.ok(progress.length >= 1, `${era}: no progress notification`);
}

test("SDK v2 client pinned to 2026-07-28 over HTTP: discover, list, call, progress", async () => {
  const client = await connect(new StreamableHTTPClientTransport(new URL(server.url)), { pin: MODERN });
  try {
    await exercise(client, "modern");
  } finally {
    await client.close();
  }
});

test("SDK v2 client in 'auto' mode picks the modern era; in 'legacy' mode the 2025 one", async () => {
  const auto = await connect(new StreamableHTTPClientTransport(new URL(server.url)), "auto");
  try {
    await exercise(auto, "auto");
  } finally {
    await auto.close();
  }
  const legacy = await connect(new StreamableHTTPClientTransport(new URL(server.url)), "legacy");
  try {
    await exercise(legacy, "legacy");
  } finally {
    await legacy.close();
  }
});

test("SDK v2 client pinned to 2026-07-28 over stdio", async () => {
  const dir = makeProject();
  const transport = new StdioClientTransport({ command: BIN, args: ["serve", "--stdio", "--dir", dir], stderr: "pipe" });
  const client = await connect(transport, { pin: MODERN });
  try {
    await exercise(client, "stdio");
  } finally {
    await client.close();
  }
});

const meta = (version = MODERN) => ({
  "io.modelcontextprotocol/protocolVersion": version,
  "io.modelcontextprotocol/clientCapabilities": {},
});
const headersOf = (msg) => ({
  "mcp-protocol-version": msg.params._meta["io.modelcontextprotocol/protocolVersion"],
  "mcp-method": msg.method,
  ...(msg.method === "tools/call" ? { "mcp-name": msg.params.name } : {}),
});

test("raw HTTP: stateless requests get no session, removed methods 404, mismatches 400", async () => {
  const discover = { jsonrpc: "2.0", id: "d", method: "server/discover", params: { _meta: meta() } };
  const d = await post(server.url, discover, { ...headersOf(discover), "mcp-session-id": "whatever" });
  assert.equal(d.status, 200, d.text);
  assert.equal(d.headers.get("mcp-session-id"), null);
  assert.equal(d.json.result.resultType, "complete");
  assert.deepEqual(d.json.result.supportedVersions, [MODERN]);
  assert.ok(d.json.result._meta["io.modelcontextprotocol/serverInfo"].name);

  const ping = { jsonrpc: "2.0", id: 2, method: "ping", params: { _meta: meta() } };
  const p = await post(server.url, ping, headersOf(ping));
  assert.equal(p.status, 404);
  assert.equal(p.json.error.code, -32601);
  assert.equal(p.json.id, 2);

  const call = { jsonrpc: "2.0", id: 3, method: "tools/call", params: { _meta: meta(), name: "run_js", arguments: { code: "1" } } };
  const wrong = await post(server.url, call, { ...headersOf(call), "mcp-name": "run_py" });
  assert.equal(wrong.status, 400);
  assert.equal(wrong.json.error.code, -32020);
  const old = await post(server.url, { ...call, params: { ...call.params, _meta: meta("1999-01-01") } },
    { ...headersOf(call), "mcp-protocol-version": "1999-01-01" });
  assert.equal(old.status, 400);
  assert.equal(old.json.error.code, -32022);
  assert.equal(old.json.error.data.requested, "1999-01-01");
});

test("raw HTTP: subscriptions/listen acknowledges, then hears a config reload's tools/list_changed", async () => {
  const dir = makeProject();
  const s = await startServer({ dir });
  try {
    const listen = { jsonrpc: "2.0", id: 9, method: "subscriptions/listen",
      params: { _meta: meta(), notifications: { toolsListChanged: true } } };
    const res = await fetch(s.url, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...headersOf(listen) },
      body: JSON.stringify(listen),
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type"), /text\/event-stream/);
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let text = "";
    const next = async () => {
      for (;;) {
        const events = text.split("\n\n");
        const complete = events.slice(0, -1).map((e) => e.split("\n").find((l) => l.startsWith("data:"))).filter(Boolean);
        if (complete.length) {
          text = text.slice(text.indexOf(complete[0]) + complete[0].length);
          text = text.slice(text.indexOf("\n\n") + 2);
          return JSON.parse(complete[0].slice(5));
        }
        const { value, done } = await reader.read();
        if (done) throw new Error("stream ended");
        text += decoder.decode(value, { stream: true });
      }
    };
    const ack = await withTimeout(next(), 5000, "acknowledgement");
    assert.equal(ack.method, "notifications/subscriptions/acknowledged");
    assert.equal(ack.params._meta["io.modelcontextprotocol/subscriptionId"], 9);
    await sleep(100);
    writeConfig(dir, withLimits({ timeoutMs: 23456 })(readConfig(dir)));
    s.proc.kill("SIGHUP");
    const changed = await withTimeout(next(), 10000, "tools/list_changed");
    assert.equal(changed.method, "notifications/tools/list_changed");
    assert.equal(changed.params._meta["io.modelcontextprotocol/subscriptionId"], 9);
    await reader.cancel();
  } finally {
    await s.stop();
  }
});

test("resources: the types and a run's capsule, read by the SDK clients of both eras", async () => {
  for (const mode of [{ pin: MODERN }, "legacy"]) {
    const client = await connect(new StreamableHTTPClientTransport(new URL(server.url)), mode);
    try {
      const list = await client.listResources();
      assert.ok(list.resources.some((r) => r.uri === "onemcp://types/index.d.ts"), JSON.stringify(list));
      const templates = await client.listResourceTemplates();
      assert.ok(templates.resourceTemplates.some((t) => t.uriTemplate === "onemcp://capsules/{id}/manifest.json"));
      const dts = await client.readResource({ uri: "onemcp://types/index.d.ts" });
      assert.match(dts.contents[0].text, /interface/);
      const run = await client.callTool({ name: "run_py", arguments: { code: "print('capsule me')" } });
      const id = run.structuredContent.capsule;
      assert.match(id, /^[0-9a-f]{64}$/);
      const manifest = await client.readResource({ uri: `onemcp://capsules/${id}/manifest.json` });
      assert.equal(JSON.parse(manifest.contents[0].text).language, "py");
      const code = await client.readResource({ uri: `onemcp://capsules/${id}/code.py` });
      assert.equal(code.contents[0].text, "print('capsule me')");
      await assert.rejects(client.readResource({ uri: `onemcp://capsules/${"0".repeat(64)}/manifest.json` }), /not found/i);
    } finally {
      await client.close();
    }
  }
});
