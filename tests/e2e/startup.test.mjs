// Start-up checks: the server says which sandbox layers are active, and the development flag
// that turns them off is impossible to miss.
import assert from "node:assert/strict";
import { test } from "node:test";

import { connectHttp, runPy, show, startServer } from "./lib.mjs";

test("the start-up log names every active sandbox layer", async () => {
  const server = await startServer();
  try {
    const log = server.stderr();
    assert.match(log, /sandbox active: user, pid, mount, ipc, uts and net namespaces; read-only root; uid 1000 without capabilities; no_new_privs; seccomp; landlock ABI \d+; cgroup v[12]: memory, pids/);
    assert.doesNotMatch(log, /insecure/i);
  } finally {
    await server.stop();
  }
});

test("--insecure-no-sandbox is loud, and really runs without the sandbox", async () => {
  const server = await startServer({ extra: ["--insecure-no-sandbox"] });
  const client = await connectHttp(server.url);
  try {
    assert.match(server.stderr(), /\*\*\* --insecure-no-sandbox: runs are NOT isolated by the kernel/);
    assert.doesNotMatch(server.stderr(), /sandbox active/);
    const r = await runPy(client, "import os\nprint(os.getuid())");
    assert.equal(r.structuredContent.stdout, "0\n", show(r));
  } finally {
    await client.close().catch(() => {});
    await server.stop();
  }
});
