// The README's "Client setup" snippets, parsed out of README.md so that the documentation and
// this test cannot drift: each client's configuration (Claude Desktop, Claude Code, Cursor,
// VS Code) is started exactly as it says — its command and args over stdio, its URL over HTTP —
// with the build tree's binary and a fresh project in place of the placeholders, and the SDK
// client lists the tools and calls run_js through it.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, test } from "node:test";

import {
  BIN,
  Client,
  REPO_ROOT,
  StdioClientTransport,
  StreamableHTTPClientTransport,
  configPath,
  makeProject,
  show,
  startServer,
  withTimeout,
} from "./lib.mjs";

const PLACEHOLDER_CONFIG = "/abs/path/1mcp.config.json";
const PLACEHOLDER_URL = "http://127.0.0.1:7800/mcp";

// The "## Client setup" section: { intro: [blocks], clients: { "Claude Desktop": [blocks], ... } }
// with each fenced block as { lang, text }.
function clientSetup() {
  const readme = fs.readFileSync(path.join(REPO_ROOT, "README.md"), "utf8");
  const start = readme.indexOf("\n## Client setup\n");
  assert.ok(start >= 0, "README.md has a Client setup section");
  const end = readme.indexOf("\n## ", start + 1);
  const section = readme.slice(start, end < 0 ? undefined : end);
  const out = { intro: [], clients: {} };
  let current = out.intro;
  const lines = section.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const heading = /^### (.+)$/.exec(lines[i]);
    if (heading) {
      current = out.clients[heading[1].trim()] = [];
      continue;
    }
    const fence = /^```(\w*)$/.exec(lines[i]);
    if (!fence) continue;
    const body = [];
    for (i++; i < lines.length && lines[i] !== "```"; i++) body.push(lines[i]);
    current.push({ lang: fence[1], text: body.join("\n") });
  }
  return out;
}

// A client's server entries: { how: "stdio", command, args } or { how: "http", url }, from its
// JSON blocks (mcpServers or servers) and its `claude mcp add` lines.
function entries(blocks) {
  const found = [];
  for (const b of blocks) {
    if (b.lang === "json") {
      const doc = JSON.parse(b.text);
      for (const servers of [doc.mcpServers, doc.servers].filter(Boolean)) {
        for (const e of Object.values(servers)) {
          if (e.url) {
            if (e.type !== undefined) assert.equal(e.type, "http", JSON.stringify(e));
            found.push({ how: "http", url: e.url });
          } else {
            if (e.type !== undefined) assert.equal(e.type, "stdio", JSON.stringify(e));
            found.push({ how: "stdio", command: e.command, args: e.args ?? [] });
          }
        }
      }
    } else if (b.lang === "bash") {
      for (const line of b.text.split("\n")) {
        const words = line.trim().split(/\s+/);
        if (words.slice(0, 3).join(" ") !== "claude mcp add") continue;
        const dashes = words.indexOf("--");
        if (dashes >= 0) {
          found.push({ how: "stdio", command: words[dashes + 1], args: words.slice(dashes + 2) });
        } else {
          assert.deepEqual(words.slice(3, 5), ["--transport", "http"], line);
          found.push({ how: "http", url: words[6] });
        }
      }
    }
  }
  return found;
}

const setup = clientSetup();
const dir = makeProject();
const sub = (word) => (word === "1mcp" ? BIN : word === PLACEHOLDER_CONFIG ? configPath(dir) : word);

// The HTTP server, started as the section's own `1mcp serve` line says (on a free port).
let http;
async function httpServer() {
  if (http) return http;
  const serve = setup.intro.flatMap((b) => (b.lang === "bash" ? b.text.split("\n") : []))
    .map((l) => l.trim().split(/\s+/))
    .find((w) => w[0] === "1mcp" && w[1] === "serve" && !w.includes("--stdio"));
  assert.ok(serve, "the Client setup section shows how to start the HTTP server");
  assert.ok(serve.includes(PLACEHOLDER_CONFIG), serve.join(" "));
  // startServer runs `1mcp serve --dir <dir> -p 0 --no-ui ...`; the README's flags follow.
  http = await startServer({ dir, extra: serve.slice(2).map(sub) });
  return http;
}
after(async () => {
  if (http) await http.stop();
});

async function exercise(client, what) {
  const { tools } = await client.listTools(undefined, { timeout: 10000 });
  const names = tools.map((t) => t.name);
  assert.ok(names.includes("run_js") && names.includes("run_py"), `${what}: ${names.join(", ")}`);
  const r = await client.callTool({ name: "run_js", arguments: { code: "console.log(2 ** 10)" } }, undefined,
    { timeout: 20000 });
  assert.equal(r.structuredContent?.stdout, "1024\n", `${what}: ${show(r)}`);
}

async function connect(entry) {
  let transport;
  let stderr = "";
  if (entry.how === "stdio") {
    transport = new StdioClientTransport({
      command: sub(entry.command),
      args: entry.args.map(sub),
      cwd: "/", // where desktop clients often start servers
      stderr: "pipe",
    });
    transport.stderr?.on("data", (d) => (stderr += d));
  } else {
    const s = await httpServer();
    assert.ok(entry.url.startsWith(PLACEHOLDER_URL.replace("/mcp", "")), entry.url);
    transport = new StreamableHTTPClientTransport(new URL(entry.url.replace(":7800", `:${s.port}`)));
  }
  const client = new Client({ name: "1mcp-e2e-clients", version: "1.0.0" });
  try {
    await withTimeout(client.connect(transport), 20000, "connect");
  } catch (e) {
    throw new Error(`${e.message}; stderr: ${stderr}`);
  }
  return client;
}

test("the README shows every client, each over stdio, and over HTTP where it can", () => {
  const want = { "Claude Desktop": ["stdio"], "Claude Code": ["stdio", "http"], Cursor: ["stdio", "http"],
    "VS Code": ["stdio", "http"] };
  assert.deepEqual(Object.keys(setup.clients).sort(), Object.keys(want).sort());
  for (const [name, hows] of Object.entries(want)) {
    const es = entries(setup.clients[name]);
    assert.deepEqual([...new Set(es.map((e) => e.how))].sort(), hows.sort(), name);
    for (const e of es.filter((x) => x.how === "stdio")) {
      assert.deepEqual([e.command, ...e.args], ["1mcp", "serve", "--stdio", "--config", PLACEHOLDER_CONFIG], name);
    }
    for (const e of es.filter((x) => x.how === "http")) assert.equal(e.url, PLACEHOLDER_URL, name);
  }
  // VS Code reads "servers"; the others "mcpServers".
  for (const b of setup.clients["VS Code"].filter((x) => x.lang === "json")) {
    assert.ok(JSON.parse(b.text).servers, b.text);
  }
  for (const name of ["Claude Desktop", "Cursor"]) {
    for (const b of setup.clients[name].filter((x) => x.lang === "json")) assert.ok(JSON.parse(b.text).mcpServers, b.text);
  }
});

for (const [name, blocks] of Object.entries(setup.clients)) {
  for (const entry of entries(blocks)) {
    test(`${name} (${entry.how}) as the README configures it: tools/list and run_js`, async () => {
      const client = await connect(entry);
      try {
        await exercise(client, `${name} ${entry.how}`);
      } finally {
        await client.close();
      }
      // Started in /, the server keeps its state beside its config, not in /.
      assert.ok(!fs.existsSync("/.1mcp"), "nothing written to /");
      assert.ok(fs.existsSync(path.join(dir, ".1mcp/keys/capsule.key")));
    });
  }
}
