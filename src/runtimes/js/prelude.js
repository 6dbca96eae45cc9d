// Prelude of 1mcp-js-worker: console (Node-style util.inspect formatting), timers, process,
// fetch (over the network broker channel) with URL, Headers, Request, Response and
// AbortController, `mcp` (upstream MCP tools, over the same channel), crypto (random values, and
// crypto.subtle's digests and HMAC on the host's libcrypto), Node's fs (synchronous, callback
// and promise forms, on the run's own system calls) behind require() and import, and the
// polyfills QuickJS 2021-03-27 lacks. Evaluated once in the zygote, so every run starts from it
// for free. `host` is the bridge to C (write, now, enqueueJob, ...): captured by this closure and
// never reachable from user code. Returns the hooks the C side drives the run with.
(function (host) {
  'use strict';

  const define = (obj, name, value) =>
    Object.defineProperty(obj, name, { value, writable: true, configurable: true, enumerable: false });

  // Brand checks that do not trust Symbol.toStringTag (user objects can fake it).
  const getter = (proto, name) => Object.getOwnPropertyDescriptor(proto, name).get;
  const mapSize = getter(Map.prototype, 'size');
  const setSize = getter(Set.prototype, 'size');
  const typedArrayProto = Object.getPrototypeOf(Uint8Array.prototype);
  const typedArrayTag = getter(typedArrayProto, Symbol.toStringTag);
  const typedArrayLength = getter(typedArrayProto, 'length');
  const arrayBufferByteLength = getter(ArrayBuffer.prototype, 'byteLength');
  const regexpSource = getter(RegExp.prototype, 'source');
  const objectToString = Object.prototype.toString;
  const hasOwn = (o, k) => Object.prototype.hasOwnProperty.call(o, k);
  const brand = (fn, v) => {
    try { fn.call(v); return true; } catch { return false; }
  };
  const isMap = (v) => brand(mapSize, v);
  const isSet = (v) => brand(setSize, v);
  const isDate = (v) => brand(Date.prototype.getTime, v);
  const isRegExp = (v) => v !== RegExp.prototype && brand(regexpSource, v);
  const isArrayBuffer = (v) => brand(arrayBufferByteLength, v);
  const isTypedArray = (v) => typedArrayTag.call(v) !== undefined;
  const isDataView = (v) => brand(getter(DataView.prototype, 'byteLength'), v);
  const isWeakMap = (v) => { try { WeakMap.prototype.has.call(v, {}); return true; } catch { return false; } };
  const isWeakSet = (v) => { try { WeakSet.prototype.has.call(v, {}); return true; } catch { return false; } };
  const isError = (v) => host.isError(v) || v instanceof Error;
  const inspectCustom = Symbol.for('nodejs.util.inspect.custom');
  const boxedKinds = [
    [Number, 'Number'], [String, 'String'], [Boolean, 'Boolean'], [Symbol, 'Symbol'], [BigInt, 'BigInt'],
  ];
  const boxedKind = (v) => {
    for (const [ctor, name] of boxedKinds) if (brand(ctor.prototype.valueOf, v)) return name;
    return undefined;
  };

  // ---------------------------------------------------------------- util.inspect (Node's algorithm)
  const kObjectType = 0;
  const kArrayType = 1;  // array elements: value only
  const kArrayExtrasType = 2;  // arrays' other keys: "key: value"
  const keyStrRegExp = /^[a-zA-Z_][a-zA-Z_0-9]*$/;
  const numberRegExp = /^(0|[1-9][0-9]*)$/;
  const strEscapeRegExp = /[\x00-\x1f\x27\x5c\x7f-\x9f]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
  const strEscapeRegExpSingle = /[\x00-\x1f\x5c\x7f-\x9f]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
  const meta = [];
  for (let i = 0; i < 160; i++) {
    meta.push(i < 32 || i >= 127 ? '\\x' + i.toString(16).toUpperCase().padStart(2, '0') : '');
  }
  meta[8] = '\\b'; meta[9] = '\\t'; meta[10] = '\\n'; meta[12] = '\\f'; meta[13] = '\\r';
  meta[39] = "\\'"; meta[92] = '\\\\';

  function strEscape(str) {
    let quote = 39;  // '
    let test = strEscapeRegExp;
    if (str.includes("'")) {
      if (!str.includes('"')) quote = -2;
      else if (!str.includes('`') && !str.includes('${')) quote = -1;
      if (quote !== 39) test = strEscapeRegExpSingle;
    }
    const q = quote === -2 ? '"' : quote === -1 ? '`' : "'";
    if (!test.test(str)) return q + str + q;
    let result = '';
    let last = 0;
    for (let i = 0; i < str.length; i++) {
      const point = str.charCodeAt(i);
      if (point === quote || point === 92 || point < 32 || (point > 126 && point < 160)) {
        result += str.slice(last, i) + meta[point];
        last = i + 1;
      } else if (point >= 0xd800 && point <= 0xdfff) {
        if (point <= 0xdbff && i + 1 < str.length) {
          const next = str.charCodeAt(i + 1);
          if (next >= 0xdc00 && next <= 0xdfff) { i++; continue; }
        }
        result += str.slice(last, i) + '\\u' + point.toString(16);
        last = i + 1;
      }
    }
    if (last !== str.length) result += str.slice(last);
    return q + result + q;
  }

  const formatNumber = (n) => (Object.is(n, -0) ? '-0' : `${n}`);
  const formatBigInt = (n) => `${n}n`;

  function formatPrimitive(ctx, value) {
    switch (typeof value) {
      case 'string': {
        let trailer = '';
        if (value.length > ctx.maxStringLength) {
          const remaining = value.length - ctx.maxStringLength;
          value = value.slice(0, ctx.maxStringLength);
          trailer = `... ${remaining} more character${remaining > 1 ? 's' : ''}`;
        }
        // Long multi-line strings are split at their newlines, like Node.
        if (value.length > 16 && value.length > ctx.breakLength - ctx.indentationLvl - 4) {
          return value.split(/(?<=\n)/).map(strEscape)
            .join(` +\n${' '.repeat(ctx.indentationLvl + 2)}`) + trailer;
        }
        return strEscape(value) + trailer;
      }
      case 'number': return formatNumber(value);
      case 'bigint': return formatBigInt(value);
      case 'symbol': return Symbol.prototype.toString.call(value);
      default: return `${value}`;  // undefined, boolean
    }
  }

  function getConstructorName(obj) {
    let o = obj;
    let firstProto;
    while (o !== null && o !== undefined) {
      const d = Object.getOwnPropertyDescriptor(o, 'constructor');
      if (d !== undefined && typeof d.value === 'function' && d.value.name !== '') {
        let inst = false;
        try { inst = obj instanceof d.value; } catch {}
        if (inst) return String(d.value.name);
      }
      o = Object.getPrototypeOf(o);
      if (firstProto === undefined) firstProto = o;
    }
    return firstProto === null ? null : 'Object';
  }

  function getPrefix(constructor, tag, fallback, size = '') {
    if (constructor === null) {
      if (tag !== '' && fallback !== tag) return `[${fallback}${size}: null prototype] [${tag}] `;
      return `[${fallback}${size}: null prototype] `;
    }
    if (tag !== '' && constructor !== tag) return `${constructor}${size} [${tag}] `;
    return `${constructor}${size} `;
  }

  function getKeys(value, nonIndex) {
    let keys = Object.keys(value);
    if (nonIndex) keys = keys.filter((k) => !numberRegExp.test(k) || +k > 4294967294);
    for (const s of Object.getOwnPropertySymbols(value)) {
      if (Object.prototype.propertyIsEnumerable.call(value, s)) keys.push(s);
    }
    return keys;
  }

  function getFunctionBase(value, constructor, tag) {
    let src = '';
    try { src = Function.prototype.toString.call(value); } catch {}
    if (src.startsWith('class') && src.endsWith('}')) {
      const name = (hasOwn(value, 'name') && value.name) || '(anonymous)';
      let base = `class ${name}`;
      if (constructor !== 'Function' && constructor !== null) base += ` [${constructor}]`;
      if (constructor !== null) {
        const superName = Object.getPrototypeOf(value).name;
        if (superName) base += ` extends ${superName}`;
      } else {
        base += ' extends [null prototype]';
      }
      return `[${base}]`;
    }
    let type = 'Function';
    const kind = objectToString.call(value);
    if (kind === '[object GeneratorFunction]') type = 'GeneratorFunction';
    else if (kind === '[object AsyncFunction]') type = 'AsyncFunction';
    else if (kind === '[object AsyncGeneratorFunction]') type = 'AsyncGeneratorFunction';
    let base = `[${type}`;
    if (constructor === null) base += ' (null prototype)';
    base += value.name === '' ? ' (anonymous)' : `: ${value.name}`;
    base += ']';
    if (constructor !== type && constructor !== null) base += ` ${constructor}`;
    if (tag !== '' && constructor !== tag) base += ` [${tag}]`;
    return base;
  }

  function errorHead(err) {
    let name, message;
    try { name = err.name; message = err.message; } catch {}
    name = name === undefined ? 'Error' : String(name);
    message = message === undefined ? '' : String(message);
    if (!name) return message;
    return message ? `${name}: ${message}` : name;
  }

  // QuickJS stacks hold only the frames ("    at f (<run_js>:3)"); Node's start with the head.
  function errorStack(err) {
    let stack;
    try { stack = err.stack; } catch {}
    const head = errorHead(err);
    if (typeof stack !== 'string' || stack === '') return head;
    stack = stack.replace(/\n+$/, '');
    // QuickJS records every frame; keep Node's 10 (a stack overflow would print thousands).
    const lines = stack.split('\n');
    const firstFrame = lines.findIndex((l) => /^\s+at /.test(l));
    if (firstFrame !== -1 && lines.length - firstFrame > 10) stack = lines.slice(0, firstFrame + 10).join('\n');
    return /^\s+at /.test(stack) ? `${head}\n${stack}` : stack;
  }

  function formatError(err, constructor, keys, ctx) {
    let name = 'Error';
    try { name = err.name != null ? String(err.name) : 'Error'; } catch {}
    let stack = errorStack(err);
    for (const k of ['name', 'message', 'stack']) {
      const i = keys.indexOf(k);
      if (i !== -1) {
        let v;
        try { v = err[k]; } catch {}
        if (typeof v === 'string' && stack.includes(v)) keys.splice(i, 1);
      }
    }
    // A subclass that did not set its name: say "MyError: msg" rather than "Error: msg".
    if (constructor !== null && constructor !== name && name.endsWith('Error') &&
        stack.startsWith(name) && (stack.length === name.length || ':\n'.includes(stack[name.length]))) {
      stack = constructor.includes(name)
        ? constructor + stack.slice(name.length)
        : `${constructor} [${name}]${stack.slice(name.length)}`;
    }
    if (stack.indexOf('\n    at') === -1) stack = `[${stack}]`;
    if (ctx.indentationLvl !== 0) stack = stack.replace(/\n/g, `\n${' '.repeat(ctx.indentationLvl)}`);
    return stack;
  }

  function formatValue(ctx, value, recurseTimes, typedArray) {
    if (typeof value !== 'object' && typeof value !== 'function') return formatPrimitive(ctx, value);
    if (value === null) return 'null';
    if (ctx.seen.includes(value)) {
      let index = 1;
      if (ctx.circular === undefined) {
        ctx.circular = new Map([[value, index]]);
      } else {
        index = ctx.circular.get(value);
        if (index === undefined) {
          index = ctx.circular.size + 1;
          ctx.circular.set(value, index);
        }
      }
      return `[Circular *${index}]`;
    }
    // Objects may format themselves, as in Node (util.inspect.custom).
    let custom;
    try { custom = value[inspectCustom]; } catch {}
    if (typeof custom === 'function' && custom !== inspect) {
      const opts = {
        depth: ctx.depth - recurseTimes, breakLength: ctx.breakLength, compact: ctx.compact,
        maxArrayLength: ctx.maxArrayLength, maxStringLength: ctx.maxStringLength,
      };
      const r = custom.call(value, opts.depth, opts, inspect);
      if (r !== value) {
        if (typeof r !== 'string') return formatValue(ctx, r, recurseTimes);
        return ctx.indentationLvl === 0 ? r : r.replace(/\n/g, `\n${' '.repeat(ctx.indentationLvl)}`);
      }
    }
    return formatRaw(ctx, value, recurseTimes, typedArray);
  }

  function formatRaw(ctx, value, recurseTimes, typedArray) {
    let keys;
    const constructor = getConstructorName(value);
    let tag = '';
    try {
      const t = value[Symbol.toStringTag];
      if (typeof t === 'string' && t !== '') tag = t;
    } catch {}
    let base = '';
    let formatter = () => [];
    let braces;
    let extrasType = kObjectType;
    let noIterator = true;

    if (Symbol.iterator in value || constructor === null) {
      noIterator = false;
      if (Array.isArray(value)) {
        const prefix = constructor !== 'Array' || tag !== ''
          ? getPrefix(constructor, tag, 'Array', `(${value.length})`) : '';
        keys = getKeys(value, true);
        braces = [`${prefix}[`, ']'];
        if (value.length === 0 && keys.length === 0) return `${braces[0]}]`;
        extrasType = kArrayExtrasType;
        formatter = formatArray;
      } else if (isSet(value)) {
        const size = setSize.call(value);
        const prefix = getPrefix(constructor, tag, 'Set', `(${size})`);
        keys = getKeys(value);
        formatter = (c, v, r) => formatSet(c, value, r);
        if (size === 0 && keys.length === 0) return `${prefix}{}`;
        braces = [`${prefix}{`, '}'];
      } else if (isMap(value)) {
        const size = mapSize.call(value);
        const prefix = getPrefix(constructor, tag, 'Map', `(${size})`);
        keys = getKeys(value);
        formatter = (c, v, r) => formatMap(c, value, r);
        if (size === 0 && keys.length === 0) return `${prefix}{}`;
        braces = [`${prefix}{`, '}'];
      } else if (isTypedArray(value)) {
        keys = getKeys(value, true);
        const size = typedArrayLength.call(value);
        const fallback = typedArrayTag.call(value);
        const prefix = getPrefix(constructor, tag === fallback ? '' : tag, fallback, `(${size})`);
        braces = [`${prefix}[`, ']'];
        if (size === 0 && keys.length === 0) return `${braces[0]}]`;
        formatter = (c) => formatTypedArray(c, value, size);
        extrasType = kArrayExtrasType;
      } else {
        noIterator = true;
      }
    }
    if (noIterator) {
      keys = getKeys(value);
      braces = ['{', '}'];
      if (typeof value === 'function') {
        base = getFunctionBase(value, constructor, tag);
        if (keys.length === 0) return base;
      } else if (constructor === 'Object' && !isError(value) && !isDate(value) && !isRegExp(value) &&
                 host.promiseState(value) === undefined && boxedKind(value) === undefined) {
        if (tag !== '') braces[0] = `${getPrefix(constructor, tag, 'Object')}{`;
        if (keys.length === 0) return `${braces[0]}}`;
      } else if (isRegExp(value)) {
        base = RegExp.prototype.toString.call(value);
        const prefix = getPrefix(constructor, tag, 'RegExp');
        if (prefix !== 'RegExp ') base = `${prefix}${base}`;
        if (keys.length === 0 || recurseTimes > ctx.depth) return base;
      } else if (isDate(value)) {
        const t = Date.prototype.getTime.call(value);
        base = Number.isNaN(t) ? 'Invalid Date' : Date.prototype.toISOString.call(value);
        const prefix = getPrefix(constructor, tag, 'Date');
        if (prefix !== 'Date ') base = `${prefix}${base}`;
        if (keys.length === 0) return base;
      } else if (isError(value)) {
        base = formatError(value, constructor, keys, ctx);
        if (keys.length === 0) return base;
      } else if (isArrayBuffer(value)) {
        const prefix = getPrefix(constructor, tag, 'ArrayBuffer');
        if (typedArray === undefined) {
          formatter = formatArrayBuffer;
        } else if (keys.length === 0) {
          return `${prefix}{ byteLength: ${formatNumber(arrayBufferByteLength.call(value))} }`;
        }
        braces[0] = `${prefix}{`;
        keys.unshift('byteLength');
      } else if (isDataView(value)) {
        braces[0] = `${getPrefix(constructor, tag, 'DataView')}{`;
        keys.unshift('byteLength', 'byteOffset', 'buffer');
      } else if (host.promiseState(value) !== undefined) {
        braces[0] = `${getPrefix(constructor, tag, 'Promise')}{`;
        formatter = formatPromise;
      } else if (isWeakSet(value)) {
        braces[0] = `${getPrefix(constructor, tag, 'WeakSet')}{`;
        formatter = () => ['<items unknown>'];
      } else if (isWeakMap(value)) {
        braces[0] = `${getPrefix(constructor, tag, 'WeakMap')}{`;
        formatter = () => ['<items unknown>'];
      } else if (boxedKind(value) !== undefined) {
        const kind = boxedKind(value);
        const prim = globalThis[kind].prototype.valueOf.call(value);
        if (kind === 'String') keys = keys.filter((k) => typeof k !== 'string' || !numberRegExp.test(k) || +k >= prim.length);
        base = `[${kind}`;
        if (kind !== constructor) base += constructor === null ? ' (null prototype)' : ` (${constructor})`;
        base += `: ${formatPrimitive({ ...ctx, breakLength: Infinity, maxStringLength: Infinity }, prim)}]`;
        if (tag !== '' && tag !== constructor) base += ` [${tag}]`;
        if (keys.length === 0) return base;
      } else {
        if (keys.length === 0) return `${getPrefix(constructor, tag, 'Object')}{}`;
        braces[0] = `${getPrefix(constructor, tag, 'Object')}{`;
      }
    }

    if (recurseTimes > ctx.depth) {
      let name = getPrefix(constructor, tag, 'Object').slice(0, -1);
      if (Array.isArray(value)) name = getPrefix(constructor, tag, 'Array').slice(0, -1);
      return constructor !== null ? `[${name}]` : name;
    }
    recurseTimes += 1;
    ctx.seen.push(value);
    ctx.currentDepth = recurseTimes;
    let output;
    try {
      output = formatter(ctx, value, recurseTimes);
      for (const key of keys) output.push(formatProperty(ctx, value, recurseTimes, key, extrasType));
    } finally {
      ctx.seen.pop();
    }
    if (ctx.circular !== undefined) {
      const index = ctx.circular.get(value);
      if (index !== undefined) base = base === '' ? `<ref *${index}>` : `<ref *${index}> ${base}`;
    }
    return reduceToSingleString(ctx, output, base, braces, extrasType, recurseTimes, value);
  }

  function formatProperty(ctx, value, recurseTimes, key, type) {
    let str;
    const desc = Object.getOwnPropertyDescriptor(value, key) || { value: value[key], enumerable: true };
    if (desc.value !== undefined) {
      ctx.indentationLvl += 2;
      str = formatValue(ctx, desc.value, recurseTimes);
      ctx.indentationLvl -= 2;
    } else if (desc.get !== undefined) {
      str = desc.set !== undefined ? '[Getter/Setter]' : '[Getter]';
    } else if (desc.set !== undefined) {
      str = '[Setter]';
    } else {
      str = 'undefined';
    }
    if (type === kArrayType) return str;
    let name;
    if (typeof key === 'symbol') name = `[${Symbol.prototype.toString.call(key)}]`;
    else if (key === '__proto__') name = "['__proto__']";
    else if (desc.enumerable === false) name = `[${key}]`;
    else if (keyStrRegExp.test(key)) name = key;
    else name = strEscape(key);
    return `${name}: ${str}`;
  }

  const remainingText = (n) => `... ${n} more item${n > 1 ? 's' : ''}`;

  function formatArray(ctx, value, recurseTimes) {
    const valLen = value.length;
    const len = Math.min(Math.max(0, ctx.maxArrayLength), valLen);
    const output = [];
    for (let i = 0; i < len; i++) {
      if (!hasOwn(value, i)) return formatSpecialArray(ctx, value, recurseTimes, len, output, i);
      output.push(formatProperty(ctx, value, recurseTimes, i, kArrayType));
    }
    if (valLen - len > 0) output.push(remainingText(valLen - len));
    return output;
  }

  // Sparse arrays: runs of holes become "<N empty items>".
  function formatSpecialArray(ctx, value, recurseTimes, maxLength, output, i) {
    const keys = Object.keys(value);
    let index = i;
    for (; i < keys.length && output.length < maxLength; i++) {
      const key = keys[i];
      const tmp = +key;
      if (tmp > 2 ** 32 - 2) break;
      if (`${index}` !== key) {
        if (!numberRegExp.test(key)) break;
        const empty = tmp - index;
        output.push(`<${empty} empty item${empty > 1 ? 's' : ''}>`);
        index = tmp;
        if (output.length === maxLength) break;
      }
      output.push(formatProperty(ctx, value, recurseTimes, key, kArrayType));
      index++;
    }
    const remaining = value.length - index;
    if (output.length !== maxLength) {
      if (remaining > 0) output.push(`<${remaining} empty item${remaining > 1 ? 's' : ''}>`);
    } else if (remaining > 0) {
      output.push(remainingText(remaining));
    }
    return output;
  }

  function formatTypedArray(ctx, value, length) {
    const max = Math.min(Math.max(0, ctx.maxArrayLength), length);
    const output = [];
    for (let i = 0; i < max; i++) {
      output.push(typeof value[i] === 'bigint' ? formatBigInt(value[i]) : formatNumber(value[i]));
    }
    if (length > max) output.push(remainingText(length - max));
    return output;
  }

  function formatArrayBuffer(ctx, value) {
    const bytes = new Uint8Array(value);
    const shown = Math.min(ctx.maxArrayLength, bytes.length);
    let hex = [];
    for (let i = 0; i < shown; i++) hex.push(bytes[i].toString(16).padStart(2, '0'));
    hex = hex.join(' ');
    const remaining = bytes.length - shown;
    if (remaining > 0) hex += ` ... ${remaining} more byte${remaining > 1 ? 's' : ''}`;
    return [`[Uint8Contents]: <${hex}>`];
  }

  function formatSet(ctx, value, recurseTimes) {
    const size = setSize.call(value);
    const max = Math.min(ctx.maxArrayLength, size);
    const output = [];
    ctx.indentationLvl += 2;
    let i = 0;
    for (const v of Set.prototype.values.call(value)) {
      if (i++ >= max) break;
      output.push(formatValue(ctx, v, recurseTimes));
    }
    if (size > max) output.push(remainingText(size - max));
    ctx.indentationLvl -= 2;
    return output;
  }

  function formatMap(ctx, value, recurseTimes) {
    const size = mapSize.call(value);
    const max = Math.min(ctx.maxArrayLength, size);
    const output = [];
    ctx.indentationLvl += 2;
    let i = 0;
    for (const [k, v] of Map.prototype.entries.call(value)) {
      if (i++ >= max) break;
      output.push(`${formatValue(ctx, k, recurseTimes)} => ${formatValue(ctx, v, recurseTimes)}`);
    }
    if (size > max) output.push(remainingText(size - max));
    ctx.indentationLvl -= 2;
    return output;
  }

  function formatPromise(ctx, value, recurseTimes) {
    const [state, result] = host.promiseState(value);
    if (state === 0) return ['<pending>'];
    ctx.indentationLvl += 2;
    const str = formatValue(ctx, result, recurseTimes);
    ctx.indentationLvl -= 2;
    return [state === 2 ? `<rejected> ${str}` : str];
  }

  function isBelowBreakLength(ctx, output, start, base) {
    let total = output.length + start;
    if (total + output.length > ctx.breakLength) return false;
    for (const entry of output) {
      total += entry.length;
      if (total > ctx.breakLength) return false;
    }
    return base === '' || !base.includes('\n');
  }

  // Arrays of more than 6 short entries are laid out in aligned columns, like Node.
  function groupArrayElements(ctx, output, value) {
    let totalLength = 0;
    let maxLength = 0;
    let outputLength = output.length;
    if (ctx.maxArrayLength < output.length) outputLength--;  // "... more items" stays apart
    const separatorSpace = 2;
    const dataLen = new Array(outputLength);
    for (let i = 0; i < outputLength; i++) {
      const len = output[i].length;
      dataLen[i] = len;
      totalLength += len + separatorSpace;
      if (maxLength < len) maxLength = len;
    }
    const actualMax = maxLength + separatorSpace;
    if (actualMax * 3 + ctx.indentationLvl < ctx.breakLength &&
        (totalLength / actualMax > 5 || maxLength <= 6)) {
      const averageBias = Math.sqrt(actualMax - totalLength / output.length);
      const biasedMax = Math.max(actualMax - 3 - averageBias, 1);
      const columns = Math.min(
        Math.round(Math.sqrt(2.5 * biasedMax * outputLength) / biasedMax),
        Math.floor((ctx.breakLength - ctx.indentationLvl) / actualMax),
        ctx.compact * 4,
        15);
      if (columns <= 1) return output;
      const tmp = [];
      const maxLineLength = [];
      for (let i = 0; i < columns; i++) {
        let lineLength = 0;
        for (let j = i; j < output.length; j += columns) if (dataLen[j] > lineLength) lineLength = dataLen[j];
        maxLineLength.push(lineLength + separatorSpace);
      }
      let padStart = true;
      if (value !== undefined) {
        for (let i = 0; i < output.length; i++) {
          if (typeof value[i] !== 'number' && typeof value[i] !== 'bigint') { padStart = false; break; }
        }
      }
      for (let i = 0; i < outputLength; i += columns) {
        const max = Math.min(i + columns, outputLength);
        let str = '';
        let j = i;
        for (; j < max - 1; j++) {
          const cell = `${output[j]}, `;
          str += padStart ? cell.padStart(maxLineLength[j - i], ' ') : cell.padEnd(maxLineLength[j - i], ' ');
        }
        str += padStart ? output[j].padStart(maxLineLength[j - i] - separatorSpace, ' ') : output[j];
        tmp.push(str);
      }
      if (ctx.maxArrayLength < output.length) tmp.push(output[outputLength]);
      output = tmp;
    }
    return output;
  }

  function reduceToSingleString(ctx, output, base, braces, extrasType, recurseTimes, value) {
    const entries = output.length;
    if (extrasType === kArrayExtrasType && entries > 6) output = groupArrayElements(ctx, output, value);
    // Up to `compact` inner levels that fit within breakLength are printed on one line.
    if (ctx.currentDepth - recurseTimes < ctx.compact && entries === output.length) {
      const start = output.length + ctx.indentationLvl + braces[0].length + base.length + 10;
      if (isBelowBreakLength(ctx, output, start, base)) {
        const joined = output.join(', ');
        if (!joined.includes('\n')) return `${base ? `${base} ` : ''}${braces[0]} ${joined} ${braces[1]}`;
      }
    }
    const indentation = `\n${' '.repeat(ctx.indentationLvl)}`;
    return `${base ? `${base} ` : ''}${braces[0]}${indentation}  ${output.join(`,${indentation}  `)}${indentation}${braces[1]}`;
  }

  function inspect(value, opts) {
    const ctx = {
      seen: [], circular: undefined, indentationLvl: 0, currentDepth: 0,
      depth: 2, breakLength: 80, compact: 3, maxArrayLength: 100, maxStringLength: 10000,
    };
    if (opts !== null && typeof opts === 'object') {
      for (const k of ['depth', 'breakLength', 'compact', 'maxArrayLength', 'maxStringLength']) {
        if (opts[k] !== undefined) ctx[k] = opts[k] === null ? Infinity : opts[k];
      }
    }
    return formatValue(ctx, value, 0);
  }

  // console.log's argument formatting (util.format), including %s %d %i %f %j %o %O %c %%.
  function format(args) {
    const first = args[0];
    let a = 0;
    let str = '';
    let join = '';
    if (typeof first === 'string') {
      if (args.length === 1) return first;
      let lastPos = 0;
      let tempStr;
      for (let i = 0; i < first.length - 1; i++) {
        if (first.charCodeAt(i) !== 37) continue;  // '%'
        const next = first.charCodeAt(++i);
        if (a + 1 !== args.length) {
          switch (next) {
            case 115: {  // s
              const arg = args[++a];
              if (typeof arg === 'number') tempStr = formatNumber(arg);
              else if (typeof arg === 'bigint') tempStr = formatBigInt(arg);
              else if (typeof arg !== 'object' || arg === null || !hasBuiltinToString(arg)) tempStr = String(arg);
              else tempStr = inspect(arg, { depth: 0 });
              break;
            }
            case 106:  // j
              tempStr = tryStringify(args[++a]);
              break;
            case 100: {  // d
              const n = args[++a];
              tempStr = typeof n === 'bigint' ? formatBigInt(n) : typeof n === 'symbol' ? 'NaN' : formatNumber(Number(n));
              break;
            }
            case 79:  // O
              tempStr = inspect(args[++a]);
              break;
            case 111:  // o
              tempStr = inspect(args[++a], { depth: 4 });
              break;
            case 105: {  // i
              const n = args[++a];
              tempStr = typeof n === 'bigint' ? formatBigInt(n) : typeof n === 'symbol' ? 'NaN' : formatNumber(Number.parseInt(n));
              break;
            }
            case 102: {  // f
              const n = args[++a];
              tempStr = typeof n === 'symbol' ? 'NaN' : formatNumber(Number.parseFloat(n));
              break;
            }
            case 99:  // c: CSS, ignored
              a += 1;
              tempStr = '';
              break;
            case 37:  // %%
              str += first.slice(lastPos, i);
              lastPos = i + 1;
              continue;
            default:
              continue;
          }
          if (lastPos !== i - 1) str += first.slice(lastPos, i - 1);
          str += tempStr;
          lastPos = i + 1;
        } else if (next === 37) {
          str += first.slice(lastPos, i);
          lastPos = i + 1;
        }
      }
      if (lastPos !== 0) {
        a++;
        join = ' ';
        if (lastPos < first.length) str += first.slice(lastPos);
      }
    }
    while (a < args.length) {
      const value = args[a];
      str += join;
      str += typeof value !== 'string' ? inspect(value) : value;
      join = ' ';
      a++;
    }
    return str;
  }

  function hasBuiltinToString(value) {
    // Objects whose own class defines toString print through it with %s.
    let proto = value;
    while (proto !== null && proto !== Object.prototype && proto !== Array.prototype &&
           proto !== Error.prototype && proto !== Date.prototype && proto !== RegExp.prototype) {
      if (hasOwn(proto, 'toString')) return false;
      proto = Object.getPrototypeOf(proto);
    }
    return true;
  }

  function tryStringify(v) {
    try {
      return JSON.stringify(v);
    } catch (e) {
      if (e instanceof TypeError && /circular/i.test(String(e.message))) return '[Circular]';
      throw e;
    }
  }

  // ---------------------------------------------------------------- console
  let groupIndent = '';
  const counts = new Map();
  const timersByLabel = new Map();
  function emit(fd, text) {
    if (groupIndent !== '') text = groupIndent + text.replace(/\n/g, `\n${groupIndent}`);
    host.write(fd, text + '\n');
  }
  const out = (...args) => emit(1, format(args));
  const err = (...args) => emit(2, format(args));

  function table(data, columns) {
    if (data === null || typeof data !== 'object') return out(data);
    const cell = (v) => (typeof v === 'string' ? strEscape(v) : inspect(v, { depth: 1, breakLength: Infinity, maxArrayLength: 3 }));
    const width = (s) => [...s].length;
    const rows = [];
    const cols = [];
    let hasValues = false;
    const entries = isMap(data) ? [...data.entries()].map(([k, v], i) => [i, { Key: k, Values: v }])
      : Object.keys(data).map((k) => [k, data[k]]);
    for (const [k, v] of entries) {
      const row = { '(index)': String(k) };
      if (v !== null && typeof v === 'object') {
        for (const c of Object.keys(v)) {
          if (columns && !columns.includes(c)) continue;
          if (!cols.includes(c)) cols.push(c);
          row[c] = cell(v[c]);
        }
      } else {
        hasValues = true;
        row.Values = cell(v);
      }
      rows.push(row);
    }
    const heads = ['(index)', ...(columns || cols), ...(hasValues ? ['Values'] : [])];
    const widths = heads.map((h) => Math.max(width(h), ...rows.map((r) => width(r[h] ?? ''))) + 2);
    const center = (s, w) => {
      const left = Math.floor((w - width(s)) / 2);
      return ' '.repeat(left) + s + ' '.repeat(w - width(s) - left);
    };
    const line = (l, m, r) => l + widths.map((w) => '─'.repeat(w)).join(m) + r;
    const lines = [line('┌', '┬', '┐'), '│' + heads.map((h, i) => center(h, widths[i])).join('│') + '│',
      line('├', '┼', '┤')];
    for (const r of rows) lines.push('│' + heads.map((h, i) => center(r[h] ?? '', widths[i])).join('│') + '│');
    lines.push(line('└', '┴', '┘'));
    out(lines.join('\n'));
  }

  const console = {
    log: out, info: out, debug: out,
    error: err, warn: err,
    trace: (...args) => {
      // Like Node: "Trace: msg" plus the caller's stack, on stderr.
      const stack = (new Error().stack || '').split('\n').slice(1).join('\n').replace(/\n+$/, '');
      emit(2, `Trace${args.length ? ': ' + format(args) : ''}${stack ? '\n' + stack : ''}`);
    },
    dir: (value, options) => emit(1, inspect(value, options)),
    table,
    assert: (cond, ...args) => {
      if (cond) return;
      if (args.length > 0 && typeof args[0] === 'string') args[0] = `Assertion failed: ${args[0]}`;
      else args.unshift('Assertion failed');
      err(...args);
    },
    count: (label = 'default') => {
      label = `${label}`;
      const n = (counts.get(label) || 0) + 1;
      counts.set(label, n);
      out(`${label}: ${n}`);
    },
    countReset: (label = 'default') => { counts.delete(`${label}`); },
    time: (label = 'default') => { timersByLabel.set(`${label}`, host.now()); },
    timeLog: (label = 'default', ...data) => {
      label = `${label}`;
      if (!timersByLabel.has(label)) return err(`Warning: No such label '${label}' for console.timeLog()`);
      out(`${label}: ${formatMs(host.now() - timersByLabel.get(label))}`, ...data);
    },
    timeEnd: (label = 'default') => {
      label = `${label}`;
      if (!timersByLabel.has(label)) return err(`Warning: No such label '${label}' for console.timeEnd()`);
      out(`${label}: ${formatMs(host.now() - timersByLabel.get(label))}`);
      timersByLabel.delete(label);
    },
    group: (...args) => {
      if (args.length) out(...args);
      groupIndent += '  ';
    },
    groupEnd: () => { groupIndent = groupIndent.slice(0, -2); },
  };
  console.groupCollapsed = console.group;
  const formatMs = (ms) => (ms >= 1000 ? `${(ms / 1000).toFixed(3)}s` : `${Number(ms.toFixed(3))}ms`);

  // ---------------------------------------------------------------- timers
  // Run by the C event loop: runTimer() runs the earliest due timer (returns 0), or returns the
  // milliseconds until the next one, or -1 when no referenced timer is left.
  const timers = new Map();
  const timerOf = new WeakMap();
  let nextTimerId = 1;
  let timerSeq = 0;

  class Timeout {
    ref() { const t = timerOf.get(this); if (t) t.ref = true; return this; }
    unref() { const t = timerOf.get(this); if (t) t.ref = false; return this; }
    hasRef() { const t = timerOf.get(this); return !!t && t.ref; }
    refresh() {
      const t = timerOf.get(this);
      if (t) { t.due = host.now() + t.delay; t.seq = timerSeq++; }
      return this;
    }
    [Symbol.toPrimitive]() { const t = timerOf.get(this); return t ? t.id : NaN; }
  }

  function addTimer(fn, delay, args, repeat) {
    if (typeof fn !== 'function') {
      throw new TypeError(`The "callback" argument must be of type function. Received ${inspect(fn)}`);
    }
    delay = Number(delay);
    if (!(delay >= 1 && delay <= 2147483647)) delay = 1;  // Node's rule
    const t = { id: nextTimerId++, due: host.now() + delay, seq: timerSeq++, delay, fn, args, repeat, ref: true };
    timers.set(t.id, t);
    const handle = new Timeout();
    timerOf.set(handle, t);
    return handle;
  }

  function clearTimer(handle) {
    if (handle === null || handle === undefined) return;
    const t = typeof handle === 'object' ? timerOf.get(handle) : timers.get(Number(handle));
    if (t) timers.delete(t.id);
  }

  function runTimer() {
    let best = null;
    let referenced = false;
    for (const t of timers.values()) {
      if (t.ref) referenced = true;
      if (best === null || t.due < best.due || (t.due === best.due && t.seq < best.seq)) best = t;
    }
    // Unreferenced timers (AbortSignal.timeout) still fire while broker requests keep the run alive.
    if (best === null || (!referenced && pendingRequests.size === 0)) return -1;
    const now = host.now();
    if (best.due > now) return best.due - now;
    if (best.repeat) {
      best.due = now + best.delay;
      best.seq = timerSeq++;
    } else {
      timers.delete(best.id);
    }
    Reflect.apply(best.fn, globalThis, best.args);
    return 0;
  }

  function queueMicrotask(fn) {
    if (typeof fn !== 'function') {
      throw new TypeError(`The "callback" argument must be of type function. Received ${inspect(fn)}`);
    }
    host.enqueueJob(fn);
  }

  // ---------------------------------------------------------------- process
  let stdinCache;
  const readStdin = () => (stdinCache === undefined ? (stdinCache = host.readStdin()) : stdinCache);
  let startTime = host.now();
  const process = {
    argv: ['qjs', '<run_js>'],
    env: {},
    platform: 'linux',
    arch: 'x64',
    versions: { quickjs: '2021-03-27' },
    exitCode: undefined,
    cwd: () => cwdValue,
    chdir: (directory) => processChdir(directory),
    exit: (code) => {
      code = code === undefined ? process.exitCode : code;
      host.exit(Number(code) | 0);
    },
    nextTick: (fn, ...args) => queueMicrotask(() => fn(...args)),
    hrtime: Object.assign((prev) => {
      const ns = BigInt(Math.round(host.now() * 1e6));
      const t = [Number(ns / 1000000000n), Number(ns % 1000000000n)];
      if (!prev) return t;
      let s = t[0] - prev[0];
      let n = t[1] - prev[1];
      if (n < 0) { s--; n += 1e9; }
      return [s, n];
    }, { bigint: () => BigInt(Math.round(host.now() * 1e6)) }),
    uptime: () => (host.now() - startTime) / 1000,
    stdout: { isTTY: false, write: (s) => { host.write(1, String(s)); return true; } },
    stderr: { isTTY: false, write: (s) => { host.write(2, String(s)); return true; } },
    stdin: {
      isTTY: false,
      read: readStdin,
      lines: () => {
        const text = readStdin();
        if (text === '') return [];
        const lines = text.split(/\r?\n/);
        if (lines[lines.length - 1] === '') lines.pop();
        return lines;
      },
    },
  };
  let cwdValue = '/';

  // ---------------------------------------------------------------- polyfills
  function at(index) {
    const len = this.length;
    let k = Math.trunc(index) || 0;
    if (k < 0) k += len;
    return k < 0 || k >= len ? undefined : this[k];
  }
  for (const proto of [Array.prototype, String.prototype, typedArrayProto]) {
    if (!proto.at) define(proto, 'at', at);
  }
  if (!Object.hasOwn) define(Object, 'hasOwn', (o, k) => Object.prototype.hasOwnProperty.call(Object(o), k));
  for (const proto of [Array.prototype, typedArrayProto]) {
    if (!proto.findLast) {
      define(proto, 'findLast', function findLast(fn, thisArg) {
        for (let i = this.length - 1; i >= 0; i--) if (fn.call(thisArg, this[i], i, this)) return this[i];
        return undefined;
      });
    }
    if (!proto.findLastIndex) {
      define(proto, 'findLastIndex', function findLastIndex(fn, thisArg) {
        for (let i = this.length - 1; i >= 0; i--) if (fn.call(thisArg, this[i], i, this)) return i;
        return -1;
      });
    }
  }
  if (!Array.prototype.toSorted) {
    define(Array.prototype, 'toSorted', function toSorted(cmp) {
      if (cmp !== undefined && typeof cmp !== 'function') throw new TypeError('The comparison function must be either a function or undefined');
      return Array.from(this).sort(cmp);
    });
    define(Array.prototype, 'toReversed', function toReversed() { return Array.from(this).reverse(); });
    define(Array.prototype, 'toSpliced', function toSpliced(...args) {
      const copy = Array.from(this);
      copy.splice(...args);
      return copy;
    });
    define(Array.prototype, 'with', function (index, value) {
      const len = this.length;
      let k = Math.trunc(index) || 0;
      if (k < 0) k += len;
      if (k < 0 || k >= len) throw new RangeError('Invalid index : ' + index);
      const copy = Array.from(this);
      copy[k] = value;
      return copy;
    });
  }
  if (!String.prototype.replaceAll) {
    define(String.prototype, 'replaceAll', function replaceAll(search, replacement) {
      if (isRegExp(search)) {
        if (!search.flags.includes('g')) throw new TypeError('replaceAll must be called with a global RegExp');
        return this.replace(search, replacement);
      }
      return String(this).split(String(search)).join(replacement);
    });
  }
  if (typeof AggregateError === 'undefined') {
    define(globalThis, 'AggregateError', class AggregateError extends Error {
      constructor(errors, message = '') {
        super(message);
        define(this, 'errors', [...errors]);
      }
      get name() { return 'AggregateError'; }
    });
  }
  if (!Promise.allSettled) {
    define(Promise, 'allSettled', (items) => Promise.all([...items].map((p) => Promise.resolve(p).then(
      (value) => ({ status: 'fulfilled', value }), (reason) => ({ status: 'rejected', reason })))));
  }
  if (!Promise.any) {
    define(Promise, 'any', (items) => new Promise((resolve, reject) => {
      const list = [...items];
      const errors = [];
      let pending = list.length;
      if (pending === 0) reject(new AggregateError([], 'All promises were rejected'));
      list.forEach((p, i) => Promise.resolve(p).then(resolve, (e) => {
        errors[i] = e;
        if (--pending === 0) reject(new AggregateError(errors, 'All promises were rejected'));
      }));
    }));
  }

  // QuickJS 2021 has no weak references. Holding the target strongly is allowed by the spec
  // (collection is never guaranteed) and a run is short-lived anyway.
  if (typeof WeakRef === 'undefined') {
    define(globalThis, 'WeakRef', class WeakRef {
      #target;
      constructor(target) {
        if (target === null || (typeof target !== 'object' && typeof target !== 'function')) {
          throw new TypeError('WeakRef: target must be an object');
        }
        this.#target = target;
      }
      deref() { return this.#target; }
    });
    define(globalThis, 'FinalizationRegistry', class FinalizationRegistry {
      constructor(callback) {
        if (typeof callback !== 'function') throw new TypeError('FinalizationRegistry: callback must be a function');
      }
      register() {}
      unregister() { return false; }
    });
  }

  class DOMException extends Error {
    constructor(message = '', name = 'Error') {
      super(message);
      define(this, 'name', String(name));
    }
  }

  function structuredClone(value) {
    const memo = new Map();
    const fail = (v) => {
      let what;
      try { what = typeof v === 'function' ? Function.prototype.toString.call(v) : `#<${getConstructorName(v) || 'Object'}>`; } catch { what = 'value'; }
      throw new DOMException(`${what} could not be cloned.`, 'DataCloneError');
    };
    const clone = (v) => {
      if (typeof v === 'symbol') throw new DOMException(`${String(v)} could not be cloned.`, 'DataCloneError');
      if (typeof v === 'function') fail(v);
      if (typeof v !== 'object' || v === null) return v;
      if (memo.has(v)) return memo.get(v);
      let outv;
      if (Array.isArray(v)) {
        outv = new Array(v.length);
        memo.set(v, outv);
        for (const k of Object.keys(v)) outv[k] = clone(v[k]);
        return outv;
      }
      if (isDate(v)) outv = new Date(Date.prototype.getTime.call(v));
      else if (isRegExp(v)) outv = new RegExp(regexpSource.call(v), v.flags);
      else if (isArrayBuffer(v)) outv = ArrayBuffer.prototype.slice.call(v, 0);
      else if (isTypedArray(v)) {
        const Ctor = globalThis[typedArrayTag.call(v)];
        outv = new Ctor(clone(v.buffer), v.byteOffset, typedArrayLength.call(v));
      } else if (isDataView(v)) outv = new DataView(clone(v.buffer), v.byteOffset, v.byteLength);
      else if (boxedKind(v) !== undefined) {
        if (boxedKind(v) === 'Symbol') fail(v);
        outv = Object(globalThis[boxedKind(v)].prototype.valueOf.call(v));
      } else if (isMap(v)) {
        outv = new Map();
        memo.set(v, outv);
        for (const [k, val] of Map.prototype.entries.call(v)) outv.set(clone(k), clone(val));
        return outv;
      } else if (isSet(v)) {
        outv = new Set();
        memo.set(v, outv);
        for (const val of Set.prototype.values.call(v)) outv.add(clone(val));
        return outv;
      } else if (isError(v)) {
        const names = ['Error', 'EvalError', 'RangeError', 'ReferenceError', 'SyntaxError', 'TypeError', 'URIError'];
        const Ctor = globalThis[names.includes(v.name) ? v.name : 'Error'];
        outv = new Ctor(v.message);
        memo.set(v, outv);
        if (typeof v.stack === 'string') define(outv, 'stack', v.stack);
        if ('cause' in v) define(outv, 'cause', clone(v.cause));
        return outv;
      } else if (host.promiseState(v) !== undefined || isWeakMap(v) || isWeakSet(v)) {
        fail(v);
      } else {
        outv = {};
        memo.set(v, outv);
        for (const k of Object.keys(v)) outv[k] = clone(v[k]);
        return outv;
      }
      memo.set(v, outv);
      return outv;
    };
    return clone(value);
  }

  class TextEncoder {
    get encoding() { return 'utf-8'; }
    encode(input = '') { return new Uint8Array(host.utf8Encode(`${input}`)); }
    encodeInto(input, dest) {
      // Whole code points only, as the spec requires.
      const s = `${input}`;
      let read = 0;
      let written = 0;
      for (const ch of s) {
        const bytes = new Uint8Array(host.utf8Encode(ch));
        if (written + bytes.length > dest.length) break;
        dest.set(bytes, written);
        written += bytes.length;
        read += ch.length;
      }
      return { read, written };
    }
  }

  class TextDecoder {
    constructor(label = 'utf-8', options = {}) {
      const l = `${label}`.trim().toLowerCase();
      if (l !== 'utf-8' && l !== 'utf8' && l !== 'unicode-1-1-utf-8') {
        throw new RangeError(`The "${label}" encoding is not supported`);
      }
      this.fatal = !!(options && options.fatal);
      this.ignoreBOM = !!(options && options.ignoreBOM);
    }
    get encoding() { return 'utf-8'; }
    decode(input) {
      if (input === undefined) return '';
      let bytes;
      if (isArrayBuffer(input)) bytes = new Uint8Array(input);
      else if (ArrayBuffer.isView(input)) bytes = new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
      else throw new TypeError('The "input" argument must be an instance of ArrayBuffer or ArrayBufferView');
      const s = host.utf8Decode(bytes, this.fatal);
      if (s === null) throw new TypeError('The encoded data was not valid for encoding utf-8');
      return !this.ignoreBOM && s.charCodeAt(0) === 0xfeff ? s.slice(1) : s;
    }
  }

  const b64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  function btoa(data) {
    if (arguments.length === 0) throw new TypeError('The "data" argument must be specified');
    const s = `${data}`;
    let outs = '';
    for (let i = 0; i < s.length; i += 3) {
      const c = [s.charCodeAt(i), s.charCodeAt(i + 1), s.charCodeAt(i + 2)];
      for (const x of c) if (x > 255) throw new DOMException('Invalid character', 'InvalidCharacterError');
      const n = (c[0] << 16) | ((c[1] || 0) << 8) | (c[2] || 0);
      outs += b64[(n >> 18) & 63] + b64[(n >> 12) & 63] +
        (i + 1 < s.length ? b64[(n >> 6) & 63] : '=') + (i + 2 < s.length ? b64[n & 63] : '=');
    }
    return outs;
  }
  function atob(data) {
    if (arguments.length === 0) throw new TypeError('The "data" argument must be specified');
    let s = `${data}`.replace(/[\t\n\f\r ]/g, '');
    if (s.length % 4 === 0) s = s.replace(/==?$/, '');
    if (s.length % 4 === 1 || /[^A-Za-z0-9+/]/.test(s)) {
      throw new DOMException('The string to be decoded is not correctly encoded.', 'InvalidCharacterError');
    }
    let outs = '';
    let bits = 0;
    let acc = 0;
    for (const ch of s) {
      acc = (acc << 6) | b64.indexOf(ch);
      bits += 6;
      if (bits >= 8) {
        bits -= 8;
        outs += String.fromCharCode((acc >> bits) & 255);
      }
    }
    return outs;
  }

  // ---------------------------------------------------------------- URL, URLSearchParams
  // WHATWG URL, compact: special schemes with authority, opaque paths, relative resolution,
  // IPv4 numbers and punycode host names. Internal state lives in WeakMaps, out of user reach.
  const loneSurrogate = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
  const toUSV = (v) => `${v}`.replace(loneSurrogate, '\ufffd');
  const utf8 = (s) => new Uint8Array(host.utf8Encode(s));
  const pct = (b) => '%' + (b < 16 ? '0' : '') + b.toString(16).toUpperCase();
  const FRAGMENT_SET = ' "<>`';
  const QUERY_SET = ' "#<>';
  const SPECIAL_QUERY_SET = QUERY_SET + "'";
  const PATH_SET = QUERY_SET + '?`{}';
  const USERINFO_SET = PATH_SET + '/:;=@[\\]^|';
  const C0_SET = '';

  // Percent-encodes (as UTF-8) what is not printable ASCII and the characters of `set`.
  function percentEncode(s, set) {
    if (!/[^\x21-\x7e]/.test(s) && ![...set].some((c) => s.includes(c))) return s;
    let out = '';
    for (const ch of s.replace(loneSurrogate, '\ufffd')) {
      const c = ch.codePointAt(0);
      if (c > 0x20 && c < 0x7f && !set.includes(ch)) out += ch;
      else if (c < 0x80) out += pct(c);
      else for (const b of utf8(ch)) out += pct(b);
    }
    return out;
  }

  function percentDecode(s) {
    if (!s.includes('%')) return s;
    const bytes = utf8(s);
    const out = new Uint8Array(bytes.length);
    const hex = (b) => (b >= 48 && b <= 57) || (b >= 65 && b <= 70) || (b >= 97 && b <= 102);
    let n = 0;
    for (let i = 0; i < bytes.length; i++) {
      if (bytes[i] === 37 && hex(bytes[i + 1]) && hex(bytes[i + 2])) {
        out[n++] = parseInt(String.fromCharCode(bytes[i + 1], bytes[i + 2]), 16);
        i += 2;
      } else {
        out[n++] = bytes[i];
      }
    }
    return host.utf8Decode(out.subarray(0, n), false);
  }

  const formEncode = (s) => encodeURIComponent(toUSV(s)).replace(/%20/g, '+')
    .replace(/[!'()~]/g, (c) => pct(c.charCodeAt(0)));
  const formDecode = (s) => percentDecode(s.replace(/\+/g, ' '));
  const parseForm = (s) => s.split('&').filter((p) => p !== '').map((p) => {
    const i = p.indexOf('=');
    return i < 0 ? [formDecode(p), ''] : [formDecode(p.slice(0, i)), formDecode(p.slice(i + 1))];
  });
  const serializeForm = (list) => list.map(([k, v]) => `${formEncode(k)}=${formEncode(v)}`).join('&');

  const paramsOf = new WeakMap();  // URLSearchParams -> { list: [[name, value]], url: URL state | null }
  const P = (o) => {
    const st = paramsOf.get(o);
    if (st === undefined) throw new TypeError('Value of "this" must be of type URLSearchParams');
    return st;
  };
  const paramsChanged = (st) => {
    if (st.url !== null) {
      const q = serializeForm(st.list);
      st.url.query = q === '' ? null : q;
    }
  };

  class URLSearchParams {
    constructor(init = '') {
      const st = { list: [], url: null };
      paramsOf.set(this, st);
      if (init !== null && (typeof init === 'object' || typeof init === 'function')) {
        if (paramsOf.has(init)) {
          st.list = paramsOf.get(init).list.map(([k, v]) => [k, v]);
        } else if (typeof init[Symbol.iterator] === 'function') {
          for (const pair of init) {
            const p = typeof pair === 'string' ? [] : [...pair];
            if (p.length !== 2) throw new TypeError('Each query pair must be an iterable [name, value] tuple');
            st.list.push([toUSV(p[0]), toUSV(p[1])]);
          }
        } else {
          for (const k of Object.keys(init)) st.list.push([toUSV(k), toUSV(init[k])]);
        }
      } else {
        const s = toUSV(init);
        st.list = parseForm(s.startsWith('?') ? s.slice(1) : s);
      }
    }
    get size() { return P(this).list.length; }
    append(name, value) { const st = P(this); st.list.push([toUSV(name), toUSV(value)]); paramsChanged(st); }
    delete(name, value) {
      const st = P(this);
      name = toUSV(name);
      value = value === undefined ? undefined : toUSV(value);
      st.list = st.list.filter(([k, v]) => k !== name || (value !== undefined && v !== value));
      paramsChanged(st);
    }
    get(name) {
      name = toUSV(name);
      const e = P(this).list.find(([k]) => k === name);
      return e === undefined ? null : e[1];
    }
    getAll(name) { name = toUSV(name); return P(this).list.filter(([k]) => k === name).map(([, v]) => v); }
    has(name, value) {
      name = toUSV(name);
      value = value === undefined ? undefined : toUSV(value);
      return P(this).list.some(([k, v]) => k === name && (value === undefined || v === value));
    }
    set(name, value) {
      const st = P(this);
      name = toUSV(name);
      value = toUSV(value);
      const i = st.list.findIndex(([k]) => k === name);
      if (i < 0) st.list.push([name, value]);
      else st.list = st.list.filter(([k], j) => j <= i || k !== name).map((e, j) => (j === i ? [name, value] : e));
      paramsChanged(st);
    }
    sort() {
      const st = P(this);
      // Stable, by UTF-16 code units, as the standard says.
      st.list = st.list.map((e, i) => [e, i]).sort(([a, i], [b, j]) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : i - j)).map(([e]) => e);
      paramsChanged(st);
    }
    forEach(fn, thisArg) {
      if (typeof fn !== 'function') throw new TypeError('The "callback" argument must be of type function');
      for (const [k, v] of this) fn.call(thisArg, v, k, this);
    }
    *entries() { const st = P(this); for (let i = 0; i < st.list.length; i++) yield [st.list[i][0], st.list[i][1]]; }
    *keys() { for (const [k] of this.entries()) yield k; }
    *values() { for (const [, v] of this.entries()) yield v; }
    [Symbol.iterator]() { return this.entries(); }
    toString() { return serializeForm(P(this).list); }
    get [Symbol.toStringTag]() { return 'URLSearchParams'; }
  }

  const specialPorts = { ftp: '21', file: null, http: '80', https: '443', ws: '80', wss: '443' };
  const isSpecial = (scheme) => hasOwn(specialPorts, scheme);
  const forbiddenHost = /[\x00\t\n\r #/:<>?@[\\\]^|]/;
  const forbiddenDomain = /[\x00-\x1f #%/:<>?@[\\\]^|\x7f]/;

  // Punycode (RFC 3492) of one label.
  function punycode(label) {
    const cps = [...label].map((c) => c.codePointAt(0));
    let out = cps.filter((c) => c < 0x80).map((c) => String.fromCharCode(c)).join('');
    const basic = out.length;
    let h = basic;
    if (basic > 0) out += '-';
    let n = 128, delta = 0, bias = 72;
    const digit = (d) => String.fromCharCode(d < 26 ? d + 97 : d + 22);
    while (h < cps.length) {
      const m = Math.min(...cps.filter((c) => c >= n));
      delta += (m - n) * (h + 1);
      n = m;
      for (const c of cps) {
        if (c < n) delta++;
        if (c !== n) continue;
        let q = delta;
        for (let k = 36; ; k += 36) {
          const t = k <= bias ? 1 : k >= bias + 26 ? 26 : k - bias;
          if (q < t) break;
          out += digit(t + ((q - t) % (36 - t)));
          q = Math.floor((q - t) / (36 - t));
        }
        out += digit(q);
        // Bias adaptation.
        let d = h === basic ? Math.floor(delta / 700) : delta >> 1;
        d += Math.floor(d / (h + 1));
        let k = 0;
        for (; d > 455; k += 36) d = Math.floor(d / 35);
        bias = k + Math.floor((36 * d) / (d + 38));
        delta = 0;
        h++;
      }
      delta++;
      n++;
    }
    return out;
  }

  // IPv4 in any of the numeric forms the standard accepts ("127.1", "0x7f.0.0.1"): the dotted
  // quad, undefined when the host is not numeric, null when it is numeric but invalid.
  function parseIPv4(host) {
    const parts = host.split('.');
    if (parts[parts.length - 1] === '' && parts.length > 1) parts.pop();
    const num = (p) => {
      if (/^0[xX][0-9a-fA-F]*$/.test(p)) return p.length === 2 ? 0 : parseInt(p.slice(2), 16);
      if (/^0[0-7]+$/.test(p)) return parseInt(p.slice(1), 8);
      if (/^(0|[1-9][0-9]*)$/.test(p)) return Number(p);
      return NaN;
    };
    if (Number.isNaN(num(parts[parts.length - 1]))) return undefined;
    const nums = parts.map(num);
    if (parts.length > 4 || nums.some((x) => Number.isNaN(x))) return null;
    const last = nums.pop();
    if (nums.some((x) => x > 255) || last >= 256 ** (4 - nums.length)) return null;
    let v = nums.reduce((acc, x, i) => acc + x * 256 ** (3 - i), 0) + last;
    const quad = [];
    for (let i = 0; i < 4; i++) { quad.unshift(v % 256); v = Math.floor(v / 256); }
    return quad.join('.');
  }

  function parseHost(input, special) {
    if (input.startsWith('[')) {
      if (!/^\[[0-9a-fA-F:.]+\]$/.test(input) || !input.includes(':')) return null;
      return input.toLowerCase();
    }
    if (!special) return forbiddenHost.test(input) ? null : percentEncode(input, C0_SET);
    const domain = percentDecode(input).replace(/[\u3002\uff0e\uff61]/g, '.');
    let ascii = domain.toLowerCase();
    if (/[^\x00-\x7f]/.test(ascii)) {
      ascii = ascii.normalize('NFC').split('.')
        .map((l) => (/[^\x00-\x7f]/.test(l) ? 'xn--' + punycode(l) : l)).join('.');
    }
    if (ascii === '' || forbiddenDomain.test(ascii)) return null;
    const v4 = parseIPv4(ascii);
    return v4 === undefined ? ascii : v4;
  }

  // Path segments of `input` appended to `segs`, with "." and ".." resolved.
  function parsePath(input, segs, special) {
    if (input === '') return segs;
    const parts = input.split(special ? /[/\\]/ : '/');
    if (parts.length > 1 && parts[0] === '') parts.shift();
    parts.forEach((p, i) => {
      const last = i === parts.length - 1;
      const low = p.toLowerCase();
      if (low === '..' || low === '.%2e' || low === '%2e.' || low === '%2e%2e') {
        segs.pop();
        if (last) segs.push('');
      } else if (low === '.' || low === '%2e') {
        if (last) segs.push('');
      } else {
        segs.push(percentEncode(p, PATH_SET));
      }
    });
    return segs;
  }

  // URL state: { scheme, username, password, host (null: none), port (null: default), path
  // (segments, or a string when opaque), query, fragment (null: absent) }. null on failure.
  function parseURL(input, base) {
    let s = `${input}`.replace(/^[\x00-\x20]+|[\x00-\x20]+$/g, '').replace(/[\t\n\r]/g, '');
    const u = { scheme: '', username: '', password: '', host: null, port: null, path: [], query: null, fragment: null };
    let fragment = null;
    let query = null;
    const h = s.indexOf('#');
    if (h >= 0) { fragment = s.slice(h + 1); s = s.slice(0, h); }
    const q = s.indexOf('?');
    if (q >= 0) { query = s.slice(q + 1); s = s.slice(0, q); }
    let rest = s;

    const authority = (str) => {
      const special = isSpecial(u.scheme);
      const end = str.search(special ? /[/\\]/ : /\//);
      let auth = end < 0 ? str : str.slice(0, end);
      const at = auth.lastIndexOf('@');
      if (at >= 0) {
        const cred = auth.slice(0, at);
        const c = cred.indexOf(':');
        u.username = percentEncode(c < 0 ? cred : cred.slice(0, c), USERINFO_SET);
        u.password = c < 0 ? '' : percentEncode(cred.slice(c + 1), USERINFO_SET);
        auth = auth.slice(at + 1);
      }
      const m = /^(\[[^\]]*\]|[^:]*)(?::(.*))?$/.exec(auth);
      if (!m) return false;
      if (m[2] !== undefined && m[2] !== '') {
        if (!/^[0-9]+$/.test(m[2]) || Number(m[2]) > 65535 || u.scheme === 'file') return false;
        u.port = String(Number(m[2]));
        if (u.port === specialPorts[u.scheme]) u.port = null;
      }
      if (u.scheme === 'file') {
        u.host = m[1] === '' ? '' : parseHost(m[1], true);
        if (u.host === 'localhost') u.host = '';
      } else {
        if (m[1] === '' && (special || at >= 0 || u.port !== null)) return false;
        u.host = parseHost(m[1], special);
      }
      if (u.host === null) return false;
      u.path = parsePath(end < 0 ? '' : str.slice(end), [], special);
      return true;
    };

    const m = /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(rest);
    const sameSpecial = m && base && m[1].toLowerCase() === base.scheme && isSpecial(base.scheme) &&
      base.scheme !== 'file' && !/^[/\\]/.test(rest.slice(m[0].length));
    if (m && !sameSpecial) {
      u.scheme = m[1].toLowerCase();
      rest = rest.slice(m[0].length);
      if (u.scheme === 'file') {
        if (/^[/\\]{2}/.test(rest)) {
          if (!authority(rest.slice(2))) return null;
        } else {
          u.host = base && base.scheme === 'file' && !/^[/\\]/.test(rest) ? base.host : '';
          u.path = parsePath(rest, [], true);
        }
      } else if (isSpecial(u.scheme)) {
        if (!authority(rest.replace(/^[/\\]+/, ''))) return null;
      } else if (rest.startsWith('//')) {
        if (!authority(rest.slice(2))) return null;
      } else if (rest.startsWith('/')) {
        u.path = parsePath(rest, [], false);
      } else {
        u.path = percentEncode(rest, C0_SET);
      }
    } else {
      if (!base) return null;
      if (sameSpecial) rest = rest.slice(m[0].length);
      u.scheme = base.scheme;
      if (typeof base.path === 'string') {
        if (rest !== '' || query !== null || fragment === null) return null;
        Object.assign(u, base, { fragment: null });
      } else {
        const special = isSpecial(u.scheme);
        const slash = special ? /^[/\\]/ : /^\//;
        if (slash.test(rest) && slash.test(rest.slice(1))) {
          if (!authority(rest.slice(2))) return null;
        } else {
          Object.assign(u, { username: base.username, password: base.password, host: base.host, port: base.port });
          if (slash.test(rest)) {
            u.path = parsePath(rest, [], special);
          } else if (rest === '') {
            u.path = base.path.slice();
            if (query === null) u.query = base.query;
          } else {
            u.path = parsePath(rest, base.path.slice(0, -1), special);
          }
        }
      }
    }
    if (isSpecial(u.scheme) && Array.isArray(u.path) && u.path.length === 0) u.path = [''];
    if (query !== null) u.query = percentEncode(query, isSpecial(u.scheme) ? SPECIAL_QUERY_SET : QUERY_SET);
    if (fragment !== null) u.fragment = percentEncode(fragment, FRAGMENT_SET);
    return u;
  }

  const pathString = (u) => (typeof u.path === 'string' ? u.path : u.path.length === 0 ? '' : '/' + u.path.join('/'));
  function serializeURL(u) {
    let s = u.scheme + ':';
    if (u.host !== null) {
      s += '//';
      if (u.username !== '' || u.password !== '') s += u.username + (u.password !== '' ? ':' + u.password : '') + '@';
      s += u.host + (u.port !== null ? ':' + u.port : '');
    } else if (Array.isArray(u.path) && u.path.length > 1 && u.path[0] === '') {
      s += '/.';
    }
    s += pathString(u);
    if (u.query !== null) s += '?' + u.query;
    if (u.fragment !== null) s += '#' + u.fragment;
    return s;
  }

  const urlOf = new WeakMap();
  const U = (o) => {
    const u = urlOf.get(o);
    if (u === undefined) throw new TypeError('Value of "this" must be of type URL');
    return u;
  };
  const invalidURL = (input) => {
    const e = new TypeError('Invalid URL');
    define(e, 'code', 'ERR_INVALID_URL');
    define(e, 'input', `${input}`);
    return e;
  };
  const syncParams = (u) => { paramsOf.get(u.params).list = parseForm(u.query || ''); };
  // Setters that the standard runs through the parser: reparse a modified href, keep the parts.
  const reparse = (obj, build, take) => {
    const u = U(obj);
    if (typeof u.path === 'string') return;
    const t = parseURL(build(u));
    if (t !== null) take(u, t);
  };
  const authorityOf = (u, host) => u.scheme + '://' + host + pathString(u);

  class URL {
    constructor(url, base) {
      let b;
      if (base !== undefined) {
        b = parseURL(base);
        if (b === null) throw invalidURL(base);
      }
      const u = parseURL(url, b);
      if (u === null) throw invalidURL(url);
      urlOf.set(this, u);
      u.params = new URLSearchParams(u.query || '');
      paramsOf.get(u.params).url = u;
    }
    static canParse(url, base) {
      if (base === undefined) return parseURL(url) !== null;
      const b = parseURL(base);
      return b !== null && parseURL(url, b) !== null;
    }
    get href() { return serializeURL(U(this)); }
    set href(v) {
      const u = U(this);
      const t = parseURL(v);
      if (t === null) throw invalidURL(v);
      Object.assign(u, t);
      syncParams(u);
    }
    get origin() {
      const u = U(this);
      if (!isSpecial(u.scheme) || u.scheme === 'file') return 'null';
      return `${u.scheme}://${u.host}${u.port !== null ? ':' + u.port : ''}`;
    }
    get protocol() { return U(this).scheme + ':'; }
    set protocol(v) {
      const u = U(this);
      const m = /^([a-zA-Z][a-zA-Z0-9+.-]*)(:|$)/.exec(toUSV(v));
      if (!m) return;
      const scheme = m[1].toLowerCase();
      if (isSpecial(scheme) !== isSpecial(u.scheme)) return;
      if (scheme === 'file' && (u.username !== '' || u.password !== '' || u.port !== null)) return;
      if (u.scheme === 'file' && u.host === '') return;
      u.scheme = scheme;
      if (u.port === specialPorts[scheme]) u.port = null;
    }
    get username() { return U(this).username; }
    set username(v) {
      const u = U(this);
      if (u.host === null || u.host === '' || u.scheme === 'file') return;
      u.username = percentEncode(toUSV(v), USERINFO_SET);
    }
    get password() { return U(this).password; }
    set password(v) {
      const u = U(this);
      if (u.host === null || u.host === '' || u.scheme === 'file') return;
      u.password = percentEncode(toUSV(v), USERINFO_SET);
    }
    get host() {
      const u = U(this);
      return u.host === null ? '' : u.host + (u.port !== null ? ':' + u.port : '');
    }
    set host(v) {
      reparse(this, (u) => authorityOf(u, toUSV(v).split(/[/?#\\]/)[0]), (u, t) => {
        u.host = t.host;
        if (/:[0-9]/.test(toUSV(v).replace(/^\[[^\]]*\]/, ''))) u.port = t.port;
      });
    }
    get hostname() { const u = U(this); return u.host === null ? '' : u.host; }
    set hostname(v) {
      reparse(this, (u) => authorityOf(u, toUSV(v).split(/[/?#\\]/)[0].replace(/:.*$/, '')), (u, t) => { u.host = t.host; });
    }
    get port() { const u = U(this); return u.port === null ? '' : u.port; }
    set port(v) {
      const u = U(this);
      if (u.host === null || u.host === '' || u.scheme === 'file') return;
      const s = toUSV(v);
      if (s === '') { u.port = null; return; }
      const digits = /^[0-9]+/.exec(s);
      if (!digits || Number(digits[0]) > 65535) return;
      u.port = String(Number(digits[0]));
      if (u.port === specialPorts[u.scheme]) u.port = null;
    }
    get pathname() { return pathString(U(this)); }
    set pathname(v) {
      const u = U(this);
      if (typeof u.path === 'string') return;
      const special = isSpecial(u.scheme);
      u.path = parsePath(toUSV(v), [], special);
      if (special && u.path.length === 0) u.path = [''];
    }
    get search() { const u = U(this); return u.query === null || u.query === '' ? '' : '?' + u.query; }
    set search(v) {
      const u = U(this);
      let s = toUSV(v);
      if (s.startsWith('?')) s = s.slice(1);
      u.query = s === '' && toUSV(v) === '' ? null : percentEncode(s, isSpecial(u.scheme) ? SPECIAL_QUERY_SET : QUERY_SET);
      syncParams(u);
    }
    get searchParams() { return U(this).params; }
    get hash() { const u = U(this); return u.fragment === null || u.fragment === '' ? '' : '#' + u.fragment; }
    set hash(v) {
      const u = U(this);
      let s = toUSV(v);
      if (s === '') { u.fragment = null; return; }
      if (s.startsWith('#')) s = s.slice(1);
      u.fragment = percentEncode(s, FRAGMENT_SET);
    }
    toString() { return this.href; }
    toJSON() { return this.href; }
    get [Symbol.toStringTag]() { return 'URL'; }
  }

  // ---------------------------------------------------------------- Event, EventTarget, AbortController
  const eventOf = new WeakMap();
  const E = (o) => {
    const e = eventOf.get(o);
    if (e === undefined) throw new TypeError('Value of "this" must be of type Event');
    return e;
  };
  class Event {
    constructor(type, init) {
      if (arguments.length === 0) throw new TypeError('The "type" argument must be specified');
      const o = init === undefined || init === null ? {} : init;
      eventOf.set(this, {
        type: `${type}`, bubbles: !!o.bubbles, cancelable: !!o.cancelable, composed: !!o.composed,
        defaultPrevented: false, target: null, currentTarget: null, stop: false, timeStamp: host.now() - startTime,
      });
    }
    get type() { return E(this).type; }
    get bubbles() { return E(this).bubbles; }
    get cancelable() { return E(this).cancelable; }
    get composed() { return E(this).composed; }
    get defaultPrevented() { return E(this).defaultPrevented; }
    get target() { return E(this).target; }
    get currentTarget() { return E(this).currentTarget; }
    get srcElement() { return E(this).target; }
    get timeStamp() { return E(this).timeStamp; }
    get isTrusted() { return false; }
    get eventPhase() { return E(this).currentTarget === null ? 0 : 2; }
    preventDefault() { const e = E(this); if (e.cancelable) e.defaultPrevented = true; }
    stopPropagation() {}
    stopImmediatePropagation() { E(this).stop = true; }
    composedPath() { const e = E(this); return e.currentTarget === null ? [] : [e.currentTarget]; }
    get [Symbol.toStringTag]() { return 'Event'; }
  }

  const listenersOf = new WeakMap();  // EventTarget -> Map(type -> [{ fn, once }])
  const L = (o) => {
    const l = listenersOf.get(o);
    if (l === undefined) throw new TypeError('Value of "this" must be of type EventTarget');
    return l;
  };
  class EventTarget {
    constructor() { listenersOf.set(this, new Map()); }
    addEventListener(type, fn, options) {
      const all = L(this);
      if (fn === null || fn === undefined) return;
      const once = typeof options === 'object' && options !== null && !!options.once;
      const signal = typeof options === 'object' && options !== null ? options.signal : undefined;
      if (signal !== undefined && signal.aborted) return;
      type = `${type}`;
      if (!all.has(type)) all.set(type, []);
      const list = all.get(type);
      if (list.some((l) => l.fn === fn)) return;
      list.push({ fn, once });
      if (signal !== undefined) signal.addEventListener('abort', () => this.removeEventListener(type, fn), { once: true });
    }
    removeEventListener(type, fn) {
      const list = L(this).get(`${type}`);
      if (list === undefined) return;
      const i = list.findIndex((l) => l.fn === fn);
      if (i >= 0) list.splice(i, 1);
    }
    dispatchEvent(event) {
      const all = L(this);
      const e = E(event);
      e.target = this;
      e.currentTarget = this;
      e.stop = false;
      const call = (fn) => {
        try {
          if (typeof fn === 'function') fn.call(this, event);
          else if (fn !== null && typeof fn === 'object' && typeof fn.handleEvent === 'function') fn.handleEvent(event);
        } catch (error) {
          host.enqueueJob(() => { throw error; });  // reported as uncaught, like Node
        }
      };
      const handler = this[`on${e.type}`];
      if (typeof handler === 'function') call(handler);
      for (const l of [...(all.get(e.type) || [])]) {
        if (e.stop) break;
        if (l.once) this.removeEventListener(e.type, l.fn);
        call(l.fn);
      }
      e.currentTarget = null;
      return !e.defaultPrevented;
    }
    get [Symbol.toStringTag]() { return 'EventTarget'; }
  }

  const signalOf = new WeakMap();
  const S = (o) => {
    const s = signalOf.get(o);
    if (s === undefined) throw new TypeError('Value of "this" must be of type AbortSignal');
    return s;
  };
  const signalKey = Symbol('AbortSignal');
  const newSignal = () => new AbortSignal(signalKey);
  function abortSignal(signal, reason) {
    const s = S(signal);
    if (s.aborted) return;
    s.aborted = true;
    s.reason = reason === undefined ? new DOMException('This operation was aborted', 'AbortError') : reason;
    signal.dispatchEvent(new Event('abort'));
  }
  class AbortSignal extends EventTarget {
    constructor(key) {
      if (key !== signalKey) throw new TypeError('Illegal constructor');
      super();
      signalOf.set(this, { aborted: false, reason: undefined, onabort: null, timeoutMs: undefined });
    }
    get aborted() { return S(this).aborted; }
    get reason() { return S(this).reason; }
    get onabort() { return S(this).onabort; }
    set onabort(fn) { S(this).onabort = typeof fn === 'function' ? fn : null; }
    throwIfAborted() { const s = S(this); if (s.aborted) throw s.reason; }
    static abort(reason) { const s = newSignal(); abortSignal(s, reason); return s; }
    static timeout(ms) {
      ms = Number(ms);
      if (!(ms >= 0)) throw new RangeError('The "delay" argument must be a non-negative number');
      const s = newSignal();
      S(s).timeoutMs = ms;
      addTimer(() => abortSignal(s, new DOMException('The operation was aborted due to timeout', 'TimeoutError')),
        ms, [], false).unref();
      return s;
    }
    static any(signals) {
      const s = newSignal();
      const list = [...signals];
      for (const x of list) S(x);
      const first = list.find((x) => x.aborted);
      if (first !== undefined) abortSignal(s, first.reason);
      else for (const x of list) x.addEventListener('abort', () => abortSignal(s, x.reason), { once: true });
      return s;
    }
    get [Symbol.toStringTag]() { return 'AbortSignal'; }
  }

  const controllerOf = new WeakMap();
  class AbortController {
    constructor() { controllerOf.set(this, newSignal()); }
    get signal() {
      const s = controllerOf.get(this);
      if (s === undefined) throw new TypeError('Value of "this" must be of type AbortController');
      return s;
    }
    abort(reason) { abortSignal(this.signal, reason); }
    get [Symbol.toStringTag]() { return 'AbortController'; }
  }

  // ---------------------------------------------------------------- Headers, Request, Response, fetch
  const tokenRe = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
  const headersOf = new WeakMap();  // Headers -> { list: [[lower-case name, value]], immutable }
  const H = (o) => {
    const h = headersOf.get(o);
    if (h === undefined) throw new TypeError('Value of "this" must be of type Headers');
    return h;
  };
  function headerName(name, what) {
    name = `${name}`;
    if (!tokenRe.test(name)) throw new TypeError(`Headers.${what}: "${name}" is an invalid header name.`);
    return name.toLowerCase();
  }
  function headerValue(value, name, what) {
    value = `${value}`.replace(/^[\t\n\r ]+|[\t\n\r ]+$/g, '');
    if (/[\0\r\n]/.test(value)) throw new TypeError(`Headers.${what}: "${value}" is an invalid header value.`);
    const i = value.search(/[^\x00-\xff]/);
    if (i >= 0) {
      throw new TypeError(`Cannot convert argument to a ByteString because the character at index ${i} ` +
        `has a value of ${value.charCodeAt(i)} which is greater than 255.`);
    }
    return value;
  }
  const mutable = (h) => {
    if (h.immutable) throw new TypeError('immutable');
    return h;
  };
  function appendHeader(h, name, value) {
    const n = headerName(name, 'append');
    mutable(h).list.push([n, headerValue(value, n, 'append')]);
  }
  function fillHeaders(h, init) {
    if (init === undefined) return;
    if (init === null || (typeof init !== 'object' && typeof init !== 'function')) {
      throw new TypeError("Failed to construct 'Headers': The provided value is not of type '(record<ByteString, ByteString> or sequence<sequence<ByteString>>)'");
    }
    if (headersOf.has(init)) {
      for (const [k, v] of headersOf.get(init).list) h.list.push([k, v]);
    } else if (typeof init[Symbol.iterator] === 'function') {
      for (const pair of init) {
        const p = typeof pair === 'string' ? [] : [...pair];
        if (p.length !== 2) throw new TypeError('Headers constructor: expected name/value pair to be length 2, found ' + p.length + '.');
        appendHeader(h, p[0], p[1]);
      }
    } else {
      for (const k of Object.keys(init)) appendHeader(h, k, init[k]);
    }
  }

  class Headers {
    constructor(init) {
      const h = { list: [], immutable: false };
      headersOf.set(this, h);
      fillHeaders(h, init);
    }
    append(name, value) { appendHeader(H(this), name, value); }
    delete(name) {
      const h = mutable(H(this));
      const n = headerName(name, 'delete');
      h.list = h.list.filter(([k]) => k !== n);
    }
    get(name) {
      const n = headerName(name, 'get');
      const values = H(this).list.filter(([k]) => k === n).map(([, v]) => v);
      return values.length === 0 ? null : values.join(', ');
    }
    getSetCookie() { return H(this).list.filter(([k]) => k === 'set-cookie').map(([, v]) => v); }
    has(name) { const n = headerName(name, 'has'); return H(this).list.some(([k]) => k === n); }
    set(name, value) {
      const h = mutable(H(this));
      const n = headerName(name, 'set');
      const v = headerValue(value, n, 'set');
      const i = h.list.findIndex(([k]) => k === n);
      if (i < 0) h.list.push([n, v]);
      else h.list = h.list.filter(([k], j) => j <= i || k !== n).map((e, j) => (j === i ? [n, v] : e));
    }
    forEach(fn, thisArg) {
      if (typeof fn !== 'function') throw new TypeError('The "callback" argument must be of type function');
      for (const [k, v] of this) fn.call(thisArg, v, k, this);
    }
    // Sorted by name, values of the same name combined (except set-cookie), as the standard says.
    *entries() {
      const list = H(this).list;
      const names = [...new Set(list.map(([k]) => k))].sort();
      for (const n of names) {
        if (n === 'set-cookie') {
          for (const [k, v] of list) if (k === n) yield [n, v];
        } else {
          yield [n, list.filter(([k]) => k === n).map(([, v]) => v).join(', ')];
        }
      }
    }
    *keys() { for (const [k] of this.entries()) yield k; }
    *values() { for (const [, v] of this.entries()) yield v; }
    [Symbol.iterator]() { return this.entries(); }
    get [Symbol.toStringTag]() { return 'Headers'; }
  }
  const immutableHeaders = (list) => {
    const headers = new Headers();
    const h = H(headers);
    for (const pair of Array.isArray(list) ? list : []) {
      if (!Array.isArray(pair) || pair.length !== 2) continue;
      try { appendHeader(h, pair[0], pair[1]); } catch {}
    }
    h.immutable = true;
    return headers;
  };

  // Bodies are held whole, as bytes: [Uint8Array or null, default content type or null].
  function extractBody(body) {
    if (typeof body === 'string') return [utf8(body), 'text/plain;charset=UTF-8'];
    if (paramsOf.has(body)) return [utf8(`${body}`), 'application/x-www-form-urlencoded;charset=UTF-8'];
    if (isArrayBuffer(body)) return [new Uint8Array(ArrayBuffer.prototype.slice.call(body, 0)), null];
    if (ArrayBuffer.isView(body)) {
      return [new Uint8Array(body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength)), null];
    }
    return [utf8(`${body}`), 'text/plain;charset=UTF-8'];
  }
  const bodyOf = new WeakMap();  // Request/Response -> { bytes: Uint8Array | null, used }
  const B = (o) => {
    const b = bodyOf.get(o);
    if (b === undefined) throw new TypeError('Illegal invocation');
    return b;
  };
  function consumeBody(o, then) {
    try {
      const b = B(o);
      if (b.used) throw new TypeError('Body is unusable: body already used');
      if (b.bytes !== null) b.used = true;
      const bytes = b.bytes === null ? new Uint8Array(0) : b.bytes;
      return Promise.resolve().then(() => then(bytes));
    } catch (e) {
      return Promise.reject(e);
    }
  }
  const decodeText = (bytes) => {
    const s = host.utf8Decode(bytes, false);
    return s.charCodeAt(0) === 0xfeff ? s.slice(1) : s;
  };
  // A minimal stream for `body`: one chunk with all the bytes, via getReader() or for await.
  function bodyStream(b) {
    let done = false;
    const read = () => {
      if (done || b.bytes === null) return Promise.resolve({ done: true, value: undefined });
      if (b.used) return Promise.reject(new TypeError('Body is unusable: body already used'));
      done = true;
      b.used = true;
      return Promise.resolve({ done: false, value: b.bytes.slice() });
    };
    const reader = () => ({
      read,
      releaseLock() {},
      cancel() { done = true; b.used = true; return Promise.resolve(); },
      closed: Promise.resolve(),
    });
    return {
      get locked() { return false; },
      getReader: reader,
      cancel() { done = true; b.used = true; return Promise.resolve(); },
      [Symbol.asyncIterator]() {
        return { next: read, return: () => Promise.resolve({ done: true, value: undefined }), [Symbol.asyncIterator]() { return this; } };
      },
      get [Symbol.toStringTag]() { return 'ReadableStream'; },
      [inspectCustom]: () => `ReadableStream { locked: false, state: '${b.used ? 'closed' : 'readable'}', supportsBYOB: false }`,
    };
  }
  const bodyMixin = {
    get body() {
      const b = B(this);
      if (b.bytes === null) return null;
      if (b.stream === undefined) b.stream = bodyStream(b);
      return b.stream;
    },
    get bodyUsed() { return B(this).used; },
    arrayBuffer() { return consumeBody(this, (b) => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)); },
    bytes() { return consumeBody(this, (b) => b.slice()); },
    text() { return consumeBody(this, decodeText); },
    json() { return consumeBody(this, (b) => JSON.parse(decodeText(b))); },
  };

  const requestOf = new WeakMap();
  const R = (o) => {
    const r = requestOf.get(o);
    if (r === undefined) throw new TypeError('Value of "this" must be of type Request');
    return r;
  };
  class Request {
    constructor(input, init) {
      if (arguments.length === 0) throw new TypeError("Failed to construct 'Request': 1 argument required, but only 0 present.");
      if (init === undefined || init === null) init = {};
      if (typeof init !== 'object' && typeof init !== 'function') throw new TypeError("Failed to construct 'Request': cannot convert init to a dictionary");
      const from = requestOf.get(input);
      let r;
      let bytes = null;
      if (from !== undefined) {
        r = { ...from, headers: new Headers(from.headers) };
        bytes = bodyOf.get(input).bytes;
        if (bodyOf.get(input).used && init.body === undefined) throw new TypeError('Cannot construct a Request with a Request object that has already been used.');
      } else {
        const u = parseURL(toUSV(input));
        if (u === null) throw new TypeError(`Failed to parse URL from ${input}`);
        if (u.username !== '' || u.password !== '') throw new TypeError(`Request cannot be constructed from a URL that includes credentials: ${input}`);
        r = { url: serializeURL(u), method: 'GET', headers: new Headers(), signal: null, redirect: 'follow' };
      }
      if (init.method !== undefined) {
        let m = `${init.method}`;
        if (!tokenRe.test(m)) throw new TypeError(`'${m}' is not a valid HTTP method.`);
        if (/^(CONNECT|TRACE|TRACK)$/i.test(m)) throw new TypeError(`'${m}' HTTP method is unsupported.`);
        if (/^(DELETE|GET|HEAD|OPTIONS|POST|PUT)$/i.test(m)) m = m.toUpperCase();
        r.method = m;
      }
      if (init.headers !== undefined) r.headers = new Headers(init.headers);
      if (init.signal !== undefined) {
        if (init.signal !== null) S(init.signal);
        r.signal = init.signal;
      }
      if (init.redirect !== undefined) {
        if (!['follow', 'error', 'manual'].includes(`${init.redirect}`)) {
          throw new TypeError(`Failed to construct 'Request': The provided value '${init.redirect}' is not a valid enum value of type RequestRedirect.`);
        }
        r.redirect = `${init.redirect}`;
      }
      let type = null;
      if (init.body !== undefined) [bytes, type] = init.body === null ? [null, null] : extractBody(init.body);
      if (bytes !== null && (r.method === 'GET' || r.method === 'HEAD')) {
        throw new TypeError('Request with GET/HEAD method cannot have body.');
      }
      if (type !== null && !r.headers.has('content-type')) r.headers.append('content-type', type);
      if (r.signal === null) r.signal = newSignal();
      requestOf.set(this, r);
      bodyOf.set(this, { bytes, used: false });
    }
    get method() { return R(this).method; }
    get url() { return R(this).url; }
    get headers() { return R(this).headers; }
    get signal() { return R(this).signal; }
    get redirect() { return R(this).redirect; }
    get credentials() { R(this); return 'same-origin'; }
    get mode() { R(this); return 'cors'; }
    get cache() { R(this); return 'default'; }
    get referrer() { R(this); return 'about:client'; }
    get referrerPolicy() { R(this); return ''; }
    get integrity() { R(this); return ''; }
    get keepalive() { R(this); return false; }
    get destination() { R(this); return ''; }
    get duplex() { R(this); return 'half'; }
    clone() {
      if (B(this).used) throw new TypeError('Request.clone: Body has already been consumed.');
      return new Request(this);
    }
    get [Symbol.toStringTag]() { return 'Request'; }
  }

  const responseOf = new WeakMap();
  const Q = (o) => {
    const r = responseOf.get(o);
    if (r === undefined) throw new TypeError('Value of "this" must be of type Response');
    return r;
  };
  const nullBodyStatus = [101, 103, 204, 205, 304];
  const makeResponse = (state, bytes) => {
    const res = Object.create(Response.prototype);
    responseOf.set(res, state);
    bodyOf.set(res, { bytes, used: false });
    return res;
  };
  class Response {
    constructor(body = null, init) {
      if (init === undefined || init === null) init = {};
      const status = init.status === undefined ? 200 : Number(init.status);
      if (!Number.isInteger(status) || status < 200 || status > 599) {
        throw new RangeError(`init["status"] must be in the range of 200 to 599, inclusive.`);
      }
      const statusText = init.statusText === undefined ? '' : `${init.statusText}`;
      if (!/^[\t\x20-\x7e\x80-\xff]*$/.test(statusText)) throw new TypeError('Invalid statusText');
      const headers = new Headers(init.headers);
      let bytes = null;
      if (body !== null && body !== undefined) {
        if (nullBodyStatus.includes(status)) throw new TypeError('Response constructor: Invalid response status code ' + status);
        let type;
        [bytes, type] = extractBody(body);
        if (type !== null && !headers.has('content-type')) headers.append('content-type', type);
      }
      responseOf.set(this, { status, statusText, headers, url: '', redirected: false, type: 'default' });
      bodyOf.set(this, { bytes, used: false });
    }
    static error() {
      return makeResponse({ status: 0, statusText: '', headers: immutableHeaders([]), url: '', redirected: false, type: 'error' }, null);
    }
    static json(data, init) {
      const text = JSON.stringify(data);
      if (text === undefined) throw new TypeError('Value is not JSON serializable');
      const o = init === undefined || init === null ? {} : init;
      const headers = new Headers(o.headers);
      if (!headers.has('content-type')) headers.set('content-type', 'application/json');
      return new Response(text, { status: o.status, statusText: o.statusText, headers });
    }
    static redirect(url, status = 302) {
      const u = parseURL(toUSV(url));
      if (u === null) throw new TypeError(`Failed to parse URL from ${url}`);
      if (![301, 302, 303, 307, 308].includes(status)) throw new RangeError(`Invalid status code ${status}`);
      return makeResponse({ status, statusText: '', headers: immutableHeaders([['location', serializeURL(u)]]), url: '', redirected: false, type: 'default' }, null);
    }
    get status() { return Q(this).status; }
    get ok() { const s = Q(this).status; return s >= 200 && s <= 299; }
    get statusText() { return Q(this).statusText; }
    get headers() { return Q(this).headers; }
    get url() { return Q(this).url; }
    get redirected() { return Q(this).redirected; }
    get type() { return Q(this).type; }
    clone() {
      const r = Q(this);
      const b = B(this);
      if (b.used) throw new TypeError('Response.clone: Body has already been consumed.');
      const headers = new Headers(r.headers);
      H(headers).immutable = H(r.headers).immutable;
      return makeResponse({ ...r, headers }, b.bytes);
    }
    get [Symbol.toStringTag]() { return 'Response'; }
  }
  for (const C of [Request, Response]) {
    for (const [k, d] of Object.entries(Object.getOwnPropertyDescriptors(bodyMixin))) {
      Object.defineProperty(C.prototype, k, { ...d, enumerable: false });
    }
  }

  // Printed like Node prints them.
  const inspectAs = (name, fields) => function (depth, opts, insp) {
    if (depth < 0) return `[${name}]`;
    return `${name} ${insp(fields(this), opts)}`;
  };
  define(Headers.prototype, inspectCustom, inspectAs('Headers', (h) => Object.fromEntries(h)));
  define(URLSearchParams.prototype, inspectCustom, function (depth, opts, insp) {
    const list = P(this).list;
    if (list.length === 0) return 'URLSearchParams {}';
    return `URLSearchParams { ${list.map(([k, v]) => `${insp(k)} => ${insp(v)}`).join(', ')} }`;
  });
  define(URL.prototype, inspectCustom, inspectAs('URL', (u) => ({
    href: u.href, origin: u.origin, protocol: u.protocol, username: u.username, password: u.password,
    host: u.host, hostname: u.hostname, port: u.port, pathname: u.pathname, search: u.search,
    searchParams: u.searchParams, hash: u.hash,
  })));
  define(AbortSignal.prototype, inspectCustom, inspectAs('AbortSignal', (s) => ({ aborted: s.aborted })));
  define(Request.prototype, inspectCustom, inspectAs('Request', (r) => ({
    method: r.method, url: r.url, headers: r.headers, destination: r.destination, referrer: r.referrer,
    referrerPolicy: r.referrerPolicy, mode: r.mode, credentials: r.credentials, cache: r.cache,
    redirect: r.redirect, integrity: r.integrity, keepalive: r.keepalive, signal: r.signal,
  })));
  define(Response.prototype, inspectCustom, inspectAs('Response', (r) => ({
    status: r.status, statusText: r.statusText, headers: r.headers, body: r.body, bodyUsed: r.bodyUsed,
    ok: r.ok, redirected: r.redirected, type: r.type, url: r.url,
  })));

  // Requests over the broker channel (a socket to the supervisor, which decides each one): one
  // JSON frame {id, op, ...} per request, answered by a frame with the same id, in any order.
  // fetch() and mcp calls both go through here.
  const pendingRequests = new Map();  // id -> { answer(frame), fail(reason) }
  let nextRequestId = 1;
  // The supervisor refuses more than this many requests of a run at once: the rest wait here.
  const kMaxRequestsInFlight = 8;
  const sentRequests = new Set();  // ids sent and not answered yet (cancelled ones included)
  const queuedRequests = [];  // [id, payload] waiting for a slot
  function sendRequest(id, payload) {
    sentRequests.add(id);
    const error = host.brokerSend(payload);
    if (error !== undefined) sentRequests.delete(id);
    return error;
  }
  function pumpRequests() {
    while (sentRequests.size < kMaxRequestsInFlight && queuedRequests.length > 0) {
      const [id, payload] = queuedRequests.shift();
      if (!pendingRequests.has(id)) continue;  // cancelled while queued
      const error = sendRequest(id, payload);
      if (error !== undefined) settleRequest(id, (entry) => entry.fail(error));
    }
  }
  // Sends {id, ...fields} now, or once a slot is free. Later, exactly one of entry.answer(frame)
  // and entry.fail(reason) is called, unless the request is cancelled first. Returns the id, or
  // throws `failure(reason)` when the frame cannot be sent at all.
  function brokerRequest(fields, entry, failure) {
    const id = nextRequestId++;
    const payload = JSON.stringify({ id, ...fields });
    if (sentRequests.size < kMaxRequestsInFlight) {
      const error = sendRequest(id, payload);
      if (error !== undefined) throw failure(error);
    } else {
      queuedRequests.push([id, payload]);
    }
    pendingRequests.set(id, entry);
    return id;
  }
  // The answer, if it still comes, is ignored. False when the request was already settled.
  const cancelRequest = (id) => pendingRequests.delete(id);
  function settleRequest(id, settle) {
    const entry = pendingRequests.get(id);
    if (entry === undefined) return;
    pendingRequests.delete(id);
    settle(entry);
  }

  // fetch() over the network broker, which applies the network policy and does the HTTP.
  const fetchFailure = (reason) => new TypeError(`fetch failed: ${reason}`);
  function fetch(input, init) {
    return new Promise((resolve, reject) => {
      const req = new Request(input, init);
      const r = requestOf.get(req);
      const b = bodyOf.get(req);
      if (r.signal.aborted) throw r.signal.reason;
      const scheme = r.url.slice(0, r.url.indexOf(':'));
      if (scheme !== 'http' && scheme !== 'https') throw new TypeError(`fetch failed: unsupported URL scheme "${scheme}:"`);
      if (b.used) throw new TypeError('Body is unusable: body already used');
      const list = H(r.headers).list;
      const headers = list.map(([k, v]) => [k, v]);
      if (!list.some(([k]) => k === 'accept')) headers.push(['accept', '*/*']);
      if (!list.some(([k]) => k === 'user-agent')) headers.push(['user-agent', '1mcp-fetch']);
      const msg = { op: 'fetch', method: r.method, url: r.url, headers };
      if (b.bytes !== null) {
        msg.body = host.base64Encode(b.bytes);
        b.used = true;
      }
      if (r.redirect !== 'follow') msg.redirect = r.redirect;
      const timeoutMs = S(r.signal).timeoutMs;
      if (timeoutMs !== undefined) msg.timeoutMs = Math.ceil(timeoutMs);
      const onAbort = () => {
        if (cancelRequest(id)) reject(r.signal.reason);
      };
      const done = () => r.signal.removeEventListener('abort', onAbort);
      const id = brokerRequest(msg, {
        answer(m) {
          done();
          let res;
          try { res = responseFromBroker(m, r.redirect); } catch (e) { reject(e); return; }
          resolve(res);
        },
        fail(reason) {
          done();
          reject(fetchFailure(reason));
        },
      }, fetchFailure);
      r.signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  function responseFromBroker(m, redirect) {
    if (m.ok !== true) {
      throw new TypeError(`fetch failed: ${typeof m.error === 'string' ? m.error : 'no reason given by the network broker'}`);
    }
    const status = Number(m.status);
    if (!Number.isInteger(status) || status < 0 || status > 999) throw new TypeError('fetch failed: invalid reply from the network broker');
    if (redirect === 'error' && m.redirected === true) throw new TypeError('fetch failed: unexpected redirect');
    let bytes = null;
    if (!nullBodyStatus.includes(status)) {
      const buf = m.body === undefined || m.body === null ? new ArrayBuffer(0) : host.base64Decode(`${m.body}`);
      if (buf === null) throw new TypeError('fetch failed: invalid reply from the network broker');
      bytes = new Uint8Array(buf);
    }
    return makeResponse({
      status,
      statusText: typeof m.statusText === 'string' ? m.statusText : '',
      headers: immutableHeaders(m.headers),
      url: typeof m.url === 'string' ? m.url : '',
      redirected: m.redirected === true,
      type: 'basic',
    }, bytes);
  }

  // Upstream MCP tools ("code mode"): `await mcp.<server>.<tool>(args)` calls a tool of an
  // upstream server through the supervisor, which maps the identifiers and applies policy.mcps;
  // `await mcp.$list()` gives { server: [tool, ...] } of what this run may call, and
  // `await mcp.$search(query, { detail, limit })` the search_tools answer over them. A failure
  // rejects with an McpError whose isError is true when the tool itself reported an error.
  class McpError extends Error {
    constructor(message, isError) {
      super(message);
      this.isError = isError;
    }
  }
  define(McpError.prototype, 'name', 'McpError');
  const mcpFailure = (reason) => new McpError(`upstream tools are not available: ${reason}`, false);
  const mcpRequest = (fields) => new Promise((resolve, reject) => {
    brokerRequest(fields, {
      answer(m) {
        if (m.ok === true) return resolve(m.result);
        reject(new McpError(typeof m.error === 'string' ? m.error : 'the call failed', m.isError === true));
      },
      fail: (reason) => reject(mcpFailure(reason)),
    }, mcpFailure);
  });
  const isPlainObject = (v) => {
    if (typeof v !== 'object' || v === null) return false;
    const proto = Object.getPrototypeOf(v);
    return proto === Object.prototype || proto === null;
  };
  const mcpTool = (server, tool) => {
    const call = function (args = {}) {
      if (!isPlainObject(args)) {
        return Promise.reject(new TypeError(`mcp.${server}.${tool}: the arguments must be a plain object`));
      }
      return mcpRequest({ op: 'mcp', server, tool, args });
    };
    Object.defineProperty(call, 'name', { value: tool });
    return call;
  };
  // A namespace object: every string key is a member made by `member(key)` (cached), except
  // `then` (so awaiting it does not hang) and `toJSON`; symbols (inspect, toPrimitive) and
  // `own` come from the target. Read-only.
  const mcpNamespace = (label, member, own = {}) => {
    const target = Object.create(null);
    define(target, inspectCustom, () => label);
    define(target, Symbol.toPrimitive, () => label);
    const members = new Map();
    return new Proxy(target, {
      get(t, key) {
        if (typeof key === 'symbol') return t[key];
        if (hasOwn(own, key)) return own[key];
        if (key === 'then' || key === 'toJSON') return undefined;
        if (!members.has(key)) members.set(key, member(key));
        return members.get(key);
      },
      set: () => false,
      defineProperty: () => false,
      deleteProperty: () => false,
      setPrototypeOf: () => false,
    });
  };
  const mcp = mcpNamespace('[mcp: upstream MCP servers; await mcp.$list() lists their tools]',
    (server) => mcpNamespace(`[mcp.${server}: tools of an upstream MCP server]`, (tool) => mcpTool(server, tool)),
    {
      $list: () => mcpRequest({ op: 'mcp_list' }),
      $search: (query, options = {}) => {
        if (typeof query !== 'string') return Promise.reject(new TypeError('mcp.$search: the query must be a string'));
        if (!isPlainObject(options)) return Promise.reject(new TypeError('mcp.$search: the options must be a plain object'));
        return mcpRequest({ op: 'mcp_search', query, detail: options.detail, limit: options.limit });
      },
    });

  const performance = { timeOrigin: Date.now(), now: () => host.now() - startTime };

  // ---------------------------------------------------------------- Web Crypto: crypto.subtle
  // What Node's and browsers' crypto.subtle have of it: digest (SHA-1, SHA-256, SHA-384,
  // SHA-512) and HMAC keys (importKey and exportKey 'raw', generateKey, sign, verify), computed
  // by the host's libcrypto (host.digest, host.hmac, host.hmacVerify, which compares in constant
  // time). Arguments are converted as WebIDL and the spec's algorithm normalisation say, and
  // every failure is a rejected promise: a TypeError for an argument of the wrong type, else a
  // DOMException (NotSupportedError, InvalidAccessError, SyntaxError, DataError,
  // OperationError). Other algorithms, formats and methods reject with NotSupportedError. A key's
  // bytes are a private copy in keyState, never reachable from its CryptoKey.
  const IntrinsicUint8Array = Uint8Array;
  const typedArrayBuffer = getter(typedArrayProto, 'buffer');
  const typedArrayByteOffset = getter(typedArrayProto, 'byteOffset');
  const typedArrayByteLength = getter(typedArrayProto, 'byteLength');
  const dataViewBuffer = getter(DataView.prototype, 'buffer');
  const dataViewByteOffset = getter(DataView.prototype, 'byteOffset');
  const dataViewByteLength = getter(DataView.prototype, 'byteLength');
  const isDataViewObject = (v) => brand(dataViewBuffer, v);  // also when its buffer is detached
  const isObjectLike = (v) => (typeof v === 'object' && v !== null) || typeof v === 'function';
  const toDOMString = (v) => `${v}`;  // a TypeError for a symbol, as WebIDL has it
  const ordinals = ['1st', '2nd', '3rd', '4th', '5th', '6th', '7th'];
  const subtleTypeError = (method, text) =>
    new TypeError(`Failed to execute '${method}' on 'SubtleCrypto': ${text}`);
  const notSupported = (text) => new DOMException(text, 'NotSupportedError');
  const invalidAccess = (text) => new DOMException(text, 'InvalidAccessError');
  function requireArguments(method, required, present) {
    if (present < required) {
      throw subtleTypeError(method, `${required} arguments required, but only ${present} present.`);
    }
  }
  const isBufferSource = (v) => isArrayBuffer(v) || isTypedArray(v) || isDataViewObject(v);
  function checkBufferSource(v, method, index) {
    if (!isBufferSource(v)) {
      throw subtleTypeError(method,
          `${ordinals[index]} argument is not an ArrayBuffer, a TypedArray or a DataView.`);
    }
  }
  // A Uint8Array over the bytes of a BufferSource argument, not a copy: taken right before the
  // host reads them, with no script code running in between. A detached buffer has no bytes, as
  // WebIDL says; a view of a SharedArrayBuffer is refused, as WebIDL does without [AllowShared].
  function bufferSourceBytes(v, method, index) {
    checkBufferSource(v, method, index);
    const typed = isTypedArray(v);
    const buffer = isArrayBuffer(v) ? v : typed ? typedArrayBuffer.call(v) : dataViewBuffer.call(v);
    if (!isArrayBuffer(buffer)) {
      throw subtleTypeError(method, `${ordinals[index]} argument is a view of a SharedArrayBuffer.`);
    }
    if (arrayBufferByteLength.call(buffer) === 0) return new IntrinsicUint8Array(0);  // empty or detached
    if (buffer === v) return new IntrinsicUint8Array(v);
    if (typed) return new IntrinsicUint8Array(buffer, typedArrayByteOffset.call(v), typedArrayByteLength.call(v));
    return new IntrinsicUint8Array(buffer, dataViewByteOffset.call(v), dataViewByteLength.call(v));
  }
  const byteCount = (bytes) => typedArrayByteLength.call(bytes);
  function enumArgument(v, values, method, index, type) {
    const s = toDOMString(v);
    if (!values.includes(s)) {
      throw subtleTypeError(method, `${ordinals[index]} argument value '${s}' is not a valid enum value of type ${type}.`);
    }
    return s;
  }
  const keyFormats = ['raw', 'spki', 'pkcs8', 'jwk'];
  const keyUsageOrder = ['encrypt', 'decrypt', 'sign', 'verify', 'deriveKey', 'deriveBits', 'wrapKey', 'unwrapKey'];
  // sequence<KeyUsage>: each once, in the spec's order.
  function keyUsagesArgument(v, method, index) {
    if (!isObjectLike(v) || typeof v[Symbol.iterator] !== 'function') {
      throw subtleTypeError(method, `${ordinals[index]} argument is not a sequence of key usages.`);
    }
    const given = new Set();
    for (const u of v) given.add(enumArgument(u, keyUsageOrder, method, index, 'KeyUsage'));
    return keyUsageOrder.filter((u) => given.has(u));
  }
  // WebIDL's unsigned long with [EnforceRange].
  function unsignedLong(v, what) {
    const x = +v;  // a TypeError for a symbol or a BigInt
    if (!Number.isFinite(x)) throw new TypeError(`${what} is not a finite number`);
    const n = Math.trunc(x);
    if (n < 0 || n > 0xffffffff) throw new TypeError(`${what} is outside the range of an unsigned long`);
    return n + 0;  // not -0
  }

  // The spec's algorithm normalisation. An AlgorithmIdentifier is an object or else a string,
  // the name; names match ASCII case-insensitively, and the registered ones are all upper case.
  const algorithmArgument = (v) => (isObjectLike(v) ? v : toDOMString(v));
  const asciiUpper = (s) => s.replace(/[a-z]+/g, (w) => w.toUpperCase());
  const noParams = () => ({});
  // HmacImportParams and HmacKeyGenParams: a hash (required) and a length in bits (optional),
  // converted in WebIDL's order, the hash normalised last.
  function hmacParams(alg) {
    const hash = alg.hash;
    if (hash === undefined) throw new TypeError("Failed to normalize algorithm: 'hash' is required for HMAC");
    const hashId = algorithmArgument(hash);
    const lengthValue = alg.length;
    const length = lengthValue === undefined ? undefined : unsignedLong(lengthValue, 'HMAC: algorithm.length');
    return { hash: normalizeAlgorithm(hashId, 'digest'), length };
  }
  const digests = { 'SHA-1': noParams, 'SHA-256': noParams, 'SHA-384': noParams, 'SHA-512': noParams };
  const registeredAlgorithms = {
    digest: digests,
    sign: { HMAC: noParams },
    verify: { HMAC: noParams },
    importKey: { HMAC: hmacParams },
    generateKey: { HMAC: hmacParams },
  };
  function normalizeAlgorithm(algorithm, op) {
    const alg = typeof algorithm === 'string' ? { name: algorithm } : algorithm;
    const rawName = alg.name;
    if (rawName === undefined) throw new TypeError("Failed to normalize algorithm: 'name' is required");
    const name = asciiUpper(toDOMString(rawName));
    const registered = hasOwn(registeredAlgorithms, op) ? registeredAlgorithms[op] : {};
    if (!hasOwn(registered, name)) throw notSupported('Unrecognized algorithm name');
    return { name, ...registered[name](alg) };
  }
  // Block sizes in bits: the length of a generated HMAC key when none is asked for.
  const hashBlockBits = { 'SHA-1': 512, 'SHA-256': 512, 'SHA-384': 1024, 'SHA-512': 1024 };

  // CryptoKey: its getters read keyState, which the script cannot reach. `algorithm` and `usages`
  // are the same objects on every read, as the spec has them; changing them changes nothing.
  const keyState = new WeakMap();  // CryptoKey -> { type, extractable, algorithm, usages, own }
  const K = (o) => {
    const k = keyState.get(o);
    if (k === undefined) throw new TypeError('Value of "this" must be of type CryptoKey');
    return k;
  };
  const constructKey = Symbol('CryptoKey');
  class CryptoKey {
    constructor(token) {
      if (token !== constructKey) throw new TypeError('Illegal constructor');
    }
    get type() { return K(this).type; }
    get extractable() { return K(this).extractable; }
    get algorithm() { return K(this).algorithm; }
    get usages() { return K(this).usages; }
    get [Symbol.toStringTag]() { return 'CryptoKey'; }
    [inspectCustom](depth, options, inspectValue) {
      const k = keyState.get(this);
      if (k === undefined || depth < 0) return this;
      const fields = { type: k.type, extractable: k.extractable, algorithm: k.algorithm, usages: k.usages };
      return `CryptoKey ${inspectValue(fields, { ...options, depth: options.depth - 1 })}`;
    }
  }
  // `bytes`: the key's own ArrayBuffer (a copy made by the host).
  function newHmacKey(hash, length, extractable, usages, bytes) {
    const key = new CryptoKey(constructKey);
    keyState.set(key, {
      type: 'secret',
      extractable,
      algorithm: { name: 'HMAC', hash: { name: hash }, length },
      usages: usages.slice(),
      own: { name: 'HMAC', hash, usages: usages.slice(), bytes: new IntrinsicUint8Array(bytes) },
    });
    return key;
  }
  function cryptoKeyArgument(v, method, index) {
    const k = keyState.get(v);  // undefined for anything else, primitives included
    if (k === undefined) throw subtleTypeError(method, `${ordinals[index]} argument is not of type CryptoKey.`);
    return k;
  }
  function checkKeyUse(k, alg, usage) {
    if (k.own.name !== alg.name) throw invalidAccess('Key algorithm mismatch');
    if (!k.own.usages.includes(usage)) throw invalidAccess(`Unable to use this key to ${usage}`);
  }
  function checkHmacUsages(usages) {
    for (const u of usages) {
      if (u !== 'sign' && u !== 'verify') throw new DOMException('Unsupported key usage for an HMAC key', 'SyntaxError');
    }
  }
  function checkUsagesGiven(usages, when) {
    if (usages.length === 0) throw new DOMException(`Usages cannot be empty when ${when}.`, 'SyntaxError');
  }

  const constructSubtle = Symbol('SubtleCrypto');
  let subtle;
  const checkThis = (self) => {
    if (self !== subtle) throw new TypeError('Value of "this" must be of type SubtleCrypto');
  };
  // The methods whose algorithms this crypto.subtle has none of: checked as the others, then
  // refused as an unknown algorithm would be.
  function unsupported(self, method, required, present, algorithm, op) {
    checkThis(self);
    requireArguments(method, required, present);
    normalizeAlgorithm(algorithmArgument(algorithm), op);
    throw notSupported('Unrecognized algorithm name');
  }
  class SubtleCrypto {
    constructor(token) {
      if (token !== constructSubtle) throw new TypeError('Illegal constructor');
    }
    async digest(algorithm, data) {
      checkThis(this);
      requireArguments('digest', 2, arguments.length);
      const algId = algorithmArgument(algorithm);
      checkBufferSource(data, 'digest', 1);
      const alg = normalizeAlgorithm(algId, 'digest');
      return host.digest(alg.name, bufferSourceBytes(data, 'digest', 1));
    }
    async importKey(format, keyData, algorithm, extractable, keyUsages) {
      checkThis(this);
      requireArguments('importKey', 5, arguments.length);
      const fmt = enumArgument(format, keyFormats, 'importKey', 0, 'KeyFormat');
      const isBytes = isBufferSource(keyData);
      if (!isBytes && !isObjectLike(keyData) && keyData !== undefined && keyData !== null) {
        throw subtleTypeError('importKey', '2nd argument is not a BufferSource nor a JsonWebKey.');
      }
      const algId = algorithmArgument(algorithm);
      const canExtract = !!extractable;
      const usages = keyUsagesArgument(keyUsages, 'importKey', 4);
      const alg = normalizeAlgorithm(algId, 'importKey');
      if (fmt === 'jwk' && isBytes) throw subtleTypeError('importKey', "a 'jwk' key is a JsonWebKey object.");
      if (fmt !== 'jwk' && !isBytes) throw subtleTypeError('importKey', `a '${fmt}' key is a BufferSource.`);
      checkHmacUsages(usages);  // HMAC is the one algorithm importKey knows
      if (fmt !== 'raw') throw notSupported(`Unable to import an HMAC key in the '${fmt}' format`);
      const bytes = bufferSourceBytes(keyData, 'importKey', 1);
      const bits = byteCount(bytes) * 8;
      if (bits === 0) throw new DOMException('Zero-length key is not supported', 'DataError');
      let length = bits;
      if (alg.length !== undefined) {
        if (alg.length > bits || alg.length <= bits - 8) {
          throw new DOMException(`Invalid key length: ${alg.length} bits for ${bits / 8} bytes`, 'DataError');
        }
        length = alg.length;
      }
      checkUsagesGiven(usages, 'importing a secret key');
      return newHmacKey(alg.hash.name, length, canExtract, usages, host.bytesCopy(bytes));
    }
    async exportKey(format, key) {
      checkThis(this);
      requireArguments('exportKey', 2, arguments.length);
      const fmt = enumArgument(format, keyFormats, 'exportKey', 0, 'KeyFormat');
      const k = cryptoKeyArgument(key, 'exportKey', 1);
      if (!k.extractable) throw invalidAccess('key is not extractable');
      if (fmt !== 'raw') throw notSupported(`Unable to export an HMAC key in the '${fmt}' format`);
      return host.bytesCopy(k.own.bytes);
    }
    async generateKey(algorithm, extractable, keyUsages) {
      checkThis(this);
      requireArguments('generateKey', 3, arguments.length);
      const algId = algorithmArgument(algorithm);
      const canExtract = !!extractable;
      const usages = keyUsagesArgument(keyUsages, 'generateKey', 2);
      const alg = normalizeAlgorithm(algId, 'generateKey');
      checkHmacUsages(usages);  // HMAC is the one algorithm generateKey knows
      const length = alg.length === undefined ? hashBlockBits[alg.hash.name] : alg.length;
      if (length === 0) throw new DOMException('Zero-length key is not supported', 'OperationError');
      checkUsagesGiven(usages, 'creating a key');
      const n = Math.ceil(length / 8);
      const bytes = new IntrinsicUint8Array(n);
      for (let at = 0; at < n; at += 65536) {
        bytes.set(new IntrinsicUint8Array(host.randomBytes(Math.min(65536, n - at))), at);
      }
      return newHmacKey(alg.hash.name, length, canExtract, usages, typedArrayBuffer.call(bytes));
    }
    async sign(algorithm, key, data) {
      checkThis(this);
      requireArguments('sign', 3, arguments.length);
      const algId = algorithmArgument(algorithm);
      const k = cryptoKeyArgument(key, 'sign', 1);
      checkBufferSource(data, 'sign', 2);
      const alg = normalizeAlgorithm(algId, 'sign');
      checkKeyUse(k, alg, 'sign');
      return host.hmac(k.own.hash, k.own.bytes, bufferSourceBytes(data, 'sign', 2));
    }
    async verify(algorithm, key, signature, data) {
      checkThis(this);
      requireArguments('verify', 4, arguments.length);
      const algId = algorithmArgument(algorithm);
      const k = cryptoKeyArgument(key, 'verify', 1);
      checkBufferSource(signature, 'verify', 2);
      checkBufferSource(data, 'verify', 3);
      const alg = normalizeAlgorithm(algId, 'verify');
      checkKeyUse(k, alg, 'verify');
      return host.hmacVerify(k.own.hash, k.own.bytes, bufferSourceBytes(data, 'verify', 3),
          bufferSourceBytes(signature, 'verify', 2));
    }
    async encrypt(algorithm, key, data) {
      return unsupported(this, 'encrypt', 3, arguments.length, algorithm, 'encrypt');
    }
    async decrypt(algorithm, key, data) {
      return unsupported(this, 'decrypt', 3, arguments.length, algorithm, 'decrypt');
    }
    async deriveBits(algorithm, baseKey, length) {
      return unsupported(this, 'deriveBits', 2, arguments.length, algorithm, 'deriveBits');
    }
    async deriveKey(algorithm, baseKey, derivedKeyType, extractable, keyUsages) {
      return unsupported(this, 'deriveKey', 5, arguments.length, algorithm, 'deriveBits');
    }
    async wrapKey(format, key, wrappingKey, wrapAlgorithm) {
      return unsupported(this, 'wrapKey', 4, arguments.length, wrapAlgorithm, 'wrapKey');
    }
    async unwrapKey(format, wrappedKey, unwrappingKey, unwrapAlgorithm, unwrappedKeyAlgorithm, extractable, keyUsages) {
      return unsupported(this, 'unwrapKey', 7, arguments.length, unwrapAlgorithm, 'unwrapKey');
    }
    get [Symbol.toStringTag]() { return 'SubtleCrypto'; }
  }
  subtle = new SubtleCrypto(constructSubtle);

  // Web Crypto's random parts (as Node's global crypto has them), from the kernel's CSPRNG, and
  // crypto.subtle (above).
  const integerArrays = [
    Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array,
    BigInt64Array, BigUint64Array
  ];
  const crypto = {
    getRandomValues(array) {
      if (!integerArrays.some((T) => array instanceof T)) {
        throw new DOMException(
            'The data argument must be an integer-type TypedArray', 'TypeMismatchError');
      }
      if (array.byteLength > 65536) {
        throw new DOMException(
            `The ArrayBufferView's byte length (${array.byteLength}) exceeds the number of ` +
                'bytes of entropy available via this API (65536)',
            'QuotaExceededError');
      }
      new Uint8Array(array.buffer, array.byteOffset, array.byteLength)
          .set(new Uint8Array(host.randomBytes(array.byteLength)));
      return array;
    },
    randomUUID() {
      const b = new Uint8Array(host.randomBytes(16));
      b[6] = (b[6] & 0x0f) | 0x40;  // version 4
      b[8] = (b[8] & 0x3f) | 0x80;  // RFC 4122 variant
      const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
      return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${
          h.slice(20)}`;
    },
    subtle,
  };

  const globals = {
    console,
    process,
    performance,
    crypto,
    CryptoKey,
    SubtleCrypto,
    structuredClone,
    TextEncoder,
    TextDecoder,
    atob,
    btoa,
    DOMException,
    queueMicrotask,
    fetch,
    Headers,
    Request,
    Response,
    URL,
    URLSearchParams,
    AbortController,
    AbortSignal,
    Event,
    EventTarget,
    mcp,
    setTimeout: (fn, delay, ...args) => addTimer(fn, delay, args, false),
    setInterval: (fn, delay, ...args) => addTimer(fn, delay, args, true),
    setImmediate: (fn, ...args) => addTimer(fn, 0, args, false),
    clearTimeout: clearTimer,
    clearInterval: clearTimer,
    clearImmediate: clearTimer,
  };
  for (const [name, value] of Object.entries(globals)) define(globalThis, name, value);
  define(globalThis, 'global', globalThis);

  // ---------------------------------------------------------------- fs
  // Node's synchronous file API (a subset), its callback forms and fs.promises, on the host's
  // system calls (runtimes/js/fs_host.h) made by the run's own process: what may be read or
  // written is the sandbox's decision (writable /tmp, /out and a session's /work; the rest
  // read-only or absent), and its refusals come back as Node's errors (EROFS, EACCES, ENOENT,
  // with errno, code, syscall and path). Relative paths resolve against process.cwd(). Only
  // regular files are read, at most the run's memory budget at once. Built on first use: a run
  // that never touches fs allocates nothing for it.
  let fsModule, fsNamespace, fsPromisesNamespace;
  const getFs = () => fsModule || (fsModule = makeFs());

  function fsArgError(code, message) {
    const e = new TypeError(message);
    e.code = code;
    return e;
  }
  function received(v) {
    if (v == null) return ` Received ${v}`;
    if (typeof v === 'function') return ` Received function ${v.name || '<anonymous>'}`;
    if (typeof v === 'object') {
      const name = getConstructorName(v);
      return name ? ` Received an instance of ${name}` : ` Received ${inspect(v, { depth: 0 })}`;
    }
    let shown = inspect(v);
    if (shown.length > 28) shown = `${shown.slice(0, 25)}...`;
    return ` Received type ${typeof v} (${shown})`;
  }
  // A path argument as the user gave it (string, file: URL or Uint8Array), checked.
  function fsPathArg(p, name = 'path') {
    if (typeof p !== 'string') {
      if (p instanceof URL) {
        if (p.protocol !== 'file:') throw fsArgError('ERR_INVALID_URL_SCHEME', 'The URL must be of scheme file');
        p = decodeURIComponent(p.pathname);
      } else if (isTypedArray(p) && p instanceof Uint8Array) {
        p = host.utf8Decode(p, false);
      } else {
        throw fsArgError('ERR_INVALID_ARG_TYPE',
          `The "${name}" argument must be of type string or an instance of Buffer or URL.${received(p)}`);
      }
    }
    if (p.includes('\0')) {
      throw fsArgError('ERR_INVALID_ARG_VALUE',
        `The argument '${name}' must be a string, Uint8Array, or URL without null bytes.${received(p)}`);
    }
    return p;
  }
  // What the kernel is given: absolute paths as they are, relative ones after the run's cwd.
  const fsResolve = (p) => (p === '' || p[0] === '/' ? p : cwdValue === '/' ? `/${p}` : `${cwdValue}/${p}`);
  // Node's error for the host function that just returned null.
  function fsFailure(path, dest) {
    const [errno, code, description, syscall, size, limit] = host.fsError();
    if (code === 'ERR_FS_FILE_TOO_LARGE') {
      const mib = limit % 1048576 === 0 ? `${limit / 1048576} MiB` : `${limit} bytes`;
      const e = new RangeError(`File size (${size}) is greater than the run's memory budget (${mib})`);
      e.code = code;
      return e;
    }
    let message = `${code}: ${description}, ${syscall}`;
    if (path !== undefined) message += ` '${path}'`;
    if (dest !== undefined) message += ` -> '${dest}'`;
    const e = new Error(message);
    e.errno = errno;
    e.code = code;
    e.syscall = syscall;
    if (path !== undefined) e.path = path;
    if (dest !== undefined) e.dest = dest;
    return e;
  }
  function processChdir(directory) {
    const given = fsPathArg(directory, 'directory');
    const target = fsResolve(given);
    let errno = -2, code = 'ENOENT', description = 'no such file or directory';
    if (target !== '') {
      const st = host.fsStat(target, true);
      if (st !== null && (st[1] & 0o170000) !== 0o040000) {
        [errno, code, description] = [-20, 'ENOTDIR', 'not a directory'];
      } else if (st === null || host.fsAccess(target, 1) === null) {
        [errno, code, description] = host.fsError();
      } else {
        const parts = [];
        for (const part of target.split('/')) {
          if (part === '..') parts.pop();
          else if (part !== '' && part !== '.') parts.push(part);
        }
        cwdValue = `/${parts.join('/')}`;
        return;
      }
    }
    const e = new Error(`${code}: ${description}, chdir ${cwdValue} -> '${given}'`);
    Object.assign(e, { errno, code, syscall: 'chdir', path: cwdValue, dest: given });
    throw e;
  }

  function makeFs() {
    const S_IFMT = 0o170000;
    const constants = {
      F_OK: 0, R_OK: 4, W_OK: 2, X_OK: 1, COPYFILE_EXCL: 1, COPYFILE_FICLONE: 2, COPYFILE_FICLONE_FORCE: 4,
      O_RDONLY: 0, O_WRONLY: 1, O_RDWR: 2, O_CREAT: 0o100, O_EXCL: 0o200, O_NOCTTY: 0o400, O_TRUNC: 0o1000,
      O_APPEND: 0o2000, O_DIRECTORY: 0o200000, O_NOFOLLOW: 0o400000, O_NONBLOCK: 0o4000,
      S_IFMT, S_IFREG: 0o100000, S_IFDIR: 0o040000, S_IFCHR: 0o020000, S_IFBLK: 0o060000,
      S_IFIFO: 0o010000, S_IFLNK: 0o120000, S_IFSOCK: 0o140000,
    };
    const W = constants.O_WRONLY | constants.O_CREAT;
    const RW = constants.O_RDWR | constants.O_CREAT;
    const { O_TRUNC: T, O_APPEND: A, O_EXCL: X } = constants;
    const writeFlags = {
      w: W | T, wx: W | T | X, xw: W | T | X, 'w+': RW | T, 'wx+': RW | T | X, 'xw+': RW | T | X,
      a: W | A, ax: W | A | X, xa: W | A | X, as: W | A, sa: W | A,
      'a+': RW | A, 'ax+': RW | A | X, 'xa+': RW | A | X, 'as+': RW | A, 'sa+': RW | A,
      'r+': constants.O_RDWR, 'rs+': constants.O_RDWR, 'sr+': constants.O_RDWR,
    };
    function flagsOf(flag, fallback) {
      if (flag === undefined || flag === null) return writeFlags[fallback];
      if (typeof flag === 'number') return flag;
      if (hasOwn(writeFlags, flag)) return writeFlags[flag];
      throw fsArgError('ERR_INVALID_ARG_VALUE', `The argument 'flags' is invalid.${received(flag)}`);
    }
    function encodingOf(enc) {
      if (enc === undefined || enc === null || enc === 'buffer') return null;
      const e = `${enc}`.toLowerCase();
      if (e === 'utf8' || e === 'utf-8') return 'utf8';
      if (e === 'latin1' || e === 'binary') return 'latin1';
      if (e === 'base64' || e === 'base64url' || e === 'hex' || e === 'ascii') return e;
      throw fsArgError('ERR_INVALID_ARG_VALUE', `The argument 'encoding' is invalid encoding.${received(enc)}`);
    }
    const optionsOf = (options) =>
      (typeof options === 'string' ? { encoding: options } : options === null || typeof options !== 'object' ? {} : options);
    function decode(bytes, encoding) {
      switch (encoding) {
        case 'utf8': return host.utf8Decode(bytes, false);
        case 'base64': return host.base64Encode(bytes);
        case 'base64url': return host.base64Encode(bytes).replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
        case 'hex': return Array.from(bytes, (b) => (b < 16 ? '0' : '') + b.toString(16)).join('');
        default: {
          const mask = encoding === 'ascii' ? 0x7f : 0xff;
          let s = '';
          for (let i = 0; i < bytes.length; i += 8192) {
            const chunk = bytes.subarray(i, i + 8192);
            s += String.fromCharCode.apply(null, mask === 0xff ? chunk : Array.from(chunk, (b) => b & mask));
          }
          return s;
        }
      }
    }
    function encode(s, encoding) {
      switch (encoding) {
        case 'latin1':
        case 'ascii': return Uint8Array.from(s, (c) => c.charCodeAt(0) & 0xff);
        case 'base64':
        case 'base64url': {
          const clean = s.replace(/-/g, '+').replace(/_/g, '/').replace(/[^A-Za-z0-9+/]/g, '');
          return new Uint8Array(host.base64Decode(clean.length % 4 === 1 ? clean.slice(0, -1) : clean));
        }
        case 'hex': {
          const out = new Uint8Array(s.length >> 1);
          let n = 0;
          for (; n < out.length; n++) {
            const pair = s.substr(2 * n, 2);
            if (!/^[0-9a-fA-F]{2}$/.test(pair)) break;
            out[n] = parseInt(pair, 16);
          }
          return out.subarray(0, n);
        }
        default: return new Uint8Array(host.utf8Encode(s));
      }
    }
    function bytesOf(data, encoding) {
      if (typeof data === 'string') return encode(data, encoding || 'utf8');
      if (isArrayBuffer(data)) return new Uint8Array(data);
      if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      throw fsArgError('ERR_INVALID_ARG_TYPE',
        `The "data" argument must be of type string or an instance of Buffer, TypedArray, or DataView.${received(data)}`);
    }
    // Every host call: its result, or Node's error naming the paths as the user gave them.
    const check = (result, path, dest) => {
      if (result === null) throw fsFailure(path, dest);
      return result;
    };

    class Stats {
      constructor(f) {
        [this.dev, this.mode, this.nlink, this.uid, this.gid, this.rdev, this.blksize, this.ino, this.size,
          this.blocks, this.atimeMs, this.mtimeMs, this.ctimeMs, this.birthtimeMs] = f;
        this.atime = new Date(this.atimeMs);
        this.mtime = new Date(this.mtimeMs);
        this.ctime = new Date(this.ctimeMs);
        this.birthtime = new Date(this.birthtimeMs);
      }
      isFile() { return (this.mode & S_IFMT) === constants.S_IFREG; }
      isDirectory() { return (this.mode & S_IFMT) === constants.S_IFDIR; }
      isSymbolicLink() { return (this.mode & S_IFMT) === constants.S_IFLNK; }
      isFIFO() { return (this.mode & S_IFMT) === constants.S_IFIFO; }
      isSocket() { return (this.mode & S_IFMT) === constants.S_IFSOCK; }
      isCharacterDevice() { return (this.mode & S_IFMT) === constants.S_IFCHR; }
      isBlockDevice() { return (this.mode & S_IFMT) === constants.S_IFBLK; }
    }
    class Dirent {
      #type;
      constructor(name, type, parentPath) {
        this.name = name;
        this.parentPath = parentPath;
        this.path = parentPath;
        this.#type = type;
      }
      isFile() { return this.#type === 1; }
      isDirectory() { return this.#type === 2; }
      isSymbolicLink() { return this.#type === 3; }
      isFIFO() { return this.#type === 4; }
      isSocket() { return this.#type === 5; }
      isCharacterDevice() { return this.#type === 6; }
      isBlockDevice() { return this.#type === 7; }
    }

    function statOf(path, options, follow) {
      const p = fsPathArg(path);
      const f = host.fsStat(fsResolve(p), follow);
      if (f === null && options && options.throwIfNoEntry === false && host.fsError()[1] === 'ENOENT') return undefined;
      return new Stats(check(f, p));
    }
    function readFileSync(path, options) {
      const { encoding } = optionsOf(options);
      const enc = encodingOf(encoding);
      const p = fsPathArg(path);
      const bytes = new Uint8Array(check(host.fsRead(fsResolve(p)), p));
      return enc === null ? bytes : decode(bytes, enc);
    }
    function writeData(path, data, options, defaultFlag) {
      const o = optionsOf(options);
      const p = fsPathArg(path);
      const flags = flagsOf(o.flag, defaultFlag);
      const bytes = bytesOf(data, encodingOf(o.encoding === undefined ? 'utf8' : o.encoding));
      check(host.fsWrite(fsResolve(p), bytes, flags, o.mode === undefined ? 0o666 : Number(o.mode)), p);
    }
    function writeFileSync(path, data, options) { writeData(path, data, options, 'w'); }
    function appendFileSync(path, data, options) { writeData(path, data, options, 'a'); }
    function statSync(path, options) { return statOf(path, options, true); }
    function lstatSync(path, options) { return statOf(path, options, false); }
    function existsSync(path) {
      let p;
      try { p = fsPathArg(path); } catch { return false; }
      return p !== '' && host.fsAccess(fsResolve(p), 0) !== null;
    }
    function accessSync(path, mode = 0) {
      const p = fsPathArg(path);
      check(host.fsAccess(fsResolve(p), Number(mode) | 0), p);
    }
    function readdirSync(path, options) {
      const o = optionsOf(options);
      const enc = encodingOf(o.encoding === undefined ? 'utf8' : o.encoding);
      const p = fsPathArg(path);
      const out = [];
      const walk = (dir, prefix) => {
        const list = check(host.fsReaddir(fsResolve(dir)), dir);
        for (let i = 0; i < list.length; i += 2) {
          const name = prefix + list[i];
          if (o.withFileTypes) out.push(new Dirent(list[i], list[i + 1], fsResolve(dir)));
          else out.push(enc === null ? encode(name, 'utf8') : enc === 'utf8' ? name : decode(encode(name, 'utf8'), enc));
          if (o.recursive && list[i + 1] === 2) walk(`${dir}/${list[i]}`, `${name}/`);
        }
      };
      walk(p, '');
      return out;
    }
    const isDirectory = (dir) => {
      const st = host.fsStat(dir, true);
      return st !== null && (st[1] & S_IFMT) === constants.S_IFDIR;
    };
    function mkdirSync(path, options) {
      const o = typeof options === 'number' || typeof options === 'string' ? { mode: options } : optionsOf(options);
      const mode = o.mode === undefined ? 0o777 : typeof o.mode === 'string' ? parseInt(o.mode, 8) : Number(o.mode);
      const p = fsPathArg(path);
      if (!o.recursive) return void check(host.fsMkdir(fsResolve(p), mode), p);
      // Up to the nearest directory that exists, then down again creating each: returns the
      // first one created, as Node does.
      const target = fsResolve(p).replace(/(.)\/+$/, '$1');
      const shown = (dir) => (dir === target ? p : dir);
      const missing = [];
      let dir = target;
      let first;
      for (;;) {
        if (host.fsMkdir(dir, mode) !== null) {
          first = dir;
          break;
        }
        const code = host.fsError()[1];
        if (code === 'ENOENT' && dir !== '/') {
          missing.push(dir);
          dir = dir.slice(0, dir.lastIndexOf('/')) || '/';
          continue;
        }
        const e = fsFailure(shown(dir));
        if (code !== 'EEXIST' || !isDirectory(dir)) throw e;
        break;
      }
      for (let i = missing.length - 1; i >= 0; i--) {
        if (missing[i] === first) continue;
        if (host.fsMkdir(missing[i], mode) === null) {
          const e = fsFailure(shown(missing[i]));
          if (e.code !== 'EEXIST' || !isDirectory(missing[i])) throw e;
        } else if (first === undefined) {
          first = missing[i];
        }
      }
      return first;
    }
    function rmSync(path, options) {
      const o = optionsOf(options);
      const p = fsPathArg(path);
      const target = fsResolve(p);
      const st = host.fsStat(target, false);
      if (st === null) {
        if (o.force && host.fsError()[1] === 'ENOENT') return;
        throw fsFailure(p);
      }
      if ((st[1] & S_IFMT) !== constants.S_IFDIR) return void check(host.fsUnlink(target), p);
      if (!o.recursive) {
        const e = new Error(`Path is a directory: rm returned EISDIR (is a directory) ${p}`);
        Object.assign(e, { code: 'ERR_FS_EISDIR', errno: 21, syscall: 'rm', path: p });
        throw e;
      }
      const remove = (dir) => {
        const list = check(host.fsReaddir(dir), dir);
        for (let i = 0; i < list.length; i += 2) {
          const child = `${dir}/${list[i]}`;
          if (list[i + 1] === 2) remove(child);
          else check(host.fsUnlink(child), child);
        }
        check(host.fsRmdir(dir), dir === target ? p : dir);
      };
      remove(target);
    }
    function rmdirSync(path, options) {
      if (options && options.recursive) return rmSync(path, { recursive: true });
      const p = fsPathArg(path);
      check(host.fsRmdir(fsResolve(p)), p);
    }
    function unlinkSync(path) {
      const p = fsPathArg(path);
      check(host.fsUnlink(fsResolve(p)), p);
    }
    function renameSync(oldPath, newPath) {
      const from = fsPathArg(oldPath, 'oldPath');
      const to = fsPathArg(newPath, 'newPath');
      check(host.fsRename(fsResolve(from), fsResolve(to)), from, to);
    }
    function copyFileSync(src, dest, mode = 0) {
      const from = fsPathArg(src, 'src');
      const to = fsPathArg(dest, 'dest');
      check(host.fsCopy(fsResolve(from), fsResolve(to), (Number(mode) & constants.COPYFILE_EXCL) !== 0), from, to);
    }

    const sync = {
      access: accessSync, appendFile: appendFileSync, copyFile: copyFileSync, lstat: lstatSync,
      mkdir: mkdirSync, readdir: readdirSync, readFile: readFileSync, rename: renameSync, rm: rmSync,
      rmdir: rmdirSync, stat: statSync, unlink: unlinkSync, writeFile: writeFileSync,
    };
    const fs = { constants, Stats, Dirent, existsSync };
    const promises = { constants };
    for (const [name, fn] of Object.entries(sync)) {
      fs[`${name}Sync`] = fn;
      promises[name] = { async [name](...args) { return fn(...args); } }[name];
      // The callback form: the result (or error) comes in a later job, as in Node.
      fs[name] = { [name](...args) {
        const cb = args.pop();
        if (typeof cb !== 'function') {
          throw fsArgError('ERR_INVALID_ARG_TYPE', `The "cb" argument must be of type function.${received(cb)}`);
        }
        let result, error = null;
        try { result = fn(...args); } catch (e) { error = e; }
        queueMicrotask(() => (error ? cb(error) : cb(null, result)));
      } }[name];
    }
    fs.exists = (path, cb) => {
      const found = existsSync(path);
      queueMicrotask(() => cb(found));
    };
    fs.promises = promises;
    return fs;
  }
  // The namespaces of 'fs' and 'fs/promises' (with or without 'node:'): their functions, and the
  // module itself as the default export.
  function builtinNamespace(specifier) {
    const bare = specifier.startsWith('node:') ? specifier.slice(5) : specifier;
    if (bare === 'fs') {
      return fsNamespace || (fsNamespace = Object.freeze(Object.assign(Object.create(null), getFs(), { default: getFs() })));
    }
    if (bare === 'fs/promises') {
      const p = getFs().promises;
      return fsPromisesNamespace || (fsPromisesNamespace = Object.freeze(Object.assign(Object.create(null), p, { default: p })));
    }
    return undefined;
  }

  // ---------------------------------------------------------------- npm dependencies
  // A run with npm dependencies first evaluates their layer (deps/npm.h), a bundle that sets
  // globalThis.__onemcp_modules (specifier → module namespace) and __onemcp_commonjs. require()
  // and __onemcp_import() (what the server turns import declarations into) look modules up
  // there and nowhere else: no module is ever loaded from a filesystem. Of Node's built-in
  // modules, fs and fs/promises are real (above); the others are placeholders that throw when
  // used, so a package that merely imports one still loads. require() and __onemcp_import() are
  // there in every run, with or without dependencies, for the built-ins.
  const nodeBuiltins = new Set(['assert', 'async_hooks', 'buffer', 'child_process', 'cluster',
    'console', 'constants', 'crypto', 'dgram', 'diagnostics_channel', 'dns', 'domain', 'events',
    'fs', 'http', 'http2', 'https', 'inspector', 'module', 'net', 'os', 'path', 'perf_hooks',
    'process', 'punycode', 'querystring', 'readline', 'repl', 'stream', 'string_decoder', 'sys',
    'timers', 'tls', 'trace_events', 'tty', 'url', 'util', 'v8', 'vm', 'wasi', 'worker_threads',
    'zlib']);
  let npmModules = Object.create(null);
  let npmCommonJs = new Set();
  const builtinStubs = new Map();
  function builtinStub(name) {
    let stub = builtinStubs.get(name);
    if (stub !== undefined) return stub;
    const fail = (what) => {
      throw new Error(`${what} is not available: run_js has no Node.js '${name}' module`);
    };
    stub = new Proxy(function () {}, {
      get(target, key) {
        if (typeof key === 'symbol' || key === '__esModule' || key === 'then' || key === 'prototype') return undefined;
        if (key === 'default') return stub;
        return function () { fail(`${name}.${key}()`); };
      },
      apply() { fail(`${name}()`); },
      construct() { fail(`new ${name}()`); },
    });
    builtinStubs.set(name, stub);
    return stub;
  }
  function moduleNamespace(specifier) {
    const name = `${specifier}`;
    if (hasOwn(npmModules, name)) return npmModules[name];
    const builtin = builtinNamespace(name);
    if (builtin !== undefined) return builtin;
    const bare = name.startsWith('node:') ? name.slice(5) : name;
    if (nodeBuiltins.has(bare.split('/')[0])) return { default: builtinStub(name) };
    const e = new Error(`Cannot find module '${name}'`);
    e.code = 'MODULE_NOT_FOUND';
    throw e;
  }
  // CommonJS packages (and the built-in placeholders) are their module.exports, like in Node.
  function require(specifier) {
    const name = `${specifier}`;
    const ns = moduleNamespace(name);
    return npmCommonJs.has(name) || !hasOwn(npmModules, name) ? ns.default : ns;
  }
  define(globalThis, 'require', require);
  define(globalThis, '__onemcp_import', moduleNamespace);

  // ---------------------------------------------------------------- hooks for the C side
  let tracked;  // the run's top-level promise: { state: 0 pending | 1 fulfilled | 2 rejected, value }
  return {
    inspect,
    // Per-run setup, in the forked child (and before every later call of a session's live
    // interpreter: each call has its own arguments, environment and exit code).
    setup(argv, env, cwd) {
      process.argv.length = 2;
      process.argv.push(...argv);
      for (const key of Object.keys(process.env)) delete process.env[key];
      Object.assign(process.env, env);
      process.exitCode = undefined;
      cwdValue = cwd;
      startTime = host.now();
      performance.timeOrigin = Date.now();
    },
    // A run continuing from a heap snapshot: setup() ran when the heap was made; the clocks start
    // now.
    resume() {
      startTime = host.now();
      performance.timeOrigin = Date.now();
    },
    // A live interpreter's call that timed out: what it left scheduled never runs (the next
    // call's loop would otherwise wait for it).
    abandon() {
      timers.clear();
      sentRequests.clear();
      queuedRequests.length = 0;
      pendingRequests.clear();
    },
    // Nothing scheduled: no timer and no broker request (a heap snapshot may be taken).
    idle: () => timers.size === 0 && pendingRequests.size === 0,
    runTimer,
    // The module loader's built-ins (import declarations left to QuickJS, and import()): a
    // namespace, or undefined for any module the prelude does not implement.
    builtinModule: (specifier) => builtinNamespace(`${specifier}`),
    // Around the evaluation of the npm dependency layer.
    beginModules() {
      define(globalThis, 'require', require);
      define(globalThis, '__onemcp_import', moduleNamespace);
    },
    endModules() {
      const table = globalThis.__onemcp_modules;
      const cjs = globalThis.__onemcp_commonjs;
      delete globalThis.__onemcp_modules;
      delete globalThis.__onemcp_commonjs;
      if (table !== null && typeof table === 'object')
        npmModules = Object.assign(Object.create(null), table);
      if (Array.isArray(cjs)) npmCommonJs = new Set(cjs);
    },
    track(promise) {
      tracked = { state: 0, value: undefined };
      const t = tracked;
      Promise.prototype.then.call(promise,
        (v) => { t.state = 1; t.value = v; },
        (e) => { t.state = 2; t.value = e; });
    },
    trackedState: () => tracked,
    // The network broker channel (driven by the C event loop).
    brokerPending: () => pendingRequests.size,
    brokerMessage(
        text) {  // one answer frame; false when it is not one (the channel is then closed)
      let m;
      try {
        m = JSON.parse(text);
      } catch {
        return false;
      }
      if (m === null || typeof m !== 'object' || typeof m.id !== 'number') return false;
      sentRequests.delete(m.id);
      settleRequest(m.id, (entry) => entry.answer(m));
      pumpRequests();
      return true;
    },
    brokerClosed(reason) {
      sentRequests.clear();
      queuedRequests.length = 0;
      for (const id of [...pendingRequests.keys()])
        settleRequest(id, (entry) => entry.fail(reason));
    },
    exitCode: () => (process.exitCode === undefined ? 0 : Number(process.exitCode) | 0),
    // For uncaught errors: [text for stderr, one-line summary].
    describe(value) {
      if (isError(value)) {
        let text;
        try {
          text = inspect(value);
        } catch {
          text = errorStack(value);
        }
        return [text, errorHead(value)];
      }
      const text = inspect(value);
      return [text, text.split('\n')[0]];
    },
  };
})
