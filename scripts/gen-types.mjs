#!/usr/bin/env node
// Generates types/index.d.ts, the TypeScript definitions of 1mcp, from the JSON Schemas in
// types/ (the schemas are the source of truth: the server validates against them). No
// dependencies: Node's standard library only.
//
//   node scripts/gen-types.mjs          rewrite types/index.d.ts
//   node scripts/gen-types.mjs --check  exit 1 if types/index.d.ts differs from a fresh generation
//
// Every types/*.schema.json must be listed in SOURCES. Objects named in `names` (by JSON pointer
// inside the schema) become exported interfaces or types; everything else is written inline, so
// a new field in a schema needs no change here. $defs entries are always named (PascalCase of
// their key unless `names` says otherwise). allOf rules "if P is V then require R and forbid F"
// turn an object into a union, one member per value of P.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const TYPES = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'types');
const OUT = path.join(TYPES, 'index.d.ts');

const PARTIAL_POLICY = {
  '/properties/policy': 'PartialPolicy',
  '/properties/policy/properties/network': 'PartialNetworkPolicy',
  '/properties/policy/properties/filesystem': 'PartialFilesystemPolicy',
  '/properties/policy/properties/limits': 'PartialLimits',
};

const SOURCES = [
  {
    file: 'config.schema.json',
    name: 'Config',
    names: {
      '/properties/npm': 'NpmConfig',
      '/properties/pip': 'PipConfig',
      '/properties/policy': 'Policy',
      '/properties/policy/properties/network': 'NetworkPolicy',
      '/properties/policy/properties/filesystem': 'FilesystemPolicy',
      '/properties/policy/properties/limits': 'Limits',
      '/properties/mounts/items': 'Mount',
      '/$defs/upstream': 'UpstreamConfig',
      '/properties/auth': 'AuthConfig',
      '/properties/auth/properties/tokens/items': 'TokenConfig',
      '/properties/auth/properties/oauth': 'OAuthConfig',
    },
  },
  {
    file: 'run_js.input.schema.json',
    name: 'RunJsParams',
    names: { ...PARTIAL_POLICY, '/properties/npm': 'NpmParams' },
  },
  {
    file: 'run_py.input.schema.json',
    name: 'RunPyParams',
    names: { ...PARTIAL_POLICY, '/properties/pip': 'PipParams' },
  },
  {
    file: 'run.output.schema.json',
    name: 'RunResult',
    names: { '/properties/outcome': 'Outcome', '/properties/files/items': 'OutFile' },
  },
  {
    file: 'capsule.manifest.schema.json',
    name: 'CapsuleManifest',
    names: {
      '/properties/runtime': 'CapsuleRuntime',
      '/properties/entry': 'CapsuleEntry',
      '/properties/layers/items': 'CapsuleLayer',
      '/properties/signature': 'CapsuleSignature',
    },
  },
  { file: 'events.schema.json', name: 'ServerNotification', names: {} },
];

class SchemaError extends Error {}

function pascal(key) {
  return key.replace(/(^|[^A-Za-z0-9])([A-Za-z0-9])/g, (_, __, c) => c.toUpperCase());
}

function pointer(root, ptr) {
  let node = root;
  for (const raw of ptr.split('/').slice(1)) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (node === null || typeof node !== 'object' || !(key in node)) return undefined;
    node = node[key];
  }
  return node;
}

// Words of `text` in lines of at most `width` characters (a longer word stays whole).
function wrap(text, width) {
  const lines = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  if (line) lines.push(line);
  return lines;
}

function doc(schema, indent) {
  const lines = [];
  if (schema.description) lines.push(...wrap(schema.description, 96 - indent.length));
  if (schema.default !== undefined) lines.push(`@default ${JSON.stringify(schema.default)}`);
  if (lines.length === 0) return '';
  const body = lines.map((l) => l.replace(/\*\//g, '*\\/'));
  if (body.length === 1) return `${indent}/** ${body[0]} */\n`;
  return `${indent}/**\n${body.map((l) => `${indent} * ${l}`.trimEnd()).join('\n')}\n${indent} */\n`;
}

function key(name) {
  return /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(name) ? name : JSON.stringify(name);
}

function union(parts) {
  const unique = [...new Set(parts)];
  return unique.length ? unique.join(' | ') : 'never';
}

// One schema file → declarations, added to `decls` (name → text) in the order first met.
function generate(source, decls) {
  const root = JSON.parse(fs.readFileSync(path.join(TYPES, source.file), 'utf8'));
  const names = { '': source.name, ...source.names };
  for (const k of Object.keys(root.$defs ?? {})) names[`/$defs/${k}`] ??= pascal(k);
  for (const ptr of Object.keys(names)) {
    if (pointer(root, ptr) === undefined) {
      throw new SchemaError(`${source.file}: ${ptr} (named ${names[ptr]}) does not exist`);
    }
  }

  const declare = (ptr) => {
    const name = names[ptr];
    const schema = pointer(root, ptr);
    if (decls.has(name) && decls.get(name).from === `${source.file}#${ptr}`) return name;
    const slot = { from: `${source.file}#${ptr}`, text: '' };
    const previous = decls.get(name);
    if (!previous) decls.set(name, slot);
    const isInterface = isObject(schema) && !schema.oneOf && !schema.anyOf && schema.properties &&
      !(schema.allOf ?? []).some((c) => c.if !== undefined);
    const head = doc(schema, '');
    const text = isInterface
      ? `${head}export interface ${name} ${objectType(schema, ptr, '')}\n`
      : `${head}export type ${name} = ${type(schema, ptr, '', true)};\n`;
    if (previous && previous.text !== text) {
      throw new SchemaError(
        `${name} is generated from ${previous.from} and ${slot.from}, which differ: make them identical or name them apart`);
    }
    if (!previous) slot.text = text;
    return name;
  };

  const isObject = (s) => s.type === 'object' || s.properties !== undefined;

  // An object whose allOf holds rules "if P is V then require R and forbid F" (the upstream
  // transports) becomes a union with one member per value of P: P narrowed to V, R required, F
  // gone. Null when `s` has no such rules.
  const conditionalVariants = (s, ptr) => {
    const rules = (s.allOf ?? []).filter((c) => c.if !== undefined);
    if (!isObject(s) || !s.properties || rules.length === 0) return null;
    const variants = [];
    const covered = new Set();
    let discriminant;
    for (const rule of rules) {
      const conditions = Object.entries(rule.if.properties ?? {});
      const [p, condition] = conditions[0] ?? [];
      if (conditions.length !== 1 || condition.const === undefined || (discriminant ?? p) !== p ||
          rule.else !== undefined || !s.properties[p]) {
        throw new SchemaError(`${source.file}${ptr}: only allOf rules "if <one property> is <const> then ..." are supported`);
      }
      discriminant = p;
      covered.add(JSON.stringify(condition.const));
      const properties = { ...s.properties };
      const { enum: _, ...base } = s.properties[p];
      properties[p] = { ...base, const: condition.const };
      for (const [k, sub] of Object.entries(rule.then.properties ?? {})) {
        if (sub.not !== undefined && Object.keys(sub.not).length === 0) delete properties[k];
      }
      const required = [...new Set([...(s.required ?? []), p, ...(rule.then.required ?? [])])];
      variants.push({ ...s, allOf: undefined, properties, required });
    }
    const rest = (s.properties[discriminant].enum ?? []).filter((v) => !covered.has(JSON.stringify(v)));
    if (rest.length > 0) {
      const { allOf: _, ...base } = s;
      variants.push({ ...base, properties: { ...s.properties, [discriminant]: { ...s.properties[discriminant], enum: rest } } });
    }
    return variants;
  };

  const objectType = (s, ptr, indent) => {
    const inner = `${indent}  `;
    let out = '{\n';
    const required = new Set(s.required ?? []);
    for (const [k, sub] of Object.entries(s.properties ?? {})) {
      const t = type(sub, `${ptr}/properties/${k}`, inner);
      out += doc(sub, inner) + `${inner}${key(k)}${required.has(k) ? '' : '?'}: ${t};\n`;
    }
    if (!s.properties || Object.keys(s.properties).length === 0) {
      const ap = s.additionalProperties;
      if (ap === false) return 'Record<string, never>';
      const value = ap === undefined || ap === true ? 'unknown' : type(ap, `${ptr}/additionalProperties`, inner);
      if (ap && typeof ap === 'object') out += doc(ap, inner);
      out += `${inner}[key: string]: ${value};\n`;
    }
    return `${out}${indent}}`;
  };

  // The TypeScript type of `s` at `ptr`; `here` is true for the schema being declared.
  const type = (s, ptr, indent, here = false) => {
    if (!here && names[ptr] !== undefined) return declare(ptr);
    if (s === true) return 'unknown';
    if (s === false) return 'never';
    if (s.$ref !== undefined) {
      if (!s.$ref.startsWith('#/')) throw new SchemaError(`${source.file}${ptr}: only local $ref is supported`);
      const target = s.$ref.slice(1);
      if (names[target] === undefined) throw new SchemaError(`${source.file}${ptr}: $ref ${s.$ref} is not under $defs`);
      return declare(target);
    }
    if (s.const !== undefined) return JSON.stringify(s.const);
    if (s.enum !== undefined) return union(s.enum.map((v) => JSON.stringify(v)));
    for (const k of ['oneOf', 'anyOf']) {
      if (s[k]) return union(s[k].map((sub, i) => type(sub, `${ptr}/${k}/${i}`, indent)));
    }
    if (s.not !== undefined && Object.keys(s.not).length === 0 && s.type === undefined) return 'never';
    const variants = conditionalVariants(s, ptr);
    if (variants) return union(variants.map((v) => objectType(v, ptr, indent)));
    const types = Array.isArray(s.type) ? s.type : s.type !== undefined ? [s.type] : [];
    if (types.length === 0 && s.properties) types.push('object');
    if (types.length === 0) return 'unknown';
    return union(types.map((t) => {
      switch (t) {
        case 'string': return 'string';
        case 'integer':
        case 'number': return 'number';
        case 'boolean': return 'boolean';
        case 'null': return 'null';
        case 'object': return objectType(s, ptr, indent);
        case 'array': {
          const item = s.items === undefined ? 'unknown' : type(s.items, `${ptr}/items`, indent);
          return item.includes('|') || item.includes('&') ? `(${item})[]` : `${item}[]`;
        }
        default: throw new SchemaError(`${source.file}${ptr}: unknown type ${t}`);
      }
    }));
  };

  declare('');
  for (const ptr of Object.keys(names)) declare(ptr);
}

export function generateAll() {
  const onDisk = fs.readdirSync(TYPES).filter((f) => f.endsWith('.schema.json')).sort();
  const listed = SOURCES.map((s) => s.file).sort();
  const missing = onDisk.filter((f) => !listed.includes(f));
  if (missing.length) throw new SchemaError(`not listed in SOURCES of scripts/gen-types.mjs: ${missing.join(', ')}`);
  const decls = new Map();
  for (const source of SOURCES) generate(source, decls);
  const header =
    '// TypeScript definitions of 1mcp: the config file (Config), the run_js/run_py arguments\n' +
    '// (RunJsParams, RunPyParams), their result (RunResult, the structuredContent of tools/call),\n' +
    '// the capsule manifest (CapsuleManifest) and the notifications the server sends\n' +
    '// (ServerNotification).\n' +
    '//\n' +
    '// Generated by scripts/gen-types.mjs from types/*.schema.json. Do not edit: edit the schemas,\n' +
    '// then run `node scripts/gen-types.mjs`.\n';
  return `${header}\n${[...decls.values()].map((d) => d.text).join('\n')}`;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    const text = generateAll();
    if (process.argv.includes('--check')) {
      const current = fs.existsSync(OUT) ? fs.readFileSync(OUT, 'utf8') : '';
      if (current !== text) {
        console.error('types/index.d.ts is out of date with types/*.schema.json: run `node scripts/gen-types.mjs`');
        process.exit(1);
      }
    } else {
      fs.writeFileSync(OUT, text);
    }
  } catch (e) {
    if (!(e instanceof SchemaError)) throw e;
    console.error(`gen-types: ${e.message}`);
    process.exit(2);
  }
}
