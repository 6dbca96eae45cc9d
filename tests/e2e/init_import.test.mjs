// `1mcp init --import CLIENT [FILE]`: the MCP servers of Claude Desktop, Claude Code, Cursor and
// VS Code (fixture files of each format, tests/fixtures/import/) added to `mcps` of a new or an
// existing config; what could not be converted is reported; secrets go to the config file only,
// which is then mode 0600; a client's default file is found where it keeps it.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { test } from "node:test";

import { BIN, REPO_ROOT, configPath, readConfig, runCli, tempDir } from "./lib.mjs";

const FIX = path.join(REPO_ROOT, "tests/fixtures/import");
const SECRET = /fixture_secret|ghp_/;

function importInto(dir, client, file) {
  const r = runCli(["init", "--dir", dir, "--import", client, ...(file ? [path.join(FIX, file)] : [])]);
  assert.doesNotMatch(r.stdout + r.stderr, SECRET, "no secret is printed");
  return r;
}
const mode = (dir) => fs.statSync(configPath(dir)).mode & 0o777;
const byName = (cfg) => Object.fromEntries(cfg.mcps.map((m) => [m.name, m]));

test("claude-desktop: stdio servers with their env; a name made valid; mode 0600", () => {
  const dir = tempDir();
  const r = importInto(dir, "claude-desktop", "claude_desktop_config.json");
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /wrote .*1mcp\.config\.json/);
  assert.match(r.stderr, /imported 3 server\(s\) from .*claude_desktop_config\.json into mcps of .*: filesystem, github, my-server-v2/);
  const m = byName(readConfig(dir));
  assert.deepEqual(m.filesystem, { transport: "stdio", command: "npx", args: ["-y", "@modelcontextprotocol/server-filesystem", "/Users/me/Desktop"], name: "filesystem" });
  assert.deepEqual(m.github.env, { GITHUB_PERSONAL_ACCESS_TOKEN: "ghp_fixture_secret_1" });
  assert.deepEqual(m["my-server-v2"], { transport: "stdio", command: "/opt/tools/server", name: "my-server-v2" });
  assert.equal(mode(dir), 0o600);
  // The rest of the config is the default one, and the file loads.
  assert.deepEqual(readConfig(dir).policy.mcps, ["*"]);
  assert.equal(runCli(["token", "list", "--dir", dir]).status, 0);
});

test("claude-code: an HTTP server with headers; SSE and ${VAR} entries are reported, not converted", () => {
  const dir = tempDir();
  const r = importInto(dir, "claude-code", "claude_code.mcp.json");
  assert.equal(r.status, 0, r.stderr);
  const m = byName(readConfig(dir));
  assert.deepEqual(Object.keys(m).sort(), ["everything", "sentry"]);
  assert.deepEqual(m.sentry, { transport: "http", endpoint: "https://mcp.sentry.dev/mcp", headers: { Authorization: "Bearer fixture_secret_2" }, name: "sentry" });
  assert.match(r.stderr, /not imported: legacy-events: the SSE transport is not supported/);
  assert.match(r.stderr, /not imported: db: env DB_URL uses a \$\{\.\.\.\} variable the client fills in/);
  assert.equal(mode(dir), 0o600);
});

test("cursor into an existing config: its key order and other fields are kept; a disabled entry and a taken name are skipped", () => {
  const dir = tempDir();
  assert.equal(runCli(["init", "--dir", dir]).status, 0);
  const before = readConfig(dir);
  before.mcps = [{ name: "Local", transport: "stdio", command: "true" }];
  before.sessionTtlMs = 1234;
  fs.writeFileSync(configPath(dir), JSON.stringify(before, null, 2));
  fs.chmodSync(configPath(dir), 0o644);
  const r = importInto(dir, "cursor", "cursor_mcp.json");
  assert.equal(r.status, 0, r.stderr);
  const after = readConfig(dir);
  assert.deepEqual(Object.keys(after), Object.keys(before));
  assert.equal(after.sessionTtlMs, 1234);
  assert.deepEqual(after.mcps.map((x) => x.name), ["Local", "linear"]);
  assert.deepEqual(after.mcps[1], { transport: "http", endpoint: "https://mcp.linear.app/mcp", headers: { "X-Api-Key": "fixture_secret_3" }, name: "linear" });
  assert.match(r.stderr, /not imported: local: the name local is already in mcps/);
  assert.match(r.stderr, /not imported: off: disabled in the client/);
  assert.equal(mode(dir), 0o600);
  // Again: nothing new, nothing written.
  const again = importInto(dir, "cursor", "cursor_mcp.json");
  assert.equal(again.status, 0);
  assert.match(again.stderr, /imported 0 server\(s\)/);
  assert.match(again.stderr, /not imported: linear: the name linear is already in mcps/);
});

test("vscode: JSON with comments, servers under \"servers\"; ${input:...} and cwd are reported; no secret, no 0600", () => {
  const dir = tempDir();
  const r = importInto(dir, "vscode", "vscode_mcp.json");
  assert.equal(r.status, 0, r.stderr);
  const m = byName(readConfig(dir));
  assert.deepEqual(Object.keys(m).sort(), ["memory", "remote"]);
  assert.deepEqual(m.remote, { transport: "http", endpoint: "http://127.0.0.1:9/mcp", name: "remote" });
  assert.match(r.stderr, /not imported: keyed: header Authorization uses a \$\{\.\.\.\} variable/);
  assert.match(r.stderr, /not imported: withcwd: cwd is not supported/);
  assert.equal(mode(dir), 0o644);
});

test("the client's own file by default; bad clients and files are clear errors", () => {
  const home = tempDir("1mcp-home-");
  const work = tempDir("1mcp-work-");
  fs.mkdirSync(path.join(home, ".cursor"));
  fs.copyFileSync(path.join(FIX, "cursor_mcp.json"), path.join(home, ".cursor/mcp.json"));
  const dir = path.join(work, "proj");
  const run = (args) => spawnSync(BIN, args, { cwd: work, encoding: "utf8", timeout: 15000, env: { PATH: process.env.PATH, HOME: home } });
  let r = run(["init", "--dir", dir, "--import", "cursor"]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, new RegExp(`from ${home}/\\.cursor/mcp\\.json`));
  assert.deepEqual(readConfig(dir).mcps.map((x) => x.name), ["linear", "local"]);

  r = run(["init", "--dir", dir, "--import", "vscode"]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /no server list found; looked for:\n  .*\/\.vscode\/mcp\.json\n  .*\/Code\/User\/mcp\.json/);

  r = run(["init", "--dir", dir, "--import", "emacs"]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown client "emacs" \(claude-desktop, claude-code, cursor or vscode\)/);

  fs.writeFileSync(path.join(work, "bad.json"), "{ nope");
  r = run(["init", "--dir", dir, "--import", "cursor", path.join(work, "bad.json")]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /bad\.json is not valid JSON/);
  fs.writeFileSync(path.join(work, "other.json"), '{"servers": {}}');
  r = run(["init", "--dir", dir, "--import", "cursor", path.join(work, "other.json")]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /has no "mcpServers" object/);
});
