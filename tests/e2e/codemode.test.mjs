// Code mode against the real binary: upstream MCP servers of the config's `mcps` — the npm
// server-filesystem over stdio, server-everything over Streamable HTTP (on loopback), and the
// stdio fixture that crashes or hangs on request — called from inside run_js and run_py, under
// policy.mcps, through restarts and run timeouts; the HTTP endpoints GET /mcps,
// GET /mcps/:name/tools, GET /mcps/types.d.ts and POST /mcps-rpc; and `serve --stdio` stopping
// its upstream servers when it is told to stop. (Many tools and search_tools:
// codemode_scale.test.mjs.)
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { after, before, test } from "node:test";

import {
  BIN,
  FIXTURES,
  REPO_ROOT,
  assertOk,
  connectHttp,
  eventually,
  limits,
  makeProject,
  post,
  request,
  runJs,
  runPy,
  show,
  sleep,
  startLoopbackFixture,
  startServer,
  tempDir,
  waitExit,
  waitGone,
  withLimits,
  withTimeout,
} from "./lib.mjs";

const MODULES = path.join(REPO_ROOT, "node_modules");
const NODE = process.execPath;
const SERVER_TIMEOUT_MS = 5000; // the server's policy.limits.timeoutMs: runs and /mcps-rpc calls

const cleanups = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

let server, client, files;

const getMcps = async () => (await request(`${server.base}/mcps`)).json.mcps;
const rpc = (body, headers, timeoutMs) => post(`${server.base}/mcps-rpc`, body, headers, timeoutMs);
const stdout = (r) => r.structuredContent.stdout;

before(async () => {
  files = tempDir("1mcp-codemode-files-");
  const everything = await startLoopbackFixture([
    "--require",
    path.join(FIXTURES, "loopback_listen.cjs"),
    path.join(MODULES, "@modelcontextprotocol/server-everything/dist/index.js"),
    "streamableHttp",
  ]);
  cleanups.push(() => everything.stop());
  const dir = makeProject((cfg) => {
    cfg.mcps = [
      {
        name: "filesystem",
        transport: "stdio",
        command: NODE,
        args: [path.join(MODULES, "@modelcontextprotocol/server-filesystem/dist/index.js"), files],
      },
      { name: "everything", transport: "http", endpoint: `${everything.url}/mcp` },
      { name: "flaky", transport: "stdio", command: "node", args: [path.join(FIXTURES, "stdio_server.mjs")] },
    ];
    cfg.codeMode = { describe: "full" };  // the descriptions list every tool
    return withLimits({ timeoutMs: SERVER_TIMEOUT_MS })(cfg);
  });
  server = await startServer({ dir });
  cleanups.push(() => server.stop());
  await eventually(
    async () => (await getMcps()).every((m) => m.status === "ready"),
    20000,
    "every upstream ready",
  );
  client = await connectHttp(server.url);
  cleanups.push(() => client.close());
});

test("run_js and run_py descriptions list the upstream tools (codeMode.describe \"full\")", async () => {
  // The catalog follows the upstreams' readiness; it may trail GET /mcps by a moment.
  const tools = await eventually(
    async () => {
      const { tools } = await client.listTools();
      const js = tools.find((t) => t.name === "run_js").description;
      return js.includes("mcp.filesystem.read_text_file") && js.includes("mcp.flaky.echo") && tools;
    },
    10000,
    "run_js description lists the upstream tools",
  );
  const js = tools.find((t) => t.name === "run_js").description;
  assert.match(js, /mcp\.everything\.get_sum\(/);
  const py = tools.find((t) => t.name === "run_py").description;
  assert.match(py, /filesystem\.read_text_file\(/);
});

test("run_js chains several upstream calls in one run", async () => {
  const file = path.join(files, "chain-js.txt");
  const r = await runJs(
    client,
    `
    const path = ${JSON.stringify(file)};
    await mcp.filesystem.write_file({ path, content: "héllo from run_js" });
    const read = await mcp.filesystem.read_text_file({ path });
    const echo = await mcp.everything.echo({ message: read.content });
    const sum = await mcp.everything.get_sum({ a: 19, b: 23 });
    const weather = await mcp.everything.get_structured_content({ location: "Chicago" });
    const image = await mcp.everything.get_tiny_image();
    console.log(JSON.stringify({ read, echo, sum, weather,
      image: image.map((c) => ({ type: c.type, mimeType: c.mimeType, n: (c.data ?? "").length })) }));
    `,
  );
  assertOk(r);
  const out = JSON.parse(stdout(r));
  assert.equal(fs.readFileSync(file, "utf8"), "héllo from run_js");
  assert.deepEqual(out.read, { content: "héllo from run_js" }, "structuredContent comes as an object");
  assert.equal(out.echo[0].type, "text");
  assert.match(out.echo[0].text, /héllo from run_js/);
  assert.match(out.sum[0].text, /is 42/);
  assert.equal(out.weather.temperature, 36);
  assert.equal(typeof out.weather.conditions, "string");
  const img = out.image.find((c) => c.type === "image");
  assert.ok(img, "an image content block: " + stdout(r));
  assert.equal(img.mimeType, "image/png");
  assert.ok(img.n > 50);
});

test("run_py chains the same calls with the synchronous mcp_tools API", async () => {
  const file = path.join(files, "chain-py.txt");
  const r = await runPy(
    client,
    `
import json
import mcp_tools
from mcp_tools import everything, filesystem

path = ${JSON.stringify(file)}
filesystem.write_file(path=path, content="héllo from run_py")
read = filesystem.read_text_file({"path": path})
echo = everything.echo(message=read["content"])
total = everything.get_sum(a=19, b=23)
weather = everything.get_structured_content(location="Chicago")
image = everything.get_tiny_image()
listing = mcp_tools.list()
print(json.dumps({"read": read, "echo": echo, "sum": total, "weather": weather,
                  "image": [[c["type"], c.get("mimeType")] for c in image],
                  "listed": sorted(listing), "tools": "write_file" in listing["filesystem"]}))
`,
  );
  assertOk(r);
  const out = JSON.parse(stdout(r));
  assert.equal(fs.readFileSync(file, "utf8"), "héllo from run_py");
  assert.deepEqual(out.read, { content: "héllo from run_py" });
  assert.match(out.echo[0].text, /héllo from run_py/);
  assert.match(out.sum[0].text, /is 42/);
  assert.equal(out.weather.temperature, 36);
  assert.ok(out.image.some(([type, mime]) => type === "image" && mime === "image/png"), stdout(r));
  assert.deepEqual(out.listed, ["everything", "filesystem", "flaky"]);
  assert.equal(out.tools, true);
});

test("an upstream tool's error result throws McpError in JS and raises in Python", async () => {
  const js = await runJs(
    client,
    `
    try {
      await mcp.filesystem.read_text_file({ path: "/etc/hostname" });
      console.log("no error");
    } catch (e) {
      console.log(e instanceof Error, e.name, e.isError, e.message);
    }
    await mcp.filesystem.read_text_file({ path: "/etc/hostname" });
    `,
  );
  assert.equal(js.structuredContent.outcome, "error", show(js));
  assert.match(stdout(js), /^true McpError true filesystem\.read_text_file: .*(denied|outside)/i);
  assert.match(js.structuredContent.stderr, /McpError: filesystem\.read_text_file: .*(denied|outside)/i);

  const py = await runPy(
    client,
    `
import mcp_tools
from mcp_tools import filesystem
try:
    filesystem.read_text_file(path="/etc/hostname")
    print("no error")
except mcp_tools.McpError as e:
    print(type(e).__name__, e.is_error, e)
filesystem.read_text_file(path="/etc/hostname")
`,
  );
  assert.equal(py.structuredContent.outcome, "error", show(py));
  assert.match(stdout(py), /^McpError True filesystem\.read_text_file: .*(denied|outside)/i);
  assert.match(py.structuredContent.stderr, /mcp_tools\.McpError: filesystem\.read_text_file: /);
});

test("policy.mcps of a call narrows what the run may call", async () => {
  const file = path.join(files, "policy.txt");
  fs.writeFileSync(file, "readable");
  const policy = { policy: { mcps: ["filesystem/read_text_file"] } };
  const js = await runJs(
    client,
    `
    console.log(JSON.stringify(await mcp.$list()));
    console.log((await mcp.filesystem.read_text_file({ path: ${JSON.stringify(file)} })).content);
    for (const call of [() => mcp.filesystem.write_file({ path: ${JSON.stringify(file)}, content: "x" }),
                        () => mcp.everything.echo({ message: "x" })]) {
      try {
        await call();
        console.log("allowed");
      } catch (e) {
        console.log(e.name, e.isError, e.message);
      }
    }
    `,
    policy,
  );
  assertOk(js);
  assert.equal(
    stdout(js),
    '{"filesystem":["read_text_file"]}\n' +
      "readable\n" +
      "McpError false filesystem.write_file is not allowed by policy.mcps\n" +
      "McpError false everything.echo is not allowed by policy.mcps\n",
  );
  assert.equal(fs.readFileSync(file, "utf8"), "readable", "the refused write changed nothing");

  const py = await runPy(
    client,
    `
import mcp_tools
print(mcp_tools.list())
try:
    mcp_tools.filesystem.write_file(path=${JSON.stringify(file)}, content="x")
except mcp_tools.McpError as e:
    print(e.is_error, e)
`,
    policy,
  );
  assertOk(py);
  assert.equal(
    stdout(py),
    "{'filesystem': ['read_text_file']}\nFalse filesystem.write_file is not allowed by policy.mcps\n",
  );

  // An empty list allows nothing; unknown servers and tools are refused by name.
  const none = await runJs(client, "await mcp.flaky.echo({ text: 'x' })", { policy: { mcps: [] } });
  assert.equal(none.structuredContent.outcome, "error", show(none));
  assert.match(none.structuredContent.stderr, /McpError: flaky\.echo is not allowed by policy\.mcps/);
  const nonePy = await runPy(client, "from mcp_tools import flaky\nflaky.echo(text='x')", { policy: { mcps: [] } });
  assert.equal(nonePy.structuredContent.outcome, "error", show(nonePy));
  assert.match(nonePy.structuredContent.stderr, /mcp_tools\.McpError: code mode is not enabled for this run/);
  const unknown = await runJs(
    client,
    `for (const f of [() => mcp.nope.x(), () => mcp.flaky.nope()]) await f().catch((e) => console.log(e.message));`,
  );
  assertOk(unknown);
  assert.equal(
    stdout(unknown),
    "no upstream MCP server nope is available\nupstream MCP server flaky has no tool nope\n",
  );
});

test("an upstream crashing mid-call fails the call clearly; it restarts and later calls work", async () => {
  const before = (await getMcps()).find((m) => m.name === "flaky");
  const r = await runJs(
    client,
    `
    try {
      await mcp.flaky.crash();
      console.log("no error");
    } catch (e) {
      console.log(e.name, e.isError, e.message);
    }
    `,
  );
  assertOk(r);
  assert.match(stdout(r), /^McpError false flaky\.crash: upstream 'flaky' exited with status 3/);
  assert.match(stdout(r), /crashing on purpose/, "the upstream's last stderr line is named");

  // Restarted with backoff; the catalog comes back with it.
  const t0 = Date.now();
  const back = await eventually(
    async () => {
      const e = await runJs(client, "console.log(JSON.stringify(await mcp.flaky.echo({ text: 'back' })))");
      return e.structuredContent.outcome === "ok" && e;
    },
    15000,
    "a call to the restarted upstream succeeds",
  );
  assert.deepEqual(JSON.parse(stdout(back)), [{ type: "text", text: "back" }]);
  const after = (await getMcps()).find((m) => m.name === "flaky");
  assert.equal(after.status, "ready");
  assert.equal(after.restarts, before.restarts + 1);
  assert.ok(Date.now() - t0 < 10000);
});

test("a hanging upstream call ends with the run's timeout; the server stays healthy", async () => {
  const r = await runJs(client, "await mcp.flaky.hang(); console.log('answered')", limits({ timeoutMs: 1500 }));
  assert.equal(r.structuredContent.outcome, "timeout", show(r));
  assert.equal(r.isError, true);
  assert.ok(r.structuredContent.durationMs < 4000, show(r));

  const py = await runPy(client, "from mcp_tools import flaky\nflaky.hang()\nprint('answered')", limits({ timeoutMs: 1500 }));
  assert.equal(py.structuredContent.outcome, "timeout", show(py));

  const later = await runJs(client, "console.log((await mcp.flaky.echo({ text: 'still here' }))[0].text)");
  assertOk(later);
  assert.equal(stdout(later), "still here\n");
  assert.equal((await getMcps()).find((m) => m.name === "flaky").status, "ready");
});

test("GET /mcps and GET /mcps/:name/tools", async () => {
  const list = await request(`${server.base}/mcps`);
  assert.equal(list.status, 200);
  assert.match(list.headers.get("content-type"), /application\/json/);
  const mcps = list.json.mcps;
  assert.deepEqual(
    mcps.map((m) => [m.name, m.transport, m.status]),
    [
      ["filesystem", "stdio", "ready"],
      ["everything", "http", "ready"],
      ["flaky", "stdio", "ready"],
    ],
  );
  for (const m of mcps) assert.ok(m.tools > 0, JSON.stringify(m));
  assert.equal(mcps[0].serverInfo.name, "secure-filesystem-server");
  assert.equal(mcps[1].serverInfo.name, "mcp-servers/everything");

  const tools = await request(`${server.base}/mcps/filesystem/tools`);
  assert.equal(tools.status, 200);
  assert.equal(tools.json.name, "filesystem");
  const names = tools.json.tools.map((t) => t.name);
  for (const t of ["read_text_file", "write_file", "list_directory"]) assert.ok(names.includes(t), t);
  assert.equal(tools.json.tools.length, mcps[0].tools);
  for (const t of tools.json.tools) assert.equal(typeof t.inputSchema, "object");

  const unknown = await request(`${server.base}/mcps/nope/tools`);
  assert.equal(unknown.status, 404);
  assert.match(unknown.json.error, /no upstream MCP server named nope/);
  assert.equal((await request(`${server.base}/mcps`, { method: "POST" })).status, 405);
});

test("POST /mcps-rpc calls upstream tools, with clear error codes", async () => {
  const file = path.join(files, "rpc.txt");
  const w = await rpc({ mcp: "filesystem", tool: "write_file", params: { path: file, content: "over rpc" } });
  assert.equal(w.status, 200, w.text);
  assert.notEqual(w.json.isError, true, w.text);
  const r = await rpc({ mcp: "filesystem", tool: "read_text_file", params: { path: file } });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json.structuredContent, { content: "over rpc" });
  assert.equal(r.json.content[0].text, "over rpc");

  // The tool's own error is its result.
  const denied = await rpc({ mcp: "filesystem", tool: "read_text_file", params: { path: "/etc/hostname" } });
  assert.equal(denied.status, 200, denied.text);
  assert.equal(denied.json.isError, true);

  const cases = [
    [{ mcp: "nope", tool: "x" }, {}, 404, /no upstream MCP server named nope/],
    ["{not json", {}, 400, /JSON object/],
    [[1, 2], {}, 400, /JSON object/],
    [{ mcp: "filesystem" }, {}, 400, /tool \(string\) is required/],
    [{ mcp: "filesystem", tool: "read_text_file", params: [1] }, {}, 400, /params must be an object/],
    [{ mcp: "filesystem", tool: "x" }, { "content-type": "text/plain" }, 415, /application\/json/],
    // A JSON-RPC error of the upstream.
    [{ mcp: "flaky", tool: "no_such_tool" }, {}, 502, /^flaky\.no_such_tool: .*Unknown tool/],
  ];
  for (const [body, headers, status, error] of cases) {
    const res = await rpc(body, headers);
    assert.equal(res.status, status, `${JSON.stringify(body)}: ${res.text}`);
    assert.match(res.json.error, error, res.text);
  }
  const get = await request(`${server.base}/mcps-rpc`);
  assert.equal(get.status, 405);

  // An upstream that never answers: 504 after the server's timeoutMs.
  const t0 = Date.now();
  const hang = await rpc({ mcp: "flaky", tool: "hang" }, {}, SERVER_TIMEOUT_MS + 5000);
  assert.equal(hang.status, 504, hang.text);
  assert.match(hang.json.error, /^flaky\.hang: .*timed out/);
  assert.ok(Date.now() - t0 >= SERVER_TIMEOUT_MS - 100 && Date.now() - t0 < SERVER_TIMEOUT_MS + 3000);
  const echo = await rpc({ mcp: "flaky", tool: "echo", params: { text: "after" } });
  assert.equal(echo.status, 200, echo.text);
  assert.equal(echo.json.content[0].text, "after");
});

test("GET /mcps/types.d.ts is TypeScript that declares the tools", async () => {
  const res = await request(`${server.base}/mcps/types.d.ts`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type"), /typescript/);
  const esbuild = createRequire(import.meta.url)(path.join(MODULES, "esbuild"));
  const out = await esbuild.transform(res.text, { loader: "ts", sourcefile: "types.d.ts" });
  assert.deepEqual(out.warnings, []);
  for (const decl of ["read_text_file", "write_file", "get_sum", "get_structured_content", "hang"]) {
    assert.match(res.text, new RegExp(`\\b${decl}\\(`), decl);
  }
  assert.match(res.text, /declare const mcp: \{/);
  assert.match(res.text, /\$list\(\): Promise</);
  // The result type of a tool with an outputSchema is that schema's.
  assert.match(res.text, /temperature: number/);
});

test("serve --stdio stops its upstream servers on SIGTERM, even one that ignores stdin EOF and SIGTERM", async () => {
  const pidFile = path.join(tempDir("1mcp-pid-"), "upstream.pid");
  const dir = makeProject((cfg) => {
    cfg.mcps = [
      {
        name: "stubborn",
        transport: "stdio",
        command: NODE,
        args: [path.join(FIXTURES, "stdio_server.mjs"), "stubborn"],
        env: { ONEMCP_PID_FILE: pidFile },
      },
    ];
  });
  const proc = spawn(BIN, ["serve", "--stdio", "--dir", dir], { stdio: ["pipe", "pipe", "pipe"] });
  let err = "";
  proc.stderr.setEncoding("utf8").on("data", (d) => (err += d));
  proc.stdout.resume();
  let pid;
  cleanups.push(async () => {
    proc.kill("SIGKILL");
    if (pid) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {}
    }
  });
  await eventually(() => /ready in [\d.]+ ms on stdio/.test(err) && fs.existsSync(pidFile), 20000, "stdio server and upstream up");
  pid = Number(fs.readFileSync(pidFile, "utf8"));
  assert.ok(pid > 0);
  await sleep(200); // let the upstream's SIGTERM handler be in place
  const t0 = Date.now();
  proc.kill("SIGTERM");
  const exit = await waitExit(proc, 15000, "1mcp serve --stdio exit");
  const ms = Date.now() - t0;
  assert.equal(exit.code, 0, err);
  await waitGone(pid, 1000, "the upstream server");
  // stdin closed, 2 s grace, SIGTERM (ignored), 2 s grace, SIGKILL.
  assert.ok(ms < 8000, `shutdown took ${ms} ms`);
});

test("examples/code-mode: its config and its call.json (the upstream from node_modules, not npx)", async () => {
  const example = path.join(REPO_ROOT, "examples/code-mode");
  const cfg = JSON.parse(fs.readFileSync(path.join(example, "1mcp.config.json"), "utf8"));
  delete cfg.$schema;  // relative to the example's own directory
  // The same package and version the example names, as the pinned test dependency: no npx.
  assert.deepEqual(cfg.mcps[0].args.slice(1), ["@modelcontextprotocol/server-everything@2026.8.31", "stdio"]);
  const pkg = JSON.parse(fs.readFileSync(path.join(MODULES, "@modelcontextprotocol/server-everything/package.json"), "utf8"));
  assert.equal(pkg.version, "2026.8.31");
  cfg.mcps[0].command = NODE;
  cfg.mcps[0].args = [path.join(MODULES, "@modelcontextprotocol/server-everything/dist/index.js"), "stdio"];
  const dir = tempDir("1mcp-e2e-example-");
  fs.writeFileSync(path.join(dir, "1mcp.config.json"), JSON.stringify(cfg));
  const s = await startServer({ dir });
  cleanups.push(() => s.stop());
  const base = s.url.replace(/\/mcp$/, "");
  await eventually(async () => (await request(`${base}/mcps`)).json.mcps.every((m) => m.status === "ready"), 20000, "upstream ready");
  const c = await connectHttp(s.url);
  cleanups.push(() => c.close());
  const call = JSON.parse(fs.readFileSync(path.join(example, "call.json"), "utf8"));
  const r = await runJs(c, call.arguments.code);
  assertOk(r);
  assert.equal(r.structuredContent.value,
    "{\n  sums: [\n    'The sum of 1 and 2 is 3.',\n    'The sum of 20 and 22 is 42.',\n    'The sum of 100 and -1 is 99.'\n  ],\n  echo: 'Echo: 3 sums'\n}");
  // policy.mcps allows two tools: another one of the same upstream is refused.
  const refused = await runJs(c, "await mcp.everything.get_tiny_image()");
  assert.equal(refused.isError, true);
  assert.match(refused.structuredContent.stderr, /not allowed|policy/i);
});
