// The official MCP SDK client over Streamable HTTP against the real binary: handshake, tool
// listing, and the everyday behaviour of run_js and run_py.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash, createHmac } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";

import { REPO_ROOT, connectHttp, ping, request, runJs, runPy, show, startServer } from "./lib.mjs";

let server;
let client;

before(async () => {
  server = await startServer();
  client = await connectHttp(server.url);
});

after(async () => {
  await client?.close().catch(() => {});
  await server?.stop();
});

// Asserts a successful run and returns its structuredContent.
function assertOk(result) {
  assert.equal(result.isError, false, show(result));
  const sc = result.structuredContent;
  assert.equal(sc.outcome, "ok", show(result));
  assert.equal(sc.exitCode, 0, show(result));
  assert.equal(sc.truncated, false, show(result));
  assert.equal(typeof sc.durationMs, "number");
  return sc;
}

test("initialize: server info and the tools capability", () => {
  const info = client.getServerVersion();
  assert.equal(info.name.length > 0, true);
  assert.equal(typeof info.version, "string");
  assert.ok(client.getServerCapabilities()?.tools, "tools capability advertised");
});

test("tools/list offers run_js and run_py with input and output schemas", async () => {
  const { tools } = await client.listTools(undefined, { timeout: 5000 });
  const names = tools.map((t) => t.name).sort();
  assert.deepEqual(names, ["run_js", "run_py", "session_close", "session_create"]);
  for (const t of tools.filter((t) => t.name.startsWith("run_"))) {
    assert.equal(t.inputSchema.type, "object", t.name);
    assert.ok(t.inputSchema.properties.code, `${t.name} has a code property`);
    assert.ok(t.inputSchema.required.includes("code"), `${t.name} requires code`);
    for (const p of ["stdin", "args", "env", "cwd", "policy"]) {
      assert.ok(t.inputSchema.properties[p], `${t.name} accepts ${p}`);
    }
    assert.equal(t.outputSchema?.type, "object", `${t.name} has an outputSchema`);
    for (const p of ["stdout", "stderr", "exitCode", "outcome", "durationMs", "truncated"]) {
      assert.ok(t.outputSchema.properties[p], `${t.name} output has ${p}`);
    }
    assert.ok(t.description.length > 20);
  }
});

test("run_js console.log(1+1)", async () => {
  const r = await runJs(client, "console.log(1+1)");
  const sc = assertOk(r);
  assert.equal(sc.stdout, "2\n");
  assert.equal(sc.stderr, "");
  assert.deepEqual(r.content[0].type, "text");
  assert.match(r.content[0].text, /^2\n/);
});

test("run_js returns the value of the last expression", async () => {
  const sc = assertOk(await runJs(client, "const a = 6;\na * 7"));
  assert.equal(sc.stdout, "");
  assert.equal(sc.value, "42");
});

test("run_js formats objects like Node", async () => {
  const sc = assertOk(await runJs(client, "console.log({x:1, y:[1,2]})"));
  assert.equal(sc.stdout, "{ x: 1, y: [ 1, 2 ] }\n");
});

test("run_js accepts TypeScript", async () => {
  const code = [
    "interface Point { x: number; y: number }",
    "const p: Point = { x: 3, y: 4 };",
    "function norm(q: Point): number { return Math.sqrt(q.x ** 2 + q.y ** 2); }",
    "console.log(norm(p) as number);",
  ].join("\n");
  const sc = assertOk(await runJs(client, code));
  assert.equal(sc.stdout, "5\n");
});

test("run_js top-level await on a setTimeout promise", async () => {
  const code = [
    "const t0 = Date.now();",
    "await new Promise((resolve) => setTimeout(resolve, 100));",
    "console.log('waited', Date.now() - t0 >= 90);",
  ].join("\n");
  const sc = assertOk(await runJs(client, code));
  assert.equal(sc.stdout, "waited true\n");
});

test("run_js crypto.subtle digests and signs as node:crypto does", async () => {
  const message = "what do ya want for nothing?";
  const code = [
    "const hex = (b) => Array.from(new Uint8Array(b), (x) => x.toString(16).padStart(2, '0')).join('');",
    "const utf8 = (s) => new TextEncoder().encode(s);",
    "console.log(hex(await crypto.subtle.digest('SHA-512', utf8('abc'))));",
    "const key = await crypto.subtle.importKey('raw', utf8('Jefe'), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify']);",
    `const sig = await crypto.subtle.sign('HMAC', key, utf8('${message}'));`,
    `console.log(hex(sig), await crypto.subtle.verify('HMAC', key, sig, utf8('${message}')));`,
  ].join("\n");
  const sc = assertOk(await runJs(client, code));
  const digest = createHash("sha512").update("abc").digest("hex");
  const mac = createHmac("sha256", "Jefe").update(message).digest("hex");
  assert.equal(sc.stdout, `${digest}\n${mac} true\n`);
});

test("run_js returns the last expression value with top-level await too", async () => {
  const sc = assertOk(await runJs(client, "const x = await Promise.resolve(21);\nx * 2"));
  assert.equal(sc.value, "42");
});

test("run_js value formatting of objects and strings", async () => {
  assert.equal(assertOk(await runJs(client, "({a: 1, b: [2]})")).value, "{ a: 1, b: [ 2 ] }");
  assert.equal(assertOk(await runJs(client, "'s'.repeat(2)")).value, "'ss'");
  assert.equal(assertOk(await runJs(client, "console.log('only output')")).value, undefined);
});

test("run_py print(1+1)", async () => {
  const r = await runPy(client, "print(1+1)");
  const sc = assertOk(r);
  assert.equal(sc.stdout, "2\n");
  assert.equal(sc.stderr, "");
  assert.equal(sc.value, undefined);
});

test("run_py returns the value of a last expression, as a notebook does", async () => {
  const r = await runPy(client, "x = 41\nx + 1");
  const sc = assertOk(r);
  assert.equal(sc.value, "42");
  assert.equal(sc.stdout, "");
  assert.ok(r.content.some((c) => c.type === "text" && c.text.includes("[value] 42")), JSON.stringify(r.content));
  assert.equal(assertOk(await runPy(client, "{'a': [1, 'b']}")).value, "{'a': [1, 'b']}");
  assert.equal(assertOk(await runPy(client, "y = 1")).value, undefined);
});

test("multi-line output is preserved byte for byte", async () => {
  const expected = "line 1\n\n  indented\ttab\r\nunicode: héllo ✓ 😀\nno trailing newline";
  const js = assertOk(await runJs(client, `process.stdout.write(${JSON.stringify(expected)})`));
  assert.equal(js.stdout, expected);
  const py = assertOk(
    await runPy(client, `import sys\nsys.stdout.write(${JSON.stringify(expected)})`),
  );
  assert.equal(py.stdout, expected);
  const lines = assertOk(await runPy(client, "for i in range(5):\n    print(i)\nprint()\nprint('end')"));
  assert.equal(lines.stdout, "0\n1\n2\n3\n4\n\nend\n");
});

test("stderr is kept apart from stdout", async () => {
  const js = assertOk(await runJs(client, "console.log('out'); console.error('err');"));
  assert.equal(js.stdout, "out\n");
  assert.equal(js.stderr, "err\n");
  const py = assertOk(
    await runPy(client, "import sys\nprint('out')\nprint('err', file=sys.stderr)"),
  );
  assert.equal(py.stdout, "out\n");
  assert.equal(py.stderr, "err\n");
});

test("run_js honours stdin, args, env and cwd", async () => {
  const code = [
    "const input = process.stdin.read();",
    "console.log(JSON.stringify({ input, argv: process.argv, foo: process.env.FOO, cwd: process.cwd() }));",
  ].join("\n");
  const sc = assertOk(
    await runJs(client, code, {
      stdin: "hello\nworld\n",
      args: ["one", "two words"],
      env: { FOO: "bar baz" },
      cwd: "/tmp",
    }),
  );
  assert.deepEqual(JSON.parse(sc.stdout), {
    input: "hello\nworld\n",
    argv: ["qjs", "<run_js>", "one", "two words"],
    foo: "bar baz",
    cwd: "/tmp",
  });
});

test("run_py honours stdin, args, env and cwd", async () => {
  const code = [
    "import json, os, sys",
    "first = input()",
    "rest = sys.stdin.read()",
    "print(json.dumps({'first': first, 'rest': rest, 'argv': sys.argv,",
    "                  'foo': os.environ.get('FOO'), 'cwd': os.getcwd()}))",
  ].join("\n");
  const sc = assertOk(
    await runPy(client, code, {
      stdin: "hello\nworld\n",
      args: ["one", "two words"],
      env: { FOO: "bar baz" },
      cwd: "/tmp",
    }),
  );
  assert.deepEqual(JSON.parse(sc.stdout), {
    first: "hello",
    rest: "world\n",
    argv: ["<run_py>", "one", "two words"],
    foo: "bar baz",
    cwd: "/tmp",
  });
});

test("run_js uncaught exception is an isError result with the stack in stderr", async () => {
  const code = "function inner() { throw new Error('boom'); }\nfunction outer() { inner(); }\nouter();";
  const r = await runJs(client, code);
  assert.equal(r.isError, true, show(r));
  const sc = r.structuredContent;
  assert.equal(sc.outcome, "error", show(r));
  assert.equal(sc.exitCode, 1, show(r));
  assert.match(sc.stderr, /Error: boom/);
  assert.match(sc.stderr, /at inner/, "stack names the throwing function");
  assert.match(r.content[0].text, /boom/);
  await ping(client);
});

test("run_py exception is an isError result with the traceback in stderr", async () => {
  const code = "def inner():\n    raise ValueError('bad value')\n\ninner()\n";
  const r = await runPy(client, code);
  assert.equal(r.isError, true, show(r));
  const sc = r.structuredContent;
  assert.equal(sc.outcome, "error", show(r));
  assert.equal(sc.exitCode, 1, show(r));
  assert.match(sc.stderr, /Traceback \(most recent call last\)/);
  assert.match(sc.stderr, /in inner/);
  assert.match(sc.stderr, /ValueError: bad value/);
  await ping(client);
});

test("syntax errors are isError results", async () => {
  const js = await runJs(client, "let x = ;");
  assert.equal(js.isError, true, show(js));
  assert.equal(js.structuredContent.outcome, "error", show(js));
  assert.notEqual(js.structuredContent.exitCode, 0);
  assert.match(js.structuredContent.stderr, /SyntaxError|[Ee]xpected|[Uu]nexpected/);

  const py = await runPy(client, "def f(:\n  pass");
  assert.equal(py.isError, true, show(py));
  assert.equal(py.structuredContent.outcome, "error", show(py));
  assert.notEqual(py.structuredContent.exitCode, 0);
  assert.match(py.structuredContent.stderr, /SyntaxError/);
  await ping(client);
});

test("sys.exit(3) sets exitCode 3 and isError", async () => {
  const r = await runPy(client, "import sys\nprint('before')\nsys.exit(3)\nprint('after')");
  assert.equal(r.isError, true, show(r));
  assert.equal(r.structuredContent.exitCode, 3, show(r));
  assert.equal(r.structuredContent.outcome, "error", show(r));
  assert.equal(r.structuredContent.stdout, "before\n");
});

test("process.exit(4) sets exitCode 4 in JS", async () => {
  const r = await runJs(client, "console.log('before'); process.exit(4); console.log('after');");
  assert.equal(r.isError, true, show(r));
  assert.equal(r.structuredContent.exitCode, 4, show(r));
  assert.equal(r.structuredContent.stdout, "before\n");
});

test("every run starts from fresh state", async () => {
  assertOk(await runPy(client, "import builtins\nbuiltins.leaked = 1\nx = 5"));
  const py = assertOk(await runPy(client, "import builtins\nprint(hasattr(builtins, 'leaked'), 'x' in globals())"));
  assert.equal(py.stdout, "False False\n");
  assertOk(await runJs(client, "globalThis.leaked = 1"));
  const js = assertOk(await runJs(client, "console.log(typeof globalThis.leaked)"));
  assert.equal(js.stdout, "undefined\n");
});

test("the server is still healthy after all of the above", async () => {
  await ping(client);
  const sc = assertOk(await runPy(client, "print('still here')"));
  assert.equal(sc.stdout, "still here\n");
  assert.equal(server.proc.exitCode, null, "server process still running");
});

test("GET /types serves the TypeScript definitions and JSON Schemas of types/, read-only", async () => {
  const typesDir = path.join(REPO_ROOT, "types");
  const onDisk = fs.readdirSync(typesDir).filter((f) => f.endsWith(".json") || f.endsWith(".d.ts")).sort();
  const list = await request(`${server.base}/types`);
  assert.equal(list.status, 200, list.text);
  assert.deepEqual([...list.json.files].sort(), onDisk);

  const dts = await request(`${server.base}/types/index.d.ts`);
  assert.equal(dts.status, 200);
  assert.equal(dts.text, fs.readFileSync(path.join(typesDir, "index.d.ts"), "utf8"));
  assert.equal(dts.headers.get("content-type"), "application/typescript; charset=utf-8");
  assert.equal(dts.headers.get("x-content-type-options"), "nosniff");
  assert.match(dts.text, /export interface RunJsParams \{/);
  for (const name of onDisk.filter((f) => f.endsWith(".json"))) {
    const r = await request(`${server.base}/types/${name}`);
    assert.equal(r.status, 200, name);
    assert.equal(r.headers.get("x-content-type-options"), "nosniff");
    assert.deepEqual(r.json, JSON.parse(fs.readFileSync(path.join(typesDir, name), "utf8")), name);
  }

  assert.equal((await request(`${server.base}/types/nope.d.ts`)).status, 404);
  assert.equal((await request(`${server.base}/types/..%2fREADME.md`)).status, 404);
  assert.equal((await request(`${server.base}/types/index.d.ts`, { method: "PUT", body: "x" })).status, 405);
  const foreign = await request(`${server.base}/types/index.d.ts`, { headers: { origin: "https://evil.example" } });
  assert.equal(foreign.status, 403);
});

test("the tools' inputSchema and outputSchema are the files of types/", async () => {
  const read = (f) => JSON.parse(fs.readFileSync(path.join(REPO_ROOT, "types", f), "utf8"));
  const { tools } = await client.listTools(undefined, { timeout: 5000 });
  for (const t of tools.filter((t) => t.name.startsWith("run_"))) {
    assert.deepEqual(t.inputSchema, read(`${t.name}.input.schema.json`), t.name);
    assert.deepEqual(t.outputSchema, read("run.output.schema.json"), t.name);
  }
});

// The original 1mcp README's examples, verbatim but for the port: curl POSTs one tools/call with
// Content-Type only (no initialize, no session, curl's own Accept: */*) and prints the result.
test("the original README's curl examples work verbatim", async () => {
  const port = new URL(server.url).port;
  const examples = [
    [`curl -X POST http://localhost:${port}/mcp \\
  -H 'Content-Type: application/json' \\
  -d '{
    "jsonrpc": "2.0",
    "id": 1,
    "method": "tools/call",
    "params": {
      "name": "run_js",
      "arguments": {
        "code": "console.log(\\"Hello from JavaScript!\\")"
      }
    }
  }'`, 1, "Hello from JavaScript!\n"],
    [`curl -X POST http://localhost:${port}/mcp \\
  -H 'Content-Type: application/json' \\
  -d '{
    "jsonrpc": "2.0",
    "id": 2,
    "method": "tools/call",
    "params": {
      "name": "run_py",
      "arguments": {
        "code": "print(\\"Hello from Python!\\")"
      }
    }
  }'`, 2, "Hello from Python!\n"],
  ];
  for (const [command, id, stdout] of examples) {
    const r = spawnSync("sh", ["-c", command], { encoding: "utf8", timeout: 30000 });
    assert.equal(r.status, 0, r.stderr);
    const answer = JSON.parse(r.stdout);
    assert.equal(answer.id, id, r.stdout);
    assert.equal(answer.result.isError, false, r.stdout);
    assert.equal(answer.result.structuredContent.stdout, stdout, r.stdout);
    assert.equal(answer.result.content[0].text, stdout, r.stdout);
  }
});
