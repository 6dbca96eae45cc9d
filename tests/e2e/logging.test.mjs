// Log messages (logging/setLevel, notifications/message) of the legacy era with the SDK client:
// an upstream MCP server that dies and comes back is told to the sessions that asked, at their
// level, and to no other.
import assert from "node:assert/strict";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { after, before, test } from "node:test";

import { FIXTURES, REPO_ROOT, connectHttp, eventually, makeProject, post, request, sleep, startServer } from "./lib.mjs";

const { LoggingMessageNotificationSchema } = await import(
  pathToFileURL(path.join(REPO_ROOT, "node_modules/@modelcontextprotocol/sdk/dist/esm/types.js")).href
);

let server;
const cleanups = [];

before(async () => {
  const dir = makeProject((cfg) => {
    cfg.mcps = [{ name: "flaky", transport: "stdio", command: "node", args: [path.join(FIXTURES, "stdio_server.mjs")] }];
    return cfg;
  });
  server = await startServer({ dir });
  cleanups.push(() => server.stop());
  await eventually(
    async () => (await request(`${server.base}/mcps`)).json.mcps.every((m) => m.status === "ready"),
    20000,
    "the upstream ready",
  );
});

after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

test("an upstream that dies and restarts is logged to the sessions that asked for messages", async () => {
  const listening = await connectHttp(server.url);
  cleanups.push(() => listening.close());
  const quiet = await connectHttp(server.url);
  cleanups.push(() => quiet.close());
  const heard = [];
  const unasked = [];
  listening.setNotificationHandler(LoggingMessageNotificationSchema, (n) => heard.push(n.params));
  quiet.setNotificationHandler(LoggingMessageNotificationSchema, (n) => unasked.push(n.params));
  await listening.setLoggingLevel("info");
  await assert.rejects(listening.setLoggingLevel("loud"), /level/);
  // The SDK opens its GET stream after initialize: give it a moment to be there.
  await sleep(300);

  // flaky.crash exits mid-call: the upstream dies, backs off and is started again.
  const crashed = await post(`${server.base}/mcps-rpc`, { mcp: "flaky", tool: "crash", params: {} });
  assert.notEqual(crashed.status, 200, crashed.text);
  const down = await eventually(
    () => heard.find((m) => m.logger === "upstream" && m.data.upstream === "flaky" && m.data.state !== "ready"),
    10000,
    "a message that flaky is down",
  );
  assert.equal(down.level, "warning");
  const back = await eventually(
    () => heard.find((m) => m.data.state === "ready" && m.data.restarts >= 1),
    20000,
    "a message that flaky is back",
  );
  assert.equal(back.level, "info");
  assert.ok(back.data.tools > 0);
  assert.deepEqual(unasked, [], "a session that never called logging/setLevel got messages");
});
