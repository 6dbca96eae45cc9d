// The `1mcp` command line: init, config validation at serve time, --bind, what it says to a
// missing or unknown command and a missing config, serve --stdio without a config, and --open.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { after, test } from "node:test";

import {
  BIN,
  Client,
  StdioClientTransport,
  configPath,
  makeProject,
  rawSession,
  readConfig,
  request,
  runCli,
  sleep,
  startServer,
  show,
  tempDir,
  waitExit,
  withTimeout,
} from "./lib.mjs";

const servers = [];
after(async () => {
  for (const s of servers) await s.stop();
});

// Runs `1mcp serve` on a config expected to be rejected; resolves { code, stderr }.
async function serveExpectingFailure(dir) {
  const proc = spawn(BIN, ["serve", "--dir", dir, "-p", "0", "--no-ui"], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  proc.stderr.setEncoding("utf8").on("data", (d) => (stderr += d));
  try {
    const { code } = await waitExit(proc, 10000, "serve with an invalid config to exit");
    return { code, stderr };
  } finally {
    if (proc.exitCode === null) proc.kill("SIGKILL");
  }
}

test("--version and --help", () => {
  const v = runCli(["--version"]);
  assert.equal(v.status, 0);
  assert.match(v.stdout + v.stderr, /\d+\.\d+\.\d+/);
  const h = runCli(["serve", "--help"]);
  assert.equal(h.status, 0);
  for (const flag of ["--dir", "--port", "--bind", "--no-ui", "--stdio"]) {
    assert.ok(h.stdout.includes(flag), `serve --help mentions ${flag}`);
  }
});

test("--help of 1mcp and of every command shows examples that use only that command's flags", () => {
  const commands = [[], ["init"], ["capsule", "verify"], ["token"], ["token", "create"], ["doctor"], ["serve"]];
  const help = (cmd) => {
    const r = runCli([...cmd, "--help"]);
    assert.equal(r.status, 0, `${cmd.join(" ")} --help: ${r.stderr}`);
    return r.stdout;
  };
  let examples = 0;
  for (const cmd of commands) {
    const text = help(cmd);
    if (cmd.join(" ") === "token create") continue; // its examples are the token command's
    assert.match(text, /^Examples?:$/m, `${cmd.join(" ") || "1mcp"} --help has examples`);
    for (const line of text.split("\n")) {
      const m = /^ {2}(?:sudo )?1mcp (\S.*)$/.exec(line);
      if (!m) continue;
      ++examples;
      const tokens = m[1].split(/\s{2,}/)[0].split(" ");
      const firstFlag = tokens.findIndex((t) => t.startsWith("-"));
      const words = firstFlag < 0 ? tokens : tokens.slice(0, firstFlag);
      // The command it names: the longest prefix of its words that is a command.
      let named = [];
      for (let n = words.length; n > 0 && !named.length; --n) {
        const r = runCli([...words.slice(0, n), "--help"]);
        if (r.status === 0) named = words.slice(0, n);
      }
      assert.ok(named.length, `an example names a command: ${line}`);
      const own = help(named);
      for (const flag of m[1].split(/\s{2,}/)[0].match(/(?<=\s)--?[a-z][a-z-]*/g) ?? []) {
        assert.ok(own.includes(flag), `${named.join(" ")} has ${flag} (${line.trim()})`);
      }
    }
  }
  assert.ok(examples >= 12, `${examples} examples`);
});

test("init writes a config that serve accepts", async () => {
  const dir = path.join(tempDir(), "fresh-project");
  const r = runCli(["init", "--dir", dir]);
  assert.equal(r.status, 0, r.stderr);
  const cfg = readConfig(dir);
  assert.equal(typeof cfg.policy?.limits?.timeoutMs, "number");
  assert.equal(typeof cfg.policy?.limits?.memMb, "number");
  assert.equal(typeof cfg.policy?.limits?.stdoutBytes, "number");
  const s = await startServer({ dir });
  servers.push(s);
  assert.equal(s.host, "127.0.0.1", "binds loopback by default");
  const status = await request(s.base + "/");
  assert.equal(status.status, 200);
  assert.equal(status.json.status, "ok");
});

test("init refuses to overwrite and leaves the file untouched", () => {
  const dir = tempDir();
  assert.equal(runCli(["init", "--dir", dir]).status, 0);
  const file = configPath(dir);
  fs.writeFileSync(file, fs.readFileSync(file, "utf8").replace("{", '{\n  "language": "py",'));
  const before = fs.readFileSync(file);
  const stat = fs.statSync(file);
  const r = runCli(["init", "--dir", dir]);
  assert.notEqual(r.status, 0, "second init fails");
  assert.match(r.stderr, /exist|overwrite/i);
  assert.deepEqual(fs.readFileSync(file), before);
  assert.equal(fs.statSync(file).mtimeMs, stat.mtimeMs);
});

test("serve without a config fails and says how to make one", async () => {
  const dir = tempDir();
  const { code, stderr } = await serveExpectingFailure(dir);
  assert.equal(code, 2);
  assert.ok(stderr.includes(`${configPath(dir)}: no such file`), stderr);
  assert.ok(stderr.includes(`\`1mcp init --dir ${dir}\``), stderr);
});

test("no command, or an unknown one, lists the commands", () => {
  for (const args of [[], ["foo"], ["serv", "--stdio"]]) {
    const r = runCli(args);
    assert.equal(r.status, 2, `1mcp ${args.join(" ")}: ${r.stderr}`);
    assert.doesNotMatch(r.stderr, /A subcommand is required/);
    assert.match(r.stderr, args.length ? new RegExp(`"${args[0]}" is not a command`) : /a command is needed/);
    for (const cmd of ["init", "serve", "capsule", "token"]) {
      assert.match(r.stderr, new RegExp(`^  ${cmd} +\\S`, "m"), `lists ${cmd}: ${r.stderr}`);
    }
    assert.match(r.stderr, /`1mcp COMMAND --help`/);
  }
  const token = runCli(["token"]);
  assert.equal(token.status, 2);
  for (const cmd of ["create", "list", "revoke"]) assert.match(token.stderr, new RegExp(`^  ${cmd} +\\S`, "m"));
  assert.match(token.stderr, /Usage: 1mcp token COMMAND/);
  const nested = runCli(["capsule", "check"]);
  assert.equal(nested.status, 2);
  assert.match(nested.stderr, /1mcp capsule: "check" is not a command/);
  assert.match(nested.stderr, /^  verify +\S/m);
  // Errors of a command's own options stay CLI11's.
  const missingArg = runCli(["capsule", "verify"]);
  assert.notEqual(missingArg.status, 0);
  assert.match(missingArg.stderr, /capsule is required/);
});

test("every command that reads the config says how to make a missing one", async () => {
  const dir = tempDir();
  const cases = [
    ["token", "create", "--dir", dir],
    ["token", "list", "--dir", dir],
    ["token", "revoke", "ci", "--dir", dir],
    ["capsule", "verify", "0".repeat(64), "--dir", dir],
    ["serve", "--dir", dir, "-p", "0", "--no-ui"],
    // --stdio with a config named on the command line: that file is required.
    ["serve", "--stdio", "--dir", dir, "-c", "mine.json"],
  ];
  for (const args of cases) {
    const r = runCli(args);
    assert.equal(r.status, 2, `1mcp ${args.join(" ")}: ${r.stderr}`);
    const config = args.includes("mine.json") ? "mine.json" : "1mcp.config.json";
    const init = `1mcp init --dir ${dir}${config === "mine.json" ? " -c mine.json" : ""}`;
    assert.ok(r.stderr.includes(`${path.join(dir, config)}: no such file; create a config with \`${init}\``),
      `1mcp ${args.join(" ")}: ${r.stderr}`);
  }
  // A directory where the config should be: not readable as a file, and the hint is there too.
  fs.mkdirSync(configPath(dir));
  const r = runCli(["token", "list", "--dir", dir]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /not a regular file.*`1mcp init --dir .*` creates a config where nothing exists yet/);
});

// Starts `1mcp <args>` as an MCP client over stdio would (in `cwd`, with `env` or the SDK's
// default environment), connects the SDK client and runs `use(client)`; resolves the server's
// stderr once the client has closed it.
async function withStdioServer({ args, cwd, env }, use) {
  const transport = new StdioClientTransport({ command: BIN, args, cwd, env, stderr: "pipe" });
  let stderr = "";
  transport.stderr?.on("data", (d) => (stderr += d));
  const client = new Client({ name: "1mcp-e2e-cli", version: "1.0.0" });
  try {
    await withTimeout(client.connect(transport), 20000, "stdio connect");
    await use(client);
  } finally {
    await client.close();
  }
  return stderr;
}

const runJsOk = async (client, code, stdout) => {
  const r = await client.callTool({ name: "run_js", arguments: { code } }, undefined, { timeout: 20000 });
  assert.equal(r.structuredContent?.stdout, stdout, show(r));
};

test("serve --stdio without a config, started in / as a desktop client would, runs on the defaults", async () => {
  const home = tempDir();
  const args = ["serve", "--stdio"];
  const stderr = await withStdioServer({ args, cwd: "/", env: { PATH: process.env.PATH, HOME: home } }, async (client) => {
    const { tools } = await client.listTools(undefined, { timeout: 5000 });
    const names = tools.map((t) => t.name);
    assert.ok(names.includes("run_js") && names.includes("run_py"), names.join(", "));
    await runJsOk(client, "console.log(6 * 7)", "42\n");
  });
  const state = path.join(home, ".local/state/1mcp");
  const said = stderr.split("\n").filter((l) => /built-in defaults/.test(l));
  assert.equal(said.length, 1, stderr);
  assert.ok(said[0].includes("/1mcp.config.json") && said[0].includes(`state in ${state}`), said[0]);
  assert.equal(fs.statSync(state).mode & 0o777, 0o700);
  assert.ok(fs.existsSync(path.join(state, ".1mcp/keys/capsule.key")), "the signing key is kept in the state directory");
  assert.ok(!fs.existsSync("/.1mcp"), "nothing written to the working directory /");
});

test("without --dir, a config named with --config anchors the project's paths, wherever the server starts", async () => {
  const dir = tempDir();
  fs.copyFileSync(configPath(makeProject()), configPath(dir)); // a config, no key yet
  const cwd = tempDir();
  const args = ["serve", "--stdio", "--config", configPath(dir)];
  const stderr = await withStdioServer({ args, cwd }, (client) => runJsOk(client, "console.log('here')", "here\n"));
  assert.ok(fs.existsSync(path.join(dir, ".1mcp/keys/capsule.key")), stderr);
  assert.deepEqual(fs.readdirSync(cwd), [], "nothing written where the server was started");
  assert.doesNotMatch(stderr, /built-in defaults/);
  // init with --config alone puts the key beside the config too, where serve looks for it.
  const other = tempDir();
  const cfg = path.join(other, "my.json");
  const r = spawnSync(BIN, ["init", "--config", cfg], { cwd, encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  assert.ok(fs.existsSync(path.join(other, ".1mcp/keys/capsule.key")), r.stderr);
  assert.deepEqual(fs.readdirSync(cwd), []);
});

test("--open with --no-ui (or --stdio) is refused before anything starts", () => {
  for (const [flag, why] of [["--no-ui", /--no-ui turns off/], ["--stdio", /--stdio does not serve/]]) {
    const r = runCli(["serve", "--dir", tempDir(), "-p", "0", "--open", flag]);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /1mcp serve: --open opens the web page/);
    assert.match(r.stderr, why);
  }
});

// Serves a fresh project with --open (and the web page) under `env`; resolves the server once
// `done(server)` holds (bounded).
async function serveWithOpen(env, done = (s) => s.stderr().includes("--open:")) {
  const s = await startServer({ ui: true, extra: ["--open"], env });
  servers.push(s);
  const deadline = Date.now() + 10000;
  while (!done(s) && Date.now() < deadline) await sleep(50);
  return s;
}

test("--open says when no browser can be started, with the URL", async () => {
  const bin = tempDir();
  const script = (name, body) => {
    fs.writeFileSync(path.join(bin, name), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
    return bin;
  };
  const base = { HOME: tempDir(), PATH: "/usr/bin:/bin" };
  // Not installed (an empty PATH).
  const none = await serveWithOpen({ ...base, PATH: tempDir(), DISPLAY: ":9" });
  assert.match(none.stderr(), new RegExp(`--open: cannot open a browser: xdg-open is not installed.*; open ${none.base}/ yourself`));
  // No graphical session.
  script("xdg-open", "exit 0");
  const headless = await serveWithOpen({ ...base, PATH: bin });
  assert.match(headless.stderr(), new RegExp(`no graphical session \\(DISPLAY and WAYLAND_DISPLAY are not set\\); open ${headless.base}/ yourself`));
  // xdg-open fails (as it does when it finds no browser).
  script("xdg-open", "echo 'xdg-open: no method available for opening' >&2; exit 3");
  const failing = await serveWithOpen({ ...base, PATH: bin, DISPLAY: ":9" });
  assert.match(failing.stderr(), new RegExp(`xdg-open failed with exit status 3; open ${failing.base}/ yourself`));
  // xdg-open works: it is given the page's URL, and nothing is said.
  const opened = path.join(tempDir(), "opened");
  script("xdg-open", `echo "$1" > ${opened}`);
  const ok = await serveWithOpen({ ...base, PATH: bin, DISPLAY: ":9" }, () => fs.existsSync(opened));
  assert.equal(fs.readFileSync(opened, "utf8"), `${ok.base}/\n`);
  assert.doesNotMatch(ok.stderr(), /--open/);
});

test("serve rejects policy.limits.timeoutMs: -5, naming the field", async () => {
  const dir = makeProject((cfg) => {
    cfg.policy.limits.timeoutMs = -5;
  });
  const { code, stderr } = await serveExpectingFailure(dir);
  assert.notEqual(code, 0);
  assert.match(stderr, /timeoutMs/);
  assert.doesNotMatch(stderr, /ready in/);
});

test("serve rejects an unknown field, naming it", async () => {
  const dir = makeProject((cfg) => {
    cfg.policy.limits.bogusLimit = 1;
  });
  const { code, stderr } = await serveExpectingFailure(dir);
  assert.notEqual(code, 0);
  assert.match(stderr, /bogusLimit/);

  const dir2 = makeProject((cfg) => {
    cfg.surpriseField = true;
  });
  const r2 = await serveExpectingFailure(dir2);
  assert.notEqual(r2.code, 0);
  assert.match(r2.stderr, /surpriseField/);
});

test("serve rejects a config that is not JSON", async () => {
  const dir = tempDir();
  fs.writeFileSync(configPath(dir), "{ this is not json");
  const { code, stderr } = await serveExpectingFailure(dir);
  assert.notEqual(code, 0);
  assert.match(stderr, /1mcp serve/);
});

test("limits from the config are applied to runs", async () => {
  const dir = makeProject((cfg) => {
    cfg.policy.limits = { ...cfg.policy.limits, stdoutBytes: 10 };
  });
  const s = await startServer({ dir });
  servers.push(s);
  const sess = await rawSession(s.url);
  const r = await sess.post({
    jsonrpc: "2.0",
    id: 1,
    method: "tools/call",
    params: { name: "run_py", arguments: { code: "print('0123456789abcdef')" } },
  });
  const sc = r.json.result.structuredContent;
  assert.equal(sc.outcome, "output_limit", r.text);
  assert.equal(sc.stdout, "0123456789");
  // A call can tighten the limits but not loosen them.
  const loose = await sess.post({
    jsonrpc: "2.0",
    id: 2,
    method: "tools/call",
    params: { name: "run_py", arguments: { code: "print('0123456789abcdef')", policy: { limits: { stdoutBytes: 1000 } } } },
  });
  const lsc = loose.json.result.structuredContent;
  assert.ok(loose.json.result.isError, loose.text);
  if (lsc) assert.ok(lsc.stdout.length <= 10, "a call cannot raise the server's limit");
});

test("--bind 127.0.0.2 -p 0 listens there and logs exactly that address", async () => {
  const s = await startServer({ extra: ["--bind", "127.0.0.2"] });
  servers.push(s);
  assert.equal(s.host, "127.0.0.2");
  assert.match(s.stderr(), /http:\/\/127\.0\.0\.2:\d+\/mcp/);
  const r = await request(`http://127.0.0.2:${s.port}/`);
  assert.equal(r.status, 200);
  assert.equal(r.json.status, "ok");
});

test("serve exits cleanly on SIGTERM", async () => {
  const s = await startServer();
  s.proc.kill("SIGTERM");
  const { code } = await waitExit(s.proc, 5000, "exit after SIGTERM");
  assert.equal(code, 0);
});
