// What a run leaves in /out, as MCP content, through the official SDK clients: images (told by
// their bytes, not their names) as image blocks within their caps, other files as resource_link
// blocks that resources/read serves (text or base64 blob) to the client that made the call and
// to no other, small text files in the text as well; in the legacy era and in the stateless one.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { Client as ModernClient, StreamableHTTPClientTransport as ModernTransport } from "@modelcontextprotocol/client";

import { assertOk, connectHttp, post, runJs, runPy, show, startServer, withTimeout } from "./lib.mjs";

let server;
let client;
let other; // another session: another principal

before(async () => {
  server = await startServer();
  client = await connectHttp(server.url);
  other = await connectHttp(server.url);
});

after(async () => {
  await client?.close().catch(() => {});
  await other?.close().catch(() => {});
  await server?.stop();
});

const images = (r) => r.content.filter((b) => b.type === "image");
const links = (r) => r.content.filter((b) => b.type === "resource_link");
const fileNamed = (r, path) => r.structuredContent.files.find((f) => f.path === path);
const read = (c, uri) => withTimeout(c.readResource({ uri }), 10000, `resources/read ${uri}`);

// A real 4×3 RGB PNG, built with zlib and struct alone; stdout is its base64.
const pngCode = String.raw`
import base64, struct, zlib
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
w, h = 4, 3
rows = b"".join(b"\x00" + b"".join(bytes([x * 60, y * 100, 200]) for x in range(w)) for y in range(h))
png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
       + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
open("/out/plot.png", "wb").write(png)
print(base64.b64encode(png).decode())
`;

test("a PNG written by run_py comes back as an image block, and as a resource", async () => {
  const r = await runPy(client, pngCode);
  assertOk(r);
  const b64 = r.structuredContent.stdout.trim();
  const [img] = images(r);
  assert.ok(img, show(r));
  assert.equal(img.mimeType, "image/png");
  assert.deepEqual(Buffer.from(img.data, "base64"), Buffer.from(b64, "base64"));
  assert.equal(Buffer.from(img.data, "base64").subarray(1, 4).toString(), "PNG");
  assert.equal(links(r).length, 0, "an image shown is not linked as well");
  const f = fileNamed(r, "plot.png");
  assert.equal(f.mimeType, "image/png");
  assert.equal(f.content, undefined, "no base64 copy in structuredContent");
  assert.match(f.uri, /^onemcp:\/\/runs\/[0-9a-f]{32}\/out\/plot\.png$/);
  assert.match(r.content[0].text, /\[files in \/out\]\n {2}plot\.png \(\d+ bytes, image\/png\): shown as an image\n/);
  const res = await read(client, f.uri);
  assert.deepEqual(res.contents, [{ uri: f.uri, mimeType: "image/png", blob: b64 }]);
});

test("an SVG is an image by its content; a .png holding text is not", async () => {
  const svg =
    '<?xml version="1.0" encoding="UTF-8"?>\n<!-- drawn by hand -->\n' +
    '<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">\n' +
    '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>\n';
  const r = await runPy(
    client,
    `open("/out/chart", "w").write(${JSON.stringify(svg)})\nopen("/out/x.png", "w").write("not an image\\n")`,
  );
  assertOk(r);
  const imgs = images(r);
  assert.equal(imgs.length, 1, show(r));
  assert.equal(imgs[0].mimeType, "image/svg+xml");
  assert.equal(Buffer.from(imgs[0].data, "base64").toString(), svg);
  const x = fileNamed(r, "x.png");
  assert.equal(x.mimeType, "text/plain");
  assert.deepEqual(links(r), [{ type: "resource_link", uri: x.uri, name: "x.png", mimeType: "text/plain", size: 13 }]);
  assert.match(r.content[0].text, /\n\[\/out\/x\.png\]\nnot an image\n/);
  const res = await read(client, x.uri);
  assert.deepEqual(res.contents, [{ uri: x.uri, mimeType: "text/plain", text: "not an image\n" }]);
});

test("a CSV is a resource_link, read back as text; a small text file is inline too", async () => {
  const r = await runPy(
    client,
    String.raw`
import os
os.makedirs("/out/data")
with open("/out/data/table.csv", "w") as f:
    f.write("n,square\n")
    for n in range(10000):
        f.write(f"{n},{n * n}\n")
open("/out/notes.txt", "w").write("hello from /out\n")
`,
  );
  assertOk(r);
  const csv = fileNamed(r, "data/table.csv");
  assert.equal(csv.mimeType, "text/csv");
  assert.equal(csv.content, undefined);
  const link = links(r).find((l) => l.name === "data/table.csv");
  assert.deepEqual(link, { type: "resource_link", uri: csv.uri, name: "data/table.csv", mimeType: "text/csv", size: csv.size });
  const text = r.content[0].text;
  assert.ok(text.length < 1000, `the text stays short (${text.length} chars): ${text}`);
  assert.ok(!text.includes("9999,"), "no CSV rows in the text");
  const res = await read(client, csv.uri);
  assert.equal(res.contents[0].mimeType, "text/csv");
  assert.equal(res.contents[0].text.length, csv.size);
  assert.ok(res.contents[0].text.startsWith("n,square\n0,0\n1,1\n"));
  assert.ok(res.contents[0].text.endsWith("9999,99980001\n"));

  const notes = fileNamed(r, "notes.txt");
  assert.equal(notes.content, "hello from /out\n");
  assert.match(text, new RegExp(`  notes\\.txt \\(16 bytes, text/plain\\): ${notes.uri}, shown below\\n`));
  assert.match(text, /\n\[\/out\/notes\.txt\]\nhello from \/out\n/);
  assert.ok(links(r).some((l) => l.uri === notes.uri));
});

test("files run_js writes to /out with Node's fs come back like run_py's", async () => {
  // The import declaration becomes a lookup on the server: top-level await and the value stay.
  const r = await runJs(
    client,
    `import { mkdirSync, writeFileSync, readdirSync } from "node:fs";
mkdirSync("/out/js", { recursive: true });
writeFileSync("/out/js/notes.txt", "written by run_js\\n");
writeFileSync("/out/js/bytes.bin", await Promise.resolve(Uint8Array.from({ length: 256 }, (_, i) => i)));
readdirSync("/out/js")`,
  );
  assertOk(r);
  assert.equal(r.structuredContent.value, "[ 'bytes.bin', 'notes.txt' ]");
  assert.equal(fileNamed(r, "js/notes.txt").content, "written by run_js\n");
  const bin = fileNamed(r, "js/bytes.bin");
  assert.equal(bin.size, 256);
  const res = await read(client, bin.uri);
  assert.deepEqual(Buffer.from(res.contents[0].blob, "base64"), Buffer.from(Array.from({ length: 256 }, (_, i) => i)));
});

test("a binary file is read back as a base64 blob; another client gets Resource not found", async () => {
  const r = await runPy(client, 'open("/out/raw.bin", "wb").write(bytes(range(256)) * 3)');
  assertOk(r);
  const f = fileNamed(r, "raw.bin");
  assert.equal(f.mimeType, "application/octet-stream");
  assert.equal(f.content, undefined);
  assert.equal(links(r)[0].uri, f.uri);
  const res = await read(client, f.uri);
  const bytes = Buffer.from(res.contents[0].blob, "base64");
  assert.equal(bytes.length, 768);
  assert.deepEqual([...bytes.subarray(250, 260)], [250, 251, 252, 253, 254, 255, 0, 1, 2, 3]);
  assert.equal(res.contents[0].text, undefined);

  // Another principal, a run that does not exist and a path that climbs answer alike.
  const runId = f.uri.split("/")[3];
  for (const [who, uri] of [
    [other, f.uri],
    [client, f.uri.replace(runId, "0".repeat(32))],
    [client, f.uri.replace("raw.bin", "missing.bin")],
    [client, f.uri.replace("raw.bin", "../raw.bin")],
    [client, f.uri.replace("raw.bin", "%2E%2E/raw.bin")],
  ]) {
    await assert.rejects(read(who, uri), (e) => {
      assert.equal(e.code, -32002, `${uri}: ${e}`);
      assert.match(e.message, /Resource not found/);
      assert.equal(e.data?.uri, uri);
      return true;
    });
  }
  // The owner still reads it.
  assert.equal((await read(client, f.uri)).contents[0].blob, res.contents[0].blob);
});

test("images beyond the caps are linked with a note", async () => {
  const r = await runPy(
    client,
    String.raw`
import os
sig = b"\x89PNG\r\n\x1a\n"
for i in range(5):
    open(f"/out/img{i}.png", "wb").write(sig + os.urandom(900 * 1024))
open("/out/huge.png", "wb").write(sig + os.urandom(1536 * 1024))
`,
  );
  assertOk(r);
  const size = JSON.stringify(r).length;
  assert.equal(images(r).length, 4, show(r));
  assert.deepEqual(links(r).map((l) => l.name), ["huge.png", "img4.png"]);
  const text = r.content[0].text;
  assert.match(text, /  img4\.png \(921608 bytes, image\/png\): onemcp:\S+ \(not shown as an image: the images of one result are capped at 4194304 bytes in all\)\n/);
  assert.match(text, /  huge\.png \(1572872 bytes, image\/png\): onemcp:\S+ \(not shown as an image: only its first 1048576 bytes were read back\)\n/);
  assert.ok(text.length < 2000, text);
  assert.equal(r.structuredContent.files.length, 6);
  for (const f of r.structuredContent.files) {
    assert.equal(f.mimeType, "image/png");
    assert.equal(f.content, undefined);
  }
  assert.equal(fileNamed(r, "huge.png").truncated, true);
  assert.ok(size < 6 * 1024 * 1024, `result of ${size} bytes`);
});

test("a session of protocol 2025-03-26 gets no resource_link blocks (they came in 2025-06-18)", async () => {
  const init = await post(server.url, {
    jsonrpc: "2.0",
    id: 0,
    method: "initialize",
    params: { protocolVersion: "2025-03-26", capabilities: {}, clientInfo: { name: "old", version: "1" } },
  });
  const headers = { "mcp-session-id": init.headers.get("mcp-session-id"), "mcp-protocol-version": "2025-03-26" };
  await post(server.url, { jsonrpc: "2.0", method: "notifications/initialized" }, headers);
  const call = await post(
    server.url,
    { jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "run_py", arguments: { code: 'open("/out/a.bin", "wb").write(b"\\0")' } } },
    headers,
    30000,
  );
  const result = call.json.result;
  assert.deepEqual(result.content.map((b) => b.type), ["text"], call.text);
  const uri = result.structuredContent.files[0].uri;
  assert.ok(result.content[0].text.includes(uri));
  const res = await post(server.url, { jsonrpc: "2.0", id: 2, method: "resources/read", params: { uri } }, headers);
  assert.deepEqual(res.json.result.contents, [{ uri, mimeType: "application/octet-stream", blob: "AA==" }]);
});

test("the stateless era: a run's files read back by the v2 SDK client, not by a legacy session", async () => {
  const modern = new ModernClient({ name: "1mcp-e2e-v2", version: "1.0.0" }, { versionNegotiation: { mode: { pin: "2026-07-28" } } });
  await withTimeout(modern.connect(new ModernTransport(new URL(server.url))), 20000, "connect");
  try {
    const templates = await modern.listResourceTemplates();
    assert.ok(templates.resourceTemplates.some((t) => t.uriTemplate === "onemcp://runs/{run}/out/{+path}"), JSON.stringify(templates));
    const r = await modern.callTool({ name: "run_py", arguments: { code: `${pngCode}\nopen("/out/t.csv", "w").write("a,b\\n" * 2000)` } });
    assert.equal(r.structuredContent.outcome, "ok", JSON.stringify(r).slice(0, 2000));
    assert.deepEqual(r.content.map((b) => b.type), ["text", "image", "resource_link"]);
    const csv = r.content[2];
    assert.equal(csv.mimeType, "text/csv");
    const res = await modern.readResource({ uri: csv.uri });
    assert.equal(res.contents[0].text, "a,b\n".repeat(2000));
    await assert.rejects(read(client, csv.uri), /Resource not found/);
  } finally {
    await modern.close();
  }
});
