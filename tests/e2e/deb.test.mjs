// The Debian package (CPack, cmake/install.cmake), built from this build tree and extracted with
// `dpkg-deb -x` into an empty directory, as dpkg would lay it out under /: its control fields,
// its files (the systemd unit among them), and an MCP smoke test of the extracted usr/bin/1mcp —
// init, serve, tools/list, run_js (TypeScript, so the packaged esbuild runs) and run_py through
// the MCP SDK client — with the build tree off PATH, so nothing of it is used.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { after, test } from "node:test";

import { BIN, REPO_ROOT, assertOk, connectHttp, runJs, runPy, show, startServer, tempDir } from "./lib.mjs";

const BUILD_DIR = process.env.ONEMCP_BUILD_DIR ?? path.dirname(BIN);
const CPACK = path.join(path.dirname(process.env.ONEMCP_CMAKE ?? "/usr/bin/cmake"), "cpack");

const servers = [];
after(async () => {
  for (const s of servers) await s.stop();
});

const run = (cmd, args) => {
  const r = spawnSync(cmd, args, { encoding: "utf8", timeout: 240000 });
  assert.equal(r.status, 0, `${cmd} ${args.join(" ")}: ${r.error ?? ""}${r.stdout}${r.stderr}`);
  return r.stdout;
};

test("the .deb, extracted into a clean root, installs its files and serves from them", async () => {
  const root = tempDir("1mcp-deb-");
  const out = path.join(root, "package");
  run(CPACK, ["-G", "DEB", "--config", path.join(BUILD_DIR, "CPackConfig.cmake"), "-B", out]);
  const debs = fs.readdirSync(out).filter((f) => f.endsWith(".deb"));
  assert.equal(debs.length, 1, debs.join(", "));
  const deb = path.join(out, debs[0]);

  assert.equal(run("dpkg-deb", ["-f", deb, "Package"]).trim(), "1mcp");
  const depends = run("dpkg-deb", ["-f", deb, "Depends"]);
  for (const d of ["python3.11", "python3-numpy", "libseccomp2", "libpython3.11", "libsodium23"]) {
    assert.match(depends, new RegExp(`(^|, )${d.replace(".", "\\.")}\\b`), `Depends: ${depends}`);
  }
  // No maintainer scripts: installing the package runs nothing.
  const control = run("dpkg-deb", ["-I", deb]);
  for (const script of ["preinst", "postinst", "prerm", "postrm"]) assert.ok(!control.includes(` ${script} `), control);

  const dest = path.join(root, "root");
  run("dpkg-deb", ["-x", deb, dest]);
  for (const f of ["usr/bin/1mcp", "usr/lib/1mcp/1mcp-js-worker", "usr/lib/1mcp/1mcp-py-worker", "usr/lib/1mcp/esbuild"]) {
    fs.accessSync(path.join(dest, f), fs.constants.X_OK);
  }
  // The systemd unit, as packaging/1mcp.service has it (it names /usr/bin/1mcp).
  assert.equal(
    fs.readFileSync(path.join(dest, "usr/lib/systemd/system/1mcp.service"), "utf8"),
    fs.readFileSync(path.join(REPO_ROOT, "packaging/1mcp.service"), "utf8"),
  );
  fs.accessSync(path.join(dest, "usr/share/doc/1mcp/README.md"));

  const bin = path.join(dest, "usr/bin/1mcp");
  const lib = path.join(dest, "usr/lib/1mcp");
  const buildDir = fs.realpathSync(BUILD_DIR);
  const repo = fs.realpathSync(REPO_ROOT);
  const env = { ...process.env };
  delete env.ONEMCP_ESBUILD;
  delete env.ONEMCP_BIN;
  env.PATH = (env.PATH ?? "")
    .split(":")
    .filter((d) => d && !path.resolve(d).startsWith(buildDir) && !path.resolve(d).startsWith(repo))
    .join(":");

  const version = spawnSync(bin, ["--version"], { encoding: "utf8", env }).stdout.trim();
  assert.equal(version, spawnSync(BIN, ["--version"], { encoding: "utf8" }).stdout.trim(), "the packaged binary is this build's");
  const dir = path.join(root, "project");
  const init = spawnSync(bin, ["init", "--dir", dir], { encoding: "utf8", env, timeout: 15000 });
  assert.equal(init.status, 0, init.stderr);

  const server = await startServer({ bin, dir, env });
  servers.push(server);
  const log = server.stderr();
  assert.ok(
    log.includes(`workers ${lib}/1mcp-js-worker, ${lib}/1mcp-py-worker; esbuild ${lib}/esbuild`),
    "worker paths from the extracted package: " + log,
  );
  assert.ok(!log.includes(buildDir), "nothing from the build tree: " + log);

  const client = await connectHttp(server.url);
  try {
    const { tools } = await client.listTools();
    const names = tools.map((t) => t.name);
    assert.ok(names.includes("run_js") && names.includes("run_py"), names.join(", "));
    const js = await runJs(client, "const n: number = 21;\nconsole.log(n * 2);");
    assertOk(js);
    assert.equal(js.structuredContent.stdout, "42\n", show(js));
    const py = await runPy(client, "import numpy\nprint(int(numpy.arange(7).sum()))");
    assertOk(py);
    assert.equal(py.structuredContent.stdout, "21\n", show(py));
  } finally {
    await client.close();
  }
});
