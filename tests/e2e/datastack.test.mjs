// run_py as a notebook, through the official SDK client: Debian's pandas and matplotlib, a
// DataFrame as the value of the last expression, figures as PNG image content, and
// python.preload (the zygote imports them once).
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";

import { REPO_ROOT, callTool, connectHttp, makeProject, runPy, show, startServer, tempDir } from "./lib.mjs";

let plain;
let preloaded;

before(async () => {
  plain = await startServer();
  plain.client = await connectHttp(plain.url);
  const dir = makeProject((c) => void (c.python = { preload: ["pandas", "matplotlib.pyplot"] }));
  preloaded = await startServer({ dir, readyTimeoutMs: 60000 });
  preloaded.client = await connectHttp(preloaded.url);
});

after(async () => {
  for (const s of [plain, preloaded]) {
    await s?.client?.close().catch(() => {});
    await s?.stop();
  }
});

// The PNG's width and height, from its IHDR chunk.
function pngSize(b64) {
  const png = Buffer.from(b64, "base64");
  assert.equal(png.subarray(0, 8).toString("hex"), "89504e470d0a1a0a", "PNG signature");
  assert.equal(png.subarray(12, 16).toString(), "IHDR");
  return [png.readUInt32BE(16), png.readUInt32BE(20)];
}

const ANALYSIS = [
  "import pandas as pd, matplotlib.pyplot as plt",
  "df = pd.DataFrame({'x': [1, 2, 3], 'y': [4, 1, 9]})",
  "df.plot(x='x', y='y')",
  "plt.show()",
  "plt.figure(figsize=(4, 3))",
  "plt.bar(['a', 'b'], [2, 5])",  // left open: saved at the end
  "df.y.sum()",
].join("\n");

for (const which of ["plain", "preloaded"]) {
  test(`pandas and plots come back as a value and PNG images (${which} zygote)`, async () => {
    const s = which === "plain" ? plain : preloaded;
    const r = await runPy(s.client, ANALYSIS, {}, { timeoutMs: 60000 });
    assert.equal(r.isError, false, show(r));
    assert.equal(r.structuredContent.value, "14");
    const images = r.content.filter((c) => c.type === "image");
    assert.equal(images.length, 2, show(r));
    for (const img of images) assert.equal(img.mimeType, "image/png");
    assert.deepEqual(pngSize(images[0].data), [640, 480]);  // matplotlib's default figure
    assert.deepEqual(pngSize(images[1].data), [400, 300]);
    assert.deepEqual(r.structuredContent.files.map((f) => f.path).sort(), ["figure-1.png", "figure-2.png"]);
    // A DataFrame as the last expression: its text table.
    const t = await runPy(s.client, "import pandas as pd\npd.DataFrame({'a': [1, 2], 'b': ['x', 'y']})");
    assert.equal(t.structuredContent.value, "   a  b\n0  1  x\n1  2  y", show(t));
  });
}

test("a preloaded zygote has the modules in memory already; a plain one imports them per run", async () => {
  const code = "import sys\nprint(all(m in sys.modules for m in ('pandas', 'matplotlib.pyplot')))";
  assert.equal((await runPy(preloaded.client, code)).structuredContent.stdout, "True\n");
  assert.equal((await runPy(plain.client, code)).structuredContent.stdout, "False\n");
});

test("examples/data-analysis: its config and its call.json, a table and a chart", async () => {
  const example = path.join(REPO_ROOT, "examples/data-analysis");
  const dir = tempDir("1mcp-e2e-example-");
  fs.copyFileSync(path.join(example, "1mcp.config.json"), path.join(dir, "1mcp.config.json"));
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, "1mcp.config.json"), "utf8"));
  delete cfg.$schema;  // relative to the example's own directory
  fs.writeFileSync(path.join(dir, "1mcp.config.json"), JSON.stringify(cfg));
  const s = await startServer({ dir, readyTimeoutMs: 60000 });
  const client = await connectHttp(s.url);
  try {
    const call = JSON.parse(fs.readFileSync(path.join(example, "call.json"), "utf8"));
    const r = await callTool(client, call.name, call.arguments, { timeoutMs: 60000 });
    assert.equal(r.isError, false, show(r));
    assert.match(r.structuredContent.value, /region\s+north\s+south\s+total\nmonth\s*\n2026-01\s+120\s+95\s+215\n/);
    const images = r.content.filter((c) => c.type === "image");
    assert.equal(images.length, 1, show(r));
    assert.deepEqual(pngSize(images[0].data), [640, 480]);
  } finally {
    await client.close().catch(() => {});
    await s.stop();
  }
});

test("examples/data-analysis: session.json, a notebook session step by step", async () => {
  const example = path.join(REPO_ROOT, "examples/data-analysis");
  const s = await startServer({ dir: makeProject((c) => void (c.python = { preload: ["pandas", "matplotlib.pyplot"] })), readyTimeoutMs: 60000 });
  const client = await connectHttp(s.url);
  try {
    const steps = JSON.parse(fs.readFileSync(path.join(example, "session.json"), "utf8"));
    let session;
    const results = [];
    for (const step of steps) {
      const args = JSON.parse(JSON.stringify(step.arguments).replaceAll("$SESSION", session ?? ""));
      const r = await callTool(client, step.name, args, { timeoutMs: 60000 });
      assert.equal(r.isError, false, `${step.name}: ${show(r)}`);
      session ??= r.structuredContent.session;
      results.push(r);
    }
    const [, load, chart, js, closed] = results;
    assert.match(load.structuredContent.value, /units\ncount\s+6\.0/);
    assert.match(chart.structuredContent.value, /2026-01\s+120\s+95\s+215/);
    assert.equal(chart.structuredContent.session.interpreter, "continued");
    assert.equal(chart.content.filter((c) => c.type === "image").length, 1, show(chart));
    assert.match(js.structuredContent.value, /month: '2026-03', total: 262/);
    assert.equal(closed.structuredContent.closed, true);
  } finally {
    await client.close().catch(() => {});
    await s.stop();
  }
});
