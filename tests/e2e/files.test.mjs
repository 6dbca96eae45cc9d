// Files into a run (run_py's `files` argument) through the official SDK client, over HTTP and
// stdio: written into the working directory before the code starts, checked before anything runs.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { BIN, Client, StdioClientTransport, connectHttp, makeProject, runJs, runPy, show, startServer } from "./lib.mjs";

let server;
let http;
let stdio;

before(async () => {
  const dir = makeProject();
  server = await startServer({ dir });
  http = await connectHttp(server.url);
  stdio = new Client({ name: "1mcp-e2e-files", version: "1.0.0" });
  await stdio.connect(new StdioClientTransport({ command: BIN, args: ["serve", "--stdio", "--dir", dir], stderr: "ignore" }));
});

after(async () => {
  await http?.close().catch(() => {});
  await stdio?.close().catch(() => {});
  await server?.stop();
});

const READ_BACK = [
  "import csv, hashlib, os",
  "rows = list(csv.reader(open('data/in.csv')))",
  "blob = open('img/raw.bin', 'rb').read()",
  "print(rows, hashlib.sha256(blob).hexdigest(), os.getcwd())",
].join("\n");

for (const [name, client] of [["HTTP", () => http], ["stdio", () => stdio]]) {
  test(`run_py files (text and base64) are there when the code starts, over ${name}`, async () => {
    const blob = Buffer.from([0, 1, 2, 255, 254, 10, 13]);
    const r = await runPy(client(), READ_BACK, {
      files: { "data/in.csv": "a,b\n1,é\n", "img/raw.bin": { base64: blob.toString("base64") } },
    });
    assert.equal(r.isError, false, show(r));
    const digest = (await import("node:crypto")).createHash("sha256").update(blob).digest("hex");
    assert.equal(r.structuredContent.stdout, `[['a', 'b'], ['1', 'é']] ${digest} /tmp\n`);
    // Into the given working directory too.
    const there = await runPy(client(), "print(open('/out/n.txt').read())", { cwd: "/out", files: { "n.txt": "here" } });
    assert.equal(there.structuredContent.stdout, "here\n", show(there));
  });
}

test("bad files are refused before anything runs, with the reason", async () => {
  for (const [files, why] of [
    [{ "../escape": "x" }, /must not have "\." or "\.\." components/],
    [{ "/etc/passwd": "x" }, /must be relative/],
    [{ "a//b": "x" }, /empty components/],
    [{ a: { base64: "not base64!" } }, /not valid base64/],
    [{ a: 5 }, /invalid arguments/],
    [{ a: "x".repeat(3 << 20), b: "y".repeat(2 << 20) }, /4 MiB/],
  ]) {
    const r = await runPy(http, "print('ran')", { files });
    assert.equal(r.isError, true, show(r));
    assert.equal(r.structuredContent, undefined, show(r));  // no run: an argument error
    assert.match(r.content[0].text, why);
  }
  // A read-only working directory: the run reports it, as an error of the call.
  const ro = await runPy(http, "print('ran')", { cwd: "/usr", files: { x: "y" } });
  assert.equal(ro.isError, true);
  assert.equal(ro.structuredContent.outcome, "error");
  assert.equal(ro.structuredContent.stdout, "");
  assert.match(ro.structuredContent.stderr, /files: cannot write x: Read-only file system/);
  // run_js takes files too, checked the same way, and reads them with fs.
  const js = await runJs(http, "require('fs').readFileSync('in/a.txt', 'utf8') + ' ' + process.cwd()", { files: { "in/a.txt": "from files" } });
  assert.equal(js.structuredContent.value, "'from files /tmp'", show(js));
  const bad = await runJs(http, "1", { files: { "../a": "b" } });
  assert.equal(bad.isError, true);
  assert.equal(bad.structuredContent, undefined);
});
