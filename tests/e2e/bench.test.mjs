// The benchmark scripts (bench/*.mjs) still run end to end against the real binary: each with
// the smallest counts, so this checks that they work and report, not what they measure.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import { BIN } from "./lib.mjs";

const REPO = fileURLToPath(new URL("../../", import.meta.url));

function runBench(script, args) {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [path.join(REPO, "bench", script), "--bin", BIN, ...args], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    p.stdout.setEncoding("utf8").on("data", (d) => (out += d));
    p.stderr.setEncoding("utf8").on("data", (d) => (err += d));
    p.on("exit", (code) => resolve({ code, out, err }));
  });
}

test("bench/run.mjs measures every phase and reports a table", { timeout: 180000 }, async () => {
  const r = await runBench("run.mjs", [
    "--starts", "1", "--calls", "3", "--warmup", "1", "--clients", "2", "--seconds", "0.5",
    "--max-calls", "10", "--overhead-calls", "2", "--block", "1", "--kill-runs", "1",
    "--kill-timeout", "200", "--bomb-runs", "1", "--bomb-timeout", "500",
  ]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^## 1mcp benchmark/m);
  for (const row of ["start → first HTTP 200", "run_js latency", "run_py throughput", "sandbox overhead",
    "kill latency", "fork bomb"]) {
    assert.ok(r.out.includes(row), `no "${row}" row in:\n${r.out}`);
  }
  assert.doesNotMatch(r.out, /failed\)/, r.out);
});

test("bench/fairness.mjs measures the three phases", { timeout: 180000 }, async () => {
  const r = await runBench("fairness.mjs", ["--calls", "3", "--warmup", "1", "--flood", "4", "--flood-ms", "300"]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /alone/, r.out);
  assert.match(r.out, /sleeping/, r.out);
  assert.match(r.out, /busy/, r.out);
});

test("bench/vs-original.mjs measures every phase (ours alone: the original is built only for benchmarks)", { timeout: 180000 }, async () => {
  const r = await runBench("vs-original.mjs", [
    "--only", "ours", "--calls", "2", "--block", "1", "--warmup", "1", "--seconds", "0.5", "--cpu-calls", "1", "--load", "1",
  ]);
  assert.equal(r.code, 0, r.err);
  for (const row of ["ready", "run_js trivial p50, quiet", "run_py unique p95, under 1 busy processes",
    "minor page faults per call", "CPU-bound", "correct answers/s, 32 in flight", "PSS of the process tree, idle"]) {
    assert.ok(r.out.includes(row), `no "${row}" row in:\n${r.out}`);
  }
  assert.doesNotMatch(r.out, /wrong or failed/, r.out);
});

test("bench/steps.mjs breaks a run down into its steps (serve --profile-runs)", { timeout: 120000 }, async () => {
  const r = await runBench("steps.mjs", ["--calls", "3", "--warmup", "1"]);
  assert.equal(r.code, 0, r.err);
  for (const step of ["supervisor: request sent", "zygote: forking", "run: namespaces", "run: /proc and tmpfs mounts",
    "run: pivot into the root", "run: writable paths", "run: pip set", "run: /mcps tree", "run: fds in place", "run: rlimits",
    "run: uid and no_new_privs", "run: Landlock", "run: seccomp", "run: go received", "run: code evaluated",
    "run: report written"]) {
    // A step that not every call had says in how many ("(2 of 3 calls)"): a call that found no
    // ready slot (the machine busy with other tests) makes its own.
    assert.match(r.out, new RegExp(`\\| ${step}( \\(ahead of the call\\))?( \\(\\d+ of \\d+ calls\\))? \\|`), `no "${step}" step`);
  }
});

test("bench/deps.mjs measures a cold and a cached dependency set", { timeout: 180000 }, async () => {
  const r = await runBench("deps.mjs", ["--calls", "2"]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /\|/, r.out);
});

test("bench/steps.mjs --mcps shows the /mcps tree mounted in every run", { timeout: 120000 }, async () => {
  const r = await runBench("steps.mjs", ["--calls", "2", "--warmup", "1", "--mcps", "5"]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /one upstream with 5 tools/);
  // Every run of both tools mounted its tree: the step is there without "(n of m calls)".
  assert.equal(r.out.match(/\| run: \/mcps tree \| \d+ \|/g)?.length, 2, r.out);
  // A Python slot entered its network namespace before its call (only Python runs have a relay).
  assert.equal(r.out.match(/\| run: network namespace \(ahead of the call\)( \(\d+ of \d+ calls\))? \|/g)?.length, 1, r.out);
});

test("bench/ab.mjs compares two servers call by call", { timeout: 120000 }, async () => {
  const r = await runBench("ab.mjs", ["--b", BIN, "--calls", "10", "--tools", "run_js", "--b-env", "ONEMCP_BENCH_SIDE=b"]);
  assert.equal(r.code, 0, r.err);
  for (const w of ["trivial `run_js`", "unique-code `run_js`"]) {
    assert.match(r.out, new RegExp(`\\| ${w} \\| [\\d.]+ / [\\d.]+ ms \\| [\\d.]+ / [\\d.]+ ms \\| [\\d.]+× \\|`), r.out);
  }
});

// perf for the running kernel is not on every machine (Debian's wrapper wants a matching version).
const perfWorks = spawnSync("perf", ["stat", "-e", "task-clock", "true"], { stdio: "ignore" }).status === 0;
test("bench/cpu.mjs counts CPU per call with perf stat", { timeout: 120000, skip: perfWorks ? false : "perf stat does not work here" }, async () => {
  const r = await runBench("cpu.mjs", ["--calls", "5"]);
  assert.equal(r.code, 0, r.err);
  for (const tool of ["run_js", "run_py"]) {
    assert.match(r.out, new RegExp(`\\| \`${tool}\` \\| [\\d.]+ ms \\| \\d+ \\| [\\d.]+ \\| [\\d.]+ ms \\|`), r.out);
  }
});
