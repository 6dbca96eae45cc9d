// The web page in a real browser: playwright-core (npm, pinned) drives Debian's Chromium
// (/usr/bin/chromium, installed by scripts/setup.sh) against the real binary. Screenshots go to
// <build>/artifacts/ui/.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { after, before, describe, test } from "node:test";

import { startRegistry } from "../fixtures/npm/registry.mjs";
import { REPO_ROOT, makeProject, request, runCli, startServer, tempDir, withLimits } from "./lib.mjs";

const { chromium } = await import(pathToFileURL(path.join(REPO_ROOT, "node_modules/playwright-core/index.mjs")).href);
const CHROMIUM = process.env.ONEMCP_CHROMIUM || "/usr/bin/chromium";
const ARTIFACTS = path.join(process.env.ONEMCP_BUILD_DIR || path.join(REPO_ROOT, "build"), "artifacts", "ui");
fs.mkdirSync(ARTIFACTS, { recursive: true });

let browser;
let server;
let upstreamFiles; // the directory the filesystem upstream serves
let registry; // the loopback npm registry of tests/fixtures/npm

before(async () => {
  assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: scripts/setup.sh installs Debian's chromium`);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
  upstreamFiles = tempDir("1mcp-ui-files-");
  fs.writeFileSync(path.join(upstreamFiles, "a.txt"), "hello from a file\n");
  registry = await startRegistry();
  const dir = makeProject((cfg) => {
    cfg.npm = { dependencies: {}, registry: registry.url };
    cfg.mcps = [
      {
        name: "filesystem",
        transport: "stdio",
        command: process.execPath,
        args: [path.join(REPO_ROOT, "node_modules/@modelcontextprotocol/server-filesystem/dist/index.js"), upstreamFiles],
      },
    ];
    return withLimits({ timeoutMs: 20000 })(cfg);
  });
  server = await startServer({ dir, ui: true, readyTimeoutMs: 60000 });
});

after(async () => {
  await browser?.close();
  await server?.stop();
  await registry?.close();
});

// A new page on `base`, failing the test on any console error (a CSP violation is one) or
// uncaught exception of the page.
async function openPage(base, { colorScheme = "light", viewport = { width: 1280, height: 900 }, path: p = "/" } = {}) {
  const context = await browser.newContext({ colorScheme, viewport, acceptDownloads: true });
  const page = await context.newPage();
  page.errors = [];
  page.on("console", (m) => m.type() === "error" && page.errors.push(m.text()));
  page.on("pageerror", (e) => page.errors.push(String(e)));
  await page.goto(base + p);
  await page.locator("#connection", { hasText: "connected" }).waitFor({ timeout: 10000 });
  return page;
}

async function closePage(page) {
  assert.deepEqual(page.errors, [], "no console errors or CSP violations");
  await page.context().close();
}

async function setCode(page, code) {
  await page.evaluate((c) => (window.onemcp.editor.text = c), code);
}

// Clicks Run and waits for the output of that run (a summary with an outcome).
async function run(page) {
  await page.locator("#run").click();
  await page.locator("body[data-state=idle]").waitFor({ timeout: 30000 });
  return page.locator("#output");
}

const shot = (page, name) => page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });

async function metric(re) {
  const m = re.exec((await request(`${server.base}/metrics`)).text);
  return m ? Number(m[1]) : 0;
}

// Polls `fn` until it returns true, at most `ms` (a condition, not a fixed delay).
async function until(fn, ms, what) {
  const deadline = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test("the page and its files: strict CSP, content types, ETag revalidation, nothing from elsewhere", async () => {
  const page = await request(`${server.base}/`);
  assert.equal(page.status, 200);
  const csp = page.headers.get("content-security-policy");
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /script-src 'self'(;|$)/);
  assert.match(csp, /style-src 'self'(;|$)/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|https?:/);
  assert.doesNotMatch(page.text, /<script>|<style|https?:\/\//, "no inline script or style, no other origin");
  for (const [p, type] of [
    ["/", /^text\/html/],
    ["/ui/app.js", /^text\/javascript/],
    ["/ui/app.css", /^text\/css/],
    ["/favicon.svg", /^image\/svg\+xml/],
  ]) {
    const r = await request(server.base + p);
    assert.equal(r.status, 200, p);
    assert.match(r.headers.get("content-type"), type, p);
    assert.equal(r.headers.get("x-content-type-options"), "nosniff");
    assert.equal(r.headers.get("cache-control"), "no-cache");
    const etag = r.headers.get("etag");
    assert.match(etag, /^"[0-9a-f]{16}"$/);
    const again = await request(server.base + p, { headers: { "if-none-match": etag } });
    assert.equal(again.status, 304, p);
    assert.equal(again.text, "");
  }
  const js = (await request(`${server.base}/ui/app.js`)).text;
  assert.doesNotMatch(js, /sourceMappingURL/);
  assert.equal((await request(`${server.base}/ui/nope.js`)).status, 404);
});

test("runs JavaScript with Ctrl+Enter: stdout, stderr and value apart, outcome, exit code, duration, capsule", async () => {
  const page = await openPage(server.base);
  assert.equal(await page.locator("#run").isDisabled(), false);
  await page.locator(".cm-content").click();
  await page.keyboard.press("Control+Enter");
  await page.locator("#output .summary [data-outcome=ok]").waitFor({ timeout: 20000 });
  const out = page.locator("#output");
  assert.match(await out.locator(".stdout pre").innerText(), /Hello from 1mcp: \[ 1, 4, 9, 16 \]/);
  assert.match(await out.locator(".stderr pre").innerText(), /stderr is shown apart/);
  assert.equal(await out.locator(".value pre").innerText(), "30");
  const summary = await out.locator(".summary").innerText();
  assert.match(summary, /exit code 0/);
  assert.match(summary, /[\d.]+ ms/);
  const capsule = await out.locator("a.capsule").getAttribute("href");
  assert.match(capsule, /^\/capsules\/[0-9a-f]{64}\/manifest\.json$/);
  const manifest = await request(server.base + capsule);
  assert.equal(manifest.status, 200);
  assert.equal(manifest.json.language, "js");
  // The policy the run had, from its capsule, and the server's limits before running.
  await page.locator("#effective-policy", { hasText: '"timeoutMs": 20000' }).waitFor({ state: "attached", timeout: 5000 });
  assert.match(await page.locator("#server-limits").textContent(), /timeoutMs 20000, memMb \d+, stdoutBytes \d+/);
  await shot(page, "run-js");
  await closePage(page);
});

test("switching to Python switches an untouched sample, keeps edited code, and runs Python", async () => {
  const page = await openPage(server.base);
  await page.locator("#lang").selectOption("py");
  const text = await page.evaluate(() => window.onemcp.editor.text);
  assert.match(text, /^# Python 3\.11/);
  assert.ok((await page.locator(".cm-content span").count()) > 3, "the code is highlighted");
  const out = await run(page);
  assert.equal(await out.locator("[data-outcome]").getAttribute("data-outcome"), "ok");
  assert.match(await out.locator(".stdout pre").innerText(), /Hello from 1mcp: \[1, 4, 9, 16\]/);
  assert.equal(await out.locator(".value pre").innerText(), "30");
  // Edited code stays when the language changes.
  await setCode(page, "print('mine')");
  await page.locator("#lang").selectOption("js");
  assert.equal(await page.evaluate(() => window.onemcp.editor.text), "print('mine')");
  await closePage(page);
});

test("stdin, args, env and a tightened limit reach the run", async () => {
  const page = await openPage(server.base);
  await page.locator("#lang").selectOption("py");
  await setCode(page, "import sys, os\nprint(sys.stdin.read().upper(), sys.argv[1:], os.environ['GREETING'])");
  await page.locator("#inputs summary").click();
  await page.locator("#stdin").fill("from stdin");
  await page.locator("#args").fill("one\ntwo");
  await page.locator("#env").fill("GREETING=hi there");
  let out = await run(page);
  assert.equal(await out.locator(".stdout pre").innerText(), "FROM STDIN ['one', 'two'] hi there\n");

  await page.locator("#limits summary").click();
  assert.equal(await page.locator("#limit-timeoutMs").getAttribute("max"), "20000");
  await page.locator("#limit-timeoutMs").fill("300");
  await setCode(page, "while True: pass");
  out = await run(page);
  assert.equal(await out.locator("[data-outcome]").getAttribute("data-outcome"), "timeout");
  assert.match(await page.locator("#effective-policy").textContent(), /"timeoutMs": 300/);

  // Tighten-only: a wider limit is refused before anything runs (the server would clamp it).
  assert.match(await page.locator("#server-limits").textContent(), /; network: none; upstream tools: \*/);
  assert.match(await page.locator("#limits > summary").innerText(), /20000 ms, \d+ MB, \d+ bytes of output, network: none/);
  const runs = await metric(/onemcp_runs_total\{tool="run_py",outcome="ok"\} (\d+)/);
  await page.locator("#limit-timeoutMs").fill("999999");
  out = await run(page);
  assert.equal(await out.locator("[data-outcome]").getAttribute("data-outcome"), "failed");
  assert.match(await out.innerText(), /timeoutMs: 999999 is above this server's 20000; a run can only tighten the limits/);
  assert.equal(await metric(/onemcp_runs_total\{tool="run_py",outcome="ok"\} (\d+)/), runs);
  // Truncated output says so.
  await page.locator("#limit-timeoutMs").fill("");
  await page.locator("#limit-stdoutBytes").fill("10");
  await setCode(page, "print('x' * 100)");
  out = await run(page);
  await out.locator(".badge.warn", { hasText: "output truncated" }).waitFor();
  await closePage(page);
});

test("npm packages from the inputs are installed, with progress on the way", async () => {
  const page = await openPage(server.base);
  await setCode(page, "require('onemcp-fixture-pad')('7', 3, '0')");
  await page.locator("#inputs summary").click();
  await page.locator("#npm").fill("onemcp-fixture-pad@^1.0.0");
  const out = await run(page);
  assert.equal(await out.locator("[data-outcome]").getAttribute("data-outcome"), "ok", await out.innerText());
  assert.equal(await out.locator(".value pre").innerText(), "'007'");
  const progress = await page.evaluate(() => window.onemcp.progressLog);
  assert.ok(progress.includes("installing 1 npm package(s)"), progress.join(", "));
  await closePage(page);
});

test("an error is shown as an error", async () => {
  const page = await openPage(server.base);
  await page.locator("#lang").selectOption("py");
  await setCode(page, "def f():\n    raise ValueError('boom')\nf()");
  const out = await run(page);
  const badge = out.locator(".badge.bad[data-outcome]");
  assert.equal(await badge.getAttribute("data-outcome"), "error");
  assert.match(await out.locator(".summary").innerText(), /exit code 1/);
  assert.match(await out.locator(".stderr pre").innerText(), /ValueError: boom/);
  await shot(page, "error");
  await closePage(page);
});

test("Stop (or Escape) cancels a long run: Run is disabled meanwhile and the server kills the run", async () => {
  const page = await openPage(server.base);
  const killed = /onemcp_runs_total\{tool="run_js",outcome="killed"\} (\d+)/;
  const before = await metric(killed);
  await setCode(page, "while (true) {}");
  // From the keyboard: Enter on Run starts it, and the focus moves to Stop.
  await page.locator("#run").focus();
  await page.keyboard.press("Enter");
  await page.locator("body[data-state=running]").waitFor();
  assert.equal(await page.locator("#run").isDisabled(), true);
  assert.equal(await page.locator("#stop").isEnabled(), true);
  assert.equal(await page.evaluate(() => document.activeElement.id), "stop");
  // Ctrl+Enter does not start a second run meanwhile.
  await page.keyboard.press("Control+Enter");
  await until(async () => (await metric(/onemcp_runs_in_flight (\d+)/)) === 1, 10000, "the run started");
  const t0 = Date.now();
  await page.keyboard.press("Escape");
  await page.locator("#output [data-outcome=killed]").waitFor({ timeout: 5000 });
  await until(async () => (await metric(killed)) === before + 1, 5000, "the server counted the run killed");
  await until(async () => (await metric(/onemcp_runs_in_flight (\d+)/)) === 0, 5000, "the run's slot freed");
  assert.ok(Date.now() - t0 < 5000);
  assert.equal(await page.locator("#run").isEnabled(), true);
  assert.equal(await page.locator("#stop").isDisabled(), true);
  assert.equal(await page.evaluate(() => document.activeElement.id), "run", "the focus is back on Run");
  // The Stop button itself stops too.
  await page.locator("#run").click();
  await page.locator("body[data-state=running]").waitFor();
  await page.locator("#stop").click();
  await page.locator("body[data-state=idle]").waitFor({ timeout: 5000 });
  await page.locator("#output [data-outcome=killed]").waitFor();
  await closePage(page);
});

test("a matplotlib plot is previewed and /out files are downloadable", async () => {
  const page = await openPage(server.base);
  await page.locator("#lang").selectOption("py");
  await setCode(
    page,
    [
      "import matplotlib.pyplot as plt",
      "plt.plot([1, 2, 3], [4, 1, 9])",
      "plt.title('from the playground')",
      "plt.show()",
      "open('/out/data.csv', 'w').write('x,y\\n1,4\\n')",
    ].join("\n"),
  );
  const out = await run(page);
  assert.equal(await out.locator("[data-outcome]").getAttribute("data-outcome"), "ok");
  const img = out.locator(".images img").first();
  await img.waitFor();
  const size = await img.evaluate((e) => (e.complete ? [e.naturalWidth, e.naturalHeight] : [0, 0]));
  assert.ok(size[0] > 100 && size[1] > 100, `the image is decoded: ${size}`);
  const [download] = await Promise.all([page.waitForEvent("download"), out.locator("button", { hasText: "download data.csv" }).click()]);
  assert.equal(download.suggestedFilename(), "data.csv");
  assert.equal(fs.readFileSync(await download.path(), "utf8"), "x,y\n1,4\n");
  await shot(page, "plot");
  await closePage(page);
});

test("dark mode follows prefers-color-scheme", async () => {
  const light = await openPage(server.base);
  const dark = await openPage(server.base, { colorScheme: "dark" });
  const bg = (p) => p.evaluate(() => getComputedStyle(document.body).backgroundColor);
  const lum = (rgb) => rgb.match(/\d+/g).slice(0, 3).map(Number).reduce((a, b) => a + b, 0);
  assert.ok(lum(await bg(light)) > 600, await bg(light));
  assert.ok(lum(await bg(dark)) < 150, await bg(dark));
  const editorBg = await dark.locator(".cm-editor").evaluate((e) => getComputedStyle(e).backgroundColor);
  assert.ok(lum(editorBg) < 150, `the editor is dark too: ${editorBg}`);
  await run(dark);
  await shot(dark, "dark");
  await closePage(light);
  await closePage(dark);
});

test("a narrow window: one column, no horizontal scrolling, keyboard reaches Run", async () => {
  const page = await openPage(server.base, { viewport: { width: 390, height: 800 } });
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth));
  // Tab leaves the editor (it does not indent) and reaches Run.
  await page.locator("#lang").focus();
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement.id), "run");
  await page.keyboard.press("Enter");
  await page.locator("#output [data-outcome=ok]").waitFor({ timeout: 20000 });
  await shot(page, "narrow");
  await closePage(page);
});

test("an expired MCP session is initialized again by the page", async () => {
  const page = await openPage(server.base);
  await run(page);
  // The server forgets the page's session (as when it expires).
  const sid = await page.evaluate(() => window.onemcp.mcp.session);
  assert.match(sid, /\S/);
  assert.equal((await request(`${server.url}`, { method: "DELETE", headers: { "mcp-session-id": sid } })).status, 200);
  const out = await run(page);
  assert.equal(await out.locator("[data-outcome]").getAttribute("data-outcome"), "ok");
  assert.equal(await page.evaluate(() => window.onemcp.mcp.initializations), 2);
  assert.notEqual(await page.evaluate(() => window.onemcp.mcp.session), sid);
  page.errors = page.errors.filter((e) => !/status of 404/.test(e)); // the forgotten session's answer
  await closePage(page);
});

test("history: runs kept in localStorage, loaded back with their inputs, run again", async () => {
  const page = await openPage(server.base);
  await setCode(page, "console.log('first')");
  await run(page);
  await page.locator("#lang").selectOption("py");
  await setCode(page, "import sys\nprint('second', sys.argv[1:])");
  await page.locator("#inputs summary").click();
  await page.locator("#args").fill("a1");
  await run(page);
  const entries = page.locator("#history details.entry");
  assert.equal(await entries.count(), 2);
  await page.reload();
  await page.locator("#connection", { hasText: "connected" }).waitFor({ timeout: 10000 });
  assert.equal(await entries.count(), 2, "kept across a reload");
  assert.equal(await entries.nth(0).locator("[data-outcome]").getAttribute("data-outcome"), "ok");
  // Newest first: run the JavaScript one again.
  await entries.nth(1).locator(":scope > summary").click();
  await entries.nth(1).getByRole("button", { name: "Run again" }).click();
  await page.locator("body[data-state=idle]").waitFor({ timeout: 20000 });
  assert.equal(await page.locator("#lang").inputValue(), "js");
  assert.equal(await page.locator("#output .stdout pre").innerText(), "first\n");
  assert.equal(await entries.count(), 3);
  // Loading the Python one puts back its language, code and args.
  await entries.nth(1).locator(":scope > summary").click();
  await entries.nth(1).getByRole("button", { name: "Load" }).click();
  assert.equal(await page.locator("#lang").inputValue(), "py");
  assert.equal(await page.evaluate(() => window.onemcp.editor.text), "import sys\nprint('second', sys.argv[1:])");
  assert.equal(await page.locator("#args").inputValue(), "a1");
  assert.match(await entries.nth(1).locator("pre.history-output").innerText(), /second \['a1'\]/);
  await shot(page, "history");
  await page.getByRole("button", { name: "Clear" }).click();
  assert.equal(await entries.count(), 0);
  await closePage(page);
});

test("upstream servers: state, tools with schemas, a call from the generated form, the declarations", async () => {
  await until(async () => (await request(`${server.base}/mcps`)).json.mcps[0].status === "ready", 20000, "filesystem ready");
  const page = await openPage(server.base);
  const upstream = page.locator("[data-upstream=filesystem]");
  assert.equal(await upstream.locator("[data-status]").getAttribute("data-status"), "ready");
  assert.match(await upstream.locator(":scope > summary").innerText(), /stdio · \d+ tools · 0 restarts/);
  await upstream.locator(":scope > summary").click();
  const tool = page.locator("[data-tool='filesystem/read_text_file']");
  await tool.locator(":scope > summary").click();
  await tool.locator(":scope > details > summary").click();
  assert.match(await tool.locator(":scope > details > pre").first().innerText(), /"path"/);
  assert.equal(await tool.locator("input[name=path]").getAttribute("required"), "");
  await tool.locator("input[name=path]").fill(path.join(upstreamFiles, "a.txt"));
  await tool.getByRole("button", { name: "Call" }).click();
  await tool.locator(".rpc-result.succeeded").waitFor({ timeout: 10000 });
  assert.match(await tool.locator(".rpc-result").innerText(), /hello from a file/);
  // A tool error is shown as one.
  await tool.locator("input[name=path]").fill(path.join(upstreamFiles, "missing.txt"));
  await tool.getByRole("button", { name: "Call" }).click();
  await tool.locator(".rpc-result.failed").waitFor({ timeout: 10000 });
  await page.locator(".types-panel > summary").click();
  await page.locator("pre.types", { hasText: "declare const mcp" }).waitFor({ timeout: 10000 });
  assert.match(await page.locator("pre.types").innerText(), /read_text_file\(args: \{/);
  await shot(page, "upstreams");
  await closePage(page);
});

test("sessions: cells share an interpreter and /work, the workspace's files are listed, Close ends it", async () => {
  const page = await openPage(server.base);
  await page.getByRole("button", { name: "New session" }).click();
  await page.locator("#workspace", { hasText: "Workspace /work of session ses_" }).waitFor({ timeout: 10000 });
  const handle = await page.locator("#session").inputValue();
  assert.match(handle, /^ses_/);
  await page.locator("#lang").selectOption("py");
  await setCode(page, "x = 41\nopen('/work/data.txt', 'w').write('hi')");
  await run(page);
  await setCode(page, "x + 1");
  const out = await run(page);
  assert.equal(await out.locator(".value pre").innerText(), "42");
  assert.match(await out.locator(".summary").innerText(), /session: continued interpreter, call 2/);
  await page.locator("#workspace li", { hasText: "data.txt" }).waitFor({ timeout: 10000 });
  assert.match(await page.locator("#workspace").innerText(), /data\.txt 2 bytes/);
  // A workspace file downloads.
  const [download] = await Promise.all([page.waitForEvent("download"), page.locator("#workspace button[data-path='data.txt']").click()]);
  assert.equal(download.suggestedFilename(), "data.txt");
  assert.equal(fs.readFileSync(await download.path(), "utf8"), "hi");
  // What a run planted is never followed: a link is neither listed nor read; paths stay beneath /work.
  await setCode(page, "import os\nos.symlink('/etc/hostname', '/work/link')\nos.mkdir('/work/sub')\nopen('/work/sub/b.txt', 'w').write('bee')");
  assert.equal(await (await run(page)).locator("[data-outcome]").getAttribute("data-outcome"), "ok");
  await page.locator("#workspace button[data-path='sub/b.txt']").waitFor({ timeout: 10000 });
  assert.match(await page.locator("#workspace").innerText(), /sub\/ \(directory\)/);
  assert.equal(await page.locator("#workspace button[data-path='link']").count(), 0, "a link is not listed");
  const read = (body) =>
    request(`${server.base}/workspace/read`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  const b = await read({ session: handle, path: "sub/b.txt" });
  assert.equal(b.status, 200);
  assert.equal(b.text, "bee");
  assert.equal(b.headers.get("content-type"), "application/octet-stream");
  for (const [p, status, why] of [
    ["link", 404, /symbolic link/],
    ["../etc/passwd", 400, /bad path/],
    ["/etc/passwd", 400, /bad path/],
    ["sub/../data.txt", 400, /bad path/],
    ["sub", 404, /not a regular file/],
    ["nope", 404, /no such file/],
  ]) {
    const r = await read({ session: handle, path: p });
    assert.equal(r.status, status, p);
    assert.match(r.json.error, why, p);
  }
  assert.equal((await read({ session: `ses_${"0".repeat(64)}`, path: "data.txt" })).status, 404);
  assert.equal((await read({ path: "data.txt" })).status, 400);
  assert.equal((await request(`${server.base}/workspace/list`, { method: "GET" })).status, 405);
  await shot(page, "session");
  await page.getByRole("button", { name: "Close session" }).click();
  await page.locator("#workspace", { hasText: "Runs start from nothing" }).waitFor({ timeout: 10000 });
  assert.equal(await page.locator(`#session option[value="${handle}"]`).count(), 0);
  // The server no longer knows it.
  const gone = await page.evaluate(
    (session) => window.onemcp.mcp.request("tools/call", { name: "run_py", arguments: { code: "1", session } }),
    handle,
  );
  assert.equal(gone.isError, true);
  assert.match(gone.content[0].text, /unknown session/);

  // A session that ends elsewhere (closed by another client, or expired) leaves the list.
  await page.getByRole("button", { name: "New session" }).click();
  await page.locator("#workspace", { hasText: "Workspace /work of session ses_" }).waitFor({ timeout: 10000 });
  const other = await page.locator("#session").inputValue();
  await page.evaluate((session) => window.onemcp.mcp.request("tools/call", { name: "session_close", arguments: { session } }), other);
  await page.locator("#session").selectOption(other); // the workspace is listed again
  await page.locator("#workspace", { hasText: "has ended (closed or expired)" }).waitFor({ timeout: 10000 });
  assert.equal(await page.locator(`#session option[value="${other}"]`).count(), 0);
  assert.equal(await page.locator("#session").inputValue(), "");
  page.errors = page.errors.filter((e) => !/status of 404/.test(e)); // that listing's answer
  await closePage(page);
});

test("without a token the server keeps no runs: every client would see the others'", async () => {
  assert.deepEqual((await request(`${server.base}/runs`)).json, { kept: false, runs: [] });
});

describe("with authentication (and no upstream servers)", () => {
  let authServer;
  let token;
  let other; // a second client's token
  before(async () => {
    const dir = makeProject();
    const tokens = ["ui", "other"].map((name) => {
      const r = runCli(["token", "create", "--dir", dir, "--name", name]);
      assert.equal(r.status, 0, r.stderr);
      return r.stdout.trim();
    });
    [token, other] = tokens;
    authServer = await startServer({ dir, ui: true, readyTimeoutMs: 60000 });
  });
  after(() => authServer?.stop());

  test("the page opened with ?token= runs code, and the token field sends a bearer token", async () => {
    const page = await openPage(authServer.base, { path: `/?token=${token}` });
    assert.equal(new URL(page.url()).search, "", "the token left the address bar");
    assert.equal(await (await run(page)).locator("[data-outcome]").getAttribute("data-outcome"), "ok");
    // A wrong token in the field is refused; the right one works (sent as Authorization).
    await page.locator("#auth summary").click();
    await page.locator("#token").fill("1mcp_wrong");
    await page.locator("#token-form button").click();
    await page.locator("#connection", { hasText: "not authorized (401)" }).waitFor({ timeout: 10000 });
    await page.locator("#token").fill(token);
    await page.locator("#token-form button").click();
    await page.locator("#connection", { hasText: /^connected$/ }).waitFor({ timeout: 10000 });
    assert.equal(await page.evaluate(() => sessionStorage.getItem("1mcp.token")), token);
    assert.equal(await (await run(page)).locator("[data-outcome]").getAttribute("data-outcome"), "ok");
    // The refused token's requests (the page asks nothing of a server without upstreams that
    // would fail).
    page.errors = page.errors.filter((e) => !/status of 401/.test(e));
    await closePage(page);
  });

  test("a bearer token alone (no cookie): the capsule link, the server's recent runs of this token only, run again", async () => {
    // The page loaded, then the browser dropped the cookie (as when it keeps none): the token
    // field's bearer token is all the page has.
    const page = await openPage(authServer.base, { path: `/?token=${token}` });
    await page.context().clearCookies();
    await page.locator("#auth summary").click();
    await page.locator("#token").fill(token);
    await page.locator("#token-form button").click();
    await page.locator("#connection", { hasText: /^connected$/ }).waitFor({ timeout: 10000 });
    assert.deepEqual(await page.context().cookies(), [], "no cookie: the token goes as Authorization only");
    await page.locator("#lang").selectOption("py");
    await setCode(page, "import os\nprint('key', 'set' if os.environ.get('API_KEY') else 'unset')");
    await page.locator("#inputs summary").click();
    await page.locator("#env").fill("API_KEY=s3cr3t-value");
    const out = await run(page);
    assert.equal(await out.locator(".stdout pre").innerText(), "key set\n");

    // The capsule link opens the manifest, fetched with the token, from a blob.
    const [tab] = await Promise.all([page.context().waitForEvent("page"), out.locator("a.capsule").click()]);
    await tab.waitForLoadState();
    assert.match(tab.url(), /^blob:/);
    assert.equal(JSON.parse(await tab.locator("body").innerText()).language, "py");
    await tab.close();

    // The server keeps the run for this token, without the environment's values.
    const mine = await request(`${authServer.base}/runs`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(mine.json.kept, true);
    assert.equal(mine.json.runs.length, 3, "the two runs of the test before, and this one");
    assert.deepEqual(mine.json.runs[0].envNames, ["API_KEY"]);
    assert.equal(mine.json.runs[0].tool, "run_py");
    assert.equal(mine.json.runs[0].outcome, "ok");
    assert.ok(!mine.text.includes("s3cr3t"), "no environment value kept");
    const theirs = await request(`${authServer.base}/runs`, { headers: { authorization: `Bearer ${other}` } });
    assert.deepEqual(theirs.json, { kept: true, runs: [] }, "another token sees none of them");
    assert.equal((await request(`${authServer.base}/runs`)).status, 401);

    // Shown in the page's history, and run again from there (the env value is not kept).
    await page.getByRole("button", { name: "Clear" }).click();
    const kept = page.locator("#server-history details.entry");
    await kept.first().waitFor({ timeout: 10000 });
    const before = await kept.count();
    assert.equal(before, 3);
    await setCode(page, "print('something else')");
    await kept.first().locator(":scope > summary").click();
    assert.match(await kept.first().innerText(), /env values are not kept \(API_KEY\)/);
    await kept.first().getByRole("button", { name: "Run again" }).click();
    await page.locator("#output .stdout pre", { hasText: "key unset" }).waitFor({ timeout: 20000 });
    await until(async () => (await kept.count()) === before + 1, 10000, "the run kept too");
    await shot(page, "server-history");

    // A session's workspace answers its owner only.
    await page.getByRole("button", { name: "New session" }).click();
    await page.locator("#workspace", { hasText: "Workspace /work of session ses_" }).waitFor({ timeout: 10000 });
    const session = await page.locator("#session").inputValue();
    const list = (t) =>
      request(`${authServer.base}/workspace/list`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${t}` },
        body: JSON.stringify({ session }),
      });
    assert.deepEqual((await list(token)).json, { files: [], truncated: false });
    assert.equal((await list(other)).status, 404);
    await closePage(page);
  });
});

test("screenshots are kept", () => {
  for (const n of ["run-js", "error", "plot", "dark", "narrow", "history", "upstreams", "session", "server-history"]) {
    assert.ok(fs.statSync(path.join(ARTIFACTS, `${n}.png`)).size > 1000, n);
  }
});
