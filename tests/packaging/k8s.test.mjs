// packaging/k8s/1mcp.yaml: every object valid against the Kubernetes schemas (kubernetes-models,
// pinned in package.json: Kubernetes' OpenAPI schemas compiled for ajv), its config valid
// against types/config.schema.json, and the parts that must agree with each other and with what
// the sandbox and the server need: privileged root, the probes on /health at the served port,
// the Service reaching the pods, the replica name from the pod's name.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { test } from "node:test";

import Ajv2020 from "ajv/dist/2020.js";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { Namespace } from "kubernetes-models/v1/Namespace";
import { Service } from "kubernetes-models/v1/Service";
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { parseAllDocuments } from "yaml";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const MODELS = { "v1/Namespace": Namespace, "v1/ConfigMap": ConfigMap, "v1/Service": Service, "apps/v1/Deployment": Deployment };

function load(file) {
  const docs = parseAllDocuments(fs.readFileSync(file, "utf8"));
  for (const d of docs) assert.deepEqual(d.errors, [], `${file}: YAML errors`);
  return docs.map((d) => d.toJS());
}

const objects = load(path.join(ROOT, "packaging/k8s/1mcp.yaml"));
const find = (kind) => objects.find((o) => o.kind === kind);

test("every object is valid against the Kubernetes schemas", () => {
  assert.deepEqual(objects.map((o) => o.kind).sort(), ["ConfigMap", "Deployment", "Namespace", "Service"]);
  for (const o of objects) {
    const Model = MODELS[`${o.apiVersion}/${o.kind}`];
    assert.ok(Model, `no schema for ${o.apiVersion} ${o.kind}`);
    assert.doesNotThrow(() => new Model(o).validate(), `${o.kind} ${o.metadata.name}`);
  }
  // The check has teeth: a wrong type and a missing required field are refused.
  const bad = structuredClone(find("Deployment"));
  bad.spec.template.spec.containers[0].securityContext.privileged = "yes";
  assert.throws(() => new Deployment(bad).validate(), /privileged must be boolean/);
  delete bad.spec.selector;
  assert.throws(() => new Deployment(bad).validate(), /selector/);
});

test("the config is valid against types/config.schema.json and needs a token on 0.0.0.0", () => {
  const schema = JSON.parse(fs.readFileSync(path.join(ROOT, "types/config.schema.json"), "utf8"));
  const ajv = new Ajv2020({ allErrors: true, strict: false });
  const validate = ajv.compile(schema);
  const config = JSON.parse(find("ConfigMap").data["1mcp.config.json"]);
  assert.ok(validate(config), JSON.stringify(validate.errors));
  assert.equal(validate({ ...config, server: { runSlots: "16" } }), false, "the schema check has teeth");
  // The server reads it as it is (ONEMCP_BIN: set by CTest).
  if (process.env.ONEMCP_BIN) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "1mcp-k8s-"));
    try {
      fs.writeFileSync(path.join(dir, "1mcp.config.json"), find("ConfigMap").data["1mcp.config.json"]);
      const r = spawnSync(process.env.ONEMCP_BIN, ["token", "list", "--dir", dir], { encoding: "utf8" });
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /^cluster\tsha256:0{12}/m);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  assert.equal(config.auth.tokens.length, 1);
  assert.match(config.auth.tokens[0].sha256, /^[0-9a-f]{64}$/);
  assert.ok(config.server.allowedHosts.includes("1mcp.1mcp.svc"), "the Service's name is an allowed Host");
});

test("the Deployment runs what the sandbox needs and the Service reaches it", () => {
  const ns = find("Namespace");
  assert.equal(ns.metadata.labels["pod-security.kubernetes.io/enforce"], "privileged");
  const dep = find("Deployment");
  const svc = find("Service");
  for (const o of [dep, svc, find("ConfigMap")]) assert.equal(o.metadata.namespace, ns.metadata.name);
  const pod = dep.spec.template;
  assert.deepEqual(dep.spec.selector.matchLabels, pod.metadata.labels);
  for (const [k, v] of Object.entries(svc.spec.selector)) assert.equal(pod.metadata.labels[k], v);
  const [c] = pod.spec.containers;
  // Root in the host's user namespace, a writable cgroupfs and an unmasked /proc: privileged.
  assert.equal(c.securityContext.privileged, true);
  assert.equal(c.securityContext.runAsUser, 0);
  assert.equal(pod.spec.hostUsers, undefined, "no user namespace of the pod's own (runs map host ids)");

  const arg = (flag) => c.args[c.args.indexOf(flag) + 1];
  assert.equal(c.args[0], "serve");
  const port = c.ports.find((p) => p.name === svc.spec.ports[0].targetPort);
  assert.ok(port, "the Service's targetPort names a container port");
  assert.equal(String(port.containerPort), arg("--port"));
  assert.equal(arg("--bind"), "0.0.0.0");
  assert.equal(arg("--replica"), "$(POD_NAME)");
  assert.equal(c.env.find((e) => e.name === "POD_NAME").valueFrom.fieldRef.fieldPath, "metadata.name");
  for (const probe of [c.readinessProbe, c.livenessProbe]) {
    assert.equal(probe.httpGet.path, "/health");
    assert.equal(probe.httpGet.port, port.name);
  }
  // The config file the server reads is the ConfigMap's, mounted where --config points.
  const configMount = c.volumeMounts.find((m) => arg("--config").startsWith(m.mountPath + "/"));
  const volume = pod.spec.volumes.find((v) => v.name === configMount.name);
  assert.equal(volume.configMap.name, find("ConfigMap").metadata.name);
  assert.ok(find("ConfigMap").data[path.basename(arg("--config"))]);
  // The project directory is writable (key, caches).
  const state = c.volumeMounts.find((m) => m.mountPath === arg("--dir"));
  assert.ok(state && !state.readOnly && pod.spec.volumes.find((v) => v.name === state.name).emptyDir);
  // SIGTERM drains for server.shutdownGraceMs plus the upstreams' 4 s before the kill.
  const grace = JSON.parse(find("ConfigMap").data["1mcp.config.json"]).server.shutdownGraceMs;
  assert.ok(pod.spec.terminationGracePeriodSeconds * 1000 > grace + 4000);
});
