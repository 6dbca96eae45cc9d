// Code mode with many upstream tools, against the real binary: two fixture upstreams of 40 tools
// each (tests/fixtures/upstream/many_tools.mjs) and the stdio fixture, under a server
// policy.mcps that hides some of them. The search_tools tool, mcp.$search() in run_js and
// mcp_tools.search() in run_py; the short run_js/run_py descriptions of codeMode.describe
// "summary"; gateway exposure ("expose": true: upstream tools called directly through the SDK
// client, with progress, cancellation and list_changed, and across a restart of the upstream);
// and the bytes of tools/list with 100 upstream tools in each codeMode.describe mode.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";

import {
  FIXTURES,
  assertOk,
  callTool,
  connectHttp,
  eventually,
  makeProject,
  McpError,
  ToolListChangedNotificationSchema,
  request,
  runJs,
  runPy,
  show,
  startServer,
  tempDir,
  withTimeout,
} from "./lib.mjs";

const NODE = process.execPath;
const MANY = path.join(FIXTURES, "many_tools.mjs");

const cleanups = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

// A server with `mcps` and codeMode/policy edits, once every upstream is ready and the catalog
// has `tools` tools (search_tools with an empty query counts what the policy allows).
async function serve(mcps, edit, tools) {
  const dir = makeProject((cfg) => {
    cfg.mcps = mcps;
    edit?.(cfg);
  });
  const server = await startServer({ dir });
  cleanups.push(() => server.stop());
  const base = server.url.replace(/\/mcp$/, "");
  await eventually(
    async () => (await request(`${base}/mcps`)).json.mcps.every((m) => m.status === "ready"),
    20000,
    "every upstream ready",
  );
  const client = await connectHttp(server.url);
  cleanups.push(() => client.close());
  await eventually(
    async () => (await search(client, { query: "", limit: 1 })).structuredContent.total === tools,
    10000,
    `${tools} tools in the catalog`,
  );
  return { server, client };
}

const search = (client, args) => callTool(client, "search_tools", args);
const many = (name, count, offset) => ({ name, transport: "stdio", command: NODE, args: [MANY, String(count), String(offset)] });

let client, base;
// While this file exists, a flaky that starts waits (its restart is held).
const HOLD = path.join(tempDir(), "hold");

before(async () => {
  // crm: create_* and get_* of 20 entities; devops: list_* and update_*, of which the policy
  // lets runs call list_issues only. devops and flaky are exposed (gateway).
  let server;
  ({ client, server } = await serve(
    [
      many("crm", 40, 0),
      { ...many("devops", 40, 40), expose: true },
      { name: "flaky", transport: "stdio", command: NODE, args: [path.join(FIXTURES, "stdio_server.mjs")],
        env: { ONEMCP_HOLD_FILE: HOLD }, expose: true },
    ],
    (cfg) => (cfg.policy.mcps = ["crm", "devops/list_issues", "flaky"]),
    40 + 1 + 11,
  ));
  base = server.url.replace(/\/mcp$/, "");
});

test("search_tools ranks the allowed tools and shows each detail level", async () => {
  const { tools } = await client.listTools();
  const tool = tools.find((t) => t.name === "search_tools");
  assert.ok(tool, "search_tools is listed");
  assert.deepEqual(tool.inputSchema.required, ["query"]);
  assert.equal(tool.annotations.readOnlyHint, true);

  const names = await search(client, { query: "issue", detail: "names" });
  assert.equal(names.isError, undefined, show(names));
  // The tools named after issues; devops/update_issue is hidden by the policy.
  assert.deepEqual(
    names.structuredContent.matches.map((m) => m.name),
    ["crm/create_issue", "crm/get_issue", "devops/list_issues"],
  );
  assert.deepEqual(names.structuredContent.matches[0], { server: "crm", tool: "create_issue", name: "crm/create_issue" });
  assert.equal(names.content[0].text, "mcp.crm.create_issue\nmcp.crm.get_issue\nmcp.devops.list_issues\n3 of 3 matching tools shown.\n");

  const described = await search(client, { query: "create invoice", limit: 2 });
  assert.equal(described.structuredContent.matches[0].name, "crm/create_invoice");
  assert.match(described.structuredContent.matches[0].description, /^Creates an invoice\./);
  assert.equal(described.structuredContent.matches.length, 2);
  assert.ok(described.structuredContent.total > 2);

  const sig = await search(client, { query: "get customer", detail: "signatures", limit: 1 });
  const m = sig.structuredContent.matches[0];
  assert.equal(m.name, "crm/get_customer");
  assert.match(m.signature, /^\/\*\* Gets one customer by id.*\*\/\nmcp\.crm\.get_customer\(args: \{ id: string; \}\): Promise<\{ args\?: \{ \[key: string\]: unknown; \}; tool: string; \}>$/s);
  assert.deepEqual(m.inputSchema.required, ["id"]);
  assert.equal(m.outputSchema.type, "object");

  for (const bad of [{}, { query: 3 }, { query: "x", detail: "all" }, { query: "x", limit: 0 }, { query: "x", limit: 51 }, { query: "x", other: 1 }]) {
    const r = await search(client, bad);
    assert.equal(r.isError, true, JSON.stringify(bad));
    assert.match(r.content[0].text, /^invalid arguments: /);
  }
});

test("run_js and run_py descriptions are a summary pointing to search_tools", async () => {
  const { tools } = await client.listTools();
  const js = tools.find((t) => t.name === "run_js").description;
  const py = tools.find((t) => t.name === "run_py").description;
  assert.match(js, /Upstream 3 servers: crm \(40 tools\), devops \(1 tool\), flaky \(11 tools\)\./);
  assert.match(js, /search_tools tool, or in the run with `await mcp\.\$search\(query, \{detail\}\)`/);
  assert.match(py, /`mcp_tools\.search\(query, detail=\.\.\.\)`/);
  assert.doesNotMatch(js, /mcp\.crm\.create_invoice/);
});

test("a run finds a tool with mcp.$search, reads its signature and calls it", async () => {
  const r = await runJs(
    client,
    `
    const found = await mcp.$search("get invoice", { detail: "signatures", limit: 1 });
    const [m] = found.matches;
    console.log(m.signature.split("\\n").pop());
    console.log(JSON.stringify(await mcp[m.server][m.tool]({ id: "inv-7" })));
    const hidden = await mcp.$search("update issue", { detail: "names" });
    console.log(hidden.matches.map((h) => h.name).join(","));
    try { await mcp.$search("x", { limit: 99 }); } catch (e) { console.log(e.name, e.message); }
    `,
  );
  assertOk(r);
  assert.equal(
    r.structuredContent.stdout,
    "mcp.crm.get_invoice(args: { id: string; }): Promise<{ args?: { [key: string]: unknown; }; tool: string; }>\n" +
      '{"args":{"id":"inv-7"},"tool":"get_invoice"}\n' +
      // update_issue of devops is hidden; the issue tools allowed still match "issue".
      "crm/create_issue,crm/get_issue,devops/list_issues\n" +
      "McpError mcp_search: invalid arguments: limit must be an integer from 1 to 50\n",
  );
});

test("run_py finds and calls a tool with mcp_tools.search; a call's policy.mcps narrows the search", async () => {
  const r = await runPy(
    client,
    `
import mcp_tools
found = mcp_tools.search("list issues", detail="names", limit=1)
m = found["matches"][0]
print(m["name"], found["total"])
print(getattr(getattr(mcp_tools, m["server"]), m["tool"])(query="open"))
`,
  );
  assertOk(r);
  const [first, second] = r.structuredContent.stdout.trim().split("\n");
  assert.match(first, /^devops\/list_issues \d+$/);
  assert.match(second, /"tool":"list_issues","args":\{"query":"open"\}/);

  const narrowed = await runJs(client, `console.log((await mcp.$search("", { detail: "names", limit: 50 })).total)`,
    { policy: { mcps: ["crm/get_invoice", "flaky/echo"] } });
  assertOk(narrowed);
  assert.equal(narrowed.structuredContent.stdout, "2\n");
});

const FLAKY = ["add_tool", "ask_client", "cancelled", "crash", "echo", "env", "garbage", "grandchild", "hang", "pid", "slow"];

test("exposed upstream tools are tools of 1mcp, under policy.mcps, called directly through the SDK client", async () => {
  const { tools } = await client.listTools();
  // devops/list_issues only (the policy hides the rest of devops); crm is not exposed.
  assert.deepEqual(
    tools.map((t) => t.name).filter((n) => n.includes("__")).sort(),
    ["devops__list_issues", ...FLAKY.map((t) => `flaky__${t}`)],
  );
  const li = tools.find((t) => t.name === "devops__list_issues");
  assert.deepEqual(li.annotations, { readOnlyHint: true, destructiveHint: false });
  assert.equal(li.inputSchema.properties.limit.maximum, 100);
  assert.match(li.description, /^Lists issues matching a query/);
  const r = await callTool(client, "devops__list_issues", { query: "open" });
  assert.deepEqual(JSON.parse(r.content[0].text), { tool: "list_issues", args: { query: "open" } });
  assert.equal((await callTool(client, "flaky__echo", { text: "direct" })).content[0].text, "direct");
  // Hidden by the policy, not exposed, or not a tool at all: unknown.
  for (const name of ["devops__update_issue", "crm__get_invoice", "flaky__nope"]) {
    await assert.rejects(callTool(client, name, {}), (e) => e instanceof McpError && e.code === -32602 && e.message.includes(`Unknown tool: ${name}`));
  }
  // An upstream failure is the tool's error result.
  const flaky = async () => (await request(`${base}/mcps`)).json.mcps.find((m) => m.name === "flaky");
  const before = (await flaky()).restarts;
  const crashed = await callTool(client, "flaky__crash", { hold: true });
  assert.equal(crashed.isError, true);
  assert.match(crashed.content[0].text, /^flaky__crash: upstream 'flaky' exited with status 3/);
  // While it restarts (held), its tools stay listed and a call says why it is not served.
  const during = (await client.listTools()).tools.map((t) => t.name).filter((n) => n.startsWith("flaky__"));
  assert.deepEqual(during.sort(), FLAKY.map((t) => `flaky__${t}`));
  const refused = await callTool(client, "flaky__echo", { text: "now?" });
  assert.equal(refused.isError, true, show(refused));
  assert.equal(refused.content[0].text, "flaky__echo: upstream 'flaky' is restarting (attempt 1); try again");
  const inRun = await runJs(client, `try { await mcp.flaky.echo({ text: "now?" }); } catch (e) { console.log(e.name, e.message); }`);
  assertOk(inRun);
  assert.equal(inRun.structuredContent.stdout, "McpError flaky.echo: upstream 'flaky' is restarting (attempt 1); try again\n");
  // Restarted: ready means its tools are callable, at once.
  fs.rmSync(HOLD);
  await eventually(async () => {
    const f = await flaky();
    return f.restarts > before && f.status === "ready";
  }, 15000, "flaky restarted");
  assert.equal((await callTool(client, "flaky__echo", { text: "back" })).content[0].text, "back");
});

test("a forwarded call reports the upstream's progress; cancelling it cancels it upstream", async () => {
  const progress = [];
  const r = await client.callTool({ name: "flaky__slow", arguments: { ms: 200 } }, undefined, {
    timeout: 10000,
    onprogress: (p) => progress.push([p.progress, p.total]),
  });
  assert.equal(r.content[0].text, "slept 200 ms");
  assert.deepEqual(progress, [[1, 4], [2, 4], [3, 4], [4, 4]]);

  // Cancelled once the upstream reports it is under way.
  const ac = new AbortController();
  let started;
  const underway = new Promise((resolve) => (started = resolve));
  const pending = client.callTool({ name: "flaky__slow", arguments: { ms: 30000 } }, undefined, {
    timeout: 40000,
    signal: ac.signal,
    onprogress: () => started(),
  });
  await withTimeout(underway, 10000, "the first progress of flaky__slow");
  ac.abort("enough");
  await assert.rejects(pending);
  const ids = await eventually(async () => {
    const c = JSON.parse((await callTool(client, "flaky__cancelled", {})).content[0].text);
    return c.length > 0 && c;
  }, 10000, "notifications/cancelled reaching the upstream");
  assert.equal(ids.length, 1);
});

test("list_changed of an exposed upstream reaches the client, with the new tool", async () => {
  let changed = 0;
  client.setNotificationHandler(ToolListChangedNotificationSchema, () => changed++);
  await callTool(client, "flaky__add_tool", {});
  await eventually(
    async () => changed > 0 && (await client.listTools()).tools.some((t) => t.name === "flaky__extra"),
    10000,
    "flaky__extra listed after notifications/tools/list_changed",
  );
  const extra = await callTool(client, "flaky__extra", {});
  assert.equal(extra.isError, true);  // the fixture lists it but does not implement it
  assert.match(extra.content[0].text, /^flaky__extra: .*Unknown tool: extra/);
});

test("README: the bytes of tools/list with 100 upstream tools in each codeMode.describe mode", async () => {
  const bytes = {};
  for (const describe of ["none", "summary", "full"]) {
    const { client: c, server } = await serve([many("big", 100, 0)], (cfg) => (cfg.codeMode = { describe }), 100);
    const { tools } = await c.listTools();
    bytes[describe] = Buffer.byteLength(JSON.stringify({ tools }));
    await c.close();
    await server.stop();
  }
  console.log(`tools/list bytes with 100 upstream tools: ${JSON.stringify(bytes)}`);
  assert.ok(bytes.summary - bytes.none < 1000, JSON.stringify(bytes));
  assert.ok(bytes.full - bytes.summary > 15000, JSON.stringify(bytes));
});
