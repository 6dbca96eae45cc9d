// The read-only /mcps/ tree of runs that may call upstream tools, against the real binary with
// fixture upstreams of dozens of tools: a run finds a tool with search_tools, reads its .d.ts
// (run_js) or .pyi (run_py) under /mcps and calls it; policy.mcps hides a tool or a whole server
// from search_tools, from the gateway's tools/list and from the tree alike; the tree cannot be
// written; the per-step breakdown shows its mount; after an upstream's list_changed a new run
// sees the new tree while a session's interpreter keeps the one it started with.
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
  readConfig,
  request,
  runJs,
  runPy,
  show,
  startServer,
} from "./lib.mjs";

const NODE = process.execPath;
const MANY = path.join(FIXTURES, "many_tools.mjs");
const many = (name, count, offset) => ({ name, transport: "stdio", command: NODE, args: [MANY, String(count), String(offset)] });

const cleanups = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

const search = (args) => callTool(client, "search_tools", args);
let client, treesDir;
// The trees on disk (server/mcps_tree.h): one directory per distinct tree, nothing else.
const trees = () => fs.readdirSync(treesDir).sort();

before(async () => {
  // crm: 40 tools, all allowed; devops: 40 tools, exposed, of which only list_issues is allowed;
  // hidden: exposed but not in policy.mcps at all; flaky: 11 tools (add_tool announces a 12th).
  const dir = makeProject((cfg) => {
    cfg.mcps = [
      many("crm", 40, 0),
      { ...many("devops", 40, 40), expose: true },
      { ...many("hidden", 20, 60), expose: true },
      { name: "flaky", transport: "stdio", command: NODE, args: [path.join(FIXTURES, "stdio_server.mjs")], expose: true },
    ];
    cfg.policy.mcps = ["crm", "devops/list_issues", "flaky"];
  });
  treesDir = path.join(path.resolve(dir, readConfig(dir).cacheDir), "mcps");
  const server = await startServer({ dir, extra: ["--profile-runs"] });
  cleanups.push(() => server.stop());
  const base = server.url.replace(/\/mcp$/, "");
  await eventually(
    async () => (await request(`${base}/mcps`)).json.mcps.every((m) => m.status === "ready"),
    20000,
    "every upstream ready",
  );
  client = await connectHttp(server.url);
  cleanups.push(() => client.close());
  await eventually(
    async () => (await search({ query: "", limit: 1 })).structuredContent.total === 40 + 1 + 11,
    10000,
    "52 tools in the catalog",
  );
});

test("run_js finds a tool with search_tools, reads its .d.ts under /mcps and calls it", async () => {
  const found = await search({ query: "get invoice", detail: "names", limit: 1 });
  const [m] = found.structuredContent.matches;
  assert.deepEqual(m, { server: "crm", tool: "get_invoice", name: "crm/get_invoice" });
  const r = await runJs(
    client,
    `
    const fs = require("fs");
    console.log(fs.readdirSync("/mcps").sort().join(","));
    const readme = fs.readFileSync("/mcps/README.md", "utf8");
    console.log(readme.split("\\n").find((l) => l.startsWith("The upstream MCP tools")));
    const dts = fs.readFileSync("/mcps/${m.server}/${m.tool}.d.ts", "utf8");
    console.log(dts.split("\\n").filter((l) => l.startsWith("export declare") || l.startsWith("//   ")).join("\\n"));
    console.log(fs.readFileSync("/mcps/crm/index.d.ts", "utf8").includes("// - get_invoice: Gets one invoice by id"));
    console.log(JSON.stringify(await mcp.${m.server}.${m.tool}({ id: "inv-7" })));
    for (const p of ["/mcps/new.txt", "/mcps/crm/get_invoice.d.ts"]) {
      try { fs.writeFileSync(p, "x"); console.log("written", p); } catch (e) { console.log(e.code); }
    }
    `,
  );
  assertOk(r);
  const out = r.structuredContent.stdout.trim().split("\n");
  assert.deepEqual(out.slice(0, -2), [
    "README.md,crm,devops,flaky,types.d.ts",
    "The upstream MCP tools this run may call: 3 servers, 52 tools.",
    "//   id (string, required): Id of the invoice.",
    "export declare function get_invoice(args: { id: string; }): Promise<{ args?: { [key: string]: unknown; }; tool: string; }>;",
    "true",
    '{"args":{"id":"inv-7"},"tool":"get_invoice"}',
  ]);
  // Refused by the read-only mount (or, before it, by Landlock).
  for (const code of out.slice(-2)) assert.ok(["EROFS", "EACCES"].includes(code), show(r));
  // The mount is a step of the run's breakdown (serve --profile-runs).
  const steps = JSON.stringify(r._meta["io.1mcp/steps"]);
  assert.ok(steps.includes('"run: /mcps tree"'), steps);
});

test("run_py finds a tool with mcp_tools.search, reads its .pyi under /mcps and calls it", async () => {
  const r = await runPy(
    client,
    `
import mcp_tools
m = mcp_tools.search("get customer", detail="names", limit=1)["matches"][0]
stub = open(f"/mcps/{m['server']}/{m['tool']}.pyi").read()
print(stub.splitlines()[0])
print([l.strip() for l in stub.splitlines() if l.strip().startswith(("def ", "id ("))])
print('"""Gets one customer by id' in stub)
server = getattr(mcp_tools, m["server"])
print(getattr(server, m["tool"])(id="c-1"))
try:
    open("/mcps/crm/x.py", "w")
except OSError as e:
    print(type(e).__name__)
`,
  );
  assertOk(r);
  const out = r.structuredContent.stdout.trim().split("\n");
  assert.deepEqual(out.slice(0, -1), [
    '# mcp_tools.crm.get_customer: tool "get_customer" of the upstream MCP server "crm".',
    "['def get_customer(args: dict[str, Any] | None = None, /, **kwargs: Any) -> Any:', 'id (string, required): Id of the customer.']",
    "True",
    "{'args': {'id': 'c-1'}, 'tool': 'get_customer'}",
  ]);
  assert.ok(["OSError", "PermissionError"].includes(out.at(-1)), show(r));
  // Written once for the server's policy, whatever the language, not once per run.
  const written = trees();
  assert.equal(written.length, 1, written.join());
  assert.match(written[0], /^[0-9a-f]{64}$/);
  const ino = fs.statSync(path.join(treesDir, written[0])).ino;
  assertOk(await runJs(client, `console.log(1)`));
  assert.equal(fs.statSync(path.join(treesDir, written[0])).ino, ino);
});

test("policy.mcps hides a tool or a server from search_tools, the gateway's tools/list and /mcps alike", async () => {
  // The server's policy: devops/update_issue and all of `hidden` are hidden.
  const names = (await search({ query: "update issue", detail: "names", limit: 50 })).structuredContent.matches.map((m) => m.name);
  assert.ok(!names.includes("devops/update_issue"), names.join());
  assert.equal((await search({ query: "hidden", detail: "names", limit: 50 })).structuredContent.matches.filter((m) => m.server === "hidden").length, 0);
  const { tools } = await client.listTools();
  const gateway = tools.map((t) => t.name).filter((n) => n.startsWith("devops__") || n.startsWith("hidden__"));
  assert.deepEqual(gateway, ["devops__list_issues"]);
  const tree = `
    const fs = require("fs");
    const ls = (d) => fs.existsSync(d) ? fs.readdirSync(d).sort().join(",") : "absent";
    console.log(ls("/mcps"));
    console.log(ls("/mcps/devops"));
    console.log(ls("/mcps/hidden"));
    console.log((await mcp.$search("", { detail: "names", limit: 50 })).total);
  `;
  let r = await runJs(client, tree);
  assertOk(r);
  assert.equal(
    r.structuredContent.stdout,
    "README.md,crm,devops,flaky,types.d.ts\nindex.d.ts,list_issues.d.ts,list_issues.pyi\nabsent\n52\n",
  );
  // A call's own policy.mcps narrows the tree further: one tool of crm, nothing else.
  r = await runJs(client, tree, { policy: { mcps: ["crm/get_invoice"] } });
  assertOk(r);
  assert.equal(r.structuredContent.stdout, "README.md,crm,types.d.ts\nabsent\nabsent\n1\n");
  r = await runPy(client, `import os\nprint(sorted(os.listdir("/mcps/crm")))`, { policy: { mcps: ["crm/get_invoice"] } });
  assertOk(r);
  assert.equal(r.structuredContent.stdout, "['get_invoice.d.ts', 'get_invoice.pyi', 'index.d.ts']\n");
  // No upstream allowed to the call: an empty /mcps.
  r = await runJs(client, `console.log(require("fs").readdirSync("/mcps").length)`, { policy: { mcps: [] } });
  assertOk(r);
  assert.equal(r.structuredContent.stdout, "0\n");
});

test("after an upstream's list_changed a new run sees the new tree; a session's interpreter keeps its own", async () => {
  const session = (await callTool(client, "session_create", {})).structuredContent.session;
  const hasExtra = `console.log(require("fs").existsSync("/mcps/flaky/extra.d.ts"), require("fs").readdirSync("/mcps/flaky").length)`;
  let s = await runJs(client, hasExtra, { session });
  assertOk(s);
  assert.equal(s.structuredContent.stdout, "false 23\n");  // 11 tools x 2 files + index.d.ts
  const pyHasExtra = `import os\nprint(os.path.exists("/mcps/flaky/extra.pyi"), len(os.listdir("/mcps/flaky")))`;
  let sp = await runPy(client, pyHasExtra, { session });
  assertOk(sp);
  assert.equal(sp.structuredContent.stdout, "False 23\n");

  const added = await runJs(client, `await mcp.flaky.add_tool({}); console.log("added")`);
  assertOk(added);
  await eventually(
    async () => (await search({ query: "extra", detail: "names" })).structuredContent.matches.some((m) => m.name === "flaky/extra"),
    10000,
    "flaky/extra in search_tools",
  );
  const r = await runJs(client, `${hasExtra}; console.log(require("fs").readFileSync("/mcps/flaky/index.d.ts", "utf8").includes("export { extra }"))`);
  assertOk(r);
  assert.equal(r.structuredContent.stdout, "true 25\ntrue\n");
  const py = await runPy(client, pyHasExtra);
  assertOk(py);
  assert.equal(py.structuredContent.stdout, "True 25\n");

  // The session's interpreter still has the tree it mounted (kept on disk while it lives).
  s = await runJs(client, hasExtra, { session });
  assertOk(s);
  assert.deepEqual(s.structuredContent.session, { interpreter: "continued", call: 2 }, show(s));
  assert.equal(s.structuredContent.stdout, "false 23\n");
  sp = await runPy(client, pyHasExtra, { session });
  assertOk(sp);
  assert.deepEqual(sp.structuredContent.session, { interpreter: "continued", call: 2 }, show(sp));
  assert.equal(sp.structuredContent.stdout, "False 23\n");
  // On disk: the new tree and the session's; the trees of the old list nobody uses are gone.
  assert.equal(trees().length, 2, trees().join());
  await callTool(client, "session_close", { session });
});
