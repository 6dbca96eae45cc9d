// Authentication of the HTTP surface against the real binary: static tokens made by
// `1mcp token create`, JWT access tokens of a loopback issuer made here (node:crypto keys, a JWK
// Set served over http://127.0.0.1 and written to a file), the protected resource metadata, the
// web page's cookie, sessions bound to their principal, and the refusal to listen beyond
// loopback without authentication. Everything stays on 127.0.0.1.
import assert from "node:assert/strict";
import crypto from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { after, before, describe, test } from "node:test";

import {
  Client,
  PROTOCOL,
  StreamableHTTPClientTransport,
  configPath,
  makeProject,
  post,
  readConfig,
  request,
  runCli,
  runJs,
  show,
  startServer,
  withTimeout,
  writeConfig,
} from "./lib.mjs";

const RESOURCE = "https://mcp.test.example/mcp";
const METADATA_URL = "https://mcp.test.example/.well-known/oauth-protected-resource/mcp";
const SCOPE = "mcp:run";

// ---------------------------------------------------------------------------------------------
// A loopback issuer: key pairs, their JWK Set, and tokens signed with them.

const b64url = (x) => Buffer.from(x).toString("base64url");

function makeIssuer() {
  const keys = {
    rsa: crypto.generateKeyPairSync("rsa", { modulusLength: 2048 }),
    ec: crypto.generateKeyPairSync("ec", { namedCurve: "P-256" }),
    ed: crypto.generateKeyPairSync("ed25519"),
  };
  const jwks = {
    keys: Object.entries(keys).map(([kid, k]) => ({ ...k.publicKey.export({ format: "jwk" }), kid, use: "sig" })),
  };
  return { keys, jwks };
}

const ALGS = { rsa: "RS256", ec: "ES256", ed: "EdDSA", "rsa-pss": "PS256" };

// A JWT signed by `issuer`'s key `kid` ("rsa", "ec", "ed"; "rsa-pss" signs PS256 with the RSA key).
function mint(issuer, iss, { kid = "ed", claims = {}, header = {}, key } = {}) {
  const now = Math.floor(Date.now() / 1000);
  const alg = ALGS[kid];
  const keyId = kid === "rsa-pss" ? "rsa" : kid;
  const h = { alg, kid: keyId, typ: "at+jwt", ...header };
  const c = { iss, aud: RESOURCE, sub: "alice", iat: now, exp: now + 600, scope: SCOPE, ...claims };
  const input = `${b64url(JSON.stringify(h))}.${b64url(JSON.stringify(c))}`;
  const privateKey = key ?? issuer.keys[keyId].privateKey;
  let sig;
  if (alg === "RS256") sig = crypto.sign("sha256", Buffer.from(input), privateKey);
  if (alg === "PS256") {
    sig = crypto.sign("sha256", Buffer.from(input), {
      key: privateKey,
      padding: crypto.constants.RSA_PKCS1_PSS_PADDING,
      saltLength: crypto.constants.RSA_PSS_SALTLEN_DIGEST,
    });
  }
  if (alg === "ES256") sig = crypto.sign("sha256", Buffer.from(input), { key: privateKey, dsaEncoding: "ieee-p1363" });
  if (alg === "EdDSA") sig = crypto.sign(null, Buffer.from(input), privateKey);
  return `${input}.${b64url(sig)}`;
}

// Serves the issuer's JWK Set at http://127.0.0.1:<port>/jwks; counts the fetches.
async function serveJwks(jwks) {
  const served = { fetches: 0 };
  const server = http.createServer((req, res) => {
    if (req.url !== "/jwks") {
      res.writeHead(404).end();
      return;
    }
    served.fetches++;
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(jwks));
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  served.url = `http://127.0.0.1:${server.address().port}`;
  served.close = () => new Promise((resolve) => server.close(resolve));
  return served;
}

// ---------------------------------------------------------------------------------------------
// Helpers

const bearer = (token) => ({ authorization: `Bearer ${token}` });

const INITIALIZE = {
  jsonrpc: "2.0",
  id: 1,
  method: "initialize",
  params: { protocolVersion: PROTOCOL, capabilities: {}, clientInfo: { name: "auth-e2e", version: "1" } },
};

// `1mcp token create` in `dir`: resolves { token, stdout, stderr }.
function createToken(dir, name) {
  const r = runCli(["token", "create", "--dir", dir, ...(name ? ["--name", name] : [])]);
  assert.equal(r.status, 0, r.stderr);
  return { token: r.stdout.trim(), stdout: r.stdout, stderr: r.stderr };
}

async function connectWith(url, token) {
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit: { headers: bearer(token) },
  });
  const client = new Client({ name: "1mcp-auth-e2e", version: "1.0.0" });
  await withTimeout(client.connect(transport), 10000, "MCP connect");
  return client;
}

// Every route, with a request the route would accept from an authenticated client.
const routes = (base) => [
  ["GET", `${base}/`],
  ["POST", `${base}/mcp`, INITIALIZE],
  ["GET", `${base}/mcp`],
  ["DELETE", `${base}/mcp`],
  ["GET", `${base}/mcps`],
  ["GET", `${base}/mcps/fs/tools`],
  ["GET", `${base}/mcps/types.d.ts`],
  ["POST", `${base}/mcps-rpc`, { mcp: "fs", tool: "x", params: {} }],
  ["GET", `${base}/capsules/${"a".repeat(64)}/manifest.json`],
  ["GET", `${base}/types`],
  ["GET", `${base}/types/index.d.ts`],
  ["GET", `${base}/runs`],
  ["GET", `${base}/policy`],
  ["POST", `${base}/workspace/list`, { session: "ses_x" }],
  ["POST", `${base}/workspace/read`, { session: "ses_x", path: "a" }],
];

function send(method, url, body, headers = {}) {
  return request(url, {
    method,
    redirect: "manual",
    headers: {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      ...headers,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

// ---------------------------------------------------------------------------------------------

describe("static tokens and OAuth (JWK Set over http://127.0.0.1)", () => {
  let issuer, jwksServer, dir, server, alice, bob;

  before(async () => {
    issuer = makeIssuer();
    jwksServer = await serveJwks(issuer.jwks);
    dir = makeProject();
    alice = createToken(dir, "alice").token;
    bob = createToken(dir, "bob").token;
    const cfg = readConfig(dir);
    cfg.auth.oauth = {
      issuer: jwksServer.url,
      resource: RESOURCE,
      jwksUrl: `${jwksServer.url}/jwks`,
      requiredScopes: [SCOPE],
    };
    writeConfig(dir, cfg);
    server = await startServer({ dir, ui: true });
  });

  after(async () => {
    await server?.stop();
    await jwksServer?.close();
  });

  test("the JWK Set was fetched from the loopback URL at start", () => {
    assert.ok(jwksServer.fetches >= 1);
    assert.match(server.stderr(), /authentication on: .*\/\?token=<token>/);
    assert.ok(server.stderr().includes(`protected resource metadata at ${METADATA_URL}`), server.stderr());
  });

  test("every route answers 401 without a token, naming the metadata", async () => {
    for (const [method, url, body] of routes(server.base)) {
      const r = await send(method, url, body);
      assert.equal(r.status, 401, `${method} ${url}: ${r.text}`);
      assert.equal(
        r.headers.get("www-authenticate"),
        `Bearer scope="${SCOPE}", resource_metadata="${METADATA_URL}"`,
        `${method} ${url}`,
      );
    }
  });

  test("every route answers 401 to bad tokens, with error=\"invalid_token\"", async () => {
    const stranger = crypto.generateKeyPairSync("ed25519").privateKey;
    const bad = {
      "unknown static token": "1mcp_" + "A".repeat(43),
      "a static token's digest": crypto.createHash("sha256").update(alice).digest("hex"),
      expired: mint(issuer, jwksServer.url, { claims: { exp: Math.floor(Date.now() / 1000) - 3600 } }),
      "another issuer": mint(issuer, "https://evil.example.com"),
      "another audience": mint(issuer, jwksServer.url, { claims: { aud: "https://other.example/mcp" } }),
      "signed by a stranger's key": mint(issuer, jwksServer.url, { key: stranger }),
      "alg none": `${b64url(JSON.stringify({ alg: "none", kid: "ed" }))}.${b64url(
        JSON.stringify({ iss: jwksServer.url, aud: RESOURCE, sub: "x", exp: 2e9, scope: SCOPE }),
      )}.`,
    };
    for (const [what, token] of Object.entries(bad)) {
      for (const [method, url, body] of routes(server.base)) {
        const r = await send(method, url, body, bearer(token));
        assert.equal(r.status, 401, `${what}: ${method} ${url}: ${r.text}`);
        const challenge = r.headers.get("www-authenticate");
        assert.match(challenge, /^Bearer error="invalid_token", error_description="[^"]+", /, `${what}: ${challenge}`);
        assert.ok(challenge.endsWith(`resource_metadata="${METADATA_URL}"`), challenge);
        assert.ok(!r.text.includes(token), "the token is not repeated");
      }
    }
    assert.ok(!server.stderr().includes(alice), "no token in the log");
  });

  test("/health and the protected resource metadata need no token", async () => {
    const health = await request(`${server.base}/health`);
    assert.equal(health.status, 200);
    for (const p of ["/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"]) {
      const r = await request(server.base + p);
      assert.equal(r.status, 200, p);
      assert.deepEqual(r.json, {
        resource: RESOURCE,
        authorization_servers: [jwksServer.url],
        scopes_supported: [SCOPE],
        bearer_methods_supported: ["header"],
        resource_name: "1mcp",
      });
    }
  });

  test("the SDK client runs run_js with a JWT of each algorithm", async () => {
    for (const kid of ["ed", "ec", "rsa", "rsa-pss"]) {
      const client = await connectWith(server.url, mint(issuer, jwksServer.url, { kid }));
      try {
        const r = await runJs(client, "console.log(6 * 7)");
        assert.equal(r.structuredContent?.stdout, "42\n", `${kid}: ${show(r)}`);
      } finally {
        await client.close();
      }
    }
  });

  test("the SDK client runs run_js with a token of `1mcp token create`", async () => {
    const client = await connectWith(server.url, alice);
    try {
      const r = await runJs(client, "console.log('hi')");
      assert.equal(r.structuredContent?.stdout, "hi\n", show(r));
    } finally {
      await client.close();
    }
  });

  test("a valid JWT without the required scope gets 403 insufficient_scope", async () => {
    const token = mint(issuer, jwksServer.url, { claims: { scope: "other" } });
    const r = await post(server.url, INITIALIZE, bearer(token));
    assert.equal(r.status, 403, r.text);
    assert.equal(
      r.headers.get("www-authenticate"),
      `Bearer error="insufficient_scope", error_description="the token lacks a required scope", ` +
        `scope="${SCOPE}", resource_metadata="${METADATA_URL}"`,
    );
    const scp = mint(issuer, jwksServer.url, { claims: { scope: undefined, scp: [SCOPE] } });
    assert.equal((await post(server.url, INITIALIZE, bearer(scp))).status, 200);
  });

  test("a session belongs to the principal that created it", async () => {
    const init = await post(server.url, INITIALIZE, bearer(alice));
    assert.equal(init.status, 200, init.text);
    const sid = init.headers.get("mcp-session-id");
    const session = { "mcp-session-id": sid, "mcp-protocol-version": PROTOCOL };
    const ping = { jsonrpc: "2.0", id: 2, method: "ping" };
    for (const other of [bob, mint(issuer, jwksServer.url, { claims: { sub: "alice" } })]) {
      const r = await post(server.url, ping, { ...session, ...bearer(other) });
      assert.equal(r.status, 404, r.text);
      assert.equal(r.json.error.message, "Session not found");
      const sse = await send("GET", server.url, undefined, { ...session, ...bearer(other), accept: "text/event-stream" });
      assert.equal(sse.status, 404);
      const del = await send("DELETE", server.url, undefined, { ...session, ...bearer(other) });
      assert.equal(del.status, 404);
    }
    const mine = await post(server.url, ping, { ...session, ...bearer(alice) });
    assert.equal(mine.status, 200, mine.text);
    assert.equal((await send("DELETE", server.url, undefined, { ...session, ...bearer(alice) })).status, 200);
  });

  test("the web page: ?token= once, then the cookie", async () => {
    assert.equal((await request(`${server.base}/`)).status, 401);
    const bad = await request(`${server.base}/?token=1mcp_nope`, { redirect: "manual" });
    assert.equal(bad.status, 401);
    assert.equal(bad.headers.get("set-cookie"), null);

    const login = await request(`${server.base}/?token=${alice}`, { redirect: "manual" });
    assert.equal(login.status, 303);
    assert.equal(login.headers.get("location"), "/");
    const setCookie = login.headers.get("set-cookie");
    assert.equal(setCookie, `1mcp_token=${alice}; Path=/; HttpOnly; SameSite=Strict`);
    const cookie = { cookie: setCookie.split(";")[0] };

    const page = await request(`${server.base}/`, { headers: cookie });
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-type"), /^text\/html/);
    // The page's script needs the cookie too, and its own fetch("/mcp", ...) calls send it.
    assert.match(page.text, /<script type="module" src="\/ui\/app.js"><\/script>/);
    assert.equal((await request(`${server.base}/ui/app.js`)).status, 401);
    const script = await request(`${server.base}/ui/app.js`, { headers: cookie });
    assert.equal(script.status, 200);
    assert.match(script.text, /fetch\("\/mcp",\{[^}]*credentials:"same-origin"/);
    const init = await post(server.url, INITIALIZE, cookie);
    assert.equal(init.status, 200, init.text);
    const types = await request(`${server.base}/types`, { headers: cookie });
    assert.equal(types.status, 200);
    // Sessions see the cookie's principal, the static token's.
    const sid = init.headers.get("mcp-session-id");
    const ping = { jsonrpc: "2.0", id: 3, method: "ping" };
    assert.equal((await post(server.url, ping, { "mcp-session-id": sid, ...bearer(alice) })).status, 200);
    assert.equal((await post(server.url, ping, { "mcp-session-id": sid, ...bearer(bob) })).status, 404);
  });

  test("a revoked token is refused after SIGHUP", async () => {
    const before = await post(server.url, INITIALIZE, bearer(bob));
    assert.equal(before.status, 200);
    const r = runCli(["token", "revoke", "bob", "--dir", dir]);
    assert.equal(r.status, 0, r.stderr);
    const reloads = server.stderr().split("config reloaded from").length;
    server.proc.kill("SIGHUP");
    await withTimeout(
      (async () => {
        while (server.stderr().split("config reloaded from").length === reloads) {
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      })(),
      10000,
      "config reload",
    );
    assert.equal((await post(server.url, INITIALIZE, bearer(bob))).status, 401);
    assert.equal((await post(server.url, INITIALIZE, bearer(alice))).status, 200);
  });
});

describe("OAuth with the JWK Set in a file", () => {
  let issuer, dir, server;
  const iss = "http://127.0.0.1:1/issuer";

  before(async () => {
    issuer = makeIssuer();
    dir = makeProject((cfg) => {
      cfg.auth = { oauth: { issuer: iss, resource: RESOURCE, jwksFile: "issuer/jwks.json" } };
    });
    fs.mkdirSync(path.join(dir, "issuer"));
    fs.writeFileSync(path.join(dir, "issuer/jwks.json"), JSON.stringify(issuer.jwks));
    server = await startServer({ dir });
  });

  after(() => server?.stop());

  test("JWTs verified with the file's keys; no scopes required", async () => {
    for (const kid of ["ec", "ed", "rsa"]) {
      const r = await post(server.url, INITIALIZE, bearer(mint(issuer, iss, { kid, claims: { scope: undefined } })));
      assert.equal(r.status, 200, `${kid}: ${r.text}`);
    }
    const none = await post(server.url, INITIALIZE);
    assert.equal(none.status, 401);
    assert.equal(none.headers.get("www-authenticate"), `Bearer resource_metadata="${METADATA_URL}"`);
    const other = makeIssuer();
    const r = await post(server.url, INITIALIZE, bearer(mint(other, iss, { kid: "ec" })));
    assert.equal(r.status, 401);
  });

  test("a missing key file refuses to start", () => {
    const d = makeProject((cfg) => {
      cfg.auth = { oauth: { issuer: iss, resource: RESOURCE, jwksFile: "missing.json" } };
    });
    const r = runCli(["serve", "--dir", d, "-p", "0", "--no-ui"]);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /auth\.oauth\.jwksFile: .*missing\.json/);
  });
});

describe("1mcp token create", () => {
  test("prints the token once and stores only its digest, keeping the key order", () => {
    const dir = makeProject();
    const before = fs.readFileSync(configPath(dir), "utf8");
    const { token, stdout, stderr } = createToken(dir);
    assert.match(token, /^1mcp_[A-Za-z0-9_-]{43}$/);
    assert.equal(stdout, token + "\n", "nothing else on stdout");
    assert.match(stderr, /added token "token-1" to auth\.tokens of .*1mcp\.config\.json/);
    assert.match(stderr, /cannot be shown again/);
    const text = fs.readFileSync(configPath(dir), "utf8");
    assert.ok(!text.includes(token), "the token itself is not stored");
    const cfg = JSON.parse(text);
    assert.deepEqual(Object.keys(cfg), Object.keys(JSON.parse(before)));
    assert.deepEqual(cfg.auth.tokens, [
      { name: "token-1", sha256: crypto.createHash("sha256").update(token).digest("hex") },
    ]);
    const second = createToken(dir);
    assert.notEqual(second.token, token);
    assert.deepEqual(readConfig(dir).auth.tokens.map((t) => t.name), ["token-1", "token-2"]);

    const dup = runCli(["token", "create", "--dir", dir, "--name", "TOKEN-1"]);
    assert.equal(dup.status, 2);
    assert.match(dup.stderr, /already has a token named/);
    assert.equal(dup.stdout, "");
    const list = runCli(["token", "list", "--dir", dir]);
    assert.equal(list.status, 0);
    assert.match(list.stdout, /^token-1\tsha256:[0-9a-f]{12}…\ntoken-2\t/);
  });

  test("refuses a missing or invalid config and leaves it alone", () => {
    const dir = makeProject();
    const missing = runCli(["token", "create", "--dir", dir, "-c", "nope.json"]);
    assert.notEqual(missing.status, 0);
    assert.equal(missing.stdout, "");
    assert.match(missing.stderr, /nope\.json.*\n.*1mcp init/);
    const file = configPath(dir);
    fs.writeFileSync(file, '{"policy": {"limits": {"timeoutMs": -1}}}\n');
    const invalid = runCli(["token", "create", "--dir", dir]);
    assert.notEqual(invalid.status, 0);
    assert.equal(invalid.stdout, "");
    assert.match(invalid.stderr, /timeoutMs/);
    assert.equal(fs.readFileSync(file, "utf8"), '{"policy": {"limits": {"timeoutMs": -1}}}\n');
  });

  test("a token it made opens the server", async () => {
    const dir = makeProject();
    const { token } = createToken(dir, "ci");
    const server = await startServer({ dir });
    try {
      assert.equal((await post(server.url, INITIALIZE)).status, 401);
      const ok = await post(server.url, INITIALIZE, bearer(token));
      assert.equal(ok.status, 200, ok.text);
      const challenge = (await post(server.url, INITIALIZE, bearer(token + "x"))).headers.get("www-authenticate");
      assert.equal(challenge, 'Bearer realm="1mcp", error="invalid_token", error_description="the token is not valid"');
    } finally {
      await server.stop();
    }
  });
});

describe("binding beyond loopback", () => {
  for (const bind of ["0.0.0.0", "::", "192.0.2.1"]) {
    test(`--bind ${bind} without authentication refuses to start, before listening`, async () => {
      const dir = makeProject();
      const r = runCli(["serve", "--dir", dir, "-p", "0", "--no-ui", "--bind", bind]);
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, new RegExp(`refusing to listen on ${bind.replace(/\./g, "\\.")} without authentication`));
      assert.match(r.stderr, /1mcp token create/);
      assert.match(r.stderr, /auth\.oauth/);
      assert.doesNotMatch(r.stderr, /ready in/);
    });
  }

  test("loopback binds need no authentication", async () => {
    const server = await startServer({ extra: ["--bind", "127.0.0.1"] });
    try {
      assert.equal((await post(server.url, INITIALIZE)).status, 200);
    } finally {
      await server.stop();
    }
  });
});
