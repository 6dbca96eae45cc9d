// types/index.d.ts: up to date with the schemas, valid TypeScript under --strict, usable the way
// an agent uses it (fixtures/agent.ts), strict enough to refuse wrong calls (fixtures/bad_*.ts),
// and a correct type for every examples/*/1mcp.config.json.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const FIXTURES = path.join(ROOT, 'tests', 'types', 'fixtures');
const TSC = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
const INDEX = path.join(ROOT, 'types', 'index.d.ts');

// tsc --noEmit --strict over `files` (with the definitions themselves, never skipped).
function tsc(files) {
  assert.ok(fs.existsSync(TSC), `${TSC} is missing: run scripts/setup.sh (npm ci --ignore-scripts)`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'onemcp-tsc-'));
  try {
    const config = {
      compilerOptions: {
        strict: true,
        noEmit: true,
        target: 'es2022',
        lib: ['es2022'],
        module: 'esnext',
        moduleResolution: 'bundler',
        types: [],
      },
      files: [INDEX, ...files],
    };
    fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify(config));
    const r = spawnSync(process.execPath, [TSC, '-p', path.join(dir, 'tsconfig.json'), '--pretty', 'false'], {
      encoding: 'utf8',
      timeout: 120000,
    });
    return { status: r.status, output: `${r.stdout}${r.stderr}` };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('types/index.d.ts is what scripts/gen-types.mjs generates from the schemas', () => {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'gen-types.mjs'), '--check'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr || r.stdout);
});

test('the definitions, the agent fixture and every example config type-check under --strict', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'onemcp-examples-'));
  try {
    const examples = [];
    for (const name of fs.readdirSync(path.join(ROOT, 'examples'))) {
      const file = path.join(ROOT, 'examples', name, '1mcp.config.json');
      if (!fs.existsSync(file)) continue;
      const ts = path.join(dir, `${name}.ts`);
      const index = JSON.stringify(INDEX.replace(/\.d\.ts$/, ''));
      fs.writeFileSync(ts, `import type { Config } from ${index};\nexport const config: Config = ${fs.readFileSync(file, 'utf8')};\n`);
      examples.push(ts);
    }
    assert.ok(examples.length > 0, 'no examples/*/1mcp.config.json');
    const r = tsc([path.join(FIXTURES, 'agent.ts'), ...examples]);
    assert.equal(r.status, 0, r.output);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

// One tsc run for every negative fixture (modules do not affect each other); each must fail, with
// errors of the kind it names and in itself only.
const BAD = fs.readdirSync(FIXTURES).filter((f) => f.startsWith('bad_')).sort();
let badRun;
for (const name of BAD) {
  test(`${name} does not type-check`, () => {
    const file = path.join(FIXTURES, name);
    const expected = fs.readFileSync(file, 'utf8').match(/^\/\/ expect (TS\d+)/)?.[1];
    assert.ok(expected, `${name} must start with "// expect TSnnnn: why"`);
    badRun ??= tsc(BAD.map((f) => path.join(FIXTURES, f)));
    assert.notEqual(badRun.status, 0, badRun.output);
    const errors = badRun.output.split('\n').filter((l) => l.includes(`${name}(`));
    assert.ok(errors.length > 0, `${name} type-checked, but must not:\n${badRun.output}`);
    assert.ok(errors.every((l) => l.includes(`error ${expected}:`)), `${name}: expected ${expected}, got:\n${errors.join('\n')}`);
  });
}

test('every tsc error of the negative fixtures is in one of them', () => {
  badRun ??= tsc(BAD.map((f) => path.join(FIXTURES, f)));
  const errors = badRun.output.split('\n').filter((l) => l.includes('error TS'));
  assert.ok(errors.every((l) => BAD.some((name) => l.includes(`${name}(`))), badRun.output);
});
