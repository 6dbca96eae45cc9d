// Prelude of 1mcp-js-worker: console (Node-style util.inspect formatting), timers, process and
// the polyfills QuickJS 2021-03-27 lacks. Evaluated once in the zygote, so every run starts
// from it for free. `host` is the bridge to C (write, now, enqueueJob, ...): captured by this
// closure and never reachable from user code. Returns the hooks the C side drives the run with.
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
    if (best === null || !referenced) return -1;
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

  const performance = { timeOrigin: Date.now(), now: () => host.now() - startTime };

  const globals = {
    console, process, performance, structuredClone, TextEncoder, TextDecoder, atob, btoa, DOMException,
    queueMicrotask,
    setTimeout: (fn, delay, ...args) => addTimer(fn, delay, args, false),
    setInterval: (fn, delay, ...args) => addTimer(fn, delay, args, true),
    setImmediate: (fn, ...args) => addTimer(fn, 0, args, false),
    clearTimeout: clearTimer,
    clearInterval: clearTimer,
    clearImmediate: clearTimer,
  };
  for (const [name, value] of Object.entries(globals)) define(globalThis, name, value);
  define(globalThis, 'global', globalThis);

  // ---------------------------------------------------------------- hooks for the C side
  let tracked;  // the run's top-level promise: { state: 0 pending | 1 fulfilled | 2 rejected, value }
  return {
    inspect,
    // Per-run setup, in the forked child.
    setup(argv, env, cwd) {
      process.argv.push(...argv);
      Object.assign(process.env, env);
      cwdValue = cwd;
      startTime = host.now();
      performance.timeOrigin = Date.now();
    },
    runTimer,
    track(promise) {
      tracked = { state: 0, value: undefined };
      const t = tracked;
      Promise.prototype.then.call(promise,
        (v) => { t.state = 1; t.value = v; },
        (e) => { t.state = 2; t.value = e; });
    },
    trackedState: () => tracked,
    exitCode: () => (process.exitCode === undefined ? 0 : Number(process.exitCode) | 0),
    // For uncaught errors: [text for stderr, one-line summary].
    describe(value) {
      if (isError(value)) {
        let text;
        try { text = inspect(value); } catch { text = errorStack(value); }
        return [text, errorHead(value)];
      }
      const text = inspect(value);
      return [text, text.split('\n')[0]];
    },
  };
})
